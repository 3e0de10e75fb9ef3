"""Next-token sampler as a pipeline of stages over numpy logits, one decoding step at a time.

Each stage (penalties, temperature, top-k, top-p, min-p) reports what survived it and the
renormalised distribution after it, so a display can show every stage's effect, and re-sampling
with new knobs needs only the stored logits. Imports only numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

# Stage order in transformers' generate (transformers 5.23, generation/utils.py,
# `_get_logits_processor`): RepetitionPenaltyLogitsProcessor is appended at line 1471, before the
# sampling-only warpers, which follow under `if generation_config.do_sample:` (line 1597):
# TemperatureLogitsWarper (1613), TopKLogitsWarper (1617), TopPLogitsWarper (1621) and
# MinPLogitsWarper (1626, "applied after temperature scaling"). transformers has no OpenAI
# frequency/presence penalty; we put it right after the repetition penalty, with the penalties.
# "llama.cpp" takes only llama.cpp's order (temperature last); every stage keeps its HF definition.
STAGE_ORDERS: dict[str, tuple[str, ...]] = {
    "hf": ("repetition_penalty", "frequency_presence_penalty", "temperature", "top_k", "top_p", "min_p"),
    "llama.cpp": ("repetition_penalty", "frequency_presence_penalty", "top_k", "top_p", "min_p", "temperature"),
}
MIN_TEMPERATURE = 1e-6
"""Smallest positive temperature; far smaller ones round to 0 in float32 or overflow logits / T."""

StageFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A stage's transform: (logits before, probs before) -> logits after."""


class SamplerConfigError(ValueError):
    """A sampler knob has a value outside its allowed range (one-line message naming the knob)."""


def _check_real(knob: str, value: object, allowed: str, ok: Callable[[float], bool]) -> None:
    """Raise SamplerConfigError unless `value` is a finite real number that satisfies `ok`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise SamplerConfigError(f"{knob}={value!r} is invalid: allowed {allowed}")


@dataclass(frozen=True)
class SamplerConfig:
    """Knobs for one sampling step; every knob has an 'off' value that leaves logits unchanged."""

    temperature: float = 1.0
    """0 means greedy (argmax after penalties)."""
    top_k: int = 0
    """0 = off (unlike transformers' default of 50)."""
    top_p: float = 1.0
    """1.0 = off; allowed (0, 1]."""
    min_p: float = 0.0
    """0 = off; allowed [0, 1]."""
    repetition_penalty: float = 1.0
    """1.0 = off; CTRL/transformers sign-aware: positive logits divided, negative multiplied."""
    frequency_penalty: float = 0.0
    """OpenAI: subtract penalty * count of the token in the generated ids; allowed [-2, 2]."""
    presence_penalty: float = 0.0
    """OpenAI: subtract penalty once if the token occurs in the generated ids; allowed [-2, 2]."""
    seed: int = 0
    order: str = "hf"
    """'hf' (transformers' generate order) or 'llama.cpp' (temperature last)."""

    def validate(self) -> SamplerConfig:
        """Raise SamplerConfigError for the first knob out of range; return self when all are valid."""
        _check_real(
            "temperature",
            self.temperature,
            f"0 (greedy) or a number >= {MIN_TEMPERATURE:g}",
            lambda t: t == 0 or t >= MIN_TEMPERATURE,
        )
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, numbers.Integral) or self.top_k < 0:
            raise SamplerConfigError(f"top_k={self.top_k!r} is invalid: allowed an integer >= 0 (0 = off)")
        _check_real("top_p", self.top_p, "(0, 1] (1 = off)", lambda p: 0 < p <= 1)
        _check_real("min_p", self.min_p, "[0, 1] (0 = off)", lambda p: 0 <= p <= 1)
        _check_real("repetition_penalty", self.repetition_penalty, "a number > 0 (1 = off)", lambda p: p > 0)
        _check_real("frequency_penalty", self.frequency_penalty, "[-2, 2] (0 = off)", lambda p: -2 <= p <= 2)
        _check_real("presence_penalty", self.presence_penalty, "[-2, 2] (0 = off)", lambda p: -2 <= p <= 2)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise SamplerConfigError(f"seed={self.seed!r} is invalid: allowed an integer >= 0")
        if self.order not in STAGE_ORDERS:
            raise SamplerConfigError(f"order={self.order!r} is invalid: allowed {', '.join(STAGE_ORDERS)}")
        return self

    def with_changes(self, **changes: object) -> SamplerConfig:
        """Return a validated copy with some knobs changed (unknown knob names are rejected)."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise SamplerConfigError(f"unknown sampler knob {unknown[0]!r}: allowed {', '.join(known)}")
        unchecked: dict[str, Any] = changes  # any type until validate() checks each knob's type and range
        return dataclasses.replace(self, **unchecked).validate()

    @property
    def greedy(self) -> bool:
        """True when temperature is 0, i.e. the step takes the argmax after penalties."""
        return self.temperature == 0

    def describe(self) -> str:
        """One-line summary of the knobs that are not off, for status bars ('T=0.7 top-p=0.9 seed=1')."""
        parts = ["greedy" if self.greedy else f"T={self.temperature:g}"]
        if not self.greedy:
            parts += [f"top-k={self.top_k}"] if self.top_k else []
            parts += [f"top-p={self.top_p:g}"] if self.top_p < 1 else []
            parts += [f"min-p={self.min_p:g}"] if self.min_p > 0 else []
        parts += [f"rep={self.repetition_penalty:g}"] if self.repetition_penalty != 1 else []
        parts += [f"freq={self.frequency_penalty:g}"] if self.frequency_penalty else []
        parts += [f"pres={self.presence_penalty:g}"] if self.presence_penalty else []
        parts += [f"order={self.order}"] if self.order != "hf" else []
        parts += [] if self.greedy else [f"seed={self.seed}"]
        return " ".join(parts)


PRESETS: dict[str, SamplerConfig] = {
    "greedy": SamplerConfig(temperature=0.0),
    "conservative": SamplerConfig(temperature=0.2, top_p=0.1),
    "balanced": SamplerConfig(temperature=0.7, top_p=0.9),
    "creative": SamplerConfig(temperature=1.0, top_p=0.95),
}
"""Typical production settings as listed in the seed notes (CONCEPTS §6.9)."""


def preset(name: str) -> SamplerConfig:
    """Return the preset called `name`; an unknown name raises SamplerConfigError listing valid ones."""
    if name not in PRESETS:
        raise SamplerConfigError(f"preset={name!r} is unknown: allowed {', '.join(PRESETS)}")
    return PRESETS[name]


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
