"""Shared by the session and replay tests: record a small exploration on a tiny model through the live path."""

from __future__ import annotations

from pathlib import Path

from llmscope.live import LiveController
from llmscope.sampler import preset
from llmscope.session.recording import Session, SessionRecorder

PLAIN_PROMPT = "Hello, how are you?"
CHAT_PROMPT = "To be, or not to be"


def record_exploration(model_dir: Path) -> tuple[Session, SessionRecorder]:
    """Balanced steps, a greedy re-sample, a rewind, penalised creative steps, then a second (chat) prompt."""
    from llmscope.engines.hf import HFEngine

    engine = HFEngine.load(str(model_dir))
    recorder = SessionRecorder(engine)
    controller = LiveController(engine, recorder=recorder)
    controller.resample(preset("balanced").with_changes(seed=5))
    controller.start(PLAIN_PROMPT, chat=False)
    for _ in range(5):
        controller.step()
    controller.resample(preset("greedy"))
    controller.rewind(2)
    controller.resample(preset("creative").with_changes(seed=9, repetition_penalty=1.3, frequency_penalty=0.5))
    for _ in range(3):
        controller.step()
    controller.start(CHAT_PROMPT, chat=True)
    for _ in range(3):
        controller.step()
    return recorder.session(title="tiny exploration", description="test"), recorder


def record_greedy(model_dir: Path, steps: int = 6) -> Session:
    """A plain greedy generation, saved through Session.from_generation (the `generate --save` path)."""
    from llmscope.engines.hf import HFEngine
    from llmscope.generation import Generation

    engine = HFEngine.load(str(model_dir))
    generation = Generation(engine, preset("greedy"))
    generation.start(engine.encode(PLAIN_PROMPT))
    generation.run(steps)
    return Session.from_generation(generation, prompt_text=PLAIN_PROMPT, chat=False)
