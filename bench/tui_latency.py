"""Benchmark the playground: launch to first frame, step key to repainted frame, attention grid render.

Usage: `python bench/tui_latency.py --model smollm2 --steps 10` (also try `--model tiny-moe`).
"Key to frame minus forward" is what the UI adds on top of the model's own forward pass:
sampler stages, view building, widget updates and the repaint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIRST_FRAME_SCRIPT = """
import os, sys, time
started = float(sys.argv[1])
from llmscope.tui.app import LLMScopeApp
import asyncio
def never_ready(progress):
    time.sleep(3600)
app = LLMScopeApp(never_ready, model_label="x", deterministic=True)
async def main():
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0)
        print("FIRST_FRAME_MS", (time.time() - started) * 1000, "TORCH", "torch" in sys.modules, flush=True)
        os._exit(0)  # the loader thread sleeps forever on purpose
asyncio.run(main())
"""


def launch_to_first_frame_ms() -> float:
    """Wall time from spawning Python to the app's first mounted frame (no model needed for that)."""
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", FIRST_FRAME_SCRIPT, str(started)], capture_output=True, text=True, timeout=120
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("FIRST_FRAME_MS"))
    return float(line.split()[1])


async def step_latencies(model: str, steps: int) -> list[tuple[str, float, float]]:
    from llmscope.tui.app import LLMScopeApp
    from llmscope.tui.engine_factory import hf_engine_factory

    class TimedApp(LLMScopeApp):
        """The playground, timing each action from its key to the repainted frame (a benchmark probe, not app code)."""

        frame_latencies: list[tuple[str, float, float]] = []
        started: float | None = None

        def _engine_action(self, label, action) -> None:  # type: ignore[no-untyped-def]
            self.started = time.perf_counter()
            super()._engine_action(label, action)

        def on_view_updated(self, message) -> None:  # type: ignore[no-untyped-def]
            # Textual also runs LLMScopeApp.on_view_updated (which draws) right after this one.
            if self.started is None or message.action == "run":
                return
            started, self.started = self.started, None
            view = message.view
            forward_ms = view.current.forward_ms if view.current and message.action in ("step", "prefill") else 0.0
            self.call_after_refresh(
                lambda: self.frame_latencies.append(
                    (message.action, (time.perf_counter() - started) * 1000, forward_ms)
                )
            )

    app = TimedApp(hf_engine_factory(model), model_label=model)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.view is None:
            await pilot.pause(0.05)
        for pane in ("2", "3", "4", "5"):
            await pilot.press(pane)
            for _ in range(steps):
                count = app.view.step_count
                before = len(app.frame_latencies)
                await pilot.press("space")
                while app.view.step_count == count or len(app.frame_latencies) == before:
                    await pilot.pause(0.001)
                await pilot.pause(0.05)
        return [entry for entry in app.frame_latencies if entry[0] == "step"]


def attention_grid_ms(layers: int, heads: int, kv_heads: int, keys: int, repeats: int = 5) -> float:
    """Render the attention grid renderable for one query row over `keys` keys, SmolLM2-sized."""
    import numpy as np
    from rich.console import Console

    from llmscope.panes import AttentionContent
    from llmscope.widgets.attention.pane import AttentionPane

    rng = np.random.default_rng(0)
    weights = rng.random((layers, heads, 1, keys)).astype(np.float32)
    weights /= weights.sum(-1, keepdims=True)
    labels = [f"t{i}" for i in range(keys)]
    console = Console(width=100, height=40, file=open(os.devnull, "w"), color_system="truecolor")

    async def measure() -> float:
        from textual.app import App

        class Host(App):
            def compose(self):
                yield AttentionPane(id="pane")

        host = Host()
        async with host.run_test(size=(100, 40)) as pilot:
            pane = host.query_one(AttentionPane)
            times = []
            for repeat in range(repeats):
                weights_now = weights * (1 + repeat * 1e-3)  # new data each time: no cache hit
                started = time.perf_counter()
                pane.content = AttentionContent(
                    weights_now,
                    query_start=keys - 1,
                    token_labels=tuple(labels),
                    num_kv_heads=kv_heads,
                    step_index=repeat,
                )
                await pilot.pause(0)
                host.screen._compositor.render_update(full=True)
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times)

    del console
    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    frames = [launch_to_first_frame_ms() for _ in range(3)]
    print(f"launch → first frame: median {statistics.median(frames):.0f} ms over 3 launches (torch not imported yet)")
    latencies = asyncio.run(step_latencies(args.model, args.steps))
    overheads = [total - forward for _, total, forward in latencies]
    print(
        f"{args.model}: step key → repainted frame: median {statistics.median([t for _, t, _ in latencies]):.1f} ms; "
        f"forward median {statistics.median([f for _, _, f in latencies]):.1f} ms"
    )
    print(
        f"{args.model}: UI overhead (frame − forward): median {statistics.median(overheads):.1f} ms, "
        f"max {max(overheads):.1f} ms over {len(overheads)} steps on panes 2–5"
    )
    print(
        f"attention grid render, 30 layers × 9 heads × 300 keys: {attention_grid_ms(30, 9, 3, 300):.1f} ms (median of 5)"
    )


if __name__ == "__main__":
    main()
