"""A logit lens as a forward's arrays in a session file, and back (the lens_* roles of session.arrays).

The token-independent part (each layer's top-k and entropy) is stored once per forward; the rank and
probability per layer of every token sampled or forced from that forward are stored beside it, so a replay
shows the chosen token's path up the layers without the full distributions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from llmscope.lens import LogitLens

Choices = Mapping[int, tuple[np.ndarray, np.ndarray]]
"""Token id → (rank, probability) per lens row."""


def lens_arrays(lens: LogitLens) -> dict[str, np.ndarray]:
    """A lens as a forward's arrays: top-k and entropy per layer, and the ranks of every token it ranked."""
    arrays = {"lens_top_ids": lens.top_ids, "lens_top_probs": lens.top_probs, "lens_entropy": lens.entropy}
    return arrays | choice_arrays(lens.choices)


def choice_arrays(choices: Choices) -> dict[str, np.ndarray]:
    """The lens_choice_* arrays of `choices`, tokens in ascending id order (none when nothing was ranked)."""
    if not choices:
        return {}
    ids = sorted(choices)
    return {
        "lens_choice_ids": np.asarray(ids, dtype=np.int32),
        "lens_choice_ranks": np.stack([choices[token][0] for token in ids]).astype(np.int32),
        "lens_choice_probs": np.stack([choices[token][1] for token in ids]).astype(np.float32),
    }


def recorded_choices(arrays: Mapping[str, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The ranked tokens a forward's arrays hold."""
    if "lens_choice_ids" not in arrays:
        return {}
    ranks, probs = arrays["lens_choice_ranks"], arrays["lens_choice_probs"]
    return {
        int(token_id): (np.asarray(ranks[number], dtype=np.int64), np.asarray(probs[number], dtype=np.float32))
        for number, token_id in enumerate(np.asarray(arrays["lens_choice_ids"]).tolist())
    }


def lens_from_arrays(arrays: Mapping[str, np.ndarray]) -> LogitLens | None:
    """The recorded lens of a forward (None when the lens capture was off), with its ranked tokens."""
    if "lens_top_ids" not in arrays:
        return None
    return LogitLens(
        top_ids=np.asarray(arrays["lens_top_ids"], dtype=np.int64),
        top_probs=np.asarray(arrays["lens_top_probs"], dtype=np.float32),
        entropy=np.asarray(arrays["lens_entropy"], dtype=np.float32),
        choices=recorded_choices(arrays),
    )


def merged_choice_arrays(arrays: Mapping[str, np.ndarray], lens: LogitLens | None) -> dict[str, np.ndarray] | None:
    """New lens_choice_* arrays when `lens` ranked a token the forward's arrays do not hold yet, else None."""
    if lens is None or "lens_top_ids" not in arrays:
        return None
    known = recorded_choices(arrays)
    merged = {**known, **lens.choices}
    return None if merged.keys() == known.keys() else choice_arrays(merged)
