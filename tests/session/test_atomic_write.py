"""Saves write through symlinks, refuse devices and folders, keep an existing file's mode and honour the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from session_helpers import record_greedy

from llmscope.atomic_write import UnsafeTargetError, atomic_write_text, check_writable
from llmscope.session.files import load_session, save_session


@pytest.fixture(scope="module")
def session(tiny_model_dirs):
    return record_greedy(tiny_model_dirs["llama-gqa"], steps=2)


def test_a_symlink_is_written_through_and_stays_a_link(session, tmp_path: Path):
    real = tmp_path / "real.llmscope"
    real.write_bytes(b"old")
    link = tmp_path / "link.llmscope"
    link.symlink_to(real)
    save_session(session, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_session(real).steps  # the target holds the new session


def test_devices_and_folders_are_refused_untouched(session, tmp_path: Path):
    for target in (Path("/dev/null"), tmp_path):
        with pytest.raises(UnsafeTargetError, match="cannot save"):
            save_session(session, target)
        with pytest.raises(UnsafeTargetError):
            check_writable(target)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    link = tmp_path / "null.llmscope"
    link.symlink_to("/dev/null")
    with pytest.raises(UnsafeTargetError, match="not a regular file"):
        atomic_write_text(link, "x")
    assert link.is_symlink()


def test_an_existing_files_mode_is_kept(session, tmp_path: Path):
    private = tmp_path / "private.llmscope"
    private.write_bytes(b"")
    private.chmod(0o600)
    save_session(session, private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_new_file_honours_the_umask(tmp_path: Path):
    """In a child process, so the process-wide umask of the test run is never changed."""
    script = (
        "import os, sys; os.umask(0o077); from llmscope.atomic_write import atomic_write_text;"
        "atomic_write_text(sys.argv[1], 'x'); print(oct(os.stat(sys.argv[1]).st_mode & 0o777))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "new.txt")], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "0o600"


def test_no_temporary_file_is_left_when_writing_fails(tmp_path: Path):
    def broken(handle):
        raise OSError("disk full")

    from llmscope.atomic_write import atomic_write

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "x.bin", broken)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_names_what_is_wrong(tmp_path: Path):
    with pytest.raises(UnsafeTargetError, match="does not exist"):
        check_writable(tmp_path / "missing" / "x.llmscope")
    assert check_writable(tmp_path / "fine.llmscope") == tmp_path / "fine.llmscope"
