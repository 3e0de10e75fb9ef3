"""The sampler's knobs: SamplerConfig with its ranges, the stage orders, and the named presets.

Kept apart from the stages themselves (llmscope.sampler) because every layer reads knobs (CLI options,
session files, demo scripts, the knobs panel) while only the sampler runs them. Standard library only.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
