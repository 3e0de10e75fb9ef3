"""What a loaded model is made of: each layer's kind and cache model, and where its routers are.

Nothing here assumes `layer.mlp` or `config.num_attention_heads`: layer kinds come from the config
(cache_layout, the same model `kv-calc` uses), checked against the cache layer classes transformers
builds for the model; routers are found by the class the model itself records `router_logits` from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import (
    CacheLayerMixin,
    DummyLayer,
    DynamicSlidingWindowLayer,
    LinearAttentionCacheLayerMixin,
)

from llmscope import cache_layout
from llmscope.cache_layout import LayerCache

LAYER_NUMBER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)(?:\.|$)")
"""The decoder-layer index inside a module's qualified name (model.layers.3.mlp.gate → 3)."""


def text_config_dict(model: Any) -> dict[str, Any]:
    """The text config as a dict, with the computed `layer_types` some families only expose as a property."""
    config = model.config.get_text_config()
    values = config.to_dict()
    computed = getattr(config, "layer_types", None)
    if computed:
        values["layer_types"] = list(computed)
    return values


def _kind_of_cache_layer(layer: Any, family: str) -> str:
    """The kind transformers' cache layer class implies (hybrid before linear: it is both)."""
    if isinstance(layer, DummyLayer):
        return cache_layout.NONE
    is_linear = isinstance(layer, LinearAttentionCacheLayerMixin)
    has_keys = isinstance(layer, CacheLayerMixin)
    if is_linear and has_keys:
        return cache_layout.HYBRID
    if is_linear:
        return cache_layout.SSM if family in cache_layout.SSM_FAMILIES else cache_layout.LINEAR
    if isinstance(layer, DynamicSlidingWindowLayer):
        return cache_layout.SLIDING
    return cache_layout.FULL


@dataclass(frozen=True)
class Layout:
    """Per-layer kinds and windows, and the grouped cache model, of one model."""

    per_layer: tuple[LayerCache, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(cache.kind for cache in self.per_layer)

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(cache.window for cache in self.per_layer)

    @property
    def grouped(self) -> tuple[LayerCache, ...]:
        return cache_layout.grouped(list(self.per_layer))


def model_layout(model: Any) -> Layout:
    """Each layer's cache model from the config, its kind checked against transformers' cache layer classes."""
    values = text_config_dict(model)
    family = values.get("model_type", "")
    per_layer = cache_layout.per_layer_caches(values)
    built = DynamicCache(config=model.config).layers
    if len(built) != len(per_layer):
        return Layout(tuple(per_layer))  # a lazily built cache: nothing to check against
    checked = []
    for config_cache, layer in zip(per_layer, built, strict=True):
        kind = _kind_of_cache_layer(layer, family)
        expected = cache_layout.FULL if config_cache.kind == cache_layout.MLA else config_cache.kind
        if kind != expected:
            window = int(getattr(layer, "sliding_window", 0) or 0)
            config_cache = replace(config_cache, kind=kind, window=window)
        checked.append(config_cache)
    return Layout(tuple(checked))


def layer_number(module_name: str) -> int | None:
    """Decoder-layer index in a qualified module name, or None."""
    found = LAYER_NUMBER.search(module_name)
    return int(found.group(1)) if found else None


def _recorded_class(model: Any, key: str) -> type | None:
    """The module class a transformers model records `key` outputs from (`_can_record_outputs`), if any."""
    for module in model.modules():
        specs = getattr(type(module), "_can_record_outputs", None) or {}
        spec = specs.get(key)
        if spec is None:
            continue
        spec = spec[0] if isinstance(spec, (list, tuple)) else spec
        target = getattr(spec, "target_class", spec)
        return target if isinstance(target, type) else None
    return None


def router_modules(model: Any) -> list[tuple[int, Any]]:
    """(layer index, router module) of every MoE layer, in model order.

    The router is the module whose outputs the model records as `router_logits`; for older modeling code
    without that record, a layer's `mlp.gate` beside `mlp.experts`.
    """
    target = _recorded_class(model, "router_logits")
    found: list[tuple[int, Any]] = []
    if target is not None:
        for name, module in model.named_modules():
            number = layer_number(name)
            if isinstance(module, target) and number is not None:
                found.append((number, module))
        return found
    for name, module in model.named_modules():
        number = layer_number(name)
        if number is not None and hasattr(module, "gate") and hasattr(module, "experts") and name.endswith("mlp"):
            found.append((number, module.gate))
    return found


def has_attention_sinks(model: Any) -> bool:
    """True when attention modules carry learned sink logits (gpt-oss): rows then sum to less than 1."""
    return any(isinstance(getattr(module, "sinks", None), torch.nn.Parameter) for module in model.modules())


def supports_sdpa(model: Any) -> bool:
    """Whether the model class accepts the SDPA kernel (Gemma 2, gpt-oss and Mamba refuse it)."""
    return bool(getattr(model, "_supports_sdpa", False))
