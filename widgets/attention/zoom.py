"""The zoomed heatmap of one head: query rows × key columns, labelled on both axes, windowed around a cursor.

Key labels stand in staggered rows above their columns so each gets several characters; when the context
is wider than the window, an overview row shows the whole cursor row with the visible window underlined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from llmscope.widgets.attention.context import context_lines
from llmscope.widgets.attention.data import AttentionData, Normalization, normalize, pool_max, scroll_to_include
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.styles import AttentionStyles

COLUMN_WIDTH = 2
"""Cells per key column: two cells by one row is roughly square on a terminal."""


@dataclass(frozen=True)
class ZoomGeometry:
    """Where the parts of the zoom view go in `width` × `height` cells."""

    digits: int
    label_width: int
    """Cells for the token text in a row label (the position number comes before it)."""
    visible_keys: int
    visible_rows: int
    label_rows: int
    """Staggered rows of key labels above the matrix."""
    overview: bool
    """Whether the whole-row overview line is shown (only when keys are windowed)."""

    @property
    def row_label_width(self) -> int:
        return self.digits + 1 + self.label_width + 1

    @property
    def header_rows(self) -> int:
        return self.label_rows + int(self.overview)


def zoom_geometry(data: AttentionData, width: int, height: int) -> ZoomGeometry:
    """As many key columns and query rows as fit, after the row labels and the staggered key labels."""
    digits = len(str(data.num_keys - 1))
    longest = max(cell_len(label) for label in data.token_labels)
    label_width = max(3, min(longest, 14 if width >= 120 else 9))
    row_label_width = digits + 1 + label_width + 1
    visible_keys = max(1, min(data.num_keys, (width - row_label_width) // COLUMN_WIDTH))
    label_rows = 4 if height >= 30 else 3
    overview = visible_keys < data.num_keys
    visible_rows = max(1, min(data.num_query_rows, height - label_rows - int(overview)))
    return ZoomGeometry(digits, label_width, visible_keys, visible_rows, label_rows, overview)


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
        self.offsets = offsets
        """(first visible query row, first visible key); None centres the window on the cursor."""
        self.palette = palette or HeatPalette()
        self.styles = styles or AttentionStyles()
        self.last_geometry: ZoomGeometry | None = None
        """The geometry of the latest `lines` call (for mapping clicks to cells)."""
        self.last_window: tuple[int, int] | None = None
        """(first query row, first key) of the latest `lines` call (the next view scrolls from there)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = options.height or (4 + self.data.num_query_rows + 1)
        new_line = Segment.line()
        for line in self.lines(options.max_width, height):
            yield from line
            yield new_line

    def window(self, geometry: ZoomGeometry) -> tuple[int, int]:
        """First visible query row and key: the given offsets moved just enough to contain the cursor."""
        row, key = self.cursor
        if self.offsets is None:
            start = (row - geometry.visible_rows // 2, key - geometry.visible_keys // 2)
        else:
            start = self.offsets
        return (
            scroll_to_include(start[0], row, geometry.visible_rows, self.data.num_query_rows),
            scroll_to_include(start[1], key, geometry.visible_keys, self.data.num_keys),
        )

    def scaled(self) -> np.ndarray:
        """The head's [query_rows, keys] weights in [0, 1] under the current normalisation."""
        return normalize(self.data.weights[self.layer, self.head], self.normalization)

    def lines(self, width: int, height: int) -> list[list[Segment]]:
        """Exactly `height` lines of exactly `width` cells."""
        geometry = zoom_geometry(self.data, width, height)
        first_row, first_key = self.window(geometry)
        self.last_geometry, self.last_window = geometry, (first_row, first_key)
        scaled = self.scaled()
        lines: list[list[Segment]] = []
        if geometry.overview:
            lines.append(self._overview(geometry, scaled[self.cursor[0]], first_key, width))
        lines.extend(self._key_labels(geometry, first_key))
        for row in range(first_row, first_row + geometry.visible_rows):
            lines.append(self._body_row(geometry, scaled, row, first_key))
        spare = height - len(lines) - 1
        if spare >= 3:  # a decode row leaves room: show the context as text shaded by the cursor row
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

    def hit(self, x: int, y: int) -> tuple[int, int] | None:
        """The (query row, key) drawn at content cell (x, y) in the latest `lines`, or None."""
        geometry, window = self.last_geometry, self.last_window
        if geometry is None or window is None:
            return None
        row = window[0] + y - geometry.header_rows
        column = (x - geometry.row_label_width) // COLUMN_WIDTH
        if not 0 <= row < min(self.data.num_query_rows, window[0] + geometry.visible_rows):
            return None
        if x < geometry.row_label_width or column >= geometry.visible_keys:
            return None
        return row, window[1] + column

    def _overview(self, geometry: ZoomGeometry, scaled_row: np.ndarray, first_key: int, width: int) -> list[Segment]:
        """The cursor's whole row max-pooled to the matrix width, the visible window underlined."""
        last_key = first_key + geometry.visible_keys - 1
        captions = (
            f"keys {first_key}–{last_key}/{self.data.num_keys}",
            f"{first_key}–{last_key} of {self.data.num_keys}",
            f"{first_key}–{last_key}/{self.data.num_keys}",
            f"{first_key}–{last_key}",
        )
        caption = next((text for text in captions if len(text) < geometry.row_label_width), captions[-1])
        bins = max(1, width - geometry.row_label_width)
        levels = to_levels(pool_max(scaled_row, bins), self.palette.levels)
        bin_first_key = (np.arange(bins) * self.data.num_keys) // bins
        bin_last_key = ((np.arange(1, bins + 1) * self.data.num_keys) // bins) - 1
        inside = (np.maximum(bin_last_key, bin_first_key) >= first_key) & (bin_first_key <= last_key)
        window_color = self.styles.window.color
        segments = [Segment(set_cell_size(caption, geometry.row_label_width - 1) + " ", self.styles.muted)]
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

    def _key_labels(self, geometry: ZoomGeometry, first_key: int) -> list[list[Segment]]:
        """Staggered rows: key j's label starts above its column in row j mod label_rows, nearest row last."""
        room = geometry.label_rows * COLUMN_WIDTH - 1
        rows: list[list[Segment]] = []
        for stagger in range(geometry.label_rows):
            segments = [Segment(" " * geometry.row_label_width)]
            x = 0
            for index in range(geometry.visible_keys):
                key = first_key + index
                if key % geometry.label_rows != (stagger + 1) % geometry.label_rows:
                    continue
                column_x = index * COLUMN_WIDTH
                if column_x < x:
                    continue
                text = set_cell_size(self.data.label(key), min(room, cell_len(self.data.label(key))))
                text = text[: max(0, geometry.visible_keys * COLUMN_WIDTH - column_x)]
                segments.append(Segment(" " * (column_x - x)))
                style = self.styles.selected if key == self.cursor[1] else self.styles.label
                segments.append(Segment(text, style))
                x = column_x + cell_len(text)
            rows.append(segments)
        return rows

    def _body_row(self, geometry: ZoomGeometry, scaled: np.ndarray, row: int, first_key: int) -> list[Segment]:
        position = self.data.query_position(row)
        label = set_cell_size(self.data.label(position), geometry.label_width)
        is_cursor_row = row == self.cursor[0]
        label_style = self.styles.selected if is_cursor_row else self.styles.label
        segments = [
            Segment(f"{position:>{geometry.digits}} ", self.styles.muted),
            Segment(label, label_style),
            Segment(" "),
        ]
        keys = slice(first_key, first_key + geometry.visible_keys)
        levels = to_levels(scaled[row, keys], self.palette.levels)
        for index, level in enumerate(levels):
            key = first_key + index
            style = self.palette.style(0, int(level))
            if is_cursor_row and key == self.cursor[1]:
                segments.append(Segment("[]", self.styles.cursor + Style(bgcolor=style.bgcolor)))
            elif key > position:
                segments.append(Segment(" " * COLUMN_WIDTH))
            else:
                segments.append(Segment(" " * COLUMN_WIDTH, style))
        return segments
