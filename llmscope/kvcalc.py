"""KV-cache size calculator: 2 × layers × kv_heads × head_dim × tokens × batch × bytes per element.

Pure Python (no torch, no UI) so `llmscope kv-calc` and the KV pane's what-if rows work anywhere.
Shapes come from presets with published config numbers or from any transformers config.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from llmscope import cache_layout
from llmscope.cache_layout import LayerCache, Pricing
from llmscope.format import format_bytes_exact, format_bytes_per_element
from llmscope.kv_presets import PUBLISHED_CONFIGS
from llmscope.model_config import read_config

__all__ = [
    "DTYPE_BYTES",
    "PRESETS",
    "KVEstimate",
    "KVShape",
    "dtype_bytes",
    "estimate",
    "formula_bytes",
    "formula_text",
    "get_preset",
    "shape_from_config",
    "shape_from_config_file",
    "what_if",
]

DEFAULT_WHAT_IF_WINDOW = 4096
"""Window used by the 'with a sliding window' what-if row (Mistral 7B v0.1's value)."""


@dataclass(frozen=True)
class KVShape:
    """The attention dimensions that decide KV-cache size, and where they were read from."""

    name: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    sliding_window: int | None = None
    """Tokens a rolling cache keeps per layer (None: every token stays cached)."""
    source: str = ""
    """Where the numbers come from, e.g. 'config.json of meta-llama/Meta-Llama-3-70B'."""
    layers: tuple[LayerCache, ...] = ()
    """Per-kind cache model (sliding, MLA, SSM… groups); empty: every layer full, or sliding by `sliding_window`."""

    def __post_init__(self) -> None:
        for field_name in ("num_layers", "num_heads", "num_kv_heads", "head_dim"):
            value = getattr(self, field_name)
            lowest = 0 if self.layers and not any(cache.has_keys for cache in self.layers) else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(f"{self.name}: {field_name} must be a positive integer, got {value!r}")
        window = self.sliding_window
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"{self.name}: sliding_window must be None or a positive integer, got {window!r}")

    @property
    def caches(self) -> tuple[LayerCache, ...]:
        """The per-kind cache model: `layers` when given, else one full (or sliding) group of num_layers."""
        if self.layers:
            return self.layers
        kind = cache_layout.SLIDING if self.sliding_window else cache_layout.FULL
        window = self.sliding_window or 0
        return (LayerCache(kind, self.num_layers, self.num_kv_heads, self.head_dim, window=window),)

    @property
    def attention_kind(self) -> str:
        """'MHA', 'GQA' or 'MQA', from how many query heads share one KV head; 'MLA' (latents), 'no attention'."""
        kinds = {cache.kind for cache in self.caches}
        if cache_layout.MLA in kinds:
            return "MLA"
        if not any(cache.has_keys for cache in self.caches):
            return "no attention"
        if self.num_kv_heads == 1 and self.num_heads > 1:
            return "MQA"
        return "MHA" if self.num_kv_heads >= self.num_heads else "GQA"


QUANT_SCHEMES: dict[str, str] = {
    "int8": "int8 with one fp16 scale per group of 64 (symmetric): 1 + 2/64 B per number",
    "int4": "int4 with an fp16 scale and an fp16 zero-point per group of 32 (asymmetric): 0.5 + 4/32 B per number",
}
"""How the integer what-ifs store a number, scales included (transformers' quantized caches group the same way)."""

DTYPE_BYTES: dict[str, float] = {
    "fp32": 4,
    "float32": 4,
    "bf16": 2,
    "bfloat16": 2,
    "fp16": 2,
    "float16": 2,
    "fp8": 1,
    "int8": 1 + 2 / 64,
    "int4": 0.5 + 4 / 32,
}

MODEL_DTYPES = frozenset({"fp32", "float32", "bf16", "bfloat16", "fp16", "float16"})
"""Dtypes a model computes in; the others (fp8, int8, int4) only a KV quantiser uses, so states stay in bf16."""


def state_pricing(dtype: str, state_dtype: str | None = None) -> Pricing:
    """Keys at `dtype`; conv and recurrent states at `state_dtype` when given, else as transformers keeps them:
    conv states in the model's dtype (bf16 when `dtype` is a quantised KV format), recurrent states in float32."""
    keys = dtype_bytes(dtype)
    if state_dtype is not None:
        return Pricing(keys, dtype_bytes(state_dtype), dtype_bytes(state_dtype))
    model = keys if dtype.strip().lower().removeprefix("torch.") in MODEL_DTYPES else DTYPE_BYTES["bf16"]
    return Pricing(keys, model, cache_layout.RECURRENT_STATE_BYTES)


def get_preset(name: str) -> KVShape:
    """Look up a preset by name (case-insensitive), with the valid names in the error."""
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[key]


def dtype_bytes(dtype: str) -> float:
    """Bytes per cached element for a dtype name ('bf16', 'torch.float16', 'INT4'...)."""
    key = dtype.strip().lower().removeprefix("torch.")
    if key not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[key]


# ---------------------------------------------------------------------------------------------
# Reading shapes from config.json


def _first_int(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first of `keys` present with a non-null value in `config`."""
    for key in keys:
        value = config.get(key)
        if value is not None:
            return int(value)
    return None


def _require_int(config: dict[str, Any], keys: tuple[str, ...], name: str) -> int:
    value = _first_int(config, keys)
    if value is None:
        raise ValueError(f"{name}: config has none of {', '.join(keys)}")
    return value


def shape_from_config(config: dict[str, Any], name: str, *, source: str = "") -> KVShape:
    """Build a KVShape from a config dict: the per-kind layout (cache_layout) plus the attention numbers."""
    if "num_hidden_layers" not in config and "n_layer" not in config and isinstance(config.get("text_config"), dict):
        return shape_from_config(config["text_config"], name, source=source)  # multimodal wrapper
    num_layers = _require_int(config, ("num_hidden_layers", "n_layer", "num_layers"), name)
    num_heads, num_kv_heads, head_dim = cache_layout.attention_numbers(config)
    layers = cache_layout.layer_caches(config)
    if not num_heads and any(cache.has_keys for cache in layers):
        _require_int(config, ("num_attention_heads", "n_head"), name)
    windows = {cache.window for cache in layers if cache.has_keys}
    return KVShape(
        name=name,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        sliding_window=windows.pop() or None if len(windows) == 1 else None,
        source=source or f"config of {name}",
        layers=layers,
    )


def shape_from_config_file(path: str | Path, name: str | None = None) -> KVShape:
    """Read a config.json (or a model folder holding one) into a KVShape."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json at {path}")
    config = read_config(path)  # size, JSON and every size field checked (ConfigError is a ValueError)
    name = name or config.get("_name_or_path") or path.parent.name or "model"
    return shape_from_config(config, name, source=f"config.json at {path}")


PRESETS: dict[str, KVShape] = {
    name: shape_from_config(config, name, source=f"config.json of {repository}")
    for name, (repository, config) in PUBLISHED_CONFIGS.items()
}


# ---------------------------------------------------------------------------------------------
# Estimates


def formula_bytes(
    num_layers: int, num_kv_heads: int, head_dim: int, tokens: int, bytes_per_element: float, batch: int = 1
) -> int:
    """2 (keys and values) × layers × kv_heads × head_dim × tokens × batch × bytes per element, rounded up."""
    elements = 2 * num_layers * num_kv_heads * head_dim * tokens * batch
    return math.ceil(Fraction(bytes_per_element) * elements)


def formula_text(
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    tokens: int,
    bytes_per_element: float,
    *,
    batch: int | None = None,
) -> str:
    """The KV formula with its numbers, the one spelling every screen, caption and the CLI show:
    '2 × 30 layers × 3 kv_heads × 64 head_dim × 13 tokens × 4 B = 599,040 B'.

    The batch factor is written only when `batch` is given (a kv-calc estimate for a chosen batch); a cache
    measured on one sequence has none.
    """
    total = formula_bytes(num_layers, num_kv_heads, head_dim, tokens, bytes_per_element, batch or 1)
    batch_term = f" × {batch} batch" if batch is not None else ""
    return (
        f"2 × {num_layers} layers × {num_kv_heads} kv_heads × {head_dim} head_dim × {tokens} tokens{batch_term}"
        f" × {format_bytes_per_element(bytes_per_element)} = {format_bytes_exact(total)}"
    )


@dataclass(frozen=True)
class KVEstimate:
    """KV-cache bytes for one shape, context, batch and dtype, with the formula spelled out."""

    shape: KVShape
    context: int
    batch: int
    dtype: str
    bytes_per_element: float
    tokens_cached: int
    """Most tokens any layer keeps: the context when a layer has full attention, else what the windows keep
    (transformers' sliding layers keep W−1 between steps); 0 for a model without keys (SSM only)."""
    total_bytes: int
    """Exact; a fractional byte count (int4) rounds up."""
    formula_text: str
    gb: float
    """total_bytes / 1e9"""
    gib: float
    """total_bytes / 2**30"""
    window_used: bool = True
    """False for the 'full cache' what-if, which ignores the model's sliding windows."""
    pricing: Pricing | None = None
    """Bytes per number of keys, conv and recurrent states (None: all at bytes_per_element)."""

    @property
    def window_applied(self) -> bool:
        """True when some layer's sliding window keeps fewer tokens than the context."""
        return any(cache.tokens_held(self.context) < self.context for cache in self.caches if cache.has_keys)

    @property
    def caches(self) -> tuple[LayerCache, ...]:
        """The per-kind cache model this estimate used (window on or off)."""
        return self.shape.caches if self.window_used else tuple(_without_window(self.shape.caches))

    @property
    def bytes_per_token(self) -> float:
        """Cache bytes added by one more token of one sequence (before any window caps it)."""
        per_token = sum(cache.layers * cache.per_token_elements() for cache in self.caches)
        return per_token * self.bytes_per_element


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


def layout_formula_bytes(
    caches: tuple[LayerCache, ...],
    tokens: int,
    bytes_per_element: float,
    batch: int = 1,
    *,
    pricing: Pricing | None = None,
) -> int:
    """Bytes of a per-kind cache layout after `tokens` tokens, for `batch` sequences, rounded up; `pricing` prices
    states apart from keys (default: every number at `bytes_per_element`)."""
    return cache_layout.layout_bytes(caches, tokens, pricing or Pricing.uniform(bytes_per_element), batch)


def layout_formula_text(
    caches: tuple[LayerCache, ...],
    tokens: int,
    bytes_per_element: float,
    *,
    batch: int | None = None,
    pricing: Pricing | None = None,
) -> str:
    """The per-kind formula with its numbers; one full-attention group reads exactly like formula_text.

    e.g. '(2 × 26 layers window 4096 × 8 kv_heads × 256 head_dim × 4095 tokens + …) × 2 B = … B'. When states are
    priced apart from keys each part gets its own bytes: '(keys…) × 1.03 B + 2 layers SSM × 160 conv × 2 B + …'.
    """
    pricing = pricing or Pricing.uniform(bytes_per_element)
    if len(caches) == 1 and caches[0].kind == cache_layout.FULL:
        only = caches[0]
        return formula_text(only.layers, only.kv_heads, only.head_dim, tokens, bytes_per_element, batch=batch)
    total = layout_formula_bytes(caches, tokens, bytes_per_element, batch or 1, pricing=pricing)
    batch_term = f" × {batch} batch" if batch is not None else ""
    terms = cache_layout.priced_terms(caches, tokens)
    prices = {"keys": pricing.keys, "conv": pricing.conv, "recurrent": pricing.recurrent}
    if len({prices[part] for part, _ in terms}) < 2:
        text = cache_layout.formula_terms(caches, tokens)
        return f"{text}{batch_term} × {format_bytes_per_element(bytes_per_element)} = {format_bytes_exact(total)}"
    parts = []
    for part in ("keys", "conv", "recurrent"):
        mine = [term for kind, term in terms if kind == part]
        if mine:
            joined = mine[0] if len(mine) == 1 else "(" + " + ".join(mine) + ")"
            parts.append(f"{joined} × {format_bytes_per_element(prices[part])}")
    summed = " + ".join(parts)
    return (
        f"({summed}){batch_term} = {format_bytes_exact(total)}"
        if batch_term
        else f"{summed} = {format_bytes_exact(total)}"
    )


def _without_window(caches: tuple[LayerCache, ...]) -> list[LayerCache]:
    """The same layout with every sliding window removed (sliding layers become full attention)."""
    out = []
    for cache in caches:
        if cache.kind == cache_layout.SLIDING:
            cache = replace(cache, kind=cache_layout.FULL, window=0)
        out.append(replace(cache, window=0) if cache.window else cache)
    return list(cache_layout.grouped(out))


def estimate(
    shape: KVShape,
    context: int,
    batch: int = 1,
    dtype: str = "bf16",
    use_window: bool = True,
    state_dtype: str | None = None,
) -> KVEstimate:
    """KV-cache size of `batch` sequences of `context` tokens, by the per-kind model (windows cap their layers).

    `dtype` prices keys and values (integer dtypes count their scales, QUANT_SCHEMES); SSM and linear-attention
    states are priced by state_pricing (they never grow with tokens, and a KV quantiser leaves them alone).
    """
    return _estimate(shape, context, batch, dtype, use_window, state_pricing(dtype, state_dtype))


def _estimate(shape: KVShape, context: int, batch: int, dtype: str, use_window: bool, pricing: Pricing) -> KVEstimate:
    _check_count(context, "context")
    _check_count(batch, "batch")
    per_element = dtype_bytes(dtype)
    caches = shape.caches if use_window else tuple(_without_window(shape.caches))
    held = [cache.tokens_held(context) for cache in caches if cache.has_keys]
    tokens = max(held) if held else 0
    total = layout_formula_bytes(caches, context, per_element, batch, pricing=pricing)
    formula = layout_formula_text(caches, context, per_element, batch=batch, pricing=pricing)
    return KVEstimate(
        shape=shape,
        context=context,
        batch=batch,
        dtype=dtype,
        bytes_per_element=per_element,
        tokens_cached=tokens,
        total_bytes=total,
        formula_text=formula,
        gb=total / 1e9,
        gib=total / 2**30,
        window_used=use_window,
        pricing=pricing,
    )


def what_if(
    shape: KVShape, context: int, batch: int = 1, dtype: str = "bf16", state_dtype: str | None = None
) -> list[tuple[str, KVEstimate]]:
    """Labelled alternatives for the KV pane: as is, other cache dtypes, MHA, and window on/off.

    Each row changes only what it names: a dtype row reprices keys and values, never SSM or linear-attention
    states (they keep the as-is pricing). The MHA row appears only for GQA/MQA models; a model without a
    window gets a 4096-token window row, a model with one gets a 'full cache' row instead.
    """
    base = state_pricing(dtype, state_dtype)
    has_states = any(cache.state_elements for cache in shape.caches)
    what = "keys/values" if has_states else "cache"

    def keys_at(name: str) -> KVEstimate:
        return _estimate(shape, context, batch, name, True, replace(base, keys=dtype_bytes(name)))

    rows: list[tuple[str, KVEstimate]] = [(f"as is ({dtype})", _estimate(shape, context, batch, dtype, True, base))]
    if any(cache.has_keys for cache in shape.caches):
        rows += [(f"fp16 {what}", keys_at("fp16"))]
        rows += [(f"{name} {what} (+ scales)", keys_at(name)) for name in ("int8", "int4")]
    caches = shape.caches
    grouped_attention = [cache for cache in caches if cache.kind != cache_layout.MLA and 0 < cache.kv_heads]
    if shape.num_kv_heads < shape.num_heads and grouped_attention:
        mha_layers = tuple(replace(c, kv_heads=shape.num_heads) if c.kv_heads else c for c in caches)
        mha = replace(shape, name=f"{shape.name} (MHA)", num_kv_heads=shape.num_heads, layers=mha_layers)
        label = f"MHA: {shape.num_heads} kv_heads instead of {shape.num_kv_heads}"
        rows.append((label, _estimate(mha, context, batch, dtype, True, base)))
    if any(cache.window for cache in caches):
        rows.append(("full cache (no sliding window)", _estimate(shape, context, batch, dtype, False, base)))
    elif any(cache.kind == cache_layout.FULL for cache in caches):
        windowed_layers = tuple(
            replace(c, kind=cache_layout.SLIDING, window=DEFAULT_WHAT_IF_WINDOW) if c.kind == cache_layout.FULL else c
            for c in caches
        )
        windowed = replace(
            shape, name=f"{shape.name} (window)", sliding_window=DEFAULT_WHAT_IF_WINDOW, layers=windowed_layers
        )
        rows.append(
            (f"sliding window {DEFAULT_WHAT_IF_WINDOW}", _estimate(windowed, context, batch, dtype, True, base))
        )
    return rows
