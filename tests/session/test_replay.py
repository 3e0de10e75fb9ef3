"""The replay engine and `llmscope replay`: recorded sessions served without the model, and without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from session_helpers import CHAT_PROMPT, PLAIN_PROMPT, record_exploration
from typer.testing import CliRunner

from llmscope.cli.main import app
from llmscope.engine_api import Engine, EngineError
from llmscope.generation import Generation
from llmscope.live import LiveController
from llmscope.sampler import preset
from llmscope.session.files import load_session, save_session
from llmscope.session.replay import ReplayEngine, find_session_file, reenact, shipped_sessions
from llmscope.trace import CaptureOptions

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def recorded(tiny_model_dirs):
    return record_exploration(tiny_model_dirs["mixtral"])


@pytest.fixture(scope="module")
def session_file(recorded, tmp_path_factory) -> Path:
    return save_session(recorded[0], tmp_path_factory.mktemp("replay") / "tiny.llmscope")


@pytest.fixture
def engine(session_file) -> ReplayEngine:
    return ReplayEngine(load_session(session_file))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The console-script entry point (`llmscope = llmscope.cli.main:main`) in a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", "from llmscope.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "160"},
        stdin=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------------- the engine
def test_replay_engine_meets_the_engine_protocol(engine, recorded):
    assert isinstance(engine, Engine)
    assert engine.info == recorded[0].model and engine.capture == recorded[0].capture
    assert engine.capabilities.router and engine.capabilities.attention
    assert engine.context_length == 0 and engine.forward_calls == 0


def test_recorded_prompts_tokenize_and_new_text_needs_the_model(engine, recorded):
    live_engine = recorded[1].engine
    assert engine.encode(PLAIN_PROMPT) == live_engine.encode(PLAIN_PROMPT)
    assert engine.encode(CHAT_PROMPT, chat=True) == live_engine.encode(CHAT_PROMPT, chat=True)
    with pytest.raises(
        EngineError,
        match=r"this is a replay of 'Hello, how are you\?' \(and 1 other prompt\): "
        "it cannot tokenize new text without the model",
    ):
        engine.encode("Something new")
    with pytest.raises(EngineError, match="empty prompt"):
        engine.encode("  ")


def test_the_tokenizer_pane_gets_the_recorded_inspection_and_chat_rendering(engine, recorded):
    live_engine = recorded[1].engine
    rendered = live_engine.render_chat(CHAT_PROMPT)
    assert engine.render_chat(CHAT_PROMPT) == rendered
    assert engine.inspect(rendered) == live_engine.inspect(rendered)
    assert engine.inspect(PLAIN_PROMPT) == live_engine.inspect(PLAIN_PROMPT)
    with pytest.raises(EngineError, match="cannot tokenize new text"):
        engine.inspect("Hello, how are")


def test_token_info_comes_from_the_table_or_says_not_recorded(engine, recorded):
    session = recorded[0]
    known = next(iter(session.tokens))
    assert engine.token_info(known) == recorded[1].engine.token_info(known)
    unknown = next(i for i in range(session.model.vocab_size) if i not in session.tokens)
    placeholder = engine.token_info(unknown)
    assert placeholder.id == unknown and "not recorded" in placeholder.text and "not recorded" in placeholder.piece


def test_stepping_follows_the_recording_and_stops_at_a_divergence(engine, recorded):
    session = recorded[0]
    first_run = [session.steps[event.step].token_id for event in session.events[:8] if event.kind == "step"]
    prompt_ids = engine.encode(PLAIN_PROMPT)
    prefill = engine.prefill(prompt_ids)
    assert np.array_equal(prefill.logits, engine.session.forwards[0].trace().logits)
    assert engine.context_length == len(prompt_ids)
    for token in first_run[:4]:
        trace = engine.step(token)
    assert trace.position == len(prompt_ids) + 3 and engine.forward_calls == 5
    assert engine.recorded_choices(-1) == (first_run[4],) and engine.matches_recording(4, first_run[4])
    assert engine.recorded_config(-1) == preset("balanced").with_changes(seed=5)
    other = next(token for token in range(10) if token != first_run[4])
    with pytest.raises(
        EngineError,
        match=r"diverged from the recording at step 4 .*re-sampling still works, but "
        "stepping past the divergence needs the live model",
    ):
        engine.step(other)
    engine.truncate(len(prompt_ids) + 2)
    assert engine.context_length == len(prompt_ids) + 2
    assert engine.step(first_run[2]).position == len(prompt_ids) + 2
    with pytest.raises(EngineError, match="cannot truncate"):
        engine.truncate(len(prompt_ids) - 1)
    with pytest.raises(EngineError, match="no recorded prefill"):
        engine.prefill(prompt_ids[:-1])


def test_a_rewound_branch_is_followed_too(engine, recorded):
    """After the recorded rewind the same context was re-run; both branches are reachable."""
    session = recorded[0]
    generation = list(reenact(session, engine))[-1][1]
    assert engine.forward_calls == len(session.forwards)
    assert generation.prompt_ids == tuple(engine.encode(CHAT_PROMPT, chat=True))


def test_capture_options_filter_what_a_replay_shows(engine):
    engine.set_capture(
        CaptureOptions(attention=True, hidden_states=False, kv_cache=False, router=False, prefill_attention_rows=2)
    )
    trace = engine.prefill(engine.encode(PLAIN_PROMPT))
    assert trace.attention.shape[2] == 2 and trace.attention_query_start == trace.position - 1
    assert trace.hidden_norms is None and trace.kv is None and trace.router is None
    engine.set_capture(CaptureOptions(attention=False))
    assert engine.prefill(engine.encode(PLAIN_PROMPT)).attention is None


def test_a_live_controller_runs_over_a_replay_and_resamples_without_forwards(engine, recorded):
    controller = LiveController(engine, preset("balanced").with_changes(seed=5))
    view = controller.start(PLAIN_PROMPT, chat=False)
    for _ in range(3):
        view = controller.step()
    calls = engine.forward_calls
    view = controller.resample(preset("greedy"))
    view = controller.resample(preset("creative").with_changes(seed=99))
    assert engine.forward_calls == calls == view.forward_calls == 4
    assert view.routing is not None and view.current.attention is not None


def test_capabilities_say_why_something_is_missing(tiny_model_dirs, tmp_path):
    from llmscope.engines.hf import HFEngine

    live_engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]), capture=CaptureOptions(attention=False))
    generation = Generation(live_engine, preset("greedy"))
    generation.start(live_engine.encode(PLAIN_PROMPT))
    generation.run(2)
    from llmscope.session.recording import Session

    session = Session.from_generation(generation, prompt_text=PLAIN_PROMPT, chat=False)
    engine = ReplayEngine(load_session(save_session(session, tmp_path / "dense.llmscope")))
    assert not engine.capabilities.router and "dense model" in engine.capabilities.reason["router"]
    assert not engine.capabilities.attention
    assert engine.capabilities.reason["attention"] == "attention was not captured in this recording"


# ----------------------------------------------------------------------------- without torch
BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, json, sys, time

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Blocker())
    started = time.perf_counter()
    from llmscope.session.files import load_session
    session = load_session(sys.argv[1])
    load_seconds = time.perf_counter() - started
    from typer.testing import CliRunner
    from llmscope.cli.main import app
    result = CliRunner().invoke(app, ["replay", sys.argv[1], "--headless", "--json"])
    print(json.dumps({"exit_code": result.exit_code, "output": result.output, "load_seconds": load_seconds,
                      "modules": sorted(sys.modules)}))
""")


def test_replay_runs_where_torch_cannot_be_imported(session_file):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH, str(session_file)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["exit_code"] == 0, report["output"]
    replay = json.loads(report["output"])
    assert replay["sampled"] == replay["reproduced"] == 15
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert not loaded & {"torch", "transformers"}
    assert report["load_seconds"] < 5  # typically ~5 ms here; see the report for the 200-step SmolLM2 figure


# ---------------------------------------------------------------------------------------- CLI
def test_generate_save_then_replay_reproduces_the_tokens(tiny_model_dirs, tmp_path):
    path = tmp_path / "run.llmscope"
    generated = run_cli(
        "generate",
        PLAIN_PROMPT,
        "--model",
        str(tiny_model_dirs["mixtral"]),
        "--steps",
        "5",
        "--preset",
        "balanced",
        "--seed",
        "3",
        "--json",
        "--save",
        str(path),
    )
    assert generated.returncode == 0, generated.stderr
    assert "saved 5 steps to" in generated.stderr
    live = json.loads(generated.stdout)
    result = runner.invoke(app, ["replay", str(path), "--headless", "--json"])
    assert result.exit_code == 0, result.output
    replay = json.loads(result.output)
    steps = [action for action in replay["actions"] if action["action"] == "step"]
    assert [step["token"]["id"] for step in steps] == [step["token"]["id"] for step in live["steps"]]
    assert replay["sampled"] == replay["reproduced"] == 5
    for replayed, original in zip(steps, live["steps"]):
        assert replayed["p_final"] == pytest.approx(original["p_final"], rel=2e-2, abs=1e-4)
        assert replayed["kv_bytes"] == original["kv_bytes"]
    table = runner.invoke(app, ["replay", str(path), "--headless"])
    assert "step   4" in table.output and "5/5 match the recording" in table.output


def test_generate_save_with_top_k_logits_replays_greedy(tiny_model_dirs, tmp_path):
    path = tmp_path / "top.llmscope"
    generated = run_cli(
        "generate",
        PLAIN_PROMPT,
        "--model",
        str(tiny_model_dirs["llama-gqa"]),
        "--steps",
        "4",
        "--temperature",
        "0",
        "--save",
        str(path),
        "--save-logits",
        "top-k:3",
    )
    assert generated.returncode == 0, generated.stderr
    replay = json.loads(runner.invoke(app, ["replay", str(path), "--headless", "--json"]).output)
    assert replay["logits_kept"] == 3 and replay["sampled"] == replay["reproduced"] == 4


def test_a_bad_save_option_fails_before_the_model_loads():
    result = runner.invoke(app, ["generate", "hi", "--save", "x.llmscope", "--save-logits", "top-3"])
    assert result.exit_code == 2 and "allowed 'full' or 'top-k:N'" in result.output


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04broken"])
def test_a_corrupt_file_gives_one_line_and_status_2(tmp_path, content):
    path = tmp_path / "corrupt.llmscope"
    path.write_bytes(content)
    result = run_cli("replay", str(path), "--headless")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2 and "Traceback" not in output
    assert len(output.splitlines()) == 1 and "corrupt.llmscope: not an llmscope session" in output


def test_a_truncated_file_gives_one_line_and_status_2(session_file, tmp_path):
    path = tmp_path / "cut.llmscope"
    path.write_bytes(session_file.read_bytes()[:-500])
    result = run_cli("replay", str(path), "--headless", "--json")
    assert result.returncode == 2 and result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_name_lists_the_shipped_ones():
    result = runner.invoke(app, ["replay", "no-such-session", "--headless"])
    assert result.exit_code == 2 and "no session file or shipped session named 'no-such-session'" in result.output


def test_replay_list_shows_the_shipped_sessions():
    result = runner.invoke(app, ["replay", "--list", "--json"])
    names = [entry["name"] for entry in json.loads(result.output)]
    assert {"sampling-tour", "attention-sinks-induction"} <= set(names)
    table = runner.invoke(app, ["replay", "--list"]).output
    assert "sampling-tour" in table and "induction" in table


def test_without_headless_the_tui_opens_or_says_it_is_not_wired(session_file, monkeypatch):
    opened = {}

    class FakeApp:
        def __init__(self, engine_factory, *, model_label, prompt, chat):
            opened.update(
                model_label=model_label, prompt=prompt, chat=chat, engine=engine_factory(lambda text, fraction: None)
            )

        def run(self):
            opened["ran"] = True

    import llmscope.tui.app

    monkeypatch.setattr(llmscope.tui.app, "LLMScopeApp", FakeApp)
    result = runner.invoke(app, ["replay", str(session_file)])
    assert result.exit_code == 0, result.output
    assert opened["ran"] and opened["prompt"] == PLAIN_PROMPT and opened["chat"] is False
    assert isinstance(opened["engine"], ReplayEngine) and opened["model_label"] == "mixtral (replay)"
    monkeypatch.setitem(sys.modules, "llmscope.tui.app", None)
    result = runner.invoke(app, ["replay", str(session_file)])
    assert result.exit_code == 2 and "the replay TUI is not wired yet" in result.output


# --------------------------------------------------------------------------- shipped sessions
def test_every_shipped_session_loads_and_reproduces_its_tokens():
    shipped = shipped_sessions()
    index = json.loads((ROOT / "sessions" / "index.json").read_text())["sessions"]
    assert [entry.name for entry in shipped] == [entry["name"] for entry in index]
    for entry in shipped:
        session = load_session(entry.path)
        assert session.title == entry.name and session.description == entry.description
        replayed = [item for item, _ in reenact(session) if hasattr(item, "reproduced")]
        assert replayed and all(item.reproduced for item in replayed), entry.name
        assert entry.path.stat().st_size < 8 * 2**20
        assert find_session_file(entry.name) == entry.path


def test_the_induction_session_keeps_the_whole_prefill_attention():
    session = load_session(find_session_file("attention-sinks-induction"))
    prefill = session.forwards[0].trace()
    prompt_length = len(session.prompts[0].prompt_ids)
    assert prefill.attention.shape == (30, 9, prompt_length, prompt_length)
    assert session.logits_kept is None


def test_recording_changes_nothing_the_live_controller_returns(tiny_model_dirs):
    """The recorder is a bystander: the same actions give the same tokens with and without it."""
    from llmscope.engines.hf import HFEngine
    from llmscope.session.recording import SessionRecorder

    tokens = []
    for record in (False, True):
        live_engine = HFEngine.load(str(tiny_model_dirs["gpt2"]))
        controller = LiveController(
            live_engine,
            preset("balanced").with_changes(seed=2),
            recorder=SessionRecorder(live_engine) if record else None,
        )
        controller.start(PLAIN_PROMPT, chat=False)
        view = controller.step()
        tokens.append([token.id for token, _ in view.generated])
    assert tokens[0] == tokens[1]
