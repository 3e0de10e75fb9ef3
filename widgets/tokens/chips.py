"""Token chips: one coloured block per token, wrapped to the width, with optional hex-byte and id lines below.

The layout is computed once per (tokens, width, view) and any single line can then be drawn on its own, so
the widget can draw only the visible lines of a 2,000-token prompt (Line API) while tests render it all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from llmscope.format import EMPTY_GLYPH, visible_token_text
from llmscope.trace import TokenInfo
from llmscope.widgets.tokens.text import Role, hex_bytes, piece_label, token_label

SubLine = Literal["label", "bytes", "id"]
"""The lines of one chip row: the chip itself, its bytes in hex (byte view), its id."""

CHIP_GAP = 1
"""Blank cells between neighbouring chips."""


@dataclass(frozen=True)
class ChipStyles:
    """Rich styles for every part of a chip; the widget fills these from its theme-aware component classes."""

    base: Style = field(default_factory=Style)
    even: Style = field(default_factory=lambda: Style(color="#e6e6e6", bgcolor="#2d3b52"))
    odd: Style = field(default_factory=lambda: Style(color="#e6e6e6", bgcolor="#3d3350"))
    special: Style = field(default_factory=lambda: Style(color="#1b1b1b", bgcolor="#e0a84e", bold=True))
    selected: Style = field(default_factory=lambda: Style(color="#101010", bgcolor="#7fc8f8", bold=True))
    generated_even: Style = field(default_factory=lambda: Style(color="#e6e6e6", bgcolor="#2f4a35"))
    generated_odd: Style = field(default_factory=lambda: Style(color="#e6e6e6", bgcolor="#3d5a2f"))
    """Chips of tokens the model generated (the others are the prompt)."""
    marker: Style = field(default_factory=lambda: Style(color="#8a93a6"))
    piece_marker: Style = field(default_factory=lambda: Style(color="#9be39b", bold=True))
    """Ġ, Ċ, ▁ and ## in the byte view, where they are the point, so not dimmed."""
    byte: Style = field(default_factory=lambda: Style(color="#e58f6b", italic=True))
    sub: Style = field(default_factory=lambda: Style(color="#7d8590"))
    sub_selected: Style = field(default_factory=lambda: Style(color="#7fc8f8", bold=True))


@dataclass(frozen=True)
class Chip:
    """How one token is drawn: its label runs, the hex and id lines, and its width in cells."""

    label: tuple[tuple[str, Role], ...]
    hex_text: str
    id_text: str
    width: int
    special: bool
    breaks_line: bool
    """True when the token ends with a newline, so the next chip starts a new row (the text keeps its shape)."""
    generated: bool = False
    """The model generated this token (drawn in the generated colours)."""


def make_chip(token: TokenInfo, byte_view: bool, show_ids: bool) -> Chip:
    """The chip for one token (cached on what it shows, not its offsets, so re-tokenizing while typing is cheap)."""
    return _chip(token.id, token.piece, token.text, token.raw_bytes, token.special, byte_view, show_ids)


@lru_cache(maxsize=65536)
def _chip(token_id: int, piece: str, text: str, raw: bytes, special: bool, byte_view: bool, show_ids: bool) -> Chip:
    """Build a chip from the fields of a token that change its look."""
    if special:
        label: list[tuple[str, Role]] = [(visible_token_text(piece if byte_view else (text or piece)), "text")]
        hex_text = "special"
    elif byte_view:
        label = piece_label(piece)
        hex_text = hex_bytes(raw) if raw else "no bytes"
    else:
        label = token_label(raw) if raw else [(piece or EMPTY_GLYPH, "marker")]
        hex_text = hex_bytes(raw)
    width = sum(cell_len(run) for run, _ in label)
    if byte_view:
        width = max(width, len(hex_text))
    if show_ids:
        width = max(width, len(str(token_id)))
    breaks_line = not special and raw.rstrip(b" \t").endswith(b"\n")
    return Chip(tuple(label), hex_text, str(token_id), max(1, width), special, breaks_line)


def sub_lines(byte_view: bool, show_ids: bool) -> tuple[SubLine, ...]:
    """Which lines each chip row has, top to bottom."""
    lines: list[SubLine] = ["label"]
    if byte_view:
        lines.append("bytes")
    if show_ids:
        lines.append("id")
    return tuple(lines)


@dataclass(frozen=True)
class ChipLayout:
    """Chips placed into rows: `rows[r]` lists (token index, x, drawn width); `row_of[i]` is token i's row."""

    rows: tuple[tuple[tuple[int, int, int], ...], ...]
    row_of: tuple[int, ...]
    kinds: tuple[SubLine, ...]
    width: int

    @property
    def line_count(self) -> int:
        return len(self.rows) * len(self.kinds)

    def lines_of_token(self, index: int) -> range:
        """The line numbers the chip of token `index` occupies."""
        top = self.row_of[index] * len(self.kinds)
        return range(top, top + len(self.kinds))

    def token_at(self, x: int, line: int) -> int | None:
        """The token whose chip covers cell (x, line), or None for a gap."""
        row = line // max(1, len(self.kinds))
        if not 0 <= row < len(self.rows):
            return None
        for index, left, width in self.rows[row]:
            if left <= x < left + width:
                return index
        return None


def layout_chips(chips: list[Chip], width: int, kinds: tuple[SubLine, ...]) -> ChipLayout:
    """Greedy left-to-right wrap of the chips into rows no wider than `width` (a newline token ends its row)."""
    width = max(4, width)
    rows: list[tuple[tuple[int, int, int], ...]] = []
    row_of: list[int] = []
    current: list[tuple[int, int, int]] = []
    cursor = 0
    for index, chip in enumerate(chips):
        drawn = min(chip.width, width)
        if current and cursor + drawn > width:
            rows.append(tuple(current))
            current, cursor = [], 0
        current.append((index, cursor, drawn))
        row_of.append(len(rows))
        cursor += drawn + CHIP_GAP
        if chip.breaks_line:
            rows.append(tuple(current))
            current, cursor = [], 0
    if current:
        rows.append(tuple(current))
    return ChipLayout(tuple(rows), tuple(row_of), kinds, width)


def _fit(runs: Iterable[tuple[str, Style]], width: int) -> list[Segment]:
    """Segments padded or cut to exactly `width` cells (a cut ends with '…')."""
    runs = list(runs)
    total = sum(cell_len(text) for text, _ in runs)
    if total <= width:
        segments = [Segment(text, style) for text, style in runs]
        if total < width and runs:
            segments.append(Segment(" " * (width - total), runs[-1][1]))
        return segments
    segments, used = [], 0
    for text, style in runs:
        room = width - 1 - used
        if room <= 0:
            break
        piece = text if cell_len(text) <= room else set_cell_size(text, room)
        segments.append(Segment(piece, style))
        used += cell_len(piece)
    segments.append(Segment("…" + " " * max(0, width - 1 - used), runs[-1][1]))
    return segments


def render_chip_line(
    layout: ChipLayout, chips: list[Chip], line: int, styles: ChipStyles, selected: int | None
) -> list[Segment]:
    """The segments of one layout line, exactly `layout.width` cells wide."""
    row, kind = divmod(line, len(layout.kinds))
    segments: list[Segment] = []
    cursor = 0
    for index, left, drawn in layout.rows[row]:
        if left > cursor:
            segments.append(Segment(" " * (left - cursor), styles.base))
        chip = chips[index]
        is_selected = index == selected
        sub_kind = layout.kinds[kind]
        if sub_kind == "label":
            chip_style = (
                styles.selected
                if is_selected
                else styles.special
                if chip.special
                else (styles.generated_odd if index % 2 else styles.generated_even)
                if chip.generated
                else (styles.odd if index % 2 else styles.even)
            )
            marker_style = styles.piece_marker if "bytes" in layout.kinds else styles.marker
            role_styles = {"text": chip_style, "marker": chip_style + marker_style, "byte": chip_style + styles.byte}
            if is_selected:
                role_styles = {role: chip_style for role in role_styles}
            runs = [(text, role_styles[role]) for text, role in chip.label]
        else:
            sub_style = styles.base + (styles.sub_selected if is_selected else styles.sub)
            runs = [(chip.hex_text if sub_kind == "bytes" else chip.id_text, sub_style)]
        segments.extend(_fit(runs, drawn))
        cursor = left + drawn
    if cursor < layout.width:
        segments.append(Segment(" " * (layout.width - cursor), styles.base))
    return segments


class TokenChips:
    """Rich renderable: the tokens as wrapped chips (standalone use and tests; the widget draws lazily)."""

    def __init__(
        self,
        tokens: list[TokenInfo],
        *,
        byte_view: bool = False,
        show_ids: bool = True,
        selected: int | None = None,
        styles: ChipStyles | None = None,
    ) -> None:
        self.tokens = tokens
        self.byte_view = byte_view
        self.show_ids = show_ids
        self.selected = selected
        self.styles = styles or ChipStyles()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        chips = [make_chip(token, self.byte_view, self.show_ids) for token in self.tokens]
        layout = layout_chips(chips, options.max_width, sub_lines(self.byte_view, self.show_ids))
        for line in range(layout.line_count):
            yield from render_chip_line(layout, chips, line, self.styles, self.selected)
            yield Segment.line()
