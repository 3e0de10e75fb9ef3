"""Reading a session zip without trusting it: bounded file and manifest reads, and `.npy` members checked against
their declarations before a byte of data is allocated (no pickle). Imports only numpy and the standard library.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from llmscope.session.arrays import ArraySpec
from llmscope.session.checks import Limits, SessionFormatError, one_line

MANIFEST = "manifest.json"

READ_ERRORS = (
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


class ArrayReader:
    """Reads declared `.npy` members from the file's bytes, checking each header against its declaration."""

    def __init__(self, label: str, archive: zipfile.ZipFile, declared: dict[str, ArraySpec]) -> None:
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
            except READ_ERRORS as error:
                raise self._fail(name, f"is damaged ({one_line(error)})") from None
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
        except READ_ERRORS as error:
            raise self._fail(name, f"cannot be opened ({one_line(error)})") from None

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
        except READ_ERRORS as error:
            raise self._fail(name, f"is damaged ({one_line(error)})") from None
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


class LazyArrays(Mapping[str, np.ndarray]):
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


def read_manifest(label: str, archive: zipfile.ZipFile, limits: Limits) -> dict[str, Any]:
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
    except READ_ERRORS as error:
        raise SessionFormatError(f"{label}: {MANIFEST} is damaged ({one_line(error)})") from None
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise SessionFormatError(f"{label}: {MANIFEST} is not valid JSON ({one_line(error)})") from None
    if not isinstance(manifest, dict):
        raise SessionFormatError(f"{label}: {MANIFEST} is not a JSON object")
    return manifest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a session manifest")


def read_bounded(source: Path, label: str, max_bytes: int) -> bytes:
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
        raise SessionFormatError(f"{label}: cannot read the file ({error.strerror or one_line(error)})") from None
    if len(data) > status.st_size:
        raise SessionFormatError(f"{label}: the file changed while being read")
    return data


def check_expansion(label: str, arrays: Mapping[str, ArraySpec], file_bytes: int, limits: Limits) -> None:
    """Declared array bytes against the file's size: a small zip declaring gigabytes of zeros is refused unread."""
    declared = sum(spec.nbytes for spec in arrays.values())
    allowed = max(limits.expansion_floor_bytes, limits.max_expansion * file_bytes)
    if declared > allowed:
        raise SessionFormatError(
            f"{label}: its arrays declare {declared:,} bytes from a {file_bytes:,}-byte file "
            f"(more than {limits.max_expansion}× its size): refusing to expand it"
        )
