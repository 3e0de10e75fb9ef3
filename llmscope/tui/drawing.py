"""Drawing a LiveView: the generation column, the status bar and the visible pane (hidden panes catch up when shown)."""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.content import Content
from textual.widgets import Input, Static, Switch, TabbedContent

from llmscope.format import printable_text
from llmscope.live import LiveView, pane_contents
from llmscope.panes import PaneContents, TokensContent
from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.pane_registry import PANE_BY_KEY, PANES
from llmscope.widgets.generation.pane import GeneratedText
from llmscope.widgets.pane import Pane
from llmscope.widgets.sampler.knobs import KnobPanel
from llmscope.widgets.status_bar import StatusBar, StatusFigures


class DrawingMixin(PlaygroundHost):
    """Hands each pane its record from a LiveView; only the visible pane draws at once."""

    def render_view(self, view: LiveView) -> None:
        """Update the generation column, status bar and the visible pane; hidden panes catch up when shown."""
        contents = self._contents(view)
        self.query_one(GeneratedText).content = contents.generation
        self.query_one("#generation-title", Static).update(
            f"{self.replay_position() or 'Generation'} · {'chat' if view.chat else 'plain'} · "
            f"step {view.step_count - 1}"  # the prefill is step 0
            + (f" · stopped: {view.stop_reason}" if view.stop_reason else "")
            + self._replay_note(view)
        )
        self.query_one(KnobPanel).set_config(view.config)
        active = self.query_one(TabbedContent).active
        self._stale_panes = {spec.key for spec in PANES if spec.follows_steps} - {active, "tokens"}
        self.render_pane(active, view)
        if active != "tokens":
            self.render_pane("tokens", view)  # cheap (chips are drawn lazily), and always ready when shown
        self.query_one(StatusBar).figures = self._figures(view)
        self.update_figures()

    def _replay_note(self, view: LiveView) -> str:
        """On a replay engine: whether the tokens on screen are the recorded ones, or where they part."""
        engine = self.controller.engine if self.controller else None
        matches = getattr(engine, "matches_recording", None)
        if matches is None or not view.generated or not self.show_replay_note:
            return ""
        for number, (token, _) in enumerate(view.generated):
            if not matches(number, token.id):
                return f" · [b $warning]diverges from the recording at step {number}[/]"
        return " · matches the recording"

    @on(TabbedContent.TabActivated, "#panes")
    def pane_shown(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.id
        if self.view is not None and pane in self._stale_panes:
            self._stale_panes.discard(pane)
            self.render_pane(pane, self.view)

    def render_pane(self, pane: str, view: LiveView) -> None:
        """Give one pane its record from the view (drawing costs real work, so only visible panes get it)."""
        if not PANE_BY_KEY[pane].follows_steps:
            return
        content = getattr(self._contents(view), pane)
        if isinstance(content, TokensContent):  # the run on screen, marked when the prompt field has moved on
            content = replace(content, edited=self.prompt_has_unrun_edits(view))
        if content is not None:
            self._pane(pane).content = content

    def prompt_has_unrun_edits(self, view: LiveView) -> bool:
        """True when the prompt field or chat switch differs from what the run on screen was started with."""
        return self.query_one("#prompt", Input).value != view.prompt_text or self.query_one(
            "#chat", Switch
        ).value != bool(view.chat)

    def refresh_run_tokens(self) -> None:
        """After an edit of the prompt row: redraw the tokens pane with its marker."""
        if self.view is None:
            return
        self.render_pane("tokens", self.view)

    @staticmethod
    def _contents(view: LiveView) -> PaneContents:
        """The view's pane records (the controller builds them; a hand-made view gets them here)."""
        return view.panes if view.panes is not None else pane_contents(view)

    def _pane(self, key: str) -> Pane:
        return self.query_one(f"#{PANE_BY_KEY[key].widget_id}", Pane)

    def _figures(self, view: LiveView) -> StatusFigures:
        times = view.step_times_ms[1:] or view.step_times_ms  # the prefill is not a decode step
        state = "running" if self.run_state.running else (view.stop_reason or "")
        if self.deterministic or not times:
            return StatusFigures(
                steps=view.step_count,
                kv_bytes=view.kv_history[-1].total_bytes if view.kv_history else None,
                state=state,
            )
        recent = times[-8:]
        mean_ms = sum(recent) / len(recent)
        return StatusFigures(
            step_ms=times[-1],
            tokens_per_second=1000.0 / mean_ms if mean_ms else None,
            kv_bytes=view.kv_history[-1].total_bytes if view.kv_history else None,
            steps=view.step_count,
            state=state,
        )

    def _set_message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.update(Content(printable_text(text)))  # plain text: a model, file or prompt may read '[/x]'
        message.set_class(error, "-error")
