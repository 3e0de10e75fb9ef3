"""The capture kernel equals transformers' own eager attention, without expanding keys per query head."""

from __future__ import annotations

import types

import pytest
import torch
from transformers.models.llama.modeling_llama import eager_attention_forward

from llmscope.engines import grouped_attention
from llmscope.engines.grouped_attention import grouped_eager_attention


@pytest.mark.parametrize(("heads", "kv_heads", "rows", "keys"), [(9, 3, 1, 300), (8, 2, 5, 5), (4, 1, 3, 7)])
def test_weights_and_output_equal_transformers_eager(monkeypatch, heads, kv_heads, rows, keys) -> None:
    def no_fallback(module):
        raise AssertionError("a grouped-query call must not fall back to the module's eager function")

    monkeypatch.setattr(grouped_attention, "_own_eager", no_fallback)
    generator = torch.Generator().manual_seed(heads * 100 + keys)
    query = torch.randn(1, heads, rows, 16, generator=generator)
    key = torch.randn(1, kv_heads, keys, 16, generator=generator)
    value = torch.randn(1, kv_heads, keys, 16, generator=generator)
    mask = torch.zeros(1, 1, rows, keys)
    mask[..., : keys // 3] = torch.finfo(torch.float32).min  # a window: the oldest keys hidden
    module = types.SimpleNamespace(num_key_value_groups=heads // kv_heads, training=False)
    expected_output, expected_weights = eager_attention_forward(module, query, key, value, mask, scaling=0.25)
    output, weights = grouped_eager_attention(module, query, key, value, mask, scaling=0.25)
    torch.testing.assert_close(weights, expected_weights, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(output, expected_output, rtol=1e-5, atol=1e-6)


def test_extras_and_plain_multi_head_layers_use_the_modules_own_eager(monkeypatch) -> None:
    calls = []

    def own(module):
        def run(*args, **kwargs):
            calls.append(kwargs)
            return "own", None

        return run

    monkeypatch.setattr(grouped_attention, "_own_eager", own)
    module = types.SimpleNamespace(num_key_value_groups=2, training=False)
    query, key = torch.zeros(1, 4, 1, 8), torch.zeros(1, 2, 3, 8)
    assert grouped_eager_attention(module, query, key, key, None, scaling=1.0, softcap=50.0)[0] == "own"
    assert grouped_eager_attention(module, query, key, key, None, scaling=1.0, s_aux=torch.zeros(4))[0] == "own"
    same = torch.zeros(1, 4, 3, 8)  # one KV head per query head: nothing to save, the family's own code runs
    assert grouped_eager_attention(module, query, same, same, None, scaling=1.0)[0] == "own"
    assert len(calls) == 3 and calls[0]["softcap"] == 50.0
