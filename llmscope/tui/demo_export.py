"""Run a demo headless and write one SVG screenshot per step (for slides and for tests)."""

from __future__ import annotations

import asyncio
import re
import string
import time
from collections.abc import Callable
from pathlib import Path

from llmscope.atomic_write import atomic_write_text
from llmscope.demo.script import DemoScript
from llmscope.engine_api import EngineFactory
from llmscope.tui.app import LLMScopeApp

STEP_TIMEOUT_S = 600.0
SETTLE_INTERVAL_S = 0.2
SETTLE_FRAMES = 3


async def _settled_screenshot(app: LLMScopeApp, pilot: object, title: str) -> str:
    """The screen once it has stopped changing: no worker running and the same frame three times in a row.

    A step's data lands through several asynchronous hops (worker → message → pane render → resize →
    re-render, and the tokenizer's debounced inspection), so a fixed pause catches a half-drawn screen
    on a busy machine.
    """
    deadline = time.monotonic() + STEP_TIMEOUT_S
    frames: list[str] = []
    while time.monotonic() < deadline:
        await pilot.pause(SETTLE_INTERVAL_S)  # type: ignore[attr-defined]
        if app.demo_busy or any(worker.is_running for worker in app.workers):
            frames.clear()
            continue
        frames.append(app.export_screenshot(title=title))
        if len(frames) >= SETTLE_FRAMES and len(set(frames[-SETTLE_FRAMES:])) == 1:
            return frames[-1]
    raise TimeoutError(f"the screen did not settle for the screenshot “{title}”")


class DemoExportError(RuntimeError):
    """A step failed (or the model did not load) during --export-svg; the message names the script's FILE:LINE."""


async def _finish_step(app: LLMScopeApp, script: DemoScript, number: int, pilot: object) -> None:
    """Wait for step `number` to be on screen; a failed step raises at once with its file and line."""
    player = app.demo_player
    assert player is not None, "the app was built with the script"
    where = f"{script.path}:{script.steps[number].line}"
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while app.demo_busy or player.index < number:
        if app.load_error:
            raise DemoExportError(f"{script.path}: the model failed to load: {app.load_error}")
        if app.demo_error and not app.demo_busy:
            raise DemoExportError(f"{where}: {app.demo_error}")
        if time.monotonic() > deadline:
            raise DemoExportError(f"{where}: demo step {number + 1} did not finish in {STEP_TIMEOUT_S:.0f} s")
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def _slug(text: str) -> str:
    """A file-name part from a caption template: its own words, without the {placeholders} (filled per run)."""
    words = "".join(literal for literal, _, _, _ in string.Formatter().parse(text))
    return re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:40].strip("-") or "step"


async def _export(
    app: LLMScopeApp, script: DemoScript, directory: Path, size: tuple[int, int], on_step: Callable[[int, Path], None]
) -> list[Path]:
    written: list[Path] = []
    async with app.run_test(size=size) as pilot:
        for number in range(len(script.steps)):
            if number > 0:
                app.action_demo_next()
            await _finish_step(app, script, number, pilot)
            step = script.steps[number]
            path = directory / f"{number + 1:02d}-{_slug(step.caption or step.pane or 'step')}.svg"
            title = f"{script.title} · {number + 1}/{len(script.steps)}"
            atomic_write_text(path, await _settled_screenshot(app, pilot, title))
            written.append(path)
            on_step(number, path)
        app.save_now()  # with record_path set, the played session is written next to the slides
    return written


def export_demo_svgs(
    script: DemoScript,
    factory: EngineFactory,
    directory: Path,
    *,
    present: bool,
    size: tuple[int, int] = (160, 48),
    on_step: Callable[[int, Path], None] = lambda n, p: None,
    app_hook: Callable[[LLMScopeApp], None] = lambda app: None,
    record_path: Path | None = None,
) -> list[Path]:
    """Play every step of `script` without a terminal and save `NN-caption.svg` files into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    app = LLMScopeApp(
        factory,
        model_label=script.model,
        prompt="",
        demo=script,
        present=present,
        deterministic=True,
        record_path=record_path,
    )
    app_hook(app)
    return asyncio.run(_export(app, script, directory, size, on_step))
