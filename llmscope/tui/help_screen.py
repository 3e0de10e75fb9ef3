"""The `?` screen: what the focused pane shows, how to read it, and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Markdown, TabbedContent

from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.pane_registry import PANE_BY_KEY, PANES

GLOBAL_KEYS = """
| key | does |
|---|---|
| Enter (in the prompt) | run the prompt: tokenize, prefill, sample the first token |
| space / n | step one token (in a replay: the next recorded action) |
| r / p | run 16 tokens / pause the run (ctrl+c pauses too) |
| b / backspace | rewind one token (the KV cache is cropped, nothing is recomputed) |
| e or / | edit the prompt (Esc leaves the prompt or a knob field) |
| c | toggle chat mode (the model's chat template, special tokens visible) |
| 1 2 3 4 5 6 | tokens · logits & sampler · attention · KV cache · MoE routing · layers (logit lens) |
| 2, then Tab | the sampler knobs sit beside the logits table: Tab moves into a field, ↑/↓ nudge it, Enter applies |
| < > · { } · ( ) | temperature · top-p · top-k one step down / up, from anywhere outside a text field |
| u / ctrl+z | undo the last knob change |
| v | compare: this run beside the same prompt at a higher temperature |
| m | pick another model (what `llmscope models` lists) |
| ctrl+s | save the session to a .llmscope file (`llmscope replay FILE` opens it, no model needed) |
| L (MoE pane, dense model) | load llmscope's tiny-moe to see an MoE router |
| l (Layers pane) | logit lens capture on / off from the next step (start with it on: `--lens`) |
| ctrl+p | command palette: panes, presets, theme, save, compare, model, screenshot |
| t | dark / light theme |
| ? / F1 | this help (↓ ↑ PgDn PgUp scroll it) · ctrl+q quits |
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
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close"),
        Binding("down,j", "scroll(1)", "Scroll down", show=False),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("home", "edge(0)", "Top", show=False),
        Binding("end", "edge(1)", "Bottom", show=False),
    ]

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

    def action_scroll(self, lines: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        scroller = self.query_one(VerticalScroll)
        scroller.scroll_relative(y=direction * max(1, scroller.scrollable_content_region.height - 1), animate=False)

    def action_edge(self, end: int) -> None:
        scroller = self.query_one(VerticalScroll)
        scroller.scroll_to(y=scroller.max_scroll_y if end else 0, animate=False)


class HelpMixin(PlaygroundHost):
    """`?` in the playground: the help of the pane the user is looking at."""

    def action_help(self) -> None:
        target = self._help_target()
        titles = {
            "generated": "Generation",
            "knobs": "Sampler knobs",
            **{spec.widget_id: spec.title for spec in PANES},
        }
        self.push_screen(HelpScreen(target, titles.get(target.id or "")))

    def _help_target(self) -> Widget:
        """The pane whose help `?` shows: the focused widget's pane, else the visible tab's.

        Every Textual widget has a HELP attribute (None unless set), so only a non-empty text marks one of ours.
        """
        focused = self.focused
        for node in focused.ancestors_with_self if focused else []:
            text = getattr(node, "HELP", None)
            if isinstance(text, str) and text.strip() and isinstance(node, Widget):
                return node
        active = self.query_one(TabbedContent).active
        return self.query_one(f"#{PANE_BY_KEY[active].widget_id}")
