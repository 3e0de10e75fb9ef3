"""Hostile session files: every declared size is checked before anything is allocated or read.

Each attack from issue 16 is a regression test here (a 36 KB file declaring a 10⁹ vocabulary, a
sparse 8 GiB file, a FIFO, a zip of zeros declaring hundreds of MiB, a head count that does not
divide, a `.npy` header with an unclosed parenthesis, a damaged array during a replay), plus a
hypothesis fuzz over `.npy` member headers and over the model's size fields, each under a memory bound.
"""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_helpers import record_greedy

from llmscope.engine_api import EngineError
from llmscope.generation import Generation
from llmscope.registry import builtin_model_dir
from llmscope.sampler import preset
from llmscope.session.arrays import SPARSE_ROLES
from llmscope.session.files import SessionFormatError, load_session, save_session
from llmscope.session.replay import ReplayEngine, reenact

FUZZ = settings(
    max_examples=int(os.environ.get("LLMSCOPE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize="LLMSCOPE_FUZZ_EXAMPLES" not in os.environ,  # the suite replays the same examples; a hunt explores
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
MEMORY_BOUND = 24 * 2**20
"""Peak Python/numpy allocation allowed while a hostile file is refused (the test files are ~10 KB)."""


class Files(dict):
    """Saved sessions by logits option, with a short repr so a failing example prints readably."""

    def __repr__(self) -> str:
        return f"<sessions {sorted(self)}>"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Files:
    """One small greedy session of the shipped tiny-dense (vocabulary 4,096), with full and with top-5 logits, and
    with full logits and sparse attention."""
    directory = builtin_model_dir("tiny-dense")
    assert directory is not None, "tiny-dense ships with llmscope"
    session = record_greedy(directory, steps=4)
    folder = tmp_path_factory.mktemp("hostile")
    files = Files(
        (logits, save_session(session, folder / f"{logits.replace(':', '')}.llmscope", logits=logits).read_bytes())
        for logits in ("full", "top-k:5")
    )
    files["sparse"] = save_session(session, folder / "sparse.llmscope", attention="sparse").read_bytes()
    return files


def rewrite(source: bytes, *, manifest: Callable[[dict[str, Any]], None] | None = None, members=None) -> bytes:
    """A copy of a session file with the manifest edited and members replaced."""
    members = members or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "manifest.json" and manifest is not None:
                document = json.loads(data)
                manifest(document)
                data = json.dumps(document).encode()
            target.writestr(info.filename, members.get(info.filename, data))
    return out.getvalue()


def refused(data: bytes, tmp_path: Path, match: str, **options: Any) -> str:
    """Load `data` and expect a one-line SessionFormatError matching `match`, allocating little meanwhile."""
    path = tmp_path / "hostile.llmscope"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(SessionFormatError, match=match) as caught:
            load_session(path, lazy=False, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND and "\n" not in str(caught.value)
    return str(caught.value)


def test_a_billion_word_vocabulary_with_top_k_logits_is_refused_before_allocating(good, tmp_path):
    def huge(document: dict[str, Any]) -> None:
        document["model"]["vocab_size"] = 10**9
        for forward in document["forwards"]:
            forward["vocab_size"] = 10**9

    data = rewrite(good["top-k:5"], manifest=huge)
    assert len(data) < 64_000
    refused(data, tmp_path, r"model.vocab_size is 1,000,000,000, above the limit")


def test_a_zip_of_zeros_declaring_hundreds_of_mib_is_refused_unread(good, tmp_path):
    """Consistent declarations and headers, float32 logits of zeros over a 1 Mi vocabulary: ~20 MiB each, ~100 KB."""
    vocab = 2**20
    document = json.loads(zipfile.ZipFile(io.BytesIO(good["full"])).read("manifest.json"))
    members: dict[str, bytes] = {}
    for number, forward in enumerate(document["forwards"]):
        forward["vocab_size"] = vocab
        name = f"forwards/{number}/logits.npy"
        document["arrays"][name] = {"dtype": "<f4", "shape": [vocab]}
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.zeros(vocab, "<f4"))
        members[name] = buffer.getvalue()
    document["model"]["vocab_size"] = vocab
    members["manifest.json"] = json.dumps(document).encode()
    data = rewrite(good["full"], members=members)
    assert len(data) < 2**20
    message = refused(data, tmp_path, r"declare [\d,]+ bytes from a [\d,]+-byte file")
    assert "refusing to expand" in message


def test_a_sparse_8_gib_file_is_refused_before_reading(tmp_path):
    sparse = tmp_path / "sparse.llmscope"
    with sparse.open("wb") as handle:
        handle.truncate(8 * 2**30)
    started = time.monotonic()
    tracemalloc.start()
    try:
        with pytest.raises(SessionFormatError, match=r"8,589,934,592 bytes, above the limit"):
            load_session(sparse)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20 and time.monotonic() - started < 5


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.llmscope"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # keeps open() of the reader from blocking
    try:
        with pytest.raises(SessionFormatError, match="not a regular file"):
            load_session(fifo)
    finally:
        os.close(writer)


def test_heads_that_do_not_divide_are_refused_at_load(good, tmp_path):
    def odd(document: dict[str, Any]) -> None:
        document["model"]["num_kv_heads"] = 3  # 4 query heads: a GQA group of 4/3 heads
        document["model"]["num_heads"] = 4

    refused(rewrite(good["full"], manifest=odd), tmp_path, r"num_kv_heads is 3, which does not divide num_heads")


def test_a_npy_header_with_an_unclosed_parenthesis_is_a_format_error(good, tmp_path):
    header = b"{'descr': '<f2', 'fortran_order': False, 'shape': (4096, }".ljust(118) + b"\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(8192)
    data = rewrite(good["full"], members={"forwards/0/logits.npy": member})
    refused(data, tmp_path, r"forwards/0/logits.npy is damaged")


def test_a_damaged_array_during_a_replay_says_damaged_not_diverged(good, tmp_path):
    """A CRC failure met while replaying is named as such; the replay does not then claim a divergence."""
    name = "forwards/2/logits.npy"
    with zipfile.ZipFile(io.BytesIO(good["full"])) as archive:
        stored = io.BytesIO()  # the member stored uncompressed, so its bytes can be flipped in place
        with zipfile.ZipFile(stored, "w") as target:
            for info in archive.infolist():
                compression = zipfile.ZIP_STORED if info.filename == name else zipfile.ZIP_DEFLATED
                target.writestr(info.filename, archive.read(info.filename), compress_type=compression)
    raw = bytearray(stored.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    assert info.file_size > 6000  # the header check reads the first 4 KiB only; the flip lies beyond
    for offset in range(5000, 5040):
        raw[start + offset] ^= 0x01
    path = tmp_path / "damaged.llmscope"
    path.write_bytes(bytes(raw))
    session = load_session(path)  # lazy: headers are fine, the data is checked when used
    engine = ReplayEngine(session)
    generation = Generation(engine, preset("greedy"))
    generation.start(session.prompts[0].prompt_ids)
    generation.advance()
    for _ in range(2):  # the second try must not report a divergence from a path moved by the first failure
        with pytest.raises(EngineError, match="damaged") as caught:
            generation.advance()
        assert "diverged" not in str(caught.value)
    with pytest.raises(EngineError, match="damaged"):
        for _item in reenact(session):
            pass


# ---------------------------------------------------------------------------------------- fuzz
NPY_HEADERS = st.one_of(
    st.binary(max_size=160),
    st.builds(
        lambda descr, shape, order: repr({"descr": descr, "fortran_order": order, "shape": shape}).encode(),
        st.sampled_from(["<f2", "<f4", "<i4", "|O", "<U8", "V8", ">f2", "<f8"]),
        st.one_of(
            st.tuples(st.integers(min_value=-(2**40), max_value=2**40)),
            st.lists(st.integers(min_value=0, max_value=2**31), max_size=5).map(tuple),
        ),
        st.booleans(),
    ),
    st.text(alphabet="{}()[]':,0123456789 descrshapefortran_orderTrueFalse<f2", max_size=120).map(str.encode),
)


@FUZZ
@given(header=NPY_HEADERS, version=st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x09"]))
def test_any_npy_member_header_loads_or_raises_one_line(good, tmp_path, header, version):
    padded = header.ljust(118) + b"\n"
    size = len(padded).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    member = b"\x93NUMPY" + version + size + padded + bytes(8192)
    data = rewrite(good["full"], members={"forwards/1/logits.npy": member})
    path = tmp_path / "fuzz.llmscope"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        load_session(path, lazy=False)
    except SessionFormatError as error:
        assert "\n" not in str(error)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


SIZES = st.one_of(
    st.integers(min_value=-3, max_value=8),
    st.sampled_from([2**20, 2**20 + 1, 2**24, 2**31, 10**9, 2**62, 2**63]),
)


@FUZZ
@given(
    field=st.sampled_from(
        ["vocab_size", "num_layers", "num_heads", "num_kv_heads", "max_context", "num_experts", "head_dim"]
    ),
    value=SIZES,
    top_k=st.booleans(),
)
def test_any_declared_model_size_loads_and_replays_or_is_refused_in_bounded_memory(good, tmp_path, field, value, top_k):
    def edit(document: dict[str, Any]) -> None:
        document["model"][field] = value
        if field == "vocab_size":
            for forward in document["forwards"]:
                forward["vocab_size"] = value

    path = tmp_path / "sizes.llmscope"
    path.write_bytes(rewrite(good["top-k:5" if top_k else "full"], manifest=edit))
    tracemalloc.start()
    try:
        session = load_session(path, lazy=False)
        for _item in reenact(session):
            pass
    except SessionFormatError as error:
        assert "\n" not in str(error)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 160 * 2**20  # the largest allowed vocabulary (2**20) re-sampled with top-k logits: ~75 MiB


@FUZZ
@given(
    role=st.sampled_from(SPARSE_ROLES), seed=st.integers(min_value=0, max_value=2**32 - 1), forward=st.integers(0, 3)
)
def test_any_sparse_attention_data_loads_and_replays_or_raises_one_line(good, tmp_path, role, seed, forward):
    """Random counts, keys, weights, rests and block shares (of the declared dtype and shape) in one forward."""
    name = f"forwards/{forward}/{role}.npy"
    with zipfile.ZipFile(io.BytesIO(good["sparse"])) as archive:
        original = np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
    rng = np.random.default_rng(seed)
    if original.dtype.kind == "f":
        values = rng.choice(np.array([0.0, 1e-3, 0.25, 1.0, 1.5, -1.0, np.nan, np.inf]), size=original.shape)
    else:
        values = rng.integers(-2, 2 * int(original.max(initial=1)) + 3, size=original.shape)
    buffer = io.BytesIO()
    np.save(buffer, values.astype(original.dtype), allow_pickle=False)
    path = tmp_path / "sparse-fuzz.llmscope"
    path.write_bytes(rewrite(good["sparse"], members={name: buffer.getvalue()}))
    tracemalloc.start()
    try:
        for _item in reenact(load_session(path, lazy=False)):
            pass
    except SessionFormatError as error:
        assert "\n" not in str(error) and name.rsplit("/", 1)[0].replace("forwards/", "") in str(error)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


def test_a_non_string_array_role_is_a_format_error(good, tmp_path):
    """Found by the manifest fuzz: a list where a role name belongs raised TypeError (unhashable) instead."""

    def listed(document: dict[str, Any]) -> None:
        document["forwards"][0]["arrays"][0] = []

    message = refused(rewrite(good["full"], manifest=listed), tmp_path, r"forwards\[0\]\.arrays\[0\] must be a string")
    assert "got []" in message
