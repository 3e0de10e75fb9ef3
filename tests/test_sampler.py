"""Sampler tests: every stage against transformers' own logits processors, plus hand-computed cases.

The references are independent of llmscope.sampler: transformers' processors (run in torch),
transformers' own generate-order builder, and numbers worked out by hand.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmscope.sampler import (
    PRESETS,
    SamplerConfig,
    SamplerConfigError,
    SampleResult,
    entropy,
    preset,
    sample,
    softmax,
)

CASES_PER_STAGE = 160
TORCH_STABLE_SORT_MAX = 16
"""torch.sort (used by TopPLogitsWarper) is stable up to 16 values; beyond, tie order is arbitrary."""


def random_logits(rng: np.random.Generator, case: int) -> np.ndarray:
    """A float32 logit vector of a varying kind: tiny/large vocab, ties, mostly negative, peaked."""
    vocab = int(rng.choice([2, 3, 4, 5, 12, 17, 300, 5000, 50_000], p=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.12, 0.08]))
    logits = rng.standard_normal(vocab) * rng.uniform(0.3, 8.0)
    kind = case % 4
    if kind == 1:  # ties: a few distinct values repeated
        logits = np.round(logits)
    elif kind == 2:  # mostly negative, as for a trained model
        logits = logits - abs(logits).max() * 0.8
    elif kind == 3:  # one dominant token
        logits[rng.integers(vocab)] += 15.0
    return logits.astype(np.float32)


def hf_process(processor, logits: np.ndarray, input_ids: list[int] | None = None) -> np.ndarray:
    """Run a transformers logits processor on one vector (batch of 1) and return float32 numpy."""
    ids = torch.tensor([input_ids if input_ids else [0]], dtype=torch.long)
    return processor(ids, torch.from_numpy(logits.copy())[None])[0].numpy()


def hf_probs(hf_logits: np.ndarray) -> np.ndarray:
    """Exact (float64) softmax of transformers' processed logits. torch's own float32 softmax is
    off by up to ~3e-6 on a 50k vocabulary (fast exp, float32 sum), so it gets a looser bound."""
    exps = np.exp(hf_logits.astype(np.float64) - hf_logits.max())
    return exps / exps.sum()


def assert_probs_match(ours: np.ndarray, hf_logits: np.ndarray) -> None:
    np.testing.assert_allclose(ours, hf_probs(hf_logits), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours, torch.softmax(torch.from_numpy(hf_logits), dim=-1).numpy(), rtol=0, atol=5e-6)


def assert_same_kept(
    ours: np.ndarray, theirs: np.ndarray, logits_before: np.ndarray, *, tie_order_defined: bool
) -> None:
    """Kept sets (finite entries) must be equal; where torch's tie order is arbitrary, only which of
    several equal logits survives may differ, so then the kept values must agree as a multiset."""
    kept_ours, kept_theirs = np.isfinite(ours), np.isfinite(theirs)
    if tie_order_defined or np.array_equal(kept_ours, kept_theirs):
        np.testing.assert_array_equal(kept_ours, kept_theirs)
    else:
        np.testing.assert_array_equal(np.sort(logits_before[kept_ours]), np.sort(logits_before[kept_theirs]))


def check_stage(result: SampleResult, name: str, hf_logits: np.ndarray, *, tie_order_defined: bool = True) -> None:
    stage = result.stage(name)
    before = result.stages[result.stages.index(stage) - 1].logits if result.stages.index(stage) else result.raw_logits
    assert stage.active
    assert_same_kept(stage.logits, hf_logits, before, tie_order_defined=tie_order_defined)
    assert stage.kept == int(np.isfinite(hf_logits).sum())
    if tie_order_defined or np.array_equal(np.isfinite(stage.logits), np.isfinite(hf_logits)):
        assert_probs_match(stage.probs, hf_logits)


# --- each stage against its transformers processor ------------------------------------------------


def test_repetition_penalty_matches_transformers() -> None:
    rng = np.random.default_rng(101)
    for case in range(CASES_PER_STAGE):
        logits = random_logits(rng, case)
        penalty = float(rng.choice([0.5, 0.9, 1.2, 2.0, rng.uniform(0.1, 5)]))
        prompt = rng.integers(0, logits.size, rng.integers(1, 20)).tolist()
        generated = rng.integers(0, logits.size, rng.integers(0, 10)).tolist()
        result = sample(
            logits, prompt_ids=prompt, generated_ids=generated, config=SamplerConfig(repetition_penalty=penalty)
        )
        hf = hf_process(RepetitionPenaltyLogitsProcessor(penalty), logits, prompt + generated)
        np.testing.assert_array_equal(result.stage("repetition_penalty").logits, hf)
        check_stage(result, "repetition_penalty", hf)


def test_temperature_matches_transformers() -> None:
    rng = np.random.default_rng(102)
    for case in range(CASES_PER_STAGE):
        logits = random_logits(rng, case)
        temperature = float(rng.choice([1e-3, 0.1, 0.7, 1.5, 3.0, rng.uniform(0.01, 4)]))
        result = sample(logits, config=SamplerConfig(temperature=temperature))
        hf = hf_process(TemperatureLogitsWarper(temperature), logits)
        np.testing.assert_array_equal(result.stage("temperature").logits, hf)  # same float32 division
        check_stage(result, "temperature", hf)


def test_top_k_matches_transformers() -> None:
    rng = np.random.default_rng(103)
    for case in range(CASES_PER_STAGE):
        logits = random_logits(rng, case)
        vocab = logits.size
        top_k = int(rng.choice([1, 2, 5, 50, vocab - 1 or 1, vocab, vocab + 3, rng.integers(1, vocab + 1)]))
        result = sample(logits, config=SamplerConfig(top_k=top_k))
        hf = hf_process(TopKLogitsWarper(top_k), logits)
        check_stage(result, "top_k", hf)


def test_top_p_matches_transformers() -> None:
    rng = np.random.default_rng(104)
    for case in range(CASES_PER_STAGE):
        logits = random_logits(rng, case)
        top_p = float(rng.choice([1e-4, 0.1, 0.5, 0.9, 0.95, 0.9999, rng.uniform(0.01, 1.0)]))
        result = sample(logits, config=SamplerConfig(top_p=top_p))
        hf = hf_process(TopPLogitsWarper(top_p), logits)
        check_stage(result, "top_p", hf, tie_order_defined=logits.size <= TORCH_STABLE_SORT_MAX)


def test_min_p_matches_transformers() -> None:
    rng = np.random.default_rng(105)
    for case in range(CASES_PER_STAGE):
        logits = random_logits(rng, case)
        min_p = float(rng.choice([1e-4, 0.05, 0.1, 0.5, 0.9, 1.0, rng.uniform(0, 1)]))
        result = sample(logits, config=SamplerConfig(min_p=min_p))
        hf = hf_process(MinPLogitsWarper(min_p), logits)
        check_stage(result, "min_p", hf)


def test_hf_order_pipeline_matches_generate_processor_list() -> None:
    """The whole pipeline against the list transformers' generate builds for the same knobs."""
    tiny = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32,
            hidden_size=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    full = GenerationConfig(do_sample=True, temperature=0.7, top_k=5, top_p=0.9, min_p=0.05, repetition_penalty=1.3)
    built = tiny._get_logits_processor(generation_config=full, input_ids_seq_length=4)
    assert [type(p).__name__ for p in built] == [
        "RepetitionPenaltyLogitsProcessor",
        "TemperatureLogitsWarper",
        "TopKLogitsWarper",
        "TopPLogitsWarper",
        "MinPLogitsWarper",
    ]
    rng = np.random.default_rng(106)
    for case in range(60):
        logits = random_logits(rng, case)
        vocab = logits.size
        config = SamplerConfig(
            temperature=float(rng.choice([0.3, 0.7, 1.0, 1.8])),
            top_k=int(rng.choice([0, 1, 3, 40, vocab])),
            top_p=float(rng.choice([0.5, 0.9, 1.0])),
            min_p=float(rng.choice([0.0, 0.02, 0.2])),
            repetition_penalty=float(rng.choice([1.0, 1.3, 0.8])),
            seed=case,
        )
        prompt = rng.integers(0, vocab, 6).tolist()
        generated = rng.integers(0, vocab, 3).tolist()
        generation_config = GenerationConfig(
            do_sample=True,
            temperature=config.temperature,
            top_k=config.top_k,
            top_p=config.top_p,
            min_p=config.min_p or None,
            repetition_penalty=config.repetition_penalty,
        )
        processors = tiny._get_logits_processor(generation_config=generation_config, input_ids_seq_length=len(prompt))
        assert isinstance(processors, LogitsProcessorList)
        hf = hf_process(processors, logits, prompt + generated)
        result = sample(logits, prompt_ids=prompt, generated_ids=generated, config=config)
        assert [s.name for s in result.stages] == [
            "repetition_penalty",
            "frequency_presence_penalty",
            "temperature",
            "top_k",
            "top_p",
            "min_p",
        ]
        tie_order_defined = vocab <= TORCH_STABLE_SORT_MAX or config.top_p == 1.0
        assert_same_kept(result.stages[-1].logits, hf, result.raw_logits, tie_order_defined=tie_order_defined)
        if np.array_equal(np.isfinite(result.stages[-1].logits), np.isfinite(hf)):
            assert_probs_match(result.final_probs, hf)
        assert np.isfinite(hf)[result.token_id]


# --- hand-computed examples (CONCEPTS §6) ---------------------------------------------------------


def test_repetition_penalty_concepts_example_is_sign_aware() -> None:
    result = sample(np.array([2.0, -2.0]), prompt_ids=[0, 1], config=SamplerConfig(repetition_penalty=1.2))
    np.testing.assert_allclose(result.stage("repetition_penalty").logits, [1.6667, -2.4], atol=1e-4)


def test_repetition_penalty_covers_prompt_and_generated_unique_ids() -> None:
    logits = np.array([1.0, 2.0, -1.0, 4.0], dtype=np.float32)
    result = sample(logits, prompt_ids=[1, 1], generated_ids=[2, 2, 2], config=SamplerConfig(repetition_penalty=2.0))
    np.testing.assert_array_equal(result.stage("repetition_penalty").logits, [1.0, 1.0, -2.0, 4.0])


def test_frequency_presence_penalties_by_hand() -> None:
    logits = np.array([1.0, 2.0, 3.0, 0.5], dtype=np.float32)
    result = sample(
        logits,
        prompt_ids=[3, 3],
        generated_ids=[1, 1, 2],
        config=SamplerConfig(frequency_penalty=0.5, presence_penalty=0.25),
    )
    # token 1: 2 - 0.5*2 - 0.25 = 0.75; token 2: 3 - 0.5*1 - 0.25 = 2.25; prompt-only token 3 untouched
    stage = result.stage("frequency_presence_penalty")
    np.testing.assert_allclose(stage.logits, [1.0, 0.75, 2.25, 0.5], atol=1e-6)
    expected = np.exp([1.0, 0.75, 2.25, 0.5]) / np.exp([1.0, 0.75, 2.25, 0.5]).sum()
    np.testing.assert_allclose(stage.probs, expected, atol=1e-6)
    negative = sample(logits, generated_ids=[0], config=SamplerConfig(frequency_penalty=-2, presence_penalty=-1))
    assert negative.stage("frequency_presence_penalty").logits[0] == pytest.approx(4.0)


def test_top_p_concepts_example_keeps_four_tokens() -> None:
    """§6.6: probabilities [0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02], top-p 0.9 keeps the top 4."""
    logits = np.log(np.array([0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.02], dtype=np.float32))
    stage = sample(logits, config=SamplerConfig(top_p=0.9)).stage("top_p")
    assert np.flatnonzero(np.isfinite(stage.logits)).tolist() == [0, 1, 2, 3]
    assert np.isfinite(hf_process(TopPLogitsWarper(0.9), logits)).sum() == 4
    assert stage.removed_ids.tolist() == [4, 5, 6]
    np.testing.assert_allclose(stage.probs[:4], np.array([0.4, 0.25, 0.15, 0.1]) / 0.9, atol=1e-6)


def test_top_p_keeps_the_token_that_crosses_the_threshold() -> None:
    logits = np.log(np.array([0.6, 0.25, 0.08, 0.07], dtype=np.float32))  # §6.6 cat/dog/bird table
    stage = sample(logits, config=SamplerConfig(top_p=0.9)).stage("top_p")
    assert stage.kept == 3


def test_top_p_exact_float32_boundaries_match_transformers() -> None:
    """Equal logits give probabilities 1/V that both sides compute identically, so cumulative sums
    land exactly on 1 - top_p: this pins '<=', float32 rounding of the cumsum and tie order."""
    for vocab in range(2, TORCH_STABLE_SORT_MAX + 1):
        logits = np.zeros(vocab, dtype=np.float32)
        for count in range(1, vocab + 1):
            top_p = count / vocab
            stage = sample(logits, config=SamplerConfig(top_p=top_p)).stage("top_p")
            hf = hf_process(TopPLogitsWarper(top_p), logits)
            np.testing.assert_array_equal(np.isfinite(stage.logits), np.isfinite(hf), err_msg=f"V={vocab} p={top_p}")
    # by hand: six tokens at 1/6; cumsum 3/6 rounds to exactly 0.5 in float32, so top-p 0.5 keeps 3
    assert sample(np.zeros(6), config=SamplerConfig(top_p=0.5)).stage("top_p").removed_ids.tolist() == [0, 1, 2]


def test_top_k_keeps_ties_at_the_boundary() -> None:
    logits = np.array([3.0, 2.0, 2.0, 2.0, 1.0], dtype=np.float32)
    stage = sample(logits, config=SamplerConfig(top_k=2)).stage("top_k")
    assert np.flatnonzero(np.isfinite(stage.logits)).tolist() == [0, 1, 2, 3]
    assert stage.removed_ids.tolist() == [4]
    assert sample(logits, config=SamplerConfig(top_k=99)).stage("top_k").kept == 5


def test_removed_ids_are_this_stages_only_in_descending_probability() -> None:
    logits = np.array([0.0, 5.0, 1.0, 4.0, 2.0, 3.0], dtype=np.float32)
    result = sample(logits, config=SamplerConfig(top_k=4, min_p=0.3))
    assert result.stage("top_k").removed_ids.tolist() == [2, 0]
    # after top-k: logits 5, 4, 3, 2 -> probs relative to max: 1, e^-1=.37, e^-2=.14, e^-3=.05
    assert result.stage("min_p").removed_ids.tolist() == [5, 4]
    assert result.stage("min_p").kept == 2


def test_temperature_zero_is_greedy_after_penalties() -> None:
    tied = sample(np.array([1.0, 3.0, 3.0, 0.0]), config=SamplerConfig(temperature=0, top_k=1, top_p=0.5))
    assert tied.token_id == 1 and tied.greedy and tied.draw is None
    np.testing.assert_array_equal(tied.final_probs, [0.0, 1.0, 0.0, 0.0])
    assert [s.active for s in tied.stages if s.name in ("top_k", "top_p", "min_p")] == [False, False, False]
    assert tied.stage("temperature").removed_ids.tolist() == [2, 0, 3]
    penalised = sample(
        np.array([2.0, 1.9]), prompt_ids=[0], config=SamplerConfig(temperature=0, repetition_penalty=1.2)
    )
    assert penalised.token_id == 1
    assert penalised.entropy_final == 0.0
    for order in ("hf", "llama.cpp"):
        assert sample(np.array([0.5, 2.0, 1.0]), config=preset("greedy").with_changes(order=order)).token_id == 1


def test_llama_cpp_order_differs_from_hf_where_it_must() -> None:
    """Raw probs of [2, 1, 0] are .665/.245/.090; at T=2 they are .506/.307/.186. Top-p 0.6 keeps
    one token before temperature (llama.cpp) but two after it (transformers)."""
    logits = np.array([2.0, 1.0, 0.0], dtype=np.float32)
    config = SamplerConfig(temperature=2.0, top_p=0.6, seed=3)
    hf = sample(logits, config=config)
    llama = sample(logits, config=config.with_changes(order="llama.cpp"))
    assert [s.name for s in llama.stages][-1] == "temperature"
    assert hf.stage("top_p").kept == 2 and llama.stage("top_p").kept == 1
    np.testing.assert_array_equal(llama.final_probs, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(hf.final_probs, [np.exp(0.5) / (np.exp(0.5) + 1), 1 / (np.exp(0.5) + 1), 0], atol=1e-6)


# --- the pick --------------------------------------------------------------------------------------


def test_seeded_picks_are_reproducible_and_history_independent() -> None:
    logits = np.random.default_rng(7).standard_normal(1000).astype(np.float32)
    config = SamplerConfig(temperature=0.9, top_k=100, seed=42)
    first = sample(logits, config=config, step_index=5)
    again = sample(logits, generated_ids=[1, 2, 3], prompt_ids=[4], config=config, step_index=5)
    assert (first.token_id, first.draw) == (again.token_id, again.draw)
    assert first.draw == np.random.default_rng([42, 5]).random()
    assert sample(logits, config=config, step_index=6).draw != first.draw
    assert sample(logits, config=config.with_changes(seed=43), step_index=5).draw != first.draw
    cumulative = np.cumsum(first.final_probs, dtype=np.float64)
    assert cumulative[first.token_id] > first.draw * cumulative[-1]
    assert first.token_id == 0 or cumulative[first.token_id - 1] <= first.draw * cumulative[-1]


def test_pick_frequencies_follow_final_probs() -> None:
    logits = np.array([2.0, 1.5, 0.3, 0.0, -1.0, -4.0], dtype=np.float32)
    config = SamplerConfig(temperature=0.8, top_k=4, seed=11)
    draws = 3000
    picks = [sample(logits, config=config, step_index=step).token_id for step in range(draws)]
    counts = np.bincount(picks, minlength=logits.size)
    expected = np.exp(logits[:4] / 0.8) / np.exp(logits[:4] / 0.8).sum() * draws
    assert counts[4:].sum() == 0  # removed tokens are never picked
    chi_square = float((((counts[:4] - expected) ** 2) / expected).sum())
    assert chi_square < 20.0  # 3 degrees of freedom: p ~ 2e-4; deterministic with a fixed seed


# --- validation, inputs, helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("top_p", float("nan")),
        ("temperature", -0.1),
        ("temperature", float("nan")),
        ("temperature", float("inf")),
        ("temperature", 1e-9),
        ("top_k", -1),
        ("top_k", 2.5),
        ("top_k", True),
        ("min_p", -0.1),
        ("min_p", 1.01),
        ("repetition_penalty", 0.0),
        ("repetition_penalty", -1.2),
        ("frequency_penalty", 2.5),
        ("presence_penalty", -3.0),
        ("presence_penalty", float("-inf")),
        ("seed", -1),
        ("order", "vllm"),
    ],
)
def test_invalid_knob_raises_one_line_error_naming_it(knob: str, value: object) -> None:
    with pytest.raises(SamplerConfigError, match=knob) as raised:
        SamplerConfig(**{knob: value}).validate()
    assert "\n" not in str(raised.value) and "allowed" in str(raised.value)
    with pytest.raises(SamplerConfigError, match=knob):
        SamplerConfig().with_changes(**{knob: value})
    with pytest.raises(SamplerConfigError, match=knob):
        sample(np.zeros(3), config=SamplerConfig(**{knob: value}))


def test_presets_and_unknown_names() -> None:
    assert preset("greedy").temperature == 0
    assert (preset("conservative").temperature, preset("conservative").top_p) == (0.2, 0.1)
    assert (preset("balanced").temperature, preset("balanced").top_p) == (0.7, 0.9)
    assert (preset("creative").temperature, preset("creative").top_p) == (1.0, 0.95)
    assert all(config.validate() is config for config in PRESETS.values())
    with pytest.raises(SamplerConfigError, match="preset") as raised:
        preset("wild")
    assert all(name in str(raised.value) for name in PRESETS)
    with pytest.raises(SamplerConfigError, match="topp"):
        SamplerConfig().with_changes(topp=0.5)
    assert SamplerConfig(temperature=0.7, top_p=0.9, seed=1).describe() == "T=0.7 top-p=0.9 seed=1"
    assert preset("greedy").describe() == "greedy"


@pytest.mark.parametrize(
    "bad", [np.zeros((2, 3)), np.zeros(0), np.array([0.0, np.nan]), np.array([np.inf, 0.0]), np.full(3, -np.inf)]
)
def test_bad_logits_raise_value_error(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        sample(bad)


def test_inputs_not_mutated_and_dtypes_accepted() -> None:
    logits64 = np.random.default_rng(3).standard_normal(50).astype(np.float64)
    snapshot = logits64.copy()
    config = SamplerConfig(temperature=0.5, top_k=10, top_p=0.8, repetition_penalty=1.3, frequency_penalty=0.4)
    results = [
        sample(logits64.astype(dtype), prompt_ids=[1, 2], generated_ids=[3, 3], config=config)
        for dtype in (np.float16, np.float32, np.float64)
    ]
    np.testing.assert_array_equal(logits64, snapshot)
    assert all(r.raw_logits.dtype == np.float32 and r.final_probs.dtype == np.float32 for r in results)
    assert results[1].token_id == results[2].token_id
    np.testing.assert_array_equal(results[1].final_probs, results[2].final_probs)
    with pytest.raises(ValueError):
        results[0].final_probs[0] = 1.0  # results are read-only


def test_inactive_stages_pass_through_and_helpers() -> None:
    logits = np.array([1.0, 3.0, 3.0, -np.inf, 0.0], dtype=np.float32)
    result = sample(logits)
    assert not any(s.active for s in result.stages)
    assert all(np.array_equal(s.logits, result.raw_logits) and s.kept == 4 for s in result.stages)
    assert result.top(3) == [1, 2, 0]
    assert result.raw_probs[3] == 0.0
    assert entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))
    assert entropy(np.array([1.0, 0.0])) == 0.0
    np.testing.assert_allclose(softmax(np.array([0.0, -np.inf, 0.0])), [0.5, 0.0, 0.5])
    assert result.entropy_raw == pytest.approx(entropy(result.raw_probs))
    with pytest.raises(KeyError):
        result.stage("typical_p")


def test_sampler_module_does_not_import_torch() -> None:
    code = (
        "import llmscope.sampler, sys; "
        "heavy = [m for m in ('torch', 'transformers', 'textual', 'rich') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)
