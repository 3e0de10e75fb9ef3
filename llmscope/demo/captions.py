"""Numbers for demo captions, read off the live view so a caption never states an invented figure."""

from __future__ import annotations

import numpy as np

from llmscope import kvcalc, moe_stats
from llmscope.demo.template import render
from llmscope.live import LiveView, visible_label


def _percent(probability: float) -> str:
    return f"{probability * 100:.1f}%" if probability >= 0.001 else f"{probability * 100:.2g}%"


def _bytes(count: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count:.0f} B"


def caption_values(view: LiveView) -> dict[str, str]:
    """Every caption placeholder's value for this view ('–' where the run has no such figure)."""
    info = view.info
    values: dict[str, str] = {
        "model": info.name,
        "layers": str(info.num_layers),
        "heads": str(info.num_heads),
        "kv_heads": str(info.num_kv_heads),
        "steps": str(view.step_count),
        "vocab": f"{info.vocab_size:,}",
        "knobs": view.config.describe(),
        "prompt_tokens": str(len(view.prompt_tokens)),
        "text": "".join(token.text for token, _ in view.generated),
    }
    sample = view.sample
    if sample is not None:
        chosen = sample.token_id
        values.update(
            chosen=f"'{visible_label(view.token_texts.get(chosen, '?'))}'",
            chosen_p=_percent(float(sample.final_probs[chosen])),
            chosen_raw_p=_percent(float(sample.raw_probs[chosen])),
            entropy=f"{sample.entropy_raw:.2f}",
            entropy_final=f"{sample.entropy_final:.2f}",
            kept=f"{sample.stages[-1].kept:,}",
        )
        for rank, token_id in enumerate(sample.top(3), start=1):
            values[f"top{rank}"] = f"'{visible_label(view.token_texts.get(token_id, '?'))}'"
            values[f"top{rank}_p"] = _percent(float(sample.raw_probs[token_id]))
        for stage in ("top_k", "top_p", "min_p"):
            values[f"kept_{stage}"] = f"{sample.stage(stage).kept:,}"
    if view.kv_history:
        kv = view.kv_history[-1]
        values.update(
            kv_bytes=_bytes(kv.total_bytes),
            kv_tokens=str(kv.tokens),
            kv_per_token=_bytes(kv.total_bytes / max(1, kv.tokens)),
            kv_formula=kv.formula_text(),
        )
        mha = kvcalc.KVShape(info.name, info.num_layers, info.num_heads, info.num_heads, info.head_dim)
        mha_bytes = 2 * mha.num_layers * mha.num_kv_heads * mha.head_dim * kv.tokens * kv.bytes_per_element
        values.update(kv_mha_bytes=_bytes(mha_bytes), kv_mha_ratio=f"{mha_bytes / max(1, kv.total_bytes):.0f}×")
    attention = view.current.attention if view.current is not None else None
    if attention is not None:
        first_token = attention[:, :, -1, 0]  # weight of the newest query row on key 0, [layers, heads]
        layer, head = np.unravel_index(int(np.argmax(first_token)), first_token.shape)
        values.update(
            sink=f"{float(first_token.mean()):.2f}",
            sink_max=f"{float(first_token.max()):.2f}",
            sink_head=f"L{layer} H{head}",
        )
    if view.routing is not None:
        load = moe_stats.expert_load(view.routing.experts, info.num_experts)
        layer, expert = np.unravel_index(int(np.argmax(load)), load.shape)
        values["busiest_expert"] = (
            f"expert {expert} takes {load[layer, expert] * 100:.0f}% of layer "
            f"{view.routing.layers[layer]}'s routing slots (even would be {100 / info.num_experts:.0f}%)"
        )
    return values


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "–"


def fill_caption(template: str, view: LiveView | None) -> str:
    """The caption with the run's numbers substituted ('–' for figures this run does not have)."""
    if not template:
        return ""
    values = _Missing(caption_values(view)) if view is not None else _Missing()
    return render(template, values)
