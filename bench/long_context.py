"""Benchmark: prefill and decode at long prompts, all captures on vs off vs plain `model.generate`.

Every (length, variant) runs in its own subprocess so each peak RSS is that configuration's alone,
and the variants are interleaved per repeat so background load hits them alike. Prints prefill time
on/off, decode ms/token (the median step: for `generate`, the median gap between its calls to a logits processor,
so a long prefill's noise stays out) of the llmscope loop with captures on against `generate`, and peak RSS on/off.
Usage: `python bench/long_context.py --model smollm2 --lengths 128,512,1024 --tokens 16 --repeats 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEFAULT_LENGTHS = "128,512,1024,2048"
FULL_LENGTHS = "128,512,1024,2048,4096,8192"
TEXT = (
    "The history of the printing press begins in the fifteenth century, when movable type made books cheap "
    "enough for merchants, students and clerks to own, and the ideas they carried spread across Europe. "
)
VARIANTS = ("off", "on", "generate")


def _prompt(engine: object, length: int) -> list[int]:
    """Exactly `length` token ids of repeated English text (starting with the model's own special tokens)."""
    ids: list[int] = engine.encode(TEXT * (1 + length // 20))  # type: ignore[attr-defined]
    return ids[:length]


def child(model: str, device: str, length: int, tokens: int, variant: str) -> dict[str, object]:
    """One configuration in this process: load, prefill `length` tokens, decode `tokens`; returns timings and RSS."""
    import resource

    import torch

    from llmscope.engines.hf import HFEngine
    from llmscope.trace import CaptureOptions

    capture = CaptureOptions() if variant == "on" else CaptureOptions(False, False, False, False)
    engine = HFEngine.load(model, device=device, capture=capture)
    ids = _prompt(engine, min(length, engine.info.max_context - tokens - 2))  # room for the decoded tokens
    result: dict[str, object] = {"device": engine.info.device, "dtype": engine.info.dtype, "tokens": len(ids)}
    if variant == "generate":
        from transformers import LogitsProcessor, LogitsProcessorList

        class Stamp(LogitsProcessor):
            """Records when generate asks for each token's scores: the gaps are its per-token decode times."""

            def __init__(self) -> None:
                self.times: list[float] = []

            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
                self.times.append(time.perf_counter())
                return scores

        stamp = Stamp()
        inputs = torch.tensor([ids], device=engine.device.device)
        with torch.inference_mode():
            started = time.perf_counter()
            engine.model.generate(
                inputs,
                do_sample=False,
                max_new_tokens=tokens + 1,
                min_new_tokens=tokens + 1,
                top_k=None,
                top_p=None,
                logits_processor=LogitsProcessorList([stamp]),
            )
        result["prefill_s"] = stamp.times[0] - started
        result["decode_ms"] = statistics.median(b - a for a, b in zip(stamp.times, stamp.times[1:])) * 1000
    else:
        started = time.perf_counter()
        trace = engine.prefill(ids)
        result["prefill_s"] = time.perf_counter() - started
        token = int(trace.logits.argmax())
        times = []
        for _ in range(tokens):
            started = time.perf_counter()
            token = int(engine.step(token).logits.argmax())
            times.append(time.perf_counter() - started)
        result["decode_ms"] = statistics.median(times) * 1000
        result["rows"] = 0 if trace.attention is None else int(trace.attention.shape[2])
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _run_child(args: argparse.Namespace, length: int, variant: str) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", variant, "--model", args.model, "--device", args.device]
    command += ["--lengths", str(length), "--tokens", str(args.tokens)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["killed"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:80]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--lengths", default=DEFAULT_LENGTHS, help=f"comma list; the full run is {FULL_LENGTHS}")
    parser.add_argument("--tokens", type=int, default=16, help="decode tokens per run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    lengths = [int(value) for value in args.lengths.split(",")]
    if args.child:
        print(json.dumps(child(args.model, args.device, lengths[0], args.tokens, args.child)))
        return
    load = os.getloadavg()[0]
    print(f"model {args.model}, {args.tokens} decode tokens, median of {args.repeats}, load average {load:.1f}")
    header = f"{'tokens':>6} {'prefill on':>10} {'off':>7} {'ratio':>6} {'decode on':>9} {'generate':>8} {'ratio':>6}"
    print(header + f" {'RSS on':>7} {'off':>7} {'ratio':>6} {'rows':>5}")
    for length in lengths:
        samples: dict[str, list[dict[str, object]]] = {variant: [] for variant in VARIANTS}
        for _ in range(args.repeats):
            for variant in VARIANTS:
                samples[variant].append(_run_child(args, length, variant))
        errors = [s["error"] for runs in samples.values() for s in runs if "error" in s]
        if errors:
            print(f"{length:>6} failed: {errors[0]}")
            continue

        def median(variant: str, key: str) -> float:
            return statistics.median(float(s[key]) for s in samples[variant])  # type: ignore[arg-type]

        on_p, off_p = median("on", "prefill_s"), median("off", "prefill_s")
        on_d, gen_d = median("on", "decode_ms"), median("generate", "decode_ms")
        on_r, off_r = median("on", "rss_mib"), median("off", "rss_mib")
        rows = int(median("on", "rows"))
        print(
            f"{length:>6} {on_p:9.2f}s {off_p:6.2f}s {on_p / off_p:5.2f}x {on_d:7.1f}ms {gen_d:6.1f}ms "
            f"{on_d / gen_d:5.2f}x {on_r:6.0f}M {off_r:6.0f}M {on_r / off_r:5.2f}x {rows:>5}",
            flush=True,
        )
    first = samples["on"][0]
    print(f"device {first.get('device')} {first.get('dtype')}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
