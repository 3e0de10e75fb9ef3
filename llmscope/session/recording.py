"""What a session records, in memory: forward passes, the tokens sampled from them, and the ordered events.

A `Session` is plain data (numpy + builtins) that `llmscope.session.files` saves to and loads from a file
and `llmscope.session.replay` serves as an engine. A `SessionRecorder` builds one while a generation runs,
so rewinds, re-samples and knob changes are kept in the order they happened.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmscope.engine_api import Engine
from llmscope.generation import AttentionBudget, Generation, Step
from llmscope.lens import LogitLens
from llmscope.sampler import SamplerConfig
from llmscope.session.arrays import describe_storage
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
from llmscope.session.lens_arrays import lens_arrays, lens_from_arrays, merged_choice_arrays
from llmscope.trace import Capabilities, CaptureOptions, KVStats, ModelInfo, RouterTrace, StepTrace, TokenInfo

TOKEN_TABLE_CANDIDATES = 64
"""Most likely ids per forward whose tokens go into the token table (at least the sampler table's live.TOP_CANDIDATES)."""
__all__ = [
    "ARRAY_ROLES",
    "EVENT_TYPES",
    "ComparisonEvent",
    "ForceEvent",
    "KnobsEvent",
    "PromptEvent",
    "RecordedForward",
    "RecordedStep",
    "ResampleEvent",
    "RewindEvent",
    "Session",
    "SessionEvent",
    "SessionRecorder",
    "StepEvent",
]
ARRAY_ROLES = (
    "logits",
    "logit_ids",
    "attention",
    "attention_sink",
    "hidden_norms",
    "lens_top_ids",
    "lens_top_probs",
    "lens_entropy",
    "lens_choice_ids",
    "lens_choice_ranks",
    "lens_choice_probs",
    "router_logits",
    "router_experts",
    "router_weights",
)
"""Names of the arrays a forward holds in memory (a file may store attention differently: session.arrays)."""


# ----------------------------------------------------------------------------- forwards, steps
@dataclass(frozen=True, eq=False)
class RecordedForward:
    """One forward pass as recorded; `trace()` rebuilds the StepTrace the live engine returned.

    `arrays` maps a role in ARRAY_ROLES to its array; a loaded file reads them lazily on access.
    Logits are the full vocabulary, or (with `logit_ids`) only the largest values and their ids.
    """

    index: int
    input_ids: tuple[int, ...]
    position: int
    parent: int | None
    """The forward whose KV cache this one extended (None for a prefill)."""
    vocab_size: int
    arrays: Mapping[str, np.ndarray]
    attention_query_start: int = 0
    kv: KVStats | None = None
    router_layers: tuple[int, ...] = ()
    router_rule: str = ""
    forward_ms: float = 0.0
    attention_dropped: bool = False
    """Its attention rows were captured but dropped to bound a long recording's memory (AttentionBudget)."""
    attention_layers: tuple[int, ...] = ()
    """Model layers whose attention rows were captured (empty: all of them; StepTrace.attention_layers)."""
    attention_threshold: float = 0.0
    """0 when `attention` is exact to float16; otherwise the file kept only weights ≥ this × their row's max and
    spread each row's remaining mass evenly over its other visible keys (session.arrays.dense_attention)."""

    @classmethod
    def from_trace(cls, trace: StepTrace, parent: int | None) -> RecordedForward:
        arrays = {"logits": trace.logits, "attention": trace.attention, "hidden_norms": trace.hidden_norms}
        if trace.attention is not None and trace.attention_sink is not None:
            arrays["attention_sink"] = trace.attention_sink
        if trace.lens is not None:
            arrays |= lens_arrays(trace.lens)
        if trace.router is not None:
            arrays |= {
                "router_logits": trace.router.logits,
                "router_experts": trace.router.experts,
                "router_weights": trace.router.weights,
            }
        return cls(
            index=trace.index,
            input_ids=tuple(int(i) for i in trace.input_ids),
            position=trace.position,
            parent=parent,
            vocab_size=int(trace.logits.shape[0]),
            arrays={role: array for role, array in arrays.items() if array is not None},
            attention_query_start=trace.attention_query_start,
            kv=trace.kv,
            router_layers=trace.router.layers if trace.router else (),
            router_rule=trace.router.rule if trace.router else "",
            forward_ms=trace.forward_ms,
            attention_dropped=trace.attention_dropped,
            attention_layers=tuple(trace.attention_layers) if trace.attention is not None else (),
        )

    def without_attention(self) -> RecordedForward:
        """This forward with its attention rows (and their sink weights) dropped, and marked so."""
        arrays = {role: array for role, array in self.arrays.items() if role not in ("attention", "attention_sink")}
        return dataclasses.replace(self, arrays=arrays, attention_dropped=True)

    @property
    def logits_kept(self) -> int | None:
        """How many logits were kept (None when the full vocabulary was)."""
        return len(self.arrays["logits"]) if "logit_ids" in self.arrays else None

    @property
    def has_router(self) -> bool:
        return "router_logits" in self.arrays

    def full_logits(self) -> np.ndarray:
        """float32 [vocab]; ids whose logits were not kept are -inf, so the sampler never picks them."""
        logits = np.asarray(self.arrays["logits"], dtype=np.float32)
        if "logit_ids" not in self.arrays:
            return logits
        full = np.full(self.vocab_size, -np.inf, dtype=np.float32)
        full[self.arrays["logit_ids"]] = logits
        return full

    def top_ids(self, count: int) -> np.ndarray:
        """Ids of the `count` largest logits (unordered), for the token table."""
        if "logit_ids" in self.arrays:
            return np.asarray(self.arrays["logit_ids"][:count])
        logits = np.asarray(self.arrays["logits"], dtype=np.float32)
        count = min(count, logits.shape[0])
        return np.argpartition(-logits, count - 1)[:count]

    def router(self) -> RouterTrace | None:
        if not self.has_router:
            return None
        return RouterTrace(
            layers=self.router_layers,
            logits=np.asarray(self.arrays["router_logits"], dtype=np.float32),
            experts=np.asarray(self.arrays["router_experts"], dtype=np.int64),
            weights=np.asarray(self.arrays["router_weights"], dtype=np.float32),
            rule=self.router_rule,
        )

    def trace(self, *, attention_rows: bool = True) -> StepTrace:
        """The StepTrace as the live engine returned it (float32 arrays, no chosen token).

        `attention_rows=False` leaves the attention out without reading it (a sparse file rebuilds dense rows on
        access, which a replay that shows no attention need not pay for).
        """
        attention = self.arrays.get("attention") if attention_rows else None
        sink = self.arrays.get("attention_sink") if attention is not None else None
        norms = self.arrays.get("hidden_norms")
        return StepTrace(
            index=self.index,
            input_ids=self.input_ids,
            position=self.position,
            logits=self.full_logits(),
            attention=None if attention is None else np.asarray(attention, dtype=np.float32),
            attention_query_start=self.attention_query_start,
            attention_layers=self.attention_layers if attention is not None else (),
            attention_sink=None if sink is None else np.asarray(sink, dtype=np.float32),
            hidden_norms=None if norms is None else np.asarray(norms, dtype=np.float32),
            kv=self.kv,
            router=self.router(),
            lens=self.lens(),
            forward_ms=self.forward_ms,
            attention_dropped=self.attention_dropped,
        )

    def lens(self) -> LogitLens | None:
        """The recorded logit lens, with the ranks of every token sampled or forced from this forward."""
        return lens_from_arrays(self.arrays)

    def with_lens_choices(self, lens: LogitLens | None) -> RecordedForward:
        """This forward with the lens ranks of `lens`'s tokens added (a force or re-sample ranked a new one)."""
        merged = merged_choice_arrays(self.arrays, lens)
        return self if merged is None else dataclasses.replace(self, arrays={**self.arrays, **merged})


@dataclass(frozen=True)
class RecordedStep:
    """A token sampled from a forward's logits, with the knobs used and the probability it had."""

    forward: int
    """Index into Session.forwards."""
    token_id: int
    probability: float
    config: SamplerConfig


@dataclass(frozen=True, eq=False)
class Session:
    """Everything needed to replay an exploration without the model: metadata, tokens, forwards, events."""

    model: ModelInfo
    capabilities: Capabilities
    capture: CaptureOptions
    tokens: Mapping[int, TokenInfo]
    """Token table: every id in a prompt, fed, chosen, or among each forward's top candidates."""
    forwards: tuple[RecordedForward, ...]
    steps: tuple[RecordedStep, ...]
    events: tuple[SessionEvent, ...]
    title: str = ""
    description: str = ""
    created_at: str = ""
    written_by: Mapping[str, str] = field(default_factory=dict)
    """Versions of llmscope and numpy that wrote the file (empty before the first save)."""

    @property
    def prompts(self) -> tuple[PromptEvent, ...]:
        return tuple(event for event in self.events if isinstance(event, PromptEvent))

    @property
    def logits_kept(self) -> int | None:
        """The N of a `top-k:N` save (None when every forward kept the full vocabulary)."""
        kept = [forward.logits_kept for forward in self.forwards if forward.logits_kept is not None]
        return max(kept) if kept else None

    @property
    def attention_storage(self) -> str | None:
        """How a loaded file stored attention, in words, when a replay's weights are not exact to float16 (None:
        exact, or no attention); e.g. 'attention stored as float16 weights ≥ 1/256 of each row's max; …'."""
        thresholds = [forward.attention_threshold for forward in self.forwards if forward.attention_threshold]
        return describe_storage(max(thresholds)) if thresholds else None

    def final_steps(self) -> list[RecordedStep]:
        """The generation as it stood at the end of the recording (after its last prompt, rewinds applied)."""
        current: list[RecordedStep] = []
        for event in self.events:
            if isinstance(event, PromptEvent):
                current = []
            elif isinstance(event, StepEvent):
                current.append(self.steps[event.step])
            elif isinstance(event, (ResampleEvent, ForceEvent)):
                current[-1:] = [self.steps[event.step]]
            elif isinstance(event, RewindEvent):
                del current[-event.count :]
        return current

    def sampling_contexts(self) -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
        """Sampled step record → (prompt ids, tokens generated before it): what re-sampling that step needs.

        Forced steps are left out: the user chose their token, so no re-sampling reproduces it.
        """
        contexts: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        prompt_ids: tuple[int, ...] = ()
        current: list[int] = []
        for event in self.events:
            if isinstance(event, PromptEvent):
                prompt_ids, current = event.prompt_ids, []
            elif isinstance(event, (StepEvent, ResampleEvent, ForceEvent)):
                if not isinstance(event, StepEvent):
                    current.pop()
                if not isinstance(event, ForceEvent):
                    contexts[event.step] = (prompt_ids, tuple(current))
                current.append(self.steps[event.step].token_id)
            elif isinstance(event, RewindEvent):
                del current[-event.count :]
        return contexts

    @classmethod
    def from_generation(
        cls,
        generation: Generation,
        *,
        prompt_text: str,
        chat: bool,
        system_prompt: str | None = None,
        inspected_tokens: Sequence[TokenInfo] | None = None,
        title: str = "",
        description: str = "",
    ) -> Session:
        """A session of one generation as it stands: its prompt, then each step (knob changes where they happened).

        For a history with rewinds and re-samples, feed a SessionRecorder as the actions happen instead.
        """
        recorder = SessionRecorder(generation.engine)
        recorder.prompt(
            prompt_text,
            chat=chat,
            system_prompt=system_prompt,
            prompt_ids=generation.prompt_ids,
            shown_tokens=inspected_tokens,
        )
        for number, step in enumerate(generation.steps):
            if step.forced:  # the forward's own sample first, then the user's choice over it
                result = generation.sample_result(number)
                sampled = dataclasses.replace(
                    step,
                    trace=step.trace.with_chosen(generation.engine.token_info(result.token_id)),
                    probability=float(result.final_probs[result.token_id]),
                    raw_probability=float(result.raw_probs[result.token_id]),
                    forced=False,
                )
                recorder.step(sampled, first=number == 0)
                recorder.force(step)
            else:
                recorder.step(step, first=number == 0)
        return recorder.session(title=title, description=description)


# ------------------------------------------------------------------------------------ recorder
class SessionRecorder:
    """Collects a session as it happens; the LiveController (or a script) reports each action.

    It mirrors the generation's steps as forward indices, so a rewind or re-sample needs only a count.
    """

    def __init__(self, engine: Engine, *, candidates: int = TOKEN_TABLE_CANDIDATES) -> None:
        self.engine = engine
        self.candidates = candidates
        self.forwards: list[RecordedForward] = []
        self.steps: list[RecordedStep] = []
        self.events: list[SessionEvent] = []
        self._path: list[int] = []
        """Forward index behind each step of the current generation."""
        self._config: SamplerConfig | None = None
        self.attention_budget = AttentionBudget()
        """Older forwards' attention rows beyond the budget are dropped (the file then holds them for the newest)."""

    def prompt(
        self,
        text: str,
        *,
        chat: bool,
        prompt_ids: Iterable[int],
        system_prompt: str | None = None,
        shown_tokens: Sequence[TokenInfo] | None = None,
    ) -> None:
        """A new prompt; the inspector's view of it (chat rendering included) is recorded with it.

        `shown_tokens` are the inspector's tokens when the caller has them; otherwise the engine is asked.
        """
        shown_text = text
        render = getattr(self.engine, "render_chat", None)
        if chat and callable(render):
            shown_text = render(text, system_prompt=system_prompt)
        if shown_tokens is None:
            try:
                shown_tokens = self.engine.inspect(shown_text)
            except Exception:  # noqa: BLE001 - an engine without an inspector still records its steps
                shown_tokens = ()
        self.events.append(
            PromptEvent(text, chat, system_prompt, tuple(int(i) for i in prompt_ids), shown_text, tuple(shown_tokens))
        )
        self._path = []

    def knobs(self, config: SamplerConfig) -> None:
        """Record new knobs (ignored when they equal the last recorded ones)."""
        if config != self._config:
            self.events.append(KnobsEvent(config))
            self._config = config

    def step(self, step: Step, *, first: bool = False) -> None:
        """A step produced by a new forward: the prefill (`first`) or an advance."""
        if not first and not self._path:
            raise ValueError("record the prefill step (first=True) before later steps")
        parent = None if first else self._path[-1]
        self.forwards.append(RecordedForward.from_trace(step.trace, parent))
        if step.trace.attention is not None:
            for old in self.attention_budget.add(len(self.forwards) - 1, step.trace.attention.nbytes):
                self.forwards[old] = self.forwards[old].without_attention()
        if first:
            self._path = []
        self._path.append(len(self.forwards) - 1)
        self._add_step(step, StepEvent)

    def resample(self, step: Step) -> None:
        """The current step re-picked with new knobs from the same forward."""
        if not self._path:
            raise ValueError("nothing to re-sample: no step recorded yet")
        self._add_step(step, ResampleEvent)

    def force(self, step: Step) -> None:
        """The current step's token replaced by the user's choice (same forward, no re-sampling)."""
        if not self._path:
            raise ValueError("nothing to force: no step recorded yet")
        self._add_step(step, ForceEvent)

    def rewind(self, count: int) -> None:
        if count < 1 or count >= len(self._path):
            raise ValueError(f"cannot record a rewind of {count}: {len(self._path)} steps recorded, the first stays")
        del self._path[-count:]
        self.events.append(RewindEvent(count))

    def comparison(self, data: Mapping[str, Any]) -> None:
        self.events.append(ComparisonEvent(dict(data)))

    def _add_step(self, step: Step, event_type: type[StepEvent] | type[ResampleEvent] | type[ForceEvent]) -> None:
        self.knobs(step.config)
        forward = self._path[-1]
        self.forwards[forward] = self.forwards[forward].with_lens_choices(step.trace.lens)
        self.steps.append(RecordedStep(self._path[-1], step.token_id, float(step.probability), step.config))
        self.events.append(event_type(len(self.steps) - 1))

    def session(self, *, title: str = "", description: str = "") -> Session:
        """Freeze what was recorded so far, with the token records the tokenizer pane needs."""
        wanted: set[int] = {step.token_id for step in self.steps}
        for event in self.events:
            if isinstance(event, PromptEvent):
                wanted.update(event.prompt_ids)
        for forward in self.forwards:
            wanted.update(int(i) for i in forward.top_ids(self.candidates))
            wanted.update(forward.input_ids)
            if "lens_top_ids" in forward.arrays:  # the Layers pane names every layer's candidates
                wanted.update(int(i) for i in np.unique(forward.arrays["lens_top_ids"]))
        engine = self.engine
        return Session(
            model=engine.info,
            capabilities=engine.capabilities,
            capture=engine.capture,
            tokens={token_id: engine.token_info(token_id) for token_id in sorted(wanted)},
            forwards=tuple(self.forwards),
            steps=tuple(self.steps),
            events=tuple(self.events),
            title=title,
            description=description,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
