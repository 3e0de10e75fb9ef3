"""Benchmark: size and open time of a session file for a long SmolLM2 run with every capture on.

Records STEPS tokens (balanced preset, seeded), saves the session with full float16 logits and with
top-k:N logits, then times opening each (lazy, the replay default; and eager), the replay engine
serving every forward, and a full headless re-enactment in a fresh process without torch.
Usage: `python bench/session_size.py --steps 200 --top-k 256 --out /tmp`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPT = "Once upon a time, in a small village by the sea, there lived"
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
print(f"import {1000 * (imported - started):.0f} ms, open {1000 * (opened - imported):.0f} ms, re-enact "
      f"{len(samples)} samples {1000 * (done - opened):.0f} ms, reproduced {sum(s.reproduced for s in samples)}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("/tmp"))
    args = parser.parse_args()

    from llmscope.engines.hf import HFEngine
    from llmscope.live import LiveController
    from llmscope.sampler import preset
    from llmscope.session.files import load_session, save_session
    from llmscope.session.recording import SessionRecorder

    engine = HFEngine.load("smollm2", device="cpu")
    controller = LiveController(engine, preset("balanced").with_changes(seed=1), recorder=SessionRecorder(engine))
    started = time.perf_counter()
    controller.start(PROMPT, chat=False)
    while len(controller.generation.steps) < args.steps and controller.generation.stop_reason is None:
        controller.step()
    print(
        f"recorded {len(controller.generation.steps)} steps in {time.perf_counter() - started:.0f} s "
        f"(prompt {len(controller.generation.prompt_ids)} tokens)"
    )
    session = controller.recorder.session(title="bench")
    for option in ("full", f"top-k:{args.top_k}"):
        path = args.out / f"bench-{option.replace(':', '')}.llmscope"
        started = time.perf_counter()
        save_session(session, path, logits=option)
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
            f"{option}: {path.stat().st_size / 1e6:.1f} MB, save {saved:.1f} s, open lazy {1000 * timings[True]:.0f} ms,"
            f" open eager {1000 * timings[False]:.0f} ms, every trace {1000 * traced:.0f} ms"
        )
        fresh = subprocess.run([sys.executable, "-c", TIME_OPEN, str(path)], capture_output=True, text=True, check=True)
        print(f"  fresh process without torch: {fresh.stdout.strip()}")


if __name__ == "__main__":
    main()
