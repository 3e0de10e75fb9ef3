"""Checks shared by the session reader: the error type, the size limits, and typed field decoders.

Every decoder names the field it failed on (`forwards[3].position must be an integer`), so a damaged or hostile
file gives one line saying where; the file reader and the manifest codec both use these, so each rule lives once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

from llmscope.cache_layout import LayerCache
from llmscope.trace import ModelInfo

MAX_INT = 2**62


class SessionFormatError(Exception):
    """A session file that cannot be loaded; the message is one line naming the problem."""


@dataclass(frozen=True)
class Limits:
    """Bounds a file must respect before anything is allocated (a hostile file cannot exhaust memory)."""

    max_array_elements: int = 2**26
    """Per array: 64 Mi elements (128 MiB of float16)."""
    max_total_elements: int = 2**28
    """All arrays together: 256 Mi elements."""
    max_manifest_bytes: int = 32 * 2**20
    """About 6,000 steps of a 30-layer model (the manifest grows ~5 KB a step)."""
    max_members: int = 200_000
    max_file_bytes: int = 2 * 2**30
    """The file itself (checked before a byte is read): 2 GiB."""
    max_expansion: int = 50
    """Declared array bytes may exceed the file's size at most this many times (real sessions: ~1.5)…"""
    expansion_floor_bytes: int = 16 * 2**20
    """…or this much in total, whichever is larger (a zip of zeros declaring gigabytes is refused unread)."""
    max_vocab_size: int = 2**20
    """About 4x the largest real vocabularies (Gemma: 262,144); a replay samples over all of it."""
    max_layers: int = 1024
    max_heads: int = 4096
    max_context: int = 2**24
    max_experts: int = 4096


MODEL_BOUNDS = {
    "vocab_size": "max_vocab_size",
    "num_layers": "max_layers",
    "num_heads": "max_heads",
    "num_kv_heads": "max_heads",
    "max_context": "max_context",
    "num_experts": "max_experts",
    "experts_per_token": "max_experts",
}
"""ModelInfo fields that size arrays (logits, attention, routing), with the Limits field that caps each."""


def check_model_bounds(model: ModelInfo, limits: Limits) -> None:
    """Sizes that arrays are built from are capped, and the head counts divide (a GQA group is whole)."""
    for name, limit_name in MODEL_BOUNDS.items():
        limit = getattr(limits, limit_name)
        if getattr(model, name) > limit:
            raise fail(f"model.{name}", f"is {getattr(model, name):,}, above the limit of {limit:,}")
    if model.num_heads and (model.num_kv_heads < 1 or model.num_heads % model.num_kv_heads):
        raise fail(
            "model.num_kv_heads", f"is {model.num_kv_heads}, which does not divide num_heads ({model.num_heads})"
        )


def fail(where: str, problem: str) -> SessionFormatError:
    return SessionFormatError(f"manifest field {where} {problem}")


def integer(value: Any, where: str, low: int = -MAX_INT, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"must be an integer, got {value!r:.40}")
    if not low <= value <= high:
        raise fail(where, f"must be in [{low}, {high}], got {value}")
    return value


def finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fail(where, f"must be a finite number, got {value!r:.40}")
    return float(value)


def typed(value: Any, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise fail(where, f"must be {what}, got {value!r:.40}")
    return value


def token_ids(value: Any, where: str, vocab_size: int, *, allow_empty: bool = False) -> tuple[int, ...]:
    items = typed(value, list, where, "a list of token ids")
    if not items and not allow_empty:
        raise fail(where, "must not be empty")
    return tuple(integer(item, f"{where}[{n}]", 0, vocab_size - 1) for n, item in enumerate(items))


def field_value(annotation: str, value: Any, where: str) -> Any:
    """Decode one dataclass field from its annotation (the simple types trace records use)."""
    if annotation.endswith(" | None"):
        return None if value is None else field_value(annotation.removesuffix(" | None"), value, where)
    if annotation == "int":
        return integer(value, where)
    if annotation == "float":
        return finite(value, where)
    if annotation == "str":
        return typed(value, str, where, "a string")
    if annotation == "bool":
        return typed(value, bool, where, "true or false")
    if annotation == "bytes":
        try:
            return bytes.fromhex(typed(value, str, where, "a hex string"))
        except ValueError:
            raise fail(where, "must be a hex string") from None
    if annotation == "tuple[int, ...]":
        return tuple(integer(item, f"{where}[{n}]") for n, item in enumerate(typed(value, list, where, "a list")))
    if annotation == "tuple[str, ...]":
        items = typed(value, list, where, "a list")
        return tuple(typed(item, str, f"{where}[{n}]", "a string") for n, item in enumerate(items))
    if annotation == "tuple[LayerCache, ...]":
        items = typed(value, list, where, "a list")
        return tuple(decode_record(LayerCache, item, f"{where}[{n}]") for n, item in enumerate(items))
    if annotation == "dict[str, str]":
        items = typed(value, dict, where, "an object")
        return {key: typed(item, str, f"{where}.{key}", "a string") for key, item in items.items()}
    raise TypeError(f"no decoder for {annotation}")  # a programming error, not a file problem


SLOW = object()


def fast_value(annotation: str, raw: Any) -> Any:
    """The common well-formed cases without building error paths (a KV-rich manifest has ~10⁵ fields)."""
    kind = type(raw)
    if annotation == "int":
        return raw if kind is int and -MAX_INT <= raw <= MAX_INT else SLOW
    if annotation in ("str", "str | None"):
        return raw if kind is str else SLOW
    if annotation == "bool":
        return raw if kind is bool else SLOW
    if annotation == "tuple[int, ...]":
        ok = kind is list and all(type(item) is int and -MAX_INT <= item <= MAX_INT for item in raw)
        return tuple(raw) if ok else SLOW
    return SLOW


@functools.cache
def record_fields(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(name, annotation, required) of each init field of a dataclass."""
    return tuple(
        (item.name, str(item.type), item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING)
        for item in dataclasses.fields(cls)
        if item.init
    )


def decode_record(cls: type, value: Any, where: str, **given: Any) -> Any:
    """Build dataclass `cls` from a JSON object: known fields checked, unknown keys ignored (forward compatible)."""
    fields = typed(value, dict, where, "an object")
    values = dict(given)
    for name, annotation, required in record_fields(cls):
        if name in given:
            continue
        if name in fields:
            decoded = fast_value(annotation, fields[name])
            values[name] = decoded if decoded is not SLOW else field_value(annotation, fields[name], f"{where}.{name}")
        elif required:
            raise fail(f"{where}.{name}", "is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise fail(where, f"is invalid ({error})") from None


def one_line(error: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
