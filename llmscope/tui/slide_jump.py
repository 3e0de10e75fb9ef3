"""The demo's jump-to-slide prompt: type a slide number, Enter goes there, Esc cancels."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def parse_slide(text: str, count: int) -> int | None:
    """A typed slide number (1-based) as a step index, or None when it is not a slide of the demo."""
    stripped = text.strip()
    if not stripped.isdigit():
        return None
    number = int(stripped)
    return number - 1 if 1 <= number <= count else None


class SlideJumpScreen(ModalScreen[int | None]):
    """Asks for a slide number; dismisses with its step index (None on Esc)."""

    DEFAULT_CSS = """
    SlideJumpScreen { align: center middle; }
    SlideJumpScreen > Vertical { width: 48; height: auto; border: round $accent; background: $surface; padding: 1 2; }
    SlideJumpScreen #slide-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#slide-number"

    def __init__(self, count: int, current: int) -> None:
        super().__init__()
        self.count = count
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Go to slide (1–{self.count}; now {self.current + 1}):")
            yield Input(placeholder="number, then Enter", id="slide-number", type="integer")
            yield Static("", id="slide-error")

    @on(Input.Submitted)
    def chosen(self, event: Input.Submitted) -> None:
        index = parse_slide(event.value, self.count)
        if index is None:
            self.query_one("#slide-error", Static).update(f"There is no slide {event.value.strip() or '–'}.")
            return
        self.dismiss(index)

    def action_cancel(self) -> None:
        self.dismiss(None)
