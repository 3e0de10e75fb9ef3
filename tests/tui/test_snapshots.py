"""Each pane at a fixed size on a tiny model, compared with its stored SVG (deterministic: no clock, seeded)."""

from __future__ import annotations

import asyncio

import pytest
from snapshot import assert_svg_snapshot

from tui.test_app import make_app, until

PANE_KEYS = {"tokens": "1", "logits": "2", "attention": "3", "kv": "4", "moe": "5", "moe-dense": "5"}
PANES = [
    ("tokens", "llama-gqa"),
    ("logits", "llama-gqa"),
    ("attention", "llama-gqa"),
    ("kv", "llama-gqa"),
    ("moe", "mixtral"),
    ("moe-dense", "llama-gqa"),
]


@pytest.mark.parametrize(("pane", "kind"), PANES)
def test_pane_snapshot(tiny_model_dirs, pane, kind):
    async def scenario() -> str:
        app = make_app(tiny_model_dirs[kind], prompt="Hello, how are you?")
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press(PANE_KEYS[pane])
            await pilot.pause(0.3)
            return app.export_screenshot(title=f"llmscope {pane}")

    assert_svg_snapshot(asyncio.run(scenario()), f"pane-{pane}")


def test_narrow_layout_snapshot(tiny_model_dirs):
    async def scenario() -> str:
        app = make_app(tiny_model_dirs["llama-gqa"], prompt="Hello, how are you?")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 2)
            await pilot.pause(0.3)
            return app.export_screenshot(title="llmscope 80x24")

    assert_svg_snapshot(asyncio.run(scenario()), "layout-80x24")
