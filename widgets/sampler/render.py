"""Pure Rich renderable for the sampler table: top candidates through every active stage, then a summary.

Testable without an app: render it with `rich.console.Console(record=True, width=W)`. When the width is
too small, columns go in a fixed order: id, final (it repeats the last stage), logit, rank, then stage
columns that changed nothing visible, leftmost first; the bar appears only when there is room.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from llmscope.widgets.sampler.model import CandidateRow, SamplerView, StageCell
from llmscope.widgets.sampler.styles import (
    STRIKE,
    SamplerStyles,
    format_logit,
    format_probability,
    probability_bar,
)
from llmscope.widgets.sampler.summary import summary_lines

DEFAULT_ROWS = 12
"""Rows shown when neither `top_n` nor a height is known (e.g. printing to a plain console)."""
TOKEN_MIN_WIDTH = 8
TOKEN_COMFORT_WIDTH = 12
TOKEN_MAX_WIDTH = 24
STAGE_MIN_WIDTH = 8
"""Wide enough for a removal cell such as '✗ 0.092%'."""
BAR_MAX_WIDTH = 32
CHOSEN_MARKER = "◀"


@dataclass(frozen=True)
class Column:
    """One table column: a key naming what it shows, header text, width in cells and alignment."""

    key: str
    header: str
    width: int
    align: Literal["left", "right"] = "right"
    header_top: str = ""
    """First header line, used when stage headers take two lines ('top-p' over '0.9')."""


def _fit(text: Text, width: int, align: str) -> Text:
    """Truncate with an ellipsis or pad a cell to exactly `width` cells."""
    text = text.copy()
    text.truncate(width, overflow="ellipsis")
    padding = width - text.cell_len
    if padding > 0:
        text = Text(" " * padding) + text if align == "right" else text + Text(" " * padding)
    return text


class SamplerTableRenderable:
    """The top-N candidates with raw logit, raw p, p after each active stage and final p, plus a summary."""

    def __init__(
        self,
        view: SamplerView,
        *,
        top_n: int | None = None,
        max_height: int | None = None,
        cursor_row: int | None = None,
        styles: SamplerStyles | None = None,
    ) -> None:
        self.view = view
        self.top_n = top_n
        self.max_height = max_height
        self.cursor_row = cursor_row
        self.styles = styles or SamplerStyles()

    # ----------------------------------------------------------------- layout
    def _stage_drop_order(self, shown: list[CandidateRow]) -> list[int]:
        """Stage columns to hide when narrow: no visible effect on the shown rows first, then leftmost first.

        The last stage is never hidden: its probabilities are the final distribution.
        """

        def visible_effect(index: int) -> bool:
            if self.view.columns[index].name == "temperature":
                return True
            return any(row.cells[index].state in ("removed_here", "penalised") for row in shown)

        indices = range(len(self.view.columns) - 1)
        return sorted(indices, key=lambda index: (visible_effect(index), index))

    def _columns(self, width: int, shown: list[CandidateRow]) -> tuple[list[Column], list[str]]:
        """Columns that fit `width` (stage headers on one line, or two if that hides fewer) and the hidden stages."""
        one_line = self._columns_in_mode(width, shown, two_line=False)
        if not one_line[1] or not self.view.columns:
            return one_line
        two_line = self._columns_in_mode(width, shown, two_line=True)
        return two_line if len(two_line[1]) < len(one_line[1]) else one_line

    def _columns_in_mode(
        self, width: int, shown: list[CandidateRow], *, two_line: bool
    ) -> tuple[list[Column], list[str]]:
        """Fit columns to `width`: drop id, logit, rank, then stage columns; then widen the token, add the bar."""
        view = self.view
        rank_width = max(1, *(len(str(row.rank)) for row in shown))
        id_width = max(2, len(str(view.vocab_size - 1)))
        logit_width = max(5, *(len(format_logit(row.raw_logit)) for row in shown))
        stage_columns = []
        for index, column in enumerate(view.columns):
            name, _, setting = column.header.partition(" ")
            top, bottom = (name, setting) if two_line else ("", column.header)
            stage_columns.append(
                Column(f"stage:{index}", bottom, max(STAGE_MIN_WIDTH, cell_len(top), cell_len(bottom)), header_top=top)
            )
        columns = [
            Column("rank", "#", rank_width),
            Column("token", "token", TOKEN_MIN_WIDTH, "left"),
            Column("id", "id", id_width),
            Column("logit", "logit", logit_width),
            Column("raw", "raw p", 6),
        ]
        if stage_columns:
            columns += [Column("sep", "│", 1, header_top="│" if two_line else ""), *stage_columns]
        columns += [
            Column("sep", "│", 1, header_top="│" if two_line else ""),
            Column("final", "final", 6),
            Column("marker", "", 1),
        ]
        dropped_stages: list[str] = []

        def total(cols: list[Column], token_width: int) -> int:
            return sum(token_width if c.key == "token" else c.width for c in cols) + len(cols) - 1

        longest_text = max(cell_len(row.text) for row in shown)
        comfortable_token = max(TOKEN_MIN_WIDTH, min(TOKEN_COMFORT_WIDTH, longest_text))
        # Keep tokens readable before keeping these; the final column repeats the last stage's numbers.
        for key in ("id", "final", "logit", "rank"):
            if total(columns, comfortable_token) > width:
                columns = [column for column in columns if column.key != key]
        stage_order = self._stage_drop_order(shown[: self.top_n or DEFAULT_ROWS])
        for key in ["final", *(f"stage:{index}" for index in stage_order)]:
            if total(columns, TOKEN_MIN_WIDTH) <= width:
                break
            columns = [column for column in columns if column.key != key]
            if key.startswith("stage:"):
                dropped_stages.append(view.columns[int(key.split(":")[1])].header)
        if not any(column.key == "final" for column in columns) and columns[-2].key == "sep":
            del columns[-2]  # no separator before a lone marker
        leftover = max(0, width - total(columns, TOKEN_MIN_WIDTH))
        wanted_token = min(TOKEN_MAX_WIDTH, max(longest_text, TOKEN_COMFORT_WIDTH))
        token_width = TOKEN_MIN_WIDTH + min(leftover, max(0, wanted_token - TOKEN_MIN_WIDTH))
        leftover -= token_width - TOKEN_MIN_WIDTH
        if leftover >= 5:
            bar_width = min(BAR_MAX_WIDTH, leftover - 1)
            marker_at = next(i for i, c in enumerate(columns) if c.key == "marker")
            columns.insert(marker_at, Column("bar", "", bar_width, "left"))
            leftover -= bar_width + 1
        token_width += min(leftover, max(0, min(TOKEN_MAX_WIDTH, longest_text) - token_width))
        columns = [replace(c, width=token_width) if c.key == "token" else c for c in columns]
        return columns, dropped_stages

    def _row_count(self, summary_lines: int, chrome_lines: int) -> int:
        """How many candidate rows to show: `top_n` if given, else what the height allows, else 12."""
        available = len(self.view.rows)
        if self.top_n is not None:
            return max(1, min(self.top_n, available))
        if self.max_height is None:
            return min(DEFAULT_ROWS, available)
        return max(1, min(available, self.max_height - summary_lines - chrome_lines))

    # ------------------------------------------------------------------ cells
    def _stage_cell(self, cell: StageCell, width: int, emphasis: Style) -> Text:
        """A probability cell: plain, '↓' when a penalty lowered it, '✗' where removed, struck once gone."""
        styles = self.styles
        number = format_probability(cell.shown)
        if cell.state == "removed_here":
            text = Text.assemble(("✗", styles.remover), " ", (number, styles.removed + STRIKE))
        elif cell.state == "removed_earlier":
            text = Text(number, style=styles.removed + STRIKE)
        elif cell.state == "penalised":
            text = Text.assemble(("↓", styles.penalised), " ", (number, emphasis))
        else:
            text = Text(number, style=emphasis)
        return _fit(text, width, "right")

    def _row_line(self, row: CandidateRow, columns: list[Column]) -> Text:
        """One candidate row across the chosen columns."""
        styles = self.styles
        emphasis = styles.chosen if row.chosen else Style()
        # Without a final column the last stage's numbers are the final ones, so they carry the emphasis.
        last_stage = "" if any(c.key == "final" for c in columns) else f"stage:{len(row.cells) - 1}"
        token_style = styles.chosen if row.chosen else (styles.removed if row.removed else Style())
        parts: list[Text] = []
        for column in columns:
            key = column.key
            if key == "rank":
                cell = Text(str(row.rank), style=styles.muted)
            elif key == "token":
                cell = Text(row.text, style=token_style)
            elif key == "id":
                cell = Text(str(row.token_id), style=styles.muted)
            elif key == "logit":
                cell = Text(format_logit(row.raw_logit))
            elif key == "raw":
                cell = Text(format_probability(row.raw_probability))
            elif key.startswith("stage:"):
                cell_emphasis = emphasis if key == last_stage else Style()
                parts.append(self._stage_cell(row.cells[int(key.split(":")[1])], column.width, cell_emphasis))
                continue
            elif key == "final":
                parts.append(self._stage_cell(row.final, column.width, emphasis))
                continue
            elif key == "bar":
                bar = probability_bar(0.0 if row.removed else row.final.probability, column.width)
                cell = Text(bar, style=styles.chosen if row.chosen else styles.bar)
            elif key == "marker":
                cell = Text(CHOSEN_MARKER if row.chosen else "", style=styles.chosen)
            else:
                cell = Text("│", style=styles.muted)
            parts.append(_fit(cell, column.width, column.align))
        return Text(" ").join(parts)

    def _others_line(self, columns: list[Column], shown_rows: int, chosen_separately: bool) -> Text:
        """The rest of the vocabulary in one row: how many tokens and their summed probability per column."""
        hidden, rest, alive = self.view.others(shown_rows, chosen_separately)
        muted = self.styles.muted
        parts: list[Text] = []
        for column in columns:
            key, index = column.key, None
            if key == "raw":
                index = 0
            elif key.startswith("stage:"):
                index = 1 + int(key.split(":")[1])
            elif key == "final":
                index = len(rest) - 1
            if index is not None:
                number = format_probability(rest[index]) if alive[index] else "—"
                parts.append(_fit(Text(number, style=muted), column.width, "right"))
            elif key == "token":
                label = f"+{hidden:,} more" if len(f"+{hidden:,} more") <= column.width else f"+{hidden:,}"
                parts.append(_fit(Text(label, style=muted + Style(italic=True)), column.width, "left"))
            elif key == "sep":
                parts.append(Text("│", style=muted))
            else:
                parts.append(Text(" " * column.width))
        return Text(" ").join(parts)

    # ----------------------------------------------------------------- render
    def plan(self, console: Console, width: int) -> TablePlan:
        """Decide columns, rows and wrapped summary lines for a given width (and the height, if known)."""
        view = self.view
        preview = [*view.rows[: self.top_n or len(view.rows)], view.chosen]
        columns, dropped = self._columns(width, preview)
        summary = summary_lines(self.view, self.styles, dropped, width)
        wrapped = [line for text in summary for line in text.wrap(console, width)]
        chosen_in_top = view.chosen.rank <= len(view.rows)
        header_lines = 2 if any(column.header_top for column in columns) else 1
        chrome = header_lines + 3 + (0 if chosen_in_top else 1)  # headers, rule, others, blank (+ chosen outside)
        count = self._row_count(len(wrapped), chrome)
        shown = list(view.rows[:count])
        chosen_separately = view.chosen.rank > count
        if chosen_separately:
            shown.append(view.chosen)
        return TablePlan(columns, shown, count, chosen_separately, wrapped)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        plan = self.plan(console, options.max_width)
        styles = self.styles

        def header_line(top: bool) -> Text:
            return Text(" ").join(
                _fit(
                    Text(c.header_top if top else c.header, style=styles.muted if c.key == "sep" else styles.header),
                    c.width,
                    "left" if c.key in ("token", "bar") else "right",
                )
                for c in plan.columns
            )

        if any(column.header_top for column in plan.columns):
            yield header_line(top=True)
        header = header_line(top=False)
        yield header
        yield Text("─" * header.cell_len, style=styles.muted)
        for index, row in enumerate(plan.rows):
            line = self._row_line(row, plan.columns)
            if self.cursor_row is not None and index == self.cursor_row:
                line.stylize(styles.cursor)
            yield line
        if plan.top_count + plan.chosen_separately < self.view.vocab_size:
            yield self._others_line(plan.columns, plan.top_count, plan.chosen_separately)
        yield Text("")
        yield from plan.summary_lines


@dataclass(frozen=True)
class TablePlan:
    """What one render shows: the fitted columns, the candidate rows (best first) and the summary lines."""

    columns: list[Column]
    rows: list[CandidateRow]
    """Top rows, plus the chosen token last when it ranks below them."""
    top_count: int
    chosen_separately: bool
    summary_lines: list[Text]

    @property
    def header_lines(self) -> int:
        """1, or 2 when stage headers are split over two lines."""
        return 2 if any(column.header_top for column in self.columns) else 1
