"""Steering and inspecting single steps: force a candidate token, show an earlier step in every pane, link selections.

The sampler table's Enter forces its highlighted candidate; a click or ←/→ in the generation shows that step's
logits, attention, KV cache and routing (built on the engine worker by `LiveController.view_at`); a new view or
End returns to the latest. A head picked in the attention pane and a cell picked in the MoE map are named in the
message line, and the MoE selection moves the attention cursor and the tokens pane to the same position.
"""

from __future__ import annotations

from textual import on, work
from textual.message import Message
from textual.widgets import Static, Switch, TabbedContent

from llmscope.engine_api import EngineError
from llmscope.format import format_probability, visible_token_text
from llmscope.live import LiveView
from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.messages import ActionFailed, ViewUpdated, ignore_after_teardown, one_line
from llmscope.tui.pane_registry import PANES
from llmscope.widgets.attention.data import kv_groups
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.generation.pane import GeneratedText
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.tokens.pane import TokenInspector


class StepViewReady(Message):
    """The worker built the panes of an earlier step; `request` tells a stale answer from the newest one."""

    def __init__(self, view: LiveView, request: int, basis: LiveView) -> None:
        super().__init__()
        self.view = view
        self.request = request
        self.basis = basis
        """The latest view when it was asked for (a newer one makes this answer stale)."""


class StepInspectMixin(PlaygroundHost):
    """Force a token, view an earlier step, and name or follow selections made in the attention and MoE panes."""

    inspected_view: LiveView | None = None
    """The earlier step the step panes show (None while they show the latest)."""
    _step_request: int = 0
    """Counts step-view requests; an answer is drawn only if it is the newest and its basis is still the latest."""
    _force_dropped: int = 0
    """Tokens dropped by the force in flight (a force on an earlier step rewinds the later ones first)."""
    _last_head: tuple[int, int] | None = None
    """The (layer, head) the attention pane last announced: only a change is news."""

    # ------------------------------------------------------------------------------------ force
    @on(SamplerTable.TokenPicked)
    def force_picked_token(self, event: SamplerTable.TokenPicked) -> None:
        """Enter on a candidate: continue from it instead of the sampled token (from the step shown, if earlier)."""
        event.stop()
        if self.run_state.running:
            self._set_message("A run is going: pause it (p) before forcing a token.", error=True)
            return
        shown = self.inspected_view
        at = shown.viewing if shown is not None else None
        latest = self.view.step_count - 1 if self.view is not None else 0
        self._force_dropped = latest - at if at is not None else 0
        token_id = event.token_id
        self._engine_action("force", lambda controller: controller.force(token_id, at=at))

    @on(ViewUpdated)
    def say_what_was_forced(self, message: ViewUpdated) -> None:
        """After a force, say which token replaced which, with its probability, and that no forward pass ran."""
        view = message.view
        if message.action != "force" or view.sample is None or view.forced_token is None:
            return
        step = view.step_count - 1
        forced = view.token_texts.get(view.forced_token, f"#{view.forced_token}")
        sampled = view.token_texts.get(view.sample.token_id, f"#{view.sample.token_id}")
        probability = format_probability(float(view.sample.final_probs[view.forced_token]))
        dropped = self._force_dropped
        rewound = f"Rewound {dropped} later token{'s' if dropped > 1 else ''} and forced" if dropped else "Forced"
        then = f"stopped: {view.stop_reason}" if view.stop_reason else "the next step feeds it"
        self._set_message(
            f"{rewound} '{forced}' at step {step} instead of the sampler's '{sampled}' (p {probability} under "
            f"{view.config.describe()}), with no forward pass; {then}."
        )

    # ------------------------------------------------------------------------------ past steps
    @on(GeneratedText.TokenClicked, "#generated")  # not a compare lane's text
    def inspect_generated_step(self, event: GeneratedText.TokenClicked) -> None:
        """Show the step that produced the clicked (or ←/→-selected) token in every step pane."""
        view = self.view
        if view is None or self.controller is None:
            return
        if event.step_index >= view.step_count - 1:
            self.show_latest_step()
            return
        self._step_request += 1
        self._step_view_worker(event.step_index, self._step_request, view)

    @work(thread=True, exclusive=True, group="step-view")
    def _step_view_worker(self, index: int, request: int, basis: LiveView) -> None:
        """Build step `index`'s pane records off the UI thread, under the engine lock like every model action."""
        with self.engine_lock:
            controller = self.controller
            if controller is None:
                return
            try:
                past = controller.view_at(index)
            except EngineError as error:
                self.post_message(ActionFailed(str(error)))
                return
            except Exception as error:  # noqa: BLE001 - a failed view must not close the app
                self.post_message(ActionFailed(f"{type(error).__name__}: {one_line(error)}"))
                return
        self.post_message(StepViewReady(past, request, basis))

    @on(StepViewReady)
    @ignore_after_teardown
    def show_earlier_step(self, message: StepViewReady) -> None:
        """Draw an earlier step in the generation column and the visible pane; hidden panes catch up when shown."""
        if message.request != self._step_request or message.basis is not self.view:
            return  # a newer request, a new step or End came first
        if self.screen is not self.screen_stack[0]:
            return  # a dialog opened meanwhile (help, save, compare): the panes behind it keep the latest step
        past = message.view
        assert past.viewing is not None and past.panes is not None
        self.inspected_view = past
        self.query_one(GeneratedText).content = past.panes.generation
        self._title_for(past)
        active = self.query_one(TabbedContent).active
        self._stale_panes = {spec.key for spec in PANES if spec.follows_steps} - {active}
        self.render_pane(active, past)
        token, _ = past.generated[past.viewing]
        forced = " (forced by you)" if past.forced_token is not None else ""
        self._set_message(
            f"Viewing step {past.viewing}: '{visible_token_text(token.raw_bytes)}'{forced}. The logits, attention, KV and MoE panes show that "
            "step; ←/→ move, End returns to the latest, and Enter on a candidate in 2 branches from it."
        )

    def _title_for(self, past: LiveView) -> None:
        viewing = past.viewing
        assert viewing is not None
        self.query_one("#generation-title", Static).update(
            f"Generation · [b $warning]viewing step {viewing} (of 0–{past.step_count - 1})[/] · End: latest"
        )

    def show_latest_step(self) -> None:
        """Back to the latest step in every pane (End, or selecting the newest token)."""
        self._step_request += 1
        if self.inspected_view is None:
            return
        self.inspected_view = None
        if self.view is not None:
            self.render_view(self.view)
            self._set_message(f"Back to the latest step ({self.view.step_count - 1}).")

    def render_view(self, view: LiveView) -> None:
        """A new view (step, rewind, re-sample, force) always shows the latest step again."""
        self.inspected_view = None
        self._step_request += 1
        super().render_view(view)

    def render_pane(self, pane: str, view: LiveView) -> None:
        """While an earlier step is shown, a pane asked for the latest view draws that step instead."""
        inspected = self.inspected_view
        super().render_pane(pane, inspected if inspected is not None and view is self.view else view)

    # ------------------------------------------------------------------------ linked selections
    @on(AttentionPane.HeadSelected)
    def name_selected_head(self, event: AttentionPane.HeadSelected) -> None:
        """A head picked by the user: name its layer, head and KV group (GQA) in the message line."""
        pane = event.pane
        data = pane.shown
        previous, self._last_head = self._last_head, (event.layer, event.head)
        if data is None or previous in (None, self._last_head) or not pane.has_focus:
            return  # the first data announce the head, and so may new data: only a user's change is news
        groups = kv_groups(data.num_heads, data.num_kv_heads)
        group = next(number for number, members in enumerate(groups) if event.head in members)
        members = groups[group]
        shared = (
            f", shared with heads {members[0]}–{members[-1]}"
            if len(members) > 1
            else ", its own (no grouped-query sharing)"
        )
        self._set_message(f"Attention: layer {event.layer}, head {event.head} (KV group {group}{shared}).")

    @on(MoERoutingPane.Selected)
    def follow_moe_selection(self, event: MoERoutingPane.Selected) -> None:
        """Point the attention cursor and the tokens pane at the token picked in the MoE routing map."""
        position = event.position
        attention = self.query_one(AttentionPane)
        if attention.shown is not None:
            attention.cursor = (attention.cursor[0], position)
        moe = self.query_one(MoERoutingPane)
        label = moe.routing.token_labels[position] if moe.routing is not None else ""
        tokens = self.query_one(TokenInspector)
        in_prompt = not self.query_one("#chat", Switch).value and position < len(tokens.tokens)
        if in_prompt:
            tokens.select(position)  # not announced: the inspector's own TokenSelected would point back here
        where = (
            f"and token {position} in the tokens pane"
            if in_prompt
            else "(the tokens pane shows only the prompt as typed, so it has no token there)"
        )
        self._set_message(
            f"MoE layer {event.layer}, position {position} '{label}': key {position} in the attention zoom {where}."
        )
