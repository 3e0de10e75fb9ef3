"""`l` in the Layers pane: switch the logit-lens capture on or off for the steps that follow, on the engine worker."""

from __future__ import annotations

import dataclasses

from textual import on

from llmscope.live import LiveController, LiveView
from llmscope.tui.app_host import PlaygroundHost
from llmscope.widgets.lens.pane import LayersPane

LENS_ON_NOTE = (
    "Logit lens on: every layer's guess is captured from the next step (space steps; about 1.7× a step on CPU)."
)
LENS_OFF_NOTE = "Logit lens off from the next step; the steps already captured stay in the Layers pane."


class LensToggleMixin(PlaygroundHost):
    """Handles the Layers pane's `ToggleRequested`: a capture change through the engine worker, then a fresh view."""

    @on(LayersPane.ToggleRequested)
    def toggle_lens(self, event: LayersPane.ToggleRequested) -> None:
        event.stop()
        if self.replaying:
            self._set_message(
                "A replay shows the logit lens of the steps where the recording captured it; "
                "record with the lens on (l, or --lens) to keep it."
            )
            return
        controller = self.controller
        if controller is None:
            self.notify(self.load_error or "The model is still loading…", severity="warning")
            return
        engine = controller.engine
        if not engine.capabilities.logit_lens:
            reason = engine.capabilities.reason.get("logit_lens", "this engine cannot compute it")
            self._set_message(f"No logit lens for {engine.info.name}: {reason}.", error=True)
            return
        turn_on = not engine.capture.logit_lens
        viewing = self.view.viewing if self.view is not None else None

        def switch(live: LiveController) -> LiveView:
            live.engine.set_capture(dataclasses.replace(live.engine.capture, logit_lens=turn_on))
            return live.view_at(viewing) if live.started else live.view()

        self._set_message(LENS_ON_NOTE if turn_on else LENS_OFF_NOTE)
        self._engine_action("lens", switch)
