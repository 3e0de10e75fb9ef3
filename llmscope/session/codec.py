"""The session manifest: Session ⇄ JSON-ready dicts, and a decoder that checks every field it reads.

Decoding trusts nothing: each field's type and range is checked, array declarations are matched
against the shapes the model implies, and the event history is replayed to prove it is consistent,
so a file that loads can be replayed without surprises. Errors name the field (`forwards[3].position`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmscope.session.arrays import (
    ALLOWED_DTYPES,
    LENS_CHOICE_ROLES,
    LENS_ROLES,
    ROLES,
    ROUTER_ROLES,
    SPARSE_ROLES,
    ArraySpec,
    ForwardShape,
    array_name,
    declared_length,
    sparse_entries,
)
from llmscope.session.checks import (
    Limits,
    SessionFormatError,
    check_model_bounds,
    decode_record,
    fail,
    field_value,
    finite,
    integer,
    token_ids,
    typed,
)
from llmscope.session.history import check_history, decode_event, decode_steps
from llmscope.session.recording import (
    RecordedForward,
    Session,
    SessionEvent,
)
from llmscope.trace import Capabilities, CaptureOptions, KVLayerStats, KVStats, ModelInfo, TokenInfo

__all__ = ["ArraySpec", "Limits", "SessionFormatError", "array_name", "decode_session", "encode_forward"]


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


def encode_forward(forward: RecordedForward, roles: list[str], *, attention_threshold: float = 0.0) -> dict[str, Any]:
    """A forward's manifest entry; `attention_threshold` is the sparse threshold its attention was stored with."""
    has_attention = bool({"attention", *SPARSE_ROLES} & set(roles))
    return {
        "index": forward.index,
        "input_ids": list(forward.input_ids),
        "position": forward.position,
        "parent": forward.parent,
        "vocab_size": forward.vocab_size,
        "attention_query_start": forward.attention_query_start,
        **({"attention_layers": list(forward.attention_layers)} if forward.attention_layers and has_attention else {}),
        **({"attention_threshold": attention_threshold} if "attention_counts" in roles else {}),
        "forward_ms": float(forward.forward_ms),
        "kv": plain(forward.kv) if forward.kv is not None else None,
        "router": {"layers": list(forward.router_layers), "rule": forward.router_rule} if forward.has_router else None,
        "arrays": roles,
        **({"attention_dropped": True} if forward.attention_dropped and not has_attention else {}),
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
def _model(value: Any) -> ModelInfo:
    model = decode_record(ModelInfo, value, "model")
    if len(model.layer_kinds) not in (0, model.num_layers) or len(model.layer_windows) not in (0, model.num_layers):
        raise fail("model.layer_kinds", f"must name all {model.num_layers} layers or none")
    for name in ("num_layers", "num_heads", "vocab_size", "max_context"):
        if getattr(model, name) < (0 if name == "num_heads" and not model.attention_layers else 1):
            raise fail(f"model.{name}", "must be at least 1")
    if not 0 <= model.experts_per_token <= model.num_experts or (model.num_experts and not model.experts_per_token):
        raise fail("model.experts_per_token", "must be between 1 and num_experts for a mixture of experts")
    return model


def _kv(value: Any, where: str) -> KVStats | None:
    if value is None:
        return None
    fields = typed(value, dict, where, "an object or null")
    layers = tuple(
        decode_record(KVLayerStats, layer, f"{where}.layers[{n}]")
        for n, layer in enumerate(typed(fields.get("layers"), list, f"{where}.layers", "a list"))
    )
    return decode_record(KVStats, fields, where, layers=layers)


def _tokens(value: Any, vocab_size: int) -> dict[int, TokenInfo]:
    tokens = {}
    for n, item in enumerate(typed(value, list, "tokens", "a list")):
        token = decode_record(TokenInfo, item, f"tokens[{n}]")
        tokens[integer(token.id, f"tokens[{n}].id", 0, vocab_size - 1)] = token
    return tokens


@dataclass(frozen=True)
class ForwardSpec:
    """A forward's manifest entry, checked; `build` attaches its arrays."""

    fields: dict[str, Any]
    roles: tuple[str, ...]

    def build(self, arrays: Mapping[str, np.ndarray]) -> RecordedForward:
        return RecordedForward(arrays=arrays, **self.fields)


def _forward(
    value: Any,
    number: int,
    model: ModelInfo,
    forwards: list[ForwardSpec],
    declared: Mapping[str, ArraySpec],
    limits: Limits,
) -> ForwardSpec:
    where = f"forwards[{number}]"
    entry = typed(value, dict, where, "an object")
    parent = entry.get("parent")
    parent = None if parent is None else integer(parent, f"{where}.parent", 0, number - 1)
    input_ids = token_ids(entry.get("input_ids"), f"{where}.input_ids", model.vocab_size)
    start = 0 if parent is None else forwards[parent].fields["position"] + 1
    position = integer(entry.get("position"), f"{where}.position")
    if position != start + len(input_ids) - 1:
        raise fail(
            f"{where}.position",
            f"is {position} but its parent and {len(input_ids)} input ids make {start + len(input_ids) - 1}",
        )
    if position + 1 > model.max_context:
        raise fail(f"{where}.position", f"is past the model's context of {model.max_context}")
    vocab_size = integer(entry.get("vocab_size"), f"{where}.vocab_size", model.vocab_size, model.vocab_size)
    query_start = integer(entry.get("attention_query_start", start), f"{where}.attention_query_start", start, position)
    router = entry.get("router")
    router_layers: tuple[int, ...] = ()
    if router is not None:
        router = typed(router, dict, f"{where}.router", "an object or null")
        router_layers = field_value("tuple[int, ...]", router.get("layers"), f"{where}.router.layers")
        typed(router.get("rule"), str, f"{where}.router.rule", "a string")
    listed = typed(entry.get("arrays"), list, f"{where}.arrays", "a list")
    roles = {typed(role, str, f"{where}.arrays[{n}]", "a string") for n, role in enumerate(listed)} & ROLES.keys()
    _check_role_groups(roles, router is not None, f"{where}.arrays")
    has_attention = bool(roles & {"attention", *SPARSE_ROLES})
    fields = {
        "index": integer(entry.get("index"), f"{where}.index", 0),
        "input_ids": input_ids,
        "position": position,
        "parent": parent,
        "vocab_size": vocab_size,
        "attention_query_start": query_start,
        "attention_layers": _attention_layers(entry.get("attention_layers", []), f"{where}.attention_layers", model),
        "attention_threshold": _threshold(entry.get("attention_threshold", 0.0), f"{where}.attention_threshold")
        if "attention_counts" in roles
        else 0.0,
        "kv": _kv(entry.get("kv"), f"{where}.kv"),
        "router_layers": router_layers,
        "router_rule": router["rule"] if router is not None else "",
        "forward_ms": finite(entry.get("forward_ms", 0.0), f"{where}.forward_ms"),
        "attention_dropped": not has_attention
        and typed(entry.get("attention_dropped", False), bool, f"{where}.attention_dropped", "true or false"),
    }
    _check_declarations(number, where, model, fields, roles, declared, limits, len(router_layers))
    return ForwardSpec(fields, tuple(sorted(roles)))


def _check_role_groups(roles: set[str], has_router: bool, where: str) -> None:
    """Roles that only make sense together: router arrays with `router`, sparse attention all four, sinks with rows."""
    if "logits" not in roles:
        raise fail(where, "must include logits")
    if has_router != all(role in roles for role in ROUTER_ROLES) or (not has_router and roles & set(ROUTER_ROLES)):
        raise fail(where, "must hold router_logits, router_experts and router_weights exactly when router is set")
    sparse = roles & set(SPARSE_ROLES)
    if sparse and (len(sparse) < len(SPARSE_ROLES) or "attention" in roles):
        raise fail(where, f"must hold all of {', '.join(SPARSE_ROLES)} or none, and not with attention")
    if "attention_sink" in roles and not (sparse or "attention" in roles):
        raise fail(where, "holds attention_sink without attention")
    lens, choices = roles & set(LENS_ROLES), roles & set(LENS_CHOICE_ROLES)
    if lens and len(lens) < len(LENS_ROLES):
        raise fail(where, f"must hold all of {', '.join(LENS_ROLES)} or none")
    if choices and (len(choices) < len(LENS_CHOICE_ROLES) or not lens):
        raise fail(where, f"must hold all of {', '.join(LENS_CHOICE_ROLES)} or none, and only with the lens")


def _attention_layers(value: Any, where: str, model: ModelInfo) -> tuple[int, ...]:
    layers = tuple(
        integer(item, f"{where}[{n}]", 0, model.num_layers - 1)
        for n, item in enumerate(typed(value, list, where, "a list"))
    )
    if any(later <= earlier for earlier, later in zip(layers, layers[1:])):
        raise fail(where, "must list layers in ascending order, each once")
    return layers


def _threshold(value: Any, where: str) -> float:
    threshold = finite(value, where)
    if not 0.0 <= threshold <= 1.0:
        raise fail(where, f"must be in [0, 1], got {threshold}")
    return threshold


def _check_declarations(
    number: int,
    where: str,
    model: ModelInfo,
    fields: dict[str, Any],
    roles: set[str],
    declared: Mapping[str, ArraySpec],
    limits: Limits,
    router_layers: int,
) -> None:
    """Each array the forward uses is declared with an allowed dtype and the shape the model and forward imply."""

    def name(role: str) -> str:
        return array_name(number, role)

    kept = model.vocab_size
    if "logit_ids" in roles:
        ids_spec = declared.get(name("logit_ids"))
        kept = ids_spec.shape[0] if ids_spec is not None and len(ids_spec.shape) == 1 else -1
        if not 1 <= kept <= model.vocab_size:
            raise fail(f"arrays.{name('logit_ids')}", f"must be 1-D with 1 to {model.vocab_size} ids")
    keys = fields["position"] + 1
    shape = ForwardShape(
        model=model,
        positions=len(fields["input_ids"]),
        keys=keys,
        rows=keys - fields["attention_query_start"],
        kept=kept,
        entries=sparse_entries(declared, name) if "attention_keys" in roles else 0,
        router_layers=router_layers,
        lens_k=declared_length(declared, name("lens_top_ids"), 1, 2) if "lens_top_ids" in roles else 0,
        lens_choices=declared_length(declared, name("lens_choice_ids"), 0, 1) if "lens_choice_ids" in roles else 0,
    )
    if "lens_top_ids" in roles and not 1 <= shape.lens_k <= model.vocab_size:
        raise fail(f"arrays.{name('lens_top_ids')}", f"must be [layers + 1, k] with 1 ≤ k ≤ {model.vocab_size}")
    if "lens_choice_ids" in roles and not 0 <= shape.lens_choices <= model.vocab_size:
        raise fail(f"arrays.{name('lens_choice_ids')}", "must be 1-D")
    if "attention_counts" in roles:
        dense = model.num_layers * model.num_heads * shape.rows * keys
        if dense > limits.max_array_elements:
            raise SessionFormatError(
                f"array {name('attention_keys')} stands for {dense:,} attention weights, above the limit of "
                f"{limits.max_array_elements:,} per array"
            )
        if not 0 <= shape.entries <= dense:
            raise fail(f"arrays.{name('attention_keys')}", f"must be 1-D with at most {dense:,} keys")
    for role in sorted(roles):
        expected = ROLES[role].shape(shape)
        spec = declared.get(name(role))
        if spec is None:
            raise fail("arrays", f"has no entry for {name(role)}, which {where} uses")
        if spec.dtype not in ROLES[role].dtypes or spec.shape != expected:
            raise SessionFormatError(
                f"array {name(role)} is declared as {spec.describe()} but {where} needs dtype "
                f"{' or '.join(ROLES[role].dtypes)} shape {list(expected)}"
            )


def _array_specs(value: Any, limits: Limits) -> dict[str, ArraySpec]:
    specs: dict[str, ArraySpec] = {}
    total = 0
    for name, item in typed(value, dict, "arrays", "an object").items():
        where = f"arrays.{name}"
        entry = typed(item, dict, where, "an object")
        dtype = typed(entry.get("dtype"), str, f"{where}.dtype", "a string")
        if dtype not in ALLOWED_DTYPES:
            raise fail(f"{where}.dtype", f"is {dtype!r}: allowed {', '.join(sorted(ALLOWED_DTYPES))}")
        dims = typed(entry.get("shape"), list, f"{where}.shape", "a list")
        if len(dims) > 8:
            raise fail(f"{where}.shape", "has more than 8 dimensions")
        shape = tuple(integer(dim, f"{where}.shape[{n}]", 0) for n, dim in enumerate(dims))
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
    for number, entry in enumerate(typed(manifest.get("forwards"), list, "forwards", "a list")):
        forwards.append(_forward(entry, number, model, forwards, declared, limits))
    steps = decode_steps(manifest.get("steps"), len(forwards), model.vocab_size)
    events = tuple(
        decode_event(item, f"events[{n}]", len(steps), model.vocab_size)
        for n, item in enumerate(typed(manifest.get("events"), list, "events", "a list"))
    )
    check_history(events, steps, [forward.fields for forward in forwards], model)
    used = {array_name(number, role) for number, forward in enumerate(forwards) for role in forward.roles}
    written_by = manifest.get("written_by", {})
    fields = {
        "model": model,
        "capabilities": decode_record(Capabilities, manifest.get("capabilities"), "capabilities"),
        "capture": decode_record(CaptureOptions, manifest.get("capture"), "capture"),
        "tokens": _tokens(manifest.get("tokens"), model.vocab_size),
        "steps": steps,
        "events": events,
        "title": typed(manifest.get("title", ""), str, "title", "a string"),
        "description": typed(manifest.get("description", ""), str, "description", "a string"),
        "created_at": typed(manifest.get("created_at", ""), str, "created_at", "a string"),
        "written_by": field_value("dict[str, str]", written_by, "written_by"),
    }
    return ParsedManifest({name: spec for name, spec in declared.items() if name in used}, forwards, fields)
