"""The zoomed heatmap of one head: query rows × key columns, labelled on both axes, windowed around a cursor.

A column holds one key, or at long context a bin of `keys_per_column` consecutive keys whose weights are summed
(a bin reads as the share of the row those keys got). A shares line says where the cursor row's attention went
(first keys, recent keys, a learned sink); when the context is wider than the window, an overview row shows the
whole cursor row with the visible window underlined. Models with a learned sink (gpt-oss) get a 'sink' column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from llmscope.attention_stats import bin_sums, row_shares, strongest_keys
from llmscope.widgets.attention.context import context_lines
from llmscope.widgets.attention.data import AttentionData, Normalization, pool_sum, scroll_to_include
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.styles import AttentionStyles

COLUMN_WIDTH = 2
"""Cells per key column: two cells by one row is roughly square on a terminal."""
SINK_LABEL = "sink"
STRONGEST_SHOWN = 24
"""Strongest keys listed under a binned zoom (enough to see a pattern, few enough to read)."""


@dataclass(frozen=True)
class ZoomGeometry:
    """Where the parts of the zoom view go in `width` × `height` cells."""

    digits: int
    label_width: int
    """Cells for the token text in a row label (the position number comes before it)."""
    columns: int
    """Key columns on screen."""
    keys_per_column: int
    """Consecutive keys summed into one column (1: every column is one key)."""
    total_columns: int
    """Columns the whole context would need at this binning."""
    visible_rows: int
    label_rows: int
    """Staggered rows of key labels above the matrix."""
    overview: bool
    """Whether the whole-row overview line is shown (only when keys are windowed)."""
    sink_column: bool
    """Whether a learned-sink column stands before key 0."""
    coarsest: int
    """The largest keys_per_column worth offering: the whole context then fits the width."""
    share_rows: int
    """Lines of the shares text (two where one is too narrow for every figure)."""

    @property
    def row_label_width(self) -> int:
        return self.digits + 1 + self.label_width + 1

    @property
    def matrix_x(self) -> int:
        """Left cell of the first key column."""
        return self.row_label_width + (COLUMN_WIDTH + 1 if self.sink_column else 0)

    @property
    def header_rows(self) -> int:
        return self.share_rows + int(self.overview) + self.label_rows

    @property
    def span(self) -> int:
        """Keys the window covers."""
        return self.columns * self.keys_per_column


def max_keys_per_column(num_keys: int, columns: int) -> int:
    """The coarsest binning worth offering: the smallest power of two that fits every key in `columns`."""
    needed = -(-num_keys // max(1, columns))
    return 1 << max(0, (needed - 1).bit_length())


def shares_width(digits: int, keys_per_column: int, sink: bool, windowed: bool) -> int:
    """Cells the shares text needs at most (see AttentionZoom._shares): beyond that it takes two lines."""
    binning = "1 col = 1 key" if keys_per_column == 1 else f"1 col = {keys_per_column} keys (sum)"
    width = len(binning) + len(" · first 4 keys 0.00 · last 64 keys 0.00")
    return width + (len(" · sink 0.0000") if sink else 0) + (len(" · keys – 0.00") + 2 * digits if windowed else 0)


def zoom_geometry(data: AttentionData, width: int, height: int, keys_per_column: int = 1) -> ZoomGeometry:
    """As many key columns and query rows as fit, after the row labels, the shares line and the key labels."""
    digits = len(str(data.num_keys - 1))
    longest = max(map(len, data.token_labels))  # len, not cell width: linear in C, and the label is capped anyway
    label_width = max(3, min(longest, 14 if width >= 120 else 9))
    row_label_width = digits + 1 + label_width + 1
    sink_width = COLUMN_WIDTH + 1 if data.has_learned_sink else 0
    available = max(1, (width - row_label_width - sink_width) // COLUMN_WIDTH)
    coarsest = max_keys_per_column(data.num_keys, available)
    keys_per_column = max(1, min(keys_per_column, coarsest))
    total_columns = -(-data.num_keys // keys_per_column)
    columns = min(available, total_columns)
    label_rows = 4 if height >= 30 else 3
    overview = columns < total_columns
    share_rows = 1 if width >= shares_width(digits, keys_per_column, data.has_learned_sink, overview) else 2
    visible_rows = max(1, min(data.num_query_rows, height - share_rows - label_rows - int(overview)))
    return ZoomGeometry(
        digits,
        label_width,
        columns,
        keys_per_column,
        total_columns,
        visible_rows,
        label_rows,
        overview,
        data.has_learned_sink,
        coarsest,
        share_rows,
    )


class AttentionZoom:
    """Rich renderable: one head's weights with token labels, the cursor cell framed."""

    def __init__(
        self,
        data: AttentionData,
        *,
        layer: int,
        head: int,
        cursor: tuple[int, int],
        normalization: Normalization = "row",
        keys_per_column: int = 1,
        offsets: tuple[int, int] | None = None,
        palette: HeatPalette | None = None,
        styles: AttentionStyles | None = None,
    ) -> None:
        self.data = data
        self.layer = layer
        self.head = head
        self.cursor = cursor
        """(query row index, key position)"""
        self.normalization: Normalization = normalization
        self.keys_per_column = keys_per_column
        """Keys summed into one column (capped by the geometry at the binning that fits the whole context)."""
        self.offsets = offsets
        """(first visible query row, first visible key); None centres the window on the cursor."""
        self.palette = palette or HeatPalette()
        self.styles = styles or AttentionStyles()
        self.last_geometry: ZoomGeometry | None = None
        """The geometry of the latest `lines` call (for mapping clicks to cells)."""
        self.last_window: tuple[int, int] | None = None
        """(first query row, first key) of the latest `lines` call (the next view scrolls from there)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or (6 + self.data.num_query_rows + 1)
        new_line = Segment.line()
        for line in self.lines(options.max_width, height):
            yield from line
            yield new_line

    def window(self, geometry: ZoomGeometry) -> tuple[int, int]:
        """First visible query row and key: the given offsets moved just enough to contain the cursor.

        The key window starts on a column boundary (a multiple of keys_per_column), so bins never shift.
        """
        row, key = self.cursor
        per = geometry.keys_per_column
        if self.offsets is None:
            start = (row - geometry.visible_rows // 2, key // per - geometry.columns // 2)
        else:
            start = (self.offsets[0], self.offsets[1] // per)
        first_column = scroll_to_include(start[1], key // per, geometry.columns, geometry.total_columns)
        return scroll_to_include(start[0], row, geometry.visible_rows, self.data.num_query_rows), first_column * per

    def binned(self, keys_per_column: int) -> np.ndarray:
        """The head's [query_rows, columns] key-bin sums over the whole context (bin j: keys j·k … j·k + k − 1)."""
        weights = self.data.weights[self.layer, self.head]
        return weights.astype(np.float64) if keys_per_column == 1 else bin_sums(weights, keys_per_column)

    def scaled(self, binned: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(bins, learned sink per row) in [0, 1]: 'row' divides each row by its largest bin or sink, 'global' by
        the largest of the head's whole matrix."""
        binned = self.binned(1) if binned is None else binned
        sink = None if self.data.learned_sink is None else self.data.learned_sink[self.layer, self.head]
        sink64 = None if sink is None else sink.astype(np.float64)[:, None]
        peaks = binned.max(axis=-1, keepdims=True)
        if sink64 is not None:
            peaks = np.maximum(peaks, sink64)
        scale = peaks if self.normalization == "row" else np.asarray(peaks.max())
        scaled = np.divide(binned, scale, out=np.zeros_like(binned), where=scale > 0)
        scaled_sink = None
        if sink64 is not None:
            scaled_sink = np.divide(sink64, scale, out=np.zeros_like(sink64), where=scale > 0)[:, 0]
        return scaled, scaled_sink

    def lines(self, width: int, height: int) -> list[list[Segment]]:
        """Exactly `height` lines of exactly `width` cells."""
        geometry = zoom_geometry(self.data, width, height, self.keys_per_column)
        first_row, first_key = self.window(geometry)
        self.last_geometry, self.last_window = geometry, (first_row, first_key)
        per = geometry.keys_per_column
        scaled, scaled_sink = self.scaled(self.binned(per))
        first_column = first_key // per
        shown = scaled[:, first_column : first_column + geometry.columns]
        lines: list[list[Segment]] = self._shares(geometry, first_key, width)
        if geometry.overview:
            lines.append(self._overview(geometry, first_key, width))
        lines.extend(self._key_labels(geometry, first_key))
        for row in range(first_row, first_row + geometry.visible_rows):
            sink_level = None if scaled_sink is None else float(scaled_sink[row])
            lines.append(self._body_row(geometry, shown[row], sink_level, row, first_key))
        spare = height - len(lines) - 1
        if spare >= 3 and per > 1:  # binned columns hide single keys: name the strongest ones instead
            lines.append([])
            lines.extend(self._strongest(width, spare))
        elif spare >= 3:  # a decode row leaves room: show the context as text shaded by the cursor row
            lines.append([])
            lines.extend(
                context_lines(
                    self.data,
                    layer=self.layer,
                    head=self.head,
                    row=self.cursor[0],
                    cursor_key=self.cursor[1],
                    scaled_row=scaled[self.cursor[0]],
                    width=width,
                    height=spare,
                    palette=self.palette,
                    styles=self.styles,
                )
            )
        lines.extend([[Segment(" " * width)]] * (height - len(lines)))
        return [list(Segment.adjust_line_length(line, width)) for line in lines[:height]]

    def visible_keys(self) -> tuple[int, int]:
        """First and last key position the latest `lines` drew (inclusive)."""
        assert self.last_geometry is not None and self.last_window is not None, "lines() first"
        first = self.last_window[1]
        return first, min(self.data.num_keys, first + self.last_geometry.span) - 1

    def hit(self, x: int, y: int) -> tuple[int, int] | None:
        """The (query row, first key of the column) drawn at content cell (x, y) in the latest `lines`, or None."""
        geometry, window = self.last_geometry, self.last_window
        if geometry is None or window is None:
            return None
        row = window[0] + y - geometry.header_rows
        column = (x - geometry.matrix_x) // COLUMN_WIDTH
        if not 0 <= row < min(self.data.num_query_rows, window[0] + geometry.visible_rows):
            return None
        if x < geometry.matrix_x or column >= geometry.columns:
            return None
        key = window[1] + column * geometry.keys_per_column
        return (row, key) if key < self.data.num_keys else None

    def _shares(self, geometry: ZoomGeometry, first_key: int, width: int) -> list[list[Segment]]:
        """How many keys a column holds, then where the cursor row's attention went (sums of weights)."""
        row = self.cursor[0]
        position = self.data.query_position(row)
        weights = self.data.weights[self.layer, self.head, row]
        sink = None if self.data.learned_sink is None else float(self.data.learned_sink[self.layer, self.head, row])
        shares = row_shares(weights, position, learned_sink=sink)
        per = geometry.keys_per_column
        last_key = min(self.data.num_keys, first_key + geometry.span) - 1
        pieces = ["1 col = 1 key" if per == 1 else f"1 col = {per} keys (sum)"]
        if shares.learned_sink is not None:
            pieces.append(f"{SINK_LABEL} {shares.learned_sink:.4f}")
        pieces.append(f"first {shares.first_keys} keys {shares.first:.2f}")
        pieces.append(f"last {shares.recent_keys} keys {shares.recent:.2f}")
        if geometry.overview:
            window_share = float(np.sum(weights[first_key : last_key + 1], dtype=np.float64))
            pieces.append(f"keys {first_key}–{last_key} {window_share:.2f}")
        texts = [""]
        for piece in pieces:  # fill the share lines in order; what fits on none is left out
            candidate = piece if not texts[-1] else f"{texts[-1]} · {piece}"
            if cell_len(candidate) <= width:
                texts[-1] = candidate
            elif len(texts) < geometry.share_rows:
                texts.append(piece)
            else:
                break
        texts += [""] * (geometry.share_rows - len(texts))
        return [[Segment(text, self.styles.muted)] for text in texts]

    def _strongest(self, width: int, height: int) -> list[list[Segment]]:
        """A caption and the cursor row's strongest keys with position, text and weight, in as many columns as fit."""
        row = self.cursor[0]
        caption = f"strongest keys of query {self.data.query_position(row)}, L{self.layer} H{self.head}"
        digits = len(str(self.data.num_keys - 1))
        cell = digits + 1 + 12 + 1 + 6 + 3
        per_line = max(1, width // cell)
        count = min(STRONGEST_SHOWN, (height - 1) * per_line)
        strongest = strongest_keys(self.data.weights[self.layer, self.head, row], count)
        lines: list[list[Segment]] = [[Segment(set_cell_size(caption, width), self.styles.muted)]]
        for start in range(0, len(strongest), per_line):
            segments: list[Segment] = []
            for key, weight in strongest[start : start + per_line]:
                segments.append(Segment(f"{key:>{digits}} ", self.styles.muted))
                segments.append(Segment(set_cell_size(self.data.label(key), 12) + " ", self.styles.label))
                segments.append(Segment(f"{weight:.4f}   ", self.styles.label))
            lines.append(segments)
        return lines

    def _overview(self, geometry: ZoomGeometry, first_key: int, width: int) -> list[Segment]:
        """The cursor's whole row summed into bins across the matrix width, the visible window underlined."""
        last_key = min(self.data.num_keys, first_key + geometry.span) - 1
        num_keys = self.data.num_keys
        captions = (f"all {num_keys} keys", f"{num_keys} keys", f"{num_keys}")
        caption = next((text for text in captions if len(text) < geometry.matrix_x), captions[-1])
        bins = max(1, width - geometry.matrix_x)
        pooled = pool_sum(self.data.weights[self.layer, self.head, self.cursor[0]].astype(np.float64), bins)
        peak = float(pooled.max())
        levels = to_levels(pooled / peak if peak > 0 else pooled, self.palette.levels)
        bin_first_key = (np.arange(bins) * num_keys) // bins
        bin_last_key = ((np.arange(1, bins + 1) * num_keys) // bins) - 1
        inside = (np.maximum(bin_last_key, bin_first_key) >= first_key) & (bin_first_key <= last_key)
        window_color = self.styles.window.color
        segments = [Segment(set_cell_size(caption, geometry.matrix_x - 1) + " ", self.styles.muted)]
        for level, in_window in zip(levels, inside):
            color = self.palette.color(int(level))
            if in_window:
                char, style = (
                    ("▀", Style(color=color, bgcolor=window_color)) if level else ("▄", Style(color=window_color))
                )
            else:
                char, style = ("▀", Style(color=color)) if level else (" ", Style())
            segments.append(Segment(char, style))
        return segments

    def _column_label(self, key: int, per: int) -> str:
        """A key column's label: its token, or at coarser binning the first key's position."""
        return self.data.label(key) if per == 1 else str(key)

    def _key_labels(self, geometry: ZoomGeometry, first_key: int) -> list[list[Segment]]:
        """Staggered rows: column j's label starts above it in row j mod label_rows, nearest row last."""
        room = geometry.label_rows * COLUMN_WIDTH - 1
        per = geometry.keys_per_column
        cursor_column = self.cursor[1] // per
        rows: list[list[Segment]] = []
        for stagger in range(geometry.label_rows):
            segments = [Segment(" " * geometry.row_label_width)]
            x = geometry.row_label_width
            if (
                geometry.sink_column and stagger == geometry.label_rows - 2
            ):  # over its column (key 0 takes the row below)
                segments = [
                    Segment(" " * (geometry.matrix_x - len(SINK_LABEL))),
                    Segment(SINK_LABEL, self.styles.label),
                ]
                x = geometry.matrix_x
            for index in range(geometry.columns):
                column = first_key // per + index
                key = column * per
                if key >= self.data.num_keys or column % geometry.label_rows != (stagger + 1) % geometry.label_rows:
                    continue
                column_x = geometry.matrix_x + index * COLUMN_WIDTH
                if column_x < x:
                    continue
                label = self._column_label(key, per)
                text = set_cell_size(label, min(room, cell_len(label)))
                text = text[: max(0, geometry.matrix_x + geometry.columns * COLUMN_WIDTH - column_x)]
                segments.append(Segment(" " * (column_x - x)))
                style = self.styles.selected if column == cursor_column else self.styles.label
                segments.append(Segment(text, style))
                x = column_x + cell_len(text)
            rows.append(segments)
        return rows

    def _body_row(
        self, geometry: ZoomGeometry, values: np.ndarray, sink: float | None, row: int, first_key: int
    ) -> list[Segment]:
        """One query row: position and token, the sink cell, then a cell per visible column."""
        position = self.data.query_position(row)
        label = set_cell_size(self.data.label(position), geometry.label_width)
        is_cursor_row = row == self.cursor[0]
        label_style = self.styles.selected if is_cursor_row else self.styles.label
        segments = [
            Segment(f"{position:>{geometry.digits}} ", self.styles.muted),
            Segment(label, label_style),
            Segment(" "),
        ]
        if sink is not None:
            level = int(to_levels(np.array([sink]), self.palette.levels)[0])
            segments.append(Segment(" " * COLUMN_WIDTH, self.palette.style(0, level)))
            segments.append(Segment("│", self.styles.muted))
        per = geometry.keys_per_column
        levels = to_levels(values, self.palette.levels)
        cursor_column = self.cursor[1] // per
        for index, level in enumerate(levels):
            column = first_key // per + index
            style = self.palette.style(0, int(level))
            if is_cursor_row and column == cursor_column:
                segments.append(Segment("[]", self.styles.cursor + Style(bgcolor=style.bgcolor)))
            elif column * per > position:
                segments.append(Segment(" " * COLUMN_WIDTH))
            else:
                segments.append(Segment(" " * COLUMN_WIDTH, style))
        return segments
