"""The replay engine: serves a recorded session's forward passes through the Engine protocol, without torch.

Stepping follows the recording: a prefill or a fed token that was recorded returns its trace; anything
else has diverged from the recording and needs the live model. Re-sampling needs only logits, so
every knob still works on every recorded step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from llmscope.engine_api import EngineError
from llmscope.generation import Generation, Step
from llmscope.sampler import SamplerConfig, SampleResult
from llmscope.session.codec import SessionFormatError
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
from llmscope.trace import Capabilities, CaptureOptions, KVStats, RouterTrace, StepTrace, TokenInfo

NOT_RECORDED = "not recorded"


class _TraceTrim(TypedDict, total=False):
    """The StepTrace fields that a narrower capture setting than the recording's drops or trims."""

    attention: np.ndarray | None
    attention_query_start: int
    hidden_norms: np.ndarray | None
    kv: KVStats | None
    router: RouterTrace | None


def _quote(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def replay_capabilities(session: Session) -> Capabilities:
    """What the recording holds; a capture the live engine had but the recording lacks says so."""
    forwards = session.forwards
    captured = {
        "attention": any("attention" in forward.arrays for forward in forwards),
        "hidden_states": any("hidden_norms" in forward.arrays for forward in forwards),
        "kv_cache": any(forward.kv is not None for forward in forwards),
        "router": any(forward.has_router for forward in forwards),
    }
    reasons = dict(session.capabilities.reason)
    for name, present in captured.items():
        if not present and name not in reasons:
            reasons[name] = f"{name.replace('_', ' ')} was not captured in this recording"
    return Capabilities(**captured, reason=reasons)


class ReplayEngine:
    """An Engine over a Session: recorded prompts tokenize, recorded forwards step, new text needs the model."""

    def __init__(self, session: Session, *, capture: CaptureOptions | None = None) -> None:
        self.session = session
        self.info = session.model
        self.capabilities = replay_capabilities(session)
        self.capture = capture or session.capture
        self.forward_calls = 0
        self._path: list[int] = []
        """Canonical forward indices whose tokens make up the current context."""
        self._canonical: list[int] = []
        """Forward → the first recorded forward over the same context (a rewind can re-run one)."""
        self._children: dict[tuple[int | None, tuple[int, ...]], int] = {}
        for number, forward in enumerate(session.forwards):
            parent = None if forward.parent is None else self._canonical[forward.parent]
            self._canonical.append(self._children.setdefault((parent, forward.input_ids), number))
        self._samples: dict[int, list[RecordedStep]] = {}
        for step in session.steps:
            self._samples.setdefault(self._canonical[step.forward], []).append(step)
        self._preferred: int | None = None

    @classmethod
    def open(cls, path: str | Path) -> ReplayEngine:
        from llmscope.session.files import load_session

        return cls(load_session(path))

    # ----------------------------------------------------------------- tokens
    @property
    def context_length(self) -> int:
        return self.session.forwards[self._path[-1]].position + 1 if self._path else 0

    def _prompt_summary(self) -> str:
        prompts = self.session.prompts
        if not prompts:
            return "this replay has no prompt"
        others = f" (and {len(prompts) - 1} other prompt{'s' if len(prompts) > 2 else ''})" if len(prompts) > 1 else ""
        return f"this is a replay of '{_quote(prompts[0].text)}'{others}"

    def _prompt(self, text: str, chat: bool, system_prompt: str | None) -> PromptEvent | None:
        for event in self.session.prompts:
            if event.text == text and event.chat == chat and event.system_prompt == system_prompt:
                return event
        return None

    def encode(self, text: str, *, chat: bool = False, system_prompt: str | None = None) -> list[int]:
        if not text.strip():
            raise EngineError("empty prompt: type some text for the model to continue")
        event = self._prompt(text, chat, system_prompt)
        if event is None:
            mode = " in chat mode" if chat else ""
            raise EngineError(f"{self._prompt_summary()}: it cannot tokenize new text{mode} without the model")
        return list(event.prompt_ids)

    def render_chat(self, text: str, *, system_prompt: str | None = None) -> str:
        """The recorded chat-template rendering of a recorded chat prompt."""
        event = self._prompt(text, True, system_prompt)
        if event is None:
            raise EngineError(f"{self._prompt_summary()}: it cannot render a new chat prompt without the model")
        return event.shown_text

    def inspect(self, text: str) -> list[TokenInfo]:
        for event in self.session.prompts:
            if event.shown_text == text and event.shown_tokens:
                return list(event.shown_tokens)
        raise EngineError(f"{self._prompt_summary()}: it cannot tokenize new text without the model")

    def token_info(self, token_id: int) -> TokenInfo:
        """The recorded token, or a placeholder saying it was not recorded."""
        token = self.session.tokens.get(int(token_id))
        if token is not None:
            return token
        text = f"⟨{int(token_id)}: {NOT_RECORDED}⟩"
        return TokenInfo(int(token_id), piece=f"<{NOT_RECORDED}>", text=text, raw_bytes=text.encode("utf-8"))

    # ---------------------------------------------------------------- stepping
    def set_capture(self, capture: CaptureOptions) -> None:
        """Later traces show at most what was recorded, filtered by `capture`."""
        self.capture = capture

    def prefill(self, prompt_ids: Sequence[int]) -> StepTrace:
        ids = tuple(int(token) for token in prompt_ids)
        if not ids:
            raise EngineError("empty prompt: it tokenizes to no tokens")
        number = self._children.get((None, ids))
        if number is None:
            raise EngineError(
                f"{self._prompt_summary()}: no recorded prefill of these {len(ids)} tokens; "
                "a new prompt needs the live model"
            )
        trace = self._serve(number)  # a damaged array raises here, before the path moves
        self._path = [number]
        return trace

    def step(self, token_id: int) -> StepTrace:
        if not self._path:
            raise EngineError("no prompt yet: prefill before stepping")
        number = self._children.get((self._path[-1], (int(token_id),)))
        if number is None:
            raise EngineError(self._divergence(int(token_id)))
        trace = self._serve(number)
        self._path.append(number)
        return trace

    def truncate(self, length: int) -> None:
        prompt_length = len(self.session.forwards[self._path[0]].input_ids) if self._path else 0
        if length < prompt_length or length > self.context_length:
            raise EngineError(
                f"cannot truncate to {length} tokens: the cache holds {self.context_length}"
                f" of which {prompt_length} are the prompt"
            )
        while self.context_length > length:
            self._path.pop()

    def _divergence(self, token_id: int) -> str:
        step_number = len(self._path) - 1
        recorded = sorted(
            {
                forward.input_ids[0]
                for (parent, _), number in self._children.items()
                if parent == self._path[-1]
                for forward in [self.session.forwards[number]]
            }
        )
        was = (
            f"the recording fed {', '.join(repr(self.token_info(t).text) for t in recorded[:3])} here"
            if recorded
            else "the recording stopped here"
        )
        return (
            f"the run has diverged from the recording at step {step_number} ({was}, not "
            f"{self.token_info(token_id).text!r}): re-sampling still works, but stepping past the divergence "
            "needs the live model"
        )

    def prefer_forward(self, number: int | None) -> None:
        """Serve recorded forward `number` (rather than the first one over the same context) when it comes up."""
        self._preferred = number

    def _serve(self, number: int) -> StepTrace:
        self.forward_calls += 1
        preferred = self._preferred
        if preferred is not None and self._canonical[preferred] == number:
            number = preferred
        try:
            trace = self.session.forwards[number].trace()
        except SessionFormatError as error:
            raise EngineError(f"the recording is damaged, so it cannot be replayed past here: {error}") from None
        capture = self.capture
        changes: _TraceTrim = {}
        if not capture.attention:
            changes["attention"] = None
        elif trace.attention is not None and trace.attention.shape[2] > capture.prefill_attention_rows:
            drop = trace.attention.shape[2] - capture.prefill_attention_rows
            changes["attention"] = trace.attention[:, :, drop:, :]
            changes["attention_query_start"] = trace.attention_query_start + drop
        if not capture.hidden_states:
            changes["hidden_norms"] = None
        if not capture.kv_cache:
            changes["kv"] = None
        if not capture.router:
            changes["router"] = None
        return dataclasses.replace(trace, **changes) if changes else trace

    # ------------------------------------------------------- recording marks
    def _recorded_samples(self, step_index: int) -> list[RecordedStep]:
        try:
            return self._samples.get(self._path[step_index], [])
        except IndexError:
            return []

    def recorded_choices(self, step_index: int = -1) -> tuple[int, ...]:
        """Tokens the recording sampled at step `step_index` of the current run, in recorded order."""
        return tuple(step.token_id for step in self._recorded_samples(step_index))

    def recorded_config(self, step_index: int = -1) -> SamplerConfig | None:
        """Knobs of the recording's last sample at that step (a view can offer them to reproduce the recording)."""
        samples = self._recorded_samples(step_index)
        return samples[-1].config if samples else None

    def matches_recording(self, step_index: int, token_id: int) -> bool:
        """True when the recording sampled `token_id` at that step (a view marks the rest 'diverges')."""
        return int(token_id) in self.recorded_choices(step_index)


def replay_engine_factory(
    path: str | Path, *, session: Session | None = None
) -> Callable[[Callable[[str, float | None], None]], ReplayEngine]:
    """An App engine factory: loads the session (unless given) on the worker thread, reporting progress."""

    def build(progress: Callable[[str, float | None], None]) -> ReplayEngine:
        if session is not None:
            return ReplayEngine(session)
        progress(f"opening {Path(path).name}…", None)
        return ReplayEngine.open(path)

    return build


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
        trace=dataclasses.replace(step.trace, chosen=generation.engine.token_info(recorded.token_id)),
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


# --------------------------------------------------------------------------- shipped sessions
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class ShippedSession:
    """A recorded session that ships with llmscope (listed in sessions/index.json)."""

    name: str
    path: Path
    description: str


def shipped_sessions_dir() -> Path | None:
    """Installed as the package `llmscope.sessions`; in a source checkout, the repo's `sessions/` folder."""
    try:
        from importlib import resources

        directory = Path(str(resources.files("llmscope.sessions")))
    except (ModuleNotFoundError, TypeError):
        directory = Path(__file__).resolve().parents[2] / "sessions"
    return directory if (directory / INDEX_FILE).is_file() else None


def shipped_sessions() -> list[ShippedSession]:
    """Every shipped session whose file is present, in index order."""
    import json

    directory = shipped_sessions_dir()
    if directory is None:
        return []
    entries = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8")).get("sessions", [])
    found = []
    for entry in entries:
        path = directory / str(entry.get("file", ""))
        if path.is_file():
            found.append(ShippedSession(str(entry.get("name", path.stem)), path, str(entry.get("description", ""))))
    return found


def find_session_file(name_or_path: str) -> Path:
    """A session file path, or the file of the shipped session with that name (FileNotFoundError otherwise)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for shipped in shipped_sessions():
        if name_or_path in (shipped.name, shipped.path.name):
            return shipped.path
    names = ", ".join(shipped.name for shipped in shipped_sessions()) or "none installed"
    raise FileNotFoundError(f"no session file or shipped session named '{name_or_path}' (shipped: {names})")
