"""The routing arrays behind the MoE pane and the statistics derived from them once per update.

No Textual or Rich here: plain numpy, checked for consistent shapes when built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmscope.moe_stats import LoadBalance, expert_load, load_balancing_loss


class RoutingData:
    """The arrays behind the pane and the statistics derived from them once per `show()`."""

    def __init__(
        self,
        *,
        logits: np.ndarray,
        experts: np.ndarray,
        weights: np.ndarray,
        token_labels: Sequence[str],
        layer_indices: Sequence[int],
        num_experts: int,
        experts_per_token: int,
        alpha: float,
        rule: str,
    ) -> None:
        if logits.ndim != 3 or experts.shape != weights.shape or experts.shape[:2] != logits.shape[:2]:
            raise ValueError(
                f"routing shapes disagree: logits {logits.shape}, experts {experts.shape}, weights {weights.shape}"
            )
        if len(layer_indices) != logits.shape[0] or logits.shape[2] != num_experts:
            raise ValueError(
                f"{len(layer_indices)} layer indices and {num_experts} experts do not fit logits {logits.shape}"
            )
        self.logits, self.experts, self.weights = logits, experts, weights
        self.token_labels = list(token_labels)
        self.layer_indices = tuple(layer_indices)
        self.num_experts, self.experts_per_token, self.alpha, self.rule = num_experts, experts_per_token, alpha, rule
        self.load = expert_load(experts, num_experts)
        self.balance: LoadBalance = load_balancing_loss(logits, experts_per_token, num_experts, alpha)

    @property
    def positions(self) -> int:
        return self.logits.shape[1]

    @property
    def layers(self) -> int:
        return self.logits.shape[0]
