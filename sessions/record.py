"""Regenerate the shipped sessions from the real models, reproducibly (fixed prompts, seeds and knobs).

    .venv/bin/python sessions/record.py                 # every session whose model is available
    .venv/bin/python sessions/record.py --only moe-routing

Each session is driven through a LiveController with a SessionRecorder, the same path the TUI uses,
then checked: re-sampling every step from the saved file must reproduce the recorded tokens.
torch is imported only when a session is recorded, so importing this module stays light.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
INDEX = "index.json"
INDUCTION_WORDS = (
    "amber",
    "basket",
    "cobalt",
    "dune",
    "ember",
    "falcon",
    "garnet",
    "harbor",
    "iris",
    "juniper",
    "kettle",
    "lantern",
    "maple",
    "nickel",
    "orbit",
    "pepper",
    "quartz",
    "raven",
    "saddle",
    "tundra",
    "umber",
    "velvet",
    "walnut",
    "yonder",
    "zinc",
)


@dataclass(frozen=True)
class Recipe:
    name: str
    model: str
    description: str
    record: Callable[[object], None]
    """Drives a LiveController (with a recorder attached) through the session's actions."""
    logits: str = "full"


def advance(controller, count: int) -> None:
    """Step up to `count` tokens, stopping early at EOS or a full context."""
    for _ in range(count):
        if controller.generation.stop_reason is not None:
            return
        controller.step()


def sampling_tour(controller) -> None:
    """Balanced sampling on an open-ended story; one uncertain step re-sampled with other presets, then a rewind."""
    from llmscope.sampler import preset

    controller.resample(preset("balanced").with_changes(seed=7))
    controller.start("Once upon a time, in a small village by the sea, there lived", chat=False)
    advance(controller, 26)  # step 26 is " brave" at p 0.21: the knobs decide what comes next
    for name in ("greedy", "creative", "balanced"):
        controller.resample(preset(name).with_changes(seed=7))
    controller.rewind(5)
    controller.resample(preset("creative").with_changes(seed=11))
    advance(controller, 18)


def induction_prompt(seed: int = 3, span_words: int = 16, cue_words: int = 5, repeats: int = 2) -> str:
    """A seeded random span of words, repeated, then its first words again: copying the rest needs induction heads."""
    words = random.Random(seed).sample(INDUCTION_WORDS, span_words)
    return (" ".join(words) + ".\n") * repeats + " ".join(words[:cue_words])


def attention_sinks_induction(controller) -> None:
    """Greedy continuation of a repeated random span; the prefill attention shows sinks and induction stripes."""
    from llmscope.sampler import preset

    controller.resample(preset("greedy"))
    controller.start(induction_prompt(), chat=False)
    advance(controller, 15)


SHAKESPEARE_PROMPT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"
PYTHON_DOCS_PROMPT = (
    "sorted(iterable, /, *, key=None, reverse=False)\nReturn a new sorted list from the items in iterable."
)


def moe_routing(controller) -> None:
    """The same small MoE on a Shakespeare prompt, then on a Python-docs prompt: routing differs by domain."""
    from llmscope.sampler import preset

    controller.resample(preset("greedy"))
    for prompt in (SHAKESPEARE_PROMPT, PYTHON_DOCS_PROMPT):
        controller.start(prompt, chat=False)
        advance(controller, 15)


RECIPES = (
    Recipe(
        "sampling-tour",
        "smollm2",
        "SmolLM2 tells a story: balanced preset, one uncertain step re-sampled greedy/creative, a rewind, "
        "then creative",
        sampling_tour,
    ),
    Recipe(
        "attention-sinks-induction",
        "smollm2",
        "SmolLM2 copies a repeated random word span: attention sinks and induction heads in the prefill",
        attention_sinks_induction,
    ),
    Recipe(
        "moe-routing",
        "tiny-moe",
        "tiny-moe routes a Shakespeare prompt and a Python-docs prompt: experts differ by domain",
        moe_routing,
    ),
)


def model_available(model: str) -> bool:
    from llmscope.registry import ModelNotFoundError, resolve

    try:
        resolve(model)
    except ModelNotFoundError:
        return False
    return True


def record(recipe: Recipe, out_dir: Path) -> dict[str, object]:
    """Record one session, save it, and check that the saved file replays to the same tokens."""
    from llmscope.engines.hf import HFEngine
    from llmscope.live import LiveController
    from llmscope.session.files import load_session, save_session
    from llmscope.session.recording import SessionRecorder
    from llmscope.session.replay import reenact

    engine = HFEngine.load(recipe.model, device="cpu")
    controller = LiveController(engine, recorder=SessionRecorder(engine))
    started = time.perf_counter()
    recipe.record(controller)
    session = controller.recorder.session(title=recipe.name, description=recipe.description)
    path = save_session(session, out_dir / f"{recipe.name}.llmscope", logits=recipe.logits)
    replayed = [item for item, _ in reenact(load_session(path)) if hasattr(item, "reproduced")]
    differ = sum(not item.reproduced for item in replayed)
    print(
        f"{recipe.name}: {len(session.forwards)} forwards, {len(replayed)} samples, {differ} differ on replay, "
        f"{path.stat().st_size:,} bytes, {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    if differ:
        raise SystemExit(f"{recipe.name}: {differ} re-sampled tokens differ from the recording")
    return {"name": recipe.name, "file": path.name, "model": recipe.model, "description": recipe.description}


def update_index(out_dir: Path, entries: list[dict[str, object]]) -> None:
    """Merge new entries into index.json, keeping the recipes' order."""
    index_path = out_dir / INDEX
    existing = json.loads(index_path.read_text(encoding="utf-8"))["sessions"] if index_path.is_file() else []
    by_name = {entry["name"]: entry for entry in existing} | {entry["name"]: entry for entry in entries}
    order = [recipe.name for recipe in RECIPES] + sorted(set(by_name) - {recipe.name for recipe in RECIPES})
    index = {"sessions": [by_name[name] for name in order if name in by_name]}
    index_path.write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=[recipe.name for recipe in RECIPES],
        help="record only this session (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    entries = []
    for recipe in RECIPES:
        if args.only and recipe.name not in args.only:
            continue
        if not model_available(recipe.model):
            print(f"{recipe.name}: skipped, model '{recipe.model}' is not available yet", file=sys.stderr)
            continue
        entries.append(record(recipe, args.out))
    update_index(args.out, entries)


if __name__ == "__main__":
    main()
