"""A comparison as a replayable session: lane A's run, lane B's run, then one `comparison` event tying them together.

A session file holds one model, so only lanes on the same model can be saved. The two runs are
ordinary prompt/step events (so `llmscope replay` re-samples both); the comparison event's `data`
(format below, `COMPARISON_DATA_VERSION`) names the runs and keeps the per-step divergence figures:

    {"version": 1, "log_base": "e", "top_n": N, "comparable": bool, "first_divergence": int | null,
     "lanes": [{"name": "A", "run": 0, "prompt": str, "chat": bool, "system_prompt": str | null,
                "sampler": {SamplerConfig fields}, "stop_reason": str | null}, {... "B", "run": 1 ...}],
     "steps": [{"index": i, "a_token": id | null, "b_token": id | null, "diverged": bool,
                "raw": FIGURES | null, "final": FIGURES | null}]}

FIGURES = {"kl_ab": nats, "kl_ba": nats, "js": nats, "overlap": share, "top_n": N}; an infinite KL is "inf".
Imports neither torch nor Textual.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from llmscope.compare.lanes import Comparison
from llmscope.divergence import Divergence, jsonable_nats
from llmscope.session.recording import Session, SessionRecorder

COMPARISON_DATA_VERSION = 1


def _figures(figures: Divergence | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "kl_ab": jsonable_nats(figures.kl_ab),
        "kl_ba": jsonable_nats(figures.kl_ba),
        "js": figures.js,
        "overlap": figures.overlap,
        "top_n": figures.top_n,
    }


def comparison_data(comparison: Comparison) -> dict[str, Any]:
    """The `data` of the comparison event: lanes (with their run number), per-step figures, first divergence."""
    lanes = [
        {
            "name": lane.name,
            "run": run,
            "prompt": lane.prompt,
            "chat": lane.chat,
            "system_prompt": lane.system_prompt,
            "sampler": asdict(lane.config),
            "stop_reason": reason,
        }
        for run, (lane, reason) in enumerate(zip(comparison.lanes, comparison.stop_reasons()))
    ]
    steps = [
        {
            "index": record.index,
            "a_token": record.a.token.id if record.a else None,
            "b_token": record.b.token.id if record.b else None,
            "diverged": record.diverged,
            "raw": _figures(record.raw),
            "final": _figures(record.final),
        }
        for record in comparison.records()
    ]
    return {
        "version": COMPARISON_DATA_VERSION,
        "log_base": "e",
        "top_n": comparison.top_n,
        "comparable": comparison.compatibility.comparable,
        "first_divergence": comparison.first_divergence,
        "lanes": lanes,
        "steps": steps,
    }


def same_model(comparison: Comparison) -> bool:
    """Both lanes run the same weights (a session file describes exactly one model)."""
    first, second = (lane.engine.info for lane in comparison.lanes)
    return (first.source, first.name, first.vocab_size) == (second.source, second.name, second.vocab_size)


def comparison_session(comparison: Comparison, *, title: str = "", description: str = "") -> Session:
    """Record both lanes as they stand as two runs of one session, followed by the comparison event."""
    if not same_model(comparison):
        names = " and ".join(f"lane {lane.name} {lane.engine.info.name}" for lane in comparison.lanes)
        raise ValueError(f"cannot save this comparison: a session file holds one model, and {names} differ")
    if not comparison.started:
        raise ValueError("cannot save this comparison: nothing has been generated yet")
    recorder = SessionRecorder(comparison.lanes[0].engine)
    for lane, generation in zip(comparison.lanes, comparison.generations):
        recorder.prompt(lane.prompt, chat=lane.chat, system_prompt=lane.system_prompt, prompt_ids=generation.prompt_ids)
        for number, step in enumerate(generation.steps):
            recorder.step(step, first=number == 0)
    recorder.comparison(comparison_data(comparison))
    return recorder.session(title=title, description=description)


__all__ = ["COMPARISON_DATA_VERSION", "comparison_data", "comparison_session", "same_model"]
