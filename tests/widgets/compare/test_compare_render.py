"""The compare screen's renderables on real lane views: attention shapes, KV, MoE, aligned table; import rules."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from llmscope.compare.live import CompareController
from llmscope.compare.presets import LaneSpec
from llmscope.sampler import SamplerConfig
from llmscope.widgets.compare.render import (
    HeatStrip,
    aligned_table,
    attention_renderable,
    history_table,
    kv_text,
    moe_renderable,
    summary_text,
)

PROMPT = "Hello, how are you?"


def plain(renderable, width: int = 150) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(renderable)
    return console.export_text()


def controller(tiny_model_dirs, kind_a: str, kind_b: str, prompt_b: str = PROMPT) -> CompareController:
    from llmscope.engines.hf import HFEngine

    specs = (
        LaneSpec(kind_a, PROMPT, config=SamplerConfig(temperature=0.2)),
        LaneSpec(kind_b, prompt_b, config=SamplerConfig(temperature=1.5)),
    )
    engines = (HFEngine.load(str(tiny_model_dirs[kind_a])), HFEngine.load(str(tiny_model_dirs[kind_b])))
    return CompareController(specs, engines)


def test_attention_side_by_side_with_difference_and_shape_reasons(tiny_model_dirs):
    view = controller(tiny_model_dirs, "llama-gqa", "mixtral").run(3)
    lane_a, lane_b = view.lanes
    text = plain(attention_renderable(view.lanes, 2, layer=1, head=3))
    assert "layer 1 head 3" in text and "B − A" in text and "largest |Δ|" in text
    row_a = lane_a.traces[2].attention[1, 3, -1]
    row_b = lane_b.traces[2].attention[1, 3, -1]
    assert f"{float(np.max(np.abs(row_b - row_a))):.3f}" in text
    missing = plain(attention_renderable(view.lanes, 2, layer=2, head=0))  # mixtral has two layers, llama three
    assert "lane B (mixtral) has 2 layers × 4 heads: no layer 2 head 0" in missing and "B − A" not in missing
    assert "lane B (mixtral) is dense" not in plain(moe_renderable(view.lanes, 2))
    assert "lane A (llama-gqa) is dense" in plain(moe_renderable(view.lanes, 2))


def test_contexts_of_different_length_get_no_difference_strip(tiny_model_dirs):
    view = controller(tiny_model_dirs, "llama-gqa", "llama-gqa", prompt_b="Hello, how are you? Fine.").start()
    text = plain(attention_renderable(view.lanes, 0, layer=0, head=0))
    keys_a, keys_b = (lane.traces[0].attention.shape[-1] for lane in view.lanes)
    assert keys_a != keys_b and f"A attends over {keys_a} keys, B over {keys_b}" in text


def test_kv_moe_summary_and_tables_on_two_moe_lanes(tiny_model_dirs):
    view = controller(tiny_model_dirs, "mixtral", "qwen2-moe-norm").run(3)
    kv = plain(kv_text(view.lanes, 2))
    sizes = [lane.traces[2].kv.total_bytes for lane in view.lanes]
    assert "A: " in kv and "B: " in kv and f"({sizes[1] / sizes[0]:.2f}×)" in kv
    moe = plain(moe_renderable(view.lanes, 2))
    assert "layer 0" in moe and "layer 1" in moe and "different models" in moe
    expert = int(view.lanes[0].traces[2].router.experts[0, -1, 0])
    assert f" {expert} " in moe.splitlines()[1]
    record = view.records[2]
    summary = plain(summary_text(view, record))
    assert "KL(A‖B)" in summary and "bits" in summary and "first divergence" in summary
    table = plain(aligned_table(record, 8))
    assert "p_A" in table and "p_B" in table and "Δ" in table and ("◀A" in table or record.rows[8:])
    history = plain(history_table(view.records, 2, 10))
    assert "◆ first" in history and len([line for line in history.splitlines() if line.strip()]) == 2 + 3


def test_heat_strip_fills_the_width_and_pools_long_rows():
    short = plain(HeatStrip("A", np.array([0.1, 0.9])), width=40)
    assert short.startswith("A     ") and len(short.rstrip("\n")) <= 40
    pooled = plain(HeatStrip("A", np.linspace(0, 1, 500)), width=60)
    assert len(pooled.rstrip("\n")) <= 60


def test_compare_core_imports_neither_torch_nor_textual():
    modules = [
        "llmscope.divergence",
        "llmscope.compare.lanes",
        "llmscope.compare.presets",
        "llmscope.compare.live",
        "llmscope.cli.compare",
    ]
    script = "import json, sys\n" + "".join(f"import {m}\n" for m in modules) + "print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.strip().splitlines()[-1])}
    assert not loaded & {"torch", "transformers", "textual"}


@pytest.mark.parametrize("module", ["llmscope.widgets.compare.render", "llmscope.widgets.compare.pane"])
def test_compare_widgets_import_no_torch(module):
    script = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert not {name.split(".")[0] for name in json.loads(result.stdout.strip().splitlines()[-1])} & {
        "torch",
        "transformers",
    }
