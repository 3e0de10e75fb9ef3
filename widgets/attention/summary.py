"""The words around the heatmaps: title, legend, status line, the sink table and the strongest keys of a row.

Every number printed here is read straight from the attention array, so a learner can check it by hand.
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from llmscope.attention_stats import row_shares
from llmscope.widgets.attention.data import (
    AttentionData,
    Normalization,
    kv_group_of,
    kv_groups,
    top_keys,
    uniform_sink_baseline,
)
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.styles import AttentionStyles

EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(fraction: float, width: int) -> str:
    """A left-aligned bar of `width` cells filled to `fraction` (eighth-cell precision)."""
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part and full < width else "")
    return text.ljust(width)


def quoted(label: str, width: int = 16) -> str:
    """A token label in quotes, shortened with an ellipsis when longer than `width` cells."""
    if cell_len(label) > width:
        label = set_cell_size(label, width - 1) + "…"
    return f"'{label}'"


def weight_text(value: float) -> str:
    """Four decimals, the precision the status line promises."""
    return f"{value:.4f}"


def short_weight(value: float) -> str:
    """Two decimals, or three for the tiny values of an even spread over a long context."""
    return f"{value:.3f}" if 0 < value < 0.01 else f"{value:.2f}"


def title_text(data: AttentionData, title: str = "Attention") -> Text:
    """'Attention · step 3 · decode: 1 query × 300 keys' (prefill says how many prompt rows were kept)."""
    text = Text(title, style="bold", no_wrap=True, overflow="ellipsis")
    if data.step_index is not None:
        text.append(f" · step {data.step_index}")
    if data.is_single_row:
        position = data.query_position(0)
        text.append(f" · query {position} {quoted(data.label(position))} · {data.num_keys} keys")
    else:
        kept = "" if data.query_start == 0 else f" (last {data.num_query_rows} of {data.num_keys} prompt rows)"
        text.append(f" · {data.num_query_rows} queries × {data.num_keys} keys{kept}")
    text.append(f" · {data.num_layers} layers × {data.num_heads} heads · {data.num_kv_heads} KV heads", style="dim")
    return text


def legend_text(
    data: AttentionData, mode: str, normalization: Normalization, palette: HeatPalette, keys_per_column: float = 1
) -> Text:
    """A colour swatch and one sentence saying what a cell's colour means under the current settings.

    `keys_per_column` is how many keys one drawn column sums (grid: on average over its near-equal bins).
    """
    text = Text("low ", no_wrap=True, overflow="ellipsis")
    for segment in palette.swatch(10):
        text.append(segment.text, segment.style)
    text.append(" high  ")
    if keys_per_column > 1:  # first, so that a narrow pane still says what a column holds
        per = f"{keys_per_column:.0f}" if float(keys_per_column).is_integer() else f"≈{keys_per_column:.0f}"
        text.append(f"1 col = {per} keys summed", style="bold")
        text.append(" · ")
    if normalization == "row":
        scale = "row scale: each query row ÷ its own max"
    else:
        scale = "global scale: ÷ " + ("this head's largest cell" if mode == "zoom" else "the step's largest cell")
    if mode == "zoom":
        cell = "its keys' summed weight" if keys_per_column > 1 else "weight of a key (column) for a query (row)"
        what = f"+/− zoom keys in/out · PgUp/PgDn page · cell = {cell}"
    elif data.is_single_row:
        what = "bar = the query's row, keys left→right"
    else:
        what = "thumbnail = queries ↓ × keys →, rows averaged"
    text.append(scale, style="bold")
    text.append(f" · {what}", style="dim")
    return text


def status_text(
    data: AttentionData, mode: str, layer: int, head: int, cursor: tuple[int, int], keys_per_column: int = 1
) -> Text:
    """The exact numbers under the selection: the cursor weight (or its column's sum) in zoom, sink and peak in grid."""
    row, key = cursor
    position = data.query_position(row)
    text = Text(f"L{layer} H{head}", style="bold", no_wrap=True, overflow="ellipsis")
    if mode == "zoom" and keys_per_column > 1:
        first = key - key % keys_per_column
        last = min(data.num_keys, first + keys_per_column) - 1
        total = float(np.sum(data.weights[layer, head, row, first : last + 1], dtype=np.float64))
        text.append(f" · query {position} {quoted(data.label(position))} → keys {first}–{last} = ")
        text.append(weight_text(total), style="bold")
        text.append(f" (sum of {last - first + 1} keys)", style="dim")
        return text
    if mode == "zoom":
        weight = float(data.weights[layer, head, row, key])
        text.append(f" · query {position} {quoted(data.label(position))} → key {key} {quoted(data.label(key))} = ")
        text.append(weight_text(weight), style="bold")
        if key > position:
            text.append("  (masked: a query never sees later keys)", style="dim")
        return text
    group = kv_group_of(head, data.num_heads, data.num_kv_heads)
    members = kv_groups(data.num_heads, data.num_kv_heads)[group]
    sink = float(data.sinks[layer, head])
    last_row = data.weights[layer, head, -1]
    peak = int(np.argmax(last_row))
    name = "learned sink" if data.has_learned_sink else "sink"
    text.append(f" · {name} {short_weight(sink)} (all heads {short_weight(data.mean_sink)})")
    last_position = data.query_position(data.num_query_rows - 1)
    text.append(
        f" · query {last_position} looks most at key {peak} {quoted(data.label(peak))}"
        f" ({short_weight(float(last_row[peak]))})"
    )
    if len(members) > 1:
        text.append(f" · KV{group} shared by " + " ".join(f"H{m}" for m in members), style="dim")
    return text


class SinkSummary:
    """Rich renderable: how much attention lands on key 0, overall, for the selection and the strongest heads."""

    def __init__(
        self,
        data: AttentionData,
        *,
        layer: int,
        head: int,
        palette: HeatPalette | None = None,
        styles: AttentionStyles | None = None,
    ) -> None:
        self.data = data
        self.layer = layer
        self.head = head
        self.palette = palette or HeatPalette()
        self.styles = styles or AttentionStyles()
        self.sinks = data.sinks

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or 12 + min(10, self.sinks.size)
        data, sinks = self.data, self.sinks
        bar_width = max(3, width - 14)
        if data.has_learned_sink:
            yield Text("Learned attention sink", style="bold")
            yield Text("share of the row given to no key", style=self.styles.muted, no_wrap=True)
        else:
            yield Text("Attention sinks", style="bold")
            yield Text(f"weight on key 0 {quoted(data.label(0), max(3, width - 18))}", style=self.styles.muted)
        yield Text(f"{'mean, all heads':<{width - 6}} {short_weight(data.mean_sink):>5}", no_wrap=True)
        if not data.has_learned_sink:  # an even spread puts 1/(n+1) on key 0, but nothing on a learned sink
            baseline = uniform_sink_baseline(data.query_start, data.num_query_rows)
            yield Text(
                f"{'even spread':<{width - 6}} {short_weight(baseline):>5}", style=self.styles.muted, no_wrap=True
            )
        selected = f"L{self.layer} H{self.head}"
        yield Text(
            f"{selected:<{width - 6}} {short_weight(float(sinks[self.layer, self.head])):>5}",
            style=self.styles.selected,
            no_wrap=True,
        )
        yield Text("")
        yield Text("strongest sinks", style="bold")
        rows = max(0, height - 7)
        order = np.lexsort((np.arange(sinks.size), -sinks.ravel()))[:rows]
        for flat in order:
            layer, head = divmod(int(flat), data.num_heads)
            value = float(sinks[layer, head])
            level = int(to_levels(np.array([value]), self.palette.levels)[0])
            line = Text(f"{f'L{layer} H{head}':<8}", no_wrap=True)
            line.append(bar(value, bar_width), Style(color=self.palette.color(max(level, 1))))
            line.append(f" {short_weight(value):>4}")
            if (layer, head) == (self.layer, self.head):
                line.stylize(self.styles.selected, 0, 8)
            yield line


class TopKeys:
    """Rich renderable: the keys one query row attends to most, with bars on the absolute weight (0–1)."""

    def __init__(
        self,
        data: AttentionData,
        *,
        layer: int,
        head: int,
        row: int,
        count: int = 8,
        palette: HeatPalette | None = None,
        styles: AttentionStyles | None = None,
    ) -> None:
        self.data = data
        self.layer = layer
        self.head = head
        self.row = row
        self.count = count
        self.palette = palette or HeatPalette()
        self.styles = styles or AttentionStyles()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        data = self.data
        position = data.query_position(self.row)
        weights = data.weights[self.layer, self.head, self.row]
        count = self.count if options.height is None else max(1, min(self.count, options.height - 3))
        strongest = top_keys(weights, count)
        yield Text(
            f"query {position} {quoted(data.label(position))} · L{self.layer} H{self.head}",
            style="bold",
            no_wrap=True,
            overflow="ellipsis",
        )
        covered = sum(weight for _, weight in strongest)
        yield Text(
            f"{len(strongest)} strongest keys = {covered:.0%} of the row",
            style=self.styles.muted,
            no_wrap=True,
            overflow="ellipsis",
        )
        sink = None if data.learned_sink is None else float(data.learned_sink[self.layer, self.head, self.row])
        shares = row_shares(weights, position, learned_sink=sink)
        where = f"first {shares.first_keys} keys {shares.first:.2f} · last {shares.recent_keys} {shares.recent:.2f}"
        if shares.learned_sink is not None:
            where += f" · sink {shares.learned_sink:.2f}"
        yield Text(where, style=self.styles.muted, no_wrap=True, overflow="ellipsis")
        digits = len(str(data.num_keys - 1))
        label_width = max(4, min(14, width // 4))
        bar_width = max(3, width - digits - label_width - 9)
        strongest_weight = strongest[0][1] if strongest and strongest[0][1] > 0 else 1.0
        for key, weight in strongest:  # bars relative to the strongest key, numbers absolute
            level = int(to_levels(np.array([weight / strongest_weight]), self.palette.levels)[0])
            line = Text(f"{key:>{digits}} ", style=self.styles.muted, no_wrap=True)
            line.append(set_cell_size(data.label(key), label_width) + " ")
            line.append(bar(weight / strongest_weight, bar_width), Style(color=self.palette.color(max(level, 1))))
            line.append(f" {weight_text(weight)}")
            yield line


def pane_status(
    data: AttentionData,
    mode: str,
    layer: int,
    head: int,
    cursor: tuple[int, int],
    keys_per_column: int,
    note: str,
) -> Text:
    """The status line: the layer's note alone for a layer without weights, else the numbers and then the note."""
    if layer in data.weightless:
        return Text(f"L{layer}: {note}", style="italic", no_wrap=True, overflow="ellipsis")
    status = status_text(data, mode, layer, head, cursor, keys_per_column)
    if note:
        status.append(f" · L{layer}: {note}", style="italic")
    return status
