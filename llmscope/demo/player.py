"""Plays a demo script against a LiveController: the model-side half of each step.

The App runs `run_to(index)` on its engine worker and then applies the step's view settings
(pane, selection, caption) on the UI thread. Going back replays the script from the start, which
is exact because every step is seeded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from llmscope.demo.script import DemoScript, DemoStep
from llmscope.live import LiveController, LiveView
from llmscope.sampler import PRESETS

VIEW_SETTINGS = ("pane", "layer", "head", "zoom", "token")
"""Step keys that set what the screen shows; they stay in force until a later step changes them."""


@dataclass
class DemoPlayer:
    """Which step of a script is on screen; index -1 means the script has not started."""

    script: DemoScript
    index: int = -1

    @property
    def current(self) -> DemoStep | None:
        return self.script.steps[self.index] if 0 <= self.index < len(self.script.steps) else None

    @property
    def at_end(self) -> bool:
        return self.index >= len(self.script.steps) - 1

    def position_text(self) -> str:
        return f"{self.index + 1}/{len(self.script.steps)}"

    def view_settings(self, index: int) -> DemoStep:
        """Step `index` with the view settings in force there: pane, layer, head, zoom and token as the latest step
        up to it set them (so jumping or going back shows the same screen as stepping there)."""
        merged: dict[str, object] = {}
        for step in self.script.steps[: index + 1]:
            for name in VIEW_SETTINGS:
                if getattr(step, name) is not None:
                    merged[name] = getattr(step, name)
        return dataclasses.replace(self.script.steps[index], **merged)  # type: ignore[arg-type]

    def run_to(self, controller: LiveController, target: int) -> LiveView | None:
        """Bring the model to the state after step `target`: forward from the current step, or from scratch."""
        start = self.index + 1 if target > self.index else 0
        view = None
        for number in range(start, target + 1):
            view = apply_model_actions(controller, self.script.steps[number]) or view
        self.index = target
        return view if view is not None else (controller.view() if controller.started else None)


def apply_model_actions(controller: LiveController, step: DemoStep) -> LiveView | None:
    """Prompt, preset, knobs, rewind and generate, in that order; None when the step touches no model state."""
    touched = False
    if step.prompt is not None:
        controller.start(step.prompt, chat=step.chat, system_prompt=step.system)
        touched = True
    if step.preset or step.knobs:
        config = PRESETS[step.preset] if step.preset else controller.generation.config
        controller.resample(config.with_changes(**step.knobs))
        touched = True
    if step.rewind:
        controller.rewind(step.rewind)
        touched = True
    for _ in range(step.generate):
        if controller.generation.stop_reason:
            break
        controller.step()
        touched = True
    return controller.view() if touched else None
