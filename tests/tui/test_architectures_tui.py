"""The playground on the families with unusual layers: run past the window, rewind, visit every pane, no crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from architecture_configs import build_models

from llmscope.panes import LensContent
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory

FAMILIES = ("gemma2", "gpt_oss", "mistral", "mamba", "falcon_h1", "qwen3_next", "jamba", "deepseek_v3")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("tui-architectures"), FAMILIES)


async def until(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


@pytest.mark.parametrize("family", FAMILIES)
def test_run_rewind_and_every_pane(dirs: dict[str, Path], family: str) -> None:
    async def scenario() -> None:
        factory = hf_engine_factory(str(dirs[family]), logit_lens=True)  # the Layers pane draws every family too
        app = LLMScopeApp(factory, model_label=family, deterministic=True)
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("r")  # 16 tokens: four times the window of 4
            await until(pilot, lambda: not app.run_state.running and app.view.step_count > 8)
            steps = app.view.step_count
            await pilot.press("b")
            await until(pilot, lambda: app.view.step_count == steps - 1)
            for key in "345621":
                await pilot.press(key)
                await pilot.pause()
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == steps)
            assert app.is_running and not app.query_one("#message").has_class("-error")
            lens = app.view.panes.lens
            assert isinstance(lens, LensContent) and len(lens.lenses) == steps, lens  # every step, every family

    asyncio.run(scenario())


def test_an_unexpected_error_during_a_run_pauses_it_and_keeps_the_app(dirs: dict[str, Path]) -> None:
    """`r` on an engine whose step raises something other than EngineError: a message, the app stays open."""

    async def scenario() -> None:
        app = LLMScopeApp(hf_engine_factory(str(dirs["gemma2"])), model_label="gemma2", deterministic=True)
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)

            def broken() -> None:
                raise RuntimeError("stack expects each tensor to be equal size")

            app.controller.step = broken  # type: ignore[method-assign]
            await pilot.press("r")
            await until(pilot, lambda: not app.run_state.running and app.query_one("#message").has_class("-error"))
            assert app.is_running
            assert "RuntimeError: stack expects" in str(app.query_one("#message").render())

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("family", "layer_kind_word", "expects_weights"),
    [("gemma2", "sliding window", True), ("jamba", "layer: no attention weights", True), ("mamba", "", False)],
)
def test_the_attention_pane_says_what_each_layer_can_show(
    dirs: dict[str, Path], family: str, layer_kind_word: str, expects_weights: bool
) -> None:
    """Sliding layers name their window, SSM layers say they have no weights, a pure SSM model says why."""

    async def scenario() -> None:
        app = LLMScopeApp(hf_engine_factory(str(dirs[family])), model_label=family, deterministic=True)
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("3")
            await pilot.pause()
            pane = app.query_one("#attention-pane")
            if not expects_weights:
                assert pane.data is None and "has no softmax attention" in (pane.unavailable_reason or "")
                return
            info = app.view.info
            layers = [layer for layer in range(info.num_layers) if layer_kind_word in pane.layer_note(layer)]
            assert layers, [pane.layer_note(layer) for layer in range(info.num_layers)]
            pane.layer_index = layers[0]
            await pilot.pause()
            assert layer_kind_word in pane.status_line()

    asyncio.run(scenario())
