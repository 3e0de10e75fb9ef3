"""MoE routing rules per model family, applied to the router logits the model returns.

transformers returns raw router logits per MoE layer; which experts ran and with what weights
follows each family's own router (its `*TopKRouter.forward` in transformers 5.24), written out
here and checked in tests against the router module's own outputs, captured with forward hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

SOFTMAX = "softmax"
"""softmax over all experts → top-k of the probabilities (Mixtral, Qwen-MoE, OLMoE, Jamba)."""
TOPK_SOFTMAX = "topk-softmax"
"""top-k of the logits → softmax over those k (gpt-oss, Granite-MoE)."""
SIGMOID_GROUPED = "sigmoid-grouped"
"""sigmoid scores + correction bias → group-limited top-k → gathered scores (DeepSeek-V3)."""

SOFTMAX_FAMILIES = {
    "mixtral": True,
    "qwen2_moe": None,
    "qwen3_moe": None,
    "qwen3_next": None,
    "olmoe": None,
    "jamba": False,
}
"""model_type → renormalise the top-k weights (True always, False never, None as config.norm_topk_prob says)."""
TOPK_SOFTMAX_FAMILIES = ("gpt_oss", "granitemoe")
SIGMOID_GROUPED_FAMILIES = ("deepseek_v3",)


@dataclass(frozen=True)
class RouterRule:
    """How one family turns router logits into the experts used and their weights."""

    family: str
    top_k: int
    scoring: str = SOFTMAX
    renormalise: bool = False
    num_groups: int = 1
    """DeepSeek-V3: experts are split into this many groups…"""
    topk_groups: int = 1
    """…and only the experts of the best `topk_groups` groups (by the sum of their top-2 scores) compete."""
    scaling: float = 1.0
    """Factor applied to the final weights (DeepSeek-V3's routed_scaling_factor)."""

    @property
    def description(self) -> str:
        if self.scoring == TOPK_SOFTMAX:
            return f"{self.family}: top-{self.top_k} of the logits → softmax over those {self.top_k}"
        if self.scoring == SIGMOID_GROUPED:
            norm = " → renormalise" if self.renormalise else ""
            return (
                f"{self.family}: sigmoid scores + correction bias → best {self.topk_groups} of {self.num_groups} "
                f"groups (sum of each group's top-2) → top-{self.top_k} → weights = sigmoid scores{norm}"
                f" × {self.scaling:g}"
            )
        tail = " → renormalise" if self.renormalise else " (weights not renormalised)"
        return f"{self.family}: softmax over experts → top-{self.top_k}{tail}"


def router_rule(config: Any) -> RouterRule | None:
    """The routing rule of a model config, or None for a family whose rule is not written here."""
    family = getattr(config, "model_type", "")
    top_k = int(getattr(config, "num_experts_per_tok", 0) or 0)
    if family in SOFTMAX_FAMILIES:
        always = SOFTMAX_FAMILIES[family]
        renormalise = always if always is not None else bool(getattr(config, "norm_topk_prob", False))
        return RouterRule(family, top_k, SOFTMAX, renormalise)
    if family in TOPK_SOFTMAX_FAMILIES:
        return RouterRule(family, top_k, TOPK_SOFTMAX)
    if family in SIGMOID_GROUPED_FAMILIES:
        return RouterRule(
            family,
            top_k,
            SIGMOID_GROUPED,
            renormalise=bool(getattr(config, "norm_topk_prob", False)),
            num_groups=int(getattr(config, "n_group", 1) or 1),
            topk_groups=int(getattr(config, "topk_group", 1) or 1),
            scaling=float(getattr(config, "routed_scaling_factor", 1.0) or 1.0),
        )
    return None


def refusal_reason(config: Any, router_class: str | None) -> str:
    """Why routing of this family is not shown, in one sentence for the MoE pane and `--json`."""
    family = getattr(config, "model_type", "?")
    module = f" ({router_class})" if router_class else ""
    return (
        f"routing rule of model type '{family}'{module} is not written in llmscope yet, so which experts ran "
        "would be a guess; supported: "
        + ", ".join(sorted([*SOFTMAX_FAMILIES, *TOPK_SOFTMAX_FAMILIES, *SIGMOID_GROUPED_FAMILIES]))
    )


def route(
    router_logits: torch.Tensor, rule: RouterRule, correction_bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and expert indices [..., top_k] for logits [..., experts], highest weight first.

    `correction_bias` [..., experts] (DeepSeek-V3's e_score_correction_bias, one row per MoE layer) only
    changes which experts are picked, never their weights.
    """
    logits = router_logits.float()
    if rule.scoring == TOPK_SOFTMAX:
        top_logits, experts = torch.topk(logits, rule.top_k, dim=-1)
        weights = torch.softmax(top_logits, dim=-1)
    elif rule.scoring == SIGMOID_GROUPED:
        weights, experts = _sigmoid_grouped(logits, rule, correction_bias)
    else:
        probabilities = torch.softmax(logits, dim=-1)
        weights, experts = torch.topk(probabilities, rule.top_k, dim=-1)
        if rule.renormalise:
            weights = weights / weights.sum(dim=-1, keepdim=True)
    order = torch.argsort(weights, dim=-1, descending=True, stable=True)
    return weights.gather(-1, order), experts.gather(-1, order)


def _sigmoid_grouped(
    logits: torch.Tensor, rule: RouterRule, correction_bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepSeek-V3's DeepseekV3TopkRouter.forward, over any leading shape [..., experts]."""
    scores = logits.sigmoid()
    biased = scores if correction_bias is None else scores + correction_bias.float().unsqueeze(-2)
    experts_count = logits.shape[-1]
    per_group = experts_count // rule.num_groups
    grouped = biased.reshape(*biased.shape[:-1], rule.num_groups, per_group)
    group_scores = grouped.topk(min(2, per_group), dim=-1).values.sum(dim=-1)
    best_groups = torch.topk(group_scores, rule.topk_groups, dim=-1).indices
    group_mask = torch.zeros_like(group_scores).scatter_(-1, best_groups, 1.0)
    expert_mask = group_mask.unsqueeze(-1).expand(*group_mask.shape, per_group).reshape(biased.shape)
    candidates = biased.masked_fill(expert_mask == 0, float("-inf"))
    experts = torch.topk(candidates, rule.top_k, dim=-1).indices
    weights = scores.gather(-1, experts)
    if rule.renormalise:
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
    return weights * rule.scaling, experts
