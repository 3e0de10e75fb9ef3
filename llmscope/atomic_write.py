"""Atomic file writes that respect what is already there: links, devices, modes and the umask.

A save writes a temporary file beside its target and renames it over the target, so a crash never
leaves half a file. The target is the file a symlink points to (the link stays a link); anything
that is not a regular file (a device, a folder, a pipe) is refused rather than replaced; an
existing file keeps its mode (and owner, where allowed); a new file gets 0666 minus the umask,
as `open()` would give it. Standard library only.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["UnsafeTargetError", "atomic_write", "atomic_write_text", "check_writable", "resolve_target"]


class UnsafeTargetError(ValueError):
    """The path cannot be saved to safely (not a regular file, no such folder, not writable)."""


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a save to `path` must replace: symlinks followed; refused unless a regular file or absent."""
    given = Path(path).expanduser()
    target = Path(os.path.realpath(given))
    try:
        status = target.stat()
    except FileNotFoundError:
        return target
    except OSError as error:
        raise UnsafeTargetError(f"cannot save to {given}: {error.strerror or error}") from None
    if not stat.S_ISREG(status.st_mode):
        kind = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file (a device, pipe or socket)"
        raise UnsafeTargetError(f"cannot save to {given}: {target} is {kind}")
    return target


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, before any work, that a save to `path` can succeed; returns the resolved target."""
    given = Path(path).expanduser()
    target = resolve_target(given)
    folder = target.parent
    if not folder.is_dir():
        raise UnsafeTargetError(f"cannot save to {given}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UnsafeTargetError(f"cannot save to {given}: folder {folder} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise UnsafeTargetError(f"cannot save to {given}: {target} is not writable")
    return target


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """An exclusive new file beside the target, created with mode 0666 so the kernel applies the umask."""
    for _ in range(100):
        candidate = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise OSError(f"cannot create a temporary file in {folder}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(handle)` (its result is ignored) on a temporary file, fsync it and rename it over the resolved target."""
    target = resolve_target(path)
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    descriptor, temp = _create_temp(target.parent, target.name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if existing is not None:
                _keep_identity(handle.fileno(), existing)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """atomic_write for a text file."""
    data = text.encode(encoding)
    return atomic_write(path, lambda handle: handle.write(data) and None)


def _keep_identity(descriptor: int, existing: os.stat_result) -> None:
    """The replacement keeps the old file's mode, and its owner when this process may set it."""
    if hasattr(os, "fchown") and (existing.st_uid, existing.st_gid) != (os.getuid(), os.getgid()):
        try:
            os.fchown(descriptor, existing.st_uid, existing.st_gid)
        except OSError:
            pass  # only root may give a file away; the mode is kept either way
    os.fchmod(descriptor, stat.S_IMODE(existing.st_mode))  # after chown, which may clear set-id bits


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
