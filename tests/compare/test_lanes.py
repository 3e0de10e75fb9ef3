"""Two lanes stepped together on tiny models and a scripted engine: identical lanes, temperature, EOS, vocabularies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compare_helpers import EOS_ID, ScriptedEngine

from llmscope.compare.lanes import Comparison, Lane
from llmscope.engine_api import EngineError
from llmscope.generation import STOP_EOS
from llmscope.sampler import SamplerConfig

PROMPT = "Hello, how are you?"


@pytest.fixture(scope="module")
def engines(tiny_model_dirs):
    """Two separate engines of the same tiny llama (each lane needs its own KV cache)."""
    from llmscope.engines.hf import HFEngine

    return HFEngine.load(str(tiny_model_dirs["llama-gqa"])), HFEngine.load(str(tiny_model_dirs["llama-gqa"]))


def lanes(engines, config_a: SamplerConfig, config_b: SamplerConfig, prompt_b: str = PROMPT) -> Comparison:
    first, second = engines
    return Comparison(Lane("A", first, PROMPT, config=config_a), Lane("B", second, prompt_b, config=config_b))


def test_identical_lanes_with_one_seed_never_diverge(engines):
    comparison = lanes(engines, SamplerConfig(temperature=1.0, seed=5), SamplerConfig(temperature=1.0, seed=5))
    records = comparison.run(6)
    assert len(records) == 6 and comparison.compatibility.comparable
    for record in records:
        assert record.a.token.id == record.b.token.id and not record.diverged
        assert record.raw.kl_ab == record.raw.kl_ba == record.raw.js == 0.0
        assert record.final.js == 0.0 and record.raw.overlap == 1.0
    assert comparison.first_divergence is None


def test_temperature_only_changes_the_sampled_distribution(engines):
    comparison = lanes(engines, SamplerConfig(temperature=0.2, seed=1), SamplerConfig(temperature=1.2, seed=1))
    first = comparison.start()
    logits_a, logits_b = (generation.steps[0].trace.logits for generation in comparison.generations)
    np.testing.assert_array_equal(logits_a, logits_b)
    assert first.raw.js == 0.0 and first.raw.kl_ab == 0.0
    assert first.final.js > 0.01 and first.final.kl_ab > 0 and first.final.kl_ba > 0


def test_step_figures_equal_torch_on_the_lanes_logits(engines):
    comparison = lanes(engines, SamplerConfig(temperature=0.0), SamplerConfig(temperature=1.5, seed=3))
    comparison.run(5)
    index = 4
    results = [generation.sample_result(index) for generation in comparison.generations]
    log_a, log_b = (torch.log_softmax(torch.tensor(r.raw_logits, dtype=torch.float64), -1) for r in results)
    record = comparison.record(index)
    kl_ab = float(torch.nn.functional.kl_div(log_b, log_a, reduction="sum", log_target=True))
    kl_ba = float(torch.nn.functional.kl_div(log_a, log_b, reduction="sum", log_target=True))
    assert record.raw.kl_ab == pytest.approx(kl_ab, rel=1e-9) and record.raw.kl_ba == pytest.approx(kl_ba, rel=1e-9)
    top = [set(torch.topk(torch.tensor(r.raw_logits), 10).indices.tolist()) for r in results]
    assert record.raw.overlap == len(top[0] & top[1]) / 10
    # Greedy lane A samples from a one-hot: KL(B‖A) of the sampled distributions is infinite, JS is not.
    assert record.final.kl_ba == float("inf") and 0 < record.final.js <= np.log(2)
    row = next(row for row in record.rows if row.chosen_a)
    assert row.p_a == pytest.approx(float(torch.softmax(torch.tensor(results[0].raw_logits), -1)[row.id_a]), rel=1e-6)
    assert row.id_a == row.id_b == results[0].token_id and row.final_a == 1.0


def test_first_divergence_rewind_and_tokenization(engines):
    comparison = lanes(
        engines,
        SamplerConfig(temperature=0.2, seed=0),
        SamplerConfig(temperature=1.5, seed=0),
        prompt_b="Hlelo, how are you?",
    )
    comparison.run(6)
    first = comparison.first_divergence
    tokens = [[step.token_id for step in generation.steps] for generation in comparison.generations]
    expected = next(i for i, (a, b) in enumerate(zip(*tokens)) if a != b)
    assert first == expected and comparison.record(first).first_divergence
    assert sum(record.first_divergence for record in comparison.records()) == 1
    tokenization = comparison.tokenization()
    a_ids = engines[0].encode(PROMPT)
    b_ids = engines[1].encode("Hlelo, how are you?")
    assert tokenization.difference == len(b_ids) - len(a_ids) != 0
    comparison.rewind(2)
    assert comparison.length == 4 and all(len(g.steps) == 4 for g in comparison.generations)
    assert engines[0].context_length == len(a_ids) + 3
    again = comparison.step()
    assert again.index == 4 and comparison.length == 5


def test_a_lane_that_says_eos_stops_while_the_other_continues():
    greedy = SamplerConfig(temperature=0.0)
    comparison = Comparison(
        Lane("A", ScriptedEngine(eos_after=2), "x", config=greedy),
        Lane("B", ScriptedEngine(eos_after=None), "x", config=greedy),
    )
    comparison.run(6)
    first, second = comparison.generations
    assert [s.token_id for s in first.steps] == [4, 4, EOS_ID] and first.stop_reason == STOP_EOS
    assert len(second.steps) == 6 and second.stop_reason is None
    assert comparison.stop_reasons() == (STOP_EOS, None)
    assert comparison.first_divergence == 2
    later = comparison.record(4)
    assert later.a is None and later.b.token.id == 4 and later.raw is None and later.diverged
    comparison.rewind(4)  # back to two steps: lane A loses its EOS and can go on
    assert len(first.steps) == 2 and first.stop_reason is None
    comparison.step()
    assert first.steps[-1].token_id == EOS_ID


def test_both_lanes_stopped_is_a_clear_error():
    greedy = SamplerConfig(temperature=0.0)
    comparison = Comparison(
        Lane("A", ScriptedEngine(eos_after=0), "x", config=greedy),
        Lane("B", ScriptedEngine(eos_after=1), "x", config=greedy),
    )
    comparison.run(5)
    assert comparison.finished
    with pytest.raises(EngineError, match="both lanes have stopped"):
        comparison.step()


def test_lanes_cannot_share_an_engine():
    engine = ScriptedEngine(None)
    with pytest.raises(ValueError, match="its own engine"):
        Comparison(Lane("A", engine, "x"), Lane("B", engine, "x"))


def test_different_vocabularies_are_flagged_and_the_rest_still_runs(engines, other_vocab_dir):
    from llmscope.engines.hf import HFEngine

    other = HFEngine.load(str(other_vocab_dir))
    comparison = Comparison(
        Lane("A", engines[0], PROMPT, config=SamplerConfig(seed=2)),
        Lane("B", other, PROMPT, config=SamplerConfig(seed=2)),
    )
    assert not comparison.compatibility.comparable and "not comparable" in comparison.compatibility.reason
    records = comparison.run(4)
    assert len(records) == 4 and all(record.raw is None and record.final is None for record in records)
    assert all(record.a and record.b for record in records)
    texts = [row.text for row in records[0].rows]
    assert len(texts) == len(set(texts))  # aligned by text across the two vocabularies
    assert comparison.tokenization().difference == len(other.encode(PROMPT)) - len(engines[0].encode(PROMPT))
