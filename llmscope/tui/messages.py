"""Messages the app's workers post back to the UI thread, and a guard for results that arrive after shutdown."""

from __future__ import annotations

import functools
from collections.abc import Callable

from textual.css.query import NoMatches
from textual.message import Message

from llmscope.live import LiveController, LiveView


def ignore_after_teardown(handler: Callable) -> Callable:
    """Worker results can arrive while the app is shutting down and its widgets are gone; drop them then."""

    @functools.wraps(handler)
    def guarded(self, *args, **kwargs):
        try:
            return handler(self, *args, **kwargs)
        except NoMatches:
            if self.is_running:  # widgets missing while the app runs is a genuine bug: let it surface
                raise
            return None  # Textual's shutdown sets is_running False before it removes the widgets

    return guarded


class EngineReady(Message):
    """The worker finished loading a model."""

    def __init__(self, controller: LiveController) -> None:
        super().__init__()
        self.controller = controller


class EngineFailed(Message):
    """Loading failed; `error` is one line for the user."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class LoadProgress(Message):
    def __init__(self, text: str, fraction: float | None) -> None:
        super().__init__()
        self.text = text
        self.fraction = fraction


class ViewUpdated(Message):
    """The worker produced a new view; `action` says what happened (for the status line)."""

    def __init__(self, view: LiveView, action: str) -> None:
        super().__init__()
        self.view = view
        self.action = action

    def can_replace(self, message: Message) -> bool:
        """During a run only the newest view matters: a queued run view gives way to the next one."""
        return isinstance(message, ViewUpdated) and self.action == "run" and message.action == "run"


class ActionFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class TokensInspected(Message):
    def __init__(self, text: str, tokens: list) -> None:
        super().__init__()
        self.text = text
        self.tokens = tokens


class RunFinished(Message):
    """A multi-token run ended (done, stopped, or paused by the user)."""

    def __init__(self, paused: bool) -> None:
        super().__init__()
        self.paused = paused


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type name when it has none), for the message line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
