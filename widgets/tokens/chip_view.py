"""The scrolling chip area of the tokenizer inspector, drawn with the Line API from a cached chip layout.

Only visible lines are rendered, and moving the selection redraws just the two chip rows involved.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.style import Style
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from llmscope.trace import TokenInfo
from llmscope.widgets.tokens.chips import (
    Chip,
    ChipLayout,
    ChipStyles,
    layout_chips,
    make_chip,
    render_chip_line,
    sub_lines,
)

__all__ = ["TokenChipView"]


def _foreground(style: Style) -> Style:
    """Keep a component style's text colour and attributes but not its background, to layer it on a chip."""
    return Style(color=style.color) + style.without_color


class TokenChipView(ScrollView, can_focus=False):
    """Scrollable chip area of the inspector; it only draws what it is given and reports clicks to its parent."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tokens--chip-even",
        "tokens--chip-odd",
        "tokens--special",
        "tokens--generated-even",
        "tokens--generated-odd",
        "tokens--selected",
        "tokens--marker",
        "tokens--piece-marker",
        "tokens--byte",
        "tokens--sub",
        "tokens--sub-selected",
    }
    """Styles of the chip parts: alternating backgrounds, special and selected chips, markers, hex/id lines."""

    DEFAULT_CSS = """
    TokenChipView {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    TokenChipView > .tokens--chip-even { background: $primary 45%; color: $foreground; }
    TokenChipView > .tokens--chip-odd { background: $primary 22%; color: $foreground; }
    TokenChipView > .tokens--special { background: $error 60%; color: $foreground; text-style: bold; }
    TokenChipView > .tokens--generated-even { background: $success 40%; color: $foreground; }
    TokenChipView > .tokens--generated-odd { background: $success 22%; color: $foreground; }
    TokenChipView > .tokens--selected { background: $accent; color: auto 90%; text-style: bold; }
    TokenChipView > .tokens--marker { color: $foreground 45%; }
    TokenChipView > .tokens--piece-marker { color: $text-success; text-style: bold; }
    TokenChipView > .tokens--byte { color: $text-warning; text-style: italic; }
    TokenChipView > .tokens--sub { color: $foreground 45%; }
    TokenChipView > .tokens--sub-selected { color: $accent; text-style: bold; }
    """

    class ChipClicked(Message):
        """The user clicked the chip of token `index` (handled by the inspector, which selects it)."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._tokens: list[TokenInfo] = []
        self._chips: list[Chip] = []
        self._byte_view = False
        self._show_ids = True
        self._selected: int | None = None
        self._layout: ChipLayout | None = None
        self._line_cache: LRUCache[int, Strip] = LRUCache(1024)

    @property
    def chip_layout(self) -> ChipLayout | None:
        """The current placement of chips (None before the first layout)."""
        return self._layout

    def set_tokens(
        self, tokens: list[TokenInfo], *, byte_view: bool, show_ids: bool, selected: int | None, generated: int = 0
    ) -> None:
        """Replace what is drawn; the last `generated` tokens are drawn as the model's, the others as the prompt."""
        self._tokens = tokens
        self._byte_view, self._show_ids, self._selected = byte_view, show_ids, selected
        first_generated = len(tokens) - generated
        self._chips = [
            replace(make_chip(token, byte_view, show_ids), generated=index >= first_generated)
            for index, token in enumerate(tokens)
        ]
        self._relayout()

    def set_selected(self, selected: int | None) -> None:
        """Move the highlight, redrawing only the two chip rows involved, and scroll the new one into view."""
        previous, self._selected = self._selected, selected
        if self._layout is None:
            return
        for index in (previous, selected):
            if index is not None and 0 <= index < len(self._layout.row_of):
                for line in self._layout.lines_of_token(index):
                    self._line_cache.discard(line)
                    self.refresh_line(line)
        self.scroll_to_token(selected)

    def scroll_to_token(self, index: int | None) -> None:
        """Scroll the least needed to show the chip row of token `index`."""
        if self._layout is None or index is None or not 0 <= index < len(self._layout.row_of):
            return
        lines = self._layout.lines_of_token(index)
        height = self.scrollable_content_region.height
        if lines.start < self.scroll_y:
            self.scroll_to(y=lines.start, animate=False, force=True)
        elif lines.stop > self.scroll_y + height:
            self.scroll_to(y=lines.stop - height, animate=False, force=True)

    def _chip_styles(self) -> ChipStyles:
        """Chip styles resolved from the component classes against the current theme."""
        get = self.get_component_rich_style
        return ChipStyles(
            base=self.rich_style,
            even=get("tokens--chip-even"),
            odd=get("tokens--chip-odd"),
            special=get("tokens--special"),
            generated_even=get("tokens--generated-even"),
            generated_odd=get("tokens--generated-odd"),
            selected=get("tokens--selected"),
            marker=_foreground(get("tokens--marker")),
            piece_marker=_foreground(get("tokens--piece-marker")),
            byte=_foreground(get("tokens--byte")),
            sub=_foreground(get("tokens--sub")),
            sub_selected=_foreground(get("tokens--sub-selected")),
        )

    def _relayout(self) -> None:
        """Place the chips for the current width and drop every cached line."""
        width = self.scrollable_content_region.width
        self._line_cache.clear()
        if width <= 0:
            self._layout = None
            return
        self._layout = layout_chips(self._chips, width, sub_lines(self._byte_view, self._show_ids))
        self.virtual_size = Size(width, self._layout.line_count)
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self._layout is None or self._layout.width != self.scrollable_content_region.width:
            self._relayout()
        self.scroll_to_token(self._selected)  # e.g. the detail line grew and took a line from this view

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()

    def render_line(self, y: int) -> Strip:
        line = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if self._layout is None or line >= self._layout.line_count:
            return Strip.blank(width, self.rich_style)
        strip = self._line_cache.get(line)
        if strip is None:
            segments = render_chip_line(self._layout, self._chips, line, self._chip_styles(), self._selected)
            strip = Strip(segments, self._layout.width)
            self._line_cache[line] = strip
        return strip.crop_extend(0, width, self.rich_style)

    def on_click(self, event: events.Click) -> None:
        if self._layout is None:
            return
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = self._layout.token_at(offset.x, self.scroll_offset.y + offset.y)
        if index is not None:
            self.post_message(self.ChipClicked(index))
