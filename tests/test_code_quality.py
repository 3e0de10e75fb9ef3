"""The project's own rules, run with the suite: ruff's lint and format checks and mypy over the whole tree."""

from __future__ import annotations

import shutil
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


def installed_layout(tmp_path: Path) -> Path:
    """llmscope/ with engines/ and widgets/ inside it, as the wheel installs them.

    The package-dir mapping that makes them llmscope.engines and llmscope.widgets is invisible to mypy, which
    would otherwise type every cross-package import as Any and check nothing across the layers.
    """
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "models")
    shutil.copytree(ROOT / "llmscope", tree / "llmscope", ignore=ignore)
    shutil.copytree(ROOT / "engines", tree / "llmscope" / "engines", ignore=ignore)
    shutil.copytree(ROOT / "widgets", tree / "llmscope" / "widgets", ignore=ignore)
    return tree


def test_mypy_is_clean(tmp_path: Path):
    """mypy over the installed layout with pyproject's settings; a private cache keeps each run independent."""
    tree = installed_layout(tmp_path)
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run(
        [str(mypy), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), "llmscope"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Success" in result.stdout
