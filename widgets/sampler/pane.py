"""The Logits & Sampler pane body: every sampler stage's effect on the top candidates for the current step.

A thin Textual widget over `SamplerTableRenderable`; the App assigns `content` (a `SamplerContent`) after
each step or knob change and handles `SamplerTable.TokenPicked` when the user forces a token.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive

from llmscope.panes import SamplerContent
from llmscope.sampler import SampleResult
from llmscope.widgets.pane import Pane
from llmscope.widgets.sampler.model import DEFAULT_MAX_ROWS, SamplerView, build_sampler_view
from llmscope.widgets.sampler.render import SamplerTableRenderable, TablePlan
from llmscope.widgets.sampler.styles import SamplerStyles
from llmscope.widgets.theme_styles import component_text_style

WAITING_REASON = "No step yet. Generate or replay a token and its sampler stages appear here."


class SamplerTable(Pane[SamplerContent], can_focus=True):
    """Top-N candidates with raw logit, raw probability, probability after each sampler stage and the pick."""

    WAITING = WAITING_REASON

    HELP: ClassVar[str] = (
        "The model scores every token in its vocabulary with a logit; softmax turns logits into the raw "
        "probabilities (raw p). Each following column is one sampler stage, in the order it runs, showing the "
        "probability after that stage, renormalised over the tokens still allowed. Temperature divides the logits: "
        "below 1 it sharpens the distribution, above 1 it flattens it, and 0 means greedy (always the top token). "
        "Top-k keeps the k most likely tokens, top-p keeps the smallest set of most likely tokens whose probability "
        "adds up to at least p, and min-p drops tokens below min-p times the top token's probability. Penalties "
        "lower the logits of tokens already seen (marked ↓). A ✗ marks the stage that removed a token; from there on "
        "its numbers are struck out. The ◀ row is the token actually picked: a uniform random number u walks the "
        "final distribution until the cumulative probability passes it. Entropy measures how spread out a "
        "distribution is; e^H, the effective vocabulary, is roughly how many equally likely tokens it is worth. "
        "transformers applies temperature before the filters; llama.cpp applies it last. "
        "Enter forces the highlighted candidate instead of the sampled token (even one a filter removed): generation "
        "continues from it with no forward pass, and the summary says 'forced'. On an earlier step picked in the "
        "generation, it rewinds the later tokens first and branches from there."
    )
    """What the pane shows and how to read it, for a learner (shown by the App on `?`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Previous row", show=False),
        Binding("down", "cursor_down", "Next row", show=False),
        Binding("home", "cursor_first", "First row", show=False),
        Binding("enter", "pick", "Force this token"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | up / down / home | Move the row cursor. |
    | enter | Ask the App to continue with the highlighted token instead of the sampled one. |
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "sampler-table--header",
        "sampler-table--muted",
        "sampler-table--removed",
        "sampler-table--remover",
        "sampler-table--penalised",
        "sampler-table--chosen",
        "sampler-table--bar",
        "sampler-table--cursor",
    }
    """
    | Class | Description |
    | :- | :- |
    | `sampler-table--header` | Column headers. |
    | `sampler-table--muted` | Labels, ranks, ids, the 'more' row and the summary's captions. |
    | `sampler-table--removed` | Numbers of removed tokens (always struck out as well). |
    | `sampler-table--remover` | The ✗ in the column of the stage that removed a token. |
    | `sampler-table--penalised` | The ↓ on a token whose logit a penalty lowered. |
    | `sampler-table--chosen` | The picked token's row text, final probability, bar and ◀. |
    | `sampler-table--bar` | Final-probability bars. |
    | `sampler-table--cursor` | The highlighted row while the table has focus. |
    """

    DEFAULT_CSS = """
    SamplerTable {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
        background: $surface;
        color: $foreground;
        &:focus { background-tint: $foreground 3%; }
        & > .sampler-table--header { color: $foreground; text-style: bold; }
        & > .sampler-table--muted { color: $text-muted; }
        & > .sampler-table--removed { color: $text-muted; }
        & > .sampler-table--remover { color: $error; text-style: bold; }
        & > .sampler-table--penalised { color: $warning; }
        & > .sampler-table--chosen { color: $accent; text-style: bold; }
        & > .sampler-table--bar { color: $primary; }
        & > .sampler-table--cursor { background: $accent 25%; }
    }
    """

    top_n: reactive[int | None] = reactive(None)
    """Candidate rows to show; None fits as many as the pane's height allows."""
    cursor_row: reactive[int] = reactive(0)
    """Index of the highlighted row among the shown candidates (drawn only while focused)."""

    class TokenPicked(Message):
        """The user asked to continue with this token instead of the sampled one (force-token branching)."""

        def __init__(self, sampler_table: SamplerTable, token_id: int, text: str) -> None:
            super().__init__()
            self.sampler_table = sampler_table
            self.token_id = token_id
            """Vocabulary id of the token to force."""
            self.text = text
            """Its display text, as given in the content's `token_texts`."""

        @property
        def control(self) -> SamplerTable:
            """The table that posted the message."""
            return self.sampler_table

    def __init__(
        self,
        *,
        top_n: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        """Create an empty table; it shows a waiting note until the App assigns `content`."""
        super().__init__(name=name, id=id, classes=classes)
        self.disabled = disabled
        self.set_reactive(SamplerTable.top_n, top_n)
        self._view: SamplerView | None = None

    @property
    def result(self) -> SampleResult | None:
        """The step currently shown (None while unavailable)."""
        return self.data.result if self.data is not None else None

    def draw(self, data: SamplerContent) -> None:
        """Build the table model for one sampling step (rows for at least `top_n` candidates)."""
        self._view = build_sampler_view(
            data.result, data.token_texts, max_rows=max(DEFAULT_MAX_ROWS, self.top_n or 0), forced=data.forced
        )
        self.refresh()

    def draw_unavailable(self, reason: str) -> None:
        self._view = None
        self.refresh()

    # --------------------------------------------------------------- drawing
    def _styles(self) -> SamplerStyles:
        """Rich styles from the component classes (colours blended on the background, so both themes work)."""

        def style(name: str) -> Style:
            return component_text_style(self, f"sampler-table--{name}")

        cursor = self.get_component_rich_style("sampler-table--cursor")
        return SamplerStyles(
            header=style("header"),
            muted=style("muted"),
            removed=style("removed"),
            remover=style("remover"),
            penalised=style("penalised"),
            chosen=style("chosen"),
            bar=style("bar"),
            cursor=Style(bgcolor=cursor.bgcolor),
        )

    def _renderable(self) -> SamplerTableRenderable | None:
        """The table for the current size, or None while unavailable."""
        if self._view is None:
            return None
        return SamplerTableRenderable(
            self._view,
            top_n=self.top_n,
            max_height=self.content_size.height or None,
            cursor_row=self.cursor_row if self.has_focus else None,
            styles=self._styles(),
        )

    def _plan(self) -> TablePlan | None:
        """The rows and columns the current size shows (used by the cursor and clicks)."""
        renderable = self._renderable()
        if renderable is None:
            return None
        return renderable.plan(self.app.console, max(1, self.content_size.width))

    def render(self) -> RenderResult:
        renderable = self._renderable()
        if renderable is None:
            muted = self._styles().muted
            return Text(self.unavailable_reason or WAITING_REASON, style=muted + Style(italic=True))
        return renderable

    # --------------------------------------------------------------- cursor
    def _row_count(self) -> int:
        plan = self._plan()
        return len(plan.rows) if plan is not None else 0

    def validate_cursor_row(self, cursor_row: int) -> int:
        return max(0, cursor_row)

    def watch_cursor_row(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_cursor_up(self) -> None:
        """Move the highlight one row up."""
        self.cursor_row = max(0, min(self.cursor_row, self._row_count() - 1) - 1)

    def action_cursor_down(self) -> None:
        """Move the highlight one row down (stops at the last shown row)."""
        self.cursor_row = max(0, min(self.cursor_row + 1, self._row_count() - 1))

    def action_cursor_first(self) -> None:
        """Move the highlight to the most likely token."""
        self.cursor_row = 0

    def action_pick(self) -> None:
        """Post TokenPicked for the highlighted row."""
        plan = self._plan()
        if plan is None or not plan.rows:
            return
        row = plan.rows[min(self.cursor_row, len(plan.rows) - 1)]
        self.post_message(self.TokenPicked(self, row.token_id, row.text))

    def on_click(self, event: events.Click) -> None:
        """Clicking a candidate row highlights it (enter then forces it)."""
        plan = self._plan()
        offset = event.get_content_offset(self)
        if plan is None or offset is None:
            return
        index = offset.y - plan.header_lines - 1
        if 0 <= index < len(plan.rows):
            self.cursor_row = index
