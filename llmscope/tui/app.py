"""The llmscope playground: a Textual app over a live (or replayed) engine.

The first frame is drawn before torch is imported; the model loads in a worker thread while the
app stays responsive. Every model action runs on that worker under one lock, and comes back to
the UI thread as a message carrying a plain `LiveView`, which the handlers pass down to the panes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Digits, Footer, Header, Input, Static, Switch, TabbedContent, TabPane

from llmscope.compare.presets import LaneSpec, experiment_lanes
from llmscope.demo.script import DemoScript
from llmscope.engine_api import EngineError, EngineFactory
from llmscope.live import LiveController, LiveView
from llmscope.sampler import SamplerConfig, SamplerConfigError
from llmscope.tui.app_host import RunState
from llmscope.tui.compare_screen import CompareScreen
from llmscope.tui.demo_mode import DEMO_BINDINGS, DemoMixin
from llmscope.tui.drawing import DrawingMixin
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.tui.help_screen import HelpMixin
from llmscope.tui.knob_keys import KNOB_BINDINGS, KnobKeysMixin
from llmscope.tui.lens_toggle import LensToggleMixin
from llmscope.tui.loading import RUN_LENGTH, LoadingMixin
from llmscope.tui.messages import (
    ActionFailed,
    RunFinished,
    ViewUpdated,
    ignore_after_teardown,
    one_line,
)
from llmscope.tui.palette import PALETTE_BINDINGS, PaletteMixin
from llmscope.tui.pane_registry import PANE_BINDINGS, PANES
from llmscope.tui.prompt import PromptMixin
from llmscope.tui.recording import RecordingMixin
from llmscope.tui.replay_mode import ReplayMixin
from llmscope.tui.step_inspect import StepInspectMixin
from llmscope.tui.svg_export import SafeScreenshotMixin
from llmscope.widgets.generation.pane import GeneratedText
from llmscope.widgets.sampler.knobs import KnobPanel
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.status_bar import StatusBar

MIN_WIDTH, MIN_HEIGHT = 80, 24
DEFAULT_PROMPT = "The capital of France is"


class LLMScopeApp(
    SafeScreenshotMixin,
    HelpMixin,
    PaletteMixin,
    KnobKeysMixin,
    LensToggleMixin,
    StepInspectMixin,
    LoadingMixin,
    PromptMixin,
    DrawingMixin,
    DemoMixin,
    ReplayMixin,
    RecordingMixin,
    App,
):
    """Prompt, generation and six inspection panes over one model."""

    TITLE = "llmscope"
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so a subclass in another folder finds it
    AUTO_FOCUS = "#generated"
    BINDINGS = [
        Binding("space,n", "step", "Step"),
        Binding("r", "run", f"Run {RUN_LENGTH}"),
        Binding("p", "pause", "Pause"),
        Binding("b,backspace", "rewind", "Rewind"),
        Binding("x", "reset", "Reset", show=False),
        Binding("e,slash", "edit_prompt", "Edit prompt"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("c", "toggle_chat", "Chat mode", show=False),
        *PANE_BINDINGS,
        Binding("question_mark,f1", "help", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("ctrl+s", "save_session", "Save session"),
        Binding("v", "compare", "Compare"),
        Binding("ctrl+c", "interrupt", "Interrupt", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit"),
        *DEMO_BINDINGS,
        *KNOB_BINDINGS,
        *PALETTE_BINDINGS,
    ]

    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (MIN_WIDTH, "-narrow"), (120, "-wide")]
    """Screen classes by width: below 80 the notice replaces the panes; below 120 the generation sits on top."""
    VERTICAL_BREAKPOINTS = [(0, "-too-low"), (MIN_HEIGHT, "-short"), (36, "-tall")]
    """Screen classes by height: below 24 the notice; below 36 no header and a one-line prompt."""

    def __init__(
        self,
        engine_factory: EngineFactory,
        *,
        model_label: str,
        prompt: str = DEFAULT_PROMPT,
        chat: bool = False,
        deterministic: bool = False,
        demo: DemoScript | None = None,
        present: bool = False,
        auto_seconds: float | None = None,
        record_path: Path | None = None,
    ) -> None:
        super().__init__()
        self.setup_demo(demo, present, auto_seconds)
        self.record_path = record_path
        """--record / autosave target; ctrl+s saves anywhere."""
        self.show_replay_note = True
        """Say in the generation title whether a replay still matches its recording."""
        self.engine_factory = engine_factory
        self.model_label = model_label
        self.initial_prompt = prompt
        self.initial_chat = chat
        self.deterministic = deterministic
        """Hide wall-clock figures (snapshot tests)."""
        self.controller: LiveController | None = None
        self.view: LiveView | None = None
        self.engine_lock = threading.Lock()
        self.run_state = RunState(stop=threading.Event())
        self.load_error: str | None = None
        self._inspect_timer = None
        self._stale_panes: set[str] = set()
        self._run_after_start = False
        """`r` before any prompt ran: start the run when the prefill's view arrives."""

    # ----------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◉")
        with Horizontal(id="prompt-row"):
            yield Input(self.initial_prompt, placeholder="Type a prompt, press Enter to run the prompt", id="prompt")
            yield Static("chat", id="chat-label")
            yield Switch(value=self.initial_chat, id="chat", tooltip="Wrap the prompt in the model's chat template (c)")
        with Horizontal(id="main"):
            with Vertical(id="generation-column"):
                yield Static("", id="generation-title", classes="pane-title")
                yield GeneratedText(id="generated")
                yield Static("", id="message", classes="message")
            with TabbedContent(id="panes", initial="logits"):
                for spec in PANES:
                    with TabPane(spec.tab_label, id=spec.key):
                        if spec.key == "logits":  # the knobs sit beside the sampler table
                            with Horizontal():
                                yield SamplerTable(id=spec.widget_id)
                                yield KnobPanel(id="knobs")
                        else:
                            yield spec.widget_type(id=spec.widget_id)
        yield Static("", id="too-small")
        yield Static("", id="caption")
        with Horizontal(id="figures"):
            for figure_id, label in (("figure-steps", "tokens"), ("figure-p", "p(chosen)"), ("figure-kv", "KV cache")):
                with Vertical(classes="figure"):
                    yield Digits("–", id=figure_id)
                    yield Static(label, classes="figure-label")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:

        if self.deterministic:
            self.animation_level = "none"  # screenshots must not catch a tab underline mid-slide
        self._check_size()
        self.mount_presenter()
        self.start_loading()

    def on_resize(self, event: Resize) -> None:
        self._check_size(event.size)  # self.size may still hold the previous size while the event is handled

    def _check_size(self, size: Size | None = None) -> None:
        """Below 80×24 the panes cannot be read: the breakpoints hide them and this notice says why."""
        width, height = size or self.size
        self.query_one("#too-small", Static).update(
            f"Terminal is {width}×{height}; llmscope needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\n"
            "Enlarge the window or reduce the font size. Nothing is lost meanwhile."
        )

    # ---------------------------------------------------------------- actions
    def _engine_action(self, label: str, action: Callable[[LiveController], LiveView]) -> None:
        """Run one model action on the worker thread under the engine lock."""
        if self.controller is None:
            self.notify(
                self.load_error or "The model is still loading…", severity="warning" if not self.load_error else "error"
            )
            return
        self._engine_worker(label, action)

    @work(thread=True, group="engine")
    def _engine_worker(self, label: str, action: Callable[[LiveController], LiveView]) -> None:
        with self.engine_lock:
            controller = self.controller
            if controller is None:  # the model was switched away while this action waited for the lock
                return
            try:
                view = action(controller)
            except (EngineError, SamplerConfigError) as error:
                self.post_message(ActionFailed(str(error)))
                return
            except Exception as error:  # noqa: BLE001 - show the failure, keep the session alive
                self.post_message(ActionFailed(f"{type(error).__name__}: {one_line(error)}"))
                return
        self.post_message(ViewUpdated(view, label))

    def action_start(self) -> None:
        """Run the prompt: tokenize, prefill, sample the first token."""
        prompt = self.query_one("#prompt", Input).value
        chat = self.query_one("#chat", Switch).value
        if not prompt.strip():
            self._run_after_start = False
            self._set_message("The prompt is empty: type some text for the model to continue.", error=True)
            return
        if self.replaying and self.replay_to_prompt(prompt, chat):
            self.query_one(GeneratedText).focus()
            return
        self._engine_action("prefill", lambda controller: controller.start(prompt, chat=chat))
        self.query_one(GeneratedText).focus()

    def action_step(self) -> None:
        if self.demo_player is not None:
            self.action_demo_next()
            return
        if self.replaying:
            self.replay_go(self.replay_index + 1)
            return
        if self.controller is not None and not self.controller.started:
            self.action_start()
            return
        self._engine_action("step", lambda controller: controller.step())

    def action_rewind(self) -> None:
        if self.replaying:
            self.replay_back()
            return
        self._engine_action("rewind", lambda controller: controller.rewind(1))

    def action_reset(self) -> None:
        self.action_start()

    def action_run(self) -> None:
        if self.controller is None or self.run_state.running:
            return
        if self.replaying:
            self.replay_go(min(self.replay_index + RUN_LENGTH, len(self.replay_moves) - 1))
            return
        if not self.controller.started:
            self._run_after_start = True  # on_view_updated starts the run once the prefill has landed
            self.action_start()
            return
        self.run_state.stop.clear()
        self.run_state.running = True
        self._run_worker(RUN_LENGTH)

    @work(thread=True, group="engine")
    def _run_worker(self, count: int) -> None:
        """Step until `count` more tokens, a stop condition, or a pause; posts a view after each step."""
        produced = 0
        try:
            while produced < count and not self.run_state.stop.is_set():
                with self.engine_lock:
                    controller = self.controller
                    if controller is None or not controller.started or controller.generation.stop_reason:
                        break
                    try:
                        view = controller.step()
                    except EngineError as error:
                        self.post_message(ActionFailed(str(error)))
                        break
                    except Exception as error:  # noqa: BLE001 - a failing step pauses the run, never closes the app
                        self.post_message(ActionFailed(f"{type(error).__name__}: {one_line(error)}"))
                        break
                produced += 1
                self.post_message(ViewUpdated(view, "run"))  # queued run views coalesce (can_replace)
        finally:
            self.run_state.running = False
            self.post_message(RunFinished(paused=self.run_state.stop.is_set()))

    def action_pause(self) -> None:
        if self.run_state.running:
            self.run_state.stop.set()

    def action_interrupt(self) -> None:
        """Ctrl+C pauses a run (keeping every generated token); otherwise it reminds how to quit."""
        if self.run_state.running:
            self.run_state.stop.set()
            self._set_message("Interrupted: the run is paused after the current step; nothing generated is lost.")
        else:
            self.notify("Press ctrl+q to quit.", title="Ctrl+C")

    def action_leave_field(self) -> None:
        """Esc leaves a text field (prompt or knob) so single-key commands work again."""
        if isinstance(self.focused, Input):
            self.query_one(GeneratedText).focus()

    def action_edit_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_toggle_chat(self) -> None:
        switch = self.query_one("#chat", Switch)
        switch.value = not switch.value

    def action_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane
        self._pane(pane).focus()

    def action_compare(self) -> None:
        """Open the compare screen: lane A = this prompt and knobs, lane B = the same at a higher temperature."""
        if isinstance(self.screen, CompareScreen):
            return
        prompt = self.query_one("#prompt", Input).value or DEFAULT_PROMPT
        if self.view is not None:
            config = self.view.config
        else:
            config = self.controller.generation.config if self.controller is not None else SamplerConfig()
        base = LaneSpec(
            model=self.model_label, prompt=prompt, chat=self.query_one("#chat", Switch).value, config=config
        )
        own_model, own_factory = self.model_label, self.engine_factory

        def factory_for(model: str) -> EngineFactory:
            return own_factory if model == own_model else hf_engine_factory(model)

        steps = self.view.step_count if self.view is not None else 1
        self.push_screen(
            CompareScreen(
                experiment_lanes("hotter", base), factory_for=factory_for, initial_steps=steps, experiment="hotter"
            )
        )

    async def action_quit(self) -> None:
        """Quit; with --record the session is saved first (atomically) so nothing is lost."""
        if self.record_path is not None:
            try:
                self.save_now()
            except (OSError, ValueError) as error:
                self._set_message(
                    f"Could not save to {self.record_path}: {error}. Quit again to leave anyway.", error=True
                )
                self.record_path = None
                return
        self.exit()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    @ignore_after_teardown
    def on_view_updated(self, message: ViewUpdated) -> None:
        view = message.view
        if message.action == "resample" and self.is_stale_resample(view.config):
            return
        self.view = view
        self.render_view(view)
        self.schedule_autosave()
        if message.action == "resample":
            self._set_message(
                f"Re-sampled step {view.step_count - 1} with {view.config.describe()} — no forward pass "
                f"(forward passes so far: {view.forward_calls})."
            )
        elif view.stop_reason:
            self._set_message(f"Stopped: {view.stop_reason}. b rewinds, Enter runs the prompt again.")
        elif message.action in ("step", "rewind"):
            self._set_message("")  # a prefill keeps the hint (or the chat-mode fallback note) above it
        if message.action == "prefill" and self._run_after_start:
            self._run_after_start = False
            self.action_run()

    @ignore_after_teardown
    def on_action_failed(self, message: ActionFailed) -> None:
        self._run_after_start = False
        if message.error:
            self._set_message(message.error, error=True)

    @ignore_after_teardown
    def on_run_finished(self, message: RunFinished) -> None:
        if message.paused and self.view is not None:
            self._set_message(f"Paused after {self.view.step_count} tokens. space steps, r runs on.")


def tcss_path() -> Path:
    return Path(__file__).with_name("app.tcss")
