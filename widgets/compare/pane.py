"""The compare screen's detail widget: figures, aligned candidates, step history and side-by-side panes.

A thin widget over the renderables in compare/render.py: its content is a plain `CompareContent` (the
CompareView and the step, layer and head to show). It never imports torch.
"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from llmscope.compare.live import CompareContent
from llmscope.widgets.compare.render import (
    aligned_table,
    attention_renderable,
    history_table,
    kv_text,
    moe_renderable,
    summary_text,
)
from llmscope.widgets.lens.compare import lens_compare_renderable
from llmscope.widgets.pane import Pane
from llmscope.widgets.tokens.chips import TokenChips

__all__ = ["CompareDetails", "ExperimentPicker"]


class CompareDetails(Pane[CompareContent]):
    """Everything below the two lanes: what differs at one step, and the step history."""

    DEFAULT_CSS = """
    CompareDetails { layout: vertical; height: 1fr; }
    CompareDetails > #compare-summary { height: auto; padding: 0 1; background: $panel; }
    CompareDetails > #compare-tables { height: 14; }
    CompareDetails #compare-aligned { width: 76; padding: 0 1; }
    CompareDetails #compare-history { width: 1fr; padding: 0 1; border-left: vkey $panel-lighten-2; }
    CompareDetails > #compare-sides { height: 1fr; padding: 0 1; border-top: hkey $panel-lighten-2; }
    CompareDetails #compare-sides > Static { height: auto; margin: 0 0 1 0; }
    CompareDetails > #compare-unavailable { display: none; height: 1fr; content-align: center middle;
        color: $text-muted; text-style: italic; }
    CompareDetails.-unavailable > #compare-unavailable { display: block; }
    CompareDetails.-unavailable > #compare-summary, CompareDetails.-unavailable > #compare-tables,
    CompareDetails.-unavailable > #compare-sides { display: none; }
    """

    TABLE_ROWS: ClassVar[int] = 11
    """Candidate and history rows that fit the tables' height under their titles and headers."""

    def compose(self) -> ComposeResult:
        yield Static(id="compare-summary")
        with Horizontal(id="compare-tables"):
            yield Static(id="compare-aligned")
            yield Static(id="compare-history")
        with VerticalScroll(id="compare-sides"):
            yield Static(id="compare-tokens")
            yield Static(id="compare-attention")
            yield Static(id="compare-kv")
            yield Static(id="compare-moe")
            yield Static(id="compare-lens")
        yield Static(id="compare-unavailable")

    def draw(self, data: CompareContent) -> None:
        """Draw step `index` of the comparison with attention of `layer`/`head` in both lanes."""
        view, index, layer, head = data.view, data.index, data.layer, data.head
        record = view.records[index]
        self.query_one("#compare-summary", Static).update(summary_text(view, record))
        self.query_one("#compare-aligned", Static).update(aligned_table(record, self.TABLE_ROWS))
        self.query_one("#compare-history", Static).update(history_table(view.records, index, self.TABLE_ROWS))
        tokenization = view.tokenization
        self.query_one("#compare-tokens", Static).update(
            Group(
                Text.assemble(
                    ("prompt tokens  ", "bold"),
                    f"A {len(tokenization.a)} · B {len(tokenization.b)} · "
                    f"difference {tokenization.difference:+d} tokens",
                ),
                Text("A", style="bold cyan"),
                TokenChips(list(tokenization.a), show_ids=False),
                Text("B", style="bold magenta"),
                TokenChips(list(tokenization.b), show_ids=False),
            )
        )
        self.query_one("#compare-attention", Static).update(attention_renderable(view.lanes, index, layer, head))
        self.query_one("#compare-kv", Static).update(kv_text(view.lanes, index))
        self.query_one("#compare-moe", Static).update(moe_renderable(view.lanes, index))
        self.query_one("#compare-lens", Static).update(
            lens_compare_renderable(view.lanes, index, comparable=view.compatibility.comparable)
        )

    def draw_unavailable(self, reason: str) -> None:
        """Replace the details with one calm sentence saying why there is nothing to compare."""
        self.query_one("#compare-unavailable", Static).update(reason)


class ExperimentPicker(ModalScreen[str | None]):
    """A small list of named experiments (name, description); Enter picks one, Esc cancels."""

    DEFAULT_CSS = """
    ExperimentPicker { align: center middle; }
    ExperimentPicker > Vertical { width: 96; height: auto; max-height: 80%; border: round $accent;
        background: $surface; padding: 0 1; }
    ExperimentPicker OptionList { height: auto; max-height: 14; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Cancel")]
    AUTO_FOCUS = "OptionList"

    def __init__(self, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Pick an experiment[/b] (lanes are rebuilt from lane A's prompt and knobs)")
            yield OptionList(
                *[
                    Option(Text.assemble((f"{name:<14}", "bold"), description), id=name)
                    for name, description in self.choices
                ]
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
