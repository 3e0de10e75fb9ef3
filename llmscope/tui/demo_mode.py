"""Demo playback and presenter mode for the playground (mixed into LLMScopeApp).

A demo step runs its model actions on the engine worker, then its view settings (pane, layer,
head, token, caption) on the UI thread. Presenter mode swaps in a high-contrast theme, turns
animations off, hides the chrome and shows key figures in large digits.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.theme import Theme
from textual.widgets import Digits, Input, Static, Switch, TabbedContent

from llmscope.demo.captions import fill_caption
from llmscope.demo.player import DemoPlayer
from llmscope.demo.script import DemoScript
from llmscope.engine_api import EngineError
from llmscope.format import format_bytes, format_count, format_probability
from llmscope.live import LiveView
from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.slide_jump import SlideJumpScreen
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.lens.pane import LayersPane
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.tokens.pane import TokenInspector

PRESENTER_THEME = Theme(
    name="llmscope-presenter",
    primary="#FFD400",
    secondary="#00B3FF",
    accent="#FFD400",
    foreground="#FFFFFF",
    background="#000000",
    surface="#0A0A0A",
    panel="#1A1A1A",
    success="#3DDC84",
    warning="#FFB000",
    error="#FF4D4D",
    dark=True,
)
"""Black background, white text, yellow accents: readable on a washed-out projector."""


def presenter_figures(view: LiveView) -> tuple[str, str, str, str]:
    """Presenter mode's large figures: tokens generated, p(chosen), and the KV size split into number and unit.

    Spelled by llmscope.format like every other screen (1,843,200 B is '1.76' over 'KV cache (MiB)').
    """
    chosen = format_probability(view.generated[-1][1]) if view.generated else "–"
    kv_figure, _, kv_unit = (
        format_bytes(view.kv_history[-1].total_bytes).partition(" ") if view.kv_history else ("–", "", "")
    )
    return format_count(view.step_count), chosen, kv_figure, kv_unit


DEMO_BINDINGS = [
    Binding("right", "demo_next", "Next", show=False, priority=True),
    Binding("left", "demo_back", "Back", show=False, priority=True),
    Binding("ctrl+g", "demo_jump", "Go to slide", show=False),
    Binding("N", "demo_notes", "Presenter notes", key_display="shift+n", show=False),
]


class DemoStepReady(Message):
    """The worker brought the model to the state after demo step `index`."""

    def __init__(self, view: LiveView | None, index: int, error: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.index = index
        self.error = error


class DemoMixin(PlaygroundHost):
    """Demo and presenter behaviour; expects the LLMScopeApp attributes it uses (controller, view…)."""

    demo_player: DemoPlayer | None
    present: bool
    auto_seconds: float | None
    demo_busy: bool = False
    demo_error: str | None = None
    """Why the last demo step failed (None after a step that worked); --export-svg stops on it."""
    notes_shown: bool = False
    """shift+n shows the presenter notes in place of the caption."""

    def setup_demo(self, demo: DemoScript | None, present: bool, auto_seconds: float | None) -> None:
        self.demo_player = DemoPlayer(demo) if demo is not None else None
        self.present = present
        self.auto_seconds = auto_seconds
        self.demo_busy = False

    def mount_presenter(self) -> None:
        """Presenter look: theme, no animations, chrome hidden (called from on_mount)."""
        if self.present:
            self.register_theme(PRESENTER_THEME)
            self.theme = PRESENTER_THEME.name
            self.animation_level = "none"
            self.screen.add_class("-present")
        self.screen.set_class(self.demo_player is not None, "-demo")

    def start_demo(self) -> None:
        """Called when the engine is ready: show the first step and start the auto-advance timer."""
        if self.demo_player is None:
            return
        self.query_one("#caption", Static).update(f"{self.demo_player.script.title} — press space or → to begin")
        self.action_demo_next()
        if self.auto_seconds:
            self.set_interval(self.auto_seconds, self._auto_advance)

    def _auto_advance(self) -> None:
        if self.demo_player is not None and not self.demo_player.at_end and not self.demo_busy:
            self.action_demo_next()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("demo_next", "demo_back", "demo_jump", "demo_notes"):
            return self.demo_player is not None and not isinstance(self.focused, Input)
        return True

    def action_demo_next(self) -> None:
        player = self.demo_player
        if player is None or self.demo_busy:
            return
        if player.at_end:
            self._set_message(f"End of “{player.script.title}”. ← goes back; ctrl+q quits.")
            return
        self._demo_go(player.index + 1)

    def action_demo_jump(self) -> None:
        """ctrl+g: ask for a slide number and go there (re-running the script up to it, which is exact)."""
        player = self.demo_player
        if player is None or self.demo_busy:
            return

        def chosen(index: int | None) -> None:
            if index is not None and index != player.index:
                self._demo_go(index)

        self.push_screen(SlideJumpScreen(len(player.script.steps), player.index), chosen)

    def action_demo_notes(self) -> None:
        """shift+n: show or hide this slide's presenter notes in place of the caption (hidden by default)."""
        self.notes_shown = not self.notes_shown
        if self.demo_player is not None and self.demo_player.index >= 0:
            self.show_caption(self.demo_player.index)

    def action_demo_back(self) -> None:
        player = self.demo_player
        if player is None or self.demo_busy or player.index <= 0:
            return
        self._demo_go(player.index - 1)

    def _demo_go(self, target: int) -> None:
        if self.controller is None:
            self.notify("The model is still loading…", severity="warning")
            return
        self.demo_busy = True
        self.demo_error = None
        self._demo_worker(target)

    @work(thread=True, group="engine")
    def _demo_worker(self, target: int) -> None:
        player, controller = self.demo_player, self.controller
        assert player is not None and controller is not None, "_demo_go checked both"
        with self.engine_lock:
            try:
                view = player.run_to(controller, target)
            except Exception as error:  # noqa: BLE001 - EngineError or anything else: a message, never a closed app
                text = str(error) if isinstance(error, EngineError) else f"{type(error).__name__}: {error}"
                self.post_message(DemoStepReady(None, target, error=f"demo step {target + 1}: {text}"))
                return
        self.post_message(DemoStepReady(view, target))

    def on_demo_step_ready(self, message: DemoStepReady) -> None:
        self.demo_busy = False
        if message.error:
            self.demo_error = message.error
            self._set_message(message.error, error=True)
            return
        if message.view is not None:
            self.view = message.view
            self.render_view(message.view)
        self.apply_demo_view(message.index)

    def apply_demo_view(self, index: int) -> None:
        """Pane, selection and caption of step `index`, after the panes have the new data."""
        player = self.demo_player
        assert player is not None, "only demo steps get here"
        step = player.view_settings(index)
        if step.prompt is not None:
            self.query_one("#prompt", Input).value = step.prompt
            self.query_one("#chat", Switch).value = step.chat
        self._set_message("")
        if step.pane == "generation":
            self.query_one("#generated").focus()
        elif step.pane is not None:
            self.action_pane(step.pane)
        attention = self.query_one("#attention-pane", AttentionPane)
        if step.layer is not None:
            attention.layer_index = step.layer
            self.query_one("#lens-pane", LayersPane).select_layer(step.layer)  # its cell details name that layer
        if step.head is not None:
            attention.head = step.head
        if step.zoom is not None:
            attention.mode = "zoom" if step.zoom else "grid"
        if step.layer is not None or step.head is not None or step.zoom:
            attention.point_at_strongest()  # the zoom readout then names what the caption describes
        if step.token is not None:
            self.query_one("#tokens-pane", TokenInspector).select(step.token)
            moe = self.query_one("#moe-pane", MoERoutingPane)
            if getattr(moe, "mode", None) == "routing":
                moe.selected_position = step.token
        if step.show is not None:
            pane = self._pane(self.query_one(TabbedContent).active)
            self.call_after_refresh(pane.show_part, step.show)  # once the new content is laid out
        self.show_caption(index)
        self.update_figures()

    def show_caption(self, index: int) -> None:
        """The slide's number and filled caption, or its presenter notes while they are toggled on."""
        player = self.demo_player
        assert player is not None, "only demo steps get here"
        step = player.script.steps[index]
        attention = self.query_one("#attention-pane", AttentionPane)
        caption = Text.assemble((player.position_text(), "bold"), "  ")
        if self.notes_shown:
            caption.append("notes · ", style="bold reverse")
            caption.append(step.notes or "(no presenter notes for this slide)", style="italic")
            caption.append("  · shift+n hides them", style="dim")
        else:
            caption.append(fill_caption(step.caption, self.view, (attention.layer_index, attention.head)))
        self.query_one("#caption", Static).update(caption)

    def update_figures(self) -> None:
        """Large-digit figures for presenter mode: tokens generated, chosen probability, KV size."""
        if not self.present or self.view is None:
            return
        view = self.view
        steps, chosen, kv_figure, kv_unit = presenter_figures(view)
        self.query_one("#figure-steps", Digits).update(steps)
        self.query_one("#figure-p", Digits).update(chosen)
        kv_digits = self.query_one("#figure-kv", Digits)
        kv_digits.update(kv_figure)
        if kv_digits.parent is not None:  # the unit goes under the digits: Digits draws B as the hex digit
            kv_digits.parent.query_one(".figure-label", Static).update(
                f"KV cache ({kv_unit})" if kv_unit else "KV cache"
            )
