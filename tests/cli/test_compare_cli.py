"""`llmscope compare` as a user runs it: the step table, --json, presets, and bad input (one line, exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from cli.test_cli import assert_clean_error, run_cli
from llmscope.cli.main import app

runner = CliRunner()


def compare_json(*args: str) -> dict:
    result = runner.invoke(app, ["compare", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_table_marks_the_first_divergence_and_prints_both_texts(tiny_model_dirs):
    model = str(tiny_model_dirs["llama-gqa"])
    result = runner.invoke(
        app,
        [
            "compare",
            "Hello, how are you?",
            "-m",
            model,
            "--a-temperature",
            "0",
            "--b-temperature",
            "1.5",
            "--steps",
            "5",
        ],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    for fragment in (
        "KL(A‖B)",
        "KL(B‖A)",
        "JS",
        "◆ first",
        "first divergence at step",
        "in nats",
        "A: Hello",
        "B: Hello",
    ):
        assert fragment in result.stdout, result.stdout


def test_json_figures_match_the_lanes_logits(tiny_model_dirs):
    model = str(tiny_model_dirs["gpt2"])
    data = compare_json(
        "Hello, how are you?", "-m", model, "--a-temperature", "0.2", "--b-temperature", "1.2", "--steps", "3"
    )
    assert data["comparable"] and len(data["steps"]) == 3 and "nats" in data["log_base"]
    first = data["steps"][0]
    assert first["raw"]["js_nats"] == 0.0 and first["final"]["js_nats"] > 0  # same context, different temperature
    assert [lane["sampler"]["temperature"] for lane in data["lanes"]] == [0.2, 1.2]
    shared = [row for row in first["rows"] if row["rank_a"] is not None and row["rank_b"] is not None]
    assert all(row["p_a"] == row["p_b"] for row in shared)  # raw probabilities agree at step 0
    for step in data["steps"]:
        assert step["raw"]["js_bits"] == pytest.approx(step["raw"]["js_nats"] / torch.log(torch.tensor(2.0)).item())
        assert 0 <= step["raw"]["js_nats"] <= 0.6932


def test_identical_lanes_report_no_divergence(tiny_model_dirs):
    data = compare_json("Hello", "-m", str(tiny_model_dirs["llama-gqa"]), "--seed", "4", "--steps", "4")
    assert data["first_divergence"] is None
    assert all(step["raw"]["kl_ab_nats"] == 0 and not step["diverged"] for step in data["steps"])
    assert data["lanes"][0]["text"] == data["lanes"][1]["text"]


def test_typo_preset_changes_lane_b_prompt_and_token_count(tiny_model_dirs):
    data = compare_json(
        "Hello, how are you?", "-m", str(tiny_model_dirs["llama-gqa"]), "--preset", "typo", "--steps", "2"
    )
    assert data["lanes"][0]["prompt"] == "Hello, how are you?" and data["lanes"][1]["prompt"] == "Hlelo, how are you?"
    tokens = data["tokenization"]
    assert (
        tokens["difference"]
        == tokens["b_tokens"] - tokens["a_tokens"]
        == len(data["lanes"][1]["prompt_ids"]) - len(data["lanes"][0]["prompt_ids"])
    )


def test_system_prompt_preset_runs_in_chat_mode(tiny_model_dirs):
    data = compare_json("Hello", "-m", str(tiny_model_dirs["llama-gqa"]), "--preset", "system-prompt", "--steps", "1")
    lane_a, lane_b = data["lanes"]
    assert lane_a["chat"] and lane_b["chat"] and lane_a["system_prompt"] is None and "pirate" in lane_b["system_prompt"]
    assert data["tokenization"]["difference"] > 0


def test_different_vocabularies_say_not_comparable_and_still_run(tiny_model_dirs, other_vocab_dir):
    args = [
        "compare",
        "Hello, how are you?",
        "--a-model",
        str(tiny_model_dirs["llama-gqa"]),
        "--b-model",
        str(other_vocab_dir),
        "--steps",
        "3",
    ]
    result = runner.invoke(app, args, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "divergence not comparable" in result.stdout and "vocabularies differ in size" in result.stdout
    assert "A: Hello" in result.stdout and "B: Hello" in result.stdout
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert not data["comparable"] and all(step["raw"] is None for step in data["steps"]) and len(data["steps"]) == 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--b-model", "no-such-model"], "lane B: unknown model 'no-such-model'"),
        (["--b-temperature", "-1"], "lane B: temperature=-1.0 is invalid"),
        (["--preset", "nope"], "unknown experiment preset 'nope'"),
        (["--b-system", "Be brief."], "lane B: a system prompt needs chat mode"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tiny_model_dirs, args, fragment):
    result = runner.invoke(app, ["compare", "Hello", "-m", str(tiny_model_dirs["llama-gqa"]), *args])
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert "Traceback" not in result.output


def test_missing_lane_model_in_a_real_process_has_no_traceback():
    assert_clean_error(run_cli("compare", "Hello", "--b-model", "./does/not/exist"), "lane B", "unknown model")


def test_models_preset_compares_tiny_dense_with_tiny_moe():
    """The shipped tiny models share one tokenizer, so their distributions are comparable step by step."""
    data = compare_json("ROMEO.", "--preset", "models", "--steps", "3")
    assert [lane["model"]["name"] for lane in data["lanes"]] == ["tiny-dense", "tiny-moe"]
    first = data["steps"][0]["raw"]
    assert first["js_nats"] > 0 and 0 <= first["js_nats"] <= 0.6932


def test_save_writes_a_session_that_replays_both_lanes(tiny_model_dirs, tmp_path):
    from llmscope.session.files import load_session
    from llmscope.session.recording import ComparisonEvent, PromptEvent
    from llmscope.session.replay import ReplayedStep, reenact

    path = tmp_path / "cmp.llmscope"
    data = compare_json(
        "Hello, how are you?",
        "-m",
        str(tiny_model_dirs["llama-gqa"]),
        "--preset",
        "temperature",
        "--steps",
        "4",
        "--save",
        str(path),
    )
    session = load_session(path)
    prompts = [event for event in session.events if isinstance(event, PromptEvent)]
    assert [prompt.text for prompt in prompts] == ["Hello, how are you?"] * 2
    saved = next(event for event in session.events if isinstance(event, ComparisonEvent)).data
    assert saved["first_divergence"] == data["first_divergence"] and len(saved["steps"]) == 4
    assert [lane["sampler"]["temperature"] for lane in saved["lanes"]] == [0.2, 1.2]
    assert saved["steps"][1]["raw"]["js"] == pytest.approx(data["steps"][1]["raw"]["js_nats"])
    replayed = [item for item, _ in reenact(session) if isinstance(item, ReplayedStep)]
    assert len(replayed) == 8 and all(item.reproduced for item in replayed)
    by_run = [[item.step.token_id for item in replayed if item.run == run] for run in (0, 1)]
    assert by_run == [[step[lane]["token"]["id"] for step in data["steps"]] for lane in ("a", "b")]


def test_save_refuses_lanes_on_two_models(tiny_model_dirs, tmp_path):
    result = runner.invoke(
        app,
        [
            "compare",
            "Hello",
            "--a-model",
            str(tiny_model_dirs["llama-gqa"]),
            "--b-model",
            str(tiny_model_dirs["gpt2"]),
            "--save",
            str(tmp_path / "x.llmscope"),
        ],
    )
    assert result.exit_code == 2 and "one model" in result.output and "A: Hello" not in result.output
    assert not (tmp_path / "x.llmscope").exists()


@pytest.mark.smollm
def test_smollm2_against_a_tiny_model_is_not_comparable_but_runs(smollm2_dir, tiny_model_dirs):
    data = compare_json(
        "The capital of France is",
        "--a-model",
        "smollm2",
        "--b-model",
        str(tiny_model_dirs["gpt2"]),
        "--temperature",
        "0",
        "--steps",
        "2",
    )
    assert not data["comparable"] and "49,152" in data["not_comparable_reason"]
    assert data["steps"][0]["a"]["token"]["text"] == " Paris" and data["steps"][0]["raw"] is None
    assert data["tokenization"]["a_tokens"] == 5
