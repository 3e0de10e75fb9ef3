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
import stat
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from llmscope.atomic_write import atomic_write, resolve_target
from llmscope.sampler import sample
from llmscope.session import codec
from llmscope.session.codec import Limits, SessionFormatError
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

FORMAT_NAME = "llmscope-session"
FORMAT_VERSION = 2
"""Bumped whenever an older reader would misread a newer file; readers refuse versions above their own.
Version 2 added the `force` event; a file without one is still written as version 1 (`format_version_for`)."""
SUFFIX = ".llmscope"
MANIFEST = "manifest.json"
_LOGITS_OPTION = re.compile(r"^top-k:([1-9][0-9]*)$")
_FLOAT16_MAX = float(np.finfo(np.float16).max)

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


def _float16_or_32(array: np.ndarray) -> np.ndarray:
    """float16 when every finite value fits (logits usually do), else float32 so nothing turns into inf."""
    values = np.asarray(array, dtype=np.float32)
    finite = values[np.isfinite(values)]
    return values.astype(np.float16) if finite.size == 0 or np.abs(finite).max() <= _FLOAT16_MAX else values


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
        rounded = _float16_or_32(forward.full_logits())
        if rounded.dtype == np.float16:
            result = sample(
                rounded, prompt_ids=prompt_ids, generated_ids=generated, config=step.config, step_index=len(generated)
            )
            if result.token_id != step.token_id:
                needs_float32.add(step.forward)
    return needs_float32


def _stored_arrays(forward: RecordedForward, keep: int | None, exact: bool) -> dict[str, np.ndarray]:
    """The arrays of one forward as they go into the file (dtypes per docs/session-format.md)."""
    arrays = forward.arrays
    stored: dict[str, np.ndarray] = {}
    logits = forward.full_logits()
    if keep is None and forward.logits_kept is None:
        stored["logits"] = logits if exact else _float16_or_32(logits)
    else:
        count = min(keep or forward.vocab_size, forward.logits_kept or forward.vocab_size, logits.shape[0])
        top = np.argpartition(-logits, count - 1)[:count]
        top = top[np.argsort(-logits[top], kind="stable")]
        stored["logits"] = _float16_or_32(logits[top])
        stored["logit_ids"] = top.astype("<i4")
    if "attention" in arrays:
        stored["attention"] = np.asarray(arrays["attention"], dtype="<f2")
    if "hidden_norms" in arrays:
        stored["hidden_norms"] = np.asarray(arrays["hidden_norms"], dtype="<f4")
    if forward.has_router:
        stored["router_logits"] = np.asarray(arrays["router_logits"], dtype="<f4")
        stored["router_experts"] = np.asarray(arrays["router_experts"], dtype="<i4")
        stored["router_weights"] = np.asarray(arrays["router_weights"], dtype="<f4")
    return {
        role: np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        for role, array in stored.items()
    }


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


def save_session(session: Session, path: str | os.PathLike[str], *, logits: str = "full") -> Path:
    """Write `session` to `path` atomically: a failed save never leaves a partial file or harms an existing one.

    A symlink is written through (the link stays), a non-regular target (a device, a folder) is refused,
    an existing file keeps its mode and a new one gets the umask's (llmscope.atomic_write).

    logits="full" keeps every forward's full vocabulary in float16 (float32 for the rare forward where float16
    would re-sample a recorded token differently); "top-k:N" keeps the N largest with their ids.
    """
    keep = parse_logits_option(logits)
    target = Path(path)
    resolve_target(target)  # refuse a device or folder before encoding anything
    exact = _float16_breaks_a_sample(session) if keep is None else set()
    arrays: dict[str, np.ndarray] = {}
    forward_entries = []
    for number, forward in enumerate(session.forwards):
        stored = _stored_arrays(forward, keep, number in exact)
        arrays.update({codec.array_name(number, role): array for role, array in stored.items()})
        forward_entries.append(codec.encode_forward(forward, sorted(stored)))
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
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    KeyError,
    SyntaxError,
    RecursionError,
    MemoryError,
    TypeError,
    zlib.error,
    struct.error,
    tokenize.TokenError,
    LookupError,
    AttributeError,
)
"""What zipfile, zlib and numpy raise on damaged bytes (numpy parses a `.npy` header with the tokenizer)."""


class _ArrayReader:
    """Reads declared `.npy` members from the file's bytes, checking each header against its declaration."""

    def __init__(self, label: str, archive: zipfile.ZipFile, declared: dict[str, codec.ArraySpec]) -> None:
        self.label = label
        self.archive = archive
        self.declared = declared

    def _fail(self, name: str, problem: str) -> SessionFormatError:
        return SessionFormatError(f"{self.label}: array {name} {problem}")

    def check(self, name: str) -> None:
        """Check the member exists, its size matches the declaration and its `.npy` header agrees."""
        with self._open(name) as stream:
            self._header(name, stream)

    def read(self, name: str) -> np.ndarray:
        """The array, loaded with np.load(allow_pickle=False) after its header and size were checked."""
        with self._open(name) as stream:
            self._header(name, stream)
            stream.seek(0)
            try:
                array = np.load(stream, allow_pickle=False)
                trailing = stream.read(1)
            except _READ_ERRORS as error:
                raise self._fail(name, f"is damaged ({_one_line(error)})") from None
        if trailing:
            raise self._fail(name, "has bytes after its data")
        array.setflags(write=False)
        return array

    def _open(self, name: str) -> IO[bytes]:
        spec = self.declared[name]
        try:
            member = self.archive.getinfo(name)
        except KeyError:
            raise self._fail(name, "is missing from the file") from None
        if member.file_size > spec.nbytes + 65_536:
            raise self._fail(
                name,
                f"is {member.file_size:,} bytes uncompressed but {spec.describe()} needs "
                f"{spec.nbytes:,} (plus a header)",
            )
        try:
            return self.archive.open(member)
        except _READ_ERRORS as error:
            raise self._fail(name, f"cannot be opened ({_one_line(error)})") from None

    def _header(self, name: str, stream: IO[bytes]) -> None:
        spec = self.declared[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                version = npy_format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_2_0(stream)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            header_end = stream.tell()
        except _READ_ERRORS as error:
            raise self._fail(name, f"is damaged ({_one_line(error)})") from None
        if dtype.str != spec.dtype or tuple(shape) != spec.shape or fortran_order:
            found = f"dtype {dtype.str} shape {list(shape)}" + (" (Fortran order)" if fortran_order else "")
            raise self._fail(
                name, f"disagrees with the manifest: the .npy header says {found}, the manifest {spec.describe()}"
            )
        expected = header_end + spec.nbytes
        if self.archive.getinfo(name).file_size != expected:
            raise self._fail(
                name,
                f"is {self.archive.getinfo(name).file_size:,} bytes but its header and "
                f"{spec.describe()} make {expected:,}",
            )


class _LazyArrays(Mapping[str, np.ndarray]):
    """A forward's arrays by role, each read (and checked) from the file's bytes only when asked for."""

    def __init__(self, load: Callable[[str], np.ndarray], roles: tuple[str, ...]) -> None:
        self._load = load
        self._roles = roles

    def __getitem__(self, role: str) -> np.ndarray:
        if role not in self._roles:
            raise KeyError(role)
        return self._load(role)

    def __iter__(self) -> Iterator[str]:
        return iter(self._roles)

    def __len__(self) -> int:
        return len(self._roles)

    def __contains__(self, role: object) -> bool:
        return role in self._roles


def _one_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _read_manifest(label: str, archive: zipfile.ZipFile, limits: Limits) -> dict[str, Any]:
    try:
        member = archive.getinfo(MANIFEST)
    except KeyError:
        raise SessionFormatError(f"{label}: not an llmscope session (no {MANIFEST} in the zip)") from None
    if member.file_size > limits.max_manifest_bytes:
        raise SessionFormatError(
            f"{label}: {MANIFEST} is {member.file_size:,} bytes, above the limit of {limits.max_manifest_bytes:,}"
        )
    try:
        with archive.open(member) as stream:
            raw = stream.read(limits.max_manifest_bytes + 1)
    except _READ_ERRORS as error:
        raise SessionFormatError(f"{label}: {MANIFEST} is damaged ({_one_line(error)})") from None
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise SessionFormatError(f"{label}: {MANIFEST} is not valid JSON ({_one_line(error)})") from None
    if not isinstance(manifest, dict):
        raise SessionFormatError(f"{label}: {MANIFEST} is not a JSON object")
    return manifest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a session manifest")


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


def _read_bounded(source: Path, label: str, max_bytes: int) -> bytes:
    """The file's bytes, once it is known to be a regular file of at most `max_bytes` (a sparse 8 GiB file,
    a FIFO or /dev/zero is refused before anything is read)."""
    try:
        with source.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise SessionFormatError(f"{label}: not a regular file")
            if status.st_size > max_bytes:
                raise SessionFormatError(
                    f"{label}: the file is {status.st_size:,} bytes, above the limit of {max_bytes:,}"
                )
            data = handle.read(status.st_size + 1)  # read(n) reserves n bytes up front: ask for what is there
    except OSError as error:
        raise SessionFormatError(f"{label}: cannot read the file ({error.strerror or _one_line(error)})") from None
    if len(data) > status.st_size:
        raise SessionFormatError(f"{label}: the file changed while being read")
    return data


def _check_expansion(label: str, arrays: Mapping[str, codec.ArraySpec], file_bytes: int, limits: Limits) -> None:
    """Declared array bytes against the file's size: a small zip declaring gigabytes of zeros is refused unread."""
    declared = sum(spec.nbytes for spec in arrays.values())
    allowed = max(limits.expansion_floor_bytes, limits.max_expansion * file_bytes)
    if declared > allowed:
        raise SessionFormatError(
            f"{label}: its arrays declare {declared:,} bytes from a {file_bytes:,}-byte file "
            f"(more than {limits.max_expansion}× its size): refusing to expand it"
        )


def load_session(path: str | os.PathLike[str], *, lazy: bool = True, limits: Limits = Limits()) -> Session:
    """Open a session file; any problem raises SessionFormatError with one line naming it.

    Every array's header is checked now; with lazy=True the data are read (and CRC-checked) only when a
    forward's arrays are used, so a long session opens at once. lazy=False reads and checks everything.
    """
    source = Path(path)
    label = source.name
    data = _read_bounded(source, label, limits.max_file_bytes)
    if not data.startswith(b"PK"):
        raise SessionFormatError(f"{label}: not an llmscope session (not a zip file)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _READ_ERRORS as error:
        raise SessionFormatError(f"{label}: not an llmscope session (damaged zip: {_one_line(error)})") from None
    if len(archive.infolist()) > limits.max_members:
        raise SessionFormatError(
            f"{label}: {len(archive.infolist()):,} zip members, above the limit of {limits.max_members:,}"
        )
    manifest = _read_manifest(label, archive, limits)
    _check_format(label, manifest)
    try:
        parsed = codec.decode_session(manifest, limits)
    except SessionFormatError as error:
        raise SessionFormatError(f"{label}: {error}") from None
    model = parsed.session_fields["model"]
    _check_expansion(label, parsed.arrays, len(data), limits)
    reader = _ArrayReader(label, archive, parsed.arrays)
    for name in parsed.arrays:
        reader.check(name)

    def loader(number: int) -> Callable[[str], np.ndarray]:
        def load(role: str) -> np.ndarray:
            name = codec.array_name(number, role)
            array = reader.read(name)
            if problem := codec.value_problem(role, array, model):
                raise SessionFormatError(f"{label}: array {name} {problem}")
            return array

        return load

    forwards = []
    for number, forward in enumerate(parsed.forwards):
        load = loader(number)
        arrays: Mapping[str, np.ndarray] = (
            _LazyArrays(load, forward.roles) if lazy else {role: load(role) for role in forward.roles}
        )
        forwards.append(forward.build(arrays))
    return Session(forwards=tuple(forwards), **parsed.session_fields)
