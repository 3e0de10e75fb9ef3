"""The prompt field and the tokenizer inspector: debounced re-tokenizing and links from a token to the other panes."""

from __future__ import annotations

from textual import on, work
from textual.widgets import Input, Switch

from llmscope.format import visible_token_text
from llmscope.panes import TokensContent
from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.messages import (
    ActionFailed,
    TokensInspected,
    ignore_after_teardown,
    one_line,
)
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.tokens.pane import TokenInspector


class PromptMixin(PlaygroundHost):
    """The prompt row: run on Enter, chat-mode checks, live tokenization, and token selection linking the panes."""

    @on(Input.Submitted, "#prompt")
    def prompt_submitted(self) -> None:
        self.action_start()

    @on(Input.Changed, "#prompt")
    def prompt_changed(self, event: Input.Changed) -> None:
        self.schedule_inspect(event.value)
        self.refresh_run_tokens()

    @on(Switch.Changed, "#chat")
    def chat_changed(self) -> None:
        if self._refuse_chat_without_template():
            return
        self.schedule_inspect(self.query_one("#prompt", Input).value)
        self.refresh_run_tokens()

    def _refuse_chat_without_template(self) -> bool:
        """Chat mode needs the model's chat template; without one, switch back to plain and say why."""
        switch = self.query_one("#chat", Switch)
        info = self.controller.engine.info if self.controller else None
        if not switch.value or info is None or info.has_chat_template:
            return False
        switch.value = False
        self._set_message(f"{info.name} has no chat template, so chat mode is off: the prompt is fed as plain text.")
        return True

    def schedule_inspect(self, text: str) -> None:
        """Re-tokenize for the inspector 150 ms after typing pauses (a tokenizer call per key would lag)."""
        if self._inspect_timer is not None:
            self._inspect_timer.stop()
        chat = self.query_one("#chat", Switch).value
        self._inspect_timer = self.set_timer(0.15, lambda: self._inspect_worker(text, chat))

    @work(thread=True, exclusive=True, group="inspect")
    def _inspect_worker(self, text: str, chat: bool) -> None:
        controller = self.controller
        if controller is None or not text:
            return
        try:
            shown = controller.engine.render_chat(text) if chat and hasattr(controller.engine, "render_chat") else text
            tokens = controller.inspect(shown)
        except Exception as error:  # noqa: BLE001
            self.post_message(ActionFailed(f"tokenizer: {one_line(error)}"))
            return
        self.post_message(TokensInspected(shown, tokens))

    @ignore_after_teardown
    def on_tokens_inspected(self, message: TokensInspected) -> None:
        if self.view is not None:
            return  # once a prompt has run the pane shows that run; an edit only marks it (refresh_run_tokens)
        info = self.controller.engine.info if self.controller else None
        self.query_one(TokenInspector).content = TokensContent(
            tuple(message.tokens), message.text, vocab_size=info.vocab_size if info else None
        )

    @on(TokenInspector.TokenSelected)
    def token_selected(self, event: TokenInspector.TokenSelected) -> None:
        """Show the same position in the attention and MoE panes (the pane shows the run: its index is the position)."""
        view = self.view
        if view is None or event.index >= len(view.context_labels):
            return
        for pane in ("attention", "moe") if self._stale_panes else ():
            if pane in self._stale_panes:  # they need this step's data before a selection means anything
                self._stale_panes.discard(pane)
                self.render_pane(pane, view)
        attention = self.query_one(AttentionPane)
        attention.cursor = (attention.cursor[0], event.index)
        moe = self.query_one(MoERoutingPane)
        if getattr(moe, "mode", None) == "routing":
            moe.selected_position = event.index
        self._set_message(
            f"Token {event.index} '{visible_token_text(event.token.raw_bytes)}' (id {event.token.id}) is key "
            f"{event.index} in the "
            f"attention zoom and position {event.index} in the MoE routing map."
        )
