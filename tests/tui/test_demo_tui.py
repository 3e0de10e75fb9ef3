"""Demos in the playground as a presenter drives them (issue 12): what a caption names is on screen at 100×30 and
120×36, ctrl+g goes to a slide, shift+n shows presenter notes that never reach an exported slide."""

from __future__ import annotations

import asyncio

import pytest
from textual.geometry import Region

from llmscope.demo.captions import caption_values
from llmscope.demo.script import PANE_PARTS, find_demo
from llmscope.registry import builtin_model_dir
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.widgets.kv.pane import KVCachePane
from llmscope.widgets.moe.pane import MoERoutingPane
from tui.test_app import until


def demo_app(name: str, **options) -> LLMScopeApp:
    script = find_demo(name)
    return LLMScopeApp(
        hf_engine_factory(script.model), model_label=script.model, prompt="", demo=script, deterministic=True, **options
    )


async def next_slide(app: LLMScopeApp, pilot, index: int) -> None:
    if index:
        await pilot.press("space")
    await until(pilot, lambda: app.demo_player.index == index and not app.demo_busy, timeout=120)
    await pilot.pause(0.3)  # show_part runs after the refresh that lays out the new content


def visible_rows(app: LLMScopeApp, selector: str) -> int:
    """How many rows of the widget are on screen (0 when scrolled out of view)."""
    widget = app.query_one(selector)
    geometry = app.screen.find_widget(widget)
    return geometry.region.intersection(geometry.clip).height


def test_the_pane_parts_a_demo_can_show_are_the_panes_own():
    assert set(PANE_PARTS["kv"]) == set(KVCachePane.PARTS)
    assert set(PANE_PARTS["moe"]) == set(MoERoutingPane.PARTS)


@pytest.mark.skipif(builtin_model_dir("tiny-moe") is None, reason="tiny-moe is not shipped in this build")
@pytest.mark.parametrize("size", [(100, 30), (120, 36)])
def test_each_moe_slide_shows_the_table_its_caption_names(size):
    script = find_demo("what-an-moe-router-does")

    async def scenario():
        app = demo_app("what-an-moe-router-does")
        async with app.run_test(size=size) as pilot:
            for index, step in enumerate(script.steps):
                await next_slide(app, pilot, index)
                assert app.query_one("#panes").active == "moe"
                if step.show is not None:
                    title = MoERoutingPane.PARTS[step.show]
                    table = {"load": "#moe-load", "loss": "#moe-loss", "router": "#moe-distribution"}[step.show]
                    assert visible_rows(app, title) == 1, (size, index, step.show)
                    assert visible_rows(app, table) >= min(3, app.query_one(table).outer_size.height), (size, index)

    asyncio.run(scenario())


@pytest.mark.smollm
@pytest.mark.parametrize("size", [(100, 30), (120, 36)])
def test_each_kv_slide_shows_what_its_caption_names(smollm2_dir, size):
    """The what-if slide scrolls the table into view; its MHA figure is on screen, not only in the caption."""
    script = find_demo("why-the-kv-cache-grows")

    async def scenario():
        app = demo_app("why-the-kv-cache-grows")
        async with app.run_test(size=size) as pilot:
            for index, step in enumerate(script.steps):
                await next_slide(app, pilot, index)
                assert app.query_one("#panes").active == "kv"
                if step.show is not None:
                    part = KVCachePane.PARTS[step.show]
                    height = app.query_one(part).outer_size.height
                    viewport = app.query_one("#kv-body").scrollable_content_region.height
                    assert visible_rows(app, part) >= min(height, viewport), (size, index, step.show)
            table = app.query_one("#kv-what-if")
            what_if = "\n".join(strip.text for strip in table.render_lines(Region(0, 0, *table.size)))
            mha = caption_values(app.view)["kv_mha_bytes"]
            assert mha in what_if and visible_rows(app, "#kv-what-if") >= 4

    asyncio.run(scenario())


@pytest.mark.smollm
def test_ctrl_g_goes_to_a_slide_and_shift_n_shows_the_notes(smollm2_dir):
    script = find_demo("attention-sinks-induction")

    async def scenario():
        app = demo_app("attention-sinks-induction", present=True)
        async with app.run_test(size=(120, 36)) as pilot:
            await next_slide(app, pilot, 0)
            await pilot.press("ctrl+g")
            await until(pilot, lambda: type(app.screen).__name__ == "SlideJumpScreen")
            await pilot.press("9", "enter")  # no slide 9: the prompt says so and stays
            assert "no slide 9" in str(app.screen.query_one("#slide-error").render())
            app.screen.query_one("#slide-number").value = ""
            await pilot.press("5", "enter")
            await until(pilot, lambda: app.demo_player.index == 4 and not app.demo_busy, timeout=120)
            caption = str(app.query_one("#caption").render())
            assert caption.startswith("5/5") and ": the token right after the earlier copy" in caption
            readout = app.query_one("#attention-pane").status_line()
            assert app.query_one("#attention-pane").mode == "zoom" and "L18 H6" in caption
            key = app.query_one("#attention-pane").cursor[1]
            assert f"key {key} " in caption and f"key {key}" in readout  # the readout names the caption's key
            screenshot = app.export_screenshot()
            await pilot.press("N")
            notes = str(app.query_one("#caption").render())
            assert script.steps[4].notes[:30] in notes and "right after" not in notes
            await pilot.press("N")
            assert ": the token right after the earlier copy" in str(app.query_one("#caption").render())
            assert script.steps[4].notes[:20].replace(" ", "&#160;") not in screenshot

    asyncio.run(scenario())
