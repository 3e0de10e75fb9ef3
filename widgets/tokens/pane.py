"""Tokenizer inspector pane: the prompt as token chips with ids, a byte view, counts and a selectable token.

The chips are drawn with the Line API from a cached layout, so a 2,000-token prompt costs only the visible
lines per frame; re-tokenizing while typing reuses cached chips for every token that did not change.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from llmscope.format import format_count
from llmscope.panes import TokensContent
from llmscope.trace import TokenInfo
from llmscope.widgets.pane import Pane
from llmscope.widgets.tokens.chip_view import TokenChipView
from llmscope.widgets.tokens.chips import TokenChips
from llmscope.widgets.tokens.summary import CountsLine, DetailLine, TokenCounts, count_text, legend_text

__all__ = ["TokenChipView", "TokenChips", "TokenCounts", "TokenInspector", "count_text"]


def run_text(prompt_tokens: int, generated: int, edited: bool) -> str:
    """The line over the chips: what they are (the run on screen) and whether the prompt field has moved on."""
    if not generated and not edited:
        return ""
    line = (
        f"The run on screen: {format_count(prompt_tokens)} prompt + {format_count(generated)} generated tokens (green)."
    )
    if edited:
        line += " ✎ Prompt edited, not run yet: Enter runs it."
    return line


class TokenInspector(Pane[TokensContent], can_focus=True):
    """How the tokenizer cut the prompt: chips, ids, bytes, counts, and one selected token in detail."""

    HELP: ClassVar[str] = (
        "A model never sees letters: the tokenizer cuts the text into tokens, each an entry (an id) in a fixed "
        "vocabulary. Each coloured chip is one token, with its id below; the colours only alternate so you can "
        "see where one token ends. Spaces show as ␣, newlines as ⏎. Frequent words are one token; rare words, "
        "numbers and other languages need several. Byte-level BPE can split one character (an emoji, a CJK "
        "character) into several byte tokens, shown as ‹e7›. Press b for the byte view: the vocabulary's own "
        "spelling (Ġ marks a space, Ċ a newline in byte-level BPE; ▁ a space in SentencePiece; <0xNN> a "
        "byte-fallback token) next to the raw UTF-8 bytes. Special tokens such as <|im_start|> are control "
        "markers from the chat template, highlighted. The counts compare characters, bytes, words and tokens: "
        "context windows and costs are counted in tokens, not words. Select a token with ←/→ to see its "
        "offsets in the text; the other panes highlight the same position."
    )
    """What this pane teaches, shown by the App on `?`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "select_previous", "Prev token"),
        Binding("right,l", "select_next", "Next token"),
        Binding("up,k", "select_row(-1)", "Row up", show=False),
        Binding("down,j", "select_row(1)", "Row down", show=False),
        Binding("home", "select_first", "First token", show=False),
        Binding("end", "select_last", "Last token", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("b", "toggle_byte_view", "Bytes"),
        Binding("i", "toggle_ids", "Ids"),
    ]

    DEFAULT_CSS = """
    TokenInspector {
        layout: vertical;
        height: 1fr;
        padding: 0 1;
    }
    TokenInspector > #token-run { height: auto; color: $text-muted; }
    TokenInspector > #token-run.-edited { color: $text-warning; text-style: bold; }
    TokenInspector > #token-counts { height: auto; margin-bottom: 1; }
    TokenInspector > #token-detail { height: auto; margin-top: 1; }
    TokenInspector.-compact > #token-counts { margin-bottom: 0; }
    TokenInspector.-compact > #token-detail { margin-top: 0; }
    TokenInspector > #token-legend { height: auto; color: $text-muted; }
    TokenInspector > #token-unavailable { display: none; height: 1fr; content-align: center middle;
        color: $text-muted; text-style: italic; }
    TokenInspector.-unavailable > #token-unavailable { display: block; }
    TokenInspector.-unavailable > #token-counts,
    TokenInspector.-unavailable > #token-run,
    TokenInspector.-unavailable > TokenChipView,
    TokenInspector.-unavailable > #token-detail,
    TokenInspector.-unavailable > #token-legend { display: none; }
    TokenInspector:focus > #token-detail { color: $foreground; }
    """

    class TokenSelected(Message):
        """The user selected token `index` of the prompt, so other panes can highlight the same position."""

        def __init__(self, index: int, token: TokenInfo) -> None:
            super().__init__()
            self.index = index
            self.token = token

    selected: reactive[int | None] = reactive(None, init=False, repaint=False)
    """Index of the selected token in the prompt, or None before the user picks one."""
    byte_view: reactive[bool] = reactive(False, init=False, repaint=False)
    """Show each token's vocabulary piece and its UTF-8 bytes in hex instead of its readable text."""
    show_ids: reactive[bool] = reactive(True, init=False, repaint=False)
    """Show the token id under each chip."""

    def __init__(
        self,
        *,
        byte_view: bool = False,
        show_ids: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.disabled = disabled
        self.set_reactive(TokenInspector.byte_view, byte_view)
        self.set_reactive(TokenInspector.show_ids, show_ids)
        self.tokens: list[TokenInfo] = []
        """The tokens shown."""
        self.text = ""
        """The text they spell."""
        self.vocab_size: int | None = None
        self.family: str | None = None
        self.generated = 0
        """How many of the last tokens the model generated."""
        self.edited = False
        """The prompt field has edits the run shown has not used."""
        self.set_reactive(Pane.content, TokensContent((), ""))  # empty chips, not a reason, before any text
        self._bindings_available = True
        self._announce = True

    def compose(self) -> ComposeResult:
        yield Static(id="token-run")
        yield Static(id="token-counts")
        yield TokenChipView()
        yield Static(id="token-detail")
        yield Static(id="token-legend")
        yield Static(id="token-unavailable")

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < 30 or event.size.width < 100, "-compact")

    def draw(self, data: TokensContent) -> None:
        """Display the tokens of a text (again after each debounced edit); the selection is kept if it fits."""
        self.tokens, self.text = list(data.tokens), data.text
        self.vocab_size, self.family = data.vocab_size, data.family
        self.generated, self.edited = data.generated, data.edited
        self._set_bindings_available(True)
        if self.selected is not None and self.selected >= len(self.tokens):
            self.selected = len(self.tokens) - 1 if self.tokens else None
        self._refresh_all()

    def draw_unavailable(self, reason: str) -> None:
        """Replace the pane's content with a calm sentence saying why there is nothing to show."""
        self._set_bindings_available(False)
        self.query_one("#token-unavailable", Static).update(f"No tokens to show: {reason}")

    def _set_bindings_available(self, available: bool) -> None:
        """Footer keys change only when availability does."""
        if available != self._bindings_available:
            self._bindings_available = available
            self.refresh_bindings()

    def select(self, index: int | None, *, announce: bool = False) -> None:
        """Select token `index` from outside (e.g. to follow another pane); posts TokenSelected only if `announce`."""
        self._announce = announce
        try:
            self.selected = index
        finally:
            self._announce = True

    # ----- reactives ----------------------------------------------------------------------------------

    def validate_selected(self, index: int | None) -> int | None:
        if index is None or not self.tokens:
            return None
        return max(0, min(index, len(self.tokens) - 1))

    def watch_selected(self, index: int | None) -> None:
        if not self.is_mounted:
            return
        self.query_one(TokenChipView).set_selected(index)
        self._update_detail()
        if index is not None and self._announce:
            self.post_message(self.TokenSelected(index, self.tokens[index]))

    def watch_byte_view(self) -> None:
        if self.is_mounted:
            self._refresh_all()

    def watch_show_ids(self) -> None:
        if self.is_mounted:
            self._refresh_all()

    # ----- actions ------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the pane's keys from the footer while it has nothing to show."""
        return self.unavailable_reason is None

    def action_select_previous(self) -> None:
        if self.tokens:
            self.selected = len(self.tokens) - 1 if self.selected is None else self.selected - 1

    def action_select_next(self) -> None:
        if self.tokens:
            self.selected = 0 if self.selected is None else self.selected + 1

    def action_select_first(self) -> None:
        if self.tokens:
            self.selected = 0

    def action_select_last(self) -> None:
        if self.tokens:
            self.selected = len(self.tokens) - 1

    def action_select_row(self, direction: int) -> None:
        """Move to the chip in the row above/below that starts nearest the selected chip's column."""
        layout = self.query_one(TokenChipView).chip_layout
        if layout is None or not self.tokens:
            return
        if self.selected is None:
            self.selected = 0
            return
        row = layout.row_of[self.selected] + direction
        if not 0 <= row < len(layout.rows):
            return
        column = next(left for index, left, _ in layout.rows[row - direction] if index == self.selected)
        self.selected = min(layout.rows[row], key=lambda placed: abs(placed[1] - column))[0]

    def action_page(self, direction: int) -> None:
        chip_view = self.query_one(TokenChipView)
        chip_view.scroll_to(y=chip_view.scroll_y + direction * max(1, chip_view.size.height - 1), animate=False)

    def action_toggle_byte_view(self) -> None:
        self.byte_view = not self.byte_view

    def action_toggle_ids(self) -> None:
        self.show_ids = not self.show_ids

    def on_token_chip_view_chip_clicked(self, message: TokenChipView.ChipClicked) -> None:
        message.stop()
        self.focus()
        self.selected = message.index

    # ----- drawing ------------------------------------------------------------------------------------

    def _refresh_all(self) -> None:
        """Redraw counts, chips, detail and legend from the current data and view switches."""
        counts = count_text(self.tokens, self.text)
        if self.generated:  # the round trip checks the tokenizer: the prompt's tokens, not what the model wrote
            prompt = self.tokens[: len(self.tokens) - self.generated]
            end = prompt[-1].end if prompt and prompt[-1].end is not None else 0
            counts = dataclasses.replace(counts, round_trip=count_text(prompt, self.text[:end]).round_trip)
        counts_line = CountsLine(counts, vocab_size=self.vocab_size, family=self.family)
        self.query_one("#token-counts", Static).update(counts_line)
        chip_view = self.query_one(TokenChipView)
        chip_view.set_tokens(
            self.tokens,
            byte_view=self.byte_view,
            show_ids=self.show_ids,
            selected=self.selected,
            generated=self.generated,
        )
        run = self.query_one("#token-run", Static)
        run.update(run_text(len(self.tokens) - self.generated, self.generated, self.edited))
        run.set_class(self.edited, "-edited")
        self._update_detail()
        self.query_one("#token-legend", Static).update(legend_text(self.byte_view, self.family))
        if not self.tokens:
            self.query_one("#token-detail", Static).update("Type a prompt to see how the tokenizer cuts it.")

    def _update_detail(self) -> None:
        self.query_one("#token-detail", Static).update(DetailLine(self.tokens, self.selected, self.text))
