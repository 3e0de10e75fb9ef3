"""Attention-sink figures, computed once for the attention pane and the demo captions.

The one definition: a head's **sink weight** is the weight its *newest query row* puts on key 0 (the first
cached token). Why the newest row and not the mean over every row of a prefill: it is the row that predicts the
next token, the only row a decode step has (so step 0 and step 40 report the same quantity), and it is free of
the causal mask's bias — prefill row 0 can only look at key 0 (weight 1) and early rows see few keys, which
would inflate a mean with something that is not a sink. Compare it with an even spread, 1 / (position + 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SinkFigures", "even_spread_sink", "sink_figures", "sink_weights"]


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
