"""The sampler table's summary lines: survivors per stage, entropy, effective vocabulary and the pick.

Each line has a full and a compact wording; the compact one is used when the full one does not fit.
"""

from __future__ import annotations

import math

from rich.text import Text

from llmscope.widgets.sampler.model import SamplerView
from llmscope.widgets.sampler.styles import SamplerStyles, format_count, format_probability


def summary_lines(view: SamplerView, styles: SamplerStyles, dropped_stages: list[str], width: int | None) -> list[Text]:
    """Off/hidden stages, survivors per stage, entropy raw → final (nats, bits, e^H), the chosen token and draw."""

    def pick(full: Text, compact: Text) -> Text:
        return full if width is None or full.cell_len <= width else compact

    lines = [
        pick(
            off_line(view, styles, dropped_stages, compact=False), off_line(view, styles, dropped_stages, compact=True)
        ),
        pick(kept_line(view, styles, compact=False), kept_line(view, styles, compact=True)),
        pick(entropy_line(view, styles, compact=False), entropy_line(view, styles, compact=True)),
        pick(picked_line(view, styles, compact=False), picked_line(view, styles, compact=True)),
    ]
    return [line for line in lines if line.plain]


def off_line(view: SamplerView, styles: SamplerStyles, dropped_stages: list[str], *, compact: bool) -> Text:
    """Stages that did nothing this step, and stage columns hidden for lack of width (empty when none)."""
    off = view.off_note
    if dropped_stages:
        off = (off + " · " if off else "") + ("hidden: " if compact else "not shown (narrow): ")
        off += ", ".join(header.split(" ")[0] if compact else header for header in dropped_stages)
    return Text.assemble(("off ", styles.muted), (off, styles.muted)) if off else Text("")


def kept_line(view: SamplerView, styles: SamplerStyles, *, compact: bool) -> Text:
    """Tokens still allowed after each active stage; `compact` names only the stages that removed some."""
    muted = styles.muted
    kept = Text.assemble(("kept ", muted), f"{view.vocab_size:,}")
    previous = view.vocab_size
    for column in view.columns:
        if compact and column.kept == previous:
            continue
        name = column.header.split(" ")[0] if compact else column.header
        kept.append(f" → {name}: ", style=muted)
        kept.append(f"{column.kept:,}")
        previous = column.kept
    return kept


def entropy_line(view: SamplerView, styles: SamplerStyles, *, compact: bool) -> Text:
    """Entropy of the raw and the final distribution in nats and bits, and the effective vocabulary e^H."""
    muted = styles.muted
    raw_nats, final_nats = max(0.0, view.entropy_raw), max(0.0, view.entropy_final)
    digits = 2 if compact else 3
    return Text.assemble(
        ("H " if compact else "entropy ", muted),
        f"{raw_nats:.{digits}f} → {final_nats:.{digits}f}",
        (" nats = ", muted),
        f"{raw_nats / math.log(2):.{digits}f} → {final_nats / math.log(2):.{digits}f}",
        (" bits", muted),
        (" · e^H " if compact else " · effective vocab e^H ", muted),
        f"{format_count(math.exp(raw_nats))} → {format_count(math.exp(final_nats))}",
    )


def picked_line(view: SamplerView, styles: SamplerStyles, *, compact: bool) -> Text:
    """The chosen token, its final probability and the uniform draw that picked it (or 'greedy')."""
    muted, chosen = styles.muted, view.chosen
    picked = Text.assemble(("forced " if view.sampled is not None else "picked ", muted), (chosen.text, styles.chosen))
    if not compact:
        picked.append(f" · id {chosen.token_id} · rank {chosen.rank:,}", style=muted)
    picked.append(" · p ", style=muted)
    picked.append(format_probability(chosen.final.probability))
    if view.sampled is not None:
        picked.append(" · by you; the sampler drew " if not compact else " · sampler: ", style=muted)
        picked.append(view.sampled.text)
    if view.greedy or view.draw is None:
        picked.append(" · greedy" if compact else " · greedy: argmax, no random draw", style=muted)
    else:
        picked.append(" · u = ", style=muted)
        picked.append(f"{view.draw:.4f}")
        if not compact:
            picked.append(f" (seed {view.seed}, step {view.step_index})", style=muted)
    return picked
