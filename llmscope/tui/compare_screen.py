"""The compare screen: two lanes side by side, stepped together, with where and how they differ.

Each lane loads its own engine through a factory on a worker thread (never the main view's engine,
whose KV cache belongs to the main view); every model action runs on a worker under the screen's
lock and comes back as a message carrying a plain CompareView.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from llmscope.compare.live import CompareContent, CompareController, CompareView
from llmscope.compare.presets import EXPERIMENTS, LaneSpec, experiment_lanes
from llmscope.engine_api import Engine, EngineError, EngineFactory
from llmscope.panes import GenerationContent
from llmscope.sampler import SamplerConfigError
from llmscope.tui.help_screen import HelpScreen
from llmscope.widgets.compare.pane import CompareDetails, ExperimentPicker
from llmscope.widgets.generation.pane import GeneratedText

FactoryFor = Callable[[str], EngineFactory]
"""Gives the engine factory of a model name (a lane's LaneSpec.model)."""
RUN_LENGTH = 8


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class CompareLoaded(Message):
    """Both lanes' engines are loaded (and, if it worked, the first step is taken)."""

    def __init__(self, load: int, controller: CompareController, view: CompareView | None, error: str | None) -> None:
        super().__init__()
        self.load, self.controller, self.view, self.error = load, controller, view, error


class LaneLoadFailed(Message):
    """A lane's model could not be loaded; `error` is one line."""

    def __init__(self, load: int, lane: str, model: str, error: str) -> None:
        super().__init__()
        self.load, self.lane, self.model, self.error = load, lane, model, error


class CompareUpdated(Message):
    def __init__(self, view: CompareView, action: str) -> None:
        super().__init__()
        self.view, self.action = view, action


class CompareFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class CompareScreen(Screen):
    """Lanes A and B stepped together; below them the aligned candidates, divergence figures and panes side by side."""

    HELP_TITLE = "Compare two lanes"
    HELP = (
        "Two lanes run side by side, each with its own copy of a model, its own prompt and sampler knobs. Every "
        "space steps both. Below the lanes, for the step shown: the token each lane chose; the divergence between "
        "the lanes' next-token distributions — KL(A‖B) and KL(B‖A) (not symmetric), Jensen–Shannon (symmetric, "
        "between 0 and ln 2 ≈ 0.693 nats = 1 bit), all in nats (natural log) — once for the models' raw "
        "distributions and once for the distributions each lane actually sampled from (after temperature, top-k, "
        "top-p, min-p; KL is ∞ where one lane removed a token the other can pick); the share of top-N tokens the "
        "lanes have in common; and one table of both lanes' candidates with shared tokens on one row (p_A, p_B and "
        "Δ = p_B − p_A). ◆ marks the first step where the lanes chose different tokens, also highlighted in both "
        "texts. After the tables: both prompts' tokens (a chat template or a typo changes the count), the same "
        "layer and head's attention in both lanes and their difference, KV-cache bytes, and the experts each MoE "
        "layer picked. Last, the logit lens of both lanes: each layer's top-1 guess and the KL between the lanes' "
        "layer distributions, marked KL ≥ because it is a lower bound (only both lanes' top-10 tokens are kept, the "
        "rest pooled in one bucket). Identical lanes with the same seed stay identical; a lane that reaches its "
        "end-of-sequence token stops while the other continues. Lanes on models with different vocabularies still "
        "run, but their divergence is not comparable and candidates are aligned by text."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,n", "step", "Step both"),
        Binding("r", "run", f"Run {RUN_LENGTH}"),
        Binding("b,backspace", "rewind", "Rewind both"),
        Binding("left", "select(-1)", "Earlier step", show=False),
        Binding("right", "select(1)", "Later step", show=False),
        Binding("end", "follow", "Latest step", show=False),
        Binding("pagedown", "scroll_details(1)", "Details ↓", show=False),
        Binding("pageup", "scroll_details(-1)", "Details ↑", show=False),
        Binding("left_square_bracket", "layer(-1)", "Layer −", show=False),
        Binding("right_square_bracket", "layer(1)", "Layer +", show=False),
        Binding("comma", "head(-1)", "Head −", show=False),
        Binding("full_stop", "head(1)", "Head +", show=False),
        Binding("p", "pick_preset", "Preset"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("escape", "back", "Back"),
        Binding("e,slash,v", "explain_prompts", "How to change the lanes", show=False),
    ]
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen > #lanes { height: 10; }
    CompareScreen .lane { width: 1fr; padding: 0 1; }
    CompareScreen #lane-a { border-right: vkey $panel-lighten-2; }
    CompareScreen .lane-title { height: 2; }
    CompareScreen .lane GeneratedText { height: 1fr; }
    CompareScreen > #compare-message { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    CompareScreen > #compare-message.-error { color: $error; text-style: bold; }
    """

    def __init__(
        self,
        specs: tuple[LaneSpec, LaneSpec],
        *,
        factory_for: FactoryFor,
        initial_steps: int = 1,
        experiment: str | None = None,
    ) -> None:
        """`factory_for(model)` builds a fresh engine per lane; `initial_steps` are generated once both load."""
        super().__init__()
        self.experiment = experiment
        """Name of the experiment preset the lanes come from (None when set by hand)."""
        self.base = specs[0]
        """Lane A as opened: experiments picked with `p` are built from it."""
        self.specs = specs
        self.factory_for = factory_for
        self.initial_steps = max(1, initial_steps)
        self.engine_lock = threading.Lock()
        self.controller: CompareController | None = None
        self.view: CompareView | None = None
        self.selected: int | None = None
        """Step shown in the details (None follows the latest)."""
        self.attention_layer = 0
        self.attention_head = 0
        self.load_error: str | None = None
        self.load_number = 0
        """Counts loads, so a slower earlier load (before a preset was picked) is ignored when it lands."""

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◉")
        with Horizontal(id="lanes"):
            for name in "ab":
                with Vertical(id=f"lane-{name}", classes="lane"):
                    yield Static("", id=f"lane-{name}-title", classes="lane-title")
                    yield GeneratedText(id=f"lane-{name}-text")
        yield CompareDetails(id="compare-details")
        yield Static("", id="compare-message")
        yield Footer()

    def on_mount(self) -> None:
        for text in self.query(GeneratedText):
            text.can_focus = False  # arrows choose the compared step here, not a token of one lane
        self._load(self.specs)

    # ----------------------------------------------------------------- loading
    def _load(self, specs: tuple[LaneSpec, LaneSpec]) -> None:
        self.sub_title = f"compare · {self.experiment}" if self.experiment else "compare"
        self.specs, self.controller, self.view, self.selected, self.load_error = specs, None, None, None, None
        for name, spec in zip("ab", specs):
            self._title(name, spec.describe(), spec.prompt, spec.system_prompt if spec.chat else None, None)
            self.query_one(f"#lane-{name}-text", GeneratedText).show_unavailable(f"loading {spec.model}…")
        self.query_one(CompareDetails).show_unavailable(
            f"Loading {specs[0].model} for lane A and {specs[1].model} for lane B (each lane gets its own copy)…"
        )
        self.load_number += 1
        self._load_worker(specs, self.load_number)

    @work(thread=True, group="compare-load")
    def _load_worker(self, specs: tuple[LaneSpec, LaneSpec], load: int) -> None:
        engines: list[Engine] = []
        for name, spec in zip("AB", specs):
            try:
                engines.append(self.factory_for(spec.model)(lambda text, fraction: None))
            except Exception as error:  # noqa: BLE001 - any load failure becomes a message, not a traceback
                self.post_message(LaneLoadFailed(load, name, spec.model, _one_line(error)))
                return
        for engine in engines:  # the compare details show both lanes' logit lens and the KL between them per layer
            if engine.capabilities.logit_lens and not engine.capture.logit_lens:
                engine.set_capture(dataclasses.replace(engine.capture, logit_lens=True))
        with self.engine_lock:
            try:
                controller = CompareController(specs, (engines[0], engines[1]))
            except ValueError as error:
                self.post_message(CompareFailed(_one_line(error)))
                return
            try:
                view = controller.start()
                if self.initial_steps > 1:
                    view = controller.run(self.initial_steps - 1)
            except (EngineError, SamplerConfigError) as error:
                self.post_message(CompareLoaded(load, controller, None, str(error)))
                return
        self.post_message(CompareLoaded(load, controller, view, None))

    def on_compare_loaded(self, message: CompareLoaded) -> None:
        if message.load != self.load_number:
            return
        self.controller = message.controller
        if message.view is not None:
            self._draw(message.view)
            about = (
                f"Experiment {self.experiment}: {EXPERIMENTS[self.experiment].description}. " if self.experiment else ""
            )
            self._message(about + self._status(message.view))
        else:
            self.query_one(CompareDetails).show_unavailable(message.error or "")
            self._message(message.error or "", error=True)

    def on_lane_load_failed(self, message: LaneLoadFailed) -> None:
        if message.load != self.load_number:
            return
        self.load_error = f"Lane {message.lane}: could not load {message.model!r}: {message.error}"
        lane = message.lane.lower()
        self.query_one(f"#lane-{lane}-text", GeneratedText).show_unavailable(f"could not load {message.model!r}")
        self.query_one(CompareDetails).show_unavailable(
            f"{self.load_error}\nPress p to pick another experiment, or escape to go back."
        )
        self._message(self.load_error, error=True)

    # ----------------------------------------------------------------- actions
    def _engine_action(self, label: str, action: Callable[[CompareController], CompareView]) -> None:
        if self.controller is None:
            self.notify(
                self.load_error or "The lanes are still loading…", severity="error" if self.load_error else "warning"
            )
            return
        self._engine_worker(label, action)

    @work(thread=True, group="compare-engine")
    def _engine_worker(self, label: str, action: Callable[[CompareController], CompareView]) -> None:
        controller = self.controller
        assert controller is not None, "_engine_action checked it, and it is never unset"
        with self.engine_lock:
            try:
                view = action(controller)
            except (EngineError, SamplerConfigError, ValueError) as error:
                self.post_message(CompareFailed(str(error)))
                return
            except Exception as error:  # noqa: BLE001 - show the failure, keep the screen alive
                self.post_message(CompareFailed(f"{type(error).__name__}: {_one_line(error)}"))
                return
        self.post_message(CompareUpdated(view, label))

    def action_step(self) -> None:
        self.selected = None
        self._engine_action("step", lambda controller: controller.step())

    def action_run(self) -> None:
        self.selected = None
        self._engine_action("run", lambda controller: controller.run(RUN_LENGTH))

    def action_rewind(self) -> None:
        self.selected = None
        self._engine_action("rewind", lambda controller: controller.rewind(1))

    def action_select(self, delta: int) -> None:
        if self.view and self.view.records:
            latest = len(self.view.records) - 1
            current = latest if self.selected is None else self.selected
            self.selected = max(0, min(latest, current + delta))
            self._draw(self.view)

    def action_scroll_details(self, pages: int) -> None:
        """Page the details under the tables (tokens, attention, KV, routing, the lens table) from any focus."""
        sides = self.query_one("#compare-sides", VerticalScroll)
        sides.scroll_page_down() if pages > 0 else sides.scroll_page_up()

    def action_follow(self) -> None:
        self.selected = None
        if self.view:
            self._draw(self.view)

    def action_layer(self, delta: int) -> None:
        if self.view:
            most = max(lane.info.num_layers for lane in self.view.lanes)
            self.attention_layer = (self.attention_layer + delta) % most
            self._draw(self.view)

    def action_head(self, delta: int) -> None:
        if self.view:
            most = max(lane.info.num_heads for lane in self.view.lanes)
            self.attention_head = (self.attention_head + delta) % most
            self._draw(self.view)

    def action_pick_preset(self) -> None:
        choices = [(preset.name, preset.description) for preset in EXPERIMENTS.values()]
        self.app.push_screen(ExperimentPicker(choices), self._preset_picked)

    def _preset_picked(self, name: str | None) -> None:
        if name is None:
            return
        try:
            specs = experiment_lanes(name, self.base)
        except ValueError as error:
            self._message(str(error), error=True)
            return
        self.experiment = name
        self._load(specs)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self))

    def action_back(self) -> None:
        self.dismiss()

    def action_explain_prompts(self) -> None:
        """The playground's prompt keys do nothing here: say how lanes change instead."""
        self.notify(
            "Lanes come from an experiment: p picks one. To compare another prompt, press escape, edit it in "
            "the playground, then press v."
        )

    # ---------------------------------------------------------------- drawing
    def on_compare_updated(self, message: CompareUpdated) -> None:
        self._draw(message.view)
        self._message(self._status(message.view))

    def on_compare_failed(self, message: CompareFailed) -> None:
        self._message(message.error, error=True)

    def _status(self, view: CompareView) -> str:
        stops = [f"lane {lane.name} stopped: {lane.stop_reason}" for lane in view.lanes if lane.stop_reason]
        if view.finished:
            return "Both lanes have stopped. b rewinds; p picks another experiment."
        if stops:
            return f"{'; '.join(stops)} — the other lane continues. space steps, b rewinds."
        return "space steps both lanes · b rewinds · ←/→ earlier steps · [ ] layer · , . head · p experiments · ? help"

    def _title(self, name: str, summary: str, prompt: str, system: str | None, stop_reason: str | None) -> None:
        color = "cyan" if name == "a" else "magenta"
        title = Text.assemble((f"{name.upper()} ", f"bold {color}"), (summary, "bold"))
        if stop_reason:
            title.append(f" · stopped: {stop_reason}", style="bold yellow")
        title.append("\n")
        if system:
            title.append(f"system: {system!r} ", style="italic")
        title.append(f"prompt: {prompt!r}", style="dim")
        title.no_wrap, title.overflow = True, "ellipsis"
        self.query_one(f"#lane-{name}-title", Static).update(title)

    def _draw(self, view: CompareView) -> None:
        """Hand the new plain data to both lane columns and the details."""
        self.view = view
        first = view.first_divergence
        for name, lane in zip("ab", view.lanes):
            self._title(name, lane.summary, lane.prompt, lane.system_prompt, lane.stop_reason)
            marked = first if first is not None and first < lane.step_count else None
            self.query_one(f"#lane-{name}-text", GeneratedText).content = GenerationContent(
                tuple(lane.prompt_tokens), tuple(lane.generated), lane.stop_reason, selected=marked
            )
        if view.records:
            index = len(view.records) - 1 if self.selected is None else min(self.selected, len(view.records) - 1)
            self.query_one(CompareDetails).content = CompareContent(
                view, index, self.attention_layer, self.attention_head
            )

    def _message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#compare-message", Static)
        message.update(text)
        message.set_class(error, "-error")
