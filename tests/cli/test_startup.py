"""Fast start: `tokenize` and `--help` in a fresh process import only what they use (no torch, transformers or
Textual; the modules behind other commands stay unloaded), and `--help` still lists every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from llmscope.cli.main import COMMANDS, app

HEAVY = ("torch", "transformers", "textual", "accelerate")
OTHER_COMMANDS = ("llmscope.cli.generate", "llmscope.cli.compare", "llmscope.cli.lens", "llmscope.cli.replay")


def run_fresh(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the console entry point in a new interpreter; return the result and the modules it had imported."""
    code = (
        "import sys\nfrom llmscope.cli.main import main\nsys.argv = ['llmscope', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    code = done.code\nelse:\n    code = 0\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\nsys.exit(code)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    modules = set(done.stderr.rsplit("MODULES ", 1)[-1].split())
    return done, modules


def test_tokenize_imports_only_the_tokenizer_path(smollm2_dir: Path) -> None:
    from transformers import AutoTokenizer

    text = "Hello, wörld! 🙂 The capital of France is"
    done, modules = run_fresh("tokenize", text, "--json")
    assert done.returncode == 0, done.stderr
    assert not [name for name in HEAVY if name in modules]
    assert not [name for name in OTHER_COMMANDS if name in modules]
    ids = [row["id"] for row in json.loads(done.stdout)["tokens"]]
    assert ids == AutoTokenizer.from_pretrained(str(smollm2_dir))(text)["input_ids"]


def test_help_lists_every_command_without_loading_them() -> None:
    done, modules = run_fresh("--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert {"tui", *COMMANDS} <= listed
    assert not [name for name in (*HEAVY, "numpy", *OTHER_COMMANDS) if name in modules]


def test_each_summary_is_the_commands_own_docstring() -> None:
    """COMMANDS keeps the top-level help without importing the modules; it must say what each command says."""
    for name, (module_name, summary) in COMMANDS.items():
        commands = typer.Typer()
        __import__(module_name, fromlist=["register"]).register(commands)
        command = typer.main.get_group(commands).commands[name]
        assert (command.help or "").split("\n\n")[0].strip() == summary, name


@pytest.mark.parametrize(
    ("typo", "suggestion"), [("generat", "'generate'"), ("kvcalc", "'kv-calc'"), ("tokenise", "'tokenize'")]
)
def test_a_typo_suggests_a_command_not_yet_loaded(typo: str, suggestion: str) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [typo])
    assert result.exit_code == 2 and f"Did you mean {suggestion}" in " ".join(result.output.split())


def test_every_command_runs_its_own_help() -> None:
    from typer.testing import CliRunner

    for name in ("tui", *COMMANDS):
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, (name, result.output)
