"""Hostile or careless command lines: one line on stderr, exit status 2, bounded memory, text shown as text.

Cases that could exhaust memory run in a subprocess under RLIMIT_AS (1.5 GiB); the rest run through
CliRunner in-process (torch is already imported there, which keeps the suite fast). Each attack from
issue 16 is a regression test; a hypothesis fuzz throws arbitrary arguments at the torch-free commands.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_helpers import record_greedy
from typer.testing import CliRunner

from llmscope.cli.main import app
from llmscope.registry import builtin_model_dir
from llmscope.session.files import save_session

MEMORY_CAP = int(1.5 * 2**30)
runner = CliRunner()
EVIL = "[/x]\x1b]0;pwned\x07\x1b[2J[reverse]"


def capped_cli(*args: str | bytes, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -m llmscope ARGS` with its address space capped, so an attempt to allocate fails visibly."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run(
        [sys.executable, "-m", "llmscope", *args],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        preexec_fn=cap,
    )


def one_line_exit_2(returncode: int, stderr: str | bytes, *fragments: str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line for line in text.strip().splitlines() if not line.startswith("Loading ")]
    assert returncode == 2, text
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return lines[0]


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# ------------------------------------------------------------------------- markup and escapes
@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["generate", "hi", "--model", "[/x]"], "[/x]"),
        (["generate", "hi", "--model", "[reverse]styled"], "'[reverse]styled'"),
        (["replay", "[/evil]", "--headless"], "'[/evil]'"),
        (["kv-calc", "[/x]"], "[/x]"),
    ],
)
def test_markup_in_arguments_is_shown_as_text(args, shown):
    code, _, stderr = invoke(*args)
    one_line_exit_2(code, stderr, shown)


@pytest.fixture(scope="module")
def session_file(tmp_path_factory) -> Path:
    directory = builtin_model_dir("tiny-dense")
    assert directory is not None
    return save_session(record_greedy(directory, steps=3), tmp_path_factory.mktemp("cli") / "good.llmscope")


def edited(source: Path, target: Path, edit) -> Path:
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in archive.infolist():
            data = archive.read(info.filename)
            if info.filename == "manifest.json":
                document = json.loads(data)
                edit(document)
                data = json.dumps(document).encode()
            out.writestr(info.filename, data)
    return target


def evil_text(document: dict) -> None:
    """Markup and terminal escapes in every text a session carries: tokens, prompt, title, description, model."""
    for token in document["tokens"]:
        token.update(text=EVIL, piece=EVIL, raw_bytes=EVIL.encode().hex())
    document.update(title="[bold]T[/x]", description="[/x] \x1b[31mred")
    document["model"]["name"] = "[/m]\x1b[2J"
    for event in document["events"]:
        if event["kind"] == "prompt":
            event.update(text="[/evil]\x1b[2J" + event["text"], shown_text="[/evil]", shown_tokens=[])


def test_replay_headless_prints_recorded_text_as_text(session_file, tmp_path):
    evil = edited(session_file, tmp_path / "evil.llmscope", evil_text)
    for extra in ([], ["--json"]):
        result = capped_cli("replay", str(evil), "--headless", *extra)
        assert result.returncode == 0, result.stderr
        assert b"\x1b" not in result.stdout and b"\x07" not in result.stdout
        if not extra:
            shown = result.stdout.decode()
            assert "[/x]␛]0;pwned␇␛[2J[reverse]" in shown and "[/evil]␛[2J" in shown and "[/m]␛[2J" in shown


def test_invalid_utf8_in_a_prompt_is_one_line():
    for args in (["generate", b"\xff\xfe", "--model", "tiny-dense"], ["tokenize", b"a\xffb", "--model", "tiny-dense"]):
        result = capped_cli(*args)
        one_line_exit_2(result.returncode, result.stderr, "not valid UTF-8", "0xff")


# ------------------------------------------------------------------------------ model folders
@pytest.fixture(scope="module")
def broken_models(tmp_path_factory) -> dict[str, Path]:
    source = builtin_model_dir("tiny-dense")
    assert source is not None
    root = tmp_path_factory.mktemp("broken")
    made: dict[str, Path] = {}
    for name in ("list", "negative", "truncated", "garbage", "shapes", "remote", "heads"):
        folder = root / name
        folder.mkdir()
        for item in source.iterdir():
            (folder / item.name).write_bytes(item.read_bytes())
        made[name] = folder
    config = json.loads((source / "config.json").read_text())
    (made["list"] / "config.json").write_text("[1, 2, 3]")
    (made["negative"] / "config.json").write_text(json.dumps({**config, "vocab_size": -5}))
    (made["heads"] / "config.json").write_text(json.dumps({**config, "num_key_value_heads": 3}))
    weights = (source / "model.safetensors").read_bytes()
    (made["truncated"] / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (made["garbage"] / "model.safetensors").write_bytes(b"\x00garbage" * 1000)
    (made["shapes"] / "config.json").write_text(json.dumps({**config, "hidden_size": 256, "intermediate_size": 256}))
    remote = {
        **config,
        "model_type": "llmscope-custom",
        "auto_map": {"AutoConfig": "modeling_x.XConfig", "AutoModelForCausalLM": "modeling_x.XModel"},
    }
    (made["remote"] / "config.json").write_text(json.dumps(remote))
    (made["remote"] / "modeling_x.py").write_text("raise SystemExit('remote code ran')\n")
    return made


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("list", "does not hold a JSON object"),
        ("negative", "vocab_size must be a positive integer"),
        ("heads", "3 KV heads do not divide 4 attention heads"),
        ("truncated", "could not load model"),
        ("garbage", "could not load model"),
        ("shapes", "do not match config.json"),
        ("remote", "--trust-remote-code"),
    ],
)
def test_a_broken_model_folder_is_one_line(broken_models, name, fragment):
    code, _, stderr = invoke("generate", "hi", "--model", str(broken_models[name]), "--steps", "1")
    one_line_exit_2(code, stderr, fragment)


def test_tokenize_accepts_trust_remote_code():
    code, stdout, stderr = invoke("tokenize", "hi", "--model", "tiny-dense", "--trust-remote-code", "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["tokens"]


# ---------------------------------------------------------------------------------- kv-calc
@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ('{"num_hidden_layers": 1e400, "num_attention_heads": 8, "hidden_size": 512}', "1e400 is out of range"),
        ('{"num_hidden_layers": 0, "num_attention_heads": 0, "hidden_size": 0}', "must be a positive integer"),
        ('{"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3, "hidden_size": 64}', "divide"),
        ('{"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": NaN}', "not valid JSON"),
        ("[1]", "does not hold a JSON object"),
    ],
)
def test_kv_calc_checks_config_numbers_at_load(tmp_path, config, fragment):
    path = tmp_path / "config.json"
    path.write_text(config)
    code, _, stderr = invoke("kv-calc", str(path))
    one_line_exit_2(code, stderr, fragment)


def test_huge_sparse_files_are_refused_unread(tmp_path):
    config, session = tmp_path / "config.json", tmp_path / "big.llmscope"
    for path in (config, session):
        with path.open("wb") as handle:
            handle.truncate(8 * 2**30)
    result = capped_cli("kv-calc", str(config))
    one_line_exit_2(result.returncode, result.stderr, "above the limit")
    result = capped_cli("replay", str(session), "--headless")
    one_line_exit_2(result.returncode, result.stderr, "above the limit")


def test_a_billion_word_session_is_refused_under_a_memory_cap(session_file, tmp_path):
    def huge(document: dict) -> None:
        document["model"]["vocab_size"] = 10**9
        for forward in document["forwards"]:
            forward["vocab_size"] = 10**9

    result = capped_cli("replay", str(edited(session_file, tmp_path / "huge.llmscope", huge)), "--headless")
    one_line_exit_2(result.returncode, result.stderr, "vocab_size")


# ------------------------------------------------------------------------------------- saves
@pytest.mark.parametrize("target", ["DIR", "/dev/null", "MISSING/x.llmscope"])
def test_save_targets_are_checked_before_any_model_work(tmp_path, target):
    path = {"DIR": str(tmp_path), "MISSING/x.llmscope": str(tmp_path / "missing" / "x.llmscope")}.get(target, target)
    code, _, stderr = invoke("generate", "hi", "--model", "tiny-dense", "--steps", "1", "--save", path)
    one_line_exit_2(code, stderr, "--save")
    assert "Loading" not in stderr


# ---------------------------------------------------------------------------------------- fuzz
ARGUMENT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["[/x]", "[reverse]", "\x1b[2J", "1e400", "-1", "0", "NaN", "--json", "--", "-m", "/dev/zero"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
COMMANDS = st.sampled_from(
    [
        ["kv-calc", "--preset", "{0}", "--context", "{1}"],
        ["kv-calc", "{0}"],
        ["replay", "{0}", "--headless"],
        ["demo", "{0}"],
        ["generate", "hi", "--model", "{0}", "--steps", "{1}"],
        ["tokenize", "{0}", "--model", "{1}"],
        ["compare", "{0}", "--steps", "{1}", "--a-model", "{0}"],
    ]
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=COMMANDS, first=ARGUMENT, second=ARGUMENT)
def test_any_argument_is_answered_in_one_line_or_runs(command, first, second):
    """Arbitrary arguments (no model that exists, so no torch) never give a traceback or unbounded memory."""
    args = [part.format(first.replace("\x00", ""), second.replace("\x00", "")) for part in command]
    result = capped_cli(*args, timeout=60)
    text = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in text and b"\x1b[2J" not in result.stdout + result.stderr, text
    assert result.returncode in (0, 2), text
    if result.returncode == 2:
        assert len([line for line in text.strip().splitlines() if line.strip()]) <= 20  # click's usage box
