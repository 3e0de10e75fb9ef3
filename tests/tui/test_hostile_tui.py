"""A session whose texts carry markup and terminal escapes replays in the playground without a crash, and no
escape reaches the screen raw: token texts, pieces, special tokens, the prompt, the model name, the title."""

from __future__ import annotations

import asyncio
import json
import time
import zipfile
from pathlib import Path

from session_helpers import record_greedy

from llmscope.format import printable_text
from llmscope.registry import builtin_model_dir
from llmscope.session.files import load_session, save_session
from llmscope.session.replay import replay_engine_factory
from llmscope.tui.app import LLMScopeApp

EVIL = "[/x]\x1b]0;pwned\x07\x1b[2J[reverse]"


def evil_session(tmp_path: Path) -> Path:
    directory = builtin_model_dir("tiny-dense")
    assert directory is not None
    good = save_session(record_greedy(directory, steps=3), tmp_path / "good.llmscope")
    target = tmp_path / "evil.llmscope"
    with zipfile.ZipFile(good) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "manifest.json":
                document = json.loads(data)
                for token in document["tokens"]:
                    token.update(text=EVIL, piece=EVIL, raw_bytes=EVIL.encode().hex(), special=token["id"] % 2 == 0)
                document.update(title="[bold]T[/x]", description="[/x] \x1b[31mred")
                document["model"]["name"] = "[/m]\x1b[2J"
                for event in document["events"]:
                    if event["kind"] == "prompt":
                        event.update(text="[/evil]\x1b[2J" + event["text"], shown_text="[/evil]", shown_tokens=[])
                data = json.dumps(document).encode()
            out.writestr(info.filename, data)
    return target


def test_markup_and_escapes_in_a_session_are_drawn_as_text(tmp_path):
    path = evil_session(tmp_path)
    first = load_session(path).prompts[0]

    async def scenario() -> list[str]:
        app = LLMScopeApp(
            replay_engine_factory(path), model_label="replay", prompt=printable_text(first.text), deterministic=True
        )
        shots = []
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = time.monotonic() + 60
            while app.view is None:
                assert time.monotonic() < deadline, "the replay did not load"
                await pilot.pause(0.05)
            await pilot.press("space", "space")
            await pilot.pause(0.5)
            for key in ("1", "2", "3", "4", "5", "1"):
                await pilot.press(key)
                await pilot.pause(0.3)
                shots.append(app.export_screenshot())
            assert app.return_code is None  # still running: nothing crashed
        return shots

    shots = asyncio.run(scenario())
    assert all("\x1b" not in shot and "\x07" not in shot for shot in shots)
    assert any("␛]0;pwned␇" in shot for shot in shots)  # the escape is shown, as control pictures
