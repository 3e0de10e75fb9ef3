"""Forcing a token: the user's choice replaces the sampled one with no forward pass, and the model continues from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from llmscope.engine_api import EngineError
from llmscope.engines.hf import HFEngine
from llmscope.generation import Generation
from llmscope.live import LiveController
from llmscope.sampler import SamplerConfig

PROMPT = "To be, or not to be"


def reference_logits(directory, ids: list[int]) -> np.ndarray:
    """Next-token logits after `ids`, from transformers' own model in one full forward (no cache)."""
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].numpy()


def unlikely_token(logits: np.ndarray, avoid: int) -> int:
    """The least likely token that is not `avoid` (certainly not what any sampler picked)."""
    order = np.argsort(logits)
    return int(order[0] if order[0] != avoid else order[1])


@pytest.mark.parametrize("kind", ["llama-gqa", "mixtral"])
def test_forced_token_is_fed_next_without_an_extra_forward(tiny_model_dirs, kind):
    engine = HFEngine.load(str(tiny_model_dirs[kind]))
    generation = Generation(engine, SamplerConfig(temperature=0))
    prompt_ids = engine.encode(PROMPT)
    generation.start(prompt_ids)
    generation.run(3)
    calls = engine.forward_calls
    sampled = generation.current.token_id
    forced = unlikely_token(generation.current.trace.logits, sampled)
    step = generation.force(forced)
    assert engine.forward_calls == calls  # no forward pass for the force itself
    assert step.forced and generation.generated_ids[-1] == forced and step.token_id != sampled
    generation.advance()
    assert engine.forward_calls == calls + 1
    ids = [*prompt_ids, *generation.generated_ids[:-1]]
    assert ids[-1] == forced
    np.testing.assert_allclose(
        generation.current.trace.logits, reference_logits(tiny_model_dirs[kind], ids), atol=1e-4, rtol=1e-4
    )


def test_forced_probabilities_are_the_tokens_own_under_the_current_knobs(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    generation = Generation(engine, SamplerConfig(temperature=1.0, top_k=5, seed=4))
    generation.start(engine.encode(PROMPT))
    logits = generation.current.trace.logits.astype(np.float64)
    raw = np.exp(logits - logits.max())
    raw /= raw.sum()  # softmax by hand
    top5 = np.argsort(-logits)[:5]
    inside, outside = int(top5[1]), unlikely_token(logits, -1)
    step = generation.force(outside)
    assert step.raw_probability == pytest.approx(raw[outside], rel=1e-5)
    assert step.probability == 0.0  # top-k removed it: forcing is how it can still be chosen
    step = generation.force(inside)
    assert step.probability == pytest.approx(raw[inside] / raw[top5].sum(), rel=1e-5)


@pytest.mark.parametrize("bad", [-1, 10**9, 2.0, True, "3"])
def test_a_token_outside_the_vocabulary_is_refused_and_changes_nothing(tiny_model_dirs, bad):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["llama-gqa"])))
    controller.start(PROMPT, chat=False)
    controller.step()
    before = list(controller.generation.generated_ids)
    with pytest.raises(EngineError, match="not in the vocabulary"):
        controller.force(bad)
    with pytest.raises(EngineError, match="not in the vocabulary"):
        controller.generation.force(bad)
    assert controller.generation.generated_ids == before


def test_nothing_to_force_before_a_prompt(tiny_model_dirs):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["llama-gqa"])))
    with pytest.raises(EngineError, match="nothing to force"):
        controller.force(3)


def test_force_at_an_earlier_step_branches_from_there(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    controller = LiveController(engine, SamplerConfig(temperature=0))
    controller.start(PROMPT, chat=False)
    for _ in range(4):
        controller.step()
    kept = controller.generation.generated_ids[:2]
    forced = unlikely_token(controller.generation.steps[2].trace.logits, controller.generation.generated_ids[2])
    view = controller.force(forced, at=2)
    assert controller.generation.generated_ids == [*kept, forced]
    assert view.step_count == 3 and view.forced_token == forced and view.panes.logits.forced == forced
    assert engine.context_length == len(controller.generation.prompt_ids) + 2  # the forced token is fed next
    with pytest.raises(EngineError, match="cannot force at step 7"):
        controller.force(forced, at=7)


def test_view_at_shows_that_steps_data(tiny_model_dirs):
    controller = LiveController(HFEngine.load(str(tiny_model_dirs["mixtral"])), SamplerConfig(temperature=0.8, seed=2))
    first = controller.start("Hello, how are you?", chat=False)
    prompt_length = len(first.prompt_tokens)
    views = [first] + [controller.step() for _ in range(4)]
    latest = views[-1]
    for index, then in enumerate(views[:-1]):
        past = controller.view_at(index)
        assert past.viewing == index and past.step_count == latest.step_count == 5
        assert past.panes.generation.selected == index and past.panes.generation.generated == latest.generated
        assert past.context_labels == then.context_labels and len(past.context_labels) == prompt_length + index
        assert past.kv_history == then.kv_history
        np.testing.assert_array_equal(past.panes.attention.attention, then.panes.attention.attention)
        assert past.panes.attention.step_index == index
        np.testing.assert_array_equal(past.panes.moe.experts, then.panes.moe.experts)
        assert past.sample.token_id == then.sample.token_id
        np.testing.assert_array_equal(past.sample.final_probs, then.sample.final_probs)
        assert past.panes.kv.what_if == then.panes.kv.what_if
    same = controller.view_at(4)
    assert same.viewing is None and same.panes.generation.selected is None
    with pytest.raises(EngineError, match="no step 5"):
        controller.view_at(5)
