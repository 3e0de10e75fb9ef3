"""Pure Rich renderables of the compare screen: figures line, aligned candidates, step history, side-by-side panes.

They take the plain records of llmscope.compare.lanes / compare_live and draw them; nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from llmscope.divergence import format_nats
from llmscope.format import format_bytes, visible_token_text
from llmscope.widgets.moe.render import expert_chip

if TYPE_CHECKING:
    from llmscope.compare.lanes import CompareStep, LaneToken
    from llmscope.compare.live import CompareView, LaneView

FIRST_MARK = "◆"
MUTED = Style(dim=True)
HEAT = ((40, 11, 84), (159, 42, 99), (245, 125, 21), (252, 255, 164))
"""Dark-to-bright stops of the heat strip (inferno-like, as the attention pane)."""
MAX_CELLS_PER_KEY = 4
"""A short context is stretched to at most this many cells per key, so a strip stays readable."""


def quoted(text: str | bytes, limit: int = 14) -> str:
    """A token's text as every pane shows it (llmscope.format.visible_token_text), quoted and cut to `limit` cells."""
    shown = visible_token_text(text)
    return f"'{shown if len(shown) <= limit else shown[: limit - 1] + '…'}'"


def lane_token_text(lane: LaneToken | None, stop_reason: str | None) -> Text:
    """'Paris' p .82 (rank 1) — or why the lane has no token at this step."""
    if lane is None:
        return Text(f"stopped: {stop_reason or 'earlier'}", style="italic dim")
    return Text.assemble(
        (quoted(lane.token.raw_bytes), "bold"),
        f" p {lane.probability:.2f} (raw {lane.raw_probability:.2f}, rank {lane.raw_rank})",
    )


def summary_text(view: CompareView, record: CompareStep) -> Text:
    """Step, both chosen tokens, the divergence figures (nats, with JS in bits) and the first-divergence mark."""
    lane_a, lane_b = view.lanes
    text = Text.assemble(
        (f"step {record.index}  ", "bold"),
        ("A ", "bold cyan"),
        lane_token_text(record.a, lane_a.stop_reason),
        ("   B ", "bold magenta"),
        lane_token_text(record.b, lane_b.stop_reason),
    )
    if record.first_divergence:
        text.append(f"   {FIRST_MARK} first divergence", style="bold yellow")
    elif view.first_divergence is None:
        text.append("   same tokens so far", style="green")
    else:
        text.append(f"   ({FIRST_MARK} first divergence at step {view.first_divergence})", style="yellow")
    text.append("\n")
    if not view.compatibility.comparable:
        text.append(f"divergence not comparable: {view.compatibility.reason}", style="bold yellow")
        return text
    for label, figures in (("raw", record.raw), ("sampled", record.final)):
        if figures is None:
            text.append(f"{label:<8}— (a lane has stopped)\n", style=MUTED)
            continue
        text.append(f"{label:<8}", style="bold")
        text.append(
            f"KL(A‖B) {format_nats(figures.kl_ab)}  KL(B‖A) {format_nats(figures.kl_ba)}  "
            f"JS {format_nats(figures.js)} nats ({figures.js_bits:.3f} bits)  "
            f"top-{figures.top_n} ∩ {figures.overlap:.0%}\n"
        )
    text.rstrip()
    return text


def aligned_table(record: CompareStep, max_rows: int) -> Table:
    """Both lanes' candidates in one table, shared tokens on one row: ranks, p_A, p_B, Δ and the sampled probs."""
    table = Table(
        box=None,
        padding=(0, 1),
        show_edge=False,
        pad_edge=False,
        expand=False,
        title=f"top-{record.top_n} of each lane, aligned · p raw · fin sampled",
        title_justify="left",
        title_style="bold",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("token", "left"),
        ("#A", "right"),
        ("p_A", "right"),
        ("fin A", "right"),
        ("#B", "right"),
        ("p_B", "right"),
        ("fin B", "right"),
        ("Δ", "right"),
        ("", "left"),
    )
    for column, justify in columns:
        table.add_column(
            column, justify=justify, no_wrap=True, style="dim" if column.startswith(("#", "fin")) else None
        )
    for row in record.rows[:max_rows]:
        delta = row.delta
        delta_text = Text(
            "—" if delta is None else f"{delta:+.3f}",
            style="green" if delta and delta > 0.0005 else "red" if delta and delta < -0.0005 else "dim",
        )
        marks = Text.assemble(
            ("◀A " if row.chosen_a else "", "bold cyan"), ("◀B" if row.chosen_b else "", "bold magenta")
        )
        table.add_row(
            quoted(row.label or row.text),
            _num(row.rank_a, "d"),
            _num(row.p_a, ".3f"),
            _num(row.final_a, ".3f"),
            _num(row.rank_b, "d"),
            _num(row.p_b, ".3f"),
            _num(row.final_b, ".3f"),
            delta_text,
            marks,
            style=None if row.shared(record.top_n) else MUTED,
        )
    return table


def history_table(records: Sequence[CompareStep], selected: int, max_rows: int) -> Table:
    """One row per step: both tokens, JS raw and sampled, overlap; the first divergence and the shown step marked."""
    table = Table(
        box=None,
        padding=(0, 1),
        show_edge=False,
        pad_edge=False,
        title="steps",
        title_justify="left",
        title_style="bold",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("A", "left"),
        ("B", "left"),
        ("JS", "right"),
        ("JS fin", "right"),
        ("∩", "right"),
        ("", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    start = max(0, min(selected - max_rows // 2, len(records) - max_rows))
    for record in records[start : start + max_rows]:
        tokens = [
            Text(
                quoted(lane.token.raw_bytes, 10) if lane else "stopped",
                style=("yellow" if record.diverged else "green") if lane else "italic dim",
            )
            for lane in (record.a, record.b)
        ]
        raw, final = record.raw, record.final
        table.add_row(
            str(record.index),
            *tokens,
            format_nats(raw.js if raw else None),
            format_nats(final.js if final else None),
            f"{raw.overlap:.0%}" if raw else "—",
            Text(f"{FIRST_MARK} first" if record.first_divergence else "", style="bold yellow"),
            style="bold on #3a3a4a" if record.index == selected else None,
        )
    return table


def _num(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _heat_color(value: float) -> str:
    """Colour of a weight in [0, 1] on the heat ramp."""
    position = min(max(value, 0.0), 1.0) * (len(HEAT) - 1)
    low = min(int(position), len(HEAT) - 2)
    t = position - low
    rgb = [round(a + (b - a) * t) for a, b in zip(HEAT[low], HEAT[low + 1])]
    return f"rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def _pooled(row: np.ndarray, width: int) -> np.ndarray:
    """At most `width` cells: the entry of largest magnitude in each near-equal bin (signs kept)."""
    if row.size <= width:
        return row
    return np.array([chunk[np.argmax(np.abs(chunk))] for chunk in np.array_split(row, width)])


class HeatStrip:
    """One attention row as a strip of coloured cells (one per key, pooled when the keys outnumber the cells)."""

    def __init__(self, label: str, row: np.ndarray, *, signed: bool = False) -> None:
        self.label, self.row, self.signed = label, np.asarray(row, dtype=np.float64), signed

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        text = Text(f"{self.label:<6}", style="bold")
        room = max(1, options.max_width - 7)
        cells = _pooled(self.row, room)
        repeat = max(1, min(MAX_CELLS_PER_KEY, room // max(1, cells.size)))
        scale = float(np.max(np.abs(cells))) or 1.0
        for value in np.repeat(cells, repeat):
            if self.signed:  # B − A: magenta where B attends more, cyan where A does
                strength = abs(value) / scale
                color = (
                    f"rgb({round(60 + 180 * strength)},40,{round(60 + 120 * strength)})"
                    if value > 0
                    else f"rgb(30,{round(60 + 140 * strength)},{round(70 + 160 * strength)})"
                )
                text.append(" ", style=Style(bgcolor=color if strength > 0.02 else None))
            else:
                text.append(" ", style=Style(bgcolor=_heat_color(value / scale)))
        yield text


def attention_renderable(lanes: Sequence[LaneView], index: int, layer: int, head: int) -> Group:
    """The same layer and head's attention row of the step's query in both lanes, and B − A where shapes allow."""
    parts: list = [Text(f"attention · layer {layer} head {head} · row of the query at step {index}", style="bold")]
    rows: list[np.ndarray | None] = []
    for lane in lanes:
        trace = lane.trace_at(index)
        row, problem = None, None
        if trace is None:
            problem = (
                f"lane {lane.name} stopped: {lane.stop_reason}"
                if lane.stop_reason
                else f"lane {lane.name} has no step {index}"
            )
        elif trace.attention is None:
            problem = f"lane {lane.name}: attention was not captured"
        elif layer >= trace.attention.shape[0] or head >= trace.attention.shape[1]:
            problem = (
                f"lane {lane.name} ({lane.info.name}) has {trace.attention.shape[0]} layers × "
                f"{trace.attention.shape[1]} heads: no layer {layer} head {head}"
            )
        else:
            row = trace.attention[layer, head, -1]
        rows.append(row)
        if row is None:
            parts.append(Text(f"{lane.name:<6}{problem}", style="italic dim"))
            continue
        parts.append(HeatStrip(lane.name, row))
        labels = lane.token_labels[: row.size]
        strongest = np.argsort(-row, kind="stable")[:4]
        parts.append(
            Text(
                "      "
                + "  ".join(f"{quoted(labels[k] if k < len(labels) else '?', 10)} {row[k]:.2f}" for k in strongest),
                style="dim",
            )
        )
    first, second = rows
    if first is not None and second is not None:
        if first.size == second.size:
            parts.append(HeatStrip("B − A", second - first, signed=True))
            parts.append(
                Text(
                    f"      magenta: B attends more · cyan: A attends more · largest |Δ| "
                    f"{float(np.max(np.abs(second - first))):.3f} (keys compared by position)",
                    style="dim",
                )
            )
        else:
            parts.append(
                Text(
                    f"B − A  no difference: A attends over {first.size} keys, B over {second.size} "
                    "(the contexts differ in length)",
                    style="italic dim",
                )
            )
    return Group(*parts)


def kv_text(lanes: Sequence[LaneView], index: int) -> Text:
    """KV-cache bytes of both lanes after the step's forward, and how they compare."""
    text = Text("KV cache  ", style="bold")
    sizes: list[int] = []
    for lane in lanes:
        trace = lane.trace_at(index) or (lane.traces[-1] if lane.traces else None)
        kv = trace.kv if trace is not None else None
        if kv is None:
            text.append(f"{lane.name}: not measured   ", style="dim")
            continue
        sizes.append(kv.total_bytes)
        text.append(
            f"{lane.name}: {format_bytes(kv.total_bytes)} for {kv.tokens} tokens "
            f"({format_bytes(kv.total_bytes / max(1, kv.tokens))}/token)   "
        )
    if len(sizes) == 2 and sizes[0]:
        text.append(
            f"B − A {'+' if sizes[1] >= sizes[0] else '−'}{format_bytes(abs(sizes[1] - sizes[0]))} "
            f"({sizes[1] / sizes[0]:.2f}×)",
            style="bold",
        )
    return text


def moe_renderable(lanes: Sequence[LaneView], index: int) -> Group:
    """Experts chosen for the step's token in every MoE layer of both lanes, or which lane is dense."""
    dense = [lane for lane in lanes if not lane.info.is_moe]
    if len(dense) == 2:
        return Group(
            Text(
                "MoE routing  both lanes are dense models: every token uses the same MLP, no router to compare",
                style="dim",
            )
        )
    if dense:
        lane = dense[0]
        return Group(
            Text(
                f"MoE routing  lane {lane.name} ({lane.info.name}) is dense: no router, so routing is not compared",
                style="dim",
            )
        )
    traces = [lane.trace_at(index) for lane in lanes]
    routers = [trace.router for trace in traces if trace is not None and trace.router is not None]
    if len(routers) < len(lanes):
        return Group(Text("MoE routing  not captured for this step in one lane (or it has stopped)", style="dim"))
    parts: list[Text] = [Text(f"MoE routing · experts for the token fed at step {index} (weight)", style="bold")]
    digits = len(str(max(lane.info.num_experts for lane in lanes)))
    same_model = lanes[0].info.source == lanes[1].info.source
    layer_count = max(len(router.layers) for router in routers)
    for position in range(layer_count):
        line = Text(f"  layer {position:<3}")
        chosen_sets: list[set[int] | None] = []
        for lane, router in zip(lanes, routers):
            line.append(f" {lane.name} ", style="bold")
            if position >= len(router.layers):
                line.append("(no MoE layer)", style="dim")
                chosen_sets.append(None)
                continue
            experts, weights = router.experts[position, -1], router.weights[position, -1]
            for expert, weight in zip(experts, weights):
                line.append_text(expert_chip(int(expert), digits, weight=float(weight)))
                line.append(f"{float(weight):.2f} ", style="dim")
            chosen_sets.append(set(int(e) for e in experts))
        if same_model:
            same = chosen_sets[0] is not None and chosen_sets[0] == chosen_sets[1]
            line.append("  same experts" if same else "  different experts", style="green" if same else "yellow")
        parts.append(line)
    if not same_model:
        parts.append(Text("  different models: expert numbers of one are unrelated to the other's", style="dim"))
    return Group(*parts)
