"""`llmscope lens` as a user runs it, its figures checked against the model's own modules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.cli.test_cli import assert_clean_error, run_cli


@pytest.mark.smollm
def test_lens_json_equals_a_direct_computation_on_smollm2(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = run_cli("lens", "The capital of France is", "--model", "smollm2", "--steps", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    ids = tokenizer("The capital of France is")["input_ids"]
    first, second = data["steps"]
    assert first["chosen"]["text"] == " Paris" and len(first["layers"]) == 31
    for step, context in ((first, ids), (second, [*ids, first["chosen"]["id"]])):
        with torch.no_grad():
            states = model(torch.tensor([context]), output_hidden_states=True).hidden_states
            last = torch.stack([state[0, -1] for state in states])
            normed = torch.cat([model.model.norm(last[:-1]), last[-1:]])  # the last state is already normed
            probs = torch.softmax(model.lm_head(normed).double(), dim=-1).numpy()
        chosen = step["chosen"]["id"]
        for layer in step["layers"]:
            row = probs[layer["layer"]]
            assert [candidate["id"] for candidate in layer["top"][:3]] == list(np.argsort(-row)[:3])
            assert layer["top"][0]["prob"] == pytest.approx(row.max(), abs=1e-5)
            assert layer["chosen_prob"] == pytest.approx(row[chosen], abs=1e-5)
            assert layer["chosen_rank"] == int((row > row[chosen]).sum()) + 1
            assert layer["entropy_nats"] == pytest.approx(-(row * np.log(np.maximum(row, 1e-300))).sum(), abs=1e-4)
    assert first["first_top1_layer"] == 30  # SmolLM2 names Paris only at its last layer


def test_lens_table_and_grid_on_a_tiny_model(tiny_model_dirs):
    one = run_cli("lens", "hello world", "--model", str(tiny_model_dirs["llama-gqa"]))
    assert one.returncode == 0, one.stderr
    assert "rank" in one.stdout and "entropy" in one.stdout and "emb" in one.stdout
    assert "step 0 →" in one.stdout and "Traceback" not in one.stderr
    many = run_cli("lens", "hello world", "--model", str(tiny_model_dirs["llama-gqa"]), "--steps", "3")
    assert many.returncode == 0, many.stderr
    assert all(f"step {index} →" in many.stdout for index in range(3))


def test_lens_bad_input_is_one_line(tiny_model_dirs):
    assert_clean_error(run_cli("lens", "   ", "--model", str(tiny_model_dirs["llama-gqa"])), "empty prompt")
    assert_clean_error(run_cli("lens", "hi", "--model", "no-such-model-xyz"), "no-such-model-xyz")
    assert_clean_error(run_cli("lens", "hi", "--model", str(tiny_model_dirs["llama-gqa"]), "--steps", "0"), "steps")
