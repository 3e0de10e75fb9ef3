"""Exact rewinds of any transformers cache: crop where cropping is exact, else rebuild by replaying forwards.

A full-attention layer crops exactly. A sliding-window layer past its window has already dropped the
keys a rewind needs, and an SSM or linear-attention layer cannot undo its recurrent state (transformers
raises). Those caches are rebuilt: the forwards the engine ran (the prompt, then one per token) are
replayed from the nearest checkpoint, so the rebuilt cache is the one the shorter run would have held,
bit for bit on a deterministic device. Checkpoints copy only the layers a crop cannot restore, every
CHECKPOINT_EVERY forwards, and at most MAX_CHECKPOINTS are kept, so memory and replay time stay bounded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

CHECKPOINT_EVERY = 32
"""Forwards between checkpoints of the non-croppable layers."""
MAX_CHECKPOINTS = 4
"""Checkpoints kept besides the one after the prefill (older ones are dropped)."""


def _exactly_croppable(layer: Any) -> bool:
    """A plain DynamicLayer (full attention or MLA latents), or a sliding layer that has not yet slid."""
    if type(layer) is DynamicLayer:
        return True
    if type(layer) is DynamicSlidingWindowLayer:
        return layer.get_seq_length() < layer.sliding_window
    return False


def can_crop(cache: Any, tokens_to_remove: int) -> bool:
    """Whether cache.crop(−n) leaves exactly the cache of the shorter context."""
    del tokens_to_remove  # every layer type either crops any amount exactly or none
    return all(_exactly_croppable(layer) for layer in cache.layers)


@dataclass
class ForwardLog:
    """The input chunks of every forward since the prefill, and checkpoints to replay them from."""

    chunks: list[list[int]] = field(default_factory=list)
    checkpoints: dict[int, list[Any]] = field(default_factory=dict)
    """Context length → per-layer copies (None for a layer that crops exactly)."""

    def reset(self) -> None:
        self.chunks.clear()
        self.checkpoints.clear()

    def record(self, ids: list[int], cache: Any, length: int) -> None:
        """Log one forward's inputs; checkpoint after the prefill and every CHECKPOINT_EVERY forwards."""
        self.chunks.append(list(ids))
        if can_crop(cache, 0) or (len(self.chunks) - 1) % CHECKPOINT_EVERY:
            return
        self.checkpoints[length] = [
            None if type(layer) is DynamicLayer else copy.deepcopy(layer) for layer in cache.layers
        ]
        later = sorted(self.checkpoints)[1:]
        for stale in later[:-MAX_CHECKPOINTS]:
            del self.checkpoints[stale]

    def truncate(self, length: int) -> None:
        """Forget the forwards past `length` tokens (a chunk is never split: rewinds land between forwards)."""
        total = 0
        for number, chunk in enumerate(self.chunks):
            total += len(chunk)
            if total >= length:
                del self.chunks[number + 1 :]
                break
        for stale in [point for point in self.checkpoints if point > length]:
            del self.checkpoints[stale]

    def rebuild(
        self, live: Any, length: int, cache_factory: Callable[[], Any], forward: Callable[[Any, list[int]], None]
    ) -> Any:
        """A new cache holding exactly the first `length` tokens; `live` is left untouched.

        Starts from the nearest checkpoint at or before `length` (its copied layers, plus the live cache's
        exactly croppable layers sliced to the same length), then replays the logged forwards after it.
        """
        kept, total = [], 0
        for chunk in self.chunks:
            if total + len(chunk) > length:
                break
            kept.append(chunk)
            total += len(chunk)
        if total != length:
            raise ValueError(f"{length} tokens do not end on a forward boundary")
        cache = cache_factory()
        point = max((point for point in self.checkpoints if point <= length), default=None)
        replay = kept
        if point is not None:
            cache.layers = [
                _sliced(live_layer, point) if saved is None else copy.deepcopy(saved)
                for live_layer, saved in zip(live.layers, self.checkpoints[point], strict=True)
            ]
            replay = kept[_chunks_in(kept, point) :]
        for chunk in replay:
            forward(cache, chunk)
        return cache


def _sliced(layer: Any, length: int) -> Any:
    """A shallow copy of a full-attention layer holding only its first `length` tokens (views, no copy)."""
    copied = copy.copy(layer)
    if getattr(layer, "is_initialized", False) and layer.keys is not None:
        copied.keys = layer.keys[..., :length, :]
        copied.values = layer.values[..., :length, :]
    return copied


def _chunks_in(chunks: list[list[int]], length: int) -> int:
    """How many leading chunks make up exactly `length` tokens."""
    total = 0
    for number, chunk in enumerate(chunks):
        if total == length:
            return number
        total += len(chunk)
    return len(chunks)
