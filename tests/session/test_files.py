"""The session file: lossless-enough round trips on a tiny MoE, atomic saves, and a loader that refuses bad files."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from session_helpers import record_exploration, record_greedy

from llmscope import live
from llmscope.session import files as session_module
from llmscope.session.arrays import float16_or_32
from llmscope.session.files import FORMAT_VERSION, Limits, SessionFormatError, load_session, save_session
from llmscope.session.recording import TOKEN_TABLE_CANDIDATES, PromptEvent, Session
from llmscope.session.replay import reenact

FUZZ = settings(
    max_examples=int(os.environ.get("LLMSCOPE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    derandomize="LLMSCOPE_FUZZ_EXAMPLES" not in os.environ,  # the suite replays the same examples; a hunt explores
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""60 fixed examples per property in the suite (the same every run); LLMSCOPE_FUZZ_EXAMPLES=3000 for a random hunt."""


@pytest.fixture(scope="module")
def recorded(tiny_model_dirs):
    """An exploration on the tiny Mixtral (so routing is covered) and the recorder holding its live traces."""
    return record_exploration(tiny_model_dirs["mixtral"])


@pytest.fixture(scope="module")
def saved(recorded, tmp_path_factory) -> Path:
    return save_session(recorded[0], tmp_path_factory.mktemp("saved") / "tiny.llmscope")


@pytest.fixture(scope="module")
def saved_bytes(saved) -> bytes:
    return saved.read_bytes()


def float16_rounded(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float16).astype(np.float32)


# ------------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("lazy", [True, False])
def test_round_trip_keeps_every_trace(recorded, saved, lazy):
    session, recorder = recorded
    loaded = load_session(saved, lazy=lazy)
    assert len(loaded.forwards) == len(recorder.forwards) == 13
    for live_forward, forward in zip(recorder.forwards, loaded.forwards):
        live_trace, trace = live_forward.trace(), forward.trace()
        assert (trace.index, trace.input_ids, trace.position) == (
            live_trace.index,
            live_trace.input_ids,
            live_trace.position,
        )
        assert forward.parent == live_forward.parent
        assert np.array_equal(trace.logits, float16_rounded(live_trace.logits)) or np.array_equal(
            trace.logits, live_trace.logits
        )
        assert trace.attention.dtype == np.float32
        assert np.array_equal(trace.attention, float16_rounded(live_trace.attention))
        assert trace.attention_query_start == live_trace.attention_query_start
        assert np.array_equal(trace.hidden_norms, live_trace.hidden_norms)
        assert trace.kv == live_trace.kv
        assert trace.router.layers == live_trace.router.layers and trace.router.rule == live_trace.router.rule
        assert np.array_equal(trace.router.logits, live_trace.router.logits)
        assert (
            np.array_equal(trace.router.experts, live_trace.router.experts) and trace.router.experts.dtype == np.int64
        )
        assert np.array_equal(trace.router.weights, live_trace.router.weights)
        assert trace.forward_ms == live_trace.forward_ms
    assert loaded.steps == session.steps
    assert loaded.events == session.events
    assert (loaded.model, loaded.capabilities, loaded.capture) == (session.model, session.capabilities, session.capture)
    assert dict(loaded.tokens) == dict(session.tokens)
    assert (loaded.title, loaded.description, loaded.created_at) == (
        session.title,
        session.description,
        session.created_at,
    )
    assert loaded.written_by["numpy"] == np.__version__


def test_events_keep_the_order_of_prompts_knobs_rewinds_and_resamples(recorded):
    kinds = [event.kind for event in recorded[0].events]
    assert kinds[:3] == ["knobs", "prompt", "step"]
    assert kinds.count("prompt") == 2 and kinds.count("rewind") == 1 and kinds.count("resample") == 2
    assert kinds.index("rewind") > kinds.index("resample")
    chat_prompt = recorded[0].prompts[1]
    assert chat_prompt.chat and chat_prompt.shown_text != chat_prompt.text and "<|im_start|>" in chat_prompt.shown_text
    assert chat_prompt.shown_tokens and chat_prompt.shown_tokens[0].start is not None


def test_re_sampling_every_step_reproduces_the_recorded_tokens(saved):
    loaded = load_session(saved)
    replayed = [item for item, _ in reenact(loaded) if hasattr(item, "reproduced")]
    assert len(replayed) == len(loaded.steps) == 15
    assert all(item.reproduced for item in replayed)
    assert [item.step.config for item in replayed] == [step.config for step in loaded.steps]
    final_generation = list(reenact(loaded))[-1][1]
    assert final_generation.generated_ids == [step.token_id for step in loaded.final_steps()]


def test_top_k_logits_still_reproduce_greedy_tokens(tiny_model_dirs, tmp_path):
    session = record_greedy(tiny_model_dirs["mixtral"])
    full = save_session(session, tmp_path / "full.llmscope")
    top = save_session(session, tmp_path / "top.llmscope", logits="top-k:5")
    loaded = load_session(top, lazy=False)
    assert loaded.logits_kept == 5 and load_session(full).logits_kept is None
    for live_forward, forward in zip(session.forwards, loaded.forwards):
        live_logits, logits = live_forward.full_logits(), forward.full_logits()
        kept = np.isfinite(logits)
        assert kept.sum() == 5
        assert np.array_equal(np.sort(np.flatnonzero(kept)), np.sort(np.argsort(-live_logits)[:5]))
        assert np.array_equal(logits[kept], float16_rounded(live_logits)[kept])
    assert all(item.reproduced for item, _ in reenact(loaded) if hasattr(item, "reproduced"))
    assert top.stat().st_size < full.stat().st_size


def test_a_forward_whose_float16_logits_would_change_a_sample_is_kept_in_float32(tiny_model_dirs, tmp_path):
    session = record_greedy(tiny_model_dirs["llama-gqa"], steps=2)
    token = session.steps[0].token_id
    assert token > 0
    logits = np.full(session.model.vocab_size, -5.0, dtype=np.float32)
    logits[token - 1], logits[token] = 3.0, 3.0001  # float16 rounds both to 3.0: greedy would pick token - 1
    first = session.forwards[0]
    forwards = (dataclasses.replace(first, arrays={**first.arrays, "logits": logits}), *session.forwards[1:])
    loaded = load_session(save_session(dataclasses.replace(session, forwards=forwards), tmp_path / "f32.llmscope"))
    assert loaded.forwards[0].arrays["logits"].dtype == np.float32
    assert loaded.forwards[1].arrays["logits"].dtype == np.float16
    assert all(item.reproduced for item, _ in reenact(loaded) if hasattr(item, "reproduced"))


def test_logits_beyond_float16_range_are_kept_in_float32():
    big = np.array([1e6, -3.0, -np.inf], dtype=np.float32)
    assert float16_or_32(big).dtype == np.float32
    assert float16_or_32(np.array([1.0, -np.inf], dtype=np.float32)).dtype == np.float16


def test_token_table_covers_prompt_fed_chosen_and_top_candidates(recorded):
    session, recorder = recorded
    assert TOKEN_TABLE_CANDIDATES >= live.TOP_CANDIDATES
    wanted = {step.token_id for step in session.steps}
    for event in session.prompts:
        wanted.update(event.prompt_ids)
    for forward in recorder.forwards:
        wanted.update(forward.input_ids)
        wanted.update(int(i) for i in np.argsort(-forward.full_logits())[:TOKEN_TABLE_CANDIDATES])
    assert wanted <= set(session.tokens)
    engine = recorder.engine
    assert all(session.tokens[token_id] == engine.token_info(token_id) for token_id in list(wanted)[:50])


def test_logits_option_is_checked():
    with pytest.raises(ValueError, match="top-k:N"):
        session_module.parse_logits_option("top-k:0")
    assert session_module.parse_logits_option("top-k:12") == 12


# ------------------------------------------------------------------------------------ atomic save
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_never_harms_an_existing_file(recorded, saved_bytes, tmp_path, monkeypatch, error):
    target = tmp_path / "keep.llmscope"
    target.write_bytes(saved_bytes)
    calls = []
    real_write = session_module._write_array

    def failing_write(archive, name, array):
        calls.append(name)
        if len(calls) == 3:
            raise error
        real_write(archive, name, array)

    monkeypatch.setattr(session_module, "_write_array", failing_write)
    with pytest.raises(type(error)):
        save_session(recorded[0], target)
    assert len(calls) == 3  # the failure came midway through the arrays
    assert target.read_bytes() == saved_bytes
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.llmscope"]
    with pytest.raises(type(error)):
        calls.clear()
        save_session(recorded[0], tmp_path / "new.llmscope")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.llmscope"]


# ------------------------------------------------------------------------------- hostile files
def rewrite(
    source: bytes,
    *,
    manifest: Callable[[dict[str, Any]], None] | None = None,
    members: dict[str, bytes | None] | None = None,
) -> bytes:
    """A copy of a session file with the manifest edited in place and members replaced (None drops one)."""
    members = members or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "manifest.json" and manifest is not None:
                document = json.loads(data)
                manifest(document)
                data = json.dumps(document).encode()
            if info.filename in members:
                if members[info.filename] is None:
                    continue
                data = members[info.filename]
            target.writestr(info.filename, data)
    return out.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def load_bytes(data: bytes, tmp_path: Path, **options: Any) -> Session:
    path = tmp_path / "case.llmscope"
    path.write_bytes(data)
    return load_session(path, **options)


def npy_with_header(header: dict[str, Any], payload: bytes) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def declared(good: bytes, name: str) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        return json.loads(archive.read("manifest.json"))["arrays"][name]


def nan_logits(good: bytes) -> bytes:
    spec = declared(good, "forwards/1/logits.npy")
    return rewrite(good, members={"forwards/1/logits.npy": npy_bytes(np.full(spec["shape"], np.nan, spec["dtype"]))})


def set_in(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


HAND_CRAFTED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "non-zip bytes": (lambda good: b"\x89PNG\r\n\x1a\n" + good[:200], "not a zip file"),
    "empty file": (lambda good: b"", "not a zip file"),
    "zip without manifest": (lambda good: rewrite(good, members={"manifest.json": None}), "no manifest.json"),
    "wrong magic": (
        lambda good: rewrite(good, manifest=set_in(["format"], "numpy-archive")),
        "not an llmscope session",
    ),
    "newer schema": (
        lambda good: rewrite(good, manifest=set_in(["format_version"], 3)),
        "made by a newer llmscope (format 3; this one reads up to 2): upgrade llmscope",
    ),
    "bad JSON": (
        lambda good: rewrite(good, members={"manifest.json": b'{"format": "llmscope-session", '}),
        "not valid JSON",
    ),
    "NaN in JSON": (lambda good: rewrite(good, members={"manifest.json": b'{"format": NaN}'}), "not valid JSON"),
    "missing array": (
        lambda good: rewrite(good, members={"forwards/2/attention.npy": None}),
        "forwards/2/attention.npy is missing",
    ),
    "header disagrees with manifest": (
        lambda good: rewrite(good, members={"forwards/0/hidden_norms.npy": npy_bytes(np.zeros(2, "<f4"))}),
        "forwards/0/hidden_norms.npy disagrees with the manifest: the .npy header says dtype <f4 shape [2]",
    ),
    "fortran order": (
        lambda good: rewrite(
            good,
            members={
                "forwards/0/hidden_norms.npy": npy_with_header(
                    {"descr": "<f4", "fortran_order": True, "shape": (3,)}, bytes(12)
                )
            },
        ),
        "(Fortran order)",
    ),
    "shape disagrees with the model": (
        lambda good: rewrite(good, manifest=set_in(["arrays", "forwards/1/attention.npy", "shape"], [2, 4, 1, 99])),
        "forwards[1] needs dtype <f2 shape",
    ),
    "enormous declared size": (
        lambda good: rewrite(good, manifest=set_in(["arrays", "forwards/1/logits.npy", "shape"], [2**40])),
        "above the limit",
    ),
    "bad dtype": (
        lambda good: rewrite(good, manifest=set_in(["arrays", "forwards/1/logits.npy", "dtype"], "|O")),
        "dtype is '|O'",
    ),
    "object array member": (
        lambda good: rewrite(
            good,
            members={
                "forwards/0/hidden_norms.npy": npy_with_header(
                    {"descr": "|O", "fortran_order": False, "shape": (3,)}, b"\x80\x04N." * 3
                )
            },
        ),
        "the .npy header says dtype |O",
    ),
    "extra bytes after the data": (
        lambda good: rewrite(good, members={"forwards/0/hidden_norms.npy": npy_bytes(np.zeros(3, "<f4")) + b"junk"}),
        "bytes but its header and dtype <f4 shape [3] make",
    ),
    "wrong field type": (
        lambda good: rewrite(good, manifest=set_in(["forwards", 0, "position"], "five")),
        "forwards[0].position must be an integer",
    ),
    "impossible rewind": (
        lambda good: rewrite(good, manifest=lambda m: m["events"].insert(3, {"kind": "rewind", "count": 9})),
        "rewinds 9",
    ),
    "unknown event": (
        lambda good: rewrite(good, manifest=lambda m: m["events"].append({"kind": "teleport"})),
        "kind is 'teleport'",
    ),
    "NaN logits": (nan_logits, "forwards/1/logits.npy holds NaN"),
    "id out of range": (
        lambda good: rewrite(good, manifest=set_in(["steps", 0, "token_id"], 10**6)),
        "steps[0].token_id must be in [0, 393]",
    ),
    "missing model field": (
        lambda good: rewrite(good, manifest=lambda m: m["model"].pop("num_layers")),
        "model.num_layers is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(HAND_CRAFTED))
def test_hand_crafted_bad_files_name_their_problem(saved_bytes, tmp_path, case):
    make, fragment = HAND_CRAFTED[case]
    with pytest.raises(SessionFormatError) as raised:
        load_bytes(make(saved_bytes), tmp_path, lazy=False)
    message = str(raised.value)
    assert fragment in message and "\n" not in message and message.startswith("case.llmscope: ")


def test_the_newer_version_message_uses_this_readers_version(saved_bytes, tmp_path):
    data = rewrite(saved_bytes, manifest=set_in(["format_version"], FORMAT_VERSION + 1))
    with pytest.raises(
        SessionFormatError, match=rf"format {FORMAT_VERSION + 1}; this one reads up to {FORMAT_VERSION}"
    ):
        load_bytes(data, tmp_path)


def test_damaged_data_is_a_format_error_at_load_or_first_use(saved_bytes, tmp_path):
    with zipfile.ZipFile(io.BytesIO(saved_bytes)) as archive:
        member = archive.getinfo("forwards/3/logits.npy")
    data = bytearray(saved_bytes)
    data[member.header_offset + 30 + len(member.filename) + member.compress_size // 2] ^= 0x40  # inside the data
    with pytest.raises(SessionFormatError, match="forwards/3/logits.npy is damaged"):
        loaded = load_bytes(bytes(data), tmp_path)  # small members are inflated whole when their header is checked
        loaded.forwards[3].trace()  # larger ones when first used


def test_a_zip_bomb_member_is_refused_before_it_is_inflated(saved_bytes, tmp_path):
    bomb = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(saved_bytes)) as archive,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in archive.infolist():
            if info.filename == "forwards/1/logits.npy":
                with target.open(info.filename, "w") as stream:
                    chunk = bytes(2**20)
                    for _ in range(64):  # 64 MiB of zeros, about 64 KiB compressed
                        stream.write(chunk)
            else:
                target.writestr(info.filename, archive.read(info.filename))
    data = bomb.getvalue()
    assert len(data) < len(saved_bytes) + 200_000
    tracemalloc.start()
    try:
        with pytest.raises(SessionFormatError, match="forwards/1/logits.npy is 67,108,864 bytes uncompressed"):
            load_bytes(data, tmp_path, lazy=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_an_enormous_declared_array_is_refused_without_allocating(saved_bytes, tmp_path):
    def enormous(document: dict[str, Any]) -> None:
        document["model"]["vocab_size"] = 2**25
        for number, _ in enumerate(document["forwards"]):
            document["forwards"][number]["vocab_size"] = 2**25
            document["arrays"][f"forwards/{number}/logits.npy"]["shape"] = [2**25]

    data = rewrite(saved_bytes, manifest=enormous)
    tracemalloc.start()
    try:
        with pytest.raises(SessionFormatError, match="in total|above the limit|bytes but its header"):
            load_bytes(data, tmp_path, lazy=False, limits=Limits(max_total_elements=2**26))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_an_oversized_manifest_is_refused(saved_bytes, tmp_path):
    data = rewrite(saved_bytes, members={"manifest.json": b" " * (2 * 2**20)})
    with pytest.raises(SessionFormatError, match="manifest.json is 2,097,152 bytes, above the limit"):
        load_bytes(data, tmp_path, limits=Limits(max_manifest_bytes=2**20))


def test_a_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(SessionFormatError, match="cannot read the file"):
        load_session(tmp_path / "nowhere.llmscope")


@FUZZ
@given(cut=st.integers(min_value=0), flips=st.lists(st.integers(min_value=0), min_size=0, max_size=6))
def test_truncated_or_bit_flipped_files_load_or_raise_a_format_error(saved_bytes, tmp_path, cut, flips):
    data = bytearray(saved_bytes[: cut % (len(saved_bytes) + 1)] if not flips else saved_bytes)
    for bit in flips:
        if data:
            data[(bit // 8) % len(data)] ^= 1 << (bit % 8)
    tracemalloc.start()
    try:
        session = load_bytes(bytes(data), tmp_path, lazy=False)
    except SessionFormatError as error:
        assert str(error).startswith("case.llmscope: ") and "\n" not in str(error)
    else:  # a flip in a byte nobody reads (a zip timestamp, say) is harmless
        assert len(session.forwards) == 13
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 * 2**20


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_subnormal=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for number, value in enumerate(node[:3]):
            found += _paths(value, (*prefix, number))
    return found


class ManifestPaths(tuple):
    """(manifest, every path into it) with a short repr, so a failing example prints readably."""

    def __repr__(self) -> str:
        return f"<manifest with {len(self[1])} paths>"


@pytest.fixture(scope="module")
def manifest_paths(saved_bytes) -> ManifestPaths:
    with zipfile.ZipFile(io.BytesIO(saved_bytes)) as archive:
        document = json.loads(archive.read("manifest.json"))
    return ManifestPaths((document, _paths(document)))


@FUZZ
@given(choice=st.integers(min_value=0), value=JSON_VALUES, delete=st.booleans())
def test_any_manifest_field_replaced_or_deleted_loads_or_raises_a_format_error(
    saved_bytes, manifest_paths, tmp_path, choice, value, delete
):
    document, paths = manifest_paths
    path = paths[choice % len(paths)]
    note(f"path {path}")

    def edit(target: dict[str, Any]) -> None:
        node = target
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)

    data = rewrite(saved_bytes, manifest=edit)
    try:
        session = load_bytes(data, tmp_path, lazy=False)
    except SessionFormatError as error:
        assert "\n" not in str(error)
    else:
        for _item, _ in reenact(session):  # whatever loads must replay
            pass


def test_prompt_events_round_trip_their_inspected_offsets(saved):
    prompt = load_session(saved).prompts[0]
    assert isinstance(prompt, PromptEvent)
    assert "".join(prompt.shown_text[t.start : t.end] for t in prompt.shown_tokens) == prompt.shown_text


def test_saved_file_is_a_plain_zip_of_a_manifest_and_npy_members(saved):
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
    assert names[0] == "manifest.json" and all(name.endswith(".npy") for name in names[1:])
    assert set(names[1:]) == set(manifest["arrays"])
    assert manifest["format"] == "llmscope-session" and manifest["format_version"] == 1  # no force: still version 1
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(saved).st_mode & 0o777 == 0o666 & ~umask  # a new file gets the umask's mode, as open() gives
