"""Every shipped demo's captions checked against the run (issue 12): a teacher can trust what a slide says.

Each demo is played headless on its real model. At every step, each placeholder its caption uses is recomputed
here from the run's raw data (logits, attention, KV statistics, routing) by independent code, and the claims the
slides make in words (a sink, a sharper distribution, a copy) are checked as facts of that run.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
import pytest

from llmscope.demo.captions import caption_values, fill_caption
from llmscope.demo.player import DemoPlayer
from llmscope.demo.script import CAPTION_FIELDS, DemoStep, find_demo, shipped_demos
from llmscope.format import format_bytes, format_probability, visible_token_text
from llmscope.live import LiveController, LiveView
from llmscope.registry import ModelNotFoundError, resolve


@dataclass(frozen=True)
class Slide:
    step: DemoStep
    view: LiveView
    head: tuple[int, int]
    """The (layer, head) selected in the attention pane at this step."""
    values: dict[str, str]


def play(name: str) -> list[Slide]:
    """Play a shipped demo through the live controller, as the app does, keeping every step's view."""
    from llmscope.engines.hf import HFEngine

    script = find_demo(name)
    try:
        resolve(script.model)
    except ModelNotFoundError as missing:
        pytest.skip(str(missing))
    from llmscope.trace import CaptureOptions

    controller = LiveController(HFEngine.load(script.model, capture=CaptureOptions(logit_lens=script.needs_lens)))
    player = DemoPlayer(script)
    slides: list[Slide] = []
    layer = head = 0
    for index, step in enumerate(script.steps):
        view = player.run_to(controller, index)
        assert view is not None
        layer = step.layer if step.layer is not None else layer
        head = step.head if step.head is not None else head
        slides.append(Slide(step, view, (layer, head), caption_values(view, (layer, head))))
    return slides


_PLAYED: dict[str, list[Slide]] = {}


def played(name: str) -> list[Slide]:
    if name not in _PLAYED:
        _PLAYED[name] = play(name)
    return _PLAYED[name]


def used(step: DemoStep) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(step.caption) if name}


# ------------------------------------------------------------------------------ independent references
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    finite = np.asarray(logits, dtype=np.float64) / temperature
    shifted = np.exp(finite - finite.max())
    return shifted / shifted.sum()


def entropy(probs: np.ndarray) -> float:
    nonzero = probs[probs > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def hf_order(logits: np.ndarray, view: LiveView, config) -> np.ndarray:
    """transformers' order: repetition penalty on every context token, temperature, top-k, top-p, min-p."""
    scores = np.asarray(logits, dtype=np.float64).copy()
    if config.repetition_penalty != 1.0:
        seen = sorted({t.id for t in view.prompt_tokens} | {t.id for t, _ in view.generated[:-1]})
        scores[seen] = np.where(
            scores[seen] > 0, scores[seen] / config.repetition_penalty, scores[seen] * config.repetition_penalty
        )
    probs = softmax(scores, config.temperature)
    ranked = np.argsort(-probs, kind="stable")
    keep = np.ones_like(probs, dtype=bool)
    if config.top_k:
        keep &= probs >= probs[ranked[config.top_k - 1]]
    if config.top_p < 1.0:
        cumulative = np.cumsum(probs[ranked])
        nucleus = np.zeros_like(keep)
        nucleus[ranked[: int(np.searchsorted(cumulative, config.top_p)) + 1]] = True
        keep &= nucleus
    if config.min_p:
        keep &= probs >= config.min_p * probs.max()
    final = np.where(keep, probs, 0.0)
    return final / final.sum()


def token(view: LiveView, token_id: int) -> str:
    return f"'{visible_token_text(view.token_texts[token_id])}'"


def context_ids(view: LiveView) -> list[int]:
    return [t.id for t in view.prompt_tokens] + [t.id for t, _ in view.generated[:-1]]


def earlier_successor(ids: list[int], position: int) -> int | None:
    """Reference induction target: scan backwards for the same token, take the next position."""
    matches = [earlier for earlier in range(position) if ids[earlier] == ids[position]]
    if not matches or matches[-1] + 1 >= position:
        return None
    return matches[-1] + 1


def reference_values(slide: Slide) -> dict[str, str]:
    """What each placeholder must say, recomputed from the raw run."""
    view, info = slide.view, slide.view.info
    current = view.current
    assert current is not None
    probs = softmax(current.logits)
    ranked = np.argsort(-probs, kind="stable")
    sample = view.sample
    assert sample is not None
    config = view.config
    reference = {
        "model": info.name,
        "layers": str(info.num_layers),
        "heads": str(info.num_heads),
        "kv_heads": str(info.num_kv_heads),
        "vocab": f"{info.vocab_size:,}",
        "prompt_tokens": str(len(view.prompt_tokens)),
        "steps": str(len(view.generated)),
        "knobs": config.describe(),
        "gqa_group": str(info.num_heads // info.num_kv_heads),
        "chosen": token(view, sample.token_id),
        "chosen_raw_p": format_probability(float(probs[sample.token_id])),
        "entropy": f"{entropy(probs):.2f}",
    }
    for rank in range(3):
        reference[f"top{rank + 1}"] = token(view, int(ranked[rank]))
        reference[f"top{rank + 1}_p"] = format_probability(float(probs[ranked[rank]]))
    if config.temperature > 0 and not (config.frequency_penalty or config.presence_penalty):
        final = hf_order(current.logits, view, config)
        reference["entropy_final"] = f"{entropy(final):.2f}"
        reference["chosen_p"] = format_probability(float(final[sample.token_id]))
    if config.temperature == 1.0 and config.repetition_penalty == 1.0:
        if config.top_k:
            reference["kept_top_k"] = f"{int((probs >= probs[ranked[config.top_k - 1]]).sum()):,}"
        if config.top_p < 1.0:
            cumulative = np.cumsum(probs[ranked])
            reference["kept_top_p"] = f"{int(np.searchsorted(cumulative, config.top_p) + 1):,}"
        if config.min_p:
            reference["kept_min_p"] = f"{int((probs >= config.min_p * probs.max()).sum()):,}"
    if view.kv_history:
        kv = view.kv_history[-1]
        per_token = 2 * info.num_layers * info.num_kv_heads * info.head_dim * kv.bytes_per_element
        fed = len(view.prompt_tokens) + len(view.generated) - 1
        reference.update(
            kv_tokens=str(fed),
            kv_bytes=format_bytes(per_token * fed),
            kv_per_token=format_bytes(per_token),
            kv_mha_bytes=format_bytes(
                2 * info.num_layers * info.num_heads * info.head_dim * kv.bytes_per_element * fed
            ),
            kv_mha_ratio=f"{info.num_heads // info.num_kv_heads}×",
        )
        if len(view.kv_history) > 1:
            reference["kv_growth"] = f"every step since the prefill added {format_bytes(per_token)}"
    if current.attention is not None:
        attention = current.attention
        first_key = attention[:, :, -1, 0]
        layer, head = np.unravel_index(int(np.argmax(first_key)), first_key.shape)
        reference.update(
            sink=f"{first_key.mean():.2f}",
            sink_max=f"{first_key.max():.2f}",
            sink_head=f"L{layer} H{head}",
            sink_even=f"{1 / (current.position + 1):.2f}",
        )
        ids = context_ids(view)
        rows = [
            (row, target)
            for row in range(attention.shape[2])
            if (target := earlier_successor(ids, current.attention_query_start + row)) is not None
        ]
        if rows:
            scores = np.mean([attention[:, :, row, target] for row, target in rows], axis=0)
            best = np.unravel_index(int(np.argmax(scores)), scores.shape)
            reference["best_induction"] = f"L{best[0]} H{best[1]} ({scores[best]:.2f})"
            reference["induction_rows"] = str(len(rows))
            reference["head_induction"] = f"{scores[slide.head]:.2f}"
        all_ids = [t.id for t in view.prompt_tokens] + [t.id for t, _ in view.generated]
        chances = [
            position
            for position in range(len(view.prompt_tokens), len(all_ids))
            if earlier_successor(all_ids, position - 1) is not None
        ]
        if chances:
            copies = sum(all_ids[earlier_successor(all_ids, p - 1)] == all_ids[p] for p in chances)  # type: ignore[index]
            reference["copied"] = f"{copies} of {len(chances)}"
        selected_layer, selected_head = slide.head
        reference["head"] = f"L{selected_layer} H{selected_head}"
        reference["query"] = f"'{view.context_labels[current.position]}'"
    if view.lens is not None:
        reference.update(lens_reference(view))
    if info.is_moe and view.routing is not None:
        reference.update(experts=str(info.num_experts), experts_per_token=str(info.experts_per_token))
        experts = view.routing.experts
        counts = np.stack([np.bincount(layer.ravel(), minlength=info.num_experts) for layer in experts])
        layer, expert = np.unravel_index(int(np.argmax(counts)), counts.shape)
        share = counts[layer, expert] / experts[layer].size
        reference["busiest_expert"] = (
            f"expert {expert} takes {share * 100:.0f}% of layer {view.routing.layers[layer]}'s routing slots "
            f"(even would be {100 / info.num_experts:.0f}%)"
        )
    return reference


_LENS_MODELS: dict[str, object] = {}


def lens_reference(view: LiveView) -> dict[str, str]:
    """The lens figures recomputed from the model itself: hidden states → model.model.norm → lm_head, by hand."""
    import torch
    from transformers import AutoModelForCausalLM

    from llmscope.engines.loading import ensure_converted

    name = view.info.name
    if name not in _LENS_MODELS:
        _LENS_MODELS[name] = AutoModelForCausalLM.from_pretrained(
            ensure_converted(resolve(name)), dtype=torch.float32
        ).eval()
    model = _LENS_MODELS[name]
    ids = context_ids(view)
    chosen = view.generated[-1][0].id
    with torch.no_grad():
        states = model(torch.tensor([ids]), output_hidden_states=True).hidden_states  # type: ignore[operator]
        last = torch.stack([state[0, -1] for state in states])
        normed = torch.cat([model.model.norm(last[:-1]), last[-1:]])  # type: ignore[attr-defined]
        probs = torch.softmax(model.lm_head(normed).double(), dim=-1).numpy()  # type: ignore[attr-defined]
    ranks = (probs > probs[:, chosen : chosen + 1]).sum(axis=1) + 1
    top1 = probs.argmax(axis=1)
    layers = len(probs) - 1
    first = int(np.flatnonzero(ranks == 1)[0])
    settled = layers
    while settled > 0 and ranks[settled - 1] == 1:
        settled -= 1
    middle = layers // 2

    def name_of(row: int) -> str:
        return "the embeddings" if row == 0 else f"layer {row}"

    marks = sorted({layers // 3, 2 * layers // 3, layers - 5, layers - 2, layers})
    return {
        "lens_token": token(view, chosen),
        "lens_first": name_of(first),
        "lens_settled": name_of(settled),
        "lens_mid_layer": str(middle),
        "lens_mid_top1": f"'{visible_token_text(view.lens.token_texts[int(top1[middle])])}'",  # type: ignore[union-attr]
        "lens_mid_top1_p": format_probability(float(probs[middle, top1[middle]])),
        "lens_mid_rank": f"{int(ranks[middle]):,}",
        "lens_final_p": format_probability(float(probs[-1, chosen])),
        "lens_ranks": " → ".join(f"{int(ranks[row]):,} at {name_of(row)}" for row in marks),
    }


def head_focus_claim(slide: Slide) -> bool:
    """Reference for the 'token right after the earlier copy' sentence: the head's newest row peaks there."""
    view = slide.view
    current = view.current
    assert current is not None and current.attention is not None
    layer, head = slide.head
    row = current.attention[layer, head, -1]
    target = earlier_successor(context_ids(view), current.position)
    return target is not None and int(np.argmax(row)) == target


# ------------------------------------------------------------------------------------ the claims in words
CLAIMS = {
    ("attention-sinks-induction", 1): lambda s: float(s.values["sink"]) > 2 * float(s.values["sink_even"]),
    ("attention-sinks-induction", 2): lambda s: (
        s.values["best_induction"].startswith(s.values["head"]) and float(s.values["head_induction"]) > 0.5
    ),
    ("attention-sinks-induction", 3): lambda s: s.values["copied"].split(" of ")[0] == s.values["copied"].split()[-1],
    ("attention-sinks-induction", 4): lambda s: (
        head_focus_claim(s) and "right after the earlier copy" in s.values["head_focus"]
    ),
    ("how-sampling-works", 2): lambda s: float(s.values["entropy_final"]) < float(s.values["entropy"]),
    ("how-sampling-works", 3): lambda s: float(s.values["entropy_final"]) > float(s.values["entropy"]),
    ("how-sampling-works", 4): lambda s: s.values["kept_top_k"] == "5",
    ("how-sampling-works", 7): lambda s: len(s.view.generated) == 13,  # "12 more tokens"
    ("why-the-kv-cache-grows", 1): lambda s: len(s.view.generated) == 11,
    ("why-the-kv-cache-grows", 2): lambda s: "every step" in s.values["kv_growth"],
    ("what-an-moe-router-does", 1): lambda s: len(s.view.generated) == 9,  # "Eight greedy steps later"
    # "the obvious separator forms low in the stack, the number only at the top"
    ("how-the-answer-forms", 3): lambda s: (
        s.values["lens_token"] == "','"
        and int(s.values["lens_first"].split()[-1]) < int(s.values["layers"]) // 3
        and played("how-the-answer-forms")[2].values["lens_first"] == f"layer {s.values['layers']}"
    ),
    ("how-the-answer-forms", 0): lambda s: s.values["lens_first"] == f"layer {s.values['layers']}",
}
"""(demo, step index) → what the slide's words claim, as a fact of the run (numbers are checked separately)."""

DEMOS = [name for name, _, _ in shipped_demos()]


@pytest.mark.smollm
@pytest.mark.parametrize("name", DEMOS)
def test_every_caption_value_is_what_the_run_shows(name):
    for number, slide in enumerate(played(name), start=1):
        reference = reference_values(slide)
        for field in sorted(used(slide.step)):
            assert field in CAPTION_FIELDS
            if field == "text":
                continue  # the generated text is the run itself
            if field == "head_focus":
                continue  # a sentence, checked by its claim below
            if field == "kv_formula":  # the formula with this model's numbers and the measured total
                info, kv = slide.view.info, slide.view.kv_history[-1]
                numbers = (info.num_layers, info.num_kv_heads, info.head_dim, kv.tokens, kv.bytes_per_element)
                formula = slide.values[field]
                assert all(f" {n} " in formula for n in numbers) and formula.endswith(f"= {kv.total_bytes:,} B")
                assert kv.total_bytes == 2 * int(np.prod(numbers)), (name, number, formula)
                continue
            assert field in reference, f"{name} step {number}: no reference for {{{field}}}"
            assert slide.values.get(field) == reference[field], (name, number, field)
        filled = fill_caption(slide.step.caption, slide.view, slide.head)
        assert "–" not in filled and "{" not in filled and "\n" not in filled, (name, number, filled)


@pytest.mark.smollm
@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_is_pinned_and_its_claims_hold(name):
    """Greedy or a fixed seed from the first step, and each claim made in words is true of the run."""
    slides = played(name)
    first = slides[0].step
    assert first.preset == "greedy" or "seed" in first.knobs, f"{name}: the first step pins neither greedy nor a seed"
    for (demo, index), claim in CLAIMS.items():
        if demo == name:
            assert claim(slides[index]), (
                f"{name} step {index + 1}: {fill_caption(slides[index].step.caption, slides[index].view, slides[index].head)}"
            )


@pytest.mark.smollm
def test_a_demo_plays_the_same_tokens_twice():
    """Pinned means pinned: a second play gives the same tokens at every step."""
    first = play("how-sampling-works")
    second = play("how-sampling-works")
    assert [[t.id for t, _ in s.view.generated] for s in first] == [[t.id for t, _ in s.view.generated] for s in second]
