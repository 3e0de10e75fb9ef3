"""Long runs keep memory per step constant: older steps' attention rows are dropped past a byte budget, in the
generation and in the recording alike, and every place that would draw them says why they are gone."""

from __future__ import annotations

import numpy as np
import pytest

from llmscope.generation import AttentionBudget, Generation
from llmscope.live import ATTENTION_DROPPED, LiveController, pane_contents
from llmscope.panes import Unavailable
from llmscope.sampler import preset
from llmscope.session.files import load_session, save_session
from llmscope.session.recording import SessionRecorder
from llmscope.session.replay import reenact


def held_attention_bytes(*holders) -> int:
    """Bytes of distinct attention arrays still reachable from generations' steps and recorders' forwards."""
    arrays: dict[int, np.ndarray] = {}
    for holder in holders:
        if isinstance(holder, Generation):
            found = [step.trace.attention for step in holder.steps]
        else:
            found = [forward.arrays.get("attention") for forward in holder.forwards]
        arrays.update({id(array): array for array in found if array is not None})
    return sum(array.nbytes for array in arrays.values())


def test_budget_keeps_the_newest_and_replaces_a_resampled_entry():
    budget = AttentionBudget(100)
    assert budget.add(0, 40) == [] and budget.add(1, 40) == []
    assert budget.add(1, 40) == []  # the same step again (a re-sample) is not counted twice
    assert budget.add(2, 40) == [0] and budget.dropped == 1
    assert budget.add(3, 500) == [1, 2]  # never the newest, even above the budget
    budget.forget_from(3)
    assert budget.add(3, 10) == [] and budget.dropped == 3


@pytest.fixture(scope="module")
def engine(tiny_model_dirs):
    from llmscope.engines.hf import HFEngine

    return HFEngine.load(str(tiny_model_dirs["llama-gqa"]))


def test_attention_held_stays_within_the_budget_however_long_the_run(engine, tmp_path):
    """60 steps of a 3-layer, 4-head model: rows grow with the position, so keeping them all would grow with
    steps²; with a 16 KiB budget the generation and the recorder hold at most the budget (plus the newest row)."""
    budget = 16 * 2**10
    recorder = SessionRecorder(engine)
    recorder.attention_budget = AttentionBudget(budget)
    controller = LiveController(engine, preset("greedy"), recorder=recorder)
    controller.generation.attention_budget = AttentionBudget(budget)
    controller.start("Hello, how are you?", chat=False)
    generation = controller.generation
    unbounded = 0
    held: list[int] = []
    while len(generation.steps) < 60 and generation.stop_reason is None:
        controller.step()
        unbounded += generation.steps[-1].trace.attention.nbytes
        held.append(held_attention_bytes(generation, recorder))
    newest = generation.steps[-1].trace.attention.nbytes
    assert unbounded > 4 * budget, "the run must be long enough for the budget to matter"
    assert max(held) <= 2 * budget + newest  # the generation's and the recorder's newest sets overlap
    assert held[-1] <= budget + newest
    dropped = [step.trace for step in generation.steps if step.trace.attention_dropped]
    assert dropped and all(trace.attention is None for trace in dropped)
    assert generation.attention_budget.dropped == len(dropped)

    view = controller.view_at(0)  # the first step's rows are gone: its pane says why, not "capture is off"
    attention = pane_contents(view).attention
    assert isinstance(attention, Unavailable) and attention.reason == ATTENTION_DROPPED

    saved = save_session(recorder.session(), tmp_path / "long.llmscope")
    loaded = load_session(saved)
    marked = [forward.attention_dropped for forward in loaded.forwards]
    assert marked[0] and not marked[-1] and "attention" in loaded.forwards[-1].arrays
    assert all(("attention" in forward.arrays) != forward.attention_dropped for forward in loaded.forwards)
    for _item, _ in reenact(loaded):  # a thinned recording still replays
        pass


def test_rewind_and_resample_keep_the_budget_consistent(engine):
    generation = Generation(engine, preset("greedy"), attention_budget=4 * 2**10)
    generation.start(engine.encode("Hello, how are you?"))
    generation.run(20)
    generation.rewind(6)
    generation.resample(preset("balanced"))
    generation.run(24)
    kept = [step for step in generation.steps if step.trace.attention is not None]
    assert kept and kept[-1] is generation.steps[-1]
    assert sum(step.trace.attention.nbytes for step in kept[:-1]) <= 4 * 2**10
