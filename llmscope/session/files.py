"""The session file: a zip of `manifest.json` plus one `.npy` member per recorded array (docs/session-format.md).

Saving is atomic (temp file, fsync, rename). Loading trusts nothing: every manifest field is
type-checked, every array's declared dtype/shape is checked against the model, the zip entry and
the `.npy` header before a byte of data is allocated, sizes are bounded, and pickle is never used.
Imports only numpy and the standard library.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from llmscope.atomic_write import atomic_write, resolve_target
from llmscope.sampler import sample
from llmscope.session import codec
from llmscope.session.arrays import (
    SPARSE_ROLES,
    SPARSE_THRESHOLD,
    dense_attention,
    float16_or_32,
    stored_arrays,
    value_problem,
)
from llmscope.session.checks import Limits, SessionFormatError, one_line
from llmscope.session.recording import (
    ComparisonEvent,
    ForceEvent,
    KnobsEvent,
    PromptEvent,
    RecordedForward,
    RecordedStep,
    ResampleEvent,
    RewindEvent,
    Session,
    SessionEvent,
    SessionRecorder,
    StepEvent,
)
from llmscope.session.zipread import (
    MANIFEST,
    READ_ERRORS,
    ArrayReader,
    LazyArrays,
    check_expansion,
    read_bounded,
    read_manifest,
)

FORMAT_NAME = "llmscope-session"
FORMAT_VERSION = 2
"""Bumped whenever an older reader would misread a newer file; readers refuse versions above their own.
Version 2 added the `force` event; a file without one is still written as version 1 (`format_version_for`)."""
SUFFIX = ".llmscope"
_LOGITS_OPTION = re.compile(r"^top-k:([1-9][0-9]*)$")
ATTENTION_OPTIONS = ("auto", "float16", "sparse")
AUTO_SPARSE_BYTES = 64 * 2**20
"""attention="auto" stores a session sparse when its attention would take more than this in float16."""

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SUFFIX",
    "Limits",
    "Session",
    "SessionRecorder",
    "SessionFormatError",
    "RecordedForward",
    "RecordedStep",
    "SessionEvent",
    "PromptEvent",
    "KnobsEvent",
    "StepEvent",
    "ResampleEvent",
    "ForceEvent",
    "RewindEvent",
    "ComparisonEvent",
    "load_session",
    "save_session",
    "format_version_for",
    "parse_logits_option",
    "ATTENTION_OPTIONS",
]


# -------------------------------------------------------------------------------------- saving
def parse_logits_option(option: str) -> int | None:
    """'full' → None; 'top-k:N' → N (N ≥ 1); anything else raises ValueError naming the allowed forms."""
    if option == "full":
        return None
    if match := _LOGITS_OPTION.match(option):
        return int(match.group(1))
    raise ValueError(f"logits={option!r} is invalid: allowed 'full' or 'top-k:N' with N a positive integer")


def format_version_for(session: Session) -> int:
    """The oldest format version that holds `session`: 2 only with a forced token, so other files stay readable
    by version-1 readers."""
    return 2 if any(isinstance(event, ForceEvent) for event in session.events) else 1


def _float16_breaks_a_sample(session: Session) -> set[int]:
    """Forwards where float16 logits would re-sample a recorded token differently (kept in float32 instead).

    Rounding can move a sampling draw across the boundary between two unlikely tokens; this is rare,
    and checking every recorded sample here is what lets a replay promise to reproduce the recording.
    """
    needs_float32: set[int] = set()
    for number, (prompt_ids, generated) in session.sampling_contexts().items():
        step = session.steps[number]
        forward = session.forwards[step.forward]
        if step.forward in needs_float32 or forward.logits_kept is not None:
            continue
        rounded = float16_or_32(forward.full_logits())
        if rounded.dtype == np.float16:
            result = sample(
                rounded, prompt_ids=prompt_ids, generated_ids=generated, config=step.config, step_index=len(generated)
            )
            if result.token_id != step.token_id:
                needs_float32.add(step.forward)
    return needs_float32


def _sparse_attention(session: Session, option: str) -> bool:
    """Whether attention goes into the file sparse: always for "sparse", never for "float16", and for "auto" when
    the session's attention rows would take more than AUTO_SPARSE_BYTES in float16 (a long context)."""
    if option not in ATTENTION_OPTIONS:
        raise ValueError(f"attention={option!r} is invalid: allowed {', '.join(map(repr, ATTENTION_OPTIONS))}")
    if option != "auto":
        return option == "sparse"
    elements = sum(forward.arrays["attention"].size for forward in session.forwards if "attention" in forward.arrays)
    return elements * 2 > AUTO_SPARSE_BYTES


def _versions() -> dict[str, str]:
    found = {"numpy": np.__version__}
    try:
        found["llmscope"] = metadata.version("llmscope")
    except metadata.PackageNotFoundError:
        pass
    return found


def _write_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """One `.npy` member (deflated); float16 logits still shrink ~12%, attention ~11%."""
    member = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    member.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(member, "w", force_zip64=array.nbytes > 2**31) as stream:
        npy_format.write_array(stream, array, allow_pickle=False)


def save_session(
    session: Session, path: str | os.PathLike[str], *, logits: str = "full", attention: str = "auto"
) -> Path:
    """Write `session` to `path` atomically: a failed save never leaves a partial file or harms an existing one.

    A symlink is written through (the link stays), a non-regular target (a device, a folder) is refused,
    an existing file keeps its mode and a new one gets the umask's (llmscope.atomic_write).

    logits="full" keeps every forward's full vocabulary in float16 (float32 for the rare forward where float16
    would re-sample a recorded token differently); "top-k:N" keeps the N largest with their ids.
    attention="float16" keeps every weight in float16; "sparse" keeps each row's weights ≥ 1/256 of its max and
    the row's remaining mass (docs/session-format.md states the precision); "auto" is float16 unless the
    session's attention would take more than 64 MiB that way (a long context), then sparse.
    """
    keep = parse_logits_option(logits)
    sparse = _sparse_attention(session, attention)
    target = Path(path)
    resolve_target(target)  # refuse a device or folder before encoding anything
    exact = _float16_breaks_a_sample(session) if keep is None else set()
    arrays: dict[str, np.ndarray] = {}
    forward_entries = []
    for number, forward in enumerate(session.forwards):
        kept = forward.logits_kept
        count = None if keep is None and kept is None else min(keep or forward.vocab_size, kept or forward.vocab_size)
        stored = stored_arrays(forward.arrays, forward.full_logits(), keep=count, exact=number in exact, sparse=sparse)
        threshold = SPARSE_THRESHOLD if sparse else 0.0
        arrays.update({codec.array_name(number, role): array for role, array in stored.items()})
        forward_entries.append(codec.encode_forward(forward, sorted(stored), attention_threshold=threshold))
    manifest = {
        "format": FORMAT_NAME,
        "format_version": format_version_for(session),
        "written_by": _versions(),
        **codec.encode_session(session, forward_entries, arrays),
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()

    def write(handle: Any) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            archive.writestr(
                zipfile.ZipInfo(MANIFEST, date_time=(1980, 1, 1, 0, 0, 0)),
                manifest_bytes,
                compress_type=zipfile.ZIP_DEFLATED,
            )
            for name, array in arrays.items():
                _write_array(archive, name, array)

    atomic_write(target, write)
    return target


# ------------------------------------------------------------------------------------- loading
def _check_format(label: str, manifest: dict[str, Any]) -> None:
    if manifest.get("format") != FORMAT_NAME:
        raise SessionFormatError(
            f"{label}: not an llmscope session (format is {manifest.get('format')!r}, expected {FORMAT_NAME!r})"
        )
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SessionFormatError(f"{label}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise SessionFormatError(
            f"{label}: made by a newer llmscope (format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade llmscope"
        )


def load_session(path: str | os.PathLike[str], *, lazy: bool = True, limits: Limits = Limits()) -> Session:
    """Open a session file; any problem raises SessionFormatError with one line naming it.

    Every array's header is checked now; with lazy=True the data are read (and CRC-checked) only when a
    forward's arrays are used, so a long session opens at once. lazy=False reads and checks everything.
    """
    source = Path(path)
    label = source.name
    data = read_bounded(source, label, limits.max_file_bytes)
    if not data.startswith(b"PK"):
        raise SessionFormatError(f"{label}: not an llmscope session (not a zip file)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except READ_ERRORS as error:
        raise SessionFormatError(f"{label}: not an llmscope session (damaged zip: {one_line(error)})") from None
    if len(archive.infolist()) > limits.max_members:
        raise SessionFormatError(
            f"{label}: {len(archive.infolist()):,} zip members, above the limit of {limits.max_members:,}"
        )
    manifest = read_manifest(label, archive, limits)
    _check_format(label, manifest)
    try:
        parsed = codec.decode_session(manifest, limits)
    except SessionFormatError as error:
        raise SessionFormatError(f"{label}: {error}") from None
    model = parsed.session_fields["model"]
    check_expansion(label, parsed.arrays, len(data), limits)
    reader = ArrayReader(label, archive, parsed.arrays)
    for name in parsed.arrays:
        reader.check(name)

    def loader(number: int, fields: dict[str, Any]) -> Callable[[str], np.ndarray]:
        def read(role: str) -> np.ndarray:
            name = codec.array_name(number, role)
            array = reader.read(name)
            if problem := value_problem(role, array, model):
                raise SessionFormatError(f"{label}: array {name} {problem}")
            return array

        def load(role: str) -> np.ndarray:
            if role != "attention" or "attention_counts" not in fields["roles"]:
                return read(role)
            parts = {part: read(part) for part in SPARSE_ROLES}
            try:
                dense = dense_attention(parts, model, fields["attention_layers"], fields["attention_query_start"])
            except ValueError as error:
                raise SessionFormatError(f"{label}: forward {number}'s sparse attention is damaged ({error})") from None
            dense.setflags(write=False)
            return dense

        return load

    forwards = []
    for number, forward in enumerate(parsed.forwards):
        roles = tuple(role for role in forward.roles if role not in SPARSE_ROLES)
        if "attention_counts" in forward.roles:
            roles = tuple(sorted((*roles, "attention")))
        load = loader(number, {**forward.fields, "roles": forward.roles})
        arrays: Mapping[str, np.ndarray] = LazyArrays(load, roles) if lazy else {role: load(role) for role in roles}
        forwards.append(forward.build(arrays))
    return Session(forwards=tuple(forwards), **parsed.session_fields)
