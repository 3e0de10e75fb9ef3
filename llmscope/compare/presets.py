"""Lane specifications (a model name, a prompt and knobs, before anything is loaded) and ready-made experiments.

Each experiment turns one base lane into the pair (A, B) that answers a common question: what does
the temperature change, a system prompt, the chat template, a typo, another model.
Imports neither torch nor Textual.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from llmscope.sampler import SamplerConfig

PIRATE_SYSTEM_PROMPT = "You are a pirate. Answer every question the way a pirate would."
"""The system prompt of the `system-prompt` experiment: a style change anyone can see in a few tokens."""
LOW_TEMPERATURE, HIGH_TEMPERATURE = 0.2, 1.2
HOTTER_STEP = 0.5
"""How much hotter than lane A the `hotter` experiment makes lane B when A is at HIGH_TEMPERATURE or above."""


class LaneChanges(TypedDict, total=False):
    """The fields of LaneSpec, each optional: what `LaneSpec.with_changes` may replace."""

    model: str
    prompt: str
    chat: bool
    system_prompt: str | None
    config: SamplerConfig


@dataclass(frozen=True)
class LaneSpec:
    """What one lane will run: which model (a registry name, directory or hub id), the prompt, the knobs."""

    model: str
    prompt: str
    chat: bool = False
    system_prompt: str | None = None
    config: SamplerConfig = field(default_factory=SamplerConfig)

    def with_changes(self, **changes: Unpack[LaneChanges]) -> LaneSpec:
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """'tiny-moe · T=1.2 seed=0 · chat, system prompt' for lane headers."""
        mode = "chat" if self.chat else "plain"
        if self.chat and self.system_prompt:
            mode += ", system prompt"
        return f"{self.model} · {self.config.describe()} · {mode}"


def typo(text: str) -> str:
    """Swap two adjacent letters in the middle of the longest word (the first longest on ties), deterministically.

    Pairs of equal letters are skipped (swapping them changes nothing), moving outwards from the middle.
    """
    words = sorted(re.finditer(r"[^\W\d_]+", text), key=lambda match: -len(match.group()))
    for word in words:
        letters = word.group()
        middle = (len(letters) - 1) // 2
        for offset in sorted(range(len(letters) - 1), key=lambda i: (abs(i - middle), i)):
            if letters[offset] != letters[offset + 1]:
                at = word.start() + offset
                return text[:at] + text[at + 1] + text[at] + text[at + 2 :]
    raise ValueError(f"cannot make a typo in {text!r}: it has no word with two different adjacent letters")


@dataclass(frozen=True)
class ExperimentPreset:
    """A named experiment: how to derive lanes A and B from one base lane, and what it shows."""

    name: str
    description: str
    make: Callable[[LaneSpec], tuple[LaneSpec, LaneSpec]]


def _temperature(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    return (
        base.with_changes(config=base.config.with_changes(temperature=LOW_TEMPERATURE)),
        base.with_changes(config=base.config.with_changes(temperature=HIGH_TEMPERATURE)),
    )


def hotter_temperature(temperature: float) -> float:
    """Lane B's temperature in the `hotter` experiment: HIGH_TEMPERATURE, or HOTTER_STEP above lane A's if A is
    already that hot (so B is always the hotter lane)."""
    return HIGH_TEMPERATURE if temperature < HIGH_TEMPERATURE else round(temperature + HOTTER_STEP, 6)


def _hotter(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    hotter = hotter_temperature(base.config.temperature)
    return base, base.with_changes(config=base.config.with_changes(temperature=hotter))


def _system_prompt(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    return (
        base.with_changes(chat=True, system_prompt=None),
        base.with_changes(chat=True, system_prompt=PIRATE_SYSTEM_PROMPT),
    )


def _chat_template(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    return base.with_changes(chat=False, system_prompt=None), base.with_changes(chat=True)


def _typo(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    return base, base.with_changes(prompt=typo(base.prompt))


def _models(base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    from llmscope.registry import builtin_model_dir

    missing = [name for name in ("tiny-dense", "tiny-moe") if builtin_model_dir(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ValueError(
            f"the 'models' experiment needs llmscope's tiny-dense and tiny-moe; {' and '.join(missing)} "
            f"{verb} not shipped in this build: pick two models with --a-model and --b-model instead"
        )
    return base.with_changes(model="tiny-dense"), base.with_changes(model="tiny-moe")


EXPERIMENTS: dict[str, ExperimentPreset] = {
    preset.name: preset
    for preset in (
        ExperimentPreset(
            "hotter",
            f"lane A as set, lane B the same at temperature {HIGH_TEMPERATURE:g} (or {HOTTER_STEP:g} above A when A "
            "is already that hot; same seed)",
            _hotter,
        ),
        ExperimentPreset(
            "temperature",
            f"temperature {LOW_TEMPERATURE:g} versus {HIGH_TEMPERATURE:g}, same prompt, same seed",
            _temperature,
        ),
        ExperimentPreset(
            "system-prompt",
            "chat mode without and with a system prompt (a pirate); without one, some "
            "chat templates insert their own default",
            _system_prompt,
        ),
        ExperimentPreset(
            "chat-template", "the raw prompt versus the same prompt wrapped in the chat template", _chat_template
        ),
        ExperimentPreset(
            "typo", "the clean prompt versus the same prompt with two letters swapped in its longest word", _typo
        ),
        ExperimentPreset("models", "llmscope's tiny-dense versus tiny-moe on the same prompt and knobs", _models),
    )
}


def experiment_lanes(name: str, base: LaneSpec) -> tuple[LaneSpec, LaneSpec]:
    """Lanes A and B of experiment `name` built from `base`; an unknown name or unusable base raises ValueError."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment preset {name!r}: allowed {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name].make(base)


__all__ = ["EXPERIMENTS", "ExperimentPreset", "LaneSpec", "experiment_lanes", "typo"]
