"""The logit lens of one forward: what each layer's residual stream would predict if the model stopped there.

Each layer's residual stream at the last position goes through the model's own final norm and unembedding
(engines/lens.py); this module holds the plain numpy result and the figures drawn from it, so replays,
the CLI and the Layers pane need no torch. Layer 0 is the embedding output; layer L is after decoder layer L.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

LENS_TOP_K = 10
"""Candidates kept per layer: what the Layers pane lists for a selected cell, and the buckets of the lane KL."""


@dataclass(frozen=True)
class LogitLens:
    """Per layer (embeddings first, the last layer equal to the model's output): top candidates and entropy.

    `chosen_rank` / `chosen_prob` describe the step's chosen token (`resolved`); they come from the full
    distributions in `log_probs` while the engine's step is the newest, and from `choices` (every token ranked
    so far: a force or a re-sample may pick one again) once those are dropped to keep memory bounded.
    """

    top_ids: np.ndarray
    """int64 [layers + 1, k]: most probable next tokens per layer, most probable first."""
    top_probs: np.ndarray
    """float32 [layers + 1, k]: their probabilities under that layer's lens distribution."""
    entropy: np.ndarray
    """float32 [layers + 1]: Shannon entropy of each layer's lens distribution, in nats."""
    chosen_rank: np.ndarray | None = None
    """int64 [layers + 1]: rank of the chosen token per layer (1: the layer's top candidate); None if unknown."""
    chosen_prob: np.ndarray | None = None
    """float32 [layers + 1]: probability of the chosen token per layer; None if unknown."""
    choices: Mapping[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)
    """Token id → (rank, probability) per layer, for every token this step's lens has ranked."""
    log_probs: np.ndarray | None = field(default=None, compare=False, repr=False)
    """float32 [layers + 1, vocab]: the full lens log-distributions, held only while the step is the newest."""

    @property
    def num_rows(self) -> int:
        """Rows of the lens: the embedding output plus one per decoder layer."""
        return int(self.top_ids.shape[0])

    def resolved(self, token_id: int) -> LogitLens:
        """This lens describing `token_id`: ranked from the full distributions, or from an earlier ranking of it.

        A token never ranked while the full distributions were held gets no rank (None) rather than a guess.
        """
        if self.log_probs is not None:
            chosen = self.log_probs[:, token_id]
            rank = ((self.log_probs > chosen[:, None]).sum(axis=1) + 1).astype(np.int64)
            prob = np.exp(chosen).astype(np.float32)
            choices = {**self.choices, int(token_id): (rank, prob)}
            return replace(self, chosen_rank=rank, chosen_prob=prob, choices=choices)
        known = self.choices.get(int(token_id))
        return replace(
            self, chosen_rank=None if known is None else known[0], chosen_prob=None if known is None else known[1]
        )

    def without_full(self) -> LogitLens:
        """This lens without its full distributions (ranks already made stay in `choices`)."""
        return self if self.log_probs is None else replace(self, log_probs=None)

    def first_top1_layer(self) -> int | None:
        """The earliest row where the chosen token is already the top candidate (None: never before the output)."""
        if self.chosen_rank is None:
            return None
        hits = np.flatnonzero(self.chosen_rank == 1)
        return int(hits[0]) if hits.size else None

    def settled_layer(self) -> int | None:
        """The row from which the chosen token stays the top candidate up to the output (None: it is not top-1)."""
        if self.chosen_rank is None or self.chosen_rank[-1] != 1:
            return None
        row = self.num_rows - 1
        while row > 0 and self.chosen_rank[row - 1] == 1:
            row -= 1
        return row


def from_log_probs(log_probs: np.ndarray, k: int = LENS_TOP_K) -> LogitLens:
    """Top-k and entropy of every row of float32 [rows, vocab] natural-log probabilities (full rows kept)."""
    k = min(k, log_probs.shape[1])
    top = np.argpartition(-log_probs, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(log_probs, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    probs = np.exp(log_probs)
    entropy = -(probs * np.where(probs > 0, log_probs, 0.0)).sum(axis=1)
    return LogitLens(
        top_ids=top.astype(np.int64),
        top_probs=np.take_along_axis(probs, top, axis=1).astype(np.float32),
        entropy=entropy.astype(np.float32),
        log_probs=log_probs.astype(np.float32, copy=False),
    )


def bucketed_kl(first: LogitLens, second: LogitLens) -> np.ndarray:
    """Per-row KL(first ‖ second) in nats over the tokens both lenses kept, plus one bucket for all others.

    Both lenses know their exact probability of every shared top-k token, and so the exact mass of the rest;
    KL over such a grouping can only be lower than over the full vocabulary (the data-processing inequality),
    so this is a lower bound of the true KL, exact when both put all their mass on the shared tokens.
    """
    rows = min(first.num_rows, second.num_rows)
    result = np.zeros(rows, dtype=np.float64)
    for row in range(rows):
        p_map = dict(zip(first.top_ids[row].tolist(), first.top_probs[row].tolist(), strict=True))
        q_map = dict(zip(second.top_ids[row].tolist(), second.top_probs[row].tolist(), strict=True))
        shared = sorted(set(p_map) & set(q_map))
        p = np.array([p_map[token] for token in shared] + [0.0], dtype=np.float64)
        q = np.array([q_map[token] for token in shared] + [0.0], dtype=np.float64)
        p[-1], q[-1] = max(0.0, 1.0 - p[:-1].sum()), max(0.0, 1.0 - q[:-1].sum())
        mask = p > 0
        result[row] = float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], 1e-30)))))
    return np.maximum(result, 0.0)
