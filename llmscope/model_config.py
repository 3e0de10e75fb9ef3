"""Reading a model folder's config.json without trusting it: size, JSON, and the numbers that size a model.

A config is read only when it is a regular file under MAX_CONFIG_BYTES, must be a JSON object with
finite numbers, and every size it declares (layers, heads, vocabulary, context…) must be a positive
integer under a sane bound, with the KV heads dividing the query heads. So `kv-calc` and a model
load answer a hostile or broken config with one line naming the field, before torch is imported.
Standard library only.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "check_config_numbers", "read_config"]

MAX_CONFIG_BYTES = 4 * 2**20
"""Real configs are a few KB (a long id2label table makes some ~100 KB)."""

SIZE_BOUNDS: dict[str, int] = {
    "num_hidden_layers": 1024,
    "n_layer": 1024,
    "num_layers": 1024,
    "num_attention_heads": 4096,
    "n_head": 4096,
    "num_key_value_heads": 4096,
    "num_kv_heads": 4096,
    "n_head_kv": 4096,
    "head_dim": 65_536,
    "hidden_size": 2**20,
    "n_embd": 2**20,
    "d_model": 2**20,
    "intermediate_size": 2**22,
    "vocab_size": 2**20,
    "max_position_embeddings": 2**24,
    "n_positions": 2**24,
}
"""Keys that size a model, each a positive integer at most this (a 10⁹ vocabulary or 2⁶² layers is refused)."""

OPTIONAL_COUNTS: dict[str, int] = {
    "sliding_window": 2**24,
    "num_local_experts": 4096,
    "num_experts": 4096,
    "n_routed_experts": 4096,
    "num_experts_per_tok": 4096,
    "kv_lora_rank": 65_536,
    "qk_rope_head_dim": 65_536,
}
"""Keys that may be 0 (off) but otherwise are bounded integers."""


class ConfigError(ValueError):
    """A config.json that cannot be used; the message is one line naming the file and field."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config as a dict, checked as described above; ConfigError otherwise."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise ConfigError(f"{source}: not a regular file")
            if status.st_size > MAX_CONFIG_BYTES:
                raise ConfigError(f"{source}: {status.st_size:,} bytes, above the limit of {MAX_CONFIG_BYTES:,}")
            raw = handle.read(status.st_size + 1)
    except OSError as error:
        raise ConfigError(f"{source}: cannot read it ({error.strerror or error})") from None
    try:
        config = json.loads(raw.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ConfigError(f"{source} is not valid JSON ({str(error).splitlines()[0][:120]})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{source} does not hold a JSON object (it holds a {type(config).__name__})")
    check_config_numbers(config, str(source))
    return config


def _count(config: dict[str, Any], key: str, lowest: int, highest: int, where: str) -> int | None:
    value = config.get(key)
    if value is None or (key == "sliding_window" and value is False):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        kind = "a positive integer" if lowest == 1 else "a non-negative integer"
        raise ConfigError(f"{where}: {key} must be {kind} up to {highest:,}, got {json.dumps(value)[:40]}")
    return value


def check_config_numbers(config: dict[str, Any], where: str = "config.json") -> None:
    """Every size key present is a bounded positive integer and the KV heads divide the query heads.

    A nested `text_config` (multimodal wrappers) is checked the same way.
    """
    for key, highest in SIZE_BOUNDS.items():
        _count(config, key, 1, highest, where)
    for key, highest in OPTIONAL_COUNTS.items():
        _count(config, key, 0, highest, where)
    heads = next((config[k] for k in ("num_attention_heads", "n_head") if config.get(k) is not None), None)
    kv_heads = next(
        (config[k] for k in ("num_key_value_heads", "num_kv_heads", "n_head_kv") if config.get(k) is not None), None
    )
    if heads is not None and kv_heads is not None and heads % kv_heads:
        raise ConfigError(f"{where}: {kv_heads} KV heads do not divide {heads} attention heads")
    nested = config.get("text_config")
    if isinstance(nested, dict):
        check_config_numbers(nested, f"{where} (text_config)")
