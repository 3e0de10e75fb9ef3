"""The HF engine against the model's own outputs: logits, attention, hidden states, KV sizes, routing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_KINDS
from transformers import AutoModelForCausalLM

from llmscope.engine_api import EngineError
from llmscope.engines.grouped_attention import CAPTURE_KERNEL
from llmscope.engines.hf import HFEngine
from llmscope.trace import CaptureOptions

PROMPT_IDS = [5, 17, 42, 99, 7, 3, 250, 31]


def reference_model(directory: Path, attention: str = "eager"):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation=attention)
    return model.eval()


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_step_logits_equal_full_forward(tiny_model_dirs, kind):
    """Prefill then three cached steps give the same next-token logits as an uncached full forward."""
    engine = HFEngine.load(str(tiny_model_dirs[kind]))
    reference = reference_model(tiny_model_dirs[kind])
    traces = [engine.prefill(PROMPT_IDS)]
    fed = list(PROMPT_IDS)
    for token in (11, 12, 13):
        traces.append(engine.step(token))
        fed.append(token)
    with torch.no_grad():
        full = reference(torch.tensor([fed])).logits[0]
    for trace in traces:
        expected = full[trace.position].numpy()
        np.testing.assert_allclose(trace.logits, expected, rtol=1e-4, atol=1e-4)
    assert [trace.index for trace in traces] == [0, 1, 2, 3]
    assert engine.forward_calls == 4


@pytest.mark.parametrize("kind", ["llama-gqa", "gpt2", "mixtral"])
def test_attention_and_hidden_norms_equal_model_outputs(tiny_model_dirs, kind):
    engine = HFEngine.load(str(tiny_model_dirs[kind]))
    reference = reference_model(tiny_model_dirs[kind])
    prefill = engine.prefill(PROMPT_IDS)
    step = engine.step(21)
    with torch.no_grad():
        out = reference(torch.tensor([PROMPT_IDS + [21]]), output_attentions=True, output_hidden_states=True)
    patterns = torch.stack([layer[0] for layer in out.attentions]).numpy()  # [layers, heads, q, k]
    n = len(PROMPT_IDS)
    np.testing.assert_allclose(prefill.attention, patterns[:, :, :n, :n], atol=1e-5)
    np.testing.assert_allclose(step.attention[:, :, 0, :], patterns[:, :, n, : n + 1], atol=1e-5)
    assert step.attention_query_start == n
    norms = torch.stack([state[0, n] for state in out.hidden_states]).norm(dim=-1).numpy()
    np.testing.assert_allclose(step.hidden_norms, norms, rtol=1e-4)
    assert step.hidden_norms.shape == (engine.info.num_layers + 1,)


def test_prefill_attention_rows_are_capped(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]), capture=CaptureOptions(prefill_attention_rows=3))
    trace = engine.prefill(PROMPT_IDS)
    assert trace.attention.shape == (3, 4, 3, len(PROMPT_IDS))
    assert trace.attention_query_start == len(PROMPT_IDS) - 3
    np.testing.assert_allclose(trace.attention.sum(axis=-1), 1.0, atol=1e-5)


def test_kv_bytes_equal_cache_tensors_and_formula(tiny_model_dirs):
    """On a GQA config (4 query heads, 2 KV heads) the measured bytes match the tensors and the formula."""
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    engine.prefill(PROMPT_IDS)
    trace = engine.step(9)
    kv = trace.kv
    cache = engine._cache
    tensor_bytes = sum(layer.keys.numel() * 4 + layer.values.numel() * 4 for layer in cache.layers)
    assert kv.total_bytes == tensor_bytes
    tokens = len(PROMPT_IDS) + 1
    by_hand = 2 * 3 * 2 * 16 * tokens * 4  # 2 × layers × kv_heads × head_dim(64/4) × tokens × fp32
    assert kv.formula_bytes == by_hand == kv.total_bytes
    assert kv.layers[0].key_shape == (1, 2, tokens, 16)
    assert "2 × 3 layers × 2 kv_heads × 16 head_dim" in kv.formula_text()


def test_rewind_then_step_matches_a_fresh_run(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    engine.prefill(PROMPT_IDS)
    engine.step(11)
    engine.step(12)
    engine.truncate(len(PROMPT_IDS) + 1)
    again = engine.step(40)
    fresh = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    fresh.prefill(PROMPT_IDS)
    fresh.step(11)
    expected = fresh.step(40)
    np.testing.assert_allclose(again.logits, expected.logits, atol=1e-5)
    assert again.kv.tokens == expected.kv.tokens == len(PROMPT_IDS) + 2
    with pytest.raises(EngineError):
        engine.truncate(len(PROMPT_IDS) - 1)


def test_captures_off_uses_fast_attention_and_same_logits(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    with_captures = engine.prefill(PROMPT_IDS)
    engine.set_capture(CaptureOptions(attention=False, hidden_states=False, kv_cache=False, router=False))
    assert engine.model.config._attn_implementation == "sdpa"
    without = engine.prefill(PROMPT_IDS)
    assert without.attention is None and without.hidden_norms is None and without.kv is None
    np.testing.assert_allclose(without.logits, with_captures.logits, atol=1e-4)
    engine.set_capture(CaptureOptions())
    assert engine.model.config._attn_implementation == CAPTURE_KERNEL  # eager math without the GQA copy


def _gate_outputs(model) -> tuple[list, object]:
    """Hook every MoE gate and record (weights, experts) exactly as the block used them."""
    used: list[tuple[torch.Tensor, torch.Tensor]] = []
    handles = []
    for layer in model.model.layers:
        if hasattr(layer.mlp, "gate") and hasattr(layer.mlp, "experts"):
            handles.append(
                layer.mlp.gate.register_forward_hook(
                    lambda module, inputs, output: used.append((output[1].detach().clone(), output[2].detach().clone()))
                )
            )
    return used, handles


@pytest.mark.parametrize("kind", ["mixtral", "qwen2-moe-norm", "qwen2-moe-raw"])
def test_router_choices_equal_what_the_moe_block_used(tiny_model_dirs, kind):
    engine = HFEngine.load(str(tiny_model_dirs[kind]))
    used, handles = _gate_outputs(engine.model)
    prefill = engine.prefill(PROMPT_IDS)
    prefill_used = list(used)
    used.clear()
    step = engine.step(77)
    for handle in handles:
        handle.remove()
    for trace, recorded in ((prefill, prefill_used), (step, used)):
        router = trace.router
        assert router is not None and len(router.layers) == len(recorded)
        for layer_number, (weights, experts) in enumerate(recorded):
            np.testing.assert_array_equal(router.experts[layer_number], experts.numpy())
            np.testing.assert_allclose(router.weights[layer_number], weights.float().numpy(), rtol=1e-5, atol=1e-6)
    sums = prefill.router.weights.sum(axis=-1)
    if kind == "qwen2-moe-raw":
        assert (sums < 0.999).all(), "without norm_topk_prob the kept weights must not sum to one"
        assert "not renormalised" in prefill.router.rule
    else:
        np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    assert prefill.router.logits.shape == (2, len(PROMPT_IDS), engine.info.num_experts)


def test_dense_model_says_why_there_is_no_router(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    assert not engine.capabilities.router
    assert "dense" in engine.capabilities.reason["router"]
    assert engine.prefill(PROMPT_IDS).router is None


def test_bad_prompts_raise_clear_errors(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    with pytest.raises(EngineError, match="empty prompt"):
        engine.encode("   ")
    with pytest.raises(EngineError, match="empty prompt"):
        engine.prefill([])
    with pytest.raises(EngineError, match="context of 128"):
        engine.prefill([5] * 200)


def test_chat_encoding_uses_the_template(tiny_model_dirs):
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]))
    ids = engine.encode("Hi there", chat=True)
    text = engine.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\nHi there<|im_end|>") and text.endswith("<|im_start|>assistant\n")


def test_info_describes_the_config(tiny_model_dirs):
    info = HFEngine.load(str(tiny_model_dirs["mixtral"])).info
    assert (info.num_layers, info.num_heads, info.num_kv_heads, info.head_dim) == (2, 4, 2, 16)
    assert (info.num_experts, info.experts_per_token, info.moe_layers) == (4, 2, (0, 1))
    assert info.gqa_group_size == 2 and info.device == "cpu" and info.dtype == "float32"
    reference = reference_model(tiny_model_dirs["mixtral"])
    assert info.num_parameters == sum(p.numel() for p in reference.parameters())
