"""RoutingMap: the token × layer routing map as a widget that draws only the window that fits.

Part of the MoE pane; it reports clicks as a message and leaves the selection to the pane.
"""

from __future__ import annotations

from textual.app import RenderResult
from textual.events import Click
from textual.message import Message
from textual.widget import Widget

from llmscope.widgets.moe.render import RoutingMapView


class RoutingMap(Widget):
    """The token × layer map; draws only the window that fits and reports clicks on a cell."""

    DEFAULT_CSS = """
    RoutingMap { height: 1fr; width: 1fr; }
    """

    class CellClicked(Message):
        """A cell of the map was clicked (handled by the pane, which owns the selection)."""

        def __init__(self, position: int, moe_layer: int) -> None:
            super().__init__()
            self.position = position
            self.moe_layer = moe_layer

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view: RoutingMapView | None = None

    def render(self) -> RenderResult:
        if self.view is None:
            return ""
        self.view.height = self.size.height
        return self.view

    def on_click(self, event: Click) -> None:
        if self.view is not None and (cell := self.view.layout(self.size.width).cell_at(event.x, event.y)):
            self.post_message(self.CellClicked(*cell))
