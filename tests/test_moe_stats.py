"""moe_stats against hand computation and transformers' own load_balancing_loss_func."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from llmscope.moe_stats import (
    concat_routing,
    expert_load,
    load_balancing_loss,
    load_distance_from_balanced,
    router_probs,
    total_variation,
)
from llmscope.trace import RouterTrace


def test_expert_load_by_hand() -> None:
    # one layer, 3 positions, top-2, 4 experts: expert 0 appears 3 times, 1 twice, 2 once, 3 never.
    experts = np.array([[[0, 1], [0, 2], [1, 0]]])
    load = expert_load(experts, 4)
    assert load.shape == (1, 4)
    np.testing.assert_allclose(load[0], [3 / 6, 2 / 6, 1 / 6, 0.0])


def test_expert_load_per_layer_rows_sum_to_one() -> None:
    experts = np.array([[[0], [0], [0]], [[1], [2], [3]]])
    load = expert_load(experts, 4)
    np.testing.assert_allclose(load, [[1, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3]])


def test_router_probs_softmax_by_hand() -> None:
    probs = router_probs(np.array([[0.0, np.log(3.0)]]))
    np.testing.assert_allclose(probs, [[0.25, 0.75]])


def test_total_variation_by_hand() -> None:
    assert total_variation(np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])) == pytest.approx(0.5)
    assert total_variation(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert load_distance_from_balanced(np.array([1.0, 0.0, 0.0, 0.0])) == pytest.approx(0.75)


def test_load_balancing_terms_by_hand() -> None:
    # 1 layer, 2 tokens, 2 experts, top-1. Token 0 prefers expert 0 (p = 0.75), token 1 expert 1 (p = 0.5+).
    logits = np.array([[[np.log(3.0), 0.0], [0.0, 0.1]]], dtype=np.float32)
    result = load_balancing_loss(logits, experts_per_token=1, num_experts=2, alpha=0.5)
    p1 = 1 / (1 + np.exp(0.1))  # expert 0's probability at token 1
    np.testing.assert_allclose(result.layer_fraction[0], [0.5, 0.5])
    np.testing.assert_allclose(result.layer_mean_prob[0], [(0.75 + p1) / 2, (0.25 + 1 - p1) / 2], rtol=1e-6)
    expected_dot = 0.5 * (0.75 + p1) / 2 + 0.5 * (0.25 + 1 - p1) / 2
    assert result.layer_loss[0] == pytest.approx(0.5 * 2 * expected_dot, rel=1e-6)
    assert result.balanced_loss == 0.5


def test_pooled_hides_imbalance_that_layers_show() -> None:
    # Layer 0 sends everything to expert 0, layer 1 to expert 1: each layer is fully collapsed,
    # but pooled over layers the fractions look perfectly balanced.
    strong = 20.0
    layer0 = np.tile([strong, 0.0], (4, 1))
    layer1 = np.tile([0.0, strong], (4, 1))
    result = load_balancing_loss(np.stack([layer0, layer1]), experts_per_token=1, num_experts=2, alpha=1.0)
    np.testing.assert_allclose(result.pooled_fraction, [0.5, 0.5])
    assert result.pooled_loss == pytest.approx(1.0, abs=1e-6)  # the balanced value α·k
    np.testing.assert_allclose(result.layer_loss, [2.0, 2.0], atol=1e-6)  # N × 1 × ~1 per layer


CASES = [(3, 17, 8, 2), (2, 9, 6, 1)]
"""(moe_layers, positions, experts, top_k) for the comparison with transformers."""


def _case_logits(layers: int, positions: int, num_experts: int, top_k: int) -> np.ndarray:
    generator = np.random.default_rng(7 + top_k)
    logits = (generator.normal(size=(layers, positions, num_experts)) * 2.0).astype(np.float32)
    logits[0, :, 0] += 3.0  # skew one layer so the loss is away from its balanced value
    return logits


@pytest.fixture(scope="module")
def transformers_losses() -> list[dict]:
    """transformers' own function on every case, in one subprocess so this module never imports torch."""
    code = (
        "import json, sys, numpy as np, torch\n"
        "from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func\n"
        "out = []\n"
        "for case in json.loads(sys.stdin.read()):\n"
        "    gate = tuple(torch.from_numpy(np.array(layer, dtype=np.float32)) for layer in case['logits'])\n"
        "    pooled = float(load_balancing_loss_func(gate, case['n'], case['k']))\n"
        "    layers = [float(load_balancing_loss_func((g,), case['n'], case['k'])) for g in gate]\n"
        "    out.append({'pooled': pooled, 'layers': layers})\n"
        "print(json.dumps(out))\n"
    )
    payload = json.dumps([{"logits": _case_logits(*case).tolist(), "n": case[2], "k": case[3]} for case in CASES])
    result = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case_index", range(len(CASES)))
def test_pooled_loss_equals_transformers(case_index: int, transformers_losses: list[dict]) -> None:
    layers, positions, num_experts, top_k = CASES[case_index]
    logits = _case_logits(layers, positions, num_experts, top_k)
    alpha = 0.02
    result = load_balancing_loss(logits, experts_per_token=top_k, num_experts=num_experts, alpha=alpha)
    reference = transformers_losses[case_index]
    assert result.pooled_loss == pytest.approx(alpha * reference["pooled"], rel=1e-5)
    # One layer alone through transformers' function is that layer's own loss.
    np.testing.assert_allclose(result.layer_loss, alpha * np.array(reference["layers"]), rtol=1e-5)
    assert result.pooled_loss != pytest.approx(result.balanced_loss, rel=1e-3)
    # Straight numpy on the inputs: f sums to k per layer, P sums to 1.
    np.testing.assert_allclose(result.layer_fraction.sum(axis=1), top_k)
    np.testing.assert_allclose(result.layer_mean_prob.sum(axis=1), 1.0, rtol=1e-6)


def test_concat_routing_joins_positions() -> None:
    def trace(positions: int, offset: int) -> RouterTrace:
        return RouterTrace(
            layers=(0, 1),
            logits=np.full((2, positions, 4), offset, dtype=np.float32),
            experts=np.full((2, positions, 2), offset, dtype=np.int64),
            weights=np.full((2, positions, 2), 0.5, dtype=np.float32),
            rule="test",
        )

    logits, experts, weights = concat_routing([trace(5, 0), trace(1, 1), trace(1, 2)])
    assert logits.shape == (2, 7, 4) and experts.shape == (2, 7, 2) and weights.shape == (2, 7, 2)
    assert experts[0, :, 0].tolist() == [0, 0, 0, 0, 0, 1, 2]


def test_moe_stats_imports_no_torch_or_ui() -> None:
    code = "import json, sys\nimport llmscope.moe_stats\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.strip().splitlines()[-1])}
    assert not loaded & {"torch", "transformers", "textual", "rich"}
