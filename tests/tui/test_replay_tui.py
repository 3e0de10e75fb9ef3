"""Replay in the playground is exact (issue 12): every recorded action, its knobs, prompt and chat mode, in order.

The reference is `reenact`, the headless replay: for every state it reaches (after a recorded step, re-sample
or rewind) the TUI must show the same tokens and the same knobs, step after step, to the end of the recording.
Sessions come from every saving path: shipped files, `generate --save`, `tui --record`, ctrl+s,
`compare --save` and `demo --record`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmscope.cli.main import app as cli_app
from llmscope.sampler import SamplerConfig
from llmscope.session.files import load_session
from llmscope.session.recording import PromptEvent, RewindEvent, Session
from llmscope.session.replay import ReplayedStep, reenact, replay_engine_factory, shipped_sessions
from llmscope.tui.app import LLMScopeApp
from llmscope.widgets.sampler.knobs import KNOBS, KnobPanel, format_knob
from tui.test_app import make_app, until

runner = CliRunner()


@dataclass(frozen=True)
class State:
    """What the screen must show after one recorded action."""

    generated: tuple[int, ...]
    config: SamplerConfig
    prompt: str
    chat: bool


def recorded_states(session: Session) -> list[State]:
    """The headless replay's state after each recorded step, re-sample and rewind."""
    states: list[State] = []
    prompt: PromptEvent | None = None
    for item, generation in reenact(session):
        if isinstance(item, PromptEvent):
            prompt = item
        elif isinstance(item, (ReplayedStep, RewindEvent)):
            assert prompt is not None
            states.append(State(tuple(generation.generated_ids), generation.config, prompt.text, prompt.chat))
    return states


def text_of(app: LLMScopeApp, selector: str) -> str:
    return str(app.query_one(selector).render())


async def walk_replay(path: Path, size: tuple[int, int] = (160, 48)) -> None:
    """Open `path` as `llmscope replay` does and press space through it, checking every state on screen."""
    session = load_session(path)
    states = recorded_states(session)
    assert states, f"{path} records no steps"
    first = session.prompts[0]
    app = LLMScopeApp(
        replay_engine_factory(path, session=session),
        model_label=f"{session.model.name} (replay)",
        prompt=first.text,
        chat=first.chat,
        deterministic=True,
    )
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.view is not None)
        message = text_of(app, "#message")
        assert "is ready" not in message and "replay" in message.lower(), message
        assert "replay" in text_of(app, "#status").lower()
        for number, state in enumerate(states):
            if number:
                previous = app.view
                await pilot.press("space")
                await until(pilot, lambda: app.view is not previous and not app.replay_busy)
            where = f"{path.name}, recorded action {number + 1}/{len(states)}"
            assert tuple(token.id for token, _ in app.view.generated) == state.generated, where
            knobs = app.query_one(KnobPanel)
            assert app.view.config == state.config and knobs.config == state.config, where
            for spec in KNOBS:
                shown = app.query_one(f"#knob-{spec.name}").value
                assert shown == format_knob(spec, getattr(state.config, spec.name)), (where, spec.name, shown)
            assert app.query_one("#prompt").value == state.prompt, where
            assert app.query_one("#chat").value == state.chat, where
            title = text_of(app, "#generation-title")
            assert "diverge" not in title and "matches the recording" in title, (where, title)
        last = app.view
        await pilot.press("space")
        await pilot.pause(0.2)
        assert app.view is last
        assert "end of the recording" in text_of(app, "#message").lower()


SHIPPED = shipped_sessions()


@pytest.mark.parametrize("shipped", SHIPPED, ids=[shipped.name for shipped in SHIPPED])
def test_every_shipped_session_replays_exactly_in_the_tui(shipped):
    asyncio.run(walk_replay(shipped.path))


def test_a_replay_shows_the_recorded_knobs_after_two_steps():
    """The walk of issue 12: `llmscope replay sampling-tour`, space twice → T=0.7 top-p=0.9 seed=7, no divergence."""
    (tour,) = [shipped for shipped in SHIPPED if shipped.name == "sampling-tour"]

    async def scenario():
        session = load_session(tour.path)
        app = LLMScopeApp(replay_engine_factory(tour.path, session=session), model_label="replay", prompt="")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            for _ in range(2):
                previous = app.view
                await pilot.press("space")
                await until(pilot, lambda: app.view is not previous and not app.replay_busy)
            config = app.query_one(KnobPanel).config
            assert (config.temperature, config.top_p, config.seed) == (0.7, 0.9, 7)
            assert "T=0.7" in text_of(app, "#knob-summary") and "diverge" not in text_of(app, "#generation-title")

    asyncio.run(scenario())


# ------------------------------------------------------------------------------- saving paths
def test_generate_save_replays_exactly(tiny_model_dirs, tmp_path):
    path = tmp_path / "generate.llmscope"
    result = runner.invoke(
        cli_app,
        [
            "generate",
            "Hello, how are you?",
            "--model",
            str(tiny_model_dirs["gpt2"]),
            "--preset",
            "creative",
            "--seed",
            "3",
            "--steps",
            "6",
            "--save",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    asyncio.run(walk_replay(path))


def test_compare_save_replays_exactly(tiny_model_dirs, tmp_path):
    path = tmp_path / "compare.llmscope"
    result = runner.invoke(
        cli_app,
        [
            "compare",
            "Hello, how are you?",
            "--model",
            str(tiny_model_dirs["gpt2"]),
            "--preset",
            "hotter",
            "--seed",
            "4",
            "--steps",
            "5",
            "--save",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    asyncio.run(walk_replay(path))


def test_demo_record_replays_exactly(tiny_model_dirs, tmp_path):
    script = tmp_path / "demo.toml"
    script.write_text(
        'title = "t"\nmodel = "x"\n[[step]]\nprompt = "Hello, how are you?"\n'
        '[[step]]\npreset = "balanced"\ngenerate = 3\n[[step]]\nknobs = { temperature = 1.4 }\nrewind = 1\ngenerate = 2\n',
        encoding="utf-8",
    )
    path = tmp_path / "demo.llmscope"
    result = runner.invoke(
        cli_app,
        [
            "demo",
            str(script),
            "--model",
            str(tiny_model_dirs["gpt2"]),
            "--export-svg",
            str(tmp_path / "svg"),
            "--record",
            str(path),
            "--size",
            "120x36",
        ],
    )
    assert result.exit_code == 0, result.output
    asyncio.run(walk_replay(path))


def test_tui_record_and_ctrl_s_replay_exactly(tiny_model_dirs, tmp_path):
    """One playground session saved both ways: --record's autosave on quit, and ctrl+s."""
    recorded, saved = tmp_path / "record.llmscope", tmp_path / "ctrl-s.llmscope"

    async def play():
        app = make_app(tiny_model_dirs["llama-gqa"], prompt="Hello, how are you?", record_path=recorded)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            await pilot.press("space", "space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("escape", "2")
            field = app.query_one("#knob-temperature")
            field.focus()
            await pilot.press("up", "up")
            await until(pilot, lambda: app.view.config.temperature == 1.2)
            await pilot.press("escape", "b")
            await until(pilot, lambda: app.view.step_count == 2)
            await pilot.press("space")
            await until(pilot, lambda: app.view.step_count == 3)
            await pilot.press("ctrl+s")
            await until(pilot, lambda: type(app.screen).__name__ == "SaveSessionScreen")
            app.screen.query_one("#session-path").value = str(saved)
            await pilot.press("enter")
            await until(pilot, lambda: saved.exists())
            await pilot.press("ctrl+q")

    asyncio.run(play())
    assert recorded.exists()
    asyncio.run(walk_replay(recorded))
    asyncio.run(walk_replay(saved))


def test_a_sparse_replay_says_its_attention_is_approximate(tiny_model_dirs, tmp_path):
    """A file that kept only each row's large weights replays with the attention pane saying so; float16 does not."""
    from session_helpers import record_greedy

    from llmscope.session.files import save_session
    from llmscope.widgets.attention.pane import AttentionPane

    session = record_greedy(tiny_model_dirs["llama-gqa"], steps=3)

    async def status(storage: str) -> str:
        path = save_session(session, tmp_path / f"{storage}.llmscope", attention=storage)
        app = LLMScopeApp(replay_engine_factory(path, session=load_session(path)), model_label="replay", prompt="")
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.view is not None)
            previous = app.view
            await pilot.press("space")
            await until(pilot, lambda: app.view is not previous and not app.replay_busy)
            await pilot.press("3")
            pane = app.query_one(AttentionPane)
            await until(pilot, lambda: pane.shown is not None)
            return pane.status_line()

    sparse = asyncio.run(status("sparse"))
    assert sparse.startswith("≈ replay ") and "1/256 of each row's max" in sparse
    assert "≈" not in asyncio.run(status("float16"))
