"""The eager attention kernel without its grouped-query copy, so capturing weights stays cheap at long context.

transformers' eager kernel expands the cached keys and values to one copy per query head (`repeat_kv`) before
its two matmuls: at 4,096 tokens that copy is most of the extra time of a SmolLM2 decode step with attention
captured. This kernel computes the same weights and output group by group against the shared keys instead.
Only grouped-query layers take this path (their eager function is Llama's in every family checked); a layer
with one KV head per query head, or a call with an extra the plain kernel does not have (Gemma 2's logit
soft-cap, gpt-oss's sinks), goes to the module's own eager function, so every family gets its own attention.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

CAPTURE_KERNEL = "llmscope_grouped_eager"
"""The attention implementation name the engine sets while it captures weights."""
PLAIN_KWARGS = frozenset(
    {
        "sliding_window",
        "position_ids",
        "cache_position",
        "output_attentions",
        "output_hidden_states",
        "output_router_logits",
        "use_cache",
        "is_causal",
        "return_dict",
    }
)
"""Keyword arguments families pass that change nothing in the eager math (the mask already holds the window)."""


def _own_eager(module: Any) -> Any:
    """The eager attention function of the module's own modeling file."""
    return sys.modules[type(module).__module__].eager_attention_forward


def grouped_eager_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention ([batch, heads, q, d] queries over [batch, kv_heads, keys, d] keys) returning its weights."""
    extras = {name for name, value in kwargs.items() if value is not None and name not in PLAIN_KWARGS}
    shared = query.shape[1] != key.shape[1] and query.shape[1] % key.shape[1] == 0  # grouped-query attention
    if extras or not shared or (dropout and module.training) or scaling is None:
        return _own_eager(module)(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    batch, heads, rows, _ = query.shape
    kv_heads, keys = key.shape[1], key.shape[2]
    group = heads // kv_heads
    grouped = query.reshape(batch, kv_heads, group * rows, query.shape[-1])
    scores = torch.matmul(grouped, key.transpose(2, 3)).view(batch, heads, rows, keys) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, :, :keys]
    weights = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(weights.view(batch, kv_heads, group * rows, keys), value)
    output = output.view(batch, heads, rows, value.shape[-1]).transpose(1, 2).contiguous()
    return output, weights


AttentionInterface.register(CAPTURE_KERNEL, grouped_eager_attention)
AttentionMaskInterface.register(CAPTURE_KERNEL, eager_mask)
