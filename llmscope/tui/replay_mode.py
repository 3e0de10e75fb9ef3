"""Replaying a recorded session in the playground (mixed into LLMScopeApp): one recorded action per press.

Each press of space re-enacts the recording's next action (a prompt, a step, a re-sample, a forced token,
a rewind) with the knobs, prompt and chat mode it was recorded with, so the screen shows what the recording
saw, to its last step. b goes back one action by re-enacting from the start (exact: every step is seeded).
Knob edits still re-sample any step from its recorded logits; the next press returns to the recording.
"""

from __future__ import annotations

from textual import work
from textual.message import Message
from textual.widgets import Input, Switch

from llmscope.engine_api import Engine
from llmscope.format import printable_text
from llmscope.live import LiveView
from llmscope.session.replay import ReplayMove, replay_moves
from llmscope.tui.app_host import PlaygroundHost


class ReplayStepReady(Message):
    """The worker brought the replay to recorded action `index` (or failed saying why)."""

    def __init__(self, view: LiveView | None, index: int, error: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.index = index
        self.error = error


class ReplayMixin(PlaygroundHost):
    """Replay behaviour; active when the engine is a recorded session (it has `session`)."""

    replay_moves: tuple[ReplayMove, ...] = ()
    replay_index: int = -1
    """The recorded action on screen (-1 before the first)."""
    replay_busy: bool = False
    replay_title: str = ""
    """The recording's title (or file name) for messages."""
    _replay_state: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    """(prompt ids, generated ids) right after the action on screen: anything else means the user moved off it."""

    def setup_replay(self, engine: Engine) -> None:
        """Read the moves of a replay engine's session (none for a live model); called when the engine is ready."""
        session = getattr(engine, "session", None)
        driven_by_demo = getattr(self, "demo_player", None) is not None  # a demo over a recording plays its own steps
        self.replay_moves = replay_moves(session) if session is not None and not driven_by_demo else ()
        self.replay_index, self.replay_busy, self._replay_state = -1, False, None
        self.replay_title = (session.title if session is not None else "") or self.model_label

    @property
    def replaying(self) -> bool:
        return bool(self.replay_moves)

    def replay_intro(self) -> str:
        """The message under the generation when a replay opens: what is loaded and which keys walk it."""
        info = self.controller.engine.info if self.controller else None
        model = f" of {info.name}" if info else ""
        return (
            f"Replay of “{self.replay_title}”: {len(self.replay_moves)} recorded actions{model}, no model loaded. "
            "space plays the next one with its recorded knobs, b goes back one, r plays 16; knob edits re-sample "
            "any step from its recorded logits."
        )

    def replay_position(self) -> str:
        """'Replay 5/52' to head the generation title ('' outside a replay)."""
        if not self.replaying or self.replay_index < 0:
            return ""
        return f"Replay {self.replay_index + 1}/{len(self.replay_moves)}"

    def replay_go(self, target: int) -> None:
        """Bring the screen to recorded action `target` (clamped to the recording), on the engine worker."""
        if self.controller is None or self.replay_busy:
            return
        last = len(self.replay_moves) - 1
        if target > last:
            self._set_message(
                f"End of the recording “{self.replay_title}” ({last + 1} actions). b goes back; the knobs still "
                "re-sample this step."
            )
            return
        self.replay_busy = True
        self._replay_worker(max(0, target))

    def replay_back(self) -> None:
        """b in a replay: the recorded action before the one on screen."""
        if self.replay_index <= 0:
            self._set_message("This is the recording's first action: space plays the next one.")
            return
        self.replay_go(self.replay_index - 1)

    def replay_to_prompt(self, text: str, chat: bool) -> bool:
        """Enter on a recorded prompt jumps to that run's first action; False when no run has this prompt."""
        for number, move in enumerate(self.replay_moves):
            shown = printable_text(move.prompt.text)  # the field shows a recorded ESC as '␛', never raw
            if move.kind == "prompt" and text in (move.prompt.text, shown) and move.prompt.chat == chat:
                self.replay_go(number)
                return True
        return False

    @work(thread=True, group="engine")
    def _replay_worker(self, target: int) -> None:
        controller = self.controller
        assert controller is not None, "replay_go checked it"
        with self.engine_lock:
            try:
                generation = controller.generation
                here = (tuple(generation.prompt_ids), tuple(generation.generated_ids))
                start = self.replay_index + 1 if target > self.replay_index and here == self._replay_state else 0
                if start == 0 and controller.recorder is not None:
                    controller.recorder = self.new_recorder(controller.engine)  # a saved replay holds one history
                view = None
                for move in self.replay_moves[start : target + 1]:
                    view = controller.follow(move)
                self._replay_state = (tuple(generation.prompt_ids), tuple(generation.generated_ids))
            except Exception as error:  # noqa: BLE001 - a damaged recording shows a message, never closes the app
                self.post_message(ReplayStepReady(None, target, error=f"replay action {target + 1}: {error}"))
                return
        self.post_message(ReplayStepReady(view, target))

    def on_replay_step_ready(self, message: ReplayStepReady) -> None:
        self.replay_busy = False
        if message.error or message.view is None:
            self._set_message(message.error or "nothing to replay", error=True)
            return
        self.replay_index = message.index
        move = self.replay_moves[message.index]
        prompt = self.query_one("#prompt", Input)
        with prompt.prevent(Input.Changed):
            prompt.value = printable_text(move.prompt.text)
        switch = self.query_one("#chat", Switch)
        with switch.prevent(Switch.Changed):
            switch.value = move.prompt.chat
        self.view = message.view
        self.render_view(message.view)
        self.schedule_inspect(move.prompt.text)
        self.schedule_autosave()
        if message.index == 0:
            self._set_message(self.replay_intro())
        else:
            what = {"prompt": "new prompt", "resample": "re-sample", "force": "forced token", "rewind": "rewind"}
            self._set_message(
                f"Recorded action {message.index + 1}/{len(self.replay_moves)}: {what.get(move.kind, 'step')} "
                f"with {move.config.describe()}."
            )
