"""Re-enacting a recording: its events walked through a Generation over the replay engine, re-sampling every step.

The engine itself lives in llmscope.session.replay_engine and the shipped sessions in llmscope.session.shipped;
both are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from llmscope.generation import Generation, Step
from llmscope.sampler import SamplerConfig, SampleResult
from llmscope.session.recording import (
    ComparisonEvent,
    ForceEvent,
    KnobsEvent,
    PromptEvent,
    RecordedStep,
    ResampleEvent,
    RewindEvent,
    Session,
    StepEvent,
)
from llmscope.session.replay_engine import NOT_RECORDED, ReplayEngine, replay_capabilities, replay_engine_factory
from llmscope.session.shipped import ShippedSession, find_session_file, shipped_sessions, shipped_sessions_dir

__all__ = [
    "NOT_RECORDED",
    "ReplayEngine",
    "ReplayMove",
    "ReplayedStep",
    "ShippedSession",
    "find_session_file",
    "keep_recorded",
    "play_move",
    "reenact",
    "replay_capabilities",
    "replay_engine_factory",
    "replay_moves",
    "shipped_sessions",
    "shipped_sessions_dir",
]


# ------------------------------------------------------------------------------ re-enactment
@dataclass(frozen=True, eq=False)
class ReplayedStep:
    """One recorded sample, re-sampled now from the recorded logits with the recorded knobs."""

    action: str
    """'step' (a new forward), 'resample' (same forward, new knobs) or 'force' (same forward, the user's token)."""
    run: int
    """Which prompt of the session (0-based)."""
    recorded: RecordedStep
    step: Step
    """The step as re-sampled now (its token may differ from the recording's, e.g. with top-k logits)."""
    result: SampleResult

    @property
    def reproduced(self) -> bool:
        return self.step.token_id == self.recorded.token_id


ReplayItem = PromptEvent | KnobsEvent | RewindEvent | ComparisonEvent | ReplayedStep


def keep_recorded(generation: Generation, recorded: RecordedStep) -> Step:
    """Make the generation's last step carry the recorded token when re-sampling chose another (top-k logits).

    The recorded probability is kept, and the raw probability is read from the step's own logits, so the
    rest of the recording can still be followed; a reproduced step is returned unchanged.
    """
    step = generation.steps[-1]
    if step.token_id == recorded.token_id:
        return step
    logits = step.trace.logits
    shifted = np.exp(logits - logits.max())
    kept = dataclasses.replace(
        step,
        trace=step.trace.with_chosen(generation.engine.token_info(recorded.token_id)),
        probability=recorded.probability,
        raw_probability=float(shifted[recorded.token_id] / shifted.sum()),
    )
    generation.steps[-1] = kept
    return kept


@dataclass(frozen=True)
class ReplayMove:
    """One action of a recording as the playground replays it: one press of space.

    'prompt' prefills a run's prompt and samples its first token, 'step' feeds the last token and samples
    the next, 'resample' re-picks the current token with new knobs, 'force' replaces it with the user's
    token, 'rewind' drops `count` tokens.
    """

    kind: str
    run: int
    """Which prompt of the session (0-based)."""
    prompt: PromptEvent
    """The run's prompt (its text and chat mode are what the prompt row shows)."""
    config: SamplerConfig
    """The knobs in force after the move (the recorded sample's knobs; unchanged by a rewind)."""
    recorded: RecordedStep | None = None
    """The recorded sample (None for a rewind)."""
    count: int = 0
    """Tokens a rewind drops."""


def replay_moves(session: Session) -> tuple[ReplayMove, ...]:
    """The session's events as playground moves; knob changes and comparisons ride on the move after them."""
    moves: list[ReplayMove] = []
    prompt: PromptEvent | None = None
    fresh_prompt = False
    run = -1
    config = SamplerConfig()
    for event in session.events:
        if isinstance(event, PromptEvent):
            prompt, fresh_prompt, run = event, True, run + 1
        elif isinstance(event, KnobsEvent):
            config = event.config
        elif isinstance(event, RewindEvent) and prompt is not None:
            moves.append(ReplayMove("rewind", run, prompt, config, count=event.count))
        elif isinstance(event, (StepEvent, ResampleEvent, ForceEvent)) and prompt is not None:
            recorded = session.steps[event.step]
            config = recorded.config
            kind = "prompt" if fresh_prompt else event.kind
            moves.append(ReplayMove(kind, run, prompt, config, recorded))
            fresh_prompt = False
    return tuple(moves)


def play_move(generation: Generation, move: ReplayMove) -> Step | None:
    """Do one move to `generation` as the recording did, ending on the recorded token (None after a rewind)."""
    if move.kind == "rewind":
        generation.rewind(move.count)
        return None
    recorded = move.recorded
    assert recorded is not None, "every move but a rewind carries its recorded sample"
    if move.kind == "resample":
        generation.resample(move.config)
    elif move.kind == "force":
        generation.config = move.config
        generation.force(recorded.token_id)
    else:
        generation.config = move.config
        prefer = getattr(generation.engine, "prefer_forward", None)
        if prefer is not None:
            prefer(recorded.forward)
        if move.kind == "prompt":
            generation.start(move.prompt.prompt_ids)
        else:
            generation.advance()
    return keep_recorded(generation, recorded)


def reenact(session: Session, engine: ReplayEngine | None = None) -> Iterator[tuple[ReplayItem, Generation]]:
    """Walk the session's events through a Generation over the replay engine, re-sampling every step.

    When a re-sampled token differs from the recorded one, the recorded token is kept so the rest of
    the recording can still be followed (the ReplayedStep says it was not reproduced).
    """
    engine = engine or ReplayEngine(session)
    generation = Generation(engine)
    run = -1
    prompt_ids: tuple[int, ...] = ()
    for event in session.events:
        if isinstance(event, PromptEvent):
            run += 1
            generation = Generation(engine)
            prompt_ids = event.prompt_ids
            yield event, generation
        elif isinstance(event, KnobsEvent):
            generation.config = event.config
            yield event, generation
        elif isinstance(event, RewindEvent):
            generation.rewind(event.count)
            yield event, generation
        elif isinstance(event, ComparisonEvent):
            yield event, generation
        else:
            recorded = session.steps[event.step]
            if isinstance(event, ResampleEvent):
                step = generation.resample(recorded.config)
            elif isinstance(event, ForceEvent):
                generation.config = recorded.config
                step = generation.force(recorded.token_id)
            else:
                generation.config = recorded.config
                engine.prefer_forward(recorded.forward)
                step = generation.start(prompt_ids) if not generation.steps else generation.advance()
            replayed = ReplayedStep(event.kind, run, recorded, step, generation.sample_result())
            keep_recorded(generation, recorded)  # follow the recording from here on
            yield replayed, generation
