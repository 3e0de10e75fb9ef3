"""Numbers for demo captions, read off the live view so a caption never states an invented figure."""

from __future__ import annotations

import numpy as np

from llmscope import kvcalc, moe_stats
from llmscope.attention_stats import sink_figures
from llmscope.demo.template import render
from llmscope.format import format_bytes, format_probability, printable_text, visible_token_text
from llmscope.live import LiveView


def _token(view: LiveView, token_id: int) -> str:
    """A candidate's text as every pane shows it, quoted ('␣Paris')."""
    return f"'{visible_token_text(view.token_texts.get(token_id, '?'))}'"


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
        "text": printable_text("".join(token.text for token, _ in view.generated)),
    }
    sample = view.sample
    if sample is not None:
        chosen = sample.token_id
        values.update(
            chosen=_token(view, chosen),
            chosen_p=format_probability(float(sample.final_probs[chosen])),
            chosen_raw_p=format_probability(float(sample.raw_probs[chosen])),
            entropy=f"{sample.entropy_raw:.2f}",
            entropy_final=f"{sample.entropy_final:.2f}",
            kept=f"{sample.stages[-1].kept:,}",
        )
        for rank, token_id in enumerate(sample.top(3), start=1):
            values[f"top{rank}"] = _token(view, token_id)
            values[f"top{rank}_p"] = format_probability(float(sample.raw_probs[token_id]))
        for stage in ("top_k", "top_p", "min_p"):
            values[f"kept_{stage}"] = f"{sample.stage(stage).kept:,}"
    if view.kv_history:
        kv = view.kv_history[-1]
        values.update(
            kv_bytes=format_bytes(kv.total_bytes),
            kv_tokens=str(kv.tokens),
            kv_per_token=format_bytes(kv.total_bytes / max(1, kv.tokens)),
            kv_formula=kv.formula_text(),
        )
        mha_bytes = kvcalc.formula_bytes(
            info.num_layers, info.num_heads, info.head_dim, kv.tokens, kv.bytes_per_element
        )
        values.update(kv_mha_bytes=format_bytes(mha_bytes), kv_mha_ratio=f"{mha_bytes / max(1, kv.total_bytes):.0f}×")
    attention = view.current.attention if view.current is not None else None
    if attention is not None:
        sinks = sink_figures(attention)  # the newest query row's weight on key 0, as the attention pane shows it
        values.update(
            sink=f"{sinks.mean:.2f}",
            sink_max=f"{sinks.strongest:.2f}",
            sink_head=f"L{sinks.layer} H{sinks.head}",
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
