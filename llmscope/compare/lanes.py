"""Two generations stepped side by side, with per-step records of where and how their distributions differ.

Each lane owns its engine: the KV cache lives inside an engine, so two lanes on one engine would
overwrite each other's context. For the same model, load a second engine from the same directory
(a tiny model loads in milliseconds, SmolLM2 in ~1.5 s and ~550 MB). Lanes stop independently: a
lane that picked its end-of-sequence token stays stopped while the other keeps going.
Imports neither torch nor Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmscope.divergence import DEFAULT_TOP_N, Divergence, VocabCompatibility, check_vocabularies, divergence
from llmscope.engine_api import Engine, EngineError
from llmscope.format import visible_token_text
from llmscope.generation import Generation
from llmscope.sampler import SamplerConfig, SampleResult
from llmscope.trace import TokenInfo

LANE_NAMES = ("A", "B")


@dataclass(frozen=True)
class Lane:
    """One side of a comparison: its own engine, a prompt (raw or chat, with an optional system prompt), knobs."""

    name: str
    engine: Engine
    prompt: str
    chat: bool = False
    system_prompt: str | None = None
    config: SamplerConfig = field(default_factory=SamplerConfig)

    def describe(self) -> str:
        """One line for headers: model, knobs and mode ('smollm2 · T=0.2 seed=0 · chat, system prompt')."""
        mode = "chat" if self.chat else "plain"
        if self.chat and self.system_prompt:
            mode += ", system prompt"
        return f"{self.engine.info.name} · {self.config.describe()} · {mode}"


@dataclass(frozen=True)
class LaneToken:
    """The token one lane chose at a step, with its probabilities and its rank under the raw logits."""

    token: TokenInfo
    probability: float
    """In the distribution the lane sampled from (1.0 for greedy)."""
    raw_probability: float
    raw_rank: int
    """1 = the model's most likely token."""


@dataclass(frozen=True)
class AlignedRow:
    """One candidate token with where it stands in each lane (None where it is not among that lane's candidates)."""

    text: str
    id_a: int | None
    id_b: int | None
    rank_a: int | None
    rank_b: int | None
    p_a: float | None
    """Raw probability (softmax of the logits) in lane A."""
    p_b: float | None
    final_a: float | None
    """Probability in the distribution lane A sampled from (after temperature, top-k, top-p, min-p)."""
    final_b: float | None
    chosen_a: bool = False
    chosen_b: bool = False
    label: str = ""
    """The token as every pane spells it (llmscope.format.visible_token_text of its bytes: '␣Paris', '‹e6›')."""

    @property
    def delta(self) -> float | None:
        """p_B − p_A of the raw probabilities (None unless both are known)."""
        return None if self.p_a is None or self.p_b is None else self.p_b - self.p_a

    def shared(self, top_n: int) -> bool:
        """The token is among both lanes' top-N."""
        return self.rank_a is not None and self.rank_b is not None and max(self.rank_a, self.rank_b) <= top_n


@dataclass(frozen=True)
class CompareStep:
    """Both lanes at one step index: chosen tokens, aligned candidates, divergence of raw and sampled distributions."""

    index: int
    a: LaneToken | None
    """None when lane A had already stopped before this step."""
    b: LaneToken | None
    rows: tuple[AlignedRow, ...]
    raw: Divergence | None
    """Between the models' raw next-token distributions; None when not comparable or a lane has no step."""
    final: Divergence | None
    """Between the distributions each lane actually sampled from (KL may be ∞ where one lane removed a token)."""
    diverged: bool
    """The chosen tokens differ (a lane that has stopped counts as different)."""
    first_divergence: bool
    top_n: int


@dataclass(frozen=True)
class Tokenization:
    """Both prompts as their models tokenized them (chat templates included)."""

    a: tuple[TokenInfo, ...]
    b: tuple[TokenInfo, ...]

    @property
    def difference(self) -> int:
        """Tokens in B minus tokens in A."""
        return len(self.b) - len(self.a)


class Comparison:
    """Drives two generations together: start, step, rewind; produces a CompareStep per step index."""

    def __init__(self, lane_a: Lane, lane_b: Lane, *, top_n: int = DEFAULT_TOP_N) -> None:
        if lane_a.engine is lane_b.engine:
            raise ValueError("each lane needs its own engine (the KV cache lives in it): load the model twice")
        if top_n < 1:
            raise ValueError("top_n must be at least 1")
        self.lanes = (lane_a, lane_b)
        self.top_n = top_n
        self.generations = (Generation(lane_a.engine, lane_a.config), Generation(lane_b.engine, lane_b.config))
        info_a, info_b = lane_a.engine.info, lane_b.engine.info
        self.compatibility: VocabCompatibility = check_vocabularies(
            info_a.vocab_size,
            lambda i: lane_a.engine.token_info(i).piece,
            info_b.vocab_size,
            lambda i: lane_b.engine.token_info(i).piece,
        )
        self._records: dict[int, CompareStep] = {}

    # ----------------------------------------------------------------- state
    @property
    def length(self) -> int:
        """Step indices so far: the longer lane's number of generated tokens."""
        return max(len(generation.steps) for generation in self.generations)

    @property
    def started(self) -> bool:
        return self.length > 0

    def stop_reasons(self) -> tuple[str | None, str | None]:
        first, second = self.generations
        return first.stop_reason, second.stop_reason

    @property
    def finished(self) -> bool:
        """Both lanes have stopped (end-of-sequence or a full context)."""
        return all(reason is not None for reason in self.stop_reasons())

    # --------------------------------------------------------------- actions
    def start(self) -> CompareStep:
        """Tokenize both prompts, prefill both lanes and sample each lane's first token."""
        prompts = [self._encode(lane) for lane in self.lanes]
        self._records.clear()
        for lane, generation, prompt_ids in zip(self.lanes, self.generations, prompts):
            self._in_lane(lane, lambda: generation.start(prompt_ids))
        return self.record(0)

    def step(self) -> CompareStep:
        """Advance every lane that has not stopped by one token; a stopped lane stays stopped."""
        if not self.started:
            return self.start()
        if self.finished:
            reasons = " and ".join(f"{lane.name} {reason}" for lane, reason in zip(self.lanes, self.stop_reasons()))
            raise EngineError(f"both lanes have stopped ({reasons}): rewind with b, or start again")
        target = self.length + 1
        for lane, generation in zip(self.lanes, self.generations):
            if generation.stop_reason is None and len(generation.steps) < target:
                self._in_lane(lane, generation.advance)
        return self.record(self.length - 1)

    def run(self, max_steps: int) -> list[CompareStep]:
        """Start if needed, then step until `max_steps` indices exist or both lanes have stopped."""
        if not self.started:
            self.start()
        while self.length < max_steps and not self.finished:
            self.step()
        return self.records()

    def rewind(self, count: int = 1) -> None:
        """Go back `count` step indices in both lanes (a lane shorter than the new length is left as it is)."""
        target = self.length - count
        if count < 1 or target < 1:
            raise EngineError(f"cannot rewind {count} step(s): {self.length} generated, the first stays")
        for generation in self.generations:
            if len(generation.steps) > target:
                generation.rewind(len(generation.steps) - target)
        for index in [i for i in self._records if i >= target]:
            del self._records[index]

    # ---------------------------------------------------------------- records
    def records(self) -> list[CompareStep]:
        return [self.record(index) for index in range(self.length)]

    @property
    def first_divergence(self) -> int | None:
        """First step index whose chosen tokens differ (None while the lanes agree)."""
        return next((index for index in range(self.length) if self._differs(index)), None)

    def tokenization(self) -> Tokenization:
        first, second = (
            tuple(lane.engine.token_info(token_id) for token_id in generation.prompt_ids)
            for lane, generation in zip(self.lanes, self.generations)
        )
        return Tokenization(first, second)

    def record(self, index: int) -> CompareStep:
        """The CompareStep of step `index` (cached until a rewind drops it)."""
        if not 0 <= index < self.length:
            raise IndexError(f"no step {index}: {self.length} so far")
        if index not in self._records:
            self._records[index] = self._build(index)
        return self._records[index]

    # -------------------------------------------------------------- internals
    def _encode(self, lane: Lane) -> list[int]:
        return self._in_lane(
            lane, lambda: lane.engine.encode(lane.prompt, chat=lane.chat, system_prompt=lane.system_prompt)
        )

    @staticmethod
    def _in_lane(lane: Lane, action):
        """Run a lane's engine action, prefixing any engine error with the lane's name."""
        try:
            return action()
        except EngineError as error:
            raise EngineError(f"lane {lane.name}: {error}") from error

    def _result(self, lane_number: int, index: int) -> SampleResult | None:
        generation = self.generations[lane_number]
        return generation.sample_result(index) if index < len(generation.steps) else None

    def _chosen_key(self, lane_number: int, index: int) -> int | bytes | None:
        generation = self.generations[lane_number]
        if index >= len(generation.steps):
            return None
        chosen = generation.steps[index].trace.chosen
        assert chosen is not None, "every step of a generation has sampled its token"
        return chosen.id if self.compatibility.comparable else chosen.raw_bytes

    def _differs(self, index: int) -> bool:
        return self._chosen_key(0, index) != self._chosen_key(1, index)

    def _lane_token(self, lane_number: int, index: int, result: SampleResult | None) -> LaneToken | None:
        if result is None:
            return None
        step = self.generations[lane_number].steps[index]
        assert step.trace.chosen is not None
        return LaneToken(
            step.trace.chosen, step.probability, step.raw_probability, raw_rank(result.raw_logits, result.token_id)
        )

    def _build(self, index: int) -> CompareStep:
        result_a, result_b = self._result(0, index), self._result(1, index)
        raw = final = None
        if result_a is not None and result_b is not None and self.compatibility.comparable:
            raw = divergence(result_a.raw_logits, result_b.raw_logits, top_n=self.top_n)
            final = divergence(result_a.stages[-1].logits, result_b.stages[-1].logits, top_n=self.top_n)
        diverged = self._differs(index)
        first = diverged and not any(self._differs(earlier) for earlier in range(index))
        return CompareStep(
            index=index,
            a=self._lane_token(0, index, result_a),
            b=self._lane_token(1, index, result_b),
            rows=self._rows(result_a, result_b),
            raw=raw,
            final=final,
            diverged=diverged,
            first_divergence=first,
            top_n=self.top_n,
        )

    def _rows(self, result_a: SampleResult | None, result_b: SampleResult | None) -> tuple[AlignedRow, ...]:
        """Union of both lanes' top-N and chosen tokens, aligned by id (or by text across different vocabularies)."""
        by_id = self.compatibility.comparable
        sides = []
        for lane, result in zip(self.lanes, (result_a, result_b)):
            entries: dict[int | str, int] = {}
            if result is not None:
                for token_id in [*result.top(self.top_n), result.token_id]:
                    key: int | str = token_id if by_id else lane.engine.token_info(token_id).text
                    entries.setdefault(key, token_id)
            sides.append(entries)
        rows = []
        for key in dict.fromkeys([*sides[0], *sides[1]]):
            if by_id:  # the same id means the same token: both lanes know its rank and probability
                id_a = int(key) if result_a is not None else None
                id_b = int(key) if result_b is not None else None
            else:
                id_a, id_b = sides[0].get(key), sides[1].get(key)
            lane_number, shown_id = (0, id_a) if id_a is not None else (1, id_b)
            assert shown_id is not None, "each key came from at least one lane's entries"
            token = self.lanes[lane_number].engine.token_info(shown_id)
            rows.append(_aligned(token, id_a, id_b, result_a, result_b))
        rows.sort(key=lambda row: (-max(row.p_a or 0.0, row.p_b or 0.0), row.text))
        return tuple(rows)


def _lane_figures(result: SampleResult | None, token_id: int | None) -> tuple[int | None, float | None, float | None]:
    """(raw rank, raw probability, final probability) of one id in one lane."""
    if result is None or token_id is None:
        return None, None, None
    return raw_rank(result.raw_logits, token_id), float(result.raw_probs[token_id]), float(result.final_probs[token_id])


def _aligned(
    token: TokenInfo, id_a: int | None, id_b: int | None, result_a: SampleResult | None, result_b: SampleResult | None
) -> AlignedRow:
    rank_a, p_a, final_a = _lane_figures(result_a, id_a)
    rank_b, p_b, final_b = _lane_figures(result_b, id_b)
    return AlignedRow(
        text=token.text,
        id_a=id_a,
        id_b=id_b,
        rank_a=rank_a,
        rank_b=rank_b,
        p_a=p_a,
        p_b=p_b,
        final_a=final_a,
        final_b=final_b,
        chosen_a=result_a is not None and id_a == result_a.token_id,
        chosen_b=result_b is not None and id_b == result_b.token_id,
        label=visible_token_text(token.raw_bytes),
    )


def raw_rank(logits: np.ndarray, token_id: int) -> int:
    """1-based rank of a token under the logits, lower id first among ties (the order of SampleResult.top)."""
    value = logits[token_id]
    return int(np.count_nonzero(logits > value) + np.count_nonzero(logits[:token_id] == value)) + 1


__all__ = ["LANE_NAMES", "AlignedRow", "CompareStep", "Comparison", "Lane", "LaneToken", "Tokenization", "raw_rank"]
