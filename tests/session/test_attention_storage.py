"""Attention in session files: per-layer fields and sinks round-trip (issue 11), sparse storage at long context
keeps every figure the attention pane shows within its stated error (issue 14), and damaged sparse data is refused.

Live rows come from the real engine (tiny gpt-oss with sinks and sliding layers, tiny Jamba with SSM layers, and
SmolLM2 for trained attention patterns); each replayed figure is compared with the same hand formula on the live rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from architecture_configs import build_models

from llmscope.generation import Generation
from llmscope.sampler import preset
from llmscope.session import files as session_files
from llmscope.session.arrays import REST_BLOCK, REST_STEPS, SPARSE_THRESHOLD, dense_attention, sparse_attention
from llmscope.session.files import SessionFormatError, load_session, save_session
from llmscope.session.recording import Session
from llmscope.session.replay import ReplayEngine
from llmscope.trace import ModelInfo

FAMILIES = ("gpt_oss", "jamba")
"""gpt-oss: learned sinks and sliding layers; Jamba: SSM layers between attention layers (a hybrid)."""
FLOAT16_RELATIVE = 2.0**-11


@pytest.fixture(scope="module")
def family_sessions(tmp_path_factory) -> dict[str, tuple[Session, Generation]]:
    """Each family's greedy run of 10 steps past its window of 4, recorded through the real engine."""
    from llmscope.engines.hf import HFEngine

    sessions = {}
    for family, directory in build_models(tmp_path_factory.mktemp("families"), FAMILIES).items():
        engine = HFEngine.load(str(directory), device="cpu")
        generation = Generation(engine, preset("greedy"))
        generation.start([5, 17, 42, 99, 7, 3, 250, 31])
        generation.run(10)
        sessions[family] = (Session.from_generation(generation, prompt_text="ids", chat=False), generation)
    return sessions


@pytest.mark.parametrize("storage", ["float16", "sparse"])
@pytest.mark.parametrize("family", FAMILIES)
def test_per_layer_fields_and_sinks_round_trip(family_sessions, family, storage, tmp_path):
    session, generation = family_sessions[family]
    path = save_session(session, tmp_path / f"{family}.llmscope", attention=storage)
    loaded = load_session(path)
    model = loaded.model
    assert model == session.model
    if family == "jamba":  # SSM layers between the attention layers
        assert model.attention_layers != tuple(range(model.num_layers))
    else:  # sliding layers beside full ones
        assert 0 < len([layer for layer in model.attention_layers if model.layer_window(layer)]) < model.num_layers
    for step, forward in zip(generation.steps, loaded.forwards, strict=True):
        live, trace = step.trace, forward.trace()
        assert (trace.index, trace.input_ids, trace.position, trace.forward_ms, trace.kv) == (
            live.index,
            live.input_ids,
            live.position,
            live.forward_ms,
            live.kv,
        )
        assert np.array_equal(trace.logits, live.logits.astype(np.float16).astype(np.float32)) or np.array_equal(
            trace.logits, live.logits
        )
        assert np.array_equal(trace.hidden_norms, live.hidden_norms)
        assert live.router is not None and trace.router is not None  # both families route tokens to experts
        assert (trace.router.layers, trace.router.rule) == (live.router.layers, live.router.rule)
        for name in ("logits", "experts", "weights"):
            assert np.array_equal(getattr(trace.router, name), getattr(live.router, name))
        assert trace.attention_layers == live.attention_layers == model.attention_layers
        assert (trace.attention_sink is None) == (live.attention_sink is None) == (family != "gpt_oss")
        if live.attention_sink is not None:
            assert np.array_equal(trace.attention_sink, live.attention_sink)
            assert live.attention_sink.max() > 0.01  # the sinks are real weights, not zeros
        assert (
            trace.attention.shape == live.attention.shape and trace.attention_query_start == live.attention_query_start
        )
        masked = live.attention == 0
        for layer in range(model.num_layers):
            if layer not in model.attention_layers:
                assert not trace.attention[layer].any()  # an SSM layer's rows stay empty
        assert np.array_equal(trace.attention == 0, masked)  # windows and the causal mask: exact zeros, and only there
        error = np.abs(trace.attention - live.attention)
        peak = live.attention.max(axis=-1, keepdims=True)
        lossy = SPARSE_THRESHOLD * peak + live.attention.sum(-1, keepdims=True) / REST_STEPS
        allowed = FLOAT16_RELATIVE * live.attention + (lossy if storage == "sparse" else 0)
        assert (error <= allowed + 1e-7).all()
    assert (loaded.steps, loaded.events, dict(loaded.tokens)) == (session.steps, session.events, dict(session.tokens))
    assert (loaded.capabilities, loaded.capture) == (session.capabilities, session.capture)
    assert (loaded.attention_storage is None) == (storage == "float16")


def test_a_file_written_before_the_per_layer_fields_still_opens(family_sessions, tmp_path):
    """Removing attention_layers and the sink arrays from a new file gives what an older writer wrote."""
    session, _ = family_sessions["gpt_oss"]
    path = save_session(session, tmp_path / "new.llmscope", attention="float16")
    old = tmp_path / "old.llmscope"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w", zipfile.ZIP_DEFLATED) as target:
        manifest = json.loads(source.read("manifest.json"))
        for forward in manifest["forwards"]:
            forward.pop("attention_layers", None)
            forward["arrays"] = [role for role in forward["arrays"] if role != "attention_sink"]
        manifest["arrays"] = {name: spec for name, spec in manifest["arrays"].items() if "attention_sink" not in name}
        target.writestr("manifest.json", json.dumps(manifest))
        for name in source.namelist():
            if name != "manifest.json" and "attention_sink" not in name:
                target.writestr(name, source.read(name))
    trace = load_session(old).forwards[-1].trace()
    assert trace.attention is not None and trace.attention_layers == () and trace.attention_sink is None


def test_sparse_storage_keeps_masked_keys_zero_and_rows_whole():
    """Hand-made rows: a sliding layer (window 3), a layer without attention, a sharp and a flat head."""
    model = ModelInfo(
        "m", "s", "a", "t", 0, 3, 2, 1, 4, 8, 50, 64, "cpu", "float32",
        layer_kinds=("sliding", "ssm", "full"), layer_windows=(3, 0, 0),
    )  # fmt: skip
    rows, keys = 2, 40
    rng = np.random.default_rng(0)
    attention = np.zeros((3, 2, rows, keys), dtype=np.float32)
    for row in range(rows):
        position = keys - rows + row
        attention[0, :, row, position - 2 : position + 1] = rng.dirichlet(np.ones(3), size=2)
        attention[2, 0, row, : position + 1] = rng.dirichlet(np.full(position + 1, 0.05))
        attention[2, 1, row, : position + 1] = 1 / (position + 1)
    dense = dense_attention(sparse_attention(attention), model, (0, 2), keys - rows)
    assert np.array_equal(dense == 0, attention == 0)
    assert np.allclose(dense.sum(-1), attention.sum(-1), atol=1e-3)
    assert np.abs(dense - attention).max() <= attention.max() * (SPARSE_THRESHOLD + 1 / REST_STEPS) + 1e-4


# ------------------------------------------------------------------------------------------- long context
@pytest.fixture(scope="module")
def smollm2_recording(smollm2_engine, tmp_path_factory):
    """SmolLM2 on ~300 tokens of real English (pydoc topics) and 3 decode steps, saved sparse and as float16."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[name] for name in sorted(topics))
    generation = Generation(smollm2_engine, preset("greedy"))
    generation.start(smollm2_engine.encode(text)[:300])
    generation.run(3)
    session = Session.from_generation(generation, prompt_text=text[:50], chat=False)
    folder = tmp_path_factory.mktemp("smollm2")
    sparse = save_session(session, folder / "sparse.llmscope", attention="sparse")
    dense = save_session(session, folder / "float16.llmscope", attention="float16")
    return generation, sparse, dense


def shown_figures(attention: np.ndarray, query_start: int) -> dict[str, np.ndarray]:
    """The attention pane's figures by hand: sink (key 0), first-4 and last-64 shares, sums of bins of 25 keys."""
    rows, keys = attention.shape[2:]
    positions = query_start + np.arange(rows)
    recent = np.stack(
        [attention[:, :, row, max(0, p - 63) : p + 1].sum(-1, dtype=np.float64) for row, p in enumerate(positions)], -1
    )
    starts = np.arange(0, keys, 25)
    return {
        "sink": attention[..., 0].astype(np.float64),
        "first 4": attention[..., :4].sum(-1, dtype=np.float64),
        "last 64": recent,
        "bins of 25": np.add.reduceat(attention.astype(np.float64), starts, axis=-1),
    }


def test_sparse_replay_shows_every_figure_within_its_stated_error(smollm2_recording):
    generation, sparse, dense = smollm2_recording
    loaded = load_session(sparse)
    assert ReplayEngine(loaded).attention_note.startswith("attention stored as float16 weights ≥ 1/256")
    assert ReplayEngine(load_session(dense)).attention_note is None
    assert sparse.stat().st_size < dense.stat().st_size / 2
    dropped_somewhere = False
    for step, forward in zip(generation.steps, loaded.forwards, strict=True):
        live, replayed = step.trace.attention, forward.trace().attention
        peak = live.max(axis=-1)
        kept = live >= SPARSE_THRESHOLD * peak[..., None]
        dropped_somewhere |= bool((~kept & (live > 0)).any())
        rest = np.where(kept, 0, live).sum(-1, dtype=np.float64)
        # each weight: float16 rounding if kept; below 1/256 of the row max plus one 1/255 share of the rest if not
        allowed = np.where(kept, FLOAT16_RELATIVE * live, (SPARSE_THRESHOLD * peak + rest / REST_STEPS)[..., None])
        assert (np.abs(replayed - live) <= allowed + 1e-7).all()
        # the strongest keys are kept, so a top-5 list matches down to its last kept key (weaker keys weigh less
        # than 1/256 of the row's max and show the fill), wherever weights differ by more than float16 rounding
        for layer, head in np.ndindex(*live.shape[:2]):
            row = live[layer, head, -1]
            order = np.argsort(-row, kind="stable")[:6]
            shown = int((row[order[:5]] >= SPARSE_THRESHOLD * row.max()).sum())
            if np.all(np.diff(-row[order]) > 4 * FLOAT16_RELATIVE * row[order][:-1]):
                assert list(np.argsort(-replayed[layer, head, -1], kind="stable")[:shown]) == list(order[:shown])
        # sums over keys: within the rest's rounding plus the rest of the (at most two) blocks a range cuts
        bound = rest / REST_STEPS + 2 * REST_BLOCK * SPARSE_THRESHOLD * peak + FLOAT16_RELATIVE
        want = shown_figures(live, step.trace.attention_query_start)
        got = shown_figures(replayed, step.trace.attention_query_start)
        for name in want:
            limit = bound[..., None] if name == "bins of 25" else bound
            assert (np.abs(got[name] - want[name]) <= limit + 1e-6).all(), name
    assert dropped_somewhere  # the test exercised the lossy path


def test_opening_a_session_does_not_import_torch(smollm2_recording):
    _, sparse, _ = smollm2_recording
    script = (
        "import sys; from llmscope.session.files import load_session; from llmscope.session.replay import ReplayEngine;"
        f"engine = ReplayEngine(load_session({str(sparse)!r})); engine.prefill(engine.session.prompts[0].prompt_ids);"
        "assert 'torch' not in sys.modules, 'torch was imported'; print(engine.attention_note)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1/256" in result.stdout


def test_auto_storage_is_sparse_only_for_long_contexts(family_sessions, monkeypatch):
    session, _ = family_sessions["jamba"]
    assert not session_files._sparse_attention(session, "auto")
    monkeypatch.setattr(session_files, "AUTO_SPARSE_BYTES", 0)
    assert session_files._sparse_attention(session, "auto")
    with pytest.raises(ValueError, match="attention='lossy' is invalid"):
        save_session(session, "/nonexistent/x.llmscope", attention="lossy")


# ------------------------------------------------------------------------------------------- damaged files
def rewrite(path: Path, target: Path, *, manifest=None, members=None) -> Path:
    """A copy of the session file with the manifest edited by `manifest(dict)` and members replaced."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        data = json.loads(source.read("manifest.json"))
        if manifest:
            manifest(data)
        out.writestr("manifest.json", json.dumps(data))
        for name in source.namelist():
            if name != "manifest.json":
                out.writestr(name, (members or {}).get(name, source.read(name)))
    return target


def npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_damaged_sparse_attention_gives_one_line_errors(family_sessions, tmp_path):
    session, _ = family_sessions["jamba"]
    good = save_session(session, tmp_path / "good.llmscope", attention="sparse")
    counts_name = "forwards/1/attention_counts.npy"
    with zipfile.ZipFile(good) as archive:
        counts = np.load(archive.open(counts_name))
        keys = np.load(archive.open("forwards/1/attention_keys.npy"))
    shifted = counts.copy()
    shifted.flat[0] += 1
    shifted.flat[-1] -= 1
    reversed_keys = keys[::-1].copy()
    cases = {
        "counts that do not match the rows": rewrite(
            good, tmp_path / "a.llmscope", members={counts_name: npy(shifted)}
        ),
        "keys out of order": rewrite(
            good, tmp_path / "b.llmscope", members={"forwards/1/attention_keys.npy": npy(reversed_keys)}
        ),
    }
    for label, path in cases.items():
        session_loaded = load_session(path)
        with pytest.raises(SessionFormatError) as error:
            session_loaded.forwards[1].trace()
        assert "\n" not in str(error.value) and "sparse attention is damaged" in str(error.value), label

    def mix(data):
        data["forwards"][1]["arrays"].append("attention")

    with pytest.raises(SessionFormatError, match="or none, and not with attention"):
        load_session(rewrite(good, tmp_path / "c.llmscope", manifest=mix))


def test_llmscope_replay_says_the_attention_is_stored_sparse(smollm2_recording):
    _, sparse, dense = smollm2_recording
    command = [sys.executable, "-m", "llmscope", "replay", "--headless"]
    shown = subprocess.run([*command, str(sparse)], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "attention stored as float16 weights ≥ 1/256 of each row's max" in shown.stdout
    data = json.loads(
        subprocess.run([*command, "--json", str(dense)], capture_output=True, text=True, timeout=300).stdout
    )
    assert data["attention_storage"] is None


def test_headless_replay_leaves_sparse_attention_unread(tiny_model_dirs, tmp_path, monkeypatch):
    """`replay --headless` prints no attention, so it must not rebuild a sparse file's dense rows."""
    from session_helpers import record_greedy
    from typer.testing import CliRunner

    from llmscope.cli.main import app
    from llmscope.session import files
    from llmscope.session.files import save_session

    path = save_session(
        record_greedy(tiny_model_dirs["llama-gqa"], steps=4), tmp_path / "s.llmscope", attention="sparse"
    )

    def unread(*args, **kwargs):
        raise AssertionError("dense attention rebuilt by a headless replay")

    monkeypatch.setattr(files, "dense_attention", unread)
    result = CliRunner().invoke(app, ["replay", str(path), "--headless", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["sampled"] == report["reproduced"] == 4 and report["attention_storage"]
