"""Generated-text view: the prompt, then each generated token tinted by the probability it had when chosen.

Paragraphs (text between newlines) are wrapped once per width and cached, so adding a token each step
re-wraps only the paragraph being written, even after a 2,000-token prompt.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from llmscope.panes import GenerationContent
from llmscope.trace import TokenInfo
from llmscope.widgets.generation.probability_text import (
    PROBABILITY_BANDS,
    GeneratedTextRenderable,
    Piece,
    ProbabilityLegend,
    TextStyles,
    build_paragraphs,
    paragraph_text,
    probability_band,
)
from llmscope.widgets.pane import Pane

__all__ = ["PROBABILITY_BANDS", "GeneratedText", "GeneratedTextRenderable", "GeneratedTextView", "probability_band"]


class GeneratedTextView(ScrollView, can_focus=False):
    """The scrolling text body; draws paragraphs it is given and reports which step was clicked."""

    DEFAULT_CSS = """
    GeneratedTextView {
        height: 1fr;
        overflow-x: hidden;
        scrollbar-gutter: stable;
        scrollbar-size-vertical: 1;
    }
    """

    class StepClicked(Message):
        """A generated token was clicked (handled by GeneratedText, which turns it into TokenClicked)."""

        def __init__(self, step_index: int) -> None:
            super().__init__()
            self.step_index = step_index

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._paragraphs: list[tuple[Piece, ...]] = []
        self._styles = TextStyles()
        self._wrapped: LRUCache[tuple[tuple[Piece, ...], int], list[Strip]] = LRUCache(4096)
        self._lines: list[Strip] = []
        self._paragraph_first_line: list[int] = []
        self._follow = True
        self._pinned = True
        """True while the view shows the end of the text (it then follows new tokens)."""
        self._wanted_step: int | None = None
        """The step last asked to be kept visible, re-applied after a resize re-wraps the text."""

    def set_paragraphs(self, paragraphs: list[tuple[Piece, ...]], styles: TextStyles, *, follow: bool) -> None:
        """Show new content; with `follow`, stay pinned to the end unless the user scrolled away from it."""
        if styles != self._styles:
            self._wrapped.clear()
        self._paragraphs, self._styles, self._follow = paragraphs, styles, follow
        self._rewrap()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._pinned = new_value >= self.max_scroll_y

    def _wrap(self, paragraph: tuple[Piece, ...], width: int) -> list[Strip]:
        """Wrapped lines of one paragraph, from the cache when the same paragraph was wrapped at this width."""
        key = (paragraph, width)
        cached = self._wrapped.get(key)
        if cached is None:
            console = self.app.console
            options = console.options.update_width(width)
            lines = console.render_lines(paragraph_text(paragraph, self._styles), options, pad=False)
            cached = [Strip(line).extend_cell_length(width) for line in lines] or [Strip.blank(width)]
            self._wrapped[key] = cached
        return cached

    def _rewrap(self) -> None:
        """Rebuild the line list from (mostly cached) paragraph wraps and refresh."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return
        lines: list[Strip] = []
        firsts: list[int] = []
        for paragraph in self._paragraphs:
            firsts.append(len(lines))
            lines.extend(self._wrap(paragraph, width))
        self._lines, self._paragraph_first_line = lines, firsts
        pinned = self._pinned
        self.virtual_size = Size(width, len(lines))
        if self._follow and pinned:
            self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
            self._pinned = True
        self._reveal(self._wanted_step)
        self.refresh()

    def line_of_step(self, step: int) -> int | None:
        """The first line that shows generated step `step` (found through the step stored in the style meta)."""
        width = self.scrollable_content_region.width
        for number, paragraph in enumerate(self._paragraphs):
            if width > 0 and any(piece_step == step for _, _, piece_step in paragraph):
                first = self._paragraph_first_line[number]
                for offset, strip in enumerate(self._wrap(paragraph, width)):
                    if any(segment.style and segment.style.meta.get("step") == step for segment in strip):
                        return first + offset
                return first
        return None

    def scroll_to_step(self, step: int | None) -> None:
        """Scroll the least needed to show the line holding `step` (and keep it shown across resizes)."""
        self._wanted_step = step
        self._reveal(step)

    def _reveal(self, step: int | None) -> None:
        """Scroll the least needed to show the line holding `step`."""
        line = None if step is None else self.line_of_step(step)
        if line is None:
            return
        height = self.scrollable_content_region.height
        if line < self.scroll_y:
            self.scroll_to(y=line, animate=False, force=True)
        elif line >= self.scroll_y + height:
            self.scroll_to(y=line - height + 1, animate=False, force=True)

    def on_resize(self, event: events.Resize) -> None:
        self._rewrap()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._wrapped.clear()

    def render_line(self, y: int) -> Strip:
        line = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if line >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return self._lines[line].crop_extend(0, width, self.rich_style).apply_style(self.rich_style)

    def on_click(self, event: events.Click) -> None:
        step = event.style.meta.get("step") if event.style else None
        if isinstance(step, int):
            self.post_message(self.StepClicked(step))


class GeneratedText(Pane[GenerationContent], can_focus=True):
    """The main generation pane's body: prompt, coloured generated tokens, stop reason and a colour legend."""

    HELP: ClassVar[str] = (
        "The prompt is shown dim; everything after it was written by the model, one token per step. Each "
        "generated token is tinted by the probability it had, at the moment it was picked, in the distribution "
        "the sampler drew from (after temperature, top-k, top-p and min-p): red under 10 %, orange and yellow "
        "in between, green 70 % or more. Softmax leaves every token some probability, so sampling can draw an "
        "unlikely token, and low-probability picks are where a text can wander into nonsense. ⏎ marks a "
        "generated newline. The line with ■ says why generation stopped: an end-of-sequence token, the step "
        "limit, or a full context window. Click a token, or use ←/→, to inspect the step that produced it: "
        "the logits, attention, KV and MoE panes then show that step, until End or a new step returns to the latest."
    )
    """What this pane teaches, shown by the App on `?`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "select_step(-1)", "Prev token"),
        Binding("right", "select_step(1)", "Next token"),
        Binding("home", "select_edge(0)", "First token", show=False),
        Binding("end", "select_edge(1)", "Last token", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "generated--prompt",
        "generated--special",
        "generated--band-0",
        "generated--band-1",
        "generated--band-2",
        "generated--band-3",
        "generated--band-4",
        "generated--selected",
        "generated--marker",
        "generated--stop",
    }
    """Prompt, special tokens, the five probability bands (lowest first), selection, ⏎ marker and stop line."""

    DEFAULT_CSS = """
    GeneratedText {
        layout: vertical;
        height: 1fr;
        padding: 0 0 0 1;
    }
    GeneratedText > #generated-legend { height: auto; }
    GeneratedText > #generated-unavailable { display: none; height: 1fr; content-align: center middle;
        color: $text-muted; text-style: italic; }
    GeneratedText.-unavailable > #generated-unavailable { display: block; }
    GeneratedText.-unavailable > GeneratedTextView, GeneratedText.-unavailable > #generated-legend { display: none; }
    GeneratedText > .generated--prompt { color: $text-muted; }
    GeneratedText > .generated--special { color: $text-accent; text-style: italic; }
    GeneratedText > .generated--band-0 { background: #e5534b 62%; color: $foreground; }
    GeneratedText > .generated--band-1 { background: #f0883e 48%; color: $foreground; }
    GeneratedText > .generated--band-2 { background: #d4b106 36%; color: $foreground; }
    GeneratedText > .generated--band-3 { background: #8fbf3f 26%; color: $foreground; }
    GeneratedText > .generated--band-4 { background: #3fb950 16%; color: $foreground; }
    GeneratedText > .generated--selected { background: $primary; color: auto 90%; text-style: bold underline; }
    GeneratedText > .generated--marker { text-style: dim; }
    GeneratedText > .generated--stop { color: $text-muted; text-style: italic; }
    """

    class TokenClicked(Message):
        """The user picked generated token `step_index` (click or ←/→); the App can show that step in every pane."""

        def __init__(self, step_index: int, generated_text: GeneratedText | None = None) -> None:
            super().__init__()
            self.step_index = step_index
            self.generated_text = generated_text

        @property
        def control(self) -> GeneratedText | None:
            """The view that posted the message (so a handler can tell the playground's from a compare lane's)."""
            return self.generated_text

    selected: reactive[int | None] = reactive(None, init=False, repaint=False)
    """Index of the highlighted generated token (its generation step), or None."""

    def __init__(
        self,
        *,
        follow: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """`follow` keeps the view scrolled to the newest token while the user has not scrolled away."""
        super().__init__(name=name, id=id, classes=classes)
        self.disabled = disabled
        self.follow = follow
        self.prompt_tokens: list[TokenInfo] = []
        self.generated: list[tuple[TokenInfo, float]] = []
        self.stop_reason: str | None = None
        self.set_reactive(Pane.content, GenerationContent((), ()))  # an empty page, not a reason, before a run
        self._bindings_available = True

    def compose(self) -> ComposeResult:
        yield GeneratedTextView()
        yield Static(id="generated-legend")
        yield Static(id="generated-unavailable")

    def draw(self, data: GenerationContent) -> None:
        """Display the prompt and the generated tokens with the probability each had when chosen."""
        self.prompt_tokens, self.generated, self.stop_reason = (
            list(data.prompt_tokens),
            list(data.generated),
            data.stop_reason,
        )
        self._set_bindings_available(True)
        self.set_reactive(GeneratedText.selected, self.validate_selected(data.selected))
        self._redraw()
        self.query_one(GeneratedTextView).scroll_to_step(self.selected)

    def draw_unavailable(self, reason: str) -> None:
        """Replace the text with a calm sentence saying why there is nothing to show."""
        self._set_bindings_available(False)
        self.query_one("#generated-unavailable", Static).update(f"No generated text: {reason}")

    def _set_bindings_available(self, available: bool) -> None:
        """Footer keys change only when availability does (refreshing them on every token would flicker)."""
        if available != self._bindings_available:
            self._bindings_available = available
            self.refresh_bindings()

    def validate_selected(self, index: int | None) -> int | None:
        if index is None or not self.generated:
            return None
        return max(0, min(index, len(self.generated) - 1))

    def watch_selected(self, index: int | None) -> None:
        if self.is_mounted:
            self._redraw()
            self.query_one(GeneratedTextView).scroll_to_step(index)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the pane's keys from the footer while it has nothing to show."""
        return self.unavailable_reason is None

    def action_select_step(self, delta: int) -> None:
        if not self.generated:
            return
        start = (
            len(self.generated)
            if self.selected is None and delta < 0
            else -1
            if self.selected is None
            else self.selected
        )
        self._pick(start + delta)

    def action_select_edge(self, last: int) -> None:
        if self.generated:
            self._pick(len(self.generated) - 1 if last else 0)

    def _pick(self, step: int) -> None:
        """Select `step` here at once and tell the App, which owns the step shown by the other panes."""
        step = max(0, min(step, len(self.generated) - 1))
        self.selected = step
        self.post_message(self.TokenClicked(step, self))

    def on_generated_text_view_step_clicked(self, message: GeneratedTextView.StepClicked) -> None:
        message.stop()
        self.focus()
        self._pick(message.step_index)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self.call_later(self._redraw)

    def _text_styles(self) -> TextStyles:
        """Styles resolved from the component classes for the current theme."""
        get = self.get_component_rich_style
        return TextStyles(
            prompt=get("generated--prompt"),
            special=get("generated--special", partial=True),
            bands=tuple(get(f"generated--band-{index}") for index in range(len(PROBABILITY_BANDS))),
            selected=get("generated--selected"),
            marker=get("generated--marker", partial=True),
            stop=get("generated--stop"),
        )

    def _redraw(self) -> None:
        """Rebuild paragraphs from the data and hand them, with theme styles, to the view and the legend."""
        styles = self._text_styles()
        if not self.prompt_tokens and not self.generated:
            paragraphs: list[tuple[Piece, ...]] = [(("Nothing generated yet.", "stop", -1),)]
        else:
            paragraphs = build_paragraphs(
                self.prompt_tokens, self.generated, stop_reason=self.stop_reason, selected=self.selected
            )
        self.query_one(GeneratedTextView).set_paragraphs(paragraphs, styles, follow=self.follow)
        self.query_one("#generated-legend", Static).update(ProbabilityLegend(styles))
