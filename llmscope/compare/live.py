"""The compare screen's model-side state: a Comparison and plain snapshots of both lanes for the widgets.

Methods run on the screen's worker thread; the `CompareView` they return is immutable plain data the
screen hands to its widgets on the UI thread. Imports no torch and no Textual.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llmscope.compare.lanes import CompareStep, Comparison, Lane, Tokenization
from llmscope.compare.presets import LaneSpec
from llmscope.divergence import DEFAULT_TOP_N, VocabCompatibility
from llmscope.engine_api import Engine
from llmscope.live import visible_label
from llmscope.trace import ModelInfo, StepTrace, TokenInfo


@dataclass(frozen=True)
class LaneView:
    """One lane as its column and the side-by-side panes show it."""

    name: str
    summary: str
    """'smollm2 · T=0.2 seed=0 · plain'."""
    prompt: str
    system_prompt: str | None
    info: ModelInfo
    prompt_tokens: tuple[TokenInfo, ...]
    generated: tuple[tuple[TokenInfo, float], ...]
    """Each generated token with the probability it had when chosen (raw probability for greedy steps)."""
    stop_reason: str | None
    traces: tuple[StepTrace, ...]
    """The trace of every step of this lane (a stopped lane has fewer than the comparison)."""
    token_labels: tuple[str, ...]
    """Visible labels of the prompt and generated tokens, by position (attention keys are a prefix of them)."""
    lens_texts: Mapping[int, str] = field(default_factory=dict)
    """Visible text of every token id in the lane's logit-lens top-k lists (empty when no step captured the lens)."""

    @property
    def step_count(self) -> int:
        return len(self.generated)

    def trace_at(self, index: int) -> StepTrace | None:
        """The trace of step `index`, or None when this lane had stopped before it."""
        return self.traces[index] if 0 <= index < len(self.traces) else None


@dataclass(frozen=True)
class CompareView:
    """Everything the compare screen draws after an action."""

    lanes: tuple[LaneView, LaneView]
    records: tuple[CompareStep, ...]
    first_divergence: int | None
    tokenization: Tokenization
    compatibility: VocabCompatibility
    top_n: int

    @property
    def latest(self) -> CompareStep | None:
        return self.records[-1] if self.records else None

    @property
    def finished(self) -> bool:
        return all(lane.stop_reason is not None for lane in self.lanes)


@dataclass(frozen=True)
class CompareContent:
    """What the compare details pane draws: one step of a comparison, with the layer and head chosen for attention."""

    view: CompareView
    index: int
    layer: int
    head: int


class CompareController:
    """Owns two engines (one per lane) and their Comparison; every action returns a fresh CompareView."""

    def __init__(
        self, specs: tuple[LaneSpec, LaneSpec], engines: tuple[Engine, Engine], *, top_n: int = DEFAULT_TOP_N
    ) -> None:
        lanes = [
            Lane(name, engine, spec.prompt, spec.chat, spec.system_prompt, spec.config)
            for name, spec, engine in zip("AB", specs, engines)
        ]
        self.specs = specs
        self.comparison = Comparison(lanes[0], lanes[1], top_n=top_n)
        self._labels: list[dict[int, str]] = [{}, {}]

    def start(self) -> CompareView:
        self.comparison.start()
        return self.view()

    def step(self) -> CompareView:
        self.comparison.step()
        return self.view()

    def rewind(self, count: int = 1) -> CompareView:
        self.comparison.rewind(count)
        return self.view()

    def run(self, count: int) -> CompareView:
        """Up to `count` more step indices, stopping early when both lanes have stopped."""
        self.comparison.run(self.comparison.length + count)
        return self.view()

    def _label(self, lane_number: int, token_id: int) -> str:
        cache = self._labels[lane_number]
        if token_id not in cache:
            cache[token_id] = visible_label(self.comparison.lanes[lane_number].engine.token_info(token_id).raw_bytes)
        return cache[token_id]

    def _lane_view(self, lane_number: int) -> LaneView:
        lane = self.comparison.lanes[lane_number]
        generation = self.comparison.generations[lane_number]
        steps = generation.steps
        return LaneView(
            name=lane.name,
            summary=lane.describe(),
            prompt=lane.prompt,
            system_prompt=lane.system_prompt,
            info=lane.engine.info,
            prompt_tokens=tuple(lane.engine.token_info(token_id) for token_id in generation.prompt_ids),
            generated=tuple(
                (step.trace.chosen, step.raw_probability if step.config.greedy else step.probability)
                for step in steps
                if step.trace.chosen is not None
            ),
            stop_reason=generation.stop_reason,
            traces=tuple(step.trace for step in steps),
            token_labels=tuple(
                self._label(lane_number, token_id) for token_id in (*generation.prompt_ids, *generation.generated_ids)
            ),
            lens_texts=self._lens_texts(lane_number, [step.trace for step in steps]),
        )

    def _lens_texts(self, lane_number: int, traces: list[StepTrace]) -> dict[int, str]:
        """Labels of the token ids that the lane's logit lenses name (labels are cached per id)."""
        ids: set[int] = set()
        for trace in traces:
            if trace.lens is not None:
                ids.update(trace.lens.top_ids.ravel().tolist())
        return {token_id: self._label(lane_number, token_id) for token_id in ids}

    def view(self) -> CompareView:
        comparison = self.comparison
        return CompareView(
            lanes=(self._lane_view(0), self._lane_view(1)),
            records=tuple(comparison.records()),
            first_divergence=comparison.first_divergence,
            tokenization=comparison.tokenization(),
            compatibility=comparison.compatibility,
            top_n=comparison.top_n,
        )


__all__ = ["CompareController", "CompareView", "LaneView"]
