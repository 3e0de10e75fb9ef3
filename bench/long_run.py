"""Benchmark: resident memory of a long run through the playground's path, every capture on.

Steps a LiveController with a SessionRecorder (what `tui --record` does) for STEPS tokens, restarting the
prompt when a model's context fills up, and prints the resident set after every eighth of the run and at
its peak. --unbounded emulates the code before issue 16's fix (every attention row kept, glibc's default
mmap threshold), so the two figures compare on one machine.
Usage: `python bench/long_run.py --model smollm2 --steps 2000 [--unbounded]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def resident_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--prompt", default="The history of the Roman Empire")
    parser.add_argument("--unbounded", action="store_true", help="keep every attention row (the old behaviour)")
    options = parser.parse_args()

    from llmscope.engines import allocator
    from llmscope.engines.hf import HFEngine
    from llmscope.generation import AttentionBudget
    from llmscope.live import LiveController
    from llmscope.sampler import preset
    from llmscope.session.recording import SessionRecorder

    if options.unbounded:
        allocator._applied = True  # as before: glibc's dynamic mmap threshold
    engine = HFEngine.load(options.model)
    recorder = SessionRecorder(engine)
    controller = LiveController(engine, preset("balanced"), recorder=recorder)
    if options.unbounded:
        controller.generation.attention_budget = recorder.attention_budget = AttentionBudget(10**15)
    controller.start(options.prompt, chat=False)
    loaded, started, marks = resident_mib(), time.perf_counter(), {}
    for done in range(2, options.steps + 1):
        if controller.generation.stop_reason:
            controller.start(options.prompt, chat=False)
        else:
            controller.step()
        if done % max(1, options.steps // 8) == 0:
            marks[done] = round(resident_mib())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kept = sum("attention" in forward.arrays for forward in recorder.forwards)
    print(
        f"{options.model}{' (unbounded)' if options.unbounded else ''}: {options.steps} steps in "
        f"{time.perf_counter() - started:.0f} s; resident after load {loaded:.0f} MiB; by step {marks}; "
        f"peak {peak:.0f} MiB; recorded forwards keeping attention {kept}/{len(recorder.forwards)}"
    )


if __name__ == "__main__":
    main()
