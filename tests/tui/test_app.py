"""The playground driven like a user would: keys in, state and screen out (Textual pilot, tiny models)."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.widgets.sampler.pane import SamplerTable


def run(coroutine) -> None:
    asyncio.run(coroutine)


async def until(pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let the app work until `condition` holds (workers run on threads, so poll)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


async def set_knob(pilot, app: LLMScopeApp, knob: str, text: str) -> None:
    """Type a knob value like a user: leave any field, open the logits pane, focus the field, type, Enter."""
    await pilot.press("escape", "2")
    field = app.query_one(f"#knob-{knob}")
    field.focus()
    await pilot.pause()
    field.value = ""
    await pilot.press(*text, "enter")
    await pilot.pause()


def make_app(directory, **options) -> LLMScopeApp:
    return LLMScopeApp(hf_engine_factory(str(directory)), model_label=directory.name, deterministic=True, **options)


def test_prompt_runs_on_load_and_keys_step_and_rewind(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            await pilot.press("n")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("b")
            await until(pilot, lambda: app.view.step_count == 2)
            assert app.controller.engine.forward_calls == 3  # prefill + two steps; rewinding runs nothing
            await pilot.press("r")
            await until(pilot, lambda: not app.run_state.running and app.view.step_count > 2)
            assert app.view.step_count == 2 + 16 or app.view.stop_reason

    run(scenario())


def test_knob_change_resamples_without_a_forward_pass(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            calls = app.controller.engine.forward_calls
            before = app.view.sample
            await set_knob(pilot, app, "temperature", "0.3")
            await until(pilot, lambda: app.view.sample is not before)
            await set_knob(pilot, app, "top_k", "5")
            await until(pilot, lambda: app.view.config.top_k == 5)
            assert app.view.config.temperature == 0.3 and app.view.sample.stage("top_k").kept <= 5 + 2
            assert app.controller.engine.forward_calls == calls
            assert "no forward pass" in str(app.query_one("#message").render())

    run(scenario())


def test_keys_answer_while_the_model_is_loading(tiny_model_dirs):
    release = threading.Event()
    real_factory = hf_engine_factory(str(tiny_model_dirs["llama-gqa"]))

    def slow_factory(progress):
        progress("pretending to be slow…", None)
        release.wait(30)
        return real_factory(progress)

    async def scenario():
        app = LLMScopeApp(slow_factory, model_label="slow", deterministic=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.05)
            await pilot.press("3")
            assert app.query_one("#panes").active == "attention"
            await pilot.press("space")  # stepping before the model is ready warns instead of failing
            await pilot.press("question_mark")
            await pilot.pause(0.05)
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            assert app.controller is None and "slow" in str(app.query_one("#status").render())
            release.set()
            await until(pilot, lambda: app.view is not None)

    run(scenario())


def test_a_model_that_fails_to_load_shows_a_message():
    def failing(progress):
        raise OSError("weights file is corrupt\nlong traceback text")

    async def scenario():
        app = LLMScopeApp(failing, model_label="broken", deterministic=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.load_error is not None)
            message = str(app.query_one("#message").render())
            assert "Could not load broken: weights file is corrupt" in message and "long traceback" not in message
            await pilot.press("space")  # still responsive, still no crash

    run(scenario())


def test_terminal_too_small_says_so(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(70, 20)) as pilot:
            await pilot.pause(0.05)
            notice = app.query_one("#too-small")
            assert notice.display and not app.query_one("#main").display
            assert "Terminal is 70×20; llmscope needs at least 80×24" in str(notice.render())
            await pilot.resize_terminal(160, 48)  # back to a usable size: the panes return at once
            await pilot.pause(0.05)
            assert not notice.display and app.query_one("#main").display
            for size in ((60, 20), (79, 30)):  # the notice names the size the terminal has now
                await pilot.resize_terminal(*size)
                await pilot.pause(0.05)
                assert f"Terminal is {size[0]}×{size[1]};" in str(notice.render())

    run(scenario())


def test_ctrl_c_pauses_a_run_and_keeps_the_tokens(tiny_model_dirs):
    real_factory = hf_engine_factory(str(tiny_model_dirs["llama-gqa"]))

    def slow_steps(progress):
        engine = real_factory(progress)
        original = engine.step

        def step(token_id):
            time.sleep(0.25)
            return original(token_id)

        engine.step = step
        return engine

    async def scenario():
        app = LLMScopeApp(slow_steps, model_label="slow-steps", deterministic=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("r")
            await until(pilot, lambda: app.view.step_count >= 3)
            await pilot.press("ctrl+c")
            await until(pilot, lambda: not app.run_state.running)
            kept = app.view.step_count
            assert 3 <= kept < 17 and app.is_running
            assert "nothing generated is lost" in str(app.query_one("#message").render()) or "Paused" in str(
                app.query_one("#message").render()
            )

    run(scenario())


def test_empty_prompt_and_overlong_prompt_are_explained(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"], prompt="")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.controller is not None)
            await pilot.pause(0.1)
            app.action_start()
            assert "prompt is empty" in str(app.query_one("#message").render())
            app.query_one("#prompt").value = "the quick brown fox " * 60
            app.action_start()
            await until(pilot, lambda: "context of 128" in str(app.query_one("#message").render()))

    run(scenario())


def test_first_frame_is_drawn_before_torch_is_imported(tiny_model_dirs, tmp_path):
    script = f"""
import asyncio, sys
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
class Probe(LLMScopeApp):
    def on_mount(self):  # runs before LLMScopeApp.on_mount starts the load worker
        self.torch_at_first_frame = "torch" in sys.modules
app = Probe(hf_engine_factory({str(tiny_model_dirs["llama-gqa"])!r}), model_label='tiny', deterministic=True)
async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.01)
asyncio.run(main())
print('TORCH_AT_FIRST_FRAME', app.torch_at_first_frame)
"""
    probe = tmp_path / "probe.py"  # a file, not -c: Textual reads an App subclass's source file
    probe.write_text(script, encoding="utf-8")
    result = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=300)
    assert "TORCH_AT_FIRST_FRAME False" in result.stdout, result.stdout + result.stderr


def test_moe_pane_routes_on_an_moe_model(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["mixtral"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            assert app.view.routing is not None
            await pilot.press("5")
            assert app.query_one("#panes").active == "moe"

    run(scenario())


@pytest.mark.smollm
def test_real_model_step_rewind_and_temperature_change(smollm2_dir):
    """Step three tokens, rewind one, change the temperature: the sampler table changes, no forward pass runs."""

    async def scenario():
        app = LLMScopeApp(hf_engine_factory("smollm2"), model_label="smollm2", deterministic=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None, timeout=120)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4, timeout=120)
            await pilot.press("b")
            await until(pilot, lambda: app.view.step_count == 3)
            calls = app.controller.engine.forward_calls
            table = app.query_one(SamplerTable)
            before = table.result
            await set_knob(pilot, app, "temperature", "2")
            await until(pilot, lambda: app.view.config.temperature == 2.0)
            await pilot.pause(0.1)
            assert app.controller.engine.forward_calls == calls
            assert table.result is not before and table.result.config.temperature == 2.0
            assert table.result.entropy_final > before.entropy_final
            np.testing.assert_array_equal(table.result.raw_logits, before.raw_logits)

    run(scenario())


def test_selecting_a_token_points_at_it_in_the_other_panes(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["mixtral"], prompt="Hello, how are you?")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None and app.query_one("#tokens-pane").tokens)
            await pilot.press("1")
            await pilot.press("right", "right", "right")  # the first press selects token 0
            await until(pilot, lambda: "Token 2" in str(app.query_one("#message").render()))
            assert app.query_one("#attention-pane").cursor[1] == 2
            assert app.query_one("#moe-pane").selected_position == 2
            assert "'␣how'" in str(app.query_one("#message").render())

    run(scenario())


def test_ctrl_s_saves_a_session_that_replays_in_the_tui(tiny_model_dirs, tmp_path):
    """Save from the playground with ctrl+s, then open the file on the replay engine: same tokens, no model."""
    from llmscope.session.files import load_session
    from llmscope.session.replay import replay_engine_factory

    target = tmp_path / "saved.llmscope"

    async def record() -> list[int]:
        app = make_app(tiny_model_dirs["mixtral"], prompt="Hello, how are you?")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4)
            await pilot.press("ctrl+s")
            await until(pilot, lambda: type(app.screen).__name__ == "SaveSessionScreen")
            field = app.screen.query_one("#session-path")
            field.value = str(target)
            await pilot.press("enter")
            await until(pilot, lambda: target.exists())
            return [token.id for token, _ in app.view.generated]

    recorded = asyncio.run(record())
    assert load_session(target).model.name == "mixtral"

    async def replay() -> None:
        app = LLMScopeApp(
            replay_engine_factory(target), model_label="replay", prompt="Hello, how are you?", deterministic=True
        )
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4)
            assert [token.id for token, _ in app.view.generated] == recorded
            assert "matches the recording" in str(app.query_one("#generation-title").render())
            await pilot.press("2")
            app.query_one("#knob-temperature").focus()
            app.query_one("#knob-temperature").value = "0"
            await pilot.press("enter")  # greedy re-sample of the last step: may part from the recording, never crashes
            await until(pilot, lambda: app.view.config.temperature == 0)
            title = str(app.query_one("#generation-title").render())
            same = app.view.generated[-1][0].id == recorded[-1]
            assert ("matches the recording" in title) if same else ("diverges from the recording at step 3" in title)

    asyncio.run(replay())


def test_dense_model_offers_tiny_moe_in_the_moe_pane(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"])
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("5")
            assert app.query_one("#moe-pane").mode == "dense"
            await pilot.press("L")
            await until(pilot, lambda: app.view is not None and app.view.info.name == "tiny-moe")
            assert app.view.routing is not None and app.view.info.num_experts == 8

    run(scenario())


def test_chat_mode_on_a_model_without_a_template_falls_back_to_plain(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["llama-gqa"], prompt="What is a list?", chat=True)
        app.engine_factory = _without_chat_template(app.engine_factory)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            assert not app.query_one("#chat").value and not app.view.chat
            await pilot.pause(0.3)
            assert "has no chat template" in str(app.query_one("#message").render()) or app.view.step_count == 1
            assert app.query_one("#tokens-pane").tokens  # the inspector shows the plain prompt

    run(scenario())


def _without_chat_template(factory):
    def build(progress):
        engine = factory(progress)
        engine.tokenizer.chat_template = None
        engine.info = dataclasses.replace(engine.info, has_chat_template=False)
        return engine

    return build


def test_run_before_any_prompt_starts_it_first_and_never_spins_on_an_empty_one(tiny_model_dirs):
    async def scenario():
        app = make_app(tiny_model_dirs["gpt2"], prompt="")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.controller is not None)
            await pilot.press("r")
            await pilot.pause(0.2)
            assert not app.run_state.running and "prompt is empty" in str(app.query_one("#message").render())
            app.query_one("#prompt").value = "Hello world"
            await pilot.press("r")
            await until(pilot, lambda: app.view is not None and app.view.step_count > 1 and not app.run_state.running)
            assert app.view.step_count == 1 + 16 or app.view.stop_reason

    run(scenario())
