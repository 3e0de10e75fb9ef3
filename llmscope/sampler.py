"""Next-token sampler as a pipeline of stages over numpy logits, one decoding step at a time.

Each stage (penalties, temperature, top-k, top-p, min-p) reports what survived it and the
renormalised distribution after it, so a display can show every stage's effect, and re-sampling
with new knobs needs only the stored logits. Imports only numpy and the standard library.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from llmscope.sampler_config import (
    MIN_TEMPERATURE,
    PRESETS,
    STAGE_ORDERS,
    SamplerConfig,
    SamplerConfigError,
    preset,
)

__all__ = [
    "MIN_TEMPERATURE",
    "PRESETS",
    "STAGE_ORDERS",
    "SamplerConfig",
    "SamplerConfigError",
    "SampleResult",
    "StageResult",
    "entropy",
    "preset",
    "sample",
    "softmax",
]

StageFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A stage's transform: (logits before, probs before) -> logits after."""


@dataclass(frozen=True, eq=False)
class StageResult:
    """The distribution after one pipeline stage and the tokens that stage removed."""

    name: str
    label: str
    active: bool
    """False when the knob is off (or skipped under greedy); logits then pass through unchanged."""
    logits: np.ndarray
    """float32 [vocab], -inf where removed by this or an earlier stage."""
    probs: np.ndarray
    """float32 [vocab], softmax of `logits` (renormalised over survivors)."""
    kept: int
    removed_unordered: np.ndarray = field(repr=False)
    """int64 ids removed by this stage only, in id order (see `removed_ids` for the display order)."""
    logits_before: np.ndarray = field(repr=False)
    """float32 [vocab] logits this stage received (shared, not copied)."""

    @cached_property
    def removed_ids(self) -> np.ndarray:
        """int64 ids removed by this stage only, by descending probability before it (lower id first on ties).

        Computed on first use: greedy removes ~all of the vocabulary, and sorting it every step would
        cost milliseconds that only a display ever needs.
        """
        order = np.argsort(-self.logits_before[self.removed_unordered], kind="stable")
        return _frozen(self.removed_unordered[order])


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Everything about one sampling step: raw distribution, every stage, the final pick."""

    raw_logits: np.ndarray
    raw_probs: np.ndarray
    stages: tuple[StageResult, ...]
    final_probs: np.ndarray
    """float32 [vocab], the distribution actually sampled from (one-hot for greedy)."""
    token_id: int
    greedy: bool
    draw: float | None
    """The uniform number in [0, 1) used for the pick; None for greedy."""
    config: SamplerConfig
    step_index: int

    @property
    def entropy_raw(self) -> float:
        """Entropy of the raw distribution in nats."""
        return entropy(self.raw_probs)

    @property
    def entropy_final(self) -> float:
        """Entropy of the distribution sampled from, in nats."""
        return entropy(self.final_probs)

    def stage(self, name: str) -> StageResult:
        """Return the stage called `name` (KeyError listing the stage names otherwise)."""
        for stage_result in self.stages:
            if stage_result.name == name:
                return stage_result
        raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")

    def top(self, n: int) -> list[int]:
        """Ids of the n most likely raw tokens, lower id first among equal logits."""
        return [int(i) for i in np.argsort(-self.raw_logits, kind="stable")[: max(n, 0)]]


def _softmax_unchecked(logits: np.ndarray) -> np.ndarray:
    """Softmax computed in float64 and rounded to float32 (-inf maps to probability 0)."""
    shifted = logits.astype(np.float64) - float(np.max(logits))
    exps = np.exp(shifted)
    return (exps / exps.sum()).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Float32 softmax that treats -inf as probability 0; rejects NaN, +inf and all -inf."""
    values = np.asarray(logits)
    if np.isnan(values).any() or np.isposinf(values).any() or not np.isfinite(values).any():
        raise ValueError("softmax needs logits without NaN or +inf and with at least one finite value")
    return _softmax_unchecked(values)


def entropy(probs: np.ndarray) -> float:
    """Shannon entropy in nats, counting 0 * log 0 as 0."""
    p = np.asarray(probs, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _as_logits(logits: np.ndarray) -> np.ndarray:
    """Validate one step's logits and return a float32 copy (the caller's array is never touched)."""
    values = np.asarray(logits)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array, got shape {values.shape}")
    if values.dtype.kind not in "fiu":
        raise ValueError(f"logits must be real numbers, got dtype {values.dtype}")
    as_float32 = values.astype(np.float32)  # astype always copies
    if np.isnan(as_float32).any():
        raise ValueError("logits contain NaN")
    if np.isposinf(as_float32).any() or not np.isfinite(as_float32).any():
        raise ValueError("logits must have no +inf (or overflow of float32) and at least one finite value")
    return as_float32


def _token_ids(ids: Sequence[int], vocab_size: int, what: str) -> np.ndarray:
    """Token ids as int64, dropping ids >= vocab_size as transformers does; negative ids are an error."""
    array = np.asarray(list(ids), dtype=np.int64).reshape(-1)
    if (array < 0).any():
        raise ValueError(f"{what} contain a negative token id")
    return array[array < vocab_size]


def _repetition_penalty(logits: np.ndarray, seen_ids: np.ndarray, penalty: float) -> np.ndarray:
    """CTRL penalty on every seen id: negative logits times penalty, others divided (float32)."""
    out = logits.copy()
    ids = np.unique(seen_ids)
    penalty32 = np.float32(penalty)
    values = out[ids]
    out[ids] = np.where(values < 0, values * penalty32, values / penalty32)
    return out


def _frequency_presence(logits: np.ndarray, generated: np.ndarray, frequency: float, presence: float) -> np.ndarray:
    """OpenAI penalties: logit -= frequency * count + presence * (count > 0), counts over generated ids."""
    counts = np.bincount(generated, minlength=logits.size).astype(np.float64)
    return logits - (frequency * counts + presence * (counts > 0)).astype(np.float32)


def _keep_only(logits: np.ndarray, keep_id: int) -> np.ndarray:
    """Everything -inf except `keep_id` (greedy's temperature stage)."""
    out = np.full_like(logits, -np.inf)
    out[keep_id] = logits[keep_id]
    return out


def _top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """TopKLogitsWarper: drop logits below the k-th largest, so ties at the boundary stay."""
    if k >= logits.size:
        return logits
    kth_largest = np.partition(logits, logits.size - k)[logits.size - k]
    return np.where(logits < kth_largest, np.float32(-np.inf), logits)


def _top_p(logits: np.ndarray, probs: np.ndarray, top_p: float) -> np.ndarray:
    """TopPLogitsWarper: sort ascending, drop where cumulative prob <= 1 - top_p, keep the largest.

    The cumulative sum is accumulated in float64 and rounded to float32 (as torch's CPU cumsum),
    and compared with float32(1 - top_p), so the token that crosses the threshold is kept.
    A stable sort puts lower ids first among ties (torch.sort does too for up to 16 values).
    """
    ascending = np.argsort(logits, kind="stable")
    cumulative = np.cumsum(probs[ascending], dtype=np.float64).astype(np.float32)
    remove_sorted = cumulative <= np.float32(1.0 - top_p)
    remove_sorted[-1] = False
    out = logits.copy()
    out[ascending[remove_sorted]] = -np.inf
    return out


def _min_p(logits: np.ndarray, probs: np.ndarray, min_p: float) -> np.ndarray:
    """MinPLogitsWarper: drop probs < float32(min_p) * max prob (float32 product, as torch).

    transformers' keep-at-least-one guard is implied: for min_p <= 1 the top token never falls below.
    """
    remove = probs < np.float32(min_p) * probs.max()
    return np.where(remove, np.float32(-np.inf), logits)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only so results stay immutable (arrays may be shared between stages)."""
    array.setflags(write=False)
    return array


def _run_stage(
    name: str, label: str, active: bool, logits_before: np.ndarray, probs_before: np.ndarray, apply: StageFn
) -> StageResult:
    """Apply one stage (if active) and record survivors, renormalised probs and newly removed ids."""
    if not active:
        logits_after, probs_after = logits_before, probs_before
    else:
        logits_after = _frozen(apply(logits_before, probs_before).astype(np.float32, copy=False))
        if np.isposinf(logits_after).any():
            raise ValueError(f"{name} pushed a logit past the float32 range ({label})")
        probs_after = _frozen(_softmax_unchecked(logits_after))
    finite_after = np.isfinite(logits_after)
    if active:
        removed = np.flatnonzero(np.isfinite(logits_before) & ~finite_after).astype(np.int64)
    else:
        removed = np.empty(0, dtype=np.int64)  # an inactive stage passes logits through unchanged
    return StageResult(
        name, label, active, logits_after, probs_after, int(finite_after.sum()), _frozen(removed), logits_before
    )


def _stage_plans(
    config: SamplerConfig, seen_ids: np.ndarray, generated: np.ndarray
) -> dict[str, tuple[str, bool, StageFn]]:
    """Label, active flag and transform of every stage; greedy skips the filters (argmax after penalties)."""
    c, filtering = config, not config.greedy
    skipped = "" if filtering else " (skipped: greedy)"

    def temperature(logits: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return _keep_only(logits, int(np.argmax(logits))) if c.greedy else logits / np.float32(c.temperature)

    return {
        "repetition_penalty": (
            f"repetition penalty {c.repetition_penalty:g}",
            c.repetition_penalty != 1,
            lambda x, p: _repetition_penalty(x, seen_ids, c.repetition_penalty),
        ),
        "frequency_presence_penalty": (
            f"frequency {c.frequency_penalty:g} / presence {c.presence_penalty:g}",
            c.frequency_penalty != 0 or c.presence_penalty != 0,
            lambda x, p: _frequency_presence(x, generated, c.frequency_penalty, c.presence_penalty),
        ),
        "temperature": (
            "temperature 0 (greedy)" if c.greedy else f"temperature {c.temperature:g}",
            c.temperature != 1,
            temperature,
        ),
        "top_k": (
            (f"top-k {c.top_k}" if c.top_k else "top-k off") + skipped,
            filtering and c.top_k != 0,
            lambda x, p: _top_k(x, c.top_k),
        ),
        "top_p": (
            (f"top-p {c.top_p:g}" if c.top_p < 1 else "top-p off") + skipped,
            filtering and c.top_p < 1,
            lambda x, p: _top_p(x, p, c.top_p),
        ),
        "min_p": (
            (f"min-p {c.min_p:g}" if c.min_p > 0 else "min-p off") + skipped,
            filtering and c.min_p > 0,
            lambda x, p: _min_p(x, p, c.min_p),
        ),
    }


def sample(
    logits: np.ndarray,
    *,
    prompt_ids: Sequence[int] = (),
    generated_ids: Sequence[int] = (),
    config: SamplerConfig = SamplerConfig(),
    step_index: int = 0,
) -> SampleResult:
    """Run the stage pipeline on one step's logits and pick a token, reproducibly per (seed, step).

    The repetition penalty covers prompt and generated ids (as transformers penalises all input
    ids); frequency/presence penalties count generated ids only (OpenAI). Under greedy
    (temperature 0) the filter stages are skipped and the argmax after penalties is taken.
    """
    config.validate()
    if isinstance(step_index, bool) or not isinstance(step_index, numbers.Integral) or step_index < 0:
        raise ValueError(f"step_index must be an integer >= 0, got {step_index!r}")
    raw_logits = _frozen(_as_logits(logits))
    vocab_size = raw_logits.size
    generated = _token_ids(generated_ids, vocab_size, "generated_ids")
    seen_ids = np.concatenate([_token_ids(prompt_ids, vocab_size, "prompt_ids"), generated])
    raw_probs = _frozen(_softmax_unchecked(raw_logits))

    plans = _stage_plans(config, seen_ids, generated)
    stages: list[StageResult] = []
    logits_now, probs_now = raw_logits, raw_probs
    for name in STAGE_ORDERS[config.order]:
        label, active, apply = plans[name]
        result = _run_stage(name, label, active, logits_now, probs_now, apply)
        stages.append(result)
        logits_now, probs_now = result.logits, result.probs

    if config.greedy:
        token_id, draw = int(np.argmax(logits_now)), None
    else:
        draw = float(np.random.default_rng([int(config.seed), int(step_index)]).random())
        cumulative = np.cumsum(probs_now, dtype=np.float64)
        index = int(np.searchsorted(cumulative, draw * cumulative[-1], side="right"))
        token_id = min(index, int(np.flatnonzero(probs_now)[-1]))  # guard against rounding at the top
    return SampleResult(
        raw_logits=raw_logits,
        raw_probs=raw_probs,
        stages=tuple(stages),
        final_probs=probs_now,
        token_id=token_id,
        greedy=config.greedy,
        draw=draw,
        config=config,
        step_index=int(step_index),
    )
