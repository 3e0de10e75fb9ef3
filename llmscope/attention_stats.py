"""Attention-sink and induction figures, computed once for the attention pane and the demo captions.

The one definition: a head's **sink weight** is the weight its *newest query row* puts on key 0 (the first
cached token). Why the newest row and not the mean over every row of a prefill: it is the row that predicts the
next token, the only row a decode step has (so step 0 and step 40 report the same quantity), and it is free of
the causal mask's bias — prefill row 0 can only look at key 0 (weight 1) and early rows see few keys, which
would inflate a mean with something that is not a sink. Compare it with an even spread, 1 / (position + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RECENT_KEYS",
    "SINK_KEYS",
    "HeadFocus",
    "RowShares",
    "SinkFigures",
    "copied_tokens",
    "even_spread_sink",
    "head_focus",
    "induction_scores",
    "induction_target",
    "bin_sums",
    "row_shares",
    "strongest_keys",
    "sink_figures",
    "sink_weights",
]


def sink_weights(attention: np.ndarray) -> np.ndarray:
    """Weight of the newest query row on key 0, per (layer, head): float64 [layers, heads].

    `attention` is blocks.{L}.attn.pattern rows, [layers, heads, query_rows, keys]; the last row is the newest.
    """
    return np.asarray(attention[..., -1, 0], dtype=np.float64)


def even_spread_sink(position: int) -> float:
    """Key-0 weight of a query at `position` that spread its attention evenly over the position + 1 keys it sees."""
    return 1.0 / (position + 1)


@dataclass(frozen=True)
class SinkFigures:
    """The sink weights summed up: mean over every head, and the strongest head."""

    mean: float
    strongest: float
    layer: int
    head: int
    """Layer and head of the strongest sink (the first one on ties)."""


def sink_figures(attention: np.ndarray) -> SinkFigures:
    """Mean and strongest sink weight over all (layer, head) pairs, and where the strongest is."""
    weights = sink_weights(attention)
    layer, head = np.unravel_index(int(np.argmax(weights)), weights.shape)
    return SinkFigures(float(weights.mean()), float(weights.max()), int(layer), int(head))


# ------------------------------------------------------------------------------------------- induction
# An induction head copies a pattern: at a token seen before, it attends to the token that FOLLOWED the earlier
# occurrence, so the model can predict that token again. The detector (CONCEPTS.md §3.12): per head, the mean
# weight from each query whose token occurred earlier to the key right after that earlier occurrence.


def induction_target(ids: Sequence[int], position: int) -> int | None:
    """The key an induction head would attend to from `position`: right after the latest earlier copy of its token.

    None when the token has no earlier occurrence (or the copy is the token just before, whose successor is the
    query itself).
    """
    token = ids[position]
    for earlier in range(position - 1, -1, -1):
        if ids[earlier] == token:
            target = earlier + 1
            return target if target < position else None
    return None


def induction_scores(attention: np.ndarray, query_start: int, ids: Sequence[int]) -> tuple[np.ndarray, int]:
    """Per (layer, head), the mean weight from each query row with a target to its target; and how many rows had one.

    `attention` is [layers, heads, query_rows, keys] with row r at position query_start + r; `ids` are the tokens
    at every key position. All zeros (and 0) when no row's token occurred earlier.
    """
    layers, heads = attention.shape[:2]
    total = np.zeros((layers, heads), dtype=np.float64)
    count = 0
    for row in range(attention.shape[2]):
        target = induction_target(ids, query_start + row)
        if target is not None:
            total += attention[:, :, row, target]
            count += 1
    return (total / count if count else total), count


def copied_tokens(prompt_ids: Sequence[int], generated_ids: Sequence[int]) -> tuple[int, int]:
    """(copies, chances): generated tokens equal to what followed the latest earlier copy of the token before them.

    A chance is a generated token whose preceding token (the prompt's last, for the first) occurred earlier.
    """
    ids = [*prompt_ids, *generated_ids]
    copies = chances = 0
    for position in range(max(1, len(prompt_ids)), len(ids)):
        target = induction_target(ids, position - 1)
        if target is not None:
            chances += 1
            copies += ids[target] == ids[position]
    return copies, chances


@dataclass(frozen=True)
class HeadFocus:
    """Where one head's newest query row puts its largest weight, and where an induction head would look."""

    query: int
    """Position of the newest query."""
    strongest_key: int
    strongest_weight: float
    target: int | None
    """The induction target of the query (None when its token has no earlier copy)."""
    target_weight: float | None

    @property
    def is_induction(self) -> bool:
        """True when the strongest key is the induction target."""
        return self.target is not None and self.strongest_key == self.target


def head_focus(attention: np.ndarray, query_start: int, ids: Sequence[int], layer: int, head: int) -> HeadFocus:
    """The newest query row of (layer, head): its strongest key and the induction target's weight."""
    row = np.asarray(attention[layer, head, -1], dtype=np.float64)
    query = query_start + attention.shape[2] - 1
    strongest = int(np.argmax(row))
    target = induction_target(ids, query)
    return HeadFocus(query, strongest, float(row[strongest]), target, None if target is None else float(row[target]))


# ------------------------------------------------------------------------------------------- long rows
# At long context a row has thousands of keys: the pane bins them (sums, so a bin reads as the share of the row's
# attention it holds) and names the two places attention piles up: the first few keys (sinks) and the recent ones.

SINK_KEYS = 4
"""Keys counted as the sink region: the first few tokens, where attention sinks form."""
RECENT_KEYS = 64
"""Keys counted as the recent window: the query's last N keys (itself included)."""


def bin_sums(row: np.ndarray, keys_per_bin: int) -> np.ndarray:
    """Sums of consecutive bins of `keys_per_bin` keys along the last axis, the last bin possibly shorter.

    Bin j holds keys j·k … (j+1)·k − 1, so a bin's value is the share of the row's attention those keys got.
    Linear in the number of keys.
    """
    keys = row.shape[-1]
    return np.add.reduceat(np.asarray(row, dtype=np.float64), np.arange(0, keys, max(1, keys_per_bin)), axis=-1)


@dataclass(frozen=True)
class RowShares:
    """Where one query row's attention went, as sums of its weights (with a learned sink, they add up to 1)."""

    first: float
    """Sum over the first `first_keys` keys (the sink region)."""
    recent: float
    """Sum over the last `recent_keys` keys the query sees (its own position included)."""
    learned_sink: float | None
    """Weight given to a learned sink instead of any key (gpt-oss), None for models without one."""
    first_keys: int
    recent_keys: int


def row_shares(
    row: np.ndarray,
    position: int,
    *,
    learned_sink: float | None = None,
    first_keys: int = SINK_KEYS,
    recent_keys: int = RECENT_KEYS,
) -> RowShares:
    """Sink-region and recent-window shares of the row of a query at `position` (keys after it are masked)."""
    visible = position + 1
    first_keys, recent_keys = min(first_keys, visible), min(recent_keys, visible)
    return RowShares(
        float(np.sum(row[:first_keys], dtype=np.float64)),
        float(np.sum(row[visible - recent_keys : visible], dtype=np.float64)),
        learned_sink,
        first_keys,
        recent_keys,
    )


def strongest_keys(row: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The `count` largest weights of a row as (key, weight), strongest first, ties by position.

    Linear in the row (argpartition), then a sort of the few kept, so an 8,192-key row costs no more than a pass.
    """
    keys = row.shape[0]
    count = max(0, min(count, keys))
    if count == 0:
        return []
    if count < keys:
        threshold = np.partition(row, keys - count)[keys - count]
        above = np.flatnonzero(row > threshold)
        tied = np.flatnonzero(row == threshold)[: count - above.size]  # the earliest of the tied keys
        candidates = np.concatenate([above, tied])
    else:
        candidates = np.arange(keys)
    order = candidates[np.lexsort((candidates, -row[candidates]))][:count]
    return [(int(key), float(row[key])) for key in order]
