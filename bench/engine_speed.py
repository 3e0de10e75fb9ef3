"""Benchmark: llmscope's step loop against plain `model.generate`, on the same model, device and prompt.

Prints ms/token for generate (greedy, SDPA), the llmscope loop with captures off (SDPA) and with
every capture on (eager attention + hidden states + KV + router), their ratios, load time and peak
memory (and on CUDA the allocator's peak), after a line naming the device and dtype it ran in.
Usage: `python bench/engine_speed.py --model smollm2 --tokens 64 --repeats 3 [--device cuda]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from llmscope.engines.device import memory_figures, synchronize  # noqa: E402
from llmscope.engines.hf import HFEngine  # noqa: E402
from llmscope.generation import Generation  # noqa: E402
from llmscope.sampler import SamplerConfig  # noqa: E402
from llmscope.trace import CaptureOptions  # noqa: E402

PROMPT = "The history of the printing press begins in the fifteenth century, when"
ALL_OFF = CaptureOptions(attention=False, hidden_states=False, kv_cache=False, router=False)
ALL_ON = CaptureOptions()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_generate(engine: HFEngine, prompt_ids: list[int], tokens: int) -> float:
    """ms per new token of plain transformers generate (greedy, no captures) on the engine's model."""
    engine.set_capture(ALL_OFF)  # SDPA kernel, as generate uses by default
    inputs = torch.tensor([prompt_ids], device=engine._input_device)
    synchronize(engine.device)
    started = time.perf_counter()
    with torch.inference_mode():
        output = engine.model.generate(
            inputs,
            do_sample=False,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            top_k=None,
            top_p=None,
            temperature=None,
        )
    synchronize(engine.device)
    elapsed = time.perf_counter() - started
    assert output.shape[1] - len(prompt_ids) == tokens
    return elapsed * 1000 / tokens


def time_loop(engine: HFEngine, prompt_ids: list[int], tokens: int, capture: CaptureOptions) -> float:
    """ms per new token of the llmscope loop (prefill, then step + staged sampler per token)."""
    engine.set_capture(capture)
    generation = Generation(engine, SamplerConfig(temperature=0))
    eos = engine.info.eos_token_ids
    started = time.perf_counter()
    generation.start(prompt_ids)
    while len(generation.steps) < tokens:
        trace = engine.step(generation.steps[-1].token_id)  # advance() without the EOS stop, to match min_new_tokens
        generation._choose(trace, generation.config)
    synchronize(engine.device)
    elapsed = time.perf_counter() - started
    assert len(generation.steps) == tokens and eos is not None
    return elapsed * 1000 / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    rss_before = peak_rss_mib()
    started = time.perf_counter()
    engine = HFEngine.load(args.model, device=args.device)
    load_s = time.perf_counter() - started
    rss_loaded = peak_rss_mib()
    prompt_ids = engine.encode(PROMPT)
    info = engine.info
    print(f"device {engine.device.describe()}")
    print(
        f"model {info.name}: {info.num_parameters:,} params, {info.num_layers} layers, {info.num_heads} heads "
        f"/ {info.num_kv_heads} KV heads, {info.device} {info.dtype}, torch threads {torch.get_num_threads()}"
    )
    print(f"prompt {len(prompt_ids)} tokens, {args.tokens} new tokens, median of {args.repeats} runs after a warm-up")
    print(
        f"load time (imports done): {load_s:.2f} s; peak RSS before load {rss_before:.0f} MiB, after {rss_loaded:.0f} MiB"
    )

    runs = {
        "model.generate (greedy, sdpa)": lambda: time_generate(engine, prompt_ids, args.tokens),
        "llmscope loop, captures off": lambda: time_loop(engine, prompt_ids, args.tokens, ALL_OFF),
        "llmscope loop, all captures on": lambda: time_loop(engine, prompt_ids, args.tokens, ALL_ON),
    }
    for run in runs.values():  # warm-up: first calls pay for kernel selection and allocation
        run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleave so background load affects all variants alike
        for name, run in runs.items():
            samples[name].append(run())
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["model.generate (greedy, sdpa)"]
    print(f"\n{'variant':34} {'ms/token':>9} {'min':>7} {'max':>7} {'ratio':>7}")
    for name, values in samples.items():
        print(f"{name:34} {medians[name]:9.1f} {min(values):7.1f} {max(values):7.1f} {medians[name] / baseline:6.2f}x")
    labels = {"peak_rss_mib": "peak RSS", "cuda_allocated_mib": "CUDA allocated", "cuda_peak_mib": "CUDA peak"}
    figures = memory_figures(engine.device)
    print("\n" + ", ".join(f"{labels[name]} {value:.0f} MiB" for name, value in figures.items()))


if __name__ == "__main__":
    main()
