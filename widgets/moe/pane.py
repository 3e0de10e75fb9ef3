"""MoERoutingPane: which experts each token used per layer, the router's full distribution, expert load, aux loss.

A thin Textual widget over moe/render.py and moe/tables.py; the App assigns `content`: a `MoEContent` with
routing arrays concatenated over the steps, a `DenseModel` for a model without a router, or `Unavailable`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from rich.color import Color, blend_rgb
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static

from llmscope.format import printable_text
from llmscope.moe_stats import router_probs
from llmscope.panes import DenseModel, MoEContent
from llmscope.widgets.moe.data import RoutingData
from llmscope.widgets.moe.render import MoEStyles, RouterDistributionView, RoutingMapView
from llmscope.widgets.moe.routing_map import RoutingMap
from llmscope.widgets.moe.tables import ExpertLoadView, LoadBalanceView
from llmscope.widgets.pane import Pane
from llmscope.widgets.theme_styles import component_text_style

WIDE_AT = 120
"""Pane width (columns) from which the routing map and the details sit side by side."""

_TOKEN = Binding.Group("Token", compact=True)
_LAYER = Binding.Group("Layer", compact=True)


class MoERoutingPane(Pane[MoEContent | DenseModel], can_focus=True):
    """MoE routing: chosen experts per token and layer, the router distribution, expert load and aux loss."""

    WAITING = "No routing yet: run a step to see which experts each token uses."

    PARTS: ClassVar[dict[str, str]] = {
        "router": "#moe-distribution",
        "load": "#moe-load-title",
        "loss": "#moe-loss-title",
    }
    """What a demo step can scroll into view (`show`): the router's scores, the load table, the loss."""

    HELP: ClassVar[str] = (
        "In a mixture-of-experts layer a small router scores every expert for each token; a softmax turns the "
        "scores into probabilities and the token is sent only to the top-k experts, whose outputs are mixed "
        "with the weights shown. The map lists the chosen experts for every token (rows) and MoE layer "
        "(columns): a coloured chip with the expert's number, then its weight (3 .62 = expert 3, weight 0.62); "
        "fainter chips carry less weight. Move with the arrow keys or click a cell to see the router's full "
        "distribution for it (shift+arrows scroll the details). The load table shows each expert's share of "
        "the routing slots per layer next to the even share 1/N. Training adds the Switch-Transformer balancing loss "
        "α · N · Σ fᵢ·Pᵢ (fᵢ: share of tokens sent to expert i, Pᵢ: its mean probability), which is "
        "smallest when the load is even; transformers pools all layers into one number, so check the "
        "per-layer rows: a pooled value can look balanced while single layers are not."
    )

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Previous token", group=_TOKEN),
        Binding("down", "move(1, 0)", "Next token", group=_TOKEN),
        Binding("left", "move(0, -1)", "Previous layer", group=_LAYER),
        Binding("right", "move(0, 1)", "Next layer", group=_LAYER),
        Binding("pageup", "move(-10, 0)", "Back 10 tokens", show=False),
        Binding("pagedown", "move(10, 0)", "Forward 10 tokens", show=False),
        Binding("home", "jump(0)", "First token", show=False),
        Binding("end", "jump(-1)", "Last token", show=False),
        Binding("shift+down", "scroll_details(4)", "Scroll details down", show=False),
        Binding("shift+up", "scroll_details(-4)", "Scroll details up", show=False),
        Binding("l,L", "load_moe", "Load tiny-moe", key_display="L"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "moe-pane--muted",
        "moe-pane--heading",
        "moe-pane--cursor",
        "moe-pane--bar",
        "moe-pane--chosen-bar",
        "moe-pane--good",
        "moe-pane--warn",
    }

    DEFAULT_CSS = """
    MoERoutingPane {
        height: 1fr;
        width: 1fr;
        background: $surface;
        & > .moe-pane--muted { color: $text-muted; }
        & > .moe-pane--heading { color: $foreground; text-style: bold; }
        & > .moe-pane--cursor { color: $accent; text-style: bold; }
        & > .moe-pane--bar { color: $primary; }
        & > .moe-pane--chosen-bar { color: $accent; }
        & > .moe-pane--good { color: $success; }
        & > .moe-pane--warn { color: $warning; text-style: bold; }
        &:focus #moe-header { background: $primary 15%; }
        #moe-header { height: 1; padding: 0 1; color: $text-muted; }
        #moe-message-box { padding: 1 2; height: auto; display: none; }
        #moe-message { color: $text-muted; margin-bottom: 1; }
        #moe-load-button { display: none; }
        #moe-body { height: 1fr; layout: vertical; }
        #moe-map { height: 45%; min-height: 5; padding: 0 1; }
        #moe-details { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
        .moe-section-title { color: $accent; text-style: bold; margin-top: 1; }
        &.-wide #moe-body { layout: horizontal; }
        &.-wide #moe-map { height: 1fr; width: 1fr; }
        &.-wide #moe-details { width: 72; border-left: vkey $panel; }
        &.-message #moe-message-box { display: block; }
        &.-message #moe-body { display: none; }
        &.-dense #moe-load-button { display: block; }
    }
    """

    selected_position: reactive[int] = reactive(0, init=False)
    """Sequence position of the selected token (row of the routing map)."""

    selected_moe_layer: reactive[int] = reactive(0, init=False)
    """Index of the selected MoE layer along the routing arrays (a column; `layer_indices` maps it to a layer)."""

    mode: reactive[str] = reactive("empty", init=False)
    """What the pane shows: 'empty', 'routing', 'dense' or 'unavailable'."""

    class Selected(Message, namespace="moe_routing_pane"):
        """The user moved the selection to a token position and decoder layer.

        Handler: `on_moe_routing_pane_selected` (or `@on(MoERoutingPane.Selected)`).
        """

        def __init__(self, position: int, layer: int) -> None:
            super().__init__()
            self.position = position
            """Sequence position of the selected token."""
            self.layer = layer
            """Decoder-layer index of the selected MoE layer (an entry of `layer_indices`)."""

    class LoadMoERequested(Message, namespace="moe_routing_pane"):
        """The user asked to load the project's small MoE model (`tiny-moe`) from the dense-model message.

        Handler: `on_moe_routing_pane_load_moe_requested` (or `@on(MoERoutingPane.LoadMoERequested)`).
        """

    LoadMoERequested.handler_name = "on_moe_routing_pane_load_moe_requested"  # not "…load_mo_erequested"

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.routing: RoutingData | None = None
        """The arrays shown and the statistics derived from them (None unless in routing mode)."""
        self._header: str | None = None
        self._message: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("MoE routing", id="moe-header")
        with Vertical(id="moe-message-box"):
            yield Static("No routing yet: run a step to see which experts each token uses.", id="moe-message")
            yield Button("Load tiny-moe  (L)", id="moe-load-button", variant="primary")
        with Horizontal(id="moe-body"):
            yield RoutingMap(id="moe-map")
            with VerticalScroll(id="moe-details", can_focus=False):
                yield Static(id="moe-distribution")
                yield Static("Expert load per layer", classes="moe-section-title", id="moe-load-title")
                yield Static(id="moe-load")
                yield Static("Load-balancing loss", classes="moe-section-title", id="moe-loss-title")
                yield Static(id="moe-loss")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_all))

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")

    # ----------------------------------------------------------------------------------------- API

    def draw(self, data: MoEContent | DenseModel) -> None:
        """Routing for every position so far (a selection on the last token follows new tokens), or the dense note."""
        if isinstance(data, DenseModel):
            self._draw_dense(data.model_name)
            return
        previous = self.routing
        self.routing = RoutingData(
            logits=np.asarray(data.logits),
            experts=np.asarray(data.experts),
            weights=np.asarray(data.weights),
            token_labels=data.token_labels,
            layer_indices=data.layer_indices,
            num_experts=data.num_experts,
            experts_per_token=data.experts_per_token,
            alpha=data.alpha,
            rule=data.rule,
        )
        following = previous is None or self.selected_position >= previous.positions - 1
        position = self.routing.positions - 1 if following else self.selected_position
        self.set_reactive(MoERoutingPane.selected_position, self._clamp(position, self.routing.positions))
        self.set_reactive(MoERoutingPane.selected_moe_layer, self._clamp(self.selected_moe_layer, self.routing.layers))
        self.mode = "routing"
        self._apply_mode()
        self._render_all()

    def _draw_dense(self, model_name: str) -> None:
        """Say that `model_name` is dense, explain what a router would do, and offer tiny-moe (key L)."""
        self.routing = None
        self.mode = "dense"
        model_name = escape(printable_text(model_name))  # a folder or session may name the model '[/x]'
        self._apply_mode(
            header=f"MoE routing · {model_name} (dense)",
            message=(
                f"{model_name} is a dense model: every token runs through the same feed-forward block in every "
                "layer, so there is no router to watch. In a mixture-of-experts model a router scores the "
                "experts for each token in each layer and sends the token to only the best few. "
                "Press L to load tiny-moe, the project's small MoE model."
            ),
        )

    def draw_unavailable(self, reason: str) -> None:
        """Replace the views with a calm sentence saying why there is no routing data."""
        self.routing = None
        self.mode = "unavailable"
        self._apply_mode(header="MoE routing", message=f"MoE routing: nothing to show. {reason}")

    # ------------------------------------------------------------------------------------- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "load_moe":
            return self.mode == "dense"
        if action in ("move", "jump", "scroll_details"):
            return self.mode == "routing"
        return True

    def action_move(self, positions: int, layers: int) -> None:
        """Move the selection by a number of tokens and layers (clamped to the data)."""
        if self.routing is not None:
            self._select(self.selected_position + positions, self.selected_moe_layer + layers)

    def action_jump(self, position: int) -> None:
        """Select a token by position (negative counts from the end)."""
        if self.routing is not None:
            self._select(position % self.routing.positions, self.selected_moe_layer)

    def action_scroll_details(self, lines: int) -> None:
        """Scroll the router, load and loss panels (they may be taller than the pane)."""
        self.query_one("#moe-details", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_load_moe(self) -> None:
        self.post_message(self.LoadMoERequested())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "moe-load-button":
            event.stop()
            self.action_load_moe()

    def on_routing_map_cell_clicked(self, event: RoutingMap.CellClicked) -> None:
        event.stop()
        self.focus()
        self._select(event.position, event.moe_layer)

    def _select(self, position: int, moe_layer: int) -> None:
        """Apply a user's selection and tell the App when it changed."""
        assert self.routing is not None
        position, moe_layer = self._clamp(position, self.routing.positions), self._clamp(moe_layer, self.routing.layers)
        if (position, moe_layer) == (self.selected_position, self.selected_moe_layer):
            return
        self.selected_position, self.selected_moe_layer = position, moe_layer
        self.post_message(self.Selected(position, self.routing.layer_indices[moe_layer]))

    @staticmethod
    def _clamp(value: int, count: int) -> int:
        return max(0, min(count - 1, value))

    # ------------------------------------------------------------------------------------ drawing

    def validate_selected_position(self, position: int) -> int:
        return self._clamp(position, self.routing.positions) if self.routing is not None else 0

    def validate_selected_moe_layer(self, layer: int) -> int:
        return self._clamp(layer, self.routing.layers) if self.routing is not None else 0

    def watch_selected_position(self) -> None:
        self._render_selection()

    def watch_selected_moe_layer(self) -> None:
        self._render_selection()
        self._render_tables()

    def _apply_mode(self, *, header: str | None = None, message: str | None = None) -> None:
        """Show the views or the message box for the current mode (remembered until mounted)."""
        if header is not None:
            self._header, self._message = header, message
        if not self.is_mounted:
            return
        self.set_class(self.mode != "routing", "-message")
        self.set_class(self.mode == "dense", "-dense")
        if self.mode != "routing":
            self.query_one("#moe-header", Static).update(self._header or "MoE routing")
            if self._message:
                self.query_one("#moe-message", Static).update(self._message)
        if getattr(self, "_bindings_mode", None) != self.mode:  # footer keys depend only on the mode
            self._bindings_mode = self.mode
            self.refresh_bindings()

    def styles_for_renderables(self) -> MoEStyles:
        """The theme's colours for the renderables, read from this widget's component classes."""

        def style(name: str):
            return component_text_style(self, f"moe-pane--{name}")

        surface = self._surface_hex()
        cursor = style("cursor")
        accent = cursor.color.get_truecolor() if cursor.color else Color.parse("yellow").get_truecolor()
        row_background = Color.from_triplet(blend_rgb(Color.parse(surface).get_truecolor(), accent, 0.18))
        return MoEStyles(
            muted=style("muted"),
            heading=style("heading"),
            cursor=cursor,
            cursor_row=style("heading") + Style(bgcolor=row_background),
            bar=style("bar"),
            chosen_bar=style("chosen-bar"),
            good=style("good"),
            warn=style("warn"),
            surface=surface,
        )

    def _surface_hex(self) -> str:
        """The pane's own background as #rrggbb (chips and heat cells blend towards it)."""
        background = self.styles.background
        return f"#{background.r:02x}{background.g:02x}{background.b:02x}"

    def _render_all(self) -> None:
        if self.routing is None or not self.is_mounted:
            return
        data = self.routing
        self.query_one("#moe-header", Static).update(
            f"{data.num_experts} experts · top-{data.experts_per_token} · {data.layers} MoE layers · "
            f"{data.positions:,} tokens · {data.rule}"
        )
        self._render_selection()
        self._render_tables()

    def _render_selection(self) -> None:
        """Redraw what depends on the selected cell: the map window and the router distribution."""
        if self.routing is None or not self.is_mounted:
            return
        data, styles = self.routing, self.styles_for_renderables()
        position, layer = self.selected_position, self.selected_moe_layer
        routing_map = self.query_one(RoutingMap)
        routing_map.view = RoutingMapView(
            data.experts,
            data.weights,
            data.token_labels,
            data.layer_indices,
            data.num_experts,
            selected_position=position,
            selected_layer=layer,
            height=routing_map.size.height,
            styles=styles,
        )
        routing_map.refresh()
        label = data.token_labels[position] if position < len(data.token_labels) else ""
        self.query_one("#moe-distribution", Static).update(
            RouterDistributionView(
                router_probs(data.logits[layer, position]),
                data.experts[layer, position],
                data.weights[layer, position],
                token_label=label,
                position=position,
                layer=data.layer_indices[layer],
                rule=data.rule,
                styles=styles,
            )
        )

    def _render_tables(self) -> None:
        """Redraw the load table and the loss terms (they change with the data and the selected layer)."""
        if self.routing is None or not self.is_mounted:
            return
        data, styles = self.routing, self.styles_for_renderables()
        self.query_one("#moe-load", Static).update(
            ExpertLoadView(
                data.load,
                data.layer_indices,
                top_k=data.experts_per_token,
                layer_loss=data.balance.layer_loss,
                balanced_loss=data.balance.balanced_loss,
                selected_layer=self.selected_moe_layer,
                styles=styles,
            )
        )
        self.query_one("#moe-loss", Static).update(
            LoadBalanceView(
                data.balance,
                selected_layer=self.selected_moe_layer,
                layer_indices=data.layer_indices,
                styles=styles,
            )
        )
