"""The layer × head overview: one small heatmap per head, layers as rows, KV groups bracketed over the heads.

A decode step's single query row is drawn as a bar over the keys (each cell column is the sum over a bin of keys);
the prefill matrix is binned the same way to a thumbnail. Layers without softmax weights (SSM, linear attention)
get a written "no attention" row instead of a picture. Cells are cached per (data, geometry, normalisation, palette),
so moving the selection only redraws labels and the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.cells import set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from llmscope.widgets.attention.data import AttentionData, Normalization, grid_pixels, kv_groups, pool_sum
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.styles import AttentionStyles

SINK_COLUMN_WIDTH = 6
MAX_CELL_WIDTH = 24
MATRIX_MIN_ROWS = 2
"""Text rows (four pixel rows) a prefill thumbnail gets by default even if not every layer then fits."""


@dataclass(frozen=True)
class GridGeometry:
    """Where everything goes in a grid of `width` × `height` cells."""

    label_width: int
    cell_width: int
    rows_per_layer: int
    header_rows: int
    visible_layers: int
    head_x: tuple[int, ...]
    """Left column of each head's cell."""
    sink_x: int | None
    """Left column of the per-layer sink numbers (None when they do not fit)."""
    pixel_rows: int
    """Data pixel rows per cell: two per text row with half blocks, less the bottom half-row kept as a gap."""
    width: int


def grid_geometry(data: AttentionData, width: int, height: int, *, rows_per_layer: int = 0) -> GridGeometry:
    """Fit the grid into the space: widest cells that fit, all layers if possible (else a window of them).

    `rows_per_layer` 0 picks the tallest cells that still fit every layer, but at least MATRIX_MIN_ROWS
    for a prefill matrix (a window of layers then scrolls); a positive value asks for that many text rows
    per layer (capped so a thumbnail is never taller than it is wide).
    """
    heads, group_size = data.num_heads, data.num_heads // data.num_kv_heads
    label_width = len(f"L{data.num_layers - 1}") + 1
    grouped = 1 < group_size < heads
    gaps = [2 if grouped and (head + 1) % group_size == 0 else 1 for head in range(heads - 1)]
    header_rows = 2 if group_size > 1 else 1
    sink_width = SINK_COLUMN_WIDTH
    cell_width = (width - label_width - sum(gaps) - 2 - sink_width) // heads
    if cell_width < 4:
        sink_width = 0
        cell_width = (width - label_width - sum(gaps) - 2) // heads
    cell_width = max(1, min(MAX_CELL_WIDTH, cell_width))
    body_height = max(1, height - header_rows)
    tallest = 1 if data.is_single_row else max(1, cell_width // 2)
    if rows_per_layer <= 0:
        rows_per_layer = max(min(tallest, MATRIX_MIN_ROWS), min(tallest, body_height // data.num_layers))
    rows_per_layer = max(1, min(rows_per_layer, tallest, body_height))
    head_x, x = [], label_width + 1  # one free column before H0 holds the selection frame
    for head in range(heads):
        head_x.append(x)
        x += cell_width + (gaps[head] if head < heads - 1 else 1)
    return GridGeometry(
        label_width=label_width,
        cell_width=cell_width,
        rows_per_layer=rows_per_layer,
        header_rows=header_rows,
        visible_layers=max(1, min(data.num_layers, body_height // rows_per_layer)),
        head_x=tuple(head_x),
        sink_x=x if sink_width else None,
        pixel_rows=1 if data.is_single_row else 2 * rows_per_layer - 1,
        width=width,
    )


class GridCellCache:
    """Segments of every cell for one (data, cell size, normalisation, palette), built one layer at a time.

    Pooling a 256 × 300 prefill matrix for 270 heads is the expensive part of the grid, so only the layers
    on screen are pooled, each once; moving the selection reuses everything.
    """

    def __init__(self) -> None:
        self._levels_key: tuple[object, ...] | None = None
        self._cells_key: tuple[object, ...] | None = None
        self._data: AttentionData | None = None
        self._normalization: Normalization = "row"
        self._levels: dict[int, np.ndarray] = {}
        self._global_scale: float | None = None
        self._cells: dict[tuple[int, int], list[list[Segment]]] = {}

    def prepare(
        self, data: AttentionData, geometry: GridGeometry, normalization: Normalization, palette: HeatPalette
    ) -> None:
        """Forget pooled levels when data, cell size or normalisation change, and cells also on a new palette."""
        levels_key = (data, geometry.cell_width, geometry.pixel_rows, normalization, palette.levels)
        if levels_key != self._levels_key:
            self._levels_key, self._data, self._normalization = levels_key, data, normalization
            self._levels, self._cells, self._global_scale = {}, {}, None
        cells_key = (levels_key, palette, geometry.rows_per_layer)
        if cells_key != self._cells_key:
            self._cells_key, self._cells = cells_key, {}

    def cell(self, layer: int, head: int, palette: HeatPalette, geometry: GridGeometry) -> list[list[Segment]]:
        """The text rows of one cell (half blocks: pixel rows 2r and 2r+1 share text row r)."""
        cached = self._cells.get((layer, head))
        if cached is None:
            levels = self._layer_levels(layer, palette, geometry)[head]
            gap = np.zeros((1, levels.shape[1]), dtype=levels.dtype)
            levels = np.concatenate([levels, gap])  # the bottom half-row stays empty between layers
            cached = [
                palette.halfblock_segments(levels[2 * r], levels[2 * r + 1]) for r in range(geometry.rows_per_layer)
            ]
            self._cells[(layer, head)] = cached
        return cached

    def _layer_levels(self, layer: int, palette: HeatPalette, geometry: GridGeometry) -> np.ndarray:
        levels = self._levels.get(layer)
        if levels is None:
            assert self._data is not None, "prepare() first"
            pixels = grid_pixels(
                self._data.weights[layer],
                geometry.pixel_rows,
                geometry.cell_width,
                self._normalization,
                global_max=self._global(geometry) if self._normalization == "global" else None,
            )
            levels = self._levels[layer] = to_levels(pixels, palette.levels)
        return levels

    def _global(self, geometry: GridGeometry) -> float:
        """The largest key bin of the step at this cell width: one scale for every head (pools every layer once)."""
        if self._global_scale is None:
            assert self._data is not None, "prepare() first"
            weights = self._data.weights
            if geometry.cell_width < weights.shape[-1]:
                self._global_scale = float(pool_sum(weights, geometry.cell_width, axis=-1).max())
            else:
                self._global_scale = self._data.max_weight
        return self._global_scale


class AttentionGrid:
    """Rich renderable: every (layer, head) as a small heatmap, with axis labels, KV brackets and sink column."""

    def __init__(
        self,
        data: AttentionData,
        *,
        layer: int = 0,
        head: int = 0,
        normalization: Normalization = "row",
        layer_offset: int | None = None,
        rows_per_layer: int = 0,
        palette: HeatPalette | None = None,
        styles: AttentionStyles | None = None,
        cache: GridCellCache | None = None,
    ) -> None:
        self.data = data
        self.layer = layer
        self.head = head
        self.normalization: Normalization = normalization
        self.layer_offset = layer_offset
        self.rows_per_layer = rows_per_layer
        self.palette = palette or HeatPalette()
        self.styles = styles or AttentionStyles()
        self.cache = cache or GridCellCache()
        self.last_geometry: GridGeometry | None = None
        """The geometry of the latest `lines` call (for mapping clicks to cells)."""
        self.last_first_layer: int | None = None
        """The first visible layer of the latest `lines` call (the next view scrolls from there)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = options.height or (2 + self.data.num_layers * max(1, self.rows_per_layer or 1))
        new_line = Segment.line()
        for line in self.lines(width, height):
            yield from line
            yield new_line

    def geometry(self, width: int, height: int) -> GridGeometry:
        return grid_geometry(self.data, width, height, rows_per_layer=self.rows_per_layer)

    def first_visible_layer(self, geometry: GridGeometry) -> int:
        """The window start: the given offset, or one that centres the selected layer."""
        hidden = self.data.num_layers - geometry.visible_layers
        offset = self.layer - geometry.visible_layers // 2 if self.layer_offset is None else self.layer_offset
        offset = min(offset, self.layer)
        offset = max(offset, self.layer - geometry.visible_layers + 1)
        return max(0, min(offset, hidden))

    def lines(self, width: int, height: int) -> list[list[Segment]]:
        """Exactly `height` lines of exactly `width` cells."""
        geometry = self.geometry(width, height)
        self.cache.prepare(self.data, geometry, self.normalization, self.palette)
        lines = self._header(geometry)
        first = self.first_visible_layer(geometry)
        self.last_geometry, self.last_first_layer = geometry, first
        for layer in range(first, first + geometry.visible_layers):
            lines.extend(self._layer_rows(geometry, layer, first))
        blank = [Segment(" " * width)]
        lines.extend([blank] * (height - len(lines)))
        return [_fit(line, width) for line in lines[:height]]

    def hit(self, x: int, y: int) -> tuple[int, int] | None:
        """The (layer, head) drawn at content cell (x, y) in the latest `lines`, or None."""
        geometry, first = self.last_geometry, self.last_first_layer
        if geometry is None or first is None or y < geometry.header_rows:
            return None
        layer = first + (y - geometry.header_rows) // geometry.rows_per_layer
        if layer >= min(self.data.num_layers, first + geometry.visible_layers):
            return None
        for head, head_x in enumerate(geometry.head_x):
            if head_x <= x < head_x + geometry.cell_width:
                return layer, head
        return None

    def _header(self, geometry: GridGeometry) -> list[list[Segment]]:
        """KV-group brackets (when heads share KV heads) over the head labels."""
        data, styles = self.data, self.styles
        label_row = _Row(geometry.width)
        for head, x in enumerate(geometry.head_x):
            text = f" H{head} " if geometry.cell_width >= len(f" H{head} ") else f"H{head}"
            label_row.put(
                x + max(0, (geometry.cell_width - len(text)) // 2),
                text,
                styles.selected if head == self.head else styles.label,
            )
        if geometry.sink_x is not None:
            label_row.put(geometry.sink_x, " sink", styles.muted)
        if geometry.header_rows == 1:
            return [label_row.segments()]
        bracket_row = _Row(geometry.width)
        selected_group = self.head // (data.num_heads // data.num_kv_heads)
        for group, members in enumerate(kv_groups(data.num_heads, data.num_kv_heads)):
            start = geometry.head_x[members[0]]
            span = geometry.head_x[members[-1]] + geometry.cell_width - start
            style = styles.selected_group if group == selected_group else styles.group
            bracket_row.put(start, _bracket(f"KV{group}", span), style)
        return [bracket_row.segments(), label_row.segments()]

    def _layer_rows(self, geometry: GridGeometry, layer: int, first: int) -> list[list[Segment]]:
        styles, palette = self.styles, self.palette
        last = first + geometry.visible_layers - 1
        rows: list[list[Segment]] = []
        for text_row in range(geometry.rows_per_layer):
            segments: list[Segment] = []
            label = f"L{layer}" if text_row == 0 else ""
            marker = " "
            if text_row == 0 and layer == first and first > 0:
                marker = "▴"
            elif text_row == geometry.rows_per_layer - 1 and layer == last and last < self.data.num_layers - 1:
                marker = "▾"
            label_style = styles.selected if layer == self.layer and text_row == 0 else styles.label
            segments.append(Segment(label.rjust(geometry.label_width - 1), label_style))
            segments.append(Segment(marker, styles.muted))
            kind = self.data.weightless.get(layer)
            if kind is not None:  # an SSM / linear-attention layer: say so rather than draw zeros that look measured
                rows.append(segments + self._weightless_row(geometry, layer, kind, text_row))
                continue
            x = geometry.label_width
            for head, head_x in enumerate(geometry.head_x):
                if head_x > x:
                    gap = " " * (head_x - x)
                    if layer == self.layer and head == self.head:
                        gap = gap[:-1] + "▐"
                    segments.append(Segment(gap, styles.cursor))
                segments.extend(self.cache.cell(layer, head, palette, geometry)[text_row])
                x = head_x + geometry.cell_width
                if layer == self.layer and head == self.head:
                    segments.append(Segment("▌", styles.cursor))
                    x += 1
            if geometry.sink_x is not None and text_row == 0:
                sink = float(self.data.sinks[layer].mean())
                level = int(to_levels(np.array([sink]), palette.levels)[0])
                segments.append(Segment(" " * max(0, geometry.sink_x - x)))
                segments.append(Segment("■", Style(color=palette.color(level))))
                segments.append(Segment(f"{sink:.2f}", styles.label))
            rows.append(segments)
        return rows

    def _weightless_row(self, geometry: GridGeometry, layer: int, kind: str, text_row: int) -> list[Segment]:
        """One text row of a layer without softmax weights: a dotted span over its heads, the reason in the middle."""
        start = geometry.head_x[0]
        span = geometry.head_x[-1] + geometry.cell_width - start
        selected = layer == self.layer
        frame = (self.styles.cursor if selected else self.styles.muted) + Style(italic=True)
        if text_row != 0:
            return [Segment(" " * (start - geometry.label_width)), Segment(" " * span)]
        words = next(
            (
                text
                for text in (f"no attention ({kind}): no weights to draw", f"no attention ({kind})", kind)
                if len(text) + 4 <= span
            ),
            "",
        )
        left = (span - len(words)) // 2
        line = "╌" * max(0, left - 1) + (f" {words} " if words else "") + "╌" * max(0, span - left - len(words) - 1)
        return [Segment(" " * (start - geometry.label_width)), Segment(set_cell_size(line, span), frame)]


class _Row:
    """A one-line canvas of plain cells that text can be placed on at given columns."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._pieces: list[tuple[int, str, Style]] = []

    def put(self, x: int, text: str, style: Style) -> None:
        self._pieces.append((x, text, style))

    def segments(self) -> list[Segment]:
        segments: list[Segment] = []
        cursor = 0
        for x, text, style in sorted(self._pieces, key=lambda piece: piece[0]):
            if x < cursor:
                continue
            if x > cursor:
                segments.append(Segment(" " * (x - cursor)))
            text = set_cell_size(text, max(0, min(len(text), self.width - x)))
            segments.append(Segment(text, style))
            cursor = x + len(text)
        return segments


def _bracket(name: str, span: int) -> str:
    """'┌─ KV0 ─┐' stretched to `span` cells (just the name when there is no room for the corners)."""
    if span < len(name) + 2:
        return name.center(span)[:span]
    inner = f" {name} " if span >= len(name) + 4 else name
    left = (span - 2 - len(inner)) // 2
    right = span - 2 - len(inner) - left
    return "┌" + "─" * left + inner + "─" * right + "┐"


def _fit(line: list[Segment], width: int) -> list[Segment]:
    """Crop or pad a line to exactly `width` cells."""
    return list(Segment.adjust_line_length(line, width))
