"""The step loop: an engine produces logits, the sampler picks a token, repeat; with rewind and re-sample.

The last chosen token is never yet in the engine's KV cache: it is fed by the next `advance`.
That is what lets `resample` change the current step's knobs with no forward pass at all.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections import deque
from dataclasses import dataclass

from llmscope.engine_api import Engine, EngineError
from llmscope.sampler import SamplerConfig, SampleResult, sample
from llmscope.trace import StepTrace

STOP_EOS = "end-of-sequence token"
STOP_MAX_STEPS = "step limit reached"
STOP_CONTEXT = "context window full"
ATTENTION_BUDGET_BYTES = 256 * 2**20
LENS_BUDGET_BYTES = 64 * 2**20
"""Full logit-lens distributions kept for the newest steps ([layers + 1, vocab] float32 each: ~6 MB on SmolLM2),
so a force or re-sample after a short rewind still ranks any token at every layer."""
"""Attention rows kept in memory, newest first; older steps' rows are dropped, so a long run's memory per step
stays constant (a step's attention row grows with its position: kept for every step, memory grows with steps²)."""


class AttentionBudget:
    """Which items (steps, recorded forwards) still hold their attention rows: the newest, within a byte budget."""

    def __init__(self, budget_bytes: int = ATTENTION_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.dropped = 0
        """How many items had their rows dropped so far."""
        self._kept: deque[tuple[int, int]] = deque()
        self._bytes = 0

    def add(self, index: int, nbytes: int) -> list[int]:
        """Item `index` holds `nbytes` of attention; returns the older items whose rows must go (never the newest).

        Adding an index again (a re-sampled step keeps its forward) replaces its entry.
        """
        if self._kept and self._kept[-1][0] == index:
            self._bytes -= self._kept.pop()[1]
        self._kept.append((index, nbytes))
        self._bytes += nbytes
        dropped = []
        while self._bytes > self.budget_bytes and len(self._kept) > 1:
            old, size = self._kept.popleft()
            self._bytes -= size
            dropped.append(old)
        self.dropped += len(dropped)
        return dropped

    def forget_from(self, index: int) -> None:
        """Items from `index` on are gone (a rewind or a new prompt)."""
        while self._kept and self._kept[-1][0] >= index:
            self._bytes -= self._kept.pop()[1]


def without_attention(trace: StepTrace) -> StepTrace:
    """The trace with its attention rows dropped (and marked so, for the pane that would draw them)."""
    return dataclasses.replace(trace, attention=None, attention_dropped=True)


@dataclass(frozen=True)
class Step:
    """One generated token: the forward's trace (with `chosen` filled in) and the knobs it was sampled with."""

    trace: StepTrace
    config: SamplerConfig
    probability: float
    """Probability the chosen token had in the distribution it was sampled from."""
    raw_probability: float
    """Its probability under the raw logits (informative where greedy makes `probability` 1)."""
    forced: bool = False
    """True when the user chose this token instead of the sampler (`Generation.force`)."""

    @property
    def token_id(self) -> int:
        assert self.trace.chosen is not None
        return self.trace.chosen.id


class Generation:
    """Drives one engine through a prompt and the tokens sampled after it."""

    def __init__(
        self,
        engine: Engine,
        config: SamplerConfig | None = None,
        *,
        attention_budget: int = ATTENTION_BUDGET_BYTES,
        lens_budget: int = LENS_BUDGET_BYTES,
    ) -> None:
        self.engine = engine
        self.config = (config or SamplerConfig()).validate()
        self.prompt_ids: tuple[int, ...] = ()
        self.steps: list[Step] = []
        self._last_sample: tuple[int, SampleResult] | None = None
        self.attention_budget = AttentionBudget(attention_budget)
        self.lens_budget = lens_budget
        """Bytes of full lens distributions kept, newest steps first (the newest step always keeps its own)."""
        """Older steps' attention rows beyond this budget are dropped; `attention_budget.dropped` counts them."""

    # ----------------------------------------------------------------- state
    @property
    def generated_ids(self) -> list[int]:
        return [step.token_id for step in self.steps]

    @property
    def current(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    @property
    def stop_reason(self) -> str | None:
        """Why generation cannot continue, or None while it can."""
        if not self.steps:
            return None
        if self.steps[-1].token_id in self.engine.info.eos_token_ids:
            return STOP_EOS
        if len(self.prompt_ids) + len(self.steps) >= self.engine.info.max_context:
            return STOP_CONTEXT
        return None

    # --------------------------------------------------------------- actions
    def start(self, prompt_ids: list[int] | tuple[int, ...]) -> Step:
        """Prefill the prompt and sample the first new token."""
        self.prompt_ids = tuple(prompt_ids)
        self.steps = []
        self.attention_budget.forget_from(0)
        trace = self.engine.prefill(self.prompt_ids)
        return self._choose(trace, self.config)

    def advance(self) -> Step:
        """Feed the last chosen token and sample the next one."""
        if not self.steps:
            raise EngineError("no prompt yet: start a generation first")
        if reason := self.stop_reason:
            raise EngineError(f"generation has stopped: {reason}")
        trace = self.engine.step(self.steps[-1].token_id)
        return self._choose(trace, self.config)

    def run(self, max_steps: int) -> str:
        """Advance until `max_steps` tokens exist or a stop condition; returns the stop reason."""
        while len(self.steps) < max_steps:
            if reason := self.stop_reason:
                return reason
            self.advance()
        return self.stop_reason or STOP_MAX_STEPS

    def rewind(self, count: int = 1) -> None:
        """Forget the last `count` tokens: the engine's cache first, then the steps, so a failure changes nothing.

        The cache holds the prompt plus every chosen token except the last one; if the engine cannot put
        it back, it raises (an EngineError saying why) with its cache untouched, and the steps stay too.
        """
        if count < 1 or count >= len(self.steps):
            raise EngineError(f"cannot rewind {count} step(s): {len(self.steps)} generated, the first stays")
        kept = len(self.steps) - count
        self.engine.truncate(len(self.prompt_ids) + kept - 1)
        del self.steps[kept:]
        self.attention_budget.forget_from(kept)
        self._last_sample = None

    def resample(self, config: SamplerConfig) -> Step:
        """Re-pick the current step's token with new knobs from its stored logits (no forward pass)."""
        if not self.steps:
            raise EngineError("nothing to re-sample yet")
        self.config = config.validate()
        trace = self.steps[-1].trace
        del self.steps[-1]
        return self._choose(trace, self.config)

    def force(self, token_id: int) -> Step:
        """Replace the current step's token by `token_id`, chosen by the user, from its stored logits (no forward pass).

        The forced token is not yet in the KV cache (the next `advance` feeds it), so nothing is recomputed.
        Its probabilities are the ones it has under the current knobs (0 when a filter removed it).
        """
        if not self.steps:
            raise EngineError("nothing to force yet: run a prompt first")
        trace = self.steps[-1].trace
        vocab_size = int(trace.logits.shape[0])
        if isinstance(token_id, bool) or not isinstance(token_id, numbers.Integral) or not 0 <= token_id < vocab_size:
            raise EngineError(f"token id {token_id!r} is not in the vocabulary (0 to {vocab_size - 1})")
        position = len(self.steps) - 1
        result = self._sample(trace, self.config, position)
        step = Step(
            trace=trace.with_chosen(self.engine.token_info(int(token_id))),
            config=self.config,
            probability=float(result.final_probs[token_id]),
            raw_probability=float(result.raw_probs[token_id]),
            forced=True,
        )
        self.steps[-1] = step
        self._last_sample = (position, result)
        return step

    def _bound_full_lenses(self) -> None:
        """Drop the full lens distributions of older steps once the newest ones fill `lens_budget`."""
        kept = 0
        for index in range(len(self.steps) - 1, -1, -1):
            lens = self.steps[index].trace.lens
            if lens is None:
                continue  # a step taken with the lens capture off
            if lens.log_probs is None:
                break  # dropped before: every older step was dropped too, so the walk stops here
            kept += lens.log_probs.nbytes
            if kept > self.lens_budget and index < len(self.steps) - 1:
                self.steps[index] = dataclasses.replace(
                    self.steps[index], trace=self.steps[index].trace.without_full_lens()
                )

    def sample_result(self, index: int = -1) -> SampleResult:
        """Every sampler stage's view of step `index`, recomputed from its logits (cached for the last one)."""
        position = index % len(self.steps)
        if self._last_sample and self._last_sample[0] == position:
            return self._last_sample[1]
        step = self.steps[position]
        result = self._sample(step.trace, step.config, position)
        return result

    # -------------------------------------------------------------- internals
    def _sample(self, trace: StepTrace, config: SamplerConfig, position: int) -> SampleResult:
        return sample(
            trace.logits,
            prompt_ids=self.prompt_ids,
            generated_ids=self.generated_ids[:position],
            config=config,
            step_index=position,
        )

    def _choose(self, trace: StepTrace, config: SamplerConfig) -> Step:
        position = len(self.steps)
        result = self._sample(trace, config, position)
        chosen = self.engine.token_info(result.token_id)
        probability = float(result.final_probs[result.token_id])
        step = Step(
            trace=trace.with_chosen(chosen),
            config=config,
            probability=probability,
            raw_probability=float(result.raw_probs[result.token_id]),
        )
        self.steps.append(step)
        self._bound_full_lenses()
        self._last_sample = (position, result)
        if trace.attention is not None:
            for old in self.attention_budget.add(position, trace.attention.nbytes):
                self.steps[old] = dataclasses.replace(self.steps[old], trace=without_attention(self.steps[old].trace))
        return step
