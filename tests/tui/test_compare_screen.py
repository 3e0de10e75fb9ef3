"""The compare screen driven like a user: `v` from the playground, keys, presets, failures, and SVG snapshots."""

from __future__ import annotations

import asyncio
import os

import pytest
from compare_helpers import scripted_factory_for
from snapshot import assert_svg_snapshot

from llmscope.compare.presets import LaneSpec
from llmscope.sampler import SamplerConfig
from llmscope.tui.compare_launch import compare_app
from llmscope.tui.compare_screen import CompareScreen
from llmscope.tui.help_screen import HelpScreen
from llmscope.widgets.compare.pane import ExperimentPicker
from llmscope.widgets.generation.pane import GeneratedText
from tui.test_app import make_app, until

PROMPT = "Hello, how are you?"


def static_text(screen, selector: str) -> str:
    """What a Static shows, as plain text (tables and groups rendered through a console)."""
    from rich.console import Console

    console = Console(width=160, record=True, file=open(os.devnull, "w"))
    console.print(screen.query_one(selector).content)
    return console.export_text()


async def compare_screen_ready(pilot, app, records: int) -> CompareScreen:
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, CompareScreen)
            and app.screen.view is not None
            and len(app.screen.view.records) == records
        ),
    )
    return app.screen


def temperature_specs(model: str) -> tuple[LaneSpec, LaneSpec]:
    return (
        LaneSpec(model, PROMPT, config=SamplerConfig(temperature=0.2)),
        LaneSpec(model, PROMPT, config=SamplerConfig(temperature=1.5)),
    )


def test_v_opens_compare_steps_rewinds_and_escape_returns(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"], prompt=PROMPT)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            main_engine = app.controller.engine
            await pilot.press("v")
            screen = await compare_screen_ready(pilot, app, 2)  # starts where the main view is
            lane_a, lane_b = screen.view.lanes
            assert lane_a.prompt == lane_b.prompt == PROMPT and "T=1.2" in lane_b.summary and "T=1 " in lane_a.summary
            assert all(lane.engine is not main_engine for lane in screen.controller.comparison.lanes)
            await pilot.press("space")
            await compare_screen_ready(pilot, app, 3)
            await pilot.press("r")
            await compare_screen_ready(pilot, app, 11)
            first = screen.view.first_divergence
            assert first is not None
            assert all(text.selected == first for text in screen.query(GeneratedText))
            assert "◆ first" in static_text(screen, "#compare-history")
            await pilot.press("b")
            await compare_screen_ready(pilot, app, 10)
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
            await pilot.press("space")  # the main view kept its own engine and state
            await until(pilot, lambda: app.view.step_count == 3)
            assert app.controller.engine is main_engine

    asyncio.run(scenario())


def test_layer_head_keys_help_and_preset_picker(tiny_model_dirs):
    model = str(tiny_model_dirs["llama-gqa"])

    async def scenario():
        app = compare_app(temperature_specs(model), deterministic=True, steps=3)
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await compare_screen_ready(pilot, app, 3)
            await pilot.press("left")
            assert screen.selected == 1 and static_text(screen, "#compare-summary").startswith("step 1 ")
            await pilot.press("end")
            assert screen.selected is None and static_text(screen, "#compare-summary").startswith("step 2 ")
            await pilot.press("v")  # already comparing: nothing new is pushed
            assert app.screen is screen
            await pilot.press("right_square_bracket", "full_stop")
            assert (screen.attention_layer, screen.attention_head) == (1, 1)
            assert "layer 1 head 1" in static_text(screen, "#compare-attention")
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is screen)
            await pilot.press("p")
            await until(pilot, lambda: isinstance(app.screen, ExperimentPicker))
            await pilot.press("down", "down", "down", "down", "enter")  # hotter, temperature, system, chat, typo
            await until(
                pilot,
                lambda: (
                    app.screen is screen
                    and screen.view is not None
                    and screen.view.lanes[1].prompt == "Hlelo, how are you?"
                    and len(screen.view.records) == 3
                ),
            )
            assert "typo" in static_text(screen, "#compare-message")
            assert "difference" in static_text(screen, "#compare-tokens")

    asyncio.run(scenario())


def test_a_lane_at_eos_shows_stopped_and_the_other_continues():
    specs = (
        LaneSpec("eos-early", "x", config=SamplerConfig(temperature=0)),
        LaneSpec("endless", "x", config=SamplerConfig(temperature=0)),
    )

    async def scenario():
        app = compare_app(
            specs, deterministic=True, factory_for=scripted_factory_for({"eos-early": 2, "endless": None})
        )
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await compare_screen_ready(pilot, app, 1)
            for count in range(2, 6):
                await pilot.press("space")
                await compare_screen_ready(pilot, app, count)
            lane_a, lane_b = screen.view.lanes
            assert lane_a.step_count == 3 and lane_b.step_count == 5
            assert "stopped: end-of-sequence" in static_text(screen, "#lane-a-title")
            assert "stopped" not in static_text(screen, "#lane-b-title")
            assert "stopped: end-of-sequence" in static_text(screen, "#compare-summary")
            assert "the other lane continues" in static_text(screen, "#compare-message")
            assert "dense" in static_text(screen, "#compare-moe")

    asyncio.run(scenario())


def test_a_lane_model_that_fails_to_load_is_explained(tiny_model_dirs):
    specs = (LaneSpec(str(tiny_model_dirs["llama-gqa"]), PROMPT), LaneSpec("no-such-model", PROMPT))

    async def scenario():
        app = compare_app(specs, deterministic=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.load_error is not None)
            screen = app.screen
            message = static_text(screen, "#compare-message")
            assert "Lane B: could not load 'no-such-model'" in message and "Traceback" not in message
            assert "escape to go back" in static_text(screen, "#compare-unavailable")
            await pilot.press("space")  # warns, does not crash
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, CompareScreen))

    asyncio.run(scenario())


SNAPSHOTS = [("compare-temperature", "llama-gqa", "llama-gqa"), ("compare-moe", "mixtral", "qwen2-moe-norm")]


@pytest.mark.parametrize(("name", "kind_a", "kind_b"), SNAPSHOTS)
def test_compare_screen_snapshot(tiny_model_dirs, name, kind_a, kind_b):
    specs = (
        LaneSpec(str(tiny_model_dirs[kind_a]), PROMPT, config=SamplerConfig(temperature=0.2)),
        LaneSpec(str(tiny_model_dirs[kind_b]), PROMPT, config=SamplerConfig(temperature=1.5)),
    )

    async def scenario() -> str:
        app = compare_app(specs, deterministic=True, steps=3)
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await compare_screen_ready(pilot, app, 3)
            await pilot.press("space")
            await compare_screen_ready(pilot, app, 4)
            screen.query_one("#compare-sides").scroll_end(animate=False)
            await pilot.pause(0.3)
            return app.export_screenshot(title=f"llmscope {name}")

    assert_svg_snapshot(asyncio.run(scenario()), name)
