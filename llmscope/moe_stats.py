"""Statistics over MoE routing arrays: expert load, router probabilities and the load-balancing loss.

Numpy only (no torch, no UI), so the MoE pane, replays and the CLI share one definition. Arrays are
RouterTrace's, concatenated along the positions axis: logits [moe_layers, positions, experts],
experts and weights [moe_layers, positions, experts_per_token].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmscope.trace import RouterTrace

__all__ = [
    "LoadBalance",
    "concat_routing",
    "expert_load",
    "load_balancing_loss",
    "load_distance_from_balanced",
    "router_probs",
    "top_k_experts",
    "total_variation",
]


def router_probs(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last (experts) axis, computed in float64 for stable small differences."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def top_k_experts(probs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries along the last axis, largest first (as torch.topk orders them)."""
    if not 1 <= k <= probs.shape[-1]:
        raise ValueError(f"k must be between 1 and {probs.shape[-1]}, got {k}")
    order = np.argsort(-probs, axis=-1, kind="stable")
    return order[..., :k]


def expert_load(experts: np.ndarray, num_experts: int) -> np.ndarray:
    """Share of routing slots (positions × top_k) each expert received, per layer: [moe_layers, experts].

    Each row sums to 1; a perfectly balanced layer has 1 / num_experts everywhere.
    """
    experts = np.asarray(experts)
    if experts.ndim != 3:
        raise ValueError(f"experts must be [moe_layers, positions, top_k], got shape {experts.shape}")
    layers, positions, top_k = experts.shape
    counts = np.zeros((layers, num_experts), dtype=np.float64)
    for layer in range(layers):
        counts[layer] = np.bincount(experts[layer].reshape(-1), minlength=num_experts)[:num_experts]
    slots = positions * top_k
    return counts / slots if slots else counts


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Total-variation distance ½ Σ |p − q| along the last axis (0 = identical, 1 = disjoint)."""
    distance = 0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum(axis=-1)
    return float(distance) if np.ndim(distance) == 0 else distance


def load_distance_from_balanced(load: np.ndarray) -> np.ndarray | float:
    """Total-variation distance of each load row from the uniform share 1/N (0 = perfectly balanced)."""
    load = np.asarray(load, dtype=np.float64)
    return total_variation(load, np.full(load.shape[-1], 1.0 / load.shape[-1]))


@dataclass(frozen=True)
class LoadBalance:
    """The Switch-Transformer auxiliary loss α · N · Σ_i f_i · P_i with every term, per layer and pooled.

    f_i is the fraction of tokens whose top-k includes expert i (so Σ_i f_i = k), P_i the mean router
    probability of expert i (Σ_i P_i = 1). "Pooled" treats all layers' tokens as one batch, as
    transformers' `load_balancing_loss_func` does; per-layer values show imbalance that pooling hides.
    """

    alpha: float
    num_experts: int
    experts_per_token: int
    tokens: int
    """Positions per layer that entered the statistics."""
    layer_fraction: np.ndarray
    """f_i per layer, float64 [moe_layers, experts]"""
    layer_mean_prob: np.ndarray
    """P_i per layer, float64 [moe_layers, experts]"""
    pooled_fraction: np.ndarray
    """f_i over all layers' tokens together, float64 [experts]"""
    pooled_mean_prob: np.ndarray
    """P_i over all layers' tokens together, float64 [experts]"""

    @property
    def layer_dot(self) -> np.ndarray:
        """Σ_i f_i · P_i per layer, [moe_layers]."""
        return (self.layer_fraction * self.layer_mean_prob).sum(axis=-1)

    @property
    def pooled_dot(self) -> float:
        """Σ_i f_i · P_i pooled over layers."""
        return float((self.pooled_fraction * self.pooled_mean_prob).sum())

    @property
    def layer_loss(self) -> np.ndarray:
        """α · N · Σ_i f_i · P_i per layer, [moe_layers]."""
        return self.alpha * self.num_experts * self.layer_dot

    @property
    def pooled_loss(self) -> float:
        """α · N · Σ_i f_i · P_i pooled: equals α × transformers' load_balancing_loss_func."""
        return self.alpha * self.num_experts * self.pooled_dot

    @property
    def balanced_loss(self) -> float:
        """The value at perfect balance (f_i = k/N, P_i = 1/N): α · k."""
        return self.alpha * self.experts_per_token


def load_balancing_loss(
    logits: np.ndarray, experts_per_token: int, num_experts: int, alpha: float = 1.0
) -> LoadBalance:
    """f_i, P_i and α · N · Σ f_i · P_i from raw router logits [moe_layers, positions, experts].

    Like transformers, f_i counts the top-k of the softmax (not the experts a family's own rule may
    have picked), and every position counts (no padding mask).
    """
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[-1] != num_experts:
        raise ValueError(f"logits must be [moe_layers, positions, {num_experts}], got shape {logits.shape}")
    layers, positions, _ = logits.shape
    if positions == 0:
        raise ValueError("no positions to compute the load-balancing loss over")
    probs = router_probs(logits)
    chosen = top_k_experts(probs, experts_per_token)
    counts = np.zeros((layers, num_experts), dtype=np.float64)
    for layer in range(layers):
        counts[layer] = np.bincount(chosen[layer].reshape(-1), minlength=num_experts)
    prob_sums = probs.sum(axis=1)
    return LoadBalance(
        alpha=float(alpha),
        num_experts=num_experts,
        experts_per_token=experts_per_token,
        tokens=positions,
        layer_fraction=counts / positions,
        layer_mean_prob=prob_sums / positions,
        pooled_fraction=counts.sum(axis=0) / (layers * positions),
        pooled_mean_prob=prob_sums.sum(axis=0) / (layers * positions),
    )


def concat_routing(traces: Sequence[RouterTrace]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join per-step RouterTraces along the positions axis into (logits, experts, weights)."""
    if not traces:
        raise ValueError("no router traces to join")
    return (
        np.concatenate([trace.logits for trace in traces], axis=1),
        np.concatenate([trace.experts for trace in traces], axis=1),
        np.concatenate([trace.weights for trace in traces], axis=1),
    )
