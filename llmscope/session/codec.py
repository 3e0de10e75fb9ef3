"""The session manifest: Session ⇄ JSON-ready dicts, and a decoder that checks every field it reads.

Decoding trusts nothing: each field's type and range is checked, array declarations are matched
against the shapes the model implies, and the event history is replayed to prove it is consistent,
so a file that loads can be replayed without surprises. Errors name the field (`forwards[3].position`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmscope.cache_layout import LayerCache
from llmscope.sampler import SamplerConfig
from llmscope.session.recording import (
    ARRAY_ROLES,
    EVENT_TYPES,
    ComparisonEvent,
    ForceEvent,
    KnobsEvent,
    PromptEvent,
    RecordedForward,
    RecordedStep,
    ResampleEvent,
    RewindEvent,
    Session,
    SessionEvent,
    StepEvent,
)
from llmscope.trace import Capabilities, CaptureOptions, KVLayerStats, KVStats, ModelInfo, TokenInfo

MAX_INT = 2**62
ALLOWED_DTYPES: dict[str, tuple[str, ...]] = {
    "logits": ("<f2", "<f4"),
    "logit_ids": ("<i4",),
    "attention": ("<f2",),
    "hidden_norms": ("<f4",),
    "router_logits": ("<f4",),
    "router_experts": ("<i4",),
    "router_weights": ("<f4",),
}
ROUTER_ROLES = ("router_logits", "router_experts", "router_weights")


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
            raise _fail(f"model.{name}", f"is {getattr(model, name):,}, above the limit of {limit:,}")
    if model.num_heads and (model.num_kv_heads < 1 or model.num_heads % model.num_kv_heads):
        raise _fail(
            "model.num_kv_heads", f"is {model.num_kv_heads}, which does not divide num_heads ({model.num_heads})"
        )


def array_name(forward: int, role: str) -> str:
    """Zip member holding one array of one forward."""
    return f"forwards/{forward}/{role}.npy"


@dataclass(frozen=True)
class ArraySpec:
    """An array's declared dtype and shape (from the manifest's `arrays` table)."""

    dtype: str
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.elements * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"dtype {self.dtype} shape {list(self.shape)}"


# ------------------------------------------------------------------------------------ encoding
def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def plain(record: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON-ready values (tuples → lists, bytes → hex)."""
    return {item.name: _jsonable(getattr(record, item.name)) for item in dataclasses.fields(record)}


def encode_event(event: SessionEvent) -> dict[str, Any]:
    return {"kind": event.kind, **plain(event)}


def encode_forward(forward: RecordedForward, roles: list[str]) -> dict[str, Any]:
    return {
        "index": forward.index,
        "input_ids": list(forward.input_ids),
        "position": forward.position,
        "parent": forward.parent,
        "vocab_size": forward.vocab_size,
        "attention_query_start": forward.attention_query_start,
        "forward_ms": float(forward.forward_ms),
        "kv": plain(forward.kv) if forward.kv is not None else None,
        "router": {"layers": list(forward.router_layers), "rule": forward.router_rule} if forward.has_router else None,
        "arrays": roles,
        **({"attention_dropped": True} if forward.attention_dropped and "attention" not in roles else {}),
    }


def encode_session(
    session: Session, forwards: list[dict[str, Any]], arrays: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The manifest (without its format/version/written_by header)."""
    return {
        "title": session.title,
        "description": session.description,
        "created_at": session.created_at,
        "model": plain(session.model),
        "capabilities": plain(session.capabilities),
        "capture": plain(session.capture),
        "tokens": [plain(token) for _, token in sorted(session.tokens.items())],
        "forwards": forwards,
        "steps": [plain(step) for step in session.steps],
        "events": [encode_event(event) for event in session.events],
        "arrays": {name: {"dtype": array.dtype.str, "shape": list(array.shape)} for name, array in arrays.items()},
    }


# ------------------------------------------------------------------------------------ decoding
def _fail(where: str, problem: str) -> SessionFormatError:
    return SessionFormatError(f"manifest field {where} {problem}")


def _int(value: Any, where: str, low: int = -MAX_INT, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"must be an integer, got {value!r:.40}")
    if not low <= value <= high:
        raise _fail(where, f"must be in [{low}, {high}], got {value}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"must be a finite number, got {value!r:.40}")
    return float(value)


def _typed(value: Any, kind: type, where: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise _fail(where, f"must be {what}, got {value!r:.40}")
    return value


def _ids(value: Any, where: str, vocab_size: int, *, allow_empty: bool = False) -> tuple[int, ...]:
    items = _typed(value, list, where, "a list of token ids")
    if not items and not allow_empty:
        raise _fail(where, "must not be empty")
    return tuple(_int(item, f"{where}[{n}]", 0, vocab_size - 1) for n, item in enumerate(items))


def _value(annotation: str, value: Any, where: str) -> Any:
    """Decode one dataclass field from its annotation (the simple types trace records use)."""
    if annotation.endswith(" | None"):
        return None if value is None else _value(annotation.removesuffix(" | None"), value, where)
    if annotation == "int":
        return _int(value, where)
    if annotation == "float":
        return _float(value, where)
    if annotation == "str":
        return _typed(value, str, where, "a string")
    if annotation == "bool":
        return _typed(value, bool, where, "true or false")
    if annotation == "bytes":
        try:
            return bytes.fromhex(_typed(value, str, where, "a hex string"))
        except ValueError:
            raise _fail(where, "must be a hex string") from None
    if annotation == "tuple[int, ...]":
        return tuple(_int(item, f"{where}[{n}]") for n, item in enumerate(_typed(value, list, where, "a list")))
    if annotation == "tuple[str, ...]":
        items = _typed(value, list, where, "a list")
        return tuple(_typed(item, str, f"{where}[{n}]", "a string") for n, item in enumerate(items))
    if annotation == "tuple[LayerCache, ...]":
        items = _typed(value, list, where, "a list")
        return tuple(decode_record(LayerCache, item, f"{where}[{n}]") for n, item in enumerate(items))
    if annotation == "dict[str, str]":
        items = _typed(value, dict, where, "an object")
        return {key: _typed(item, str, f"{where}.{key}", "a string") for key, item in items.items()}
    raise TypeError(f"no decoder for {annotation}")  # a programming error, not a file problem


_SLOW = object()


def _fast_value(annotation: str, raw: Any) -> Any:
    """The common well-formed cases without building error paths (a KV-rich manifest has ~10⁵ fields)."""
    kind = type(raw)
    if annotation == "int":
        return raw if kind is int and -MAX_INT <= raw <= MAX_INT else _SLOW
    if annotation in ("str", "str | None"):
        return raw if kind is str else _SLOW
    if annotation == "bool":
        return raw if kind is bool else _SLOW
    if annotation == "tuple[int, ...]":
        ok = kind is list and all(type(item) is int and -MAX_INT <= item <= MAX_INT for item in raw)
        return tuple(raw) if ok else _SLOW
    return _SLOW


@functools.cache
def _record_fields(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(name, annotation, required) of each init field of a dataclass."""
    return tuple(
        (item.name, str(item.type), item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING)
        for item in dataclasses.fields(cls)
        if item.init
    )


def decode_record(cls: type, value: Any, where: str, **given: Any) -> Any:
    """Build dataclass `cls` from a JSON object: known fields checked, unknown keys ignored (forward compatible)."""
    fields = _typed(value, dict, where, "an object")
    values = dict(given)
    for name, annotation, required in _record_fields(cls):
        if name in given:
            continue
        if name in fields:
            decoded = _fast_value(annotation, fields[name])
            values[name] = decoded if decoded is not _SLOW else _value(annotation, fields[name], f"{where}.{name}")
        elif required:
            raise _fail(f"{where}.{name}", "is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise _fail(where, f"is invalid ({error})") from None


def _config(value: Any, where: str) -> SamplerConfig:
    config = decode_record(SamplerConfig, value, where)
    try:
        return config.validate()
    except ValueError as error:
        raise _fail(where, f"is invalid ({error})") from None


def _model(value: Any) -> ModelInfo:
    model = decode_record(ModelInfo, value, "model")
    if len(model.layer_kinds) not in (0, model.num_layers) or len(model.layer_windows) not in (0, model.num_layers):
        raise _fail("model.layer_kinds", f"must name all {model.num_layers} layers or none")
    for name in ("num_layers", "num_heads", "vocab_size", "max_context"):
        if getattr(model, name) < (0 if name == "num_heads" and not model.attention_layers else 1):
            raise _fail(f"model.{name}", "must be at least 1")
    if not 0 <= model.experts_per_token <= model.num_experts or (model.num_experts and not model.experts_per_token):
        raise _fail("model.experts_per_token", "must be between 1 and num_experts for a mixture of experts")
    return model


def _kv(value: Any, where: str) -> KVStats | None:
    if value is None:
        return None
    fields = _typed(value, dict, where, "an object or null")
    layers = tuple(
        decode_record(KVLayerStats, layer, f"{where}.layers[{n}]")
        for n, layer in enumerate(_typed(fields.get("layers"), list, f"{where}.layers", "a list"))
    )
    return decode_record(KVStats, fields, where, layers=layers)


def _tokens(value: Any, vocab_size: int) -> dict[int, TokenInfo]:
    tokens = {}
    for n, item in enumerate(_typed(value, list, "tokens", "a list")):
        token = decode_record(TokenInfo, item, f"tokens[{n}]")
        tokens[_int(token.id, f"tokens[{n}].id", 0, vocab_size - 1)] = token
    return tokens


@dataclass(frozen=True)
class ForwardSpec:
    """A forward's manifest entry, checked; `build` attaches its arrays."""

    fields: dict[str, Any]
    roles: tuple[str, ...]

    def build(self, arrays: Mapping[str, np.ndarray]) -> RecordedForward:
        return RecordedForward(arrays=arrays, **self.fields)


def _expected_shapes(
    model: ModelInfo, fields: dict[str, Any], roles: set[str], kept: int | None, router_layers: int
) -> dict[str, tuple[int, ...]]:
    """Shapes each present array must have, from the model and the forward's own fields."""
    positions, keys = len(fields["input_ids"]), fields["position"] + 1
    logits_shape = (kept if kept is not None else model.vocab_size,)
    shapes = {
        "logits": logits_shape,
        "logit_ids": logits_shape,  # a role only when `kept` is set: one id per kept logit
        "attention": (model.num_layers, model.num_heads, keys - fields["attention_query_start"], keys),
        "hidden_norms": (model.num_layers + 1,),
        "router_logits": (router_layers, positions, model.num_experts),
        "router_experts": (router_layers, positions, model.experts_per_token),
        "router_weights": (router_layers, positions, model.experts_per_token),
    }
    return {role: shape for role, shape in shapes.items() if role in roles}


def _forward(
    value: Any, number: int, model: ModelInfo, forwards: list[ForwardSpec], declared: Mapping[str, ArraySpec]
) -> ForwardSpec:
    where = f"forwards[{number}]"
    entry = _typed(value, dict, where, "an object")
    parent = entry.get("parent")
    parent = None if parent is None else _int(parent, f"{where}.parent", 0, number - 1)
    input_ids = _ids(entry.get("input_ids"), f"{where}.input_ids", model.vocab_size)
    start = 0 if parent is None else forwards[parent].fields["position"] + 1
    position = _int(entry.get("position"), f"{where}.position")
    if position != start + len(input_ids) - 1:
        raise _fail(
            f"{where}.position",
            f"is {position} but its parent and {len(input_ids)} input ids make {start + len(input_ids) - 1}",
        )
    if position + 1 > model.max_context:
        raise _fail(f"{where}.position", f"is past the model's context of {model.max_context}")
    vocab_size = _int(entry.get("vocab_size"), f"{where}.vocab_size", model.vocab_size, model.vocab_size)
    query_start = _int(entry.get("attention_query_start", start), f"{where}.attention_query_start", start, position)
    router = entry.get("router")
    router_layers: tuple[int, ...] = ()
    if router is not None:
        router = _typed(router, dict, f"{where}.router", "an object or null")
        router_layers = _value("tuple[int, ...]", router.get("layers"), f"{where}.router.layers")
        _typed(router.get("rule"), str, f"{where}.router.rule", "a string")
    roles = {role for role in _typed(entry.get("arrays"), list, f"{where}.arrays", "a list") if role in ARRAY_ROLES}
    if "logits" not in roles:
        raise _fail(f"{where}.arrays", "must include logits")
    if (router is not None) != all(role in roles for role in ROUTER_ROLES) or (
        router is None and roles & set(ROUTER_ROLES)
    ):
        raise _fail(
            f"{where}.arrays", "must hold router_logits, router_experts and router_weights exactly when router is set"
        )
    fields = {
        "index": _int(entry.get("index"), f"{where}.index", 0),
        "input_ids": input_ids,
        "position": position,
        "parent": parent,
        "vocab_size": vocab_size,
        "attention_query_start": query_start,
        "kv": _kv(entry.get("kv"), f"{where}.kv"),
        "router_layers": router_layers,
        "router_rule": router["rule"] if router is not None else "",
        "forward_ms": _float(entry.get("forward_ms", 0.0), f"{where}.forward_ms"),
        "attention_dropped": "attention" not in roles
        and _typed(entry.get("attention_dropped", False), bool, f"{where}.attention_dropped", "true or false"),
    }
    kept = None
    if "logit_ids" in roles:
        ids_spec = declared.get(array_name(number, "logit_ids"))
        kept = ids_spec.shape[0] if ids_spec is not None and len(ids_spec.shape) == 1 else -1
        if not 1 <= kept <= model.vocab_size:
            raise _fail(f"arrays.{array_name(number, 'logit_ids')}", f"must be 1-D with 1 to {model.vocab_size} ids")
    for role, shape in _expected_shapes(model, fields, roles, kept, len(router_layers)).items():
        name = array_name(number, role)
        spec = declared.get(name)
        if spec is None:
            raise _fail("arrays", f"has no entry for {name}, which {where} uses")
        if spec.dtype not in ALLOWED_DTYPES[role] or spec.shape != shape:
            raise SessionFormatError(
                f"array {name} is declared as {spec.describe()} but {where} needs dtype "
                f"{' or '.join(ALLOWED_DTYPES[role])} shape {list(shape)}"
            )
    return ForwardSpec(fields, tuple(sorted(roles)))


def _array_specs(value: Any, limits: Limits) -> dict[str, ArraySpec]:
    specs: dict[str, ArraySpec] = {}
    total = 0
    for name, item in _typed(value, dict, "arrays", "an object").items():
        where = f"arrays.{name}"
        entry = _typed(item, dict, where, "an object")
        dtype = _typed(entry.get("dtype"), str, f"{where}.dtype", "a string")
        if dtype not in {allowed for options in ALLOWED_DTYPES.values() for allowed in options}:
            raise _fail(
                f"{where}.dtype", f"is {dtype!r}: allowed {', '.join(sorted(set(sum(ALLOWED_DTYPES.values(), ()))))}"
            )
        dims = _typed(entry.get("shape"), list, f"{where}.shape", "a list")
        if len(dims) > 8:
            raise _fail(f"{where}.shape", "has more than 8 dimensions")
        shape = tuple(_int(dim, f"{where}.shape[{n}]", 0) for n, dim in enumerate(dims))
        spec = ArraySpec(dtype, shape)
        if spec.elements > limits.max_array_elements:
            raise SessionFormatError(
                f"array {name} declares {spec.elements:,} elements, above the limit of "
                f"{limits.max_array_elements:,} per array"
            )
        total += spec.elements
        if total > limits.max_total_elements:
            raise SessionFormatError(f"arrays declare more than {limits.max_total_elements:,} elements in total")
        specs[name] = spec
    return specs


def _steps(value: Any, forwards: int, vocab_size: int) -> tuple[RecordedStep, ...]:
    steps = []
    for n, item in enumerate(_typed(value, list, "steps", "a list")):
        where = f"steps[{n}]"
        entry = _typed(item, dict, where, "an object")
        probability = _float(entry.get("probability"), f"{where}.probability")
        if not 0.0 <= probability <= 1.001:
            raise _fail(f"{where}.probability", f"must be in [0, 1], got {probability}")
        steps.append(
            RecordedStep(
                forward=_int(entry.get("forward"), f"{where}.forward", 0, forwards - 1),
                token_id=_int(entry.get("token_id"), f"{where}.token_id", 0, vocab_size - 1),
                probability=probability,
                config=_config(entry.get("config"), f"{where}.config"),
            )
        )
    return tuple(steps)


def _event(value: Any, where: str, steps: int, vocab_size: int) -> SessionEvent:
    entry = _typed(value, dict, where, "an object")
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise _fail(f"{where}.kind", f"is {kind!r}: allowed {', '.join(EVENT_TYPES)}")
    if kind == "prompt":
        shown = tuple(
            decode_record(TokenInfo, token, f"{where}.shown_tokens[{n}]")
            for n, token in enumerate(_typed(entry.get("shown_tokens", []), list, f"{where}.shown_tokens", "a list"))
        )
        return decode_record(
            PromptEvent,
            entry,
            where,
            shown_tokens=shown,
            prompt_ids=_ids(entry.get("prompt_ids"), f"{where}.prompt_ids", vocab_size),
        )
    if kind == "knobs":
        return KnobsEvent(_config(entry.get("config"), f"{where}.config"))
    if kind in ("step", "resample", "force"):
        return EVENT_TYPES[kind](_int(entry.get("step"), f"{where}.step", 0, steps - 1))
    if kind == "rewind":
        return RewindEvent(_int(entry.get("count"), f"{where}.count", 1))
    return ComparisonEvent(_typed(entry.get("data", {}), dict, f"{where}.data", "an object"))


def check_history(
    events: tuple[SessionEvent, ...], steps: tuple[RecordedStep, ...], forwards: list[ForwardSpec], model: ModelInfo
) -> None:
    """Re-enact the events on forward indices with the generation's rules (no step after EOS or a full
    context), so replaying the file can never reach an impossible state."""
    prompt_ids: tuple[int, ...] | None = None
    path: list[RecordedStep] = []
    for n, event in enumerate(events):
        where = f"events[{n}]"
        if isinstance(event, PromptEvent):
            prompt_ids, path = event.prompt_ids, []
        elif isinstance(event, (StepEvent, ResampleEvent, ForceEvent, RewindEvent)) and prompt_ids is None:
            raise _fail(where, f"is a {event.kind} before any prompt")
        if isinstance(event, StepEvent):
            assert prompt_ids is not None, "a step before any prompt was refused above"
            if path and (path[-1].token_id in model.eos_token_ids or len(prompt_ids) + len(path) >= model.max_context):
                raise _fail(where, "steps past the end of the generation (after EOS or a full context)")
            step = steps[event.step]
            forward = forwards[step.forward].fields
            expected = (None, prompt_ids) if not path else (path[-1].forward, (path[-1].token_id,))
            if (forward["parent"], forward["input_ids"]) != expected:
                raise _fail(
                    where,
                    f"steps from forward {step.forward}, which does not continue the generation "
                    f"(it feeds {list(forward['input_ids'])[:8]} after forward {forward['parent']})",
                )
            path.append(step)
        elif isinstance(event, (ResampleEvent, ForceEvent)):
            if not path or steps[event.step].forward != path[-1].forward:
                verb = "re-samples" if isinstance(event, ResampleEvent) else "forces a token on"
                raise _fail(where, f"{verb} a forward that is not the current step's")
            path[-1] = steps[event.step]
        elif isinstance(event, RewindEvent):
            if event.count >= len(path):
                raise _fail(f"{where}.count", f"rewinds {event.count} of {len(path)} steps (the first stays)")
            del path[-event.count :]


@dataclass(frozen=True)
class ParsedManifest:
    """A checked manifest: array declarations, forward entries, and the rest of the Session's fields."""

    arrays: dict[str, ArraySpec]
    forwards: list[ForwardSpec]
    session_fields: dict[str, Any]


def decode_session(manifest: dict[str, Any], limits: Limits) -> ParsedManifest:
    """Check and decode everything but the array data."""
    model = _model(manifest.get("model"))
    check_model_bounds(model, limits)
    declared = _array_specs(manifest.get("arrays"), limits)
    forwards: list[ForwardSpec] = []
    for number, entry in enumerate(_typed(manifest.get("forwards"), list, "forwards", "a list")):
        forwards.append(_forward(entry, number, model, forwards, declared))
    steps = _steps(manifest.get("steps"), len(forwards), model.vocab_size)
    events = tuple(
        _event(item, f"events[{n}]", len(steps), model.vocab_size)
        for n, item in enumerate(_typed(manifest.get("events"), list, "events", "a list"))
    )
    check_history(events, steps, forwards, model)
    used = {array_name(number, role) for number, forward in enumerate(forwards) for role in forward.roles}
    written_by = manifest.get("written_by", {})
    fields = {
        "model": model,
        "capabilities": decode_record(Capabilities, manifest.get("capabilities"), "capabilities"),
        "capture": decode_record(CaptureOptions, manifest.get("capture"), "capture"),
        "tokens": _tokens(manifest.get("tokens"), model.vocab_size),
        "steps": steps,
        "events": events,
        "title": _typed(manifest.get("title", ""), str, "title", "a string"),
        "description": _typed(manifest.get("description", ""), str, "description", "a string"),
        "created_at": _typed(manifest.get("created_at", ""), str, "created_at", "a string"),
        "written_by": _value("dict[str, str]", written_by, "written_by"),
    }
    return ParsedManifest({name: spec for name, spec in declared.items() if name in used}, forwards, fields)


def value_problem(role: str, array: np.ndarray, model: ModelInfo) -> str | None:
    """What is wrong with an array's values (None if nothing): NaN, ids out of range, no finite logit."""
    if role == "logits":
        if np.isnan(array).any() or np.isposinf(array).any() or not np.isfinite(array).any():
            return "holds NaN or +inf, or no finite logit"
    elif role == "logit_ids":
        if array.size and (array.min() < 0 or array.max() >= model.vocab_size):
            return f"holds ids outside the vocabulary of {model.vocab_size}"
    elif role == "router_experts":
        if array.size and (array.min() < 0 or array.max() >= model.num_experts):
            return f"holds experts outside 0..{model.num_experts - 1}"
    elif not np.isfinite(array).all():
        return "holds NaN or infinite values"
    return None
