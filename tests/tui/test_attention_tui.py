"""The attention pane in the real app: gpt-oss's learned sink against the model's own eager attention, hybrid
layers written as 'no attention', and a 1,600-token prompt zoomed, binned and paged with the pane's keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from architecture_configs import build_models

from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory
from llmscope.widgets.attention.pane import AttentionPane
from llmscope.widgets.attention.zoom import AttentionZoom

LONG_PROMPT_TOKENS = 1600


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("attention-tui"), ("gpt_oss", "qwen3_next"))


@pytest.fixture(scope="module")
def long_context_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose context holds a 1,600-token prompt (the shared tiny models stop at 128 positions)."""
    import torch
    from conftest import _train_tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    directory = tmp_path_factory.mktemp("long-context") / "tiny-long"
    vocab_size = _train_tokenizer(directory)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        vocab_size=vocab_size,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(77)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory


async def until(pilot, condition, timeout: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


def shown_lines(pane: AttentionPane) -> list[str]:
    """The zoom as the canvas drew it, line by line."""
    view = pane._zoom_view
    assert isinstance(view, AttentionZoom)
    width, height = pane.query_one("#attention-canvas").size
    return ["".join(segment.text for segment in line) for line in view.lines(width, height)]


def test_gpt_oss_sink_drawn_equals_one_minus_the_eager_rows_key_weights(dirs: dict[str, Path]) -> None:
    """The sink the pane draws (column and share) is 1 − Σ keys of the row transformers' eager attention returns."""
    import torch
    from transformers import AutoModelForCausalLM

    async def scenario() -> tuple[list[int], np.ndarray, str, tuple[int, int]]:
        app = LLMScopeApp(hf_engine_factory(str(dirs["gpt_oss"])), model_label="gpt_oss", deterministic=True)
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4)
            await pilot.press("3")
            await pilot.pause()
            pane = app.query_one(AttentionPane)
            pane.focus()
            pane.layer_index, pane.head = 1, 2
            await pilot.press("enter")
            await pilot.pause(0.1)
            view = app.view
            trace = view.current
            ids = [token.id for token in view.prompt_tokens] + [token.id for token, _ in view.generated]
            ids = ids[: trace.position + 1]  # the keys of the step shown
            assert pane.shown is not None and pane.shown.learned_sink is not None
            top = shown_lines(pane)[0]
            return ids, pane.shown.learned_sink[:, :, -1].copy(), top, (pane.layer_index, pane.head)

    ids, drawn, top_line, (layer, head) = asyncio.run(scenario())
    model = AutoModelForCausalLM.from_pretrained(dirs["gpt_oss"], attn_implementation="eager")
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions
    reference = np.stack([1.0 - a[0, :, -1, :].double().sum(-1).numpy() for a in attentions])  # [layers, heads]
    assert reference.min() > 0.01  # a real sink share, not a rounding remainder
    np.testing.assert_allclose(drawn, reference, atol=2e-6)
    assert f"sink {reference[layer, head]:.4f}" in top_line


def test_linear_attention_layers_are_written_as_no_attention_in_the_grid(dirs: dict[str, Path]) -> None:
    """Qwen3-Next's linear-attention layers (0 and 2) say 'no attention (linear)'; its full layers draw weights."""

    async def scenario() -> None:
        app = LLMScopeApp(hf_engine_factory(str(dirs["qwen3_next"])), model_label="qwen3_next", deterministic=True)
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            await pilot.press("3")
            await pilot.pause(0.1)
            pane = app.query_one(AttentionPane)
            assert pane.shown is not None and dict(pane.shown.weightless) == {0: "linear", 2: "linear"}
            canvas = pane.query_one("#attention-canvas")
            lines = [canvas.render_line(y).text for y in range(canvas.size.height)]
            rows = {line.split()[0]: line for line in lines if line.strip().startswith("L")}
            for layer in ("L0", "L2"):
                assert "no attention (linear)" in rows[layer] and "▀" not in rows[layer]
            for layer in ("L1", "L3"):
                assert "no attention" not in rows[layer] and any(char in rows[layer] for char in "▀▄█")
            pane.layer_index = 2
            await pilot.pause()
            assert "linear layer: no attention weights" in pane.status_line()

    asyncio.run(scenario())


def test_a_1600_token_prompt_zooms_bins_and_pages_with_the_pane_keys(long_context_dir: Path) -> None:
    """The real app on a long prompt: '-' bins keys (sums), PgUp/PgDn page the window, '+' narrows back to one key."""

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(long_context_dir)
    count = 100
    while len(tokenizer(" ".join(f"w{i % 97}" for i in range(count)))["input_ids"]) < LONG_PROMPT_TOKENS:
        count += 50
    words = " ".join(f"w{i % 97}" for i in range(count))  # 1,600 to ~1,750 tokens: fits the 2,048 context

    async def scenario() -> None:
        app = LLMScopeApp(
            hf_engine_factory(str(long_context_dir)), model_label="tiny-long", deterministic=True, prompt=words
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.view is not None and app.view.step_count == 1)
            assert len(app.view.prompt_tokens) >= LONG_PROMPT_TOKENS
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            await pilot.press("3")
            pane = app.query_one(AttentionPane)
            pane.focus()
            await pilot.press("enter")
            await pilot.pause(0.1)
            data = pane.shown
            assert data is not None and data.num_keys >= LONG_PROMPT_TOKENS and data.is_single_row
            row = data.weights[pane.layer_index, pane.head, 0].astype(np.float64)
            await pilot.press("minus", "minus", "minus", "minus")  # 16 keys per column
            await pilot.pause(0.1)
            view = pane._zoom_view
            lines = shown_lines(pane)
            first, last = view.visible_keys()
            assert view.last_geometry.keys_per_column == 16 and lines[0].startswith("1 col = 16 keys (sum)")
            shares = " ".join(lines[:2])  # the shares text takes two lines in a pane this narrow
            assert f"keys {first}–{last} {row[first : last + 1].sum():.2f}" in shares
            assert f"first 4 keys {row[:4].sum():.2f} · last 64 keys {row[-64:].sum():.2f}" in shares
            await pilot.press("home", "pagedown")
            await pilot.pause(0.1)
            span = pane._zoom_view.last_geometry.span
            assert pane._zoom_view.visible_keys()[0] == span and pane.cursor[1] == span
            cursor_sum = row[span : span + 16].sum()
            assert f"keys {span}–{span + 15} = {cursor_sum:.4f} (sum of 16 keys)" in pane.status_line()
            await pilot.press("pageup")
            await pilot.pause(0.1)
            assert pane._zoom_view.visible_keys()[0] == 0
            await pilot.press("plus", "plus", "plus", "plus")
            await pilot.pause(0.1)
            assert pane._zoom_view.last_geometry.keys_per_column == 1
            assert app.is_running

    asyncio.run(scenario())
