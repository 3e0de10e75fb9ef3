"""The Attention pane: a layer × head grid of small heatmaps, a zoom on one head, sinks and KV groups.

The App assigns `content`: an `AttentionContent` with one step's attention (plain numpy) or `Unavailable`;
the pane reports the selected head with `HeadSelected`. Drawing lives in pure Rich renderables (attention_grid,
attention_zoom, attention_summary); this module holds state, keys and layout.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from llmscope.panes import AttentionContent
from llmscope.widgets.attention.canvas import AttentionCanvas
from llmscope.widgets.attention.data import AttentionData, Normalization, keys_per_bin
from llmscope.widgets.attention.grid import AttentionGrid, GridCellCache
from llmscope.widgets.attention.help import ATTENTION_HELP
from llmscope.widgets.attention.palette import HeatPalette
from llmscope.widgets.attention.styles import ATTENTION_CSS, COMPONENT_CLASSES, AttentionStyles, styles_from
from llmscope.widgets.attention.summary import SinkSummary, TopKeys, legend_text, pane_status, title_text
from llmscope.widgets.attention.zoom import AttentionZoom, ZoomGeometry, zoom_geometry
from llmscope.widgets.pane import Pane

Mode = Literal["grid", "zoom"]
WIDE_PANE = 110
"""From this width on, the sink table / strongest keys sit to the right of the heatmap."""

_LAYER = Binding.Group("Layer", compact=True)
_HEAD = Binding.Group("Head", compact=True)
_KEYS = Binding.Group("Key zoom", compact=True)
_PAGE = Binding.Group("Key window", compact=True)


class AttentionPane(Pane[AttentionContent], can_focus=True):
    """Attention weights of one step: every layer and head at a glance, one head up close."""

    WAITING = "No step yet: attention appears after the first forward pass."

    HELP: ClassVar[str] = ATTENTION_HELP
    """What the pane shows and how to read it, for the App's help screen."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle_zoom", "Zoom"),
        Binding("n", "toggle_normalization", "Row/global"),
        Binding("left_square_bracket", "layer(-1)", "Previous layer", key_display="[", group=_LAYER),
        Binding("right_square_bracket", "layer(1)", "Next layer", key_display="]", group=_LAYER),
        Binding("comma", "head(-1)", "Previous head", key_display=",", group=_HEAD),
        Binding("full_stop", "head(1)", "Next head", key_display=".", group=_HEAD),
        Binding("g", "grid", "Grid", show=False),
        # PgUp/PgDn page the zoom's keys when they need more than one window, else they change the layer.
        Binding("pageup", "page_keys(-1)", "Earlier keys", key_display="PgUp", group=_PAGE),
        Binding("pagedown", "page_keys(1)", "Later keys", key_display="PgDn", group=_PAGE),
        Binding("pageup", "layer(-1)", "Previous layer", show=False),
        Binding("pagedown", "layer(1)", "Next layer", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("home", "key_edge(0)", "First key", show=False),
        Binding("end", "key_edge(1)", "Last key", show=False),
        Binding("plus,equals_sign", "cell_rows(1)", "Taller thumbnails", show=False),
        Binding("minus", "cell_rows(-1)", "Shorter thumbnails", show=False),
        Binding("plus,equals_sign", "zoom_keys(1)", "Fewer keys per column", key_display="+", group=_KEYS),
        Binding("minus", "zoom_keys(-1)", "More keys per column", key_display="−", group=_KEYS),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)
    DEFAULT_CSS = ATTENTION_CSS

    layer_index: reactive[int] = reactive(0, init=False)
    """Selected decoder layer (0-based)."""
    head: reactive[int] = reactive(0, init=False)
    """Selected query head within the layer (0-based)."""
    mode: reactive[Mode] = reactive("grid", init=False)
    """'grid' shows every layer and head; 'zoom' shows the selected head with token labels."""
    normalization: reactive[Normalization] = reactive("row", init=False)
    """'row': each query row scaled by its own max; 'global': scaled by the largest weight of everything shown
    (every layer and head of the step in the grid, the selected head's whole matrix in zoom)."""
    cursor: reactive[tuple[int, int]] = reactive((0, 0), init=False)
    """(query row index into the attention rows, key position) of the zoom cursor."""
    keys_per_column: reactive[int] = reactive(1, init=False)
    """Consecutive keys the zoom sums into one column (a power of two; '-' doubles it, '+' halves it)."""

    class HeadSelected(Message):
        """The selected (layer, head) changed, by key, click or new data."""

        def __init__(self, pane: AttentionPane, layer: int, head: int) -> None:
            super().__init__()
            self.pane = pane
            self.layer = layer
            self.head = head

        @property
        def control(self) -> AttentionPane:
            return self.pane

    def __init__(
        self,
        *,
        title: str = "Attention",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.disabled = disabled
        self.title = title
        self.shown: AttentionData | None = None
        """The step drawn, with its derived figures (None while the pane says why it has nothing)."""
        self._rows_per_layer = 0
        self._grid_cache = GridCellCache()
        self._palette: HeatPalette | None = None
        self._styles: AttentionStyles | None = None
        self._grid_view: AttentionGrid | None = None
        self._zoom_view: AttentionZoom | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.title, id="attention-title", markup=False)
        with Horizontal(id="attention-body"):
            yield AttentionCanvas(id="attention-canvas")
            yield Static(id="attention-side")
        yield Static(id="attention-legend", markup=False)
        yield Static(id="attention-status", markup=False)
        yield Static(
            self.unavailable_reason or "", id="attention-unavailable", classes="pane-unavailable", markup=False
        )

    # ----- the App's API -------------------------------------------------------------------------------

    def draw(self, content: AttentionContent) -> None:
        """Draw one step: attention float32 [layers, heads, query_rows, keys], rows starting at `query_start`.

        Raises ValueError when the shapes do not fit together.
        """
        first = self.shown is None
        data = AttentionData.from_content(content)
        self.shown = data
        layer, head = self._clamp_layer(self.layer_index), self._clamp_head(self.head)
        changed = (layer, head) != (self.layer_index, self.head)
        self.set_reactive(AttentionPane.layer_index, layer)
        self.set_reactive(AttentionPane.head, head)
        row = data.num_query_rows - 1
        key = int(np.argmax(data.weights[layer, head, row])) if first else min(self.cursor[1], data.num_keys - 1)
        self.set_reactive(AttentionPane.cursor, (row, key))
        self._zoom_view = None  # a new step re-centres the zoom window on the cursor
        if changed or first:
            self.post_message(self.HeadSelected(self, layer, head))
        self._redraw()

    def point_at_strongest(self) -> None:
        """Put the zoom cursor on the selected head's strongest key in the newest query row."""
        if self.shown is not None:
            row = self.shown.num_query_rows - 1
            self.cursor = (row, int(np.argmax(self.shown.weights[self.layer_index, self.head, row])))

    def draw_unavailable(self, reason: str) -> None:
        """Replace the heatmaps by a calm sentence saying why there is no attention to show."""
        self.shown = None
        self._grid_view = self._zoom_view = None
        super().draw_unavailable(reason)
        self._redraw()

    # ----- reactives -------------------------------------------------------------------------------------

    def _clamp_layer(self, layer: int) -> int:
        """Inside the step's layers; before any data the choice is kept (a demo selects before the pane draws)."""
        return max(0, layer) if self.shown is None else max(0, min(layer, self.shown.num_layers - 1))

    def _clamp_head(self, head: int) -> int:
        return max(0, head) if self.shown is None else max(0, min(head, self.shown.num_heads - 1))

    def validate_layer_index(self, layer: int) -> int:
        return self._clamp_layer(layer)

    def validate_head(self, head: int) -> int:
        return self._clamp_head(head)

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        if self.shown is None:
            return (0, 0)
        row, key = cursor
        return (max(0, min(row, self.shown.num_query_rows - 1)), max(0, min(key, self.shown.num_keys - 1)))

    def validate_mode(self, mode: str) -> Mode:
        return "zoom" if mode == "zoom" else "grid"

    def validate_normalization(self, normalization: str) -> Normalization:
        return "global" if normalization == "global" else "row"

    def watch_layer_index(self) -> None:
        self.post_message(self.HeadSelected(self, self.layer_index, self.head))
        self._redraw()

    def watch_head(self) -> None:
        self.post_message(self.HeadSelected(self, self.layer_index, self.head))
        self._redraw()

    def watch_mode(self) -> None:
        self._redraw()

    def watch_normalization(self) -> None:
        self._redraw()

    def watch_cursor(self) -> None:
        self._redraw()

    def watch_keys_per_column(self) -> None:
        self._zoom_view = None  # re-centre the window on the cursor at the new binning
        self._redraw()

    def validate_keys_per_column(self, keys_per_column: int) -> int:
        return max(1, min(keys_per_column, self._coarsest_binning()))

    def _zoom_geometry(self) -> ZoomGeometry | None:
        """Where the zoom puts things at the canvas's current size (None without data or before layout)."""
        if self.shown is None or not self.is_mounted:
            return None
        width, height = self.query_one(AttentionCanvas).size
        return zoom_geometry(self.shown, width, height, self.keys_per_column) if width and height else None

    def _coarsest_binning(self) -> int:
        """Keys per column that fit the whole context into the zoom's columns (1 before the pane has a size)."""
        geometry = self._zoom_geometry()
        return 1 if geometry is None else geometry.coarsest

    # ----- actions ---------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that cannot act in this state are off: the key-edge and grid keys outside the zoom, and the
        thumbnail height outside the grid or on a decode step (its one query row is a one-line bar)."""
        if action in ("key_edge", "grid"):
            return self.mode == "zoom"
        if action == "zoom_keys":
            limit = 1 if parameters and parameters[0] == 1 else self._coarsest_binning()
            return self.mode == "zoom" and self.keys_per_column != limit
        if action == "page_keys":
            geometry = self._zoom_geometry() if self.mode == "zoom" else None
            return geometry is not None and geometry.overview
        if action == "cell_rows":
            return self.mode == "grid" and self.shown is not None and not self.shown.is_single_row
        return True

    def action_toggle_zoom(self) -> None:
        """Enter toggles between the grid of all heads and the zoom on the selected head."""
        self.mode = "grid" if self.mode == "zoom" else "zoom"

    def action_grid(self) -> None:
        self.mode = "grid"

    def action_toggle_normalization(self) -> None:
        self.normalization = "global" if self.normalization == "row" else "row"

    def action_layer(self, delta: int) -> None:
        self.layer_index += delta

    def action_head(self, delta: int) -> None:
        self.head += delta

    def action_move(self, dx: int, dy: int) -> None:
        """Arrows: pick a head in the grid, move the cursor (query row, key) in zoom."""
        if self.mode == "grid":
            self.layer_index += dy
            self.head += dx
        else:
            row, key = self.cursor
            per = self.keys_per_column
            self.cursor = (row + dy, (key // per + dx) * per if dx else key)

    def action_zoom_keys(self, direction: int) -> None:
        """'+' zooms in (half as many keys per column), '−' zooms out (twice as many, up to the whole context)."""
        self.keys_per_column = self.keys_per_column // 2 if direction > 0 else self.keys_per_column * 2

    def action_page_keys(self, direction: int) -> None:
        """PgUp and PgDn move the zoom's key window (and the cursor) by one window's width."""
        geometry = self._zoom_geometry()
        if geometry is not None:
            view = self._zoom_view
            if view is not None and view.last_window is not None:  # the window itself moves a page, not just enough
                first_row, first_key = view.last_window
                view.last_window = (first_row, max(0, first_key + direction * geometry.span))
            row, key = self.cursor
            self.cursor = (row, key + direction * geometry.span)

    def action_key_edge(self, end: int) -> None:
        if self.shown is not None and self.mode == "zoom":
            self.cursor = (self.cursor[0], self.shown.num_keys - 1 if end else 0)

    def action_cell_rows(self, delta: int) -> None:
        """Make grid thumbnails taller or shorter (taller shows more of each matrix, fewer layers at once)."""
        if self._grid_view is not None:
            current = self._grid_view.last_geometry.rows_per_layer if self._grid_view.last_geometry else 1
            self._rows_per_layer = max(1, current + delta)
            self._redraw()

    def on_attention_canvas_clicked(self, event: AttentionCanvas.Clicked) -> None:
        """A click picks the head (clicking the selected one zooms) or moves the zoom cursor."""
        event.stop()
        self.focus()
        view = self.query_one(AttentionCanvas).view
        if isinstance(view, AttentionGrid):
            hit = view.hit(event.x, event.y)
            if hit is not None:
                if hit == (self.layer_index, self.head):
                    self.mode = "zoom"
                self.layer_index, self.head = hit
        elif isinstance(view, AttentionZoom):
            hit = view.hit(event.x, event.y)
            if hit is not None:
                self.cursor = hit

    def on_resize(self) -> None:
        self._redraw()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None  # re-read styles (and the background, for the palette) after a theme change
        if self.is_mounted:
            self.call_after_refresh(self._redraw)

    # ----- drawing ---------------------------------------------------------------------------------------

    def _theme(self) -> tuple[HeatPalette, AttentionStyles]:
        """The palette and text styles for the current theme (rebuilt when CSS or theme changes)."""
        if self._palette is None or self._styles is None:
            color = self.background_colors[1]
            background = (color.r, color.g, color.b)
            if self._palette is None or self._palette.background != background:
                self._palette = HeatPalette(background)
            self._styles = styles_from(self.get_component_rich_style)
        return self._palette, self._styles

    def _redraw(self) -> None:
        """Hand fresh renderables to the children; the canvas rebuilds strips only for a new view or size."""
        if not self.is_mounted:
            return
        data = self.shown
        canvas = self.query_one(AttentionCanvas)
        side = self.query_one("#attention-side", Static)
        title = self.query_one("#attention-title", Static)
        if data is None:
            title.update(self.title)
            canvas.show_view(None)
            return
        palette, styles = self._theme()
        selection: dict[str, Any] = {"layer": self.layer_index, "head": self.head, "palette": palette, "styles": styles}
        wide = self.size.width >= WIDE_PANE
        self.set_class(wide, "-wide")
        if self.mode == "grid":
            previous = self._grid_view
            grid = AttentionGrid(
                data,
                normalization=self.normalization,
                layer_offset=previous.last_first_layer if previous is not None else None,
                rows_per_layer=self._rows_per_layer,
                cache=self._grid_cache,
                **selection,
            )
            self._grid_view = grid
            view: AttentionGrid | AttentionZoom = grid
            side.update(SinkSummary(data, **selection))
        else:
            previous_zoom = self._zoom_view
            view = AttentionZoom(
                data,
                cursor=self.cursor,
                normalization=self.normalization,
                keys_per_column=self.keys_per_column,
                offsets=previous_zoom.last_window if previous_zoom is not None else None,
                **selection,
            )
            self._zoom_view = view
            side.update(TopKeys(data, row=self.cursor[0], count=12, **selection))
        canvas.show_view(view)
        title.update(title_text(data, self.title))
        width, height = canvas.size
        if self.mode == "zoom":
            per: float = self._zoom_binning()
        else:
            per = keys_per_bin(data.num_keys, grid.geometry(width, height).cell_width) if width else 1
        legend = legend_text(data, self.mode, self.normalization, palette, per)
        self.query_one("#attention-legend", Static).update(legend)
        self.query_one("#attention-status", Static).update(self._status())

    def _zoom_binning(self) -> int:
        """Keys per zoom column as drawn (the wish capped by the context), 1 in the grid."""
        geometry = self._zoom_geometry() if self.mode == "zoom" else None
        return 1 if geometry is None else geometry.keys_per_column

    def layer_note(self, layer: int) -> str:
        """What is special about `layer`'s attention (a sliding window, or no weights at all), else ""."""
        content = self.data
        notes = content.layer_notes if content is not None else ()
        return notes[layer] if layer < len(notes) else ""

    def _status(self) -> Text:
        assert self.shown is not None
        note = self.layer_note(self.layer_index)
        status = pane_status(
            self.shown, self.mode, self.layer_index, self.head, self.cursor, self._zoom_binning(), note
        )
        stored = self.data.storage_note if self.data is not None else ""
        return Text.assemble(("≈ replay ", "bold italic"), status, f" · {stored}") if stored else status

    def status_line(self) -> str:
        """The status line as plain text (what a screen reader or a test would read)."""
        return self.unavailable_reason or "" if self.shown is None else self._status().plain


__all__ = ["AttentionPane"]
