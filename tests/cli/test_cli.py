"""The command line as a user runs it: real subprocesses for exit codes and output, CliRunner for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from llmscope.cli.main import app

runner = CliRunner()


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "llmscope", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def assert_clean_error(result, *fragments: str) -> None:
    """Exit status 2, one short message naming the problem, and no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    for fragment in fragments:
        assert fragment in output, output


@pytest.mark.smollm
def test_generate_picks_paris_on_smollm2(smollm2_dir):
    result = run_cli("generate", "The capital of France is", "--steps", "1", "--temperature", "0", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    step = data["steps"][0]
    assert step["token"]["text"] == " Paris"
    assert step["candidates"][0]["id"] == step["token"]["id"] and step["p_final"] == 1.0
    assert data["model"]["num_layers"] == 30 and data["model"]["num_kv_heads"] == 3


def test_generate_table_output_on_a_tiny_model(tiny_model_dirs):
    result = run_cli(
        "generate",
        "Hello, how are you?",
        "--model",
        str(tiny_model_dirs["llama-gqa"]),
        "--steps",
        "3",
        "--temperature",
        "0.7",
        "--top-p",
        "0.9",
        "--seed",
        "1",
    )
    assert result.returncode == 0, result.stderr
    for fragment in (
        "step   0",
        "step   2",
        "survivors of",
        "top-p 0.9",
        "p_raw",
        "p_final",
        "KV ",
        "stopped: step limit",
    ):
        assert fragment in result.stdout, result.stdout


def test_generate_json_is_consistent_with_its_own_kv_formula(tiny_model_dirs):
    result = run_cli(
        "generate",
        "Hello",
        "--model",
        str(tiny_model_dirs["mixtral"]),
        "--steps",
        "4",
        "--json",
        "--preset",
        "balanced",
        "--seed",
        "7",
    )
    data = json.loads(result.stdout)
    assert data["sampler"]["temperature"] == 0.7 and data["sampler"]["top_p"] == 0.9
    for step in data["steps"]:
        assert step["kv_bytes"] == step["kv_formula_bytes"]
        assert step["kv_tokens"] == len(data["prompt_ids"]) + step["index"]
        kept = [stage["kept"] for stage in step["survivors"]]
        assert kept == sorted(kept, reverse=True)
    assert data["forward_calls"] == len(data["steps"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["generate", "hi", "--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["generate", "hi", "--model", "meta-llama/Llama-3.1-8B"], "hf download meta-llama/Llama-3.1-8B"),
        (["generate", "   "], "empty prompt"),
        (["generate", "hi", "--top-p", "0"], "top_p=0.0 is invalid"),
        (["generate", "hi", "--top-p", "1.5"], "top_p=1.5 is invalid"),
        (["generate", "hi", "--temperature", "-1"], "temperature=-1.0 is invalid"),
        (["generate", "hi", "--top-k", "-1"], "top_k=-1 is invalid"),
        (["generate", "hi", "--preset", "wild"], "preset='wild' is unknown"),
        (["kv-calc", "--preset", "llama-9"], "unknown preset"),
        (["kv-calc", "--preset", "gpt-2", "--dtype", "fp7"], "unknown dtype"),
        (["kv-calc", "--preset", "gpt-2", "--context", "0"], "context must be"),
        (["tokenize", ""], "empty text"),
    ],
)
def test_bad_input_gives_one_clear_line_and_status_2(args, fragment):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_input_in_a_real_process_has_no_traceback():
    assert_clean_error(
        run_cli("generate", "hi", "--model", "org/uncached-model"), "not in the local Hugging Face cache"
    )


def test_prompt_longer_than_context_is_rejected(tiny_model_dirs):
    long_prompt = "The quick brown fox jumps over the lazy dog. " * 40
    result = run_cli("generate", long_prompt, "--model", str(tiny_model_dirs["gpt2"]))
    assert_clean_error(result, "has a context of 128")


def test_kv_calc_llama3_70b_matches_the_published_figure():
    result = runner.invoke(app, ["kv-calc", "--preset", "llama-3-70b", "--context", "8192", "--json"])
    data = json.loads(result.output)
    assert data["bytes"] == 2_684_354_560 == 2 * 80 * 8 * 128 * 8192 * 2
    text = runner.invoke(app, ["kv-calc", "--preset", "llama-3-70b", "--context", "8192"]).output
    assert "= 2,684,354,560 B = 2.50 GiB" in text  # exact bytes, then llmscope.format's binary units


def test_kv_calc_reads_a_model_directory(tiny_model_dirs):
    data = json.loads(
        runner.invoke(
            app, ["kv-calc", str(tiny_model_dirs["llama-gqa"]), "--context", "100", "--dtype", "fp32", "--json"]
        ).output
    )
    assert data["bytes"] == 2 * 3 * 2 * 16 * 100 * 4


def test_tokenize_json_offsets_point_at_the_text(tiny_model_dirs):
    text = "Hello, how are you? 猫 🙂\tend\n"
    result = run_cli("tokenize", text, "--model", str(tiny_model_dirs["llama-gqa"]), "--json")
    data = json.loads(result.stdout)
    joined = b"".join(bytes.fromhex(token["bytes"]) for token in data["tokens"])
    assert joined.decode("utf-8") == text
    for token in data["tokens"]:  # a token inside a multi-byte character holds part of that character's bytes
        assert bytes.fromhex(token["bytes"]) in text[token["start"] : token["end"]].encode("utf-8")
    assert data["summary"]["tokens"] == len(data["tokens"])


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models", "--json"])
    names = [entry["name"] for entry in json.loads(result.output)]
    assert names[0] == "smollm2" and "tiny-moe" in names


def test_kv_calc_takes_model_like_every_command():
    data = json.loads(
        runner.invoke(app, ["kv-calc", "--model", "tiny-dense", "--context", "256", "--dtype", "fp16", "--json"]).output
    )
    assert data["bytes"] == 2 * 4 * 2 * 32 * 256 * 2  # tiny-dense: 4 layers, 2 KV heads, head_dim 32


def test_a_hub_id_in_the_local_hf_cache_resolves_offline(tmp_path, monkeypatch, tiny_model_dirs):
    """A model laid out the way the HF hub cache stores it is found by its hub id, with no network."""
    import shutil

    snapshot = tmp_path / "hub" / "models--someorg--tiny-llama" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_model_dirs["llama-gqa"], snapshot)
    (tmp_path / "hub" / "models--someorg--tiny-llama" / "refs").mkdir()
    (tmp_path / "hub" / "models--someorg--tiny-llama" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    from llmscope.registry import resolve

    spec = resolve("someorg/tiny-llama")
    assert spec.kind == "hub-cache" and spec.path == snapshot
    result = runner.invoke(app, ["generate", "Hello", "--model", "someorg/tiny-llama", "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["source"] == str(snapshot)


def test_user_errors_lets_typers_own_usage_errors_through():
    """typer 0.29 ships its own click: its BadParameter is not click's ClickException, yet must print as usage."""
    import typer

    from llmscope.cli.common import user_errors

    small = typer.Typer()

    @small.command()
    def odd(x: int = 1) -> None:
        def check() -> None:
            raise typer.BadParameter("must be odd", param_hint="--x")

        user_errors(check)

    result = runner.invoke(small, ["--x", "2"])
    assert result.exit_code == 2 and "Invalid value for --x: must be odd" in result.output
