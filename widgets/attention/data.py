"""Pure numpy arithmetic behind the attention pane: input checks, key binning (sums), normalisation, sinks, KV groups.

Kept free of Rich and Textual so every number the pane draws can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from llmscope.attention_stats import even_spread_sink, sink_weights, strongest_keys
from llmscope.panes import AttentionContent

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
    learned_sink: np.ndarray | None = None
    """Weight each row gave a learned sink instead of any key (gpt-oss), float32 [layers, heads, query_rows]."""
    weightless: Mapping[int, str] = field(default_factory=dict)
    """Layers without softmax attention, with their kind ('ssm', 'linear'): their zero rows are not weights."""

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
        if self.learned_sink is not None and self.learned_sink.shape != (layers, heads, rows):
            raise ValueError(
                f"sink weights {self.learned_sink.shape} do not match attention rows {(layers, heads, rows)}"
            )

    @classmethod
    def from_content(cls, content: AttentionContent) -> AttentionData:
        """The pane's data from the App's record: weights as float32, each weightless layer with its kind."""
        notes = content.layer_notes
        sink = content.attention_sink
        return cls(
            np.asarray(content.attention, dtype=np.float32),
            int(content.query_start),
            tuple(content.token_labels),
            int(content.num_kv_heads),
            content.step_index,
            learned_sink=None if sink is None else np.asarray(sink, dtype=np.float32),
            weightless={
                layer: weightless_kind(notes[layer] if layer < len(notes) else "")
                for layer in content.weightless_layers
            },
        )

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

    @property
    def has_learned_sink(self) -> bool:
        return self.learned_sink is not None

    @cached_property
    def sinks(self) -> np.ndarray:
        """Sink weight per (layer, head) of the newest query row: the learned sink's weight where the model has one
        (gpt-oss), else the weight on key 0 (llmscope.attention_stats)."""
        if self.learned_sink is not None:
            return np.asarray(self.learned_sink[..., -1], dtype=np.float64)
        return sink_fractions(self.weights)

    @cached_property
    def attention_layers(self) -> np.ndarray:
        """Indices of the layers that have softmax weights (every layer but the weightless ones)."""
        return np.array([layer for layer in range(self.num_layers) if layer not in self.weightless], dtype=np.int64)

    @cached_property
    def mean_sink(self) -> float:
        """Mean sink weight over the heads of layers that have attention (an SSM layer's zeros are not sinks)."""
        layers = self.attention_layers
        return float(self.sinks[layers].mean()) if layers.size else 0.0


def weightless_kind(note: str) -> str:
    """The short kind name of a layer without softmax weights, from its note ('ssm layer: …' → 'ssm')."""
    kind = note.split(" layer", 1)[0].strip() if " layer" in note else ""
    return kind or "no softmax"


def bin_starts(length: int, bins: int) -> np.ndarray:
    """First index of each of `bins` near-equal bins over `length` items (repeats when bins > length)."""
    return (np.arange(bins, dtype=np.int64) * length) // bins


def pool_max(values: np.ndarray, bins: int, axis: int = -1) -> np.ndarray:
    """Max over each of `bins` near-equal slices along `axis`; with more bins than items, items repeat.

    Max (not mean) keeps a single strong weight visible after shrinking, so a sharp head stays sharp.
    """
    return np.maximum.reduceat(values, bin_starts(values.shape[axis], bins), axis=axis)


def pool_sum(values: np.ndarray, bins: int, axis: int = -1) -> np.ndarray:
    """Sum over each of `bins` near-equal slices along `axis` (a bin's share of the row); with more bins than
    items, items repeat. Linear in the items."""
    return np.add.reduceat(values, bin_starts(values.shape[axis], bins), axis=axis)


def keys_per_bin(keys: int, bins: int) -> float:
    """How many keys one of `bins` near-equal bins holds on average (at least 1)."""
    return max(1.0, keys / max(1, bins))


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

    Keys are summed per bin (a pixel is the share of the row its keys got, the same aggregate as the zoom's
    columns); query rows are then averaged. 'row' scales each query row by its largest bin; 'global' divides by
    `global_max` (default: the largest bin in `weights`), one scale for every head. Works on any leading shape.
    With more pixel columns than keys a key spans several columns (repeated, never summed twice into one).
    """
    weights = np.asarray(weights, dtype=np.float32)
    keys = weights.shape[-1]
    if pixel_cols >= keys:
        key_pooled = weights[..., bin_starts(keys, pixel_cols)]
    else:
        key_pooled = pool_sum(weights, pixel_cols, axis=-1)
    if mode == "row":
        key_pooled = normalize(key_pooled, "row")
    pixels = pool_mean(key_pooled, pixel_rows, axis=-2)
    if mode == "global":
        scale = float(np.max(key_pooled)) if global_max is None else global_max
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
    """The `count` largest weights of one query row as (key, weight), strongest first, ties by position (linear)."""
    return strongest_keys(row, count)


def scroll_to_include(offset: int, cursor: int, visible: int, total: int) -> int:
    """Smallest move of a window start so that `cursor` is inside a window of `visible` items out of `total`."""
    visible = max(1, visible)
    if cursor < offset:
        offset = cursor
    elif cursor >= offset + visible:
        offset = cursor - visible + 1
    return max(0, min(offset, max(0, total - visible)))
