"""The manifest's steps and events, decoded and checked, and the history re-enacted on forward indices so that a
file that loads can always be replayed (docs/session-format.md, "Event objects")."""

from __future__ import annotations

from typing import Any

from llmscope.sampler import SamplerConfig
from llmscope.session.checks import decode_record, fail, finite, integer, token_ids, typed
from llmscope.session.events import (
    EVENT_TYPES,
    ComparisonEvent,
    ForceEvent,
    KnobsEvent,
    PromptEvent,
    ResampleEvent,
    RewindEvent,
    SessionEvent,
    StepEvent,
)
from llmscope.session.recording import RecordedStep
from llmscope.trace import ModelInfo, TokenInfo


def decode_config(value: Any, where: str) -> SamplerConfig:
    config = decode_record(SamplerConfig, value, where)
    try:
        return config.validate()
    except ValueError as error:
        raise fail(where, f"is invalid ({error})") from None


def decode_steps(value: Any, forwards: int, vocab_size: int) -> tuple[RecordedStep, ...]:
    steps = []
    for n, item in enumerate(typed(value, list, "steps", "a list")):
        where = f"steps[{n}]"
        entry = typed(item, dict, where, "an object")
        probability = finite(entry.get("probability"), f"{where}.probability")
        if not 0.0 <= probability <= 1.001:
            raise fail(f"{where}.probability", f"must be in [0, 1], got {probability}")
        steps.append(
            RecordedStep(
                forward=integer(entry.get("forward"), f"{where}.forward", 0, forwards - 1),
                token_id=integer(entry.get("token_id"), f"{where}.token_id", 0, vocab_size - 1),
                probability=probability,
                config=decode_config(entry.get("config"), f"{where}.config"),
            )
        )
    return tuple(steps)


def decode_event(value: Any, where: str, steps: int, vocab_size: int) -> SessionEvent:
    entry = typed(value, dict, where, "an object")
    kind = entry.get("kind")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise fail(f"{where}.kind", f"is {kind!r}: allowed {', '.join(EVENT_TYPES)}")
    if kind == "prompt":
        shown = tuple(
            decode_record(TokenInfo, token, f"{where}.shown_tokens[{n}]")
            for n, token in enumerate(typed(entry.get("shown_tokens", []), list, f"{where}.shown_tokens", "a list"))
        )
        return decode_record(
            PromptEvent,
            entry,
            where,
            shown_tokens=shown,
            prompt_ids=token_ids(entry.get("prompt_ids"), f"{where}.prompt_ids", vocab_size),
        )
    if kind == "knobs":
        return KnobsEvent(decode_config(entry.get("config"), f"{where}.config"))
    if kind in ("step", "resample", "force"):
        return EVENT_TYPES[kind](integer(entry.get("step"), f"{where}.step", 0, steps - 1))
    if kind == "rewind":
        return RewindEvent(integer(entry.get("count"), f"{where}.count", 1))
    return ComparisonEvent(typed(entry.get("data", {}), dict, f"{where}.data", "an object"))


def check_history(
    events: tuple[SessionEvent, ...], steps: tuple[RecordedStep, ...], forwards: list[dict[str, Any]], model: ModelInfo
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
            raise fail(where, f"is a {event.kind} before any prompt")
        if isinstance(event, StepEvent):
            assert prompt_ids is not None, "a step before any prompt was refused above"
            if path and (path[-1].token_id in model.eos_token_ids or len(prompt_ids) + len(path) >= model.max_context):
                raise fail(where, "steps past the end of the generation (after EOS or a full context)")
            step = steps[event.step]
            forward = forwards[step.forward]
            expected = (None, prompt_ids) if not path else (path[-1].forward, (path[-1].token_id,))
            if (forward["parent"], forward["input_ids"]) != expected:
                raise fail(
                    where,
                    f"steps from forward {step.forward}, which does not continue the generation "
                    f"(it feeds {list(forward['input_ids'])[:8]} after forward {forward['parent']})",
                )
            path.append(step)
        elif isinstance(event, (ResampleEvent, ForceEvent)):
            if not path or steps[event.step].forward != path[-1].forward:
                verb = "re-samples" if isinstance(event, ResampleEvent) else "forces a token on"
                raise fail(where, f"{verb} a forward that is not the current step's")
            path[-1] = steps[event.step]
        elif isinstance(event, RewindEvent):
            if event.count >= len(path):
                raise fail(f"{where}.count", f"rewinds {event.count} of {len(path)} steps (the first stays)")
            del path[-event.count :]
