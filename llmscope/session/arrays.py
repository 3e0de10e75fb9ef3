"""A forward's arrays in a session file: the role table (dtype, shape, value checks) and how attention is stored.

One table says, per role, which dtypes a file may use and which shape the model and the forward imply, so a new
optional role is one entry here (docs/session-format.md). Attention is stored dense in float16, or for long runs as
each row's weights ≥ 1/256 of the row's max (float16) plus the row's remaining mass and its share per block of 16
keys, which a replay spreads evenly over each block's other visible keys (`sparse_attention` / `dense_attention`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmscope.trace import ModelInfo

SPARSE_ROLES = ("attention_counts", "attention_keys", "attention_values", "attention_rest", "attention_rest_blocks")
"""The arrays of attention stored sparse; a forward holds all of them or none, and never with `attention`."""
ROUTER_ROLES = ("router_logits", "router_experts", "router_weights")
LENS_ROLES = ("lens_top_ids", "lens_top_probs", "lens_entropy")
"""The logit lens of a forward (llmscope.lens): each layer's top-k candidates and entropy; all three or none."""
LENS_CHOICE_ROLES = ("lens_choice_ids", "lens_choice_ranks", "lens_choice_probs")
"""Rank and probability per layer of each token sampled or forced from the forward; only with LENS_ROLES."""
SPARSE_THRESHOLD = 2.0**-8
"""Sparse attention keeps, per query row, every weight ≥ this fraction of the row's largest weight."""
REST_BLOCK = 16
"""Sparse attention records where a row's remaining mass lies per block of this many keys."""
REST_STEPS = 255
"""…as shares of the row's remaining mass in 1/255ths (uint8), rounded so every prefix of blocks sums right."""
_ENCODE_ROWS = 4096
"""Rows encoded at a time, so a long prefill needs no full-size temporary arrays."""
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class ForwardShape:
    """What a forward's array shapes follow from: the model's sizes and the forward's own fields."""

    model: ModelInfo
    positions: int
    """Input ids fed (P)."""
    keys: int
    """Tokens in context (S = position + 1)."""
    rows: int
    """Attention query rows (R = S − attention_query_start)."""
    kept: int
    """Logits kept (N; the vocabulary when the logits are full)."""
    entries: int
    """Weights kept by sparse attention (the declared length of attention_keys)."""
    router_layers: int
    lens_k: int = 0
    """Candidates per layer in the lens (the declared width of lens_top_ids)."""
    lens_choices: int = 0
    """Tokens the lens ranked (the declared length of lens_choice_ids)."""


@dataclass(frozen=True)
class Role:
    """One array role: the dtypes a file may use and the shape a forward implies."""

    dtypes: tuple[str, ...]
    shape: Callable[[ForwardShape], tuple[int, ...]]


def _attention_rows(f: ForwardShape) -> tuple[int, ...]:
    return (f.model.num_layers, f.model.num_heads, f.rows)


ROLES: dict[str, Role] = {
    "logits": Role(("<f2", "<f4"), lambda f: (f.kept,)),
    "logit_ids": Role(("<i4",), lambda f: (f.kept,)),
    "attention": Role(("<f2",), lambda f: (*_attention_rows(f), f.keys)),
    "attention_sink": Role(("<f4",), _attention_rows),
    "attention_counts": Role(("<i4",), _attention_rows),
    "attention_keys": Role(("<u2", "<i4"), lambda f: (f.entries,)),
    "attention_values": Role(("<f2",), lambda f: (f.entries,)),
    "attention_rest": Role(("<f4",), _attention_rows),
    "attention_rest_blocks": Role(("|u1",), lambda f: (*_attention_rows(f), -(-f.keys // REST_BLOCK))),
    "hidden_norms": Role(("<f4",), lambda f: (f.model.num_layers + 1,)),
    "lens_top_ids": Role(("<i4",), lambda f: (f.model.num_layers + 1, f.lens_k)),
    "lens_top_probs": Role(("<f4",), lambda f: (f.model.num_layers + 1, f.lens_k)),
    "lens_entropy": Role(("<f4",), lambda f: (f.model.num_layers + 1,)),
    "lens_choice_ids": Role(("<i4",), lambda f: (f.lens_choices,)),
    "lens_choice_ranks": Role(("<i4",), lambda f: (f.lens_choices, f.model.num_layers + 1)),
    "lens_choice_probs": Role(("<f4",), lambda f: (f.lens_choices, f.model.num_layers + 1)),
    "router_logits": Role(("<f4",), lambda f: (f.router_layers, f.positions, f.model.num_experts)),
    "router_experts": Role(("<i4",), lambda f: (f.router_layers, f.positions, f.model.experts_per_token)),
    "router_weights": Role(("<f4",), lambda f: (f.router_layers, f.positions, f.model.experts_per_token)),
}
"""Every role a reader knows (others are ignored); docs/session-format.md has the same table in words."""
ALLOWED_DTYPES = frozenset(dtype for role in ROLES.values() for dtype in role.dtypes)


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


def value_problem(role: str, array: np.ndarray, model: ModelInfo) -> str | None:
    """What is wrong with an array's values (None if nothing): NaN, ids out of range, no finite logit."""
    if role == "logits":
        if np.isnan(array).any() or np.isposinf(array).any() or not np.isfinite(array).any():
            return "holds NaN or +inf, or no finite logit"
    elif role in ("logit_ids", "lens_top_ids", "lens_choice_ids"):
        if array.size and (array.min() < 0 or array.max() >= model.vocab_size):
            return f"holds ids outside the vocabulary of {model.vocab_size}"
    elif role == "lens_choice_ranks":
        if array.size and (array.min() < 1 or array.max() > model.vocab_size):
            return f"holds ranks outside 1..{model.vocab_size}"
    elif role in ("lens_top_probs", "lens_choice_probs"):
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1.001):
            return "holds probabilities outside [0, 1]"
    elif role == "router_experts":
        if array.size and (array.min() < 0 or array.max() >= model.num_experts):
            return f"holds experts outside 0..{model.num_experts - 1}"
    elif role in ("attention_sink", "attention_values", "attention_rest"):
        if array.size and not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1.001):
            return "holds weights outside [0, 1]"
    elif role in ("attention_counts", "attention_keys", "attention_rest_blocks"):
        return None  # checked together by dense_attention, which knows the row lengths
    elif not np.isfinite(array).all():
        return "holds NaN or infinite values"
    return None


# ------------------------------------------------------------------------------------ writing
def float16_or_32(array: np.ndarray) -> np.ndarray:
    """float16 when every finite value fits (logits usually do), else float32 so nothing turns into inf."""
    values = np.asarray(array, dtype=np.float32)
    finite = values[np.isfinite(values)]
    return values.astype(np.float16) if finite.size == 0 or np.abs(finite).max() <= FLOAT16_MAX else values


def sparse_attention(attention: np.ndarray, threshold: float = SPARSE_THRESHOLD) -> dict[str, np.ndarray]:
    """Each row's weights ≥ `threshold` × the row's max (keys ascending, float16), the mass of the others, and
    where that mass lies (its share per block of REST_BLOCK keys).

    attention: [layers, heads, rows, keys]. Returns the SPARSE_ROLES arrays: counts and rest [layers, heads, rows],
    rest_blocks [layers, heads, rows, blocks], keys and values [kept weights] in row-major order.
    """
    layers, heads, rows, keys = attention.shape
    flat = np.asarray(attention, dtype=np.float32).reshape(-1, keys)
    starts = np.arange(0, max(keys, 1), REST_BLOCK)
    counts, rest, shares, key_parts, value_parts = [], [], [], [], []
    for first in range(0, flat.shape[0], _ENCODE_ROWS):
        chunk = flat[first : first + _ENCODE_ROWS]
        peak = chunk.max(axis=1, keepdims=True) if keys else np.zeros((chunk.shape[0], 1), np.float32)
        keep = (chunk >= peak * np.float32(threshold)) & (chunk > 0)
        row, key = np.nonzero(keep)
        counts.append(keep.sum(axis=1))
        key_parts.append(key)
        value_parts.append(chunk[row, key])
        dropped = np.add.reduceat(np.where(keep, 0.0, chunk.astype(np.float64)), starts, axis=1)
        total = dropped.sum(axis=1)
        rest.append(total)
        cumulative = np.cumsum(dropped, axis=1) / np.where(total > 0, total, 1.0)[:, None]
        rounded = np.rint(np.clip(cumulative, 0.0, 1.0) * REST_STEPS)
        shares.append(np.diff(rounded, axis=1, prepend=0.0))
    return {
        "attention_counts": np.concatenate(counts).astype("<i4").reshape(layers, heads, rows),
        "attention_keys": np.concatenate(key_parts).astype("<u2" if keys <= 2**16 else "<i4"),
        "attention_values": np.concatenate(value_parts).astype("<f2"),
        "attention_rest": np.clip(np.concatenate(rest), 0.0, 1.0).astype("<f4").reshape(layers, heads, rows),
        "attention_rest_blocks": np.concatenate(shares).astype(np.uint8).reshape(layers, heads, rows, len(starts)),
    }


def stored_arrays(
    arrays: Mapping[str, np.ndarray], logits: np.ndarray, *, keep: int | None, exact: bool, sparse: bool
) -> dict[str, np.ndarray]:
    """The arrays of one forward as they go into the file, little-endian and C-ordered (docs/session-format.md).

    `logits` is the full float32 vocabulary; `keep` the N of top-k:N (None: all); `exact` keeps them float32;
    `sparse` stores attention with `sparse_attention` instead of dense float16.
    """
    stored: dict[str, np.ndarray] = {}
    if keep is None:
        stored["logits"] = logits if exact else float16_or_32(logits)
    else:
        count = min(keep, int(np.isfinite(logits).sum()) or 1, logits.shape[0])
        top = np.argpartition(-logits, count - 1)[:count]
        top = top[np.argsort(-logits[top], kind="stable")]
        stored["logits"] = float16_or_32(logits[top])
        stored["logit_ids"] = top.astype("<i4")
    if "attention" in arrays:
        if sparse:
            stored.update(sparse_attention(np.asarray(arrays["attention"])))
        else:
            stored["attention"] = np.asarray(arrays["attention"], dtype="<f2")
        if "attention_sink" in arrays:
            stored["attention_sink"] = np.asarray(arrays["attention_sink"], dtype="<f4")
    if "hidden_norms" in arrays:
        stored["hidden_norms"] = np.asarray(arrays["hidden_norms"], dtype="<f4")
    for role in (*LENS_ROLES, *LENS_CHOICE_ROLES):
        if role in arrays:
            stored[role] = np.asarray(arrays[role], dtype=ROLES[role].dtypes[0])
    if "router_logits" in arrays:
        stored["router_logits"] = np.asarray(arrays["router_logits"], dtype="<f4")
        stored["router_experts"] = np.asarray(arrays["router_experts"], dtype="<i4")
        stored["router_weights"] = np.asarray(arrays["router_weights"], dtype="<f4")
    return {
        role: np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        for role, array in stored.items()
    }


# ------------------------------------------------------------------------------------ reading
def visible_ranges(
    model: ModelInfo, layers: tuple[int, ...], query_start: int, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """First and last key each (layer, row) can attend, int64 [layers, rows]; last < first for a layer with no
    attention (SSM, linear attention, or not in `layers`, the captured ones; empty means every attention layer)."""
    captured = set(layers or model.attention_layers)
    positions = query_start + np.arange(rows, dtype=np.int64)
    first = np.zeros((model.num_layers, rows), dtype=np.int64)
    last = np.full((model.num_layers, rows), -1, dtype=np.int64)
    for layer in range(model.num_layers):
        if layer in captured and layer in model.attention_layers:
            window = model.layer_window(layer)
            first[layer] = np.maximum(0, positions - window + 1) if window else 0
            last[layer] = positions
    return first, last


def dense_attention(
    parts: Mapping[str, np.ndarray], model: ModelInfo, layers: tuple[int, ...], query_start: int
) -> np.ndarray:
    """float32 [layers, heads, rows, keys] from the SPARSE_ROLES arrays: kept weights where they were; each block's
    share of the row's remaining mass spread evenly over the block's other visible keys; exact zeros where the
    model masks.

    Raises ValueError naming the problem when the counts and keys do not describe ascending keys inside each row.
    """
    counts, keys, values, rest, blocks = (parts[role] for role in SPARSE_ROLES)
    num_layers, heads, rows = counts.shape
    width = query_start + rows
    if counts.size and (counts.min() < 0 or counts.max() > width):
        raise ValueError(f"attention_counts holds counts outside 0..{width}")
    if int(counts.sum(dtype=np.int64)) != keys.shape[0]:
        raise ValueError(f"attention_counts add up to {int(counts.sum())}, not the {keys.shape[0]} kept weights")
    row = np.repeat(np.arange(counts.size, dtype=np.int64), counts.ravel())
    flat = row * width + keys.astype(np.int64)
    if keys.size and (int(keys.max()) >= width or (np.diff(flat) <= 0).any()):
        raise ValueError("attention_keys are not ascending keys inside each row")
    if blocks.size and int(blocks.sum(axis=-1, dtype=np.int64).max()) > REST_STEPS:
        raise ValueError(f"attention_rest_blocks shares add up to more than {REST_STEPS}")
    block_count = blocks.shape[-1]
    kept = np.bincount(row * block_count + keys // REST_BLOCK, minlength=counts.size * block_count)
    first, last = visible_ranges(model, layers, query_start, rows)  # [layers, rows]
    block_first = np.arange(block_count, dtype=np.int64) * REST_BLOCK
    overlap = np.minimum(last[..., None], block_first + REST_BLOCK - 1) - np.maximum(first[..., None], block_first)
    others = np.maximum(overlap + 1, 0)[:, None] - kept.reshape(blocks.shape)  # [layers, heads, rows, blocks]
    mass = rest[..., None].astype(np.float64) * blocks / REST_STEPS
    fill = np.where(others > 0, mass / np.maximum(others, 1), 0.0).astype(np.float32)
    key_index = np.arange(width, dtype=np.int64)
    block_of_key = key_index // REST_BLOCK
    dense = np.zeros((num_layers, heads, rows, width), dtype=np.float32)
    for layer in range(num_layers):
        inside = (key_index >= first[layer, :, None]) & (key_index <= last[layer, :, None])  # [rows, keys]
        if inside.any():
            dense[layer] = np.where(inside[None], fill[layer][..., block_of_key], np.float32(0))
    dense.reshape(-1)[flat] = values.astype(np.float32)
    return dense


def describe_storage(threshold: float) -> str:
    """How a forward's attention was stored, in words for a replay's note."""
    if not threshold:
        return "attention stored as float16"
    return (
        f"attention stored as float16 weights ≥ 1/{round(1 / threshold)} of each row's max; "
        "the rest of each row spread evenly within blocks of 16 keys"
    )


def declared_length(declared: Mapping[str, Any], name: str, axis: int, dims: int) -> int:
    """Length along `axis` of a declared array with `dims` dimensions (-1 when absent or of another rank)."""
    spec = declared.get(name)
    return spec.shape[axis] if spec is not None and len(spec.shape) == dims else -1


def sparse_entries(declared: Mapping[str, Any], name: Callable[[str], str]) -> int:
    """Kept weights of a sparse forward: the declared length of its attention_keys (-1 when not 1-D)."""
    spec = declared.get(name("attention_keys"))
    return spec.shape[0] if spec is not None and len(spec.shape) == 1 else -1
