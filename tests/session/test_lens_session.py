"""The logit lens in session files: recorded live (steps, a force, a re-sample, a rewind), replayed without torch.

Every Layers-pane figure of the replay (each layer's candidates, entropy, the chosen token's rank and probability)
must equal the live run's, and a damaged lens array must be refused with one line.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from llmscope.live import LiveController
from llmscope.panes import LensContent
from llmscope.sampler import preset
from llmscope.session.files import SessionFormatError, load_session, save_session
from llmscope.session.recording import SessionRecorder
from llmscope.session.replay import ReplayEngine, replay_moves
from llmscope.trace import CaptureOptions


@pytest.fixture(scope="module")
def recorded(tiny_model_dirs, tmp_path_factory) -> tuple[Path, list[LensContent]]:
    """A live exploration with the lens on, its Layers-pane content after every action, and its saved file."""
    from llmscope.engines.hf import HFEngine

    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]), capture=CaptureOptions(logit_lens=True))
    recorder = SessionRecorder(engine)
    controller = LiveController(engine, recorder=recorder)
    controller.resample(preset("balanced").with_changes(seed=3))
    shown = [controller.start("hello world, how are you", chat=False)]
    shown += [controller.step() for _ in range(3)]
    top = shown[-1].panes.lens  # type: ignore[union-attr]
    assert isinstance(top, LensContent)
    shown.append(controller.force(int(top.lenses[-1].top_ids[-1, 3])))  # the output layer's 4th candidate
    shown.append(controller.resample(preset("greedy")))
    shown.append(controller.rewind(2))
    shown += [controller.step() for _ in range(2)]
    path = save_session(recorder.session(title="lens"), tmp_path_factory.mktemp("lens") / "lens.llmscope")
    contents = [view.panes.lens for view in shown if view.panes is not None]
    assert all(isinstance(content, LensContent) for content in contents)
    return path, contents  # type: ignore[return-value]


def assert_same(replayed: LensContent, live: LensContent) -> None:
    assert replayed.step_indices == live.step_indices and replayed.chosen_ids == live.chosen_ids
    assert replayed.selected == live.selected
    for mine, theirs in zip(replayed.lenses, live.lenses, strict=True):
        np.testing.assert_array_equal(mine.top_ids, theirs.top_ids)
        np.testing.assert_array_equal(mine.top_probs, theirs.top_probs)
        np.testing.assert_array_equal(mine.entropy, theirs.entropy)
        assert mine.chosen_rank is not None and theirs.chosen_rank is not None
        np.testing.assert_array_equal(mine.chosen_rank, theirs.chosen_rank)
        np.testing.assert_array_equal(mine.chosen_prob, theirs.chosen_prob)
    for token_id, text in live.token_texts.items():
        assert replayed.token_texts[token_id] == text


def test_a_replay_shows_the_live_lens_at_every_move(recorded):
    path, live = recorded
    session = load_session(path)
    controller = LiveController(ReplayEngine(session))
    moves = replay_moves(session)
    assert [move.kind for move in moves] == [
        "prompt",
        "step",
        "step",
        "step",
        "force",
        "resample",
        "rewind",
        "step",
        "step",
    ]
    for move, expected in zip(moves, live, strict=True):
        view = controller.follow(move)
        assert view.panes is not None and isinstance(view.panes.lens, LensContent)
        assert_same(view.panes.lens, expected)


def test_the_forced_tokens_rank_is_stored_with_its_forward(recorded):
    path, live = recorded
    forced = live[4]
    lens = forced.lenses[forced.selected]
    assert lens.chosen_rank is not None and lens.chosen_rank[-1] == 4  # what was forced: the 4th candidate
    forward = load_session(path).forwards[3]
    assert forward.arrays["lens_choice_ids"].shape[0] >= 2  # the sampled token and the forced one


REPLAY_WITHOUT_TORCH = textwrap.dedent("""
    import json, sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError("blocked: " + name)
    sys.meta_path.insert(0, Block())
    from llmscope.live import LiveController
    from llmscope.session.files import load_session
    from llmscope.session.replay import ReplayEngine, replay_moves
    session = load_session(sys.argv[1])
    controller = LiveController(ReplayEngine(session))
    firsts = []
    for move in replay_moves(session):
        lens = controller.follow(move).panes.lens
        firsts.append([int(l.chosen_rank[-1]) for l in lens.lenses])
    print(json.dumps({"ranks": firsts, "torch": "torch" in sys.modules}))
""")


def test_the_lens_replays_where_torch_cannot_be_imported(recorded):
    path, live = recorded
    result = subprocess.run(
        [sys.executable, "-c", REPLAY_WITHOUT_TORCH, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["torch"]
    assert report["ranks"] == [[int(lens.chosen_rank[-1]) for lens in content.lenses] for content in live]


def _rewrite(path: Path, tmp_path: Path, member: str, array: np.ndarray | None) -> Path:
    """A copy of the file with one lens array replaced (its manifest declaration updated) or removed."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "manifest.json":
                document = json.loads(data)
                if array is None:
                    del document["arrays"][member]
                    for forward in document["forwards"]:
                        role = member.rsplit("/", 1)[-1].removesuffix(".npy")
                        if member.startswith(f"forwards/{document['forwards'].index(forward)}/"):
                            forward["arrays"].remove(role)
                data = json.dumps(document).encode()
            if info.filename == member:
                if array is None:
                    continue
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                data = buffer.getvalue()
            target.writestr(info.filename, data)
    damaged = tmp_path / "damaged.llmscope"
    damaged.write_bytes(out.getvalue())
    return damaged


def test_damaged_lens_arrays_are_refused_in_one_line(recorded, tmp_path):
    path, _ = recorded
    session = load_session(path, lazy=False)
    ids = np.asarray(session.forwards[0].arrays["lens_top_ids"]).copy()
    ids[0, 0] = session.model.vocab_size + 5
    bad = _rewrite(path, tmp_path, "forwards/0/lens_top_ids.npy", ids)
    with pytest.raises(SessionFormatError, match="outside the vocabulary") as caught:
        load_session(bad, lazy=False)
    assert "\n" not in str(caught.value)
    missing = _rewrite(path, tmp_path, "forwards/0/lens_entropy.npy", None)
    with pytest.raises(SessionFormatError, match="lens_top_ids, lens_top_probs, lens_entropy") as caught:
        load_session(missing, lazy=False)
    assert "\n" not in str(caught.value)


def test_headless_replay_prints_each_steps_lens(recorded):
    """`replay --headless --json` gives each replayed step's lens ranks, equal to the live Layers pane's."""
    from typer.testing import CliRunner

    from llmscope.cli.main import app

    path, live = recorded
    result = CliRunner().invoke(app, ["replay", str(path), "--headless", "--json"])
    assert result.exit_code == 0, result.output
    steps = [action for action in json.loads(result.output)["actions"] if "lens" in action]  # step/force/resample
    shown = [
        content
        for content, kind in zip(
            live, ["prompt", "step", "step", "step", "force", "resample", "rewind", "step", "step"], strict=True
        )
        if kind != "rewind"
    ]
    assert len(steps) == len(shown)
    for action, content in zip(steps, shown, strict=True):
        lens = content.lenses[content.selected]
        assert action["lens"]["chosen_rank"] == lens.chosen_rank.tolist()
        assert action["lens"]["first_top1_layer"] == lens.first_top1_layer()
    table = CliRunner().invoke(app, ["replay", str(path), "--headless"])
    assert table.exit_code == 0 and "logit lens:" in table.output
