"""What happened during a recording, in order: prompts, knob changes, steps, re-samples, forced tokens, rewinds and
comparisons (docs/session-format.md, "Event objects"). Plain frozen dataclasses, written and read by the codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from llmscope.sampler import SamplerConfig
from llmscope.trace import TokenInfo


@dataclass(frozen=True)
class PromptEvent:
    """A prompt was set and prefilled; `shown_text`/`shown_tokens` are what the tokenizer pane displayed."""

    kind: ClassVar[str] = "prompt"
    text: str
    chat: bool
    system_prompt: str | None
    prompt_ids: tuple[int, ...]
    shown_text: str
    """The text the tokenizer pane inspects: the prompt, or its chat-template rendering when chat is on."""
    shown_tokens: tuple[TokenInfo, ...] = ()
    """Tokens of `shown_text` with character offsets (empty if the engine could not inspect it)."""


@dataclass(frozen=True)
class KnobsEvent:
    """The sampler knobs changed (every later sample uses them until the next change)."""

    kind: ClassVar[str] = "knobs"
    config: SamplerConfig


@dataclass(frozen=True)
class StepEvent:
    """A token was sampled from a new forward: the prefill (first step) or after feeding the previous token."""

    kind: ClassVar[str] = "step"
    step: int
    """Index into Session.steps."""


@dataclass(frozen=True)
class ResampleEvent:
    """The current step's token was re-picked from the same forward with new knobs (no forward pass)."""

    kind: ClassVar[str] = "resample"
    step: int
    """Index into Session.steps; its forward is the forward of the step it replaces."""


@dataclass(frozen=True)
class ForceEvent:
    """The user replaced the current step's token by one of their choice (no forward pass; format version 2)."""

    kind: ClassVar[str] = "force"
    step: int
    """Index into Session.steps: the forced token, on the forward of the step it replaces."""


@dataclass(frozen=True)
class RewindEvent:
    """The last `count` tokens were dropped."""

    kind: ClassVar[str] = "rewind"
    count: int


@dataclass(frozen=True)
class ComparisonEvent:
    """A side-by-side comparison (`llmscope compare --save`); the payload format is in docs/session-format.md."""

    kind: ClassVar[str] = "comparison"
    data: Mapping[str, Any] = field(default_factory=dict)


SessionEvent = PromptEvent | KnobsEvent | StepEvent | ResampleEvent | ForceEvent | RewindEvent | ComparisonEvent
EVENT_TYPES: dict[str, type] = {
    t.kind: t for t in (PromptEvent, KnobsEvent, StepEvent, ResampleEvent, ForceEvent, RewindEvent, ComparisonEvent)
}
