"""Whatever goes wrong inside the engine reaches the CLI user as one line and exit status 2 (--debug: traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from architecture_configs import SMALL, build_models
from typer.testing import CliRunner

from llmscope.cli.main import app


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Llama whose embedding has 50 rows behind a 400-token tokenizer: the forward raises IndexError."""
    import torch
    from conftest import _train_tokenizer
    from transformers import AutoModelForCausalLM, LlamaConfig

    directory = tmp_path_factory.mktemp("broken")
    _train_tokenizer(directory)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**SMALL, num_hidden_layers=1, vocab_size=50))
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def refused_moe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PhiMoE: a mixture of experts whose sparsemixer routing llmscope does not reproduce."""
    import torch
    from conftest import _train_tokenizer
    from transformers import AutoModelForCausalLM, PhimoeConfig

    directory = tmp_path_factory.mktemp("phimoe")
    vocab_size = _train_tokenizer(directory)
    torch.manual_seed(0)
    config = PhimoeConfig(
        **SMALL, num_hidden_layers=2, num_local_experts=4, num_experts_per_tok=2, vocab_size=vocab_size
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory


def llmscope(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "LLMSCOPE_DEBUG": ""}
    command = [sys.executable, "-c", "from llmscope.cli.main import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)


def test_an_engine_exception_is_one_line_and_exit_2(broken_model: Path) -> None:
    result = llmscope("generate", "Hello there", "--model", str(broken_model), "--steps", "2")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "IndexError" in errors[0] and "--debug" in errors[0]


def test_debug_shows_the_traceback(broken_model: Path) -> None:
    result = llmscope("--debug", "generate", "Hello there", "--model", str(broken_model), "--steps", "2")
    assert result.returncode == 1 and "Traceback" in result.stderr and "IndexError" in result.stderr


def test_in_process_runs_say_the_same(broken_model: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "Hello there", "--model", str(broken_model), "--steps", "2"])
    assert result.exit_code == 2 and "IndexError" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_a_refused_router_says_why_in_json(refused_moe: Path) -> None:
    result = CliRunner().invoke(app, ["generate", "Hello", "--model", str(refused_moe), "--steps", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["capabilities"]["router"] is False
    assert "'phimoe' (PhimoeTopKRouter) is not written in llmscope yet" in data["capabilities"]["reason"]["router"]
    assert all(step["routing"] is None for step in data["steps"])


def test_routing_is_in_json(tmp_path: Path) -> None:
    directory = build_models(tmp_path, ("gpt_oss",))["gpt_oss"]
    result = CliRunner().invoke(app, ["generate", "Hello", "--model", str(directory), "--steps", "2", "--json"])
    routing = json.loads(result.stdout)["steps"][-1]["routing"]
    assert routing["layers"] == [0, 1] and len(routing["experts"][0]) == 2
    assert routing["rule"].startswith("gpt_oss: top-2 of the logits → softmax")
