"""Pure Rich renderables for the KV-cache pane: summary, per-layer bars, growth chart, what-if table.

Each takes plain data (KVStats, KVEstimate, ints) and styles chosen by the widget from the theme,
so they render the same in a test console as on screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from llmscope.format import format_bytes, format_bytes_exact, format_bytes_per_element
from llmscope.kvcalc import KVEstimate
from llmscope.trace import KVLayerStats, KVStats

EIGHTHS = " ▁▂▃▄▅▆▇█"
"""Block characters from empty to full, one eighth of a cell apart."""


@dataclass(frozen=True)
class KVStyles:
    """Theme-derived styles the widget hands to its renderables (defaults suit a plain test console)."""

    keys: Style = Style(color="blue")
    values: Style = Style(color="magenta")
    growth: Style = Style(color="cyan")
    muted: Style = Style(dim=True)
    good: Style = Style(color="green", bold=True)
    warn: Style = Style(color="yellow", bold=True)
    heading: Style = Style(bold=True)


def formula_check(kv: KVStats) -> tuple[bool, str]:
    """Whether measured bytes equal the formula, and if not a one-line reason read from the shapes."""
    measured, formula = kv.total_bytes, kv.formula_bytes
    if measured == formula:
        return True, "matches the measured bytes"
    difference = measured - formula
    sequence_lengths = {layer.key_shape[2] for layer in kv.layers if len(layer.key_shape) == 4}
    if len(kv.layers) < kv.num_layers:
        reason = f"only {len(kv.layers)} of {kv.num_layers} layers hold a cache of their own"
    elif difference > 0 and sequence_lengths and max(sequence_lengths) > kv.tokens:
        reason = f"the cache holds {max(sequence_lengths):,} slots for {kv.tokens:,} tokens (pre-allocated)"
    elif difference < 0 and sequence_lengths and min(sequence_lengths) < kv.tokens:
        reason = f"some layers keep only the last {min(sequence_lengths):,} tokens (sliding window)"
    else:
        reason = "the cache tensors are shaped differently from the config"
    sign = "+" if difference > 0 else "−"
    return False, f"measured is {sign}{format_bytes(abs(difference))}: {reason}"


class KVSummary:
    """Totals, bytes per token, and the formula with this model's numbers next to the measured bytes."""

    def __init__(self, kv: KVStats, *, step: int, styles: KVStyles = KVStyles()) -> None:
        self.kv = kv
        self.step = step
        self.styles = styles

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        kv, styles = self.kv, self.styles
        dtype = kv.layers[0].dtype if kv.layers else "?"
        per_token = kv.total_bytes / kv.tokens if kv.tokens else 0.0
        yield Text.assemble(
            ("KV cache ", styles.heading),
            (
                f"after step {self.step} · {kv.tokens:,} tokens · {dtype}, "
                f"{format_bytes_per_element(kv.bytes_per_element)} per number",
                styles.muted,
            ),
        )
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style=styles.muted, no_wrap=True)
        grid.add_column()
        grid.add_row(
            "measured",
            Text.assemble(
                (format_bytes(kv.total_bytes), styles.heading),
                (f" ({format_bytes_exact(kv.total_bytes)}) in {len(kv.layers)} layers", styles.muted),
            ),
        )
        grid.add_row(
            "per token",
            Text.assemble(
                (format_bytes(per_token), styles.heading),
                (f" ({format_bytes_exact(per_token)}): what every new token adds", styles.muted),
            ),
        )
        matches, note = formula_check(kv)
        check = Text.assemble(
            ("✓ " if matches else "≠ ", styles.good if matches else styles.warn),
            (note, styles.muted if matches else styles.warn),
        )
        formula = Text(kv.formula_text())
        if options.max_width >= len(formula) + len(check) + 12:
            grid.add_row("formula", Text.assemble(formula, "  ", check))
        else:
            grid.add_row("formula", formula)
            grid.add_row("", check)
        yield grid


class LayerBytesChart:
    """One column per layer, keys stacked under values, so 30+ layers fit in one row of bars."""

    def __init__(self, kv: KVStats, *, height: int = 4, styles: KVStyles = KVStyles()) -> None:
        self.kv = kv
        self.height = max(2, height)
        self.styles = styles

    @property
    def layer_bytes(self) -> list[int]:
        """Bytes of keys plus values per cached layer, in layer order (they sum to the measured total)."""
        return [layer.nbytes for layer in self.kv.layers]

    def _groups(self, width: int) -> tuple[list[tuple[int, int]], int, int]:
        """(first, last) layer of each column, bar width and gap, given the columns available."""
        count = len(self.kv.layers)
        slot = width // max(1, count)
        if slot >= 3:
            return [(index, index) for index in range(count)], 2, 1
        if slot >= 1:
            return [(index, index) for index in range(count)], 1, 1 if slot == 2 else 0
        per_group = math.ceil(count / max(1, width))
        groups = [(start, min(start + per_group, count) - 1) for start in range(0, count, per_group)]
        return groups, 1, 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        kv, styles = self.kv, self.styles
        if not kv.layers:
            yield Text("No layer holds a cache yet.", styles.muted)
            return
        axis_width = 10
        groups, bar_width, gap = self._groups(max(8, options.max_width - axis_width))
        layer_sizes = self.layer_bytes
        key_share = [layer.nbytes and _key_bytes(layer) / layer.nbytes for layer in kv.layers]
        column_values = [sum(layer_sizes[a : b + 1]) / (b - a + 1) for a, b in groups]
        column_key_share = [sum(key_share[a : b + 1]) / (b - a + 1) for a, b in groups]
        peak = max(column_values) or 1
        eighths_total = self.height * 8
        for row in range(self.height):
            label = format_bytes(peak) if row == 0 else ""
            line = Text.assemble((f"{label:>{axis_width - 1}} ", styles.muted))
            row_floor = (self.height - 1 - row) * 8  # eighths below this row
            for value, share in zip(column_values, column_key_share):
                filled = round(value / peak * eighths_total)
                glyph, style = self._cell(filled - row_floor, round(filled * share) - row_floor)
                line.append(glyph * bar_width, style)
                line.append(" " * gap)
            yield line
        yield self._axis(groups, bar_width + gap, axis_width)
        first = kv.layers[0]
        same = len(set(layer_sizes)) == 1
        if same:
            each = f"each layer {format_bytes(layer_sizes[0])}"
        else:
            each = f"layers hold {format_bytes(min(layer_sizes))} to {format_bytes(max(layer_sizes))}"
        yield Text.assemble(("■ keys", styles.keys), ("  ■ values", styles.values), (f"  ·  {each}", styles.muted))
        kinds = {layer.kind for layer in kv.layers}
        if kinds <= {"full"}:
            where = "per layer" if same else f"in layer {first.layer}"
            yield Text(f"K and V {where}: {list(first.key_shape)} = [batch, kv_heads, seq, head_dim]", styles.muted)
        else:
            for layer in _one_layer_per_kind(kv.layers):
                yield Text(f"layer {layer.layer} ({layer_description(layer)}): {cache_shapes(layer)}", styles.muted)

    def _cell(self, filled: int, keys: int) -> tuple[str, Style]:
        """Glyph and style of one bar cell, given the eighths filled and the eighths of keys above its floor.

        Keys sit at the bottom of a bar, values on top; where the split falls inside a cell, the
        glyph's lower part is drawn in the keys colour over a values-coloured background.
        """
        filled, keys = min(8, max(0, filled)), min(8, max(0, keys))
        if keys == 0:
            return EIGHTHS[filled], self.styles.values
        if keys == 8 or filled == keys:
            return EIGHTHS[keys], self.styles.keys
        return EIGHTHS[keys], Style(color=self.styles.keys.color, bgcolor=self.styles.values.color)

    def _axis(self, groups: list[tuple[int, int]], slot: int, axis_width: int) -> Text:
        """Layer numbers under the bars, spaced so they never collide."""
        cells = [" "] * (len(groups) * slot + 6)
        next_free = 0
        for column, (first, _) in enumerate(groups):
            label = str(first)
            start = column * slot
            if start >= next_free and (first % 5 == 0 or column == len(groups) - 1):
                cells[start : start + len(label)] = list(label)
                next_free = start + len(label) + 1
        return Text(f"{'layer':>{axis_width - 1}} " + "".join(cells).rstrip(), self.styles.muted)


def _key_bytes(layer: KVLayerStats) -> int:
    """Bytes of the key tensor alone (keys and values share one dtype); 0 for a layer that holds only states."""
    elements = math.prod(layer.key_shape) if layer.key_shape else 0
    values = math.prod(layer.value_shape) if layer.value_shape else 0
    return round(layer.nbytes * elements / (elements + values)) if elements + values else 0


def layer_description(layer: KVLayerStats) -> str:
    """A layer's cache kind in words, with its window when it has one."""
    if layer.kind == "sliding" and layer.window:
        return f"sliding window {layer.window}: keeps at most {layer.window - 1} tokens between steps"
    return {
        "full": "full attention",
        "mla": "MLA: one compressed latent per token",
        "ssm": "SSM: fixed-size states, no keys",
        "linear": "linear attention: fixed-size states, no keys",
        "hybrid": "attention and SSM states",
    }.get(layer.kind, layer.kind)


def cache_shapes(layer: KVLayerStats) -> str:
    """Every tensor the layer's cache holds, with its shape."""
    parts = []
    if layer.key_shape:
        parts.append(f"keys {list(layer.key_shape)}")
    if layer.value_shape:
        parts.append(f"values {list(layer.value_shape)}")
    if layer.conv_shape:
        parts.append(f"conv state {list(layer.conv_shape)}")
    if layer.recurrent_shape:
        parts.append(f"recurrent state {list(layer.recurrent_shape)}")
    return " · ".join(parts) or "nothing"


def _one_layer_per_kind(layers: Sequence[KVLayerStats]) -> list[KVLayerStats]:
    """The first layer of each kind (and window), in layer order."""
    seen: dict[tuple[str, int], KVLayerStats] = {}
    for layer in layers:
        seen.setdefault((layer.kind, layer.window), layer)
    return list(seen.values())


class GrowthChart:
    """Total cache bytes after every step as block columns, with the prefill jump and per-token slope."""

    def __init__(self, history: Sequence[KVStats], *, height: int = 5, styles: KVStyles = KVStyles()) -> None:
        self.history = list(history)
        self.height = max(2, height)
        self.styles = styles

    @property
    def series(self) -> list[int]:
        """Total bytes after each step, step 0 (prefill) first."""
        return [kv.total_bytes for kv in self.history]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        series, styles = self.series, self.styles
        if not series:
            yield Text("No steps yet.", styles.muted)
            return
        axis_width = 10
        plot_width = max(4, options.max_width - axis_width)
        buckets = _bucket_last(series, plot_width)
        column_width = max(1, min(4, plot_width // len(buckets)))
        peak = max(buckets) or 1
        eighths_total = self.height * 8
        for row in range(self.height):
            label = format_bytes(peak) if row == 0 else ("0 B" if row == self.height - 1 else "")
            line = Text.assemble((f"{label:>{axis_width - 2}} ▕", styles.muted))
            row_floor = (self.height - 1 - row) * 8
            for value in buckets:
                filled = max(1, round(value / peak * eighths_total)) if value else 0
                line.append(EIGHTHS[min(8, max(0, filled - row_floor))] * column_width, styles.growth)
            yield line
        last = f"step {len(series) - 1}"
        gap = max(1, len(buckets) * column_width - len("step 0") - len(last))
        yield Text(" " * axis_width + "step 0" + " " * gap + last, styles.muted)
        yield self._caption()

    def _caption(self) -> Text:
        first = self.history[0]
        caption = Text(f"prefill {first.tokens:,} tokens → {format_bytes(first.total_bytes)}", self.styles.muted)
        if len(self.history) > 1:
            last = self.history[-1]
            added_tokens = last.tokens - first.tokens
            if added_tokens > 0:
                per_token = (last.total_bytes - first.total_bytes) / added_tokens
                if per_token > 0:
                    caption.append(f", then +{format_bytes(per_token)} per generated token", self.styles.muted)
                else:
                    caption.append(", then no growth: windows and states keep a fixed size", self.styles.muted)
        return caption


def _bucket_last(series: Sequence[int], width: int) -> list[int]:
    """At most `width` values: each bucket keeps its last (most recent) value."""
    if len(series) <= width:
        return list(series)
    edges = [round(index * len(series) / width) for index in range(1, width + 1)]
    return [series[edge - 1] for edge in edges]


class WhatIfTable:
    """Variants of the cache (dtype, MHA, window) with bytes, ratio to 'as is', and the same at max context."""

    def __init__(
        self,
        what_if: Sequence[tuple[str, KVEstimate]],
        *,
        at_max_context: Sequence[tuple[str, KVEstimate]] | None = None,
        measured_bytes: int | None = None,
        styles: KVStyles = KVStyles(),
    ) -> None:
        self.what_if = list(what_if)
        self.at_max_context = list(at_max_context or [])
        self.measured_bytes = measured_bytes
        self.styles = styles

    @property
    def ratios(self) -> list[float]:
        """Each variant's bytes divided by the first ('as is') row's bytes."""
        base = self.what_if[0][1].total_bytes if self.what_if else 0
        return [estimate.total_bytes / base if base else 0.0 for _, estimate in self.what_if]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        styles = self.styles
        if not self.what_if:
            yield Text("No what-if figures for this model.", styles.muted)
            return
        context = self.what_if[0][1].context
        wide = options.max_width >= 96
        table = Table(box=None, pad_edge=False, padding=(0, 1), header_style=styles.muted, expand=False)
        table.add_column(f"what if… (at {context:,} tokens)", style="", no_wrap=True, overflow="ellipsis")
        table.add_column("bytes", justify="right", no_wrap=True)
        table.add_column("", width=1, no_wrap=True)
        table.add_column("× as is", justify="right", no_wrap=True)
        if wide:
            table.add_column("", no_wrap=True)
        max_rows = dict(self.at_max_context)
        if max_rows:
            max_context = self.at_max_context[0][1].context
            table.add_column(f"at {max_context:,} (max)", justify="right", no_wrap=True)
        largest = max(estimate.total_bytes for _, estimate in self.what_if) or 1
        for index, ((label, estimate), ratio) in enumerate(zip(self.what_if, self.ratios)):
            measured = index == 0 and self.measured_bytes is not None and estimate.total_bytes == self.measured_bytes
            cells: list[Text | str] = [
                Text(label, styles.heading if index == 0 else ""),
                format_bytes(estimate.total_bytes),
                Text("✓" if measured else "", styles.good),
                f"{ratio:.2f}×",
            ]
            if wide:
                cells.append(Text("█" * max(1, round(18 * estimate.total_bytes / largest)), styles.growth))
            if max_rows:
                at_max = max_rows.get(label)
                cells.append(format_bytes(at_max.total_bytes) if at_max else "")
            table.add_row(*cells)
        yield table
        if self.measured_bytes is not None:
            yield Text("✓ = the formula's 'as is' figure equals the bytes measured in the cache", styles.muted)
        for note in what_if_notes(self.what_if):
            yield Text(f"· {note}", styles.muted)


def what_if_notes(what_if: Sequence[tuple[str, KVEstimate]]) -> list[str]:
    """One sentence per kind of variant (number format, MHA, window), read from how its estimate differs."""
    if not what_if:
        return []
    base = what_if[0][1]
    notes: list[str] = []
    dtypes = [estimate for _, estimate in what_if[1:] if estimate.bytes_per_element != base.bytes_per_element]
    if dtypes:
        sizes = ", ".join(
            f"{estimate.dtype} {format_bytes_per_element(estimate.bytes_per_element)}" for estimate in dtypes
        )
        notes.append(
            f"Number formats: the same tokens with fewer bytes per number ({sizes}; now "
            f"{format_bytes_per_element(base.bytes_per_element)}); smaller formats round the stored keys and values."
        )
    for label, estimate in what_if[1:]:
        shape = estimate.shape
        if shape.num_kv_heads != base.shape.num_kv_heads:
            group = base.shape.num_heads // max(1, base.shape.num_kv_heads)
            notes.append(
                f"MHA: each of the {shape.num_heads} query heads keeps its own keys and values; this model "
                f"lets {group} query heads share one KV head, so its cache is {group}× smaller."
            )
        elif shape.sliding_window != base.shape.sliding_window and shape.sliding_window:
            window = shape.sliding_window
            reached = "" if base.context > window else f" (not reached at {base.context:,} tokens)"
            notes.append(
                f"Sliding window: each layer keeps only the last {window:,} tokens, so the cache stops "
                f"growing there{reached}."
            )
        elif base.shape.sliding_window and (
            estimate.tokens_cached > base.tokens_cached or label.startswith("full cache")
        ):
            notes.append(
                f"Full cache: every token kept, without this model's {base.shape.sliding_window:,}-token window."
            )
    return notes
