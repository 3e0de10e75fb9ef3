"""The project's own rules, run with the suite: ruff's lint and format checks and mypy over the whole tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name(args[0])
    return subprocess.run([str(tool), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean():
    result = run_tool("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_clean():
    result = run_tool("ruff", "format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_is_clean(tmp_path: Path):
    """mypy over llmscope/ as the wheel installs it (engines/ and widgets/ inside it, through the repository's
    symlinks), so cross-package imports are typed, not Any; a private cache keeps each run independent."""
    result = run_tool("mypy", "--cache-dir", str(tmp_path / "cache"))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Success" in result.stdout
