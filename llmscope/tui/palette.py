"""The command palette's app commands (panes, presets, theme, save, compare, models), the model picker key, and
screenshots that land in a folder that exists."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from llmscope.registry import list_models, resolve
from llmscope.sampler import PRESETS
from llmscope.tui.app_host import PlaygroundHost
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.tui.model_picker import ModelPickerScreen, usable
from llmscope.tui.pane_registry import PANES
from llmscope.widgets.sampler.knobs import KnobPanel

PALETTE_BINDINGS = [Binding("m", "pick_model", "Model", show=False)]


def screenshot_directory() -> Path:
    """Where a palette screenshot goes: the Downloads folder when there is one, else ~/llmscope-screenshots."""
    from platformdirs import user_downloads_path

    downloads = user_downloads_path()
    if downloads.is_dir():
        return downloads
    folder = Path.home() / "llmscope-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class PaletteMixin(PlaygroundHost):
    """App commands in ctrl+p, and the model picker."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is not self.screen_stack[0]:
            return  # the compare screen and the modals have their own keys
        for spec in PANES:
            yield SystemCommand(
                f"Pane: {spec.title}",
                f"Show the {spec.title} pane (key {spec.hotkey})",
                partial(self.action_pane, spec.key),
            )
        for name, config in PRESETS.items():
            yield SystemCommand(
                f"Preset: {name}",
                f"Sampler knobs {config.describe()} (keeps the seed)",
                partial(self.choose_preset, name),
            )
        yield SystemCommand(
            "Theme: dark / light", "Switch between the dark and the light theme (t)", self.action_toggle_theme
        )
        yield SystemCommand(
            "Save session…", "Save prompts, knobs and every step to a .llmscope file (ctrl+s)", self.action_save_session
        )
        yield SystemCommand(
            "Compare…", "This run beside the same prompt at a higher temperature (v)", self.action_compare
        )
        yield SystemCommand(
            "Model: pick another model…", "What `llmscope models` lists, or a folder (m)", self.action_pick_model
        )
        for entry in list_models():
            if usable(entry):
                yield SystemCommand(
                    f"Model: {entry.name}", entry.description, partial(self.switch_model, entry.name), discover=False
                )

    def choose_preset(self, name: str) -> None:
        self.query_one(KnobPanel).choose_preset(name)

    def action_pick_model(self) -> None:
        def picked(name: str | None) -> None:
            if name is not None:
                self.switch_model(name)

        self.push_screen(ModelPickerScreen(list_models(), self.model_label), picked)

    def switch_model(self, name: str) -> None:
        """Load `name` in place of the current model (a registry name, a model folder or a cached hub id)."""
        try:
            resolve(name)
        except Exception as error:  # noqa: BLE001 - ModelNotFoundError or a bad path: say why, keep the model
            self.notify(str(error), title="Cannot load that model", severity="error")
            return
        self.model_label = name
        self.engine_factory = hf_engine_factory(name)
        self.start_loading()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Textual's screenshot, saved where a folder exists (Textual's default, ~/Downloads, may be missing)."""
        if path is None:
            try:
                path = str(screenshot_directory())
            except OSError as error:
                self.notify(f"Cannot make a folder for the screenshot: {error}", title="Screenshot", severity="error")
                return None
        return super().deliver_screenshot(filename, path, time_format)
