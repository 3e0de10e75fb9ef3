"""Knob panel: typing, nudges, presets and order post validated configs; invalid input shows an error, posts nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual.app import App, ComposeResult
from textual.widgets import Label, Select, Static

from llmscope.sampler import PRESETS, SamplerConfig
from llmscope.widgets.sampler.knobs import KnobInput, KnobPanel


class KnobApp(App[None]):
    """Just the knob panel, recording every Changed it posts."""

    def __init__(self, config: SamplerConfig | None = None) -> None:
        super().__init__()
        self.initial = config
        self.changes: list[KnobPanel.Changed] = []

    def compose(self) -> ComposeResult:
        yield KnobPanel(self.initial)

    def on_knob_panel_changed(self, message: KnobPanel.Changed) -> None:
        self.changes.append(message)


def run_with_panel(
    check: Callable[[KnobApp, KnobPanel, object], Awaitable[None]],
    config: SamplerConfig | None = None,
    size: tuple[int, int] = (60, 30),
) -> None:
    async def run() -> None:
        app = KnobApp(config)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await check(app, app.query_one(KnobPanel), pilot)

    asyncio.run(run())


def field(panel: KnobPanel, knob: str) -> KnobInput:
    return panel.query_one(f"#knob-{knob}", KnobInput)


async def type_into(pilot, panel: KnobPanel, knob: str, text: str) -> None:
    """Focus a field, clear it and type `text` key by key, like a user."""
    target = field(panel, knob)
    target.focus()
    await pilot.pause()
    target.value = ""
    await pilot.pause()
    await pilot.press(*text)
    await pilot.pause()


def test_typing_a_valid_temperature_posts_changed_with_that_value_on_enter():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        await type_into(pilot, panel, "temperature", "2.5")
        assert app.changes == []  # nothing applies mid-typing (0.5 would otherwise pass through greedy 0)
        await pilot.press("enter")
        await pilot.pause()
        assert [change.config.temperature for change in app.changes] == [2.5]
        assert app.changes[-1].config == SamplerConfig(temperature=2.5)
        assert app.changes[-1].knob == "temperature"
        assert panel.config.temperature == 2.5
        assert panel.error_for("temperature") == ""

    run_with_panel(check)


def test_top_p_above_one_shows_an_error_and_posts_nothing():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        await type_into(pilot, panel, "top_p", "1.5")
        assert app.changes == []  # '1' equals the top-p in force, '1.5' is refused
        assert panel.config == SamplerConfig()
        message = panel.error_for("top_p")
        assert "top_p=1.5" in message and "(0, 1]" in message
        error = panel.query_one("#error-top_p", Static)
        assert error.display and error.region.height >= 1  # visible under the field
        assert field(panel, "top_p").has_class("-invalid")
        await pilot.press("enter")  # an invalid value cannot be committed
        await pilot.pause()
        assert app.changes == []
        await pilot.press("backspace", "backspace", "backspace", "0", ".", "8")
        await pilot.pause()
        assert panel.error_for("top_p") == ""
        field(panel, "min_p").focus()  # leaving the field commits it
        await pilot.pause()
        assert [change.config.top_p for change in app.changes] == [0.8]

    run_with_panel(check)


def test_text_or_negative_numbers_are_refused_and_the_last_valid_config_stays():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        await type_into(pilot, panel, "top_k", "abc")
        assert "not a whole number" in panel.error_for("top_k")
        await type_into(pilot, panel, "temperature", "-1")
        assert "temperature" in panel.error_for("temperature")
        assert app.changes == [] and panel.config == SamplerConfig(temperature=1.0)

    run_with_panel(check)


def test_selecting_a_preset_posts_its_config_and_fills_the_fields():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        panel.query_one("#knob-preset", Select).value = "balanced"
        await pilot.pause()
        assert [change.config for change in app.changes] == [PRESETS["balanced"]]
        assert app.changes[0].knob == "preset"
        assert field(panel, "temperature").value == "0.7" and field(panel, "top_p").value == "0.9"
        panel.query_one("#knob-preset", Select).value = "greedy"
        await pilot.pause()
        assert app.changes[-1].config == PRESETS["greedy"]
        assert panel.query_one("#row-top_k").has_class("-off")
        assert str(panel.query_one("#hint-top_p", Label).content) == "skipped"

    run_with_panel(check)


def test_set_config_updates_fields_without_posting_and_clears_errors():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        await type_into(pilot, panel, "min_p", "2")
        assert panel.error_for("min_p")
        new_config = SamplerConfig(temperature=0.3, top_k=40, min_p=0.05, seed=9, order="llama.cpp")
        panel.set_config(new_config)
        await pilot.pause()
        assert app.changes == [] and panel.config == new_config
        assert [field(panel, name).value for name in ("temperature", "top_k", "min_p", "seed")] == [
            "0.3",
            "40",
            "0.05",
            "9",
        ]
        assert panel.error_for("min_p") == ""
        assert panel.query_one("#knob-order", Select).value == "llama.cpp"
        assert panel.query_one("#knob-preset", Select).value == Select.NULL  # no preset matches

    run_with_panel(check)


def test_up_and_down_nudge_the_focused_field():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        field(panel, "temperature").focus()
        await pilot.press("up")
        await pilot.pause()
        await pilot.press("shift+up")
        await pilot.pause()
        await pilot.press("down")
        await pilot.pause()
        assert [change.config.temperature for change in app.changes] == [1.1, 1.6, 1.5]
        field(panel, "top_p").focus()
        await pilot.press("up")  # already 1 (its maximum): nothing changes
        await pilot.press("down")
        await pilot.pause()
        assert app.changes[-1].config.top_p == 0.95 and len(app.changes) == 4

    run_with_panel(check)


def test_order_select_posts_the_new_order():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        panel.query_one("#knob-order", Select).value = "llama.cpp"
        await pilot.pause()
        assert [change.config for change in app.changes] == [
            SamplerConfig(temperature=0.7, top_p=0.9, order="llama.cpp")
        ]
        assert panel.query_one("#knob-preset", Select).value == "balanced"  # seed and order do not break a preset

    run_with_panel(check, config=PRESETS["balanced"])


def test_panel_fits_a_small_terminal_and_has_help():
    async def check(app: KnobApp, panel: KnobPanel, pilot) -> None:
        assert field(panel, "presence_penalty").region.height == 1
        assert panel.query_one("#knob-preset", Select).region.y < 24

    run_with_panel(check, size=(80, 24))
    assert "greedy" in KnobPanel.HELP and "top-p" in KnobPanel.HELP
