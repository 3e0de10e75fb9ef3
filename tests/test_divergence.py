"""Divergence figures checked against torch's own KL and softmax, plus the vocabulary check, typo and presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llmscope.compare.presets import EXPERIMENTS, LaneSpec, experiment_lanes, typo
from llmscope.divergence import (
    LN2,
    check_vocabularies,
    divergence,
    fingerprint_ids,
    js_from_log,
    log_softmax,
    top_overlap,
)
from llmscope.sampler import SamplerConfig


def torch_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """KL(P‖Q) by torch: kl_div(input=log Q, target=log P, log_target=True) summed (float64)."""
    log_p = torch.log_softmax(torch.tensor(p_logits, dtype=torch.float64), dim=-1)
    log_q = torch.log_softmax(torch.tensor(q_logits, dtype=torch.float64), dim=-1)
    return float(torch.nn.functional.kl_div(log_q, log_p, reduction="sum", log_target=True))


def torch_js(p_logits: np.ndarray, q_logits: np.ndarray) -> float:
    """JS from probabilities (torch.softmax), mixture M formed in probability space."""
    p = torch.softmax(torch.tensor(p_logits, dtype=torch.float64), dim=-1)
    q = torch.softmax(torch.tensor(q_logits, dtype=torch.float64), dim=-1)
    m = (p + q) / 2
    kl_pm = torch.nn.functional.kl_div(m.log(), p, reduction="sum")
    kl_qm = torch.nn.functional.kl_div(m.log(), q, reduction="sum")
    return float(0.5 * (kl_pm + kl_qm))


def set_overlap(p_logits: np.ndarray, q_logits: np.ndarray, n: int) -> float:
    top_p = set(torch.topk(torch.tensor(p_logits, dtype=torch.float64), n).indices.tolist())
    top_q = set(torch.topk(torch.tensor(q_logits, dtype=torch.float64), n).indices.tolist())
    return len(top_p & top_q) / n


def random_logits(seed: int, size: int = 500, scale: float = 4.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(size) * scale).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_figures_equal_torch(seed):
    p_logits, q_logits = random_logits(seed), random_logits(seed + 100, scale=2.0)
    figures = divergence(p_logits, q_logits, top_n=10)
    assert figures.kl_ab == pytest.approx(torch_kl(p_logits, q_logits), rel=1e-9, abs=1e-12)
    assert figures.kl_ba == pytest.approx(torch_kl(q_logits, p_logits), rel=1e-9, abs=1e-12)
    assert figures.js == pytest.approx(torch_js(p_logits, q_logits), rel=1e-9, abs=1e-12)
    assert figures.overlap == set_overlap(p_logits, q_logits, 10)
    assert figures.js_bits == pytest.approx(figures.js / math.log(2))
    assert figures.kl_ab != pytest.approx(figures.kl_ba, rel=1e-3)  # KL is not symmetric


def test_identical_distributions_have_zero_divergence_and_full_overlap():
    logits = random_logits(7)
    figures = divergence(logits, logits.copy())
    assert figures.kl_ab == figures.kl_ba == figures.js == 0.0
    assert figures.overlap == 1.0


def test_extreme_logits_need_no_epsilon():
    """Probabilities that underflow float64 (logit gaps of 2000) still give finite, torch-equal figures."""
    p_logits = np.array([0.0, -2000.0, 5.0, -1.0], dtype=np.float32)
    q_logits = np.array([3.0, 1.0, -2000.0, 0.5], dtype=np.float32)
    figures = divergence(p_logits, q_logits, top_n=2)
    assert math.isfinite(figures.kl_ab) and math.isfinite(figures.kl_ba)
    assert figures.kl_ab == pytest.approx(torch_kl(p_logits, q_logits), rel=1e-9)
    assert figures.kl_ba == pytest.approx(torch_kl(q_logits, p_logits), rel=1e-9)


def test_removed_tokens_give_infinite_kl_one_way_and_finite_js():
    """After a sampler stage removes ids (-inf), KL is ∞ towards the narrower side, JS stays ≤ ln 2."""
    wide = np.array([1.0, 0.5, 0.2, -1.0])
    narrow = np.array([1.0, -np.inf, -np.inf, -np.inf])
    figures = divergence(narrow, wide, top_n=1)
    assert figures.kl_ba == math.inf
    assert figures.kl_ab == pytest.approx(-float(torch.log_softmax(torch.tensor(wide), 0)[0]))
    assert 0 < figures.js <= LN2
    disjoint = divergence(np.array([0.0, -np.inf]), np.array([-np.inf, 0.0]), top_n=1)
    assert disjoint.js == pytest.approx(LN2) and disjoint.kl_ab == disjoint.kl_ba == math.inf


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, 12, elements=st.floats(-30, 30, allow_subnormal=False)),
    arrays(np.float64, 12, elements=st.floats(-30, 30, allow_subnormal=False)),
)
def test_js_is_symmetric_and_bounded(first, second):
    log_p, log_q = log_softmax(first), log_softmax(second)
    forward, backward = js_from_log(log_p, log_q), js_from_log(log_q, log_p)
    assert forward == pytest.approx(backward, abs=1e-12)
    assert 0.0 <= forward <= LN2


def test_top_overlap_by_hand():
    p = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    q = np.array([1.0, 4.0, 5.0, 3.0, 2.0])
    assert top_overlap(p, q, 2) == 0.5  # {0, 1} vs {2, 1}
    assert top_overlap(p, q, 3) == pytest.approx(2 / 3)  # {0, 1, 2} vs {2, 1, 3}
    with pytest.raises(ValueError):
        divergence(np.zeros(4), np.zeros(5))


def test_vocabulary_check_explains_why_figures_are_not_comparable():
    same = check_vocabularies(300, lambda i: f"t{i}", 300, lambda i: f"t{i}")
    assert same.comparable and same.reason == ""
    sizes = check_vocabularies(300, lambda i: f"t{i}", 400, lambda i: f"t{i}")
    assert not sizes.comparable and "300" in sizes.reason and "400" in sizes.reason and "not comparable" in sizes.reason
    changed = fingerprint_ids(300)[40]
    table = check_vocabularies(300, lambda i: f"t{i}", 300, lambda i: "x" if i == changed else f"t{i}")
    assert not table.comparable and "different tokenizers" in table.reason


def test_typo_swaps_two_letters_of_the_longest_word():
    assert typo("The capital of France is") == "The captial of France is"
    assert typo("letter") == "lteter"  # the middle "tt" would change nothing: the nearest other pair is swapped
    assert sorted(typo("Hello, how are you?")) == sorted("Hello, how are you?")
    with pytest.raises(ValueError):
        typo("a 1 2")


def test_experiment_presets_build_the_lanes_they_describe():
    base = LaneSpec(model="m", prompt="The capital of France is", config=SamplerConfig(seed=3))
    low, high = experiment_lanes("temperature", base)
    assert (low.config.temperature, high.config.temperature) == (0.2, 1.2) and low.config.seed == high.config.seed == 3
    without, with_system = experiment_lanes("system-prompt", base)
    assert without.chat and with_system.chat and without.system_prompt is None and with_system.system_prompt
    raw, chat = experiment_lanes("chat-template", base)
    assert not raw.chat and chat.chat
    clean, misspelt = experiment_lanes("typo", base)
    assert clean.prompt == base.prompt and misspelt.prompt == "The captial of France is"
    same, hotter = experiment_lanes("hotter", base)
    assert same == base and hotter.config.temperature == 1.2
    assert all(preset.description for preset in EXPERIMENTS.values())
    with pytest.raises(ValueError, match="unknown experiment"):
        experiment_lanes("nope", base)


def test_models_preset_says_when_the_tiny_models_are_not_shipped():
    from llmscope.registry import builtin_model_dir

    base = LaneSpec(model="m", prompt="hi")
    if builtin_model_dir("tiny-dense") and builtin_model_dir("tiny-moe"):
        assert [lane.model for lane in experiment_lanes("models", base)] == ["tiny-dense", "tiny-moe"]
    else:
        with pytest.raises(ValueError, match="not shipped"):
            experiment_lanes("models", base)
