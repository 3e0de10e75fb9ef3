"""The heatmap area of the attention pane: draws a grid or zoom renderable through the Line API.

Strips are built once per (view, size) and served line by line, the way Toolong serves a long file.
"""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from llmscope.widgets.attention.grid import AttentionGrid
from llmscope.widgets.attention.zoom import AttentionZoom


class AttentionCanvas(Widget):
    """The heatmap area: draws a grid or zoom renderable through the Line API, strips cached per view and size."""

    DEFAULT_CSS = """
    AttentionCanvas { width: 1fr; height: 1fr; }
    """

    class Clicked(Message):
        """The user clicked the heatmap at (x, y) of its content area (the coordinates of the view's lines)."""

        def __init__(self, x: int, y: int) -> None:
            super().__init__()
            self.x = x
            self.y = y

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: AttentionGrid | AttentionZoom | None = None
        self._generation = 0
        self._strips: list[Strip] = []
        self._strips_key: tuple[int, int, int] | None = None

    def show_view(self, view: AttentionGrid | AttentionZoom | None) -> None:
        """Draw `view` from now on (its lines are built once per size)."""
        self.view = view
        self._generation += 1
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        key = (self._generation, width, height)
        if key != self._strips_key:
            lines = self.view.lines(width, height) if self.view is not None and width > 0 else []
            base = self.rich_style  # segments without a background take the widget's own
            self._strips = [Strip(line, width).apply_style(base) for line in lines]
            self._strips_key = key
        return self._strips[y] if y < len(self._strips) else Strip.blank(width, self.rich_style)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:  # clicks on the padding select nothing
            self.post_message(self.Clicked(offset.x, offset.y))
