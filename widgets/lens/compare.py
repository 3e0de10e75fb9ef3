"""The compare screen's logit-lens table: both lanes' top-1 guess per layer at one step, and the KL between them.

The KL is `llmscope.lens.bucketed_kl`: over the tokens both lanes kept plus one bucket for the rest, so it is a
lower bound of the true KL and is labelled "KL ≥" wherever it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from llmscope.format import format_probability
from llmscope.lens import LogitLens, bucketed_kl
from llmscope.widgets.lens.render import bar, fit

if TYPE_CHECKING:
    from llmscope.compare.live import LaneView

TITLE = "Logit lens"
KL_HEADER = "KL(A‖B) ≥"
KL_BAR_FULL = 0.5
"""Nats that fill a KL bar at least (the largest KL fills it when larger), so a tiny KL draws no bar."""


def lane_lenses(lanes: Sequence[LaneView], index: int) -> list[LogitLens | None]:
    """Each lane's lens at step `index` (None where the lane stopped earlier or did not capture one)."""
    lenses: list[LogitLens | None] = []
    for lane in lanes:
        trace = lane.trace_at(index)
        lenses.append(trace.lens if trace is not None else None)
    return lenses


def lens_kl(lanes: Sequence[LaneView], index: int) -> np.ndarray | None:
    """Per-layer KL(A‖B) lower bound at step `index`, or None when a lane has no lens there."""
    first, second = lane_lenses(lanes, index)
    if first is None or second is None:
        return None
    return bucketed_kl(first, second)


def lens_compare_renderable(lanes: Sequence[LaneView], index: int, *, comparable: bool = True) -> Group:
    """Per layer (output first): lane A's and lane B's top-1 token with its probability, and KL(A‖B) ≥ as a bar."""
    lenses = lane_lenses(lanes, index)
    missing = [lane.name for lane, lens in zip(lanes, lenses) if lens is None]
    if missing:
        return Group(
            Text.assemble(
                (f"{TITLE}  ", "bold"),
                (
                    f"not captured at step {index} in lane {' and '.join(missing)} (stopped, or the model refuses it)",
                    "dim",
                ),
            )
        )
    first, second = lenses
    assert first is not None and second is not None
    kl = bucketed_kl(first, second) if comparable else None
    heading = Text.assemble(
        (f"{TITLE} at step {index}", "bold"),
        (
            f" · top-1 per layer in each lane · {KL_HEADER} is a lower bound: it compares only the tokens in both "
            f"lanes' top-{first.top_ids.shape[1]} (shared) plus one bucket for the rest (n/a when none are shared)"
            if comparable
            else " · the lanes' vocabularies differ, so no KL between them",
            "dim",
        ),
    )
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
    table.add_column("layer", justify="right", style="dim")
    table.add_column("A top-1", style="cyan")
    table.add_column("p", justify="right")
    table.add_column("B top-1", style="magenta")
    table.add_column("p", justify="right")
    if kl is not None:
        table.add_column("shared", justify="right")
        table.add_column(KL_HEADER, justify="right")
        table.add_column("")
    rows = min(first.num_rows, second.num_rows)
    scale = max(float(kl.max()), KL_BAR_FULL) if kl is not None else 1.0
    for layer in reversed(range(rows)):
        a_id, b_id = int(first.top_ids[layer, 0]), int(second.top_ids[layer, 0])
        same = comparable and a_id == b_id
        cells: list[str | Text] = [
            "emb" if layer == 0 else str(layer),
            fit(lanes[0].lens_texts.get(a_id, "?"), 12),
            format_probability(float(first.top_probs[layer, 0])),
            Text(fit(lanes[1].lens_texts.get(b_id, "?"), 12), style="bold magenta" if not same else "magenta"),
            format_probability(float(second.top_probs[layer, 0])),
        ]
        if kl is not None:
            shared = len(set(first.top_ids[layer].tolist()) & set(second.top_ids[layer].tolist()))
            # With no shared token the bound is vacuous (0): say so instead of drawing the lanes as agreeing.
            cells += [
                Text(f"{shared}/{first.top_ids.shape[1]}", style="dim" if shared else "bold yellow"),
                f"{kl[layer]:.3f}" if shared else Text("n/a", style="bold yellow"),
                Text(bar(float(kl[layer]) / scale, 12), style="yellow") if shared else Text("no shared token", "dim"),
            ]
        table.add_row(*cells)
    return Group(heading, table)
