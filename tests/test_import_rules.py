"""DESIGN.md's import rules, checked by importing modules in a fresh interpreter and reading sys.modules."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_WITHOUT_TORCH = ["llmscope.trace", "llmscope.sampler", "llmscope.registry", "llmscope.engine_api",
                      "llmscope.generation", "llmscope.kvcalc", "llmscope.step_report", "llmscope.cli",
                      "llmscope.recording", "llmscope.session_codec", "llmscope.session", "llmscope.replay"]


def loaded_after_import(modules: list[str], code: str = "") -> set[str]:
    script = "import json, sys\n" + "".join(f"import {m}\n" for m in modules) + code + "\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def test_core_modules_import_neither_torch_nor_textual():
    loaded = top_level(loaded_after_import(CORE_WITHOUT_TORCH))
    assert not loaded & {"torch", "transformers", "textual"}


def test_help_does_not_import_torch():
    code = ("from typer.testing import CliRunner\nfrom llmscope.cli import app\n"
            "result = CliRunner().invoke(app, ['generate', '--help'])\nassert result.exit_code == 0, result.output\n")
    assert "torch" not in top_level(loaded_after_import([], code))


def test_engines_never_import_textual_or_rich():
    engines = sorted(p.stem for p in (ROOT / "engines").glob("*.py") if p.stem != "__init__")
    loaded = top_level(loaded_after_import([f"llmscope.engines.{name}" for name in engines]))
    assert "torch" in loaded  # the check is live: these modules really did import
    assert not loaded & {"textual", "rich"}


def test_widgets_never_import_torch_or_transformers():
    widgets = sorted(p.stem for p in (ROOT / "widgets").glob("*.py") if p.stem != "__init__")
    loaded = top_level(loaded_after_import(["llmscope.widgets", *[f"llmscope.widgets.{name}" for name in widgets]]))
    assert not loaded & {"torch", "transformers"}


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("llmscope-*.whl"))


def test_wheel_has_one_top_level_package(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"llmscope"}
    assert "llmscope/engines/hf.py" in names and "llmscope/widgets/__init__.py" in names
    assert "llmscope/sampler.py" in names


def test_wheel_ships_the_recorded_sessions(built_wheel):
    """sessions/ installs as llmscope.sessions with its index and every session file the index lists."""
    names = zipfile.ZipFile(built_wheel).namelist()
    assert "llmscope/sessions/__init__.py" in names and "llmscope/sessions/index.json" in names
    index = json.loads((ROOT / "sessions" / "index.json").read_text(encoding="utf-8"))["sessions"]
    assert index and all(f"llmscope/sessions/{entry['file']}" in names for entry in index)


def test_wheel_ships_models_demos_and_styles(built_wheel):
    """The trained tiny models, the demo scripts and the app's stylesheet are package data of the wheel."""
    names = set(zipfile.ZipFile(built_wheel).namelist())
    assert "llmscope/app.tcss" in names
    demos = sorted(p.name for p in (ROOT / "sessions" / "demos").glob("*.toml"))
    assert demos and all(f"llmscope/sessions/demos/{demo}" in names for demo in demos)
    shipped = sorted(p.parent.name for p in (ROOT / "llmscope" / "models").glob("*/config.json"))
    for model in shipped:
        for member in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"):
            assert f"llmscope/models/{model}/{member}" in names, f"{model}/{member} missing from the wheel"
