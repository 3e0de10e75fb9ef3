"""The headline flows walked as a user walks them (issue 12): help from any focus, knobs, numbering, palette."""

from __future__ import annotations

import asyncio

import pytest

from llmscope.widgets.sampler.knobs import KnobPanel
from tui.test_app import make_app, until


def test_help_after_tab_explains_the_visible_pane(tiny_model_dirs):
    """Tab moves focus onto the tab strip (a Textual widget whose HELP is None): ? must still open the pane's help."""

    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("tab")
            await pilot.pause()
            await pilot.press("question_mark")
            await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
            markdown = app.screen.query_one("Markdown")
            assert "# Logits & sampler" in markdown.source  # the visible tab's pane, not the tab strip
            await pilot.press("escape")
            await until(pilot, lambda: type(app.screen).__name__ != "HelpScreen")

    asyncio.run(scenario())


async def settled(pilot, app) -> None:
    """Until no worker runs and the screen has processed its messages."""
    await until(pilot, lambda: not any(worker.is_running for worker in app.workers))
    await pilot.pause(0.2)
    await until(pilot, lambda: not any(worker.is_running for worker in app.workers))


def test_fast_nudges_leave_the_table_on_the_value_in_the_box(tiny_model_dirs):
    """↑ eight times quickly on temperature (then top-p ↓, min-p ↑): the view uses the value the box shows."""

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("2")
            for knob, key, expected in (("temperature", "up", 1.8), ("top_p", "down", 0.6), ("min_p", "up", 0.08)):
                field = app.query_one(f"#knob-{knob}")
                field.focus()
                await pilot.pause()
                for _ in range(8):  # keys arriving faster than the app handles them: every nudge before any Changed
                    field.action_nudge(1 if key == "up" else -1)
                await settled(pilot, app)
                assert field.value == f"{expected:g}"
                assert getattr(app.view.config, knob) == pytest.approx(expected), knob
                assert getattr(app.query_one(KnobPanel).config, knob) == pytest.approx(expected)
                summary = str(app.query_one("#knob-summary").render())
                assert summary == app.view.config.describe()
                assert app.view.config.describe() in str(app.query_one("#message").render())
                assert app.view.sample.config == app.view.config  # the table's stages use these knobs

    asyncio.run(scenario())


def test_knob_hotkeys_outside_the_form_and_undo(tiny_model_dirs):
    """> < } { ) ( nudge temperature, top-p and top-k from anywhere but a text field; u takes changes back."""

    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            calls = app.controller.engine.forward_calls
            await pilot.press("greater_than_sign", "greater_than_sign", "left_curly_bracket", "right_parenthesis")
            await settled(pilot, app)
            config = app.view.config
            assert (config.temperature, config.top_p, config.top_k) == (1.2, 0.95, 1)
            assert app.query_one("#knob-temperature").value == "1.2" and app.query_one("#knob-top_k").value == "1"
            assert app.controller.engine.forward_calls == calls  # re-sampled, not recomputed
            await pilot.press("u")
            await settled(pilot, app)
            assert app.view.config.top_k == 0 and app.view.config.top_p == 0.95
            await pilot.press("u", "u", "u")
            await settled(pilot, app)
            assert app.view.config == app.query_one(KnobPanel).config and app.view.config.temperature == 1.0
            await pilot.press("u")  # nothing left to undo: a notice, no change
            await settled(pilot, app)
            assert app.view.config.temperature == 1.0
            await pilot.press("e", "greater_than_sign")  # in the prompt field '>' is a character
            await settled(pilot, app)
            assert app.query_one("#prompt").value.endswith(">") and app.view.config.temperature == 1.0

    asyncio.run(scenario())
