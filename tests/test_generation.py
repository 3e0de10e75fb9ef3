"""The step loop against transformers' own generate, and re-sampling without forward passes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from llmscope.engine_api import EngineError
from llmscope.engines.hf import HFEngine
from llmscope.generation import STOP_EOS, Generation
from llmscope.sampler import SamplerConfig


def reference_greedy(directory, prompt_ids: list[int], new_tokens: int) -> list[int]:
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt_ids]),
            do_sample=False,
            max_new_tokens=new_tokens,
            top_k=None,
            top_p=None,
            temperature=None,
        )
    return output[0, len(prompt_ids) :].tolist()


@pytest.mark.parametrize("kind", ["llama-gqa", "gpt2", "mixtral"])
def test_greedy_equals_model_generate_on_tiny_models(tiny_model_dirs, kind):
    engine = HFEngine.load(str(tiny_model_dirs[kind]))
    prompt_ids = engine.encode("The quick brown fox")
    generation = Generation(engine, SamplerConfig(temperature=0))
    generation.start(prompt_ids)
    generation.run(12)  # both loops stop early at EOS
    assert len(generation.generated_ids) >= 3
    assert generation.generated_ids == reference_greedy(tiny_model_dirs[kind], prompt_ids, 12)


@pytest.mark.smollm
def test_greedy_equals_model_generate_on_smollm2(smollm2_engine, smollm2_dir):
    prompt_ids = smollm2_engine.encode("The capital of France is")
    generation = Generation(smollm2_engine, SamplerConfig(temperature=0))
    generation.start(prompt_ids)
    generation.run(10)
    reference = reference_greedy(smollm2_dir, prompt_ids, 10)
    assert generation.generated_ids == reference
    assert smollm2_engine.tokenizer.decode(generation.generated_ids[:1]) == " Paris"


def test_resample_needs_no_forward_pass(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    generation = Generation(engine, SamplerConfig(temperature=1.0, seed=3))
    generation.start(engine.encode("Hello, how are you?"))
    generation.run(3)
    generation.rewind(1)
    calls = engine.forward_calls
    logits_before = generation.current.trace.logits.copy()
    cold = generation.sample_result()
    generation.resample(SamplerConfig(temperature=0.2, seed=3))
    hot = generation.sample_result()
    assert engine.forward_calls == calls
    np.testing.assert_array_equal(generation.current.trace.logits, logits_before)
    assert hot.entropy_final < cold.entropy_final
    assert hot.stage("temperature").label != cold.stage("temperature").label


def test_rewind_and_advance_match_an_uninterrupted_run(tiny_model_dirs):
    config = SamplerConfig(temperature=0.9, top_p=0.95, seed=11)
    first = Generation(HFEngine.load(str(tiny_model_dirs["llama-gqa"])), config)
    prompt_ids = first.engine.encode("To be, or not to be")
    first.start(prompt_ids)
    first.run(6)
    first.rewind(3)
    first.run(6)
    second = Generation(HFEngine.load(str(tiny_model_dirs["llama-gqa"])), config)
    second.start(prompt_ids)
    second.run(6)
    assert first.generated_ids == second.generated_ids
    np.testing.assert_allclose(first.current.trace.logits, second.current.trace.logits, atol=1e-5)
    assert first.engine.context_length == len(prompt_ids) + 5


def test_recorded_knobs_reproduce_recorded_tokens(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["gpt2"]))
    generation = Generation(
        engine, SamplerConfig(temperature=1.2, top_k=20, min_p=0.01, repetition_penalty=1.3, seed=5)
    )
    generation.start(engine.encode("Hello world"))
    generation.run(8)
    for number, step in enumerate(generation.steps):
        assert generation.sample_result(number).token_id == step.token_id


def test_eos_stops_generation(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    generation = Generation(engine, SamplerConfig(temperature=0))
    generation.start(engine.encode("Hello"))
    eos = engine.info.eos_token_ids[0]
    trace = generation.current.trace
    forced = trace.logits.copy()
    forced[eos] = forced.max() + 10
    del generation.steps[-1]
    generation._choose(dataclasses.replace(trace, logits=forced), generation.config)
    assert generation.stop_reason == STOP_EOS
    with pytest.raises(EngineError, match="stopped"):
        generation.advance()


def test_a_failed_rewind_changes_nothing(tiny_model_dirs, monkeypatch):
    """The engine is asked first; when it cannot rewind, the steps stay and the next token is still right."""
    config = SamplerConfig(temperature=0.0)
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    generation = Generation(engine, config)
    prompt_ids = engine.encode("To be, or not to be")
    generation.start(prompt_ids)
    generation.run(5)
    before = (list(generation.generated_ids), engine.context_length)

    def refuse(length: int) -> None:
        raise EngineError(f"cannot rewind the cache to {length} tokens")

    monkeypatch.setattr(engine, "truncate", refuse)
    with pytest.raises(EngineError, match="cannot rewind"):
        generation.rewind(2)
    assert (generation.generated_ids, engine.context_length) == before
    monkeypatch.undo()
    generation.run(7)
    straight = Generation(HFEngine.load(str(tiny_model_dirs["llama-gqa"])), config)
    straight.start(prompt_ids)
    straight.run(7)
    assert generation.generated_ids == straight.generated_ids
    np.testing.assert_allclose(generation.current.trace.logits, straight.current.trace.logits, atol=1e-5)
