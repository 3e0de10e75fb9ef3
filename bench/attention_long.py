"""Benchmark the attention pane at long context: UI time per step with an 8,192-key AttentionContent.

Usage: `python bench/attention_long.py [--keys 8192] [--repeats 7]` (a 300-key baseline prints first). No model: the pane is fed synthetic softmax
rows shaped like SmolLM2-135M (30 layers × 9 heads, 3 KV heads) and gpt-oss-20b (24 × 64, 8 KV heads, with a
learned sink). Each figure is the median wall time from assigning the content (or pressing a key) to a full
repaint of the screen (Textual's compositor), i.e. what the pane adds to every step; the target is < 30 ms.
Keys call the pane's action (what the key runs) and repaint, without the pilot's frame pacing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES = {
    "SmolLM2-135M (30 × 9 heads, 3 KV)": (30, 9, 3, False),
    "gpt-oss-20b (24 × 64 heads, 8 KV, sink)": (24, 64, 8, True),
}


def softmax_rows(layers: int, heads: int, rows: int, keys: int, seed: int) -> np.ndarray:
    """Causal softmax rows (the last `rows` positions) with a sink on key 0, float32 [layers, heads, rows, keys]."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(0.0, 1.5, (layers, heads, rows, keys)).astype(np.float32)
    scores[..., 0] += 4.0
    positions = np.arange(keys - rows, keys)[:, None]
    scores = np.where(np.arange(keys)[None, :] <= positions, scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


async def measure(shape: tuple[int, int, int, bool], keys: int, rows: int, repeats: int, size: tuple[int, int]):
    """Median ms per new step in the grid and in the zoom, and per zoom key ('-', '>', '+'), at `size`."""
    from textual.app import App, ComposeResult

    from llmscope.panes import AttentionContent
    from llmscope.widgets.attention.pane import AttentionPane

    layers, heads, kv_heads, sink = shape
    labels = tuple(f"␣t{i}" for i in range(keys))
    base = softmax_rows(layers, heads, rows, keys, seed=0)
    sinks = np.full((layers, heads, rows), 0.2, dtype=np.float32) if sink else None

    class Host(App):
        def compose(self) -> ComposeResult:
            yield AttentionPane(id="pane")

    host = Host()
    results: dict[str, float] = {}
    async with host.run_test(size=size) as pilot:
        pane = host.query_one(AttentionPane)
        pane.focus()

        async def repaint() -> None:
            await pilot.pause(0)
            host.screen._compositor.render_update(full=True)

        async def steps() -> float:
            times = []
            for repeat in range(repeats):
                weights = base * np.float32(1 + repeat * 1e-3)  # new data every step: no cache hit
                started = time.perf_counter()
                pane.content = AttentionContent(
                    weights, keys - rows, labels, kv_heads, step_index=repeat, attention_sink=sinks
                )
                await repaint()
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times[1:])  # the first includes one-off layout work

        results["new step, grid"] = await steps()
        await pilot.press("enter")
        await repaint()
        results["new step, zoom (1 key per column)"] = await steps()

        # Keys run their actions directly, then a full repaint: pilot.press adds Textual's own frame pacing (a fixed
        # ~40–65 ms here at any context length), which is not the pane's work.
        def at_first_key() -> None:
            pane.keys_per_column = 1
            pane.cursor = (pane.cursor[0], 0)

        actions = (
            ("'-' (twice the keys per column)", lambda: pane.action_zoom_keys(-1)),
            ("PgDn (page the window)", lambda: pane.action_page_keys(1)),
        )
        for label, action in actions:
            times = []
            for _ in range(repeats):
                at_first_key()  # each key starts from one key per column at key 0, so it always has work to do
                await repaint()
                started = time.perf_counter()
                action()
                await repaint()
                times.append((time.perf_counter() - started) * 1000)
            results[f"key {label}"] = statistics.median(times)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=8192)
    parser.add_argument("--baseline-keys", type=int, default=300, help="a short context to compare with")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=48)
    args = parser.parse_args()
    size = (args.width, args.height)
    print(f"attention pane, {size[0]}×{size[1]} terminal, median of {args.repeats} (ms, wall):")
    name, shape = next(iter(SHAPES.items()))
    results = asyncio.run(measure(shape, args.baseline_keys, 1, args.repeats, size))
    figures = " · ".join(f"{label} {ms:.1f}" for label, ms in results.items())
    print(f"  baseline, {args.baseline_keys} keys: {name}, decode step: {figures}")
    print(f"  {args.keys} keys:")
    for name, shape in SHAPES.items():
        for rows, step in ((1, "decode step"), (32, "prefill, last 32 rows kept")):
            results = asyncio.run(measure(shape, args.keys, rows, args.repeats, size))
            figures = " · ".join(f"{label} {ms:.1f}" for label, ms in results.items())
            print(f"  {name}, {step}: {figures}")


if __name__ == "__main__":
    main()
