"""LayersPane: the logit lens — what every layer would predict next, for every captured step.

A thin Textual widget over lens/render.py; the App assigns `content`: a `LensContent`, or `Unavailable` saying
how to turn the capture on. `l` asks the App (a `ToggleRequested` message) to switch the capture for later steps.
"""

from __future__ import annotations

from typing import ClassVar

from rich.color import Color
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.events import Click, Resize
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from llmscope.panes import LensContent
from llmscope.widgets.lens.render import (
    CELL_WIDTH,
    HEADER_ROWS,
    LABEL_WIDTH,
    RANK_WIDTH,
    GridCursor,
    LensStyles,
    detail_renderable,
    follow,
    grid_text,
    step_summary,
    visible_columns,
    visible_rows,
)
from llmscope.widgets.pane import Pane
from llmscope.widgets.theme_styles import component_text_style

WIDE_AT = 120
"""Pane width (columns) from which the details sit to the right of the grid."""

HELP_TEXT = (
    "The logit lens asks every layer what it would predict if the model stopped there. A transformer adds each "
    "layer's output to one running vector per position, the residual stream; the model's last step turns that "
    "vector into next-token probabilities with its final norm and its unembedding matrix. The lens applies the "
    "same final norm and unembedding to the residual stream after every layer (and to the embeddings, row emb), "
    "so each row is a full next-token distribution.\n\n"
    "**Reading the grid.** Columns are generated steps, rows are layers with the model's output at the top. A "
    "cell shows that layer's most probable next token; the stronger the tint, the more probability it has. A "
    "green cell's guess already is the token the step finally chose, a blue one's is another token. For the "
    "selected step, the bars beside the labels show the chosen token's rank at each layer on a log scale (a full "
    "bar is rank 1), ★ marks the first layer where it is top-1 and ▸ the layer from which it stays top-1 up to "
    "the output. Select a cell with the arrow keys (or a click) to list that layer's ten best candidates, its "
    "entropy, and the chosen token's rank and probability there. The top row is exactly the model's output "
    "distribution, before any sampler knob.\n\n"
    "**Limits.** Early layers were never trained to be read through the unembedding, so their guesses are rough "
    "and often meaningless: a poor lens guess does not mean the layer knows nothing. The tuned lens (Belrose et al. "
    "2023) trains a small translator per layer for that reason and reads early layers better. With tied embeddings "
    "(the input and output matrices shared, as in SmolLM2) the emb row often just predicts the input token back. "
    "Only the top ten tokens per layer are kept, so a replay needs no model.\n\n"
    "**Cost.** One unembedding per layer per step: on a CPU about 1.7× a SmolLM2 decode step, so it is off unless "
    "you press l here or start with --lens; it applies from the next step on."
)


class LensGrid(Widget):
    """The layers × steps grid, drawn for exactly the cells that fit (30+ layers and long runs scroll)."""

    DEFAULT_CSS = """
    LensGrid { height: 1fr; width: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: LensContent | None = None
        self.cursor = GridCursor(layer=0, column=0)
        self.lens_styles = LensStyles.plain()

    def show(self, data: LensContent, cursor: GridCursor, styles: LensStyles) -> None:
        """Draw `data` with `cursor` (its scroll offsets are adjusted to keep the cursor in view)."""
        self.data, self.cursor, self.lens_styles = data, cursor, styles
        self.refresh()

    def placed(self, width: int, height: int) -> GridCursor:
        """The cursor with offsets that keep its cell inside a `width` × `height` window."""
        cursor, data = self.cursor, self.data
        if data is None:
            return cursor
        rows = data.lenses[0].num_rows
        top = follow(cursor.top, rows - 1 - cursor.layer, visible_rows(height), rows)
        left = follow(cursor.left, cursor.column, visible_columns(width), len(data.lenses))
        return GridCursor(cursor.layer, cursor.column, top, left)

    def render(self) -> Text | str:
        if self.data is None:
            return ""
        self.cursor = self.placed(self.size.width, self.size.height)
        return grid_text(self.data, self.cursor, self.size.width, self.size.height, self.lens_styles)

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        """(layer, column) of the cell at widget offset (x, y), or None outside the cells."""
        data = self.data
        if data is None or y < HEADER_ROWS or x < LABEL_WIDTH + RANK_WIDTH:
            return None
        rows = data.lenses[0].num_rows
        display_row = self.cursor.top + y - HEADER_ROWS
        column = self.cursor.left + (x - LABEL_WIDTH - RANK_WIDTH) // CELL_WIDTH
        if display_row >= rows or column >= len(data.lenses):
            return None
        return rows - 1 - display_row, column


class LayersPane(Pane[LensContent], can_focus=True):
    """Each layer's next-token guess for every step, the chosen token's rank per layer, and a cell's candidates."""

    WAITING = "No step yet: the logit lens appears after the first forward pass."
    HELP: ClassVar[str] = HELP_TEXT

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(1, 0)", "Later layer", show=False),
        Binding("down", "move(-1, 0)", "Earlier layer", show=False),
        Binding("left", "move(0, -1)", "Earlier step", show=False),
        Binding("right", "move(0, 1)", "Later step", show=False),
        Binding("pageup", "move(5, 0)", "5 layers up", show=False),
        Binding("pagedown", "move(-5, 0)", "5 layers down", show=False),
        Binding("home", "edge(1)", "Output layer", show=False),
        Binding("end", "edge(0)", "Embeddings", show=False),
        Binding("shift+down", "scroll_details(3)", "Scroll details down", show=False),
        Binding("shift+up", "scroll_details(-3)", "Scroll details up", show=False),
        Binding("l", "toggle_lens", "Lens on/off"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "lens-pane--muted",
        "lens-pane--heading",
        "lens-pane--chosen",
        "lens-pane--mark",
        "lens-pane--bar",
        "lens-pane--cursor",
        "lens-pane--tint",
    }

    DEFAULT_CSS = """
    LayersPane {
        height: 1fr;
        width: 1fr;
        background: $surface;
        & > .lens-pane--muted { color: $text-muted; }
        & > .lens-pane--heading { color: $foreground; text-style: bold; }
        & > .lens-pane--chosen { color: $success; text-style: bold; }
        & > .lens-pane--mark { color: $warning; text-style: bold; }
        & > .lens-pane--bar { color: $primary; }
        & > .lens-pane--cursor { color: $accent; text-style: bold reverse; }
        & > .lens-pane--tint { color: $primary; }
        &:focus #lens-header { background: $primary 15%; }
        #lens-header { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
        #lens-message { padding: 1 2; color: $text-muted; display: none; }
        #lens-body { height: 1fr; layout: vertical; }
        #lens-grid-box { height: 1fr; min-height: 8; padding: 0 1; }
        #lens-details { height: 13; padding: 0 1; border-top: hkey $panel; scrollbar-size-vertical: 1; }
        &.-wide #lens-body { layout: horizontal; }
        &.-wide #lens-details { height: 1fr; width: 52; border-top: none; border-left: vkey $panel; }
        &.-unavailable #lens-message { display: block; }
        &.-unavailable #lens-body { display: none; }
    }
    """

    class ToggleRequested(Message):
        """The user pressed `l`: switch the logit-lens capture on or off for the steps that follow."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.cursor_layer = -1
        """Lens row of the selected cell (-1 until the first content: then the output row)."""
        self.cursor_column = 0
        """Position of the selected step in the lenses."""
        self._followed: tuple[int, int] | None = None
        """(selected, number of lenses) of the last content: a new step moves the cursor to the shown step."""

    def compose(self) -> ComposeResult:
        yield Static(self.WAITING, id="lens-message")
        yield Static("", id="lens-header")
        with Vertical(id="lens-body"):
            with Vertical(id="lens-grid-box"):
                yield LensGrid(id="lens-grid")
            with VerticalScroll(id="lens-details"):
                yield Static(id="lens-detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_all))

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")

    def draw(self, data: LensContent) -> None:
        if not data.lenses:
            self.show_unavailable(self.WAITING)
            return
        rows = data.lenses[0].num_rows
        if self._followed != (data.selected, len(data.lenses)):
            self._followed = (data.selected, len(data.lenses))
            self.cursor_column = data.selected
        self.cursor_column = max(0, min(self.cursor_column, len(data.lenses) - 1))
        self.cursor_layer = rows - 1 if self.cursor_layer < 0 else min(self.cursor_layer, rows - 1)
        self._render_all()

    def select_layer(self, layer: int) -> None:
        """Put the cursor on lens row `layer` (0: the embeddings), as a demo slide that names a layer asks."""
        rows = self.data.lenses[0].num_rows if self.data is not None and self.data.lenses else layer + 1
        self.cursor_layer = max(0, min(layer, rows - 1))
        self._render_all()

    def draw_unavailable(self, reason: str) -> None:
        self.query_one("#lens-message", Static).update(f"Logit lens: nothing to show. {reason}")
        self.query_one("#lens-header", Static).update("")

    def styles_for_renderables(self) -> LensStyles:
        """The theme's colours for the renderables, read from this widget's component classes."""

        def style(name: str):
            return component_text_style(self, f"lens-pane--{name}")

        background = self.styles.background
        tint, chosen = style("tint").color, style("chosen").color
        return LensStyles(
            muted=style("muted"),
            heading=style("heading"),
            chosen=style("chosen"),
            mark=style("mark"),
            bar=style("bar"),
            cursor=style("cursor"),
            surface=(background.r, background.g, background.b),
            tint=tint.get_truecolor() if tint is not None else Color.parse("blue").get_truecolor(),
            chosen_tint=chosen.get_truecolor() if chosen is not None else Color.parse("green").get_truecolor(),
        )

    def _render_all(self) -> None:
        data = self.data
        if data is None or not data.lenses or not self.is_mounted:
            return
        styles = self.styles_for_renderables()
        capture = "" if data.capturing else " · capture off now (l turns it on)"
        steps = f"{len(data.lenses)} {'step' if len(data.lenses) == 1 else 'steps'} with a lens"
        self.query_one("#lens-header", Static).update(
            f"{step_summary(data, self.cursor_column)}\n{steps} · {data.lenses[0].num_rows - 1} layers{capture} · "
            "↑↓ layer ←→ step · shift+↑↓ candidates · ? help"
        )
        grid = self.query_one(LensGrid)
        grid.show(data, GridCursor(self.cursor_layer, self.cursor_column, grid.cursor.top, grid.cursor.left), styles)
        self.query_one("#lens-detail", Static).update(
            detail_renderable(data, self.cursor_layer, self.cursor_column, styles)
        )

    # ------------------------------------------------------------------ actions
    def action_move(self, layers: int, columns: int) -> None:
        data = self.data
        if data is None or not data.lenses:
            return
        self.cursor_layer = max(0, min(data.lenses[0].num_rows - 1, self.cursor_layer + layers))
        self.cursor_column = max(0, min(len(data.lenses) - 1, self.cursor_column + columns))
        self._render_all()

    def action_edge(self, top: int) -> None:
        data = self.data
        if data is None or not data.lenses:
            return
        self.cursor_layer = data.lenses[0].num_rows - 1 if top else 0
        self._render_all()

    def action_scroll_details(self, lines: int) -> None:
        """Scroll the cell's candidates (in a short terminal they are taller than their box)."""
        self.query_one("#lens-details", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_toggle_lens(self) -> None:
        self.post_message(self.ToggleRequested())

    def on_click(self, event: Click) -> None:
        grid = self.query_one(LensGrid)
        offset = event.get_content_offset(grid)
        if offset is None:
            return
        cell = grid.cell_at(offset.x, offset.y)
        if cell is not None:
            self.cursor_layer, self.cursor_column = cell
            self._render_all()
