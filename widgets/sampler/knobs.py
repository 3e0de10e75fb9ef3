"""Sampler knobs: editable temperature, top-k, top-p, min-p, penalties, seed, stage order and presets.

Every valid edit posts `KnobPanel.Changed` with a validated `SamplerConfig`, so the App can re-sample the
current step at once; invalid input shows the validator's message under the field and posts nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Input, Label, Select, Static

from llmscope.sampler import PRESETS, STAGE_ORDERS, SamplerConfig, SamplerConfigError


@dataclass(frozen=True)
class KnobSpec:
    """How one numeric SamplerConfig field is edited: its label, type, nudge steps and nudge limits."""

    name: str
    """SamplerConfig field name."""
    label: str
    integer: bool
    step: float
    """Nudge per up/down press."""
    big_step: float
    """Nudge per shift+up/down press."""
    minimum: float
    maximum: float | None
    off_value: float | None
    """The value that leaves logits unchanged (None when the knob has no 'off')."""
    hint: str


KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec("temperature", "temperature", False, 0.1, 0.5, 0.0, 5.0, 1.0, "0 = greedy"),
    KnobSpec("top_k", "top-k", True, 1, 10, 0, None, 0, "0 = off"),
    KnobSpec("top_p", "top-p", False, 0.05, 0.2, 0.05, 1.0, 1.0, "1 = off"),
    KnobSpec("min_p", "min-p", False, 0.01, 0.05, 0.0, 1.0, 0.0, "0 = off"),
    KnobSpec("repetition_penalty", "repetition", False, 0.05, 0.25, 0.05, 5.0, 1.0, "1 = off"),
    KnobSpec("frequency_penalty", "frequency", False, 0.1, 0.5, -2.0, 2.0, 0.0, "0 = off"),
    KnobSpec("presence_penalty", "presence", False, 0.1, 0.5, -2.0, 2.0, 0.0, "0 = off"),
    KnobSpec("seed", "seed", True, 1, 10, 0, None, None, "RNG"),
)
"""The numeric knobs in display order."""
KNOB_BY_NAME: dict[str, KnobSpec] = {spec.name: spec for spec in KNOBS}
UNDO_DEPTH = 50
"""Knob changes `undo` can take back."""
FILTER_KNOBS = ("top_k", "top_p", "min_p")
GROUP_STARTS = ("repetition_penalty", "seed")
"""Knobs that start a visual group (a blank line above): penalties, then the draw."""
ORDER_LABELS = {"hf": "hf: T first", "llama.cpp": "llama.cpp: T last"}


def format_knob(spec: KnobSpec, value: float) -> str:
    """A knob value as the field shows it ('0.7', '40')."""
    return str(int(value)) if spec.integer else f"{float(value):g}"


def parse_knob(spec: KnobSpec, text: str) -> float | int:
    """Parse a field's text; SamplerConfigError (naming the knob) when it is not a number of the right kind."""
    stripped = text.strip()
    if not stripped:
        raise SamplerConfigError(f"{spec.name} is empty: type a number")
    try:
        return int(stripped) if spec.integer else float(stripped)
    except ValueError:
        kind = "a whole number" if spec.integer else "a number"
        raise SamplerConfigError(f"{spec.name}={stripped!r} is not {kind}") from None


def nudged(spec: KnobSpec, value: float, steps: float) -> float | int:
    """`value` moved by `steps` (already multiplied by the step size), kept inside the knob's nudge limits."""
    moved = value + steps
    moved = max(spec.minimum, moved if spec.maximum is None else min(spec.maximum, moved))
    return int(round(moved)) if spec.integer else round(moved, 6)


def matching_preset(config: SamplerConfig) -> str | None:
    """Name of the preset whose sampling knobs equal `config`'s (seed and order ignored), if any."""
    for name, preset_config in PRESETS.items():
        if dataclasses.replace(preset_config, seed=config.seed, order=config.order) == config:
            return name
    return None


class KnobRow(Horizontal):
    """One line of the panel: a label, a field and a hint."""

    DEFAULT_CSS = """
    KnobRow { height: 1; width: 1fr; }
    """


class KnobInput(Input):
    """A one-line number field that nudges its value with up/down (shift for a bigger step)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "nudge(1)", "Nudge up"),
        Binding("down", "nudge(-1)", "Nudge down"),
        Binding("shift+up", "nudge(1, True)", "Big step up", show=False),
        Binding("shift+down", "nudge(-1, True)", "Big step down", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | up / down | Nudge the value by one step (0.1 for temperature, 1 for top-k, 0.05 for top-p...). |
    | shift+up / shift+down | Nudge by a bigger step. |
    """

    def __init__(self, spec: KnobSpec, value: float, *, id: str | None = None) -> None:
        """A field for `spec` showing `value`."""
        super().__init__(format_knob(spec, value), id=id, compact=True, select_on_focus=True)
        self.spec = spec
        self.committed_value: float = value
        """The knob's value in the config in force; nudges start here when the text is invalid."""
        self.commit_on_change = False
        """Set by a nudge so its Changed applies at once; typed text applies on Enter or when leaving the field."""

    def action_nudge(self, direction: int, big: bool = False) -> None:
        """Step the value up or down and put it in the field (which validates and posts like typing)."""
        try:
            current = float(parse_knob(self.spec, self.value))
        except SamplerConfigError:
            current = self.committed_value
        step = self.spec.big_step if big else self.spec.step
        self.commit_on_change = True  # a nudge is a complete edit: apply it at once
        self.value = format_knob(self.spec, nudged(self.spec, current, direction * step))
        self.cursor_position = len(self.value)


class KnobPanel(VerticalScroll):
    """Editable sampler knobs; a valid edit (Enter, leaving the field, or a nudge) posts `Changed` with the new config."""

    HELP: ClassVar[str] = (
        "These knobs decide how the next token is drawn from the model's probabilities; changing one re-samples "
        "the current step at once, without running the model again. Temperature 0 is greedy; below 1 it makes "
        "likely tokens likelier, above 1 it flattens the distribution. Top-k keeps the k most likely tokens, "
        "top-p the smallest set whose probability adds up to p, min-p drops tokens below min-p times the top "
        "token's probability. The repetition penalty shrinks the logits of tokens already in the text; frequency "
        "and presence penalties subtract from them (per repeat, or once). The seed makes random draws repeatable. "
        "Order chooses whether temperature runs before the filters (transformers) or last (llama.cpp). Presets load "
        "common settings and keep your seed and order. Focus a field and press up/down to nudge it."
    )
    """What the knobs do, for a learner (shown by the App on `?`)."""

    DEFAULT_CSS = """
    KnobPanel {
        width: 36;
        height: 1fr;
        padding: 0 1;
        background: $surface;
        scrollbar-size-vertical: 1;
        & .knob-label { width: 12; color: $foreground; }
        & .knob-hint { width: 1fr; color: $text-muted; padding-left: 1; }
        & KnobInput { width: 9; background: $panel; }
        & KnobInput:focus { background: $boost; text-style: bold; }
        & KnobInput.-invalid { background-tint: $error 30%; }
        & Select { width: 1fr; }
        & .knob-row.-off .knob-label { color: $text-muted; }
        & .knob-error { display: none; color: $error; padding-left: 12; height: auto; }
        & .knob-error.-shown { display: block; }
        & .knob-heading { color: $text-muted; text-style: bold; margin-top: 1; }
        & .knob-heading.-first { margin-top: 0; }
        & .knob-row.-group-start { margin-top: 1; }
    }
    """

    config: var[SamplerConfig] = var(SamplerConfig, init=False)
    """The sampler config in force (always valid); assigning it updates the fields without posting Changed."""

    class Changed(Message):
        """A knob edit produced a new valid config; the App re-samples the current step with it."""

        def __init__(self, knob_panel: KnobPanel, config: SamplerConfig, knob: str) -> None:
            super().__init__()
            self.knob_panel = knob_panel
            self.config = config
            """The new validated config."""
            self.knob = knob
            """What changed: a SamplerConfig field name, or 'preset'."""

        @property
        def control(self) -> KnobPanel:
            """The panel that posted the message."""
            return self.knob_panel

    def __init__(
        self,
        config: SamplerConfig | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Knobs showing `config` (default: every knob off, temperature 1)."""
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(KnobPanel.config, (config or SamplerConfig()).validate())
        self._applying_edit = False
        self._undo: list[SamplerConfig] = []
        """Configs in force before each of the user's knob changes, newest last."""

    def compose(self) -> ComposeResult:
        config = self.config
        yield Label("sampler knobs", classes="knob-heading -first")
        for spec in KNOBS:
            group_start = " -group-start" if spec.name in GROUP_STARTS else ""
            with KnobRow(classes="knob-row" + group_start, id=f"row-{spec.name}"):
                yield Label(spec.label, classes="knob-label")
                yield KnobInput(spec, getattr(config, spec.name), id=f"knob-{spec.name}")
                yield Label(spec.hint, classes="knob-hint", id=f"hint-{spec.name}")
            yield Static("", classes="knob-error", id=f"error-{spec.name}", markup=False)
        with KnobRow(classes="knob-row"):
            yield Label("order", classes="knob-label")
            yield Select(
                [(ORDER_LABELS.get(order, order), order) for order in STAGE_ORDERS],
                value=config.order,
                allow_blank=False,
                compact=True,
                id="knob-order",
            )
        with KnobRow(classes="knob-row -group-start"):
            yield Label("preset", classes="knob-label")
            yield Select(
                [(name, name) for name in PRESETS],
                prompt="custom",
                value=matching_preset(config) or Select.NULL,
                compact=True,
                id="knob-preset",
            )
        yield Static(config.describe(), classes="knob-heading", id="knob-summary", markup=False)

    def on_mount(self) -> None:
        self._sync_fields(self.config, force=True)

    # ------------------------------------------------------------ public API
    def set_config(self, config: SamplerConfig) -> None:
        """Show `config` in every field without posting Changed (replays, presets chosen elsewhere)."""
        self.config = config.validate()

    def nudge(self, knob: str, direction: int) -> None:
        """Step one knob from the config in force, as its field's up/down would (for hotkeys outside the form)."""
        spec = KNOB_BY_NAME[knob]
        self._change(
            self.config.with_changes(**{knob: nudged(spec, getattr(self.config, knob), direction * spec.step)}), knob
        )

    def choose_preset(self, name: str) -> None:
        """Load a preset as the preset menu does (keeping the seed and order); posts Changed."""
        self._change(dataclasses.replace(PRESETS[name], seed=self.config.seed, order=self.config.order), "preset")

    def undo(self) -> bool:
        """Take back the user's last knob change (posting Changed); False when there is nothing to undo."""
        if not self._undo:
            return False
        config = self._undo.pop()
        self.config = config  # forced sync: every field shows the restored value
        self.post_message(self.Changed(self, config, "undo"))
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def error_for(self, knob: str) -> str:
        """The error message shown under a knob's field ('' when its text is valid)."""
        return str(self.query_one(f"#error-{knob}", Static).content)

    # ------------------------------------------------------------- internals
    def validate_config(self, config: SamplerConfig) -> SamplerConfig:
        """Refuse an invalid config assigned from outside (SamplerConfigError names the knob)."""
        return config.validate()

    def watch_config(self, config: SamplerConfig) -> None:
        if self.is_mounted:
            self._sync_fields(config, force=not self._applying_edit)

    def _sync_fields(self, config: SamplerConfig, *, force: bool) -> None:
        """Show `config`: with `force`, rewrite every field and clear errors; always refresh hints and selects.

        Without `force` (the user's own edit) field texts are left alone, so text being typed and other
        fields' pending errors stay as they are.
        """
        with self.prevent(Input.Changed, Select.Changed):
            for spec in KNOBS:
                field = self.query_one(f"#knob-{spec.name}", KnobInput)
                value = getattr(config, spec.name)
                field.committed_value = value
                if force:
                    if self._field_value(field) != value:
                        field.value = format_knob(spec, value)
                    self._show_error(spec.name, "")
                row = self.query_one(f"#row-{spec.name}")
                skipped = config.greedy and spec.name in FILTER_KNOBS
                row.set_class(spec.off_value is not None and value == spec.off_value or skipped, "-off")
                hint = "skipped" if skipped else spec.hint
                self.query_one(f"#hint-{spec.name}", Label).update(hint)
            order_select = self.query_one("#knob-order", Select)
            if order_select.value != config.order:
                order_select.value = config.order
            preset_select = self.query_one("#knob-preset", Select)
            preset_name = matching_preset(config)
            if preset_name is None:
                preset_select.clear()
            elif preset_select.value != preset_name:
                preset_select.value = preset_name
        self.query_one("#knob-summary", Static).update(config.describe())

    @staticmethod
    def _field_value(field: KnobInput) -> float | int | None:
        """The field's parsed number, or None when its text is not a number."""
        try:
            return parse_knob(field.spec, field.value)
        except SamplerConfigError:
            return None

    def _show_error(self, knob: str, message: str) -> None:
        """Show (or clear, with '') the message under a knob's field and mark the field invalid."""
        error = self.query_one(f"#error-{knob}", Static)
        error.update(message)
        error.set_class(bool(message), "-shown")
        self.query_one(f"#knob-{knob}", KnobInput).set_class(bool(message), "-invalid")

    def _apply(self, config: SamplerConfig, knob: str) -> None:
        """Make `config` the one in force and post Changed, unless nothing changed."""
        if config == self.config:
            return
        self._remember(self.config)
        self._applying_edit = True
        try:
            self.config = config
        finally:
            self._applying_edit = False
        self.post_message(self.Changed(self, config, knob))

    def _validated(self, field: KnobInput, text: str) -> SamplerConfig | None:
        """The config with this field's text applied, or None after showing why the text is invalid."""
        spec = field.spec
        try:
            value = parse_knob(spec, text)
            if not spec.integer and not math.isfinite(value):
                raise SamplerConfigError(f"{spec.name}={value!r} is not a finite number")
            config = self.config.with_changes(**{spec.name: value})
        except SamplerConfigError as error:
            self._show_error(spec.name, str(error))
            return None
        self._show_error(spec.name, "")
        return config

    @on(Input.Changed)
    def _knob_typed(self, event: Input.Changed) -> None:
        """Typing validates at once (errors show while typing) but applies only on Enter or leaving the field,
        so typing 0.5 never passes through 0 (greedy) on the way."""
        event.stop()
        field = event.input
        if not isinstance(field, KnobInput):
            return
        # The field's text now, not the event's: nudges can queue several Changed before the first is handled,
        # and the first one handled must apply the value the box shows (later ones then change nothing).
        config = self._validated(field, field.value)
        if config is not None and field.commit_on_change:
            self._apply(config, field.spec.name)
        field.commit_on_change = False

    @on(Input.Submitted)
    def _knob_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._commit_field(event.input)

    @on(Input.Blurred)
    def _knob_left(self, event: Input.Blurred) -> None:
        event.stop()
        self._commit_field(event.input)

    def _commit_field(self, field: Input) -> None:
        if isinstance(field, KnobInput) and (config := self._validated(field, field.value)) is not None:
            self._apply(config, field.spec.name)

    @on(Select.Changed, "#knob-order")
    def _order_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self._apply(self.config.with_changes(order=event.value), "order")

    @on(Select.Changed, "#knob-preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and event.value in PRESETS:
            preset_config = dataclasses.replace(PRESETS[event.value], seed=self.config.seed, order=self.config.order)
            self._change(preset_config, "preset")

    def _change(self, config: SamplerConfig, knob: str) -> None:
        """Make `config` the one in force with every field rewritten (stale invalid text too) and post Changed."""
        if config != self.config:
            self._remember(self.config)
            self.config = config
            self.post_message(self.Changed(self, config, knob))

    def _remember(self, config: SamplerConfig) -> None:
        self._undo.append(config)
        del self._undo[:-UNDO_DEPTH]
