"""The `?` screen: what the focused pane shows, how to read it, and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Markdown

GLOBAL_KEYS = """
| key | does |
|---|---|
| Enter (in the prompt) | run the prompt: tokenize, prefill, sample the first token |
| space / n | step one token |
| r / p | run 16 tokens / pause the run (ctrl+c pauses too) |
| b / backspace | rewind one token (the KV cache is cropped, nothing is recomputed) |
| e or / | edit the prompt (Esc leaves the prompt) |
| c | toggle chat mode (the model's chat template, special tokens visible) |
| 1 2 3 4 5 | tokens · logits & sampler · attention · KV cache · MoE routing |
| t | dark / light theme |
| ? / F1 | this help · ctrl+q quits |
"""


def pane_keys(pane: Widget) -> str:
    """The pane's own bindings as a Markdown table (empty when it has none), keys as the footer shows them."""
    rows = []
    for binding in getattr(pane, "BINDINGS", []):
        if not hasattr(binding, "key"):
            continue
        keys = " / ".join(pane.app.get_key_display(binding.with_key(key)) for key in binding.key.split(","))
        rows.append(f"| {keys} | {binding.description or binding.action} |")
    return "| key | does |\n|---|---|\n" + "\n".join(rows) if rows else ""


class HelpScreen(ModalScreen[None]):
    """A centred panel explaining one pane for a learner."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%; max-width: 100; height: 85%;
        border: round $accent; background: $surface; padding: 0 2;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, pane: Widget, title: str | None = None) -> None:
        super().__init__()
        self.pane = pane
        self.pane_title = title

    def compose(self) -> ComposeResult:
        title = self.pane_title or getattr(self.pane, "HELP_TITLE", None) or type(self.pane).__name__
        text = (getattr(self.pane, "HELP", None) or "").strip()
        keys = pane_keys(self.pane)
        body = f"# {title}\n\n{text}\n\n" + (f"## Keys in this pane\n\n{keys}\n\n" if keys else "")
        body += f"## Everywhere\n{GLOBAL_KEYS}\n\n*Esc closes this help.*"
        with VerticalScroll():
            yield Markdown(body)
