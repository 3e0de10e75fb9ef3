"""--record never replaces a recording: a model switch continues in a new file, a relaunch refuses an existing one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from llmscope.session.files import load_session
from llmscope.tui import recording
from llmscope.tui.app import LLMScopeApp
from llmscope.tui.engine_factory import hf_engine_factory


async def until(pilot, condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


def test_switching_model_while_recording_starts_a_new_file(tiny_model_dirs, tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "AUTOSAVE_DELAY_S", 0.2)
    target = tmp_path / "talk.llmscope"
    moved = tmp_path / "talk-tiny-moe.llmscope"

    async def scenario() -> list[str]:
        directory = tiny_model_dirs["llama-gqa"]
        app = LLMScopeApp(
            hf_engine_factory(str(directory)), model_label=directory.name, deterministic=True, record_path=target
        )
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space", "space")
            await until(pilot, lambda: app.view.step_count == 4)
            await until(pilot, lambda: target.exists() and len(load_session(target).steps) == 4)
            await pilot.press("5", "L")  # the dense model's MoE pane offers tiny-moe
            await until(pilot, lambda: app.view is not None and app.view.info.name == "tiny-moe")
            await until(pilot, lambda: moved.exists())
            notes = [str(note.message) for note in app._notifications]
            await app.action_quit()
        return notes

    notes = asyncio.run(scenario())
    kept = load_session(target)
    assert kept.model.name == "llama-gqa" and len(kept.steps) == 4
    assert load_session(moved).model.name == "tiny-moe"
    assert any(str(moved) in note and str(target) in note for note in notes), notes


def test_next_recording_path_never_reuses_a_file(tmp_path: Path):
    first = tmp_path / "talk.llmscope"
    assert recording.next_recording_path(first, "tiny moe/x") == tmp_path / "talk-tiny-moe-x.llmscope"
    (tmp_path / "talk-tiny-moe.llmscope").write_bytes(b"")
    assert recording.next_recording_path(first, "tiny-moe") == tmp_path / "talk-tiny-moe-2.llmscope"


def test_record_onto_an_existing_file_refuses_without_overwrite(tmp_path: Path):
    existing = tmp_path / "talk.llmscope"
    existing.write_bytes(b"the only copy of a talk")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for command in (["tui", "--model", "tiny-dense"], ["demo", "how-sampling-works"]):
        result = subprocess.run(
            [sys.executable, "-m", "llmscope", *command, "--record", str(existing)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2, result.stderr
        assert "--overwrite" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert existing.read_bytes() == b"the only copy of a talk"
