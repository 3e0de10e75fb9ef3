"""KV-cache size calculator: 2 × layers × kv_heads × head_dim × tokens × batch × bytes per element.

Pure Python (no torch, no UI) so `llmscope kv-calc` and the KV pane's what-if rows work anywhere.
Shapes come from presets with published config numbers or from any transformers config.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from llmscope.format import format_bytes_exact, format_bytes_per_element

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

    def __post_init__(self) -> None:
        for field_name in ("num_layers", "num_heads", "num_kv_heads", "head_dim"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.name}: {field_name} must be a positive integer, got {value!r}")
        window = self.sliding_window
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ValueError(f"{self.name}: sliding_window must be None or a positive integer, got {window!r}")

    @property
    def attention_kind(self) -> str:
        """'MHA', 'GQA' or 'MQA', from how many query heads share one KV head."""
        if self.num_kv_heads == 1 and self.num_heads > 1:
            return "MQA"
        return "MHA" if self.num_kv_heads >= self.num_heads else "GQA"


# Numbers from each model's published config.json; head_dim = hidden_size / num_attention_heads.
PRESETS: dict[str, KVShape] = {
    # hidden_size 8192 = 64 heads × 128
    "llama-3-70b": KVShape("llama-3-70b", 80, 64, 8, 128, source="config.json of meta-llama/Meta-Llama-3-70B"),
    # hidden_size 4096 = 32 heads × 128
    "llama-3-8b": KVShape("llama-3-8b", 32, 32, 8, 128, source="config.json of meta-llama/Meta-Llama-3-8B"),
    # hidden_size 4096 = 32 heads × 128; plain MHA (num_key_value_heads = 32)
    "llama-2-7b": KVShape("llama-2-7b", 32, 32, 32, 128, source="config.json of meta-llama/Llama-2-7b-hf"),
    # hidden_size 4096 = 32 heads × 128; sliding_window 4096 (v0.2 and later set it to null)
    "mistral-7b": KVShape(
        "mistral-7b", 32, 32, 8, 128, sliding_window=4096, source="config.json of mistralai/Mistral-7B-v0.1"
    ),
    # hidden_size 4096 = 32 heads × 128; sliding_window null; the 8 experts share one attention
    "mixtral-8x7b": KVShape("mixtral-8x7b", 32, 32, 8, 128, source="config.json of mistralai/Mixtral-8x7B-v0.1"),
    # n_embd 768 = 12 heads × 64
    "gpt-2": KVShape("gpt-2", 12, 12, 12, 64, source="config.json of openai-community/gpt2"),
    # hidden_size 576 = 9 heads × 64; 3 KV heads (GQA group of 3)
    "smollm2-135m": KVShape("smollm2-135m", 30, 9, 3, 64, source="config.json of HuggingFaceTB/SmolLM2-135M"),
}

DTYPE_BYTES: dict[str, float] = {
    "fp32": 4,
    "float32": 4,
    "bf16": 2,
    "bfloat16": 2,
    "fp16": 2,
    "float16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
}


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


def _kv_heads(config: dict[str, Any], num_heads: int) -> int:
    """KV heads: Llama/Mistral/Qwen key, Falcon's keys, or plain MHA when none is given."""
    value = _first_int(config, ("num_key_value_heads", "num_kv_heads", "n_head_kv"))
    if value is not None:
        return value
    if config.get("multi_query") and not config.get("new_decoder_architecture"):
        return 1  # Falcon-7B style multi-query attention
    return num_heads


def _sliding_window(config: dict[str, Any]) -> int | None:
    """The window every layer uses, or None (Qwen2 sets a window but disables it; Gemma mixes layers)."""
    window = config.get("sliding_window")
    if not window or config.get("use_sliding_window") is False:
        return None
    layer_types = config.get("layer_types")
    if layer_types and any(kind != "sliding_attention" for kind in layer_types):
        return None  # some layers keep the full context: the full-cache figure is the honest one
    return int(window)


def shape_from_config(config: dict[str, Any], name: str, *, source: str = "") -> KVShape:
    """Build a KVShape from a config dict (Llama/Mistral/Mixtral/Qwen2-MoE keys or GPT-2's n_* keys)."""
    if "num_hidden_layers" not in config and "n_layer" not in config and isinstance(config.get("text_config"), dict):
        return shape_from_config(config["text_config"], name, source=source)  # multimodal wrapper
    num_layers = _require_int(config, ("num_hidden_layers", "n_layer", "num_layers"), name)
    num_heads = _require_int(config, ("num_attention_heads", "n_head"), name)
    head_dim = _first_int(config, ("head_dim",))
    if head_dim is None:
        hidden = _require_int(config, ("hidden_size", "n_embd", "d_model"), name)
        head_dim = hidden // num_heads
    return KVShape(
        name=name,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=_kv_heads(config, num_heads),
        head_dim=head_dim,
        sliding_window=_sliding_window(config),
        source=source or f"config of {name}",
    )


def shape_from_config_file(path: str | Path, name: str | None = None) -> KVShape:
    """Read a config.json (or a model folder holding one) into a KVShape."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json at {path}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    name = name or config.get("_name_or_path") or path.parent.name or "model"
    return shape_from_config(config, name, source=f"config.json at {path}")


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
    """min(context, sliding_window) when a window applies, else context."""
    total_bytes: int
    """Exact; a fractional byte count (int4) rounds up."""
    formula_text: str
    gb: float
    """total_bytes / 1e9"""
    gib: float
    """total_bytes / 2**30"""

    @property
    def window_applied(self) -> bool:
        """True when the sliding window keeps fewer tokens than the context."""
        return self.tokens_cached < self.context

    @property
    def bytes_per_token(self) -> float:
        """Cache bytes added by one more token of one sequence (before any window caps it)."""
        return 2 * self.shape.num_layers * self.shape.num_kv_heads * self.shape.head_dim * self.bytes_per_element


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


def estimate(shape: KVShape, context: int, batch: int = 1, dtype: str = "bf16", use_window: bool = True) -> KVEstimate:
    """KV-cache size of `batch` sequences of `context` tokens (capped by the model's window if any)."""
    _check_count(context, "context")
    _check_count(batch, "batch")
    per_element = dtype_bytes(dtype)
    window = shape.sliding_window if use_window else None
    tokens = min(context, window) if window else context
    dims = (shape.num_layers, shape.num_kv_heads, shape.head_dim, tokens, per_element)
    total = formula_bytes(*dims, batch)
    formula = formula_text(*dims, batch=batch)
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
    )


def what_if(shape: KVShape, context: int, batch: int = 1, dtype: str = "bf16") -> list[tuple[str, KVEstimate]]:
    """Labelled alternatives for the KV pane: as is, other cache dtypes, MHA, and window on/off.

    The MHA row appears only for GQA/MQA models; a model without a window gets a 4096-token
    window row, a model with one gets a 'full cache' row instead.
    """
    rows: list[tuple[str, KVEstimate]] = [(f"as is ({dtype})", estimate(shape, context, batch, dtype))]
    rows += [(f"{name} cache", estimate(shape, context, batch, name)) for name in ("fp16", "int8", "int4")]
    if shape.num_kv_heads < shape.num_heads:
        mha = replace(shape, name=f"{shape.name} (MHA)", num_kv_heads=shape.num_heads)
        label = f"MHA: {shape.num_heads} kv_heads instead of {shape.num_kv_heads}"
        rows.append((label, estimate(mha, context, batch, dtype)))
    if shape.sliding_window is None:
        windowed = replace(shape, name=f"{shape.name} (window)", sliding_window=DEFAULT_WHAT_IF_WINDOW)
        rows.append((f"sliding window {DEFAULT_WHAT_IF_WINDOW}", estimate(windowed, context, batch, dtype)))
    else:
        rows.append(("full cache (no sliding window)", estimate(shape, context, batch, dtype, use_window=False)))
    return rows
