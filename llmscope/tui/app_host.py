"""What the playground's mixins (loading, prompt, drawing, demo_mode, recording) use of LLMScopeApp, spelled out for the type checker.

At run time `PlaygroundHost` is an empty App subclass, so `@on` handlers defined in a mixin are registered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING


@dataclass
class RunState:
    """Whether a multi-token run is going, and the flag that stops it between steps."""

    stop: threading.Event
    running: bool = False


if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.app import App
    from textual.timer import Timer

    from llmscope.demo.player import DemoPlayer
    from llmscope.engine_api import Engine, EngineFactory
    from llmscope.live import LiveController, LiveView
    from llmscope.session.recording import SessionRecorder
    from llmscope.session.replay import ReplayMove
    from llmscope.widgets.pane import Pane

    class PlaygroundHost(App[None]):
        """Textual's App plus the LLMScopeApp members the mixins call; LLMScopeApp defines each of them."""

        controller: LiveController | None
        view: LiveView | None
        engine_lock: threading.Lock

        engine_factory: EngineFactory
        model_label: str
        load_error: str | None
        deterministic: bool
        show_replay_note: bool
        run_state: RunState
        _stale_panes: set[str]
        _inspect_timer: Timer | None
        _run_after_start: bool

        demo_player: DemoPlayer | None
        replay_moves: tuple[ReplayMove, ...]
        replay_index: int
        replay_title: str

        @property
        def replaying(self) -> bool: ...
        def setup_replay(self, engine: Engine) -> None: ...
        def replay_intro(self) -> str: ...
        def replay_position(self) -> str: ...
        def replay_go(self, target: int) -> None: ...
        def replay_back(self) -> None: ...
        def replay_to_prompt(self, text: str, chat: bool) -> bool: ...

        def _set_message(self, text: str, *, error: bool = False) -> None: ...
        def _pane(self, key: str) -> Pane: ...
        def _engine_action(self, label: str, action: Callable[[LiveController], LiveView]) -> None: ...
        def action_start(self) -> None: ...
        def action_run(self) -> None: ...
        def start_demo(self) -> None: ...
        def new_recorder(self, engine: Engine) -> SessionRecorder: ...
        def update_figures(self) -> None: ...
        def render_pane(self, pane: str, view: LiveView) -> None: ...
        def schedule_inspect(self, text: str) -> None: ...
        def schedule_autosave(self) -> None: ...
        def start_loading(self) -> None: ...
        def _refuse_chat_without_template(self) -> bool: ...
        def render_view(self, view: LiveView) -> None: ...
        def action_toggle_theme(self) -> None: ...
        def action_save_session(self) -> None: ...
        def action_compare(self) -> None: ...
        def refresh_run_tokens(self) -> None: ...
        def prompt_has_unrun_edits(self, view: LiveView) -> bool: ...
        def action_pane(self, pane: str) -> None: ...

else:
    from textual.app import App

    class PlaygroundHost(App[None]):
        """At run time the mixins are App subclasses too: Textual's metaclass registers `@on` handlers only
        on MessagePump classes, so a plain-object mixin's decorated handlers would never be called."""
