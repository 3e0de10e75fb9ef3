"""Saving sessions from the playground: ctrl+s with a file-name prompt, and autosave for --record.

Every live controller records as it goes (SessionRecorder); saving freezes that record and writes
it atomically on a worker thread, so a slow disk never blocks the screen and a failed save never
harms an existing file.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Static

from llmscope.engine_api import Engine
from llmscope.format import format_bytes
from llmscope.live import LiveController
from llmscope.session.files import save_session
from llmscope.session.recording import SessionRecorder
from llmscope.tui.app_host import PlaygroundHost

AUTOSAVE_DELAY_S = 3.0
"""Autosave writes at most this often while steps keep coming."""


def default_session_path(model_name: str) -> Path:
    """~/llmscope-sessions/MODEL-YYYYmmdd-HHMMSS.llmscope"""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_name = "".join(char if char.isalnum() or char in "-_." else "-" for char in model_name)
    return Path.home() / "llmscope-sessions" / f"{safe_name}-{stamp}.llmscope"


def next_recording_path(path: Path, model_name: str) -> Path:
    """A file beside `path` for another model's recording: talk.llmscope → talk-tiny-moe.llmscope (then -2, -3…)."""
    safe_name = "".join(char if char.isalnum() or char in "-_." else "-" for char in model_name)
    suffix = path.suffix or ".llmscope"
    for number in range(1, 10_000):
        candidate = path.with_name(f"{path.stem}-{safe_name}{'' if number == 1 else f'-{number}'}{suffix}")
        if not candidate.exists():
            return candidate
    raise OSError(f"no free file name beside {path}")


class SaveSessionScreen(ModalScreen[Path | None]):
    """Asks where to save; Enter confirms, Esc cancels."""

    DEFAULT_CSS = """
    SaveSessionScreen { align: center middle; }
    SaveSessionScreen > Vertical { width: 80%; max-width: 100; height: auto; border: round $accent;
                                   background: $surface; padding: 1 2; }
    SaveSessionScreen Static { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#session-path"

    def __init__(self, suggested: Path) -> None:
        super().__init__()
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Save this session (prompts, knobs, every step, rewinds) to a .llmscope file:")
            yield Input(str(self.suggested), id="session-path")
            yield Static("Enter saves · Esc cancels · `llmscope replay FILE` opens it later, with no model needed.")

    @on(Input.Submitted)
    def confirm(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RecordingMixin(PlaygroundHost):
    """ctrl+s and autosave for LLMScopeApp; expects `controller`, `engine_lock`, `_set_message`, `notify`."""

    record_path: Path | None = None
    _autosave_timer: Timer | None = None
    _record_owner: LiveController | None = None
    """The controller whose session `record_path` holds (set at its first recorded action)."""

    def new_recorder(self, engine: Engine) -> SessionRecorder:
        return SessionRecorder(engine)

    def action_save_session(self) -> None:
        if self.controller is None or self.controller.recorder is None or not self.controller.started:
            self.notify("Nothing to save yet: run a prompt first.", severity="warning")
            return
        suggested = self.record_path or default_session_path(self.controller.engine.info.name)

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._save_worker(path, announce=True)

        self.push_screen(SaveSessionScreen(suggested), chosen)

    def schedule_autosave(self) -> None:
        """After an action, save to --record's file once things have been quiet for a moment.

        The file belongs to the controller that first recorded into it: after a model switch the new
        model's session goes to a new file (and the old file gets its final save), never over the old one.
        """
        controller = self.controller
        if self.record_path is None or controller is None:
            return
        owner = self._record_owner
        if owner is not None and owner is not controller:
            self._switch_recording(owner, controller)
        self._record_owner = controller
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
        path = self.record_path
        self._autosave_timer = self.set_timer(
            AUTOSAVE_DELAY_S, lambda: self._save_worker(path, announce=False, controller=controller)
        )

    def _switch_recording(self, previous: LiveController, controller: LiveController) -> None:
        """Finish the previous model's file and move the recording to a new one, saying so."""
        old_path = self.record_path
        assert old_path is not None, "only called while recording"
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
            self._autosave_timer = None
        self._save_worker(old_path, announce=False, controller=previous)
        self.record_path = next_recording_path(old_path, controller.engine.info.name)
        self.notify(
            f"{old_path} keeps the {previous.engine.info.name} session; "
            f"{controller.engine.info.name} now records to {self.record_path}.",
            title="Recording to a new file",
            timeout=10,
        )

    def save_now(self) -> None:
        """Synchronous final save (used when quitting with --record)."""
        owner = self._record_owner or self.controller
        if self.record_path is not None and owner is not None and owner.started:
            assert owner.recorder is not None, "the playground's controllers always record"
            with self.engine_lock:
                save_session(owner.recorder.session(title=self.title_for_session()), self.record_path)

    def title_for_session(self) -> str:
        player = getattr(self, "demo_player", None)
        return player.script.title if player is not None else ""

    @work(thread=True, group="save")
    def _save_worker(self, path: Path, announce: bool, controller: LiveController | None = None) -> None:
        controller = controller or self.controller
        if controller is None or controller.recorder is None:
            return
        try:
            with self.engine_lock:
                session = controller.recorder.session(title=self.title_for_session())
            path.parent.mkdir(parents=True, exist_ok=True)
            written = save_session(session, path)
        except Exception as error:  # noqa: BLE001 - OSError, ValueError or a bug: a message, never a closed app
            self.call_from_thread(self._set_message, f"Could not save the session to {path}: {error}", error=True)
            return
        if announce:
            size = format_bytes(written.stat().st_size)
            self.call_from_thread(
                self.notify,
                f"Saved {written} ({size}). Replay: llmscope replay {written}",
                title="Session saved",
            )
