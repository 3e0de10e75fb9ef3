"""Turn one forward's torch outputs into the trace's plain numpy records: attention rows, KV sizes, routing.

Each function follows the model's structure layer by layer: sliding-window, SSM and hybrid layers
return differently shaped data, and every figure here is read from the real tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from llmscope.cache_layout import LayerCache
from llmscope.engine_api import EngineError
from llmscope.engines.routing import RouterRule, route
from llmscope.trace import KVLayerStats, KVStats, ModelInfo, RouterTrace


def attention_rows(
    attentions: Sequence[Any],
    info: ModelInfo,
    start_position: int,
    keep_rows: int,
    *,
    sinks: bool,
) -> tuple[np.ndarray, int, tuple[int, ...], np.ndarray | None]:
    """Per-model-layer rows [layers, heads, rows, keys] at their true key positions, padded with zeros.

    transformers returns one pattern per attention layer, [1, heads, rows, k]; a sliding layer's decode
    row holds only its window's k keys, which are always the *last* k positions, so each pattern goes
    into the columns context−k … context−1. Layers without attention (SSM, linear) stay zero. Returns
    (rows, first row's position, model layers captured, sink weight [layers, heads, rows] or None).
    """
    layers = info.attention_layers
    if len(attentions) == len(layers):
        captured = layers
    elif len(attentions) == info.num_layers:
        captured = tuple(range(info.num_layers))
    else:
        raise EngineError(
            f"{info.name} returned attention for {len(attentions)} layers but has {len(layers)} attention layers"
        )
    first = attentions[0]
    heads, rows = int(first.shape[1]), int(first.shape[2])
    context = start_position + rows
    keep = min(rows, keep_rows)
    padded = torch.zeros((info.num_layers, heads, keep, context), dtype=torch.float32)
    for layer, pattern in zip(captured, attentions, strict=True):
        if pattern.shape[1] != heads:
            raise EngineError(f"layer {layer} of {info.name} has {pattern.shape[1]} heads, others {heads}")
        keys = int(pattern.shape[-1])
        padded[layer, :, :, context - keys :] = pattern[0, :, rows - keep :, :].float().cpu()
    sink = None
    if sinks:
        sink = torch.zeros((info.num_layers, heads, keep), dtype=torch.float32)
        for layer in captured:
            sink[layer] = (1.0 - padded[layer].sum(dim=-1)).clamp(min=0.0)
    return padded.numpy(), start_position + rows - keep, captured, None if sink is None else sink.numpy()


def _tensor_bytes(tensor: Any) -> int:
    return tensor.numel() * tensor.element_size() if isinstance(tensor, torch.Tensor) else 0


def _states(layer: Any, name: str) -> list[torch.Tensor]:
    states = getattr(layer, name, None)
    if not isinstance(states, dict):
        return []
    return [state for state in states.values() if isinstance(state, torch.Tensor) and state.numel()]


def kv_stats(cache: Any, info: ModelInfo, tokens: int, per_layer: Sequence[LayerCache]) -> KVStats | None:
    """Measured bytes of every cache layer: keys and values (or MLA latents) plus conv and recurrent states."""
    layers = getattr(cache, "layers", None)
    if not layers:
        return None
    stats = []
    element_size = 0
    for number, layer in enumerate(layers):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not (isinstance(keys, torch.Tensor) and keys.numel() and isinstance(values, torch.Tensor)):
            keys = values = None
        conv, recurrent = _states(layer, "conv_states"), _states(layer, "recurrent_states")
        tensors = [tensor for tensor in (keys, values, *conv, *recurrent) if tensor is not None]
        if not tensors:
            continue
        nbytes = sum(_tensor_bytes(tensor) for tensor in tensors)
        first = tensors[0]
        element_size = element_size or first.element_size()
        spec = per_layer[number] if number < len(per_layer) else None
        stats.append(
            KVLayerStats(
                layer=number,
                key_shape=tuple(keys.shape) if keys is not None else (),
                value_shape=tuple(values.shape) if values is not None else (),
                dtype=str(first.dtype).removeprefix("torch."),
                nbytes=nbytes,
                kind=spec.kind if spec else "full",
                window=spec.window if spec else 0,
                conv_shape=tuple(conv[0].shape) if conv else (),
                recurrent_shape=tuple(recurrent[0].shape) if recurrent else (),
            )
        )
    return KVStats(
        layers=tuple(stats),
        tokens=tokens,
        bytes_per_element=element_size,
        num_layers=info.num_layers,
        num_kv_heads=info.num_kv_heads,
        head_dim=info.head_dim,
        cache_layers=info.cache_layers,
    )


def routing(
    logits_per_layer: Sequence[torch.Tensor], rule: RouterRule, layers: tuple[int, ...], bias: torch.Tensor | None
) -> RouterTrace:
    """The family's rule applied to the router logits of every MoE layer: [moe_layers, positions, …]."""
    logits = torch.stack(
        [layer.float().reshape(-1, layer.shape[-1]).to(logits_per_layer[0].device) for layer in logits_per_layer]
    )
    weights, experts = route(logits, rule, bias)
    return RouterTrace(
        layers=layers,
        logits=logits.cpu().numpy(),
        experts=experts.cpu().numpy().astype(np.int64),
        weights=weights.cpu().numpy(),
        rule=rule.description,
    )
