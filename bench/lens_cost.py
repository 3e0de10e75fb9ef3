"""Benchmark: what the logit lens capture costs per decode step, against the same loop without it.

Runs greedy decode on one engine with every other capture as the playground has it, interleaving
lens-off and lens-on runs, and prints the median ms/step of each and their ratio.
Usage: `python bench/lens_cost.py --model smollm2 --tokens 32 --repeats 3`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from llmscope.engines.hf import HFEngine
from llmscope.generation import Generation
from llmscope.trace import CaptureOptions


def decode_ms(engine: HFEngine, prompt: list[int], tokens: int) -> float:
    """Median wall ms of one decode step (the prefill and the first step excluded)."""
    generation = Generation(engine)
    generation.start(prompt)
    times = []
    for _ in range(tokens):
        started = time.perf_counter()
        generation.advance()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--attention", action="store_true", help="capture attention too (eager kernel)")
    arguments = parser.parse_args()
    base = CaptureOptions(attention=arguments.attention)
    engine = HFEngine.load(arguments.model, capture=base)
    prompt = engine.encode("The capital of France is Paris. The capital of Italy is")
    print(f"model {engine.info.name} · {engine.info.num_layers} layers · vocab {engine.info.vocab_size}")
    print(f"device {engine.info.device} · dtype {engine.info.dtype} · attention capture {arguments.attention}")
    results: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(arguments.repeats):
        for lens in (False, True):
            engine.set_capture(dataclasses.replace(base, logit_lens=lens))
            results[lens].append(decode_ms(engine, prompt, arguments.tokens))
    off, on = statistics.median(results[False]), statistics.median(results[True])
    print(f"decode ms/step  lens off {off:7.1f}  lens on {on:7.1f}  ratio {on / off:5.2f}x")


if __name__ == "__main__":
    main()
