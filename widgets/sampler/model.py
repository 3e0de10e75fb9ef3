"""Display model of one sampling step: the candidate rows and stage columns the sampler table draws.

Built once per `SampleResult` (numpy work over the whole vocabulary happens here), so that
re-rendering on a resize or a cursor move only formats a few dozen prepared numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmscope.format import visible_token_text
from llmscope.sampler import SampleResult, StageResult

CellState = Literal["kept", "penalised", "removed_here", "removed_earlier"]
"""How a token fared in one stage: untouched, logit lowered by a penalty, removed now, or already gone."""

PENALTY_STAGES = ("repetition_penalty", "frequency_presence_penalty")
STAGE_SHORT_NAMES: dict[str, str] = {
    "repetition_penalty": "rep",
    "frequency_presence_penalty": "freq/pres",
    "temperature": "T",
    "top_k": "top-k",
    "top_p": "top-p",
    "min_p": "min-p",
}
"""Compact stage names for column headers and the survivors line."""
DEFAULT_MAX_ROWS = 64
"""Candidate rows prepared per step; the table shows as many as fit (a tall pane rarely fits more)."""

_GONE = ("removed_here", "removed_earlier")


def visible_token(text: str) -> str:
    """Token text as every pane shows it (llmscope.format.visible_token_text), so a row never breaks a line."""
    return visible_token_text(text)


def stage_header(stage: StageResult, result: SampleResult) -> str:
    """Short column header for an active stage, naming its setting ('T 0.7', 'top-p 0.9', 'rep 1.2')."""
    config = result.config
    short = STAGE_SHORT_NAMES.get(stage.name, stage.name)
    settings = {
        "repetition_penalty": f"{config.repetition_penalty:g}",
        "frequency_presence_penalty": f"{config.frequency_penalty:g}/{config.presence_penalty:g}",
        "temperature": "0 greedy" if config.greedy else f"{config.temperature:g}",
        "top_k": f"{config.top_k}",
        "top_p": f"{config.top_p:g}",
        "min_p": f"{config.min_p:g}",
    }
    setting = settings.get(stage.name)
    return short if setting is None else f"{short} {setting}"


def off_note(result: SampleResult) -> str:
    """One line naming the stages that did nothing this step ('top-k · min-p · penalties')."""
    inactive = [stage.name for stage in result.stages if not stage.active]
    names: list[str] = []
    if all(name in inactive for name in PENALTY_STAGES):
        names.append("penalties")
    else:
        names += ["repetition penalty" for name in inactive if name == "repetition_penalty"]
        names += ["freq/pres penalty" for name in inactive if name == "frequency_presence_penalty"]
    filters = [STAGE_SHORT_NAMES[name] for name in ("top_k", "top_p", "min_p") if name in inactive]
    if filters and result.greedy:
        names.append(" · ".join(filters) + " (greedy skips filters)")
    else:
        names += filters
    if "temperature" in inactive:
        names.insert(0, "T (1 = unchanged)")
    return " · ".join(names)


@dataclass(frozen=True)
class StageColumn:
    """One active sampler stage as a table column."""

    name: str
    header: str
    label: str
    kept: int
    """Tokens still allowed after this stage (over the whole vocabulary)."""


@dataclass(frozen=True)
class StageCell:
    """One token's probability after one stage, and what the stage did to it."""

    probability: float
    """Renormalised probability after the stage (0 once removed)."""
    shown: float
    """Number to print: `probability`, or the last probability the token had before it was removed."""
    state: CellState


@dataclass(frozen=True)
class CandidateRow:
    """One candidate token followed through the pipeline."""

    rank: int
    """1-based position by raw logit (lower id first on ties)."""
    token_id: int
    text: str
    raw_logit: float
    raw_probability: float
    cells: tuple[StageCell, ...]
    final: StageCell
    chosen: bool

    @property
    def removed(self) -> bool:
        """True when some stage removed this token, so it could not be drawn."""
        return self.final.state in _GONE


@dataclass(frozen=True)
class SamplerView:
    """Everything the sampler table shows for one step, prepared once."""

    vocab_size: int
    columns: tuple[StageColumn, ...]
    off_note: str
    rows: tuple[CandidateRow, ...]
    """The most likely raw tokens, best first."""
    chosen: CandidateRow
    row_probabilities: np.ndarray
    """float64 [rows, 2 + stages]: raw p, p after each active stage, final p (0 once removed)."""
    column_totals: np.ndarray
    """float64 [2 + stages]: each column's probability summed over the whole vocabulary."""
    column_kept: np.ndarray
    """int64 [2 + stages]: tokens still allowed (finite logit) in each column, over the whole vocabulary."""
    row_alive: np.ndarray
    """bool [rows, 2 + stages]: the row's token is still a candidate in that column."""
    entropy_raw: float
    entropy_final: float
    greedy: bool
    draw: float | None
    seed: int
    step_index: int
    sampled: CandidateRow | None = None
    """The sampler's own pick when the user forced `chosen` instead (None when `chosen` was sampled)."""

    def others(self, shown_rows: int, chosen_shown_separately: bool) -> tuple[int, np.ndarray, np.ndarray]:
        """Count of tokens not shown, their probability per column and how many of them are still candidates."""
        probabilities = self.row_probabilities[:shown_rows].sum(axis=0)
        alive = self.row_alive[:shown_rows].sum(axis=0)
        hidden = self.vocab_size - shown_rows
        if chosen_shown_separately:
            chosen_probs, chosen_alive = _row_columns(self.chosen)
            probabilities = probabilities + chosen_probs
            alive = alive + chosen_alive
            hidden -= 1
        rest = np.clip(self.column_totals - probabilities, 0.0, None)
        return hidden, rest, np.maximum(self.column_kept - alive, 0)


def _row_columns(row: CandidateRow) -> tuple[np.ndarray, np.ndarray]:
    """One row's probability per column and whether it is alive there."""
    cells = [*row.cells, row.final]
    probabilities = np.array([row.raw_probability] + [cell.probability for cell in cells], dtype=np.float64)
    alive = np.array([math.isfinite(row.raw_logit)] + [cell.state not in _GONE for cell in cells], dtype=np.int64)
    return probabilities, alive


def _candidate_row(
    result: SampleResult, token_id: int, rank: int, text: str, active: list[StageResult], chosen_id: int | None = None
) -> CandidateRow:
    """Follow one token through the active stages, noting who removed or penalised it."""
    cells: list[StageCell] = []
    logit_before = float(result.raw_logits[token_id])
    shown = float(result.raw_probs[token_id])
    removed = not math.isfinite(logit_before)
    for stage in active:
        logit_after = float(stage.logits[token_id])
        probability = float(stage.probs[token_id])
        if removed:
            state: CellState = "removed_earlier"
        elif not math.isfinite(logit_after):
            state, removed = "removed_here", True
        elif stage.name in PENALTY_STAGES and logit_after != logit_before:
            state, shown = "penalised", probability
        else:
            state, shown = "kept", probability
        cells.append(StageCell(probability if not removed else 0.0, shown, state))
        logit_before = logit_after
    final_probability = float(result.final_probs[token_id])
    final_state: CellState = "removed_earlier" if removed else "kept"
    final = StageCell(final_probability if not removed else 0.0, shown, final_state)
    return CandidateRow(
        rank,
        token_id,
        visible_token(text),
        float(result.raw_logits[token_id]),
        float(result.raw_probs[token_id]),
        tuple(cells),
        final,
        token_id == (result.token_id if chosen_id is None else chosen_id),
    )


def raw_rank(result: SampleResult, token_id: int) -> int:
    """1-based rank of a token by raw logit, lower id first among equal logits (as SampleResult.top)."""
    logits = result.raw_logits
    value = logits[token_id]
    return int((logits > value).sum() + (logits[:token_id] == value).sum()) + 1


def build_sampler_view(
    result: SampleResult,
    token_texts: Mapping[int, str],
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    forced: int | None = None,
) -> SamplerView:
    """Prepare the rows and columns for one step; ids missing from `token_texts` show as '#id'.

    `forced` is a token the user chose instead of the sampler's pick: it becomes the chosen row, and the
    sampler's own pick is kept as `sampled`.
    """
    active = [stage for stage in result.stages if stage.active]
    columns = tuple(StageColumn(stage.name, stage_header(stage, result), stage.label, stage.kept) for stage in active)

    def text_of(token_id: int) -> str:
        return token_texts.get(token_id, f"#{token_id}")

    top_ids = result.top(max_rows)
    rows = tuple(
        _candidate_row(result, token_id, rank, text_of(token_id), active, forced)
        for rank, token_id in enumerate(top_ids, start=1)
    )

    def row_of(token_id: int) -> CandidateRow:
        if token_id in top_ids:
            return rows[top_ids.index(token_id)]
        return _candidate_row(result, token_id, raw_rank(result, token_id), text_of(token_id), active, forced)

    sampled_id = int(result.token_id)
    chosen = row_of(sampled_id if forced is None else int(forced))
    sampled = row_of(sampled_id) if forced is not None and int(forced) != sampled_id else None

    per_row = [_row_columns(row) for row in rows]
    row_probabilities = np.array([probs for probs, _ in per_row], dtype=np.float64).reshape(len(rows), -1)
    row_alive = np.array([alive for _, alive in per_row], dtype=bool).reshape(len(rows), -1)
    distributions = [result.raw_probs, *(stage.probs for stage in active), result.final_probs]
    column_totals = np.array([float(np.sum(p, dtype=np.float64)) for p in distributions])
    raw_kept = int(np.isfinite(result.raw_logits).sum())
    stage_kept = [stage.kept for stage in active]
    column_kept = np.array([raw_kept, *stage_kept, stage_kept[-1] if stage_kept else raw_kept], dtype=np.int64)
    return SamplerView(
        vocab_size=int(result.raw_logits.size),
        columns=columns,
        off_note=off_note(result),
        rows=rows,
        chosen=chosen,
        row_probabilities=row_probabilities,
        column_totals=column_totals,
        column_kept=column_kept,
        row_alive=row_alive,
        entropy_raw=result.entropy_raw,
        entropy_final=result.entropy_final,
        greedy=result.greedy,
        draw=result.draw,
        seed=int(result.config.seed),
        step_index=int(result.step_index),
        sampled=sampled,
    )
