"""Forcing a token, viewing an earlier step, and selections that link panes, driven with keys (pilot, tiny Mixtral)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
from textual.widgets import Static

from llmscope.session.files import load_session, save_session
from llmscope.session.replay import reenact
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.generation.pane import GeneratedText
from llmscope.widgets.kv.pane import KVCachePane
from llmscope.widgets.moe.pane import MoERoutingPane
from llmscope.widgets.sampler.pane import SamplerTable
from llmscope.widgets.tokens.pane import TokenInspector


async def until(pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)


def text_of(app: LLMScopeApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def screen_text(app: LLMScopeApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def make_app(tiny_model_dirs) -> LLMScopeApp:
    directory = tiny_model_dirs["mixtral"]
    return LLMScopeApp(hf_engine_factory(str(directory)), model_label="mixtral", deterministic=True)


async def steps(app: LLMScopeApp, pilot, count: int) -> None:
    await until(pilot, lambda: app.view is not None)
    while app.view.step_count < count:
        wanted = app.view.step_count + 1
        await pilot.press("space")
        await until(pilot, lambda: app.view.step_count == wanted)


def test_enter_on_a_candidate_forces_it_and_generation_continues_from_it(tiny_model_dirs, tmp_path):
    async def scenario() -> None:
        app = make_app(tiny_model_dirs)
        async with app.run_test(size=(160, 48)) as pilot:
            await steps(app, pilot, 3)
            calls = app.controller.engine.forward_calls
            sampled = app.view.sample.token_id
            await pilot.press("2", "down", "down")
            table = app.query_one(SamplerTable)
            wanted = table._plan().rows[2].token_id
            assert wanted != sampled  # the third candidate, not what the sampler drew
            await pilot.press("enter")
            await until(pilot, lambda: app.view.forced_token == wanted)
            assert app.controller.engine.forward_calls == calls  # forcing runs no forward pass
            assert app.view.generated[-1][0].id == wanted and app.view.step_count == 3
            assert "Forced" in text_of(app, "#message") and "no forward pass" in text_of(app, "#message")
            assert table._view.chosen.token_id == wanted and table._view.sampled.token_id == sampled
            await pilot.pause()
            assert "forced " in screen_text(app)  # the table's summary says the pick was the user's
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 4)
            fed = app.controller.generation.current.trace.input_ids
            assert list(fed) == [wanted]  # the next forward fed the forced token
            path = save_session(app.controller.recorder.session(), tmp_path / "forced.llmscope")
            replayed = list(reenact(load_session(path)))[-1][1]
            assert replayed.generated_ids == app.controller.generation.generated_ids

    asyncio.run(scenario())


def test_arrows_show_an_earlier_step_in_every_pane_and_end_or_a_step_returns(tiny_model_dirs):
    async def scenario() -> None:
        app = make_app(tiny_model_dirs)
        async with app.run_test(size=(160, 48)) as pilot:
            await steps(app, pilot, 6)
            generation = app.controller.generation
            app.query_one(GeneratedText).focus()
            await pilot.press("left", "left", "left")  # the latest (5) highlighted, then 4, then 3
            await until(pilot, lambda: app.inspected_view is not None and app.inspected_view.viewing == 3)
            assert "viewing step 3" in text_of(app, "#generation-title")
            table = app.query_one(SamplerTable)
            expected = generation.sample_result(3)
            assert table.result.token_id == expected.token_id == generation.steps[3].token_id
            np.testing.assert_array_equal(table.result.final_probs, expected.final_probs)
            await pilot.press("3")
            attention = app.query_one(AttentionPane)
            await until(pilot, lambda: attention.shown is not None and attention.shown.step_index == 3)
            np.testing.assert_array_equal(attention.shown.weights, generation.steps[3].trace.attention)
            await pilot.press("4")
            kv = app.query_one(KVCachePane)
            await until(pilot, lambda: kv.data is not None and len(kv.data.history) == 4)
            assert kv.tokens == generation.steps[3].trace.kv.tokens
            await pilot.press("5")
            moe = app.query_one(MoERoutingPane)
            prompt_length = len(generation.prompt_ids)
            await until(pilot, lambda: moe.routing is not None and moe.routing.positions == prompt_length + 3)
            app.query_one(GeneratedText).focus()
            await pilot.press("end")
            await until(pilot, lambda: app.inspected_view is None)
            await until(pilot, lambda: moe.routing.positions == prompt_length + 5)
            assert "viewing" not in text_of(app, "#generation-title")
            await pilot.press("home")  # step 0, the prefill
            await until(pilot, lambda: app.inspected_view is not None and app.inspected_view.viewing == 0)
            await pilot.press("space")  # a new step shows the latest again
            await until(pilot, lambda: app.view.step_count == 7 and app.inspected_view is None)
            assert moe.routing.positions == prompt_length + 6
            assert app.query_one(GeneratedText).selected is None

    asyncio.run(scenario())


def test_forcing_while_viewing_an_earlier_step_branches_from_it(tiny_model_dirs):
    async def scenario() -> None:
        app = make_app(tiny_model_dirs)
        async with app.run_test(size=(160, 48)) as pilot:
            await steps(app, pilot, 5)
            kept = app.controller.generation.generated_ids[:2]
            app.query_one(GeneratedText).focus()
            await pilot.press("home", "right", "right")
            await until(pilot, lambda: app.inspected_view is not None and app.inspected_view.viewing == 2)
            await pilot.press("2", "down", "down", "down")
            wanted = app.query_one(SamplerTable)._plan().rows[3].token_id
            await pilot.press("enter")
            await until(pilot, lambda: app.view.forced_token == wanted)
            assert app.controller.generation.generated_ids == [*kept, wanted]
            assert "Rewound 2 later tokens and forced" in text_of(app, "#message")
            kinds = [event.kind for event in app.controller.recorder.events]
            assert kinds[-2:] == ["rewind", "force"]

    asyncio.run(scenario())


def test_head_and_moe_selections_are_named_and_followed(tiny_model_dirs):
    async def scenario() -> None:
        app = make_app(tiny_model_dirs)
        async with app.run_test(size=(160, 48)) as pilot:
            await steps(app, pilot, 3)
            await pilot.press("3", "full_stop", "full_stop", "full_stop")  # head 3 of 4, two KV heads
            await until(pilot, lambda: "head 3" in text_of(app, "#message"))
            assert "layer 0, head 3 (KV group 1, shared with heads 2–3)" in text_of(app, "#message")
            await pilot.press("5", "home")
            await until(pilot, lambda: "position 0" in text_of(app, "#message"))
            assert app.query_one(AttentionPane).cursor[1] == 0
            assert app.query_one(TokenInspector).selected == 0
            await pilot.press("down", "down")
            await until(pilot, lambda: app.query_one(AttentionPane).cursor[1] == 2)
            assert app.query_one(TokenInspector).selected == 2 and "position 2" in text_of(app, "#message")

    asyncio.run(scenario())
