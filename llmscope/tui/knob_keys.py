"""Knob hotkeys outside the form (temperature, top-p, top-k), undo for knob changes, and latest-wins re-sampling.

Knob edits can arrive faster than the engine worker re-samples; every re-sample uses the newest knobs and a view
built with older ones is not drawn, so the table, summary and message always match the value in the box.
"""

from __future__ import annotations

from textual import on
from textual.binding import Binding

from llmscope.sampler import SamplerConfig
from llmscope.tui.app_host import PlaygroundHost
from llmscope.widgets.sampler.knobs import KNOB_BY_NAME, KnobPanel, format_knob

KNOB_BINDINGS = [
    Binding("less_than_sign", "knob('temperature', -1)", "Cooler", key_display="<", show=False),
    Binding("greater_than_sign", "knob('temperature', 1)", "Hotter", key_display=">", show=False),
    Binding("left_curly_bracket", "knob('top_p', -1)", "Smaller top-p", key_display="{", show=False),
    Binding("right_curly_bracket", "knob('top_p', 1)", "Larger top-p", key_display="}", show=False),
    Binding("left_parenthesis", "knob('top_k', -1)", "Smaller top-k", key_display="(", show=False),
    Binding("right_parenthesis", "knob('top_k', 1)", "Larger top-k", key_display=")", show=False),
    Binding("u,ctrl+z", "undo_knobs", "Undo knobs", key_display="u", show=False),
]
"""Work wherever focus is not in a text field (a field keeps its characters)."""


class KnobKeysMixin(PlaygroundHost):
    """The hotkeys and undo above, and the knob-change handler that re-samples with the newest knobs."""

    _wanted_config: SamplerConfig | None = None
    """The knobs of the newest edit: the re-sample worker reads them when it runs."""

    def action_knob(self, knob: str, direction: int) -> None:
        """Nudge a knob by one step from the config in force (the same step as its field's up/down)."""
        panel = self.query_one(KnobPanel)
        panel.nudge(knob, direction)
        spec = KNOB_BY_NAME[knob]
        value = format_knob(spec, getattr(panel.config, knob))
        self.notify(f"{spec.label} {value} ({spec.hint}); u undoes.", title="Knobs", timeout=3)

    def action_undo_knobs(self) -> None:
        if not self.query_one(KnobPanel).undo():
            self.notify("No knob change to undo.", title="Knobs", timeout=3)

    @on(KnobPanel.Changed)
    def knobs_changed(self, event: KnobPanel.Changed) -> None:
        self._wanted_config = event.config
        self._engine_action("resample", lambda controller: controller.resample(self._wanted_config or event.config))

    def is_stale_resample(self, config: SamplerConfig) -> bool:
        """True for a re-sample's view whose knobs a newer edit has replaced (its own re-sample is on the way)."""
        return self._wanted_config is not None and config != self._wanted_config
