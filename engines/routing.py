"""MoE routing rules per model family, applied to the router logits the model returns.

transformers returns raw router logits per MoE layer; which experts ran and with what weights
follows each family's own rule, written out here and checked in tests against the model's gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

SOFTMAX_TOPK_FAMILIES = {"mixtral": True, "qwen2_moe": None, "qwen3_moe": None, "olmoe": None}
"""model_type → renormalise the top-k weights (True always; None: as config.norm_topk_prob says)."""


@dataclass(frozen=True)
class RouterRule:
    """Softmax over all experts, keep the top k, optionally renormalise the kept weights to sum to 1."""

    top_k: int
    renormalise: bool
    family: str

    @property
    def description(self) -> str:
        tail = " → renormalise" if self.renormalise else " (weights not renormalised)"
        return f"{self.family}: softmax over experts → top-{self.top_k}{tail}"


def router_rule(config: Any) -> RouterRule | None:
    """The routing rule of a model config, or None for a family whose rule is not implemented."""
    family = getattr(config, "model_type", "")
    if family not in SOFTMAX_TOPK_FAMILIES:
        return None
    always = SOFTMAX_TOPK_FAMILIES[family]
    renormalise = bool(always) if always is not None else bool(getattr(config, "norm_topk_prob", False))
    return RouterRule(top_k=int(config.num_experts_per_tok), renormalise=renormalise, family=family)


def route(router_logits: torch.Tensor, rule: RouterRule) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and expert indices [..., top_k] for logits [..., experts], highest weight first."""
    probabilities = torch.softmax(router_logits.float(), dim=-1)
    weights, experts = torch.topk(probabilities, rule.top_k, dim=-1)
    if rule.renormalise:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, experts
