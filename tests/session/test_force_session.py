"""A forced token is recorded as a `force` event (format version 2) and replays exactly, live path and file alike."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import numpy as np
import pytest

from llmscope.engines.hf import HFEngine
from llmscope.generation import Generation
from llmscope.live import LiveController
from llmscope.sampler import SamplerConfig
from llmscope.session import files as session_files
from llmscope.session.files import SessionFormatError, load_session, save_session
from llmscope.session.recording import ForceEvent, Session, SessionRecorder
from llmscope.session.replay import ReplayedStep, ReplayEngine, reenact

PROMPT = "Hello, how are you?"


def least_likely(logits: np.ndarray) -> int:
    return int(np.argmin(logits))


@pytest.fixture(scope="module")
def forced_session(tiny_model_dirs):
    """Sampled steps, a forced unlikely token, more steps, a force that branches from an earlier step, more steps."""
    engine = HFEngine.load(str(tiny_model_dirs["mixtral"]))
    recorder = SessionRecorder(engine)
    controller = LiveController(engine, SamplerConfig(temperature=0.9, top_k=20, seed=3), recorder=recorder)
    controller.start(PROMPT, chat=False)
    controller.step()
    controller.force(least_likely(controller.generation.current.trace.logits))
    controller.step()
    controller.step()
    controller.force(least_likely(controller.generation.steps[1].trace.logits) + 1, at=1)
    controller.step()
    controller.step()
    return recorder.session(title="forced"), list(controller.generation.generated_ids), controller


def test_recorded_events_name_each_force(forced_session):
    session, generated, _ = forced_session
    kinds = [event.kind for event in session.events]
    assert kinds == ["prompt", "knobs", "step", "step", "force", "step", "step", "rewind", "force", "step", "step"]
    assert [step.token_id for step in session.final_steps()] == generated
    forced = [session.steps[event.step] for event in session.events if isinstance(event, ForceEvent)]
    assert all(step.probability == 0.0 for step in forced)  # top-k 20 had removed both forced tokens


def test_reenact_reproduces_every_step_and_force(forced_session):
    session, generated, _ = forced_session
    items = list(reenact(session))
    replayed = [item for item, _ in items if isinstance(item, ReplayedStep)]
    assert [item.action for item in replayed].count("force") == 2
    assert all(item.reproduced for item in replayed)
    assert all(item.step.forced == (item.action == "force") for item in replayed)
    assert items[-1][1].generated_ids == generated


def test_file_round_trip_is_version_2_and_replays_exactly(forced_session, tmp_path):
    session, generated, controller = forced_session
    path = save_session(session, tmp_path / "forced.llmscope")
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format_version"] == 2 and [e["kind"] for e in manifest["events"]].count("force") == 2
    loaded = load_session(path, lazy=False)
    assert loaded.events == session.events and loaded.steps == session.steps
    assert list(reenact(loaded))[-1][1].generated_ids == generated
    # the TUI's path: a LiveController over the replay engine, forcing what the recording forced
    replay = LiveController(ReplayEngine(loaded), SamplerConfig(temperature=0.9, top_k=20, seed=3))
    replay.start(PROMPT, chat=False)
    forced = [loaded.steps[event.step].token_id for event in loaded.events if isinstance(event, ForceEvent)]
    replay.step()
    replay.force(forced[0])
    replay.step()
    replay.step()
    replay.force(forced[1], at=1)
    replay.step()
    replay.step()
    assert replay.generation.generated_ids == generated
    engine = replay.engine
    assert all(engine.matches_recording(number, token) for number, token in enumerate(generated))
    np.testing.assert_allclose(
        replay.generation.current.trace.logits,
        controller.generation.current.trace.logits.astype(np.float16).astype(np.float32),
        atol=1e-2,
    )


def test_a_file_without_force_stays_version_1_and_an_old_reader_refuses_version_2(
    forced_session, tmp_path, monkeypatch
):
    session, _, _ = forced_session
    plain = dataclasses.replace(session, events=session.events[:4])  # knobs, prompt, step, step
    with zipfile.ZipFile(save_session(plain, tmp_path / "plain.llmscope")) as archive:
        assert json.loads(archive.read("manifest.json"))["format_version"] == 1
    path = save_session(session, tmp_path / "forced.llmscope")
    monkeypatch.setattr(session_files, "FORMAT_VERSION", 1)  # a reader from before the force event
    with pytest.raises(SessionFormatError, match=r"format 2; this one reads up to 1\): upgrade llmscope"):
        load_session(path)


def test_a_force_on_a_forward_that_is_not_the_current_one_is_refused(forced_session, tmp_path):
    session, _, _ = forced_session
    path = save_session(session, tmp_path / "forced.llmscope")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members["manifest.json"])
    first_force = next(n for n, event in enumerate(manifest["events"]) if event["kind"] == "force")
    manifest["events"][first_force]["step"] = 0  # the prefill's sample, on another forward
    members["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "bad.llmscope"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(SessionFormatError, match=rf"events\[{first_force}\] forces a token on a forward"):
        load_session(bad)


def test_from_generation_records_a_forced_step_as_its_sample_then_the_force(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    generation = Generation(engine, SamplerConfig(temperature=0))
    generation.start(engine.encode(PROMPT))
    generation.run(2)
    generation.force(least_likely(generation.current.trace.logits))
    generation.run(4)
    session = Session.from_generation(generation, prompt_text=PROMPT, chat=False)
    assert [event.kind for event in session.events].count("force") == 1
    replayed = [item for item, _ in reenact(session) if isinstance(item, ReplayedStep)]
    assert all(item.reproduced for item in replayed)
    assert list(reenact(session))[-1][1].generated_ids == generation.generated_ids
