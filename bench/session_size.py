"""Benchmark: size, open time and attention precision of a session file for a long SmolLM2 run, all captures on.

Records STEPS greedy-free tokens (balanced preset, seeded) after a prompt of PROMPT_TOKENS tokens of real English
text (Python's own pydoc topics, PSF-licensed), saves the session once per attention storage (float16: every weight,
the format before sparse storage; sparse: weights ≥ 1/256 of their row's max plus each row's remaining mass) and
once with top-k:N logits, then times opening each lazily (the replay default) and eagerly, and in a fresh process
that blocks torch: import, open, and a headless re-enactment of every sample. For the sparse file it prints the
largest difference from the live float32 rows of each figure the attention pane shows.
Usage: `python bench/session_size.py --prompt-tokens 2000 --steps 200 --out /tmp`
(`--keep-all-attention` lifts the recorder's 256 MiB attention budget so every forward's rows go into the file).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHORT_PROMPT = "Once upon a time, in a small village by the sea, there lived"
TIME_OPEN = """
import importlib.abc, sys, time
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(name)
sys.meta_path.insert(0, Blocker())
started = time.perf_counter()
from llmscope.session.files import load_session
imported = time.perf_counter()
session = load_session(sys.argv[1])
opened = time.perf_counter()
from llmscope.session.replay import reenact
samples = [item for item, _ in reenact(session) if hasattr(item, "reproduced")]
done = time.perf_counter()
assert "torch" not in sys.modules
print(f"import {1000 * (imported - started):.0f} ms, open {1000 * (opened - imported):.0f} ms, re-enact "
      f"{len(samples)} samples {1000 * (done - opened):.0f} ms, reproduced {sum(s.reproduced for s in samples)}")
"""


def long_prompt(engine: object, tokens: int) -> str:
    """Text of at least `tokens` tokens (Python's pydoc topics), cut at a token boundary."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[name] for name in sorted(topics))
    ids = engine.encode(text)[:tokens]  # type: ignore[attr-defined]
    return str(engine.tokenizer.decode(ids, skip_special_tokens=True))  # type: ignore[attr-defined]


def figure_errors(live: np.ndarray, replayed: np.ndarray, query_start: int) -> dict[str, float]:
    """Largest |replayed − live| of each figure the attention pane shows, over every (layer, head, row)."""
    from llmscope.widgets.attention.data import grid_pixels, top_keys

    rows = live.shape[2]
    positions = query_start + np.arange(rows)
    errors = {"weight": float(np.abs(replayed - live).max())}
    peak = live.max(axis=-1, keepdims=True)
    errors["weight / row max"] = float((np.abs(replayed - live) / np.maximum(peak, 1e-30)).max())
    for mode in ("row", "global"):
        errors[f"heatmap cell ({mode})"] = float(
            np.abs(grid_pixels(replayed, min(rows, 12), 60, mode) - grid_pixels(live, min(rows, 12), 60, mode)).max()
        )
    errors["sink (key 0)"] = float(np.abs(replayed[..., 0] - live[..., 0]).max())
    first = np.abs(replayed[..., :4].sum(-1) - live[..., :4].sum(-1)).max()
    errors["first 4 keys share"] = float(first)
    recent = 0.0
    for row, position in enumerate(positions):
        window = slice(max(0, position - 63), position + 1)
        recent = max(recent, float(np.abs(replayed[:, :, row, window].sum(-1) - live[:, :, row, window].sum(-1)).max()))
    errors["last 64 keys share"] = recent
    differ = weight = 0.0
    for layer in range(live.shape[0]):
        for head in range(live.shape[1]):
            row, shown = live[layer, head, -1], replayed[layer, head, -1]
            want = top_keys(row, 5)
            weight = max(weight, max(abs(float(shown[key]) - value) for key, value in want))
            kept = [key for key, value in want if value >= row.max() / 256]  # what sparse storage keeps in order
            differ += [key for key, _ in top_keys(shown, len(kept))] != kept
    errors["top-5 key weights"] = weight
    errors["top-5 lists that differ (keys ≥ max/256)"] = differ
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--prompt-tokens", type=int, default=0, help="0: a one-line prompt")
    parser.add_argument("--top-k", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("/tmp"))
    parser.add_argument("--keep-all-attention", action="store_true")
    args = parser.parse_args()

    from llmscope.engines.hf import HFEngine
    from llmscope.generation import AttentionBudget
    from llmscope.live import LiveController
    from llmscope.sampler import preset
    from llmscope.session.files import load_session, save_session
    from llmscope.session.recording import SessionRecorder

    engine = HFEngine.load("smollm2", device="cpu")
    recorder = SessionRecorder(engine)
    if args.keep_all_attention:
        recorder.attention_budget = AttentionBudget(2**62)
    controller = LiveController(engine, preset("balanced").with_changes(seed=1), recorder=recorder)
    prompt = long_prompt(engine, args.prompt_tokens) if args.prompt_tokens else SHORT_PROMPT
    started = time.perf_counter()
    controller.start(prompt, chat=False)
    while len(controller.generation.steps) < args.steps and controller.generation.stop_reason is None:
        controller.step()
    held = sum("attention" in forward.arrays for forward in recorder.forwards)
    print(
        f"recorded {len(controller.generation.steps)} steps in {time.perf_counter() - started:.0f} s "
        f"(prompt {len(controller.generation.prompt_ids)} tokens; {held} of {len(recorder.forwards)} forwards "
        "hold attention rows)"
    )
    session = recorder.session(title="bench")
    for logits, attention in (("full", "float16"), ("full", "sparse"), (f"top-k:{args.top_k}", "sparse")):
        path = args.out / f"bench-{logits.replace(':', '')}-{attention}.llmscope"
        started = time.perf_counter()
        save_session(session, path, logits=logits, attention=attention)
        saved = time.perf_counter() - started
        timings = {}
        for lazy in (True, False):
            started = time.perf_counter()
            loaded = load_session(path, lazy=lazy)
            timings[lazy] = time.perf_counter() - started
        started = time.perf_counter()
        for forward in loaded.forwards:
            forward.trace()
        traced = time.perf_counter() - started
        print(
            f"logits {logits}, attention {attention}: {path.stat().st_size / 1e6:.1f} MB, save {saved:.1f} s, "
            f"open lazy {1000 * timings[True]:.0f} ms, open eager {1000 * timings[False]:.0f} ms, "
            f"every trace {1000 * traced:.0f} ms"
        )
        fresh = subprocess.run([sys.executable, "-c", TIME_OPEN, str(path)], capture_output=True, text=True, check=True)
        print(f"  fresh process without torch: {fresh.stdout.strip()}")
        if attention == "sparse" and logits == "full":
            worst: dict[str, float] = {}
            for live, replayed in zip(recorder.forwards, loaded.forwards):
                if "attention" in live.arrays:
                    for name, error in figure_errors(
                        np.asarray(live.arrays["attention"], dtype=np.float32),
                        replayed.trace().attention,  # type: ignore[arg-type]
                        live.attention_query_start,
                    ).items():
                        worst[name] = (
                            max(worst.get(name, 0.0), error) if "differ" not in name else worst.get(name, 0.0) + error
                        )
            print("  largest error vs the live float32 rows: " + ", ".join(f"{k} {v:.2g}" for k, v in worst.items()))


if __name__ == "__main__":
    main()
