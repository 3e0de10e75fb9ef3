"""Numbers for demo captions, read off the live view so a caption never states an invented figure."""

from __future__ import annotations

import numpy as np

from llmscope import attention_stats, kvcalc, moe_stats
from llmscope.attention_stats import sink_figures
from llmscope.demo.template import render
from llmscope.format import format_bytes, format_probability, printable_text, visible_token_text
from llmscope.live import LiveView


def _token(view: LiveView, token_id: int) -> str:
    """A candidate's text as every pane shows it, quoted ('␣Paris')."""
    return f"'{visible_token_text(view.token_texts.get(token_id, '?'))}'"


def caption_values(view: LiveView, head: tuple[int, int] | None = None) -> dict[str, str]:
    """Every caption placeholder's value for this view ('–' where the run has no such figure).

    `head` is the (layer, head) selected in the attention pane, which the head_* values describe.
    """
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
        "gqa_group": f"{info.num_heads // max(1, info.num_kv_heads)}",
        "text": printable_text("".join(token.text for token, _ in view.generated)).replace("\n", "⏎"),
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
        values["kv_growth"] = kv_growth_text(view)
        values.update(kv_mha_bytes=format_bytes(mha_bytes), kv_mha_ratio=f"{mha_bytes / max(1, kv.total_bytes):.0f}×")
    current = view.current
    attention = current.attention if current is not None else None
    if current is not None and attention is not None:
        sinks = sink_figures(attention)  # the newest query row's weight on key 0, as the attention pane shows it
        values.update(
            sink=f"{sinks.mean:.2f}",
            sink_max=f"{sinks.strongest:.2f}",
            sink_head=f"L{sinks.layer} H{sinks.head}",
            sink_even=f"{attention_stats.even_spread_sink(current.position):.2f}",
        )
        values.update(induction_values(view, current.attention_query_start, head))
    values.update(lens_values(view))
    if info.is_moe:
        values.update(experts=str(info.num_experts), experts_per_token=str(info.experts_per_token))
    if view.routing is not None:
        load = moe_stats.expert_load(view.routing.experts, info.num_experts)
        layer, expert = np.unravel_index(int(np.argmax(load)), load.shape)
        values["busiest_expert"] = (
            f"expert {expert} takes {load[layer, expert] * 100:.0f}% of layer "
            f"{view.routing.layers[layer]}'s routing slots (even would be {100 / info.num_experts:.0f}%)"
        )
    return values


def kv_growth_text(view: LiveView) -> str:
    """What each step since the prefill added to the cache: one figure when every step added the same."""
    totals = [kv.total_bytes for kv in view.kv_history]
    added = {later - earlier for earlier, later in zip(totals, totals[1:])}
    if not added:
        return "no step since the prefill has added to it yet"
    if len(added) == 1:
        return f"every step since the prefill added {format_bytes(added.pop())}"
    return f"the steps since the prefill added between {format_bytes(min(added))} and {format_bytes(max(added))}"


def induction_values(view: LiveView, query_start: int, head: tuple[int, int] | None) -> dict[str, str]:
    """Induction figures of this step's attention rows, and what the selected head's newest row looks at."""
    attention = view.current.attention if view.current is not None else None
    assert attention is not None, "called only when the step has attention"
    ids = [token.id for token in view.prompt_tokens] + [token.id for token, _ in view.generated[:-1]]
    labels = view.context_labels

    def key(position: int) -> str:
        return f"key {position} '{labels[position]}'" if position < len(labels) else f"key {position}"

    scores, rows = attention_stats.induction_scores(attention, query_start, ids)
    copies, chances = attention_stats.copied_tokens(ids[: len(view.prompt_tokens)], [t.id for t, _ in view.generated])
    values: dict[str, str] = {"copied": f"{copies} of {chances}"} if chances else {}
    if rows:
        best_layer, best_head = np.unravel_index(int(np.argmax(scores)), scores.shape)
        values["best_induction"] = f"L{best_layer} H{best_head} ({scores[best_layer, best_head]:.2f})"
        values["induction_rows"] = str(rows)
    if head is None:
        return values
    layer, number = head
    if not (0 <= layer < attention.shape[0] and 0 <= number < attention.shape[1]):
        return values
    focus = attention_stats.head_focus(attention, query_start, ids, layer, number)
    query = f"'{labels[focus.query]}'" if focus.query < len(labels) else f"position {focus.query}"
    strongest = f"its strongest weight, {focus.strongest_weight:.2f}, is on {key(focus.strongest_key)}"
    if focus.target is None:
        sentence = f"{strongest}; {query} has no earlier copy to follow"
    elif focus.is_induction:
        sentence = f"{strongest}: the token right after the earlier copy of {query}"
    else:
        sentence = (
            f"{strongest}, not on {key(focus.target)} right after the earlier copy of {query} "
            f"({focus.target_weight:.2f})"
        )
    values.update(head=f"L{layer} H{number}", query=query, head_focus=sentence)
    if rows:
        values["head_induction"] = f"{scores[layer, number]:.2f}"
    return values


def layer_name(row: int) -> str:
    """A lens row as captions name it: 'the embeddings' for row 0, else 'layer N'."""
    return "the embeddings" if row == 0 else f"layer {row}"


def lens_values(view: LiveView) -> dict[str, str]:
    """Logit-lens figures of the step shown: where its chosen token forms, and what the middle layer guessed."""
    content = view.lens
    if content is None or not content.lenses:
        return {}
    lens, chosen = content.lenses[content.selected], content.chosen_ids[content.selected]
    if lens.chosen_rank is None or lens.chosen_prob is None:
        return {}
    last = lens.num_rows - 1
    middle = last // 2
    first, settled = lens.first_top1_layer(), lens.settled_layer()
    texts = content.token_texts
    marks = sorted({last // 3, 2 * last // 3, max(1, last - 5), max(1, last - 2), last})
    return {
        "lens_token": f"'{texts.get(chosen, '?')}'",
        "lens_first": layer_name(first) if first is not None else "no layer",
        "lens_settled": layer_name(settled) if settled is not None else "no layer",
        "lens_mid_layer": str(middle),
        "lens_mid_top1": f"'{texts.get(int(lens.top_ids[middle, 0]), '?')}'",
        "lens_mid_top1_p": format_probability(float(lens.top_probs[middle, 0])),
        "lens_mid_rank": f"{int(lens.chosen_rank[middle]):,}",
        "lens_final_p": format_probability(float(lens.chosen_prob[last])),
        "lens_ranks": " → ".join(f"{int(lens.chosen_rank[row]):,} at {layer_name(row)}" for row in marks),
    }


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "–"


def fill_caption(template: str, view: LiveView | None, head: tuple[int, int] | None = None) -> str:
    """The caption with the run's numbers substituted ('–' for figures this run does not have)."""
    if not template:
        return ""
    values = _Missing(caption_values(view, head)) if view is not None else _Missing()
    return render(template, values)
