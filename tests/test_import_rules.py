"""DESIGN.md's import rules, checked by importing modules in a fresh interpreter and reading sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {
    "llmscope": ROOT / "llmscope",
    "llmscope.engines": ROOT / "engines",
    "llmscope.widgets": ROOT / "widgets",
}
UI_AND_ENGINE = ("llmscope.engines", "llmscope.widgets", "llmscope.tui", "llmscope.cli")


def all_modules() -> list[str]:
    """Every module of the installed layout, found on disk (so a new module is checked without a list to update)."""
    found = []
    for package, directory in PACKAGE_DIRS.items():
        for path in sorted(directory.rglob("*.py")):
            relative = path.relative_to(directory).with_suffix("")
            parts = [part for part in relative.parts if part != "__init__"]
            if package == "llmscope" and parts and parts[0] in ("engines", "widgets", "models"):
                continue
            found.append(".".join([package, *parts]))
    return found


def torch_free_modules() -> list[str]:
    """Core, session, compare and demo: everything a replay, `--help` and the sampler need."""
    return [m for m in all_modules() if not m.startswith(UI_AND_ENGINE) and m != "llmscope.__main__"]


def loaded_after_import(modules: list[str], code: str = "") -> set[str]:
    script = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + code
        + "\nprint(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_core_modules_import_neither_torch_nor_textual():
    modules = torch_free_modules()
    assert {"llmscope.sampler", "llmscope.session.replay", "llmscope.demo.script", "llmscope.compare.lanes"} <= set(
        modules
    )
    loaded = loaded_after_import(modules)
    assert set(modules) <= loaded  # the check is live: every module really was imported
    assert not top_level(loaded) & {"torch", "transformers", "textual"}


def test_import_linter_contracts_hold():
    """pyproject's import-linter contracts (layers, forbidden imports, no cycles), run as `lint-imports` in the repo.

    engines/ and widgets/ install as llmscope.engines and llmscope.widgets through a package-dir mapping;
    in the repository the symlinks llmscope/engines and llmscope/widgets give import-linter the same layout.
    """
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 5 kept, 0 broken." in result.stdout


def test_help_does_not_import_torch():
    code = (
        "from typer.testing import CliRunner\nfrom llmscope.cli.main import app\n"
        "result = CliRunner().invoke(app, ['generate', '--help'])\nassert result.exit_code == 0, result.output\n"
    )
    assert "torch" not in top_level(loaded_after_import([], code))


def test_engines_never_import_textual_or_rich():
    engines = [m for m in all_modules() if m.startswith("llmscope.engines.")]
    loaded = top_level(loaded_after_import(engines))
    assert "torch" in loaded  # the check is live: these modules really did import
    assert not loaded & {"textual", "rich"}


def test_widgets_never_import_torch_or_transformers():
    widgets = [m for m in all_modules() if m.startswith("llmscope.widgets")]
    assert "llmscope.widgets.attention.pane" in widgets
    loaded = top_level(loaded_after_import(widgets))
    assert not loaded & {"torch", "transformers"}


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources, so a stale build/ or egg-info here cannot add files to it."""
    import shutil

    out, source = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("source") / "llmscope"
    leftovers = ("build", "dist", "*.egg-info", ".venv", ".git", "__pycache__", "*_cache", ".hypothesis", "tests")
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*leftovers))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("llmscope-*.whl"))


def test_wheel_has_one_top_level_package(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"llmscope"}
    assert "llmscope/engines/hf.py" in names and "llmscope/widgets/__init__.py" in names
    assert "llmscope/sampler.py" in names
    missing = [
        module for module in all_modules() if not any(name.startswith(module.replace(".", "/")) for name in names)
    ]
    assert not missing, f"modules left out of the wheel (add their packages to pyproject's list): {missing}"


def test_wheel_ships_the_recorded_sessions(built_wheel):
    """sessions/ installs as llmscope.sessions with its index and every session file the index lists."""
    names = zipfile.ZipFile(built_wheel).namelist()
    assert "llmscope/sessions/__init__.py" in names and "llmscope/sessions/index.json" in names
    index = json.loads((ROOT / "sessions" / "index.json").read_text(encoding="utf-8"))["sessions"]
    assert index and all(f"llmscope/sessions/{entry['file']}" in names for entry in index)


def test_wheel_ships_models_demos_and_styles(built_wheel):
    """The trained tiny models, the demo scripts and the app's stylesheet are package data of the wheel."""
    names = set(zipfile.ZipFile(built_wheel).namelist())
    assert "llmscope/tui/app.tcss" in names and "llmscope/py.typed" in names
    demos = sorted(p.name for p in (ROOT / "sessions" / "demos").glob("*.toml"))
    assert demos and all(f"llmscope/sessions/demos/{demo}" in names for demo in demos)
    shipped = sorted(p.parent.name for p in (ROOT / "llmscope" / "models").glob("*/config.json"))
    for model in shipped:
        for member in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"):
            assert f"llmscope/models/{model}/{member}" in names, f"{model}/{member} missing from the wheel"
