"""Pure numpy arithmetic behind the attention pane: input checks, max-pooling, normalisation, sinks, KV groups.

Kept free of Rich and Textual so every number the pane draws can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from llmscope.attention_stats import even_spread_sink, sink_weights

Normalization = Literal["row", "global"]
"""How weights map to colour: 'row' scales each query row by its own max, 'global' by the max of everything shown."""


@dataclass(frozen=True, eq=False)
class AttentionData:
    """One step's attention as the pane receives it; compared by identity so caches can key on it."""

    weights: np.ndarray
    """blocks.{L}.attn.pattern rows, float32 [layers, heads, query_rows, keys]"""
    query_start: int
    """Sequence position of query row 0."""
    token_labels: tuple[str, ...]
    """Display text of every key position 0..keys-1."""
    num_kv_heads: int
    step_index: int | None = None

    def __post_init__(self) -> None:
        if self.weights.ndim != 4:
            raise ValueError(f"attention must be [layers, heads, query_rows, keys], got shape {self.weights.shape}")
        layers, heads, rows, keys = self.weights.shape
        if min(layers, heads, rows, keys) < 1:
            raise ValueError(f"attention has an empty axis: shape {self.weights.shape}")
        if not 1 <= self.num_kv_heads <= heads or heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads={self.num_kv_heads} must divide heads={heads}")
        if not 0 <= self.query_start <= keys - rows:
            raise ValueError(f"query_start={self.query_start} with {rows} rows does not fit {keys} keys")
        if len(self.token_labels) != keys:
            raise ValueError(f"{len(self.token_labels)} token labels for {keys} keys")

    @property
    def num_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def num_query_rows(self) -> int:
        return int(self.weights.shape[2])

    @property
    def num_keys(self) -> int:
        return int(self.weights.shape[3])

    @property
    def is_single_row(self) -> bool:
        """True for a decode step: one new query row over the whole context."""
        return self.num_query_rows == 1

    def query_position(self, row: int) -> int:
        """Sequence position of query row `row`."""
        return self.query_start + row

    def label(self, position: int) -> str:
        return self.token_labels[position]

    @cached_property
    def max_weight(self) -> float:
        """The largest weight of the step (the 'global' scale of the grid)."""
        return float(self.weights.max())

    @cached_property
    def sinks(self) -> np.ndarray:
        """Sink weight per (layer, head): the newest query row's weight on key 0 (llmscope.attention_stats)."""
        return sink_fractions(self.weights)


def bin_starts(length: int, bins: int) -> np.ndarray:
    """First index of each of `bins` near-equal bins over `length` items (repeats when bins > length)."""
    return (np.arange(bins, dtype=np.int64) * length) // bins


def pool_max(values: np.ndarray, bins: int, axis: int = -1) -> np.ndarray:
    """Max over each of `bins` near-equal slices along `axis`; with more bins than items, items repeat.

    Max (not mean) keeps a single strong weight visible after shrinking, so a sharp head stays sharp.
    """
    return np.maximum.reduceat(values, bin_starts(values.shape[axis], bins), axis=axis)


def normalize(weights: np.ndarray, mode: Normalization) -> np.ndarray:
    """Scale weights into [0, 1]: 'row' divides each last-axis row by its max, 'global' divides by the array max."""
    weights = np.asarray(weights, dtype=np.float32)
    if mode == "row":
        scale = weights.max(axis=-1, keepdims=True)
    elif mode == "global":
        scale = np.asarray(weights.max())
    else:
        raise ValueError(f"normalization must be 'row' or 'global', not {mode!r}")
    return np.divide(weights, scale, out=np.zeros_like(weights), where=scale > 0)


def pool_mean(values: np.ndarray, bins: int, axis: int = -1) -> np.ndarray:
    """Mean over each of `bins` near-equal slices along `axis` (items repeat when bins > length)."""
    length = values.shape[axis]
    starts = bin_starts(length, bins)
    counts = np.diff(np.append(starts, length))
    sums = np.add.reduceat(values, starts, axis=axis)
    shape = [1] * values.ndim
    shape[axis] = bins
    return sums / np.maximum(counts, 1).reshape(shape)


def grid_pixels(
    weights: np.ndarray, pixel_rows: int, pixel_cols: int, mode: Normalization, *, global_max: float | None = None
) -> np.ndarray:
    """Each head's [query_rows, keys] matrix shrunk to [pixel_rows, pixel_cols] and scaled into [0, 1].

    Keys are max-pooled (a single sharp key stays visible); query rows are then averaged (how many rows look
    there). 'row' first scales each query row by its own max; 'global' divides by `global_max` (default: the
    largest weight in `weights`), one scale for every head. Works on any leading shape, e.g. one layer.
    """
    key_pooled = pool_max(np.asarray(weights, dtype=np.float32), pixel_cols, axis=-1)
    if mode == "row":
        key_pooled = normalize(key_pooled, "row")  # bins cover every key, so the pooled row max is the row max
    pixels = pool_mean(key_pooled, pixel_rows, axis=-2)
    if mode == "global":
        scale = float(np.max(weights)) if global_max is None else global_max
        pixels = pixels / scale if scale > 0 else np.zeros_like(pixels)
    return pixels.astype(np.float32)


def sink_fractions(weights: np.ndarray) -> np.ndarray:
    """Sink weight per (layer, head): the newest query row's weight on key 0, float [layers, heads].

    One definition for the pane and the demo captions, explained in llmscope.attention_stats.
    """
    return sink_weights(weights)


def uniform_sink_baseline(query_start: int, query_rows: int) -> float:
    """Key-0 weight the newest query row would give if it spread attention evenly: 1/(position+1)."""
    return even_spread_sink(query_start + query_rows - 1)


def kv_groups(num_heads: int, num_kv_heads: int) -> list[tuple[int, ...]]:
    """Query heads grouped by the KV head they share (GQA): heads h, h' share iff h // size == h' // size."""
    size = num_heads // num_kv_heads
    return [tuple(range(group * size, (group + 1) * size)) for group in range(num_kv_heads)]


def kv_group_of(head: int, num_heads: int, num_kv_heads: int) -> int:
    """Index of the KV head that query head `head` reads."""
    return head // (num_heads // num_kv_heads)


def top_keys(row: np.ndarray, count: int) -> list[tuple[int, float]]:
    """The `count` largest weights of one query row as (key, weight), strongest first, ties by position."""
    order = np.lexsort((np.arange(row.shape[0]), -row))[:count]
    return [(int(key), float(row[key])) for key in order]


def scroll_to_include(offset: int, cursor: int, visible: int, total: int) -> int:
    """Smallest move of a window start so that `cursor` is inside a window of `visible` items out of `total`."""
    visible = max(1, visible)
    if cursor < offset:
        offset = cursor
    elif cursor >= offset + visible:
        offset = cursor - visible + 1
    return max(0, min(offset, max(0, total - visible)))
