"""The model picker (m, or the palette): what `llmscope models` lists, plus a model folder or cached hub id."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from llmscope.registry import RegistryEntry


def usable(entry: RegistryEntry) -> bool:
    """A registry entry this machine can load (ready, or ready after its one-time conversion)."""
    return not entry.status.startswith(("missing", "not shipped"))


class ModelPickerScreen(ModalScreen[str | None]):
    """Lists the registry's models with their status; Enter on one (or on a typed folder / hub id) picks it."""

    DEFAULT_CSS = """
    ModelPickerScreen { align: center middle; }
    ModelPickerScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 90%;
                                   border: round $accent; background: $surface; padding: 0 1; }
    ModelPickerScreen OptionList { height: auto; max-height: 12; }
    ModelPickerScreen Static { color: $text-muted; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#model-list"

    def __init__(self, entries: list[RegistryEntry], current: str) -> None:
        super().__init__()
        self.entries = entries
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Load another model (now: {self.current}). The session so far stays saved if you record.")
            yield OptionList(
                *(
                    Option(
                        f"{entry.name} — {entry.description}\n  {entry.status}",
                        id=entry.name,
                        disabled=not usable(entry),
                    )
                    for entry in self.entries
                ),
                id="model-list",
            )
            yield Static("…or a local model folder or a hub id already in the Hugging Face cache:")
            yield Input(placeholder="path/to/model or org/name, then Enter", id="model-path")
            yield Static("Enter loads · Tab moves between the list and the field · Esc cancels")

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Input.Submitted)
    def typed(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
