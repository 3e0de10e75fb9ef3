"""Pure Rich renderables for MoE balance: the expert-load heat table and the load-balancing loss with its terms.

Both take the numbers from llmscope.moe_stats and show per-layer values next to the pooled ones,
because pooling all layers (as transformers does) can look balanced while single layers are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.color import Color, blend_rgb
from rich.color_triplet import ColorTriplet
from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from llmscope.moe_stats import LoadBalance, load_distance_from_balanced
from llmscope.widgets.moe.render import MoEStyles, expert_chip

UNDER_USED = ColorTriplet(78, 121, 167)
"""Heat colour for experts below the balanced share (blue)."""
OVER_USED = ColorTriplet(225, 87, 89)
"""Heat colour for experts above the balanced share (red)."""


def heat_style(share: float, num_experts: int, top_k: int, base: ColorTriplet) -> Style:
    """Background for a load cell: the base colour at 1/N, bluer below it, redder above, with readable text."""
    ratio = share * num_experts
    if ratio >= 1:
        ceiling = math.log2(max(2.0, num_experts / max(1, top_k)))  # the most one expert can take is 1/k
        target, strength = OVER_USED, min(1.0, math.log2(ratio) / ceiling) if ratio > 1 else 0.0
    else:
        target, strength = UNDER_USED, min(1.0, 1.0 - ratio)
    color = blend_rgb(base, target, 0.15 + 0.7 * strength)
    luminance = (0.2126 * color.red + 0.7152 * color.green + 0.0722 * color.blue) / 255
    return Style(bgcolor=Color.from_triplet(color), color="#000000" if luminance > 0.5 else "#ffffff")


class ExpertLoadView:
    """Rows are MoE layers (plus 'all'), columns experts; each cell is that expert's share of routing slots."""

    def __init__(
        self,
        load: np.ndarray,
        layer_indices: Sequence[int],
        *,
        top_k: int,
        layer_loss: np.ndarray | None = None,
        balanced_loss: float | None = None,
        selected_layer: int | None = None,
        styles: MoEStyles = MoEStyles(),
    ) -> None:
        self.load = np.asarray(load, dtype=np.float64)
        self.layer_indices = tuple(layer_indices)
        self.top_k = top_k
        self.layer_loss = layer_loss
        self.balanced_loss = balanced_loss
        self.selected_layer = selected_layer
        self.base = Color.parse(styles.surface).get_truecolor()
        self.styles = styles

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        styles = self.styles
        layers, num_experts = self.load.shape
        digits = len(str(max(0, num_experts - 1)))
        loss_ratio = None  # each layer's loss over the balanced one, when both are known
        if self.layer_loss is not None and self.balanced_loss:
            loss_ratio = np.asarray(self.layer_loss, dtype=np.float64) / self.balanced_loss
        show_loss = loss_ratio is not None
        # Fixed columns first (layer, TV, ×bal) so they survive; expert cells crop at the right edge.
        fixed = 5 + 1 + 6 + (6 if show_loss else 0) + 1
        cell_width = max(4, digits + 2)
        with_numbers = fixed + num_experts * cell_width <= options.max_width
        if not with_numbers:
            cell_width = 1
        yield Text.assemble(
            (f"share of routing slots · even = 1/{num_experts} = ", styles.muted),
            (f"{100 / num_experts:.1f} %", styles.heading),
            (" · blue less, red more", styles.muted),
        )
        header = Text.assemble((f"{'layer':>5} {'TV':>6}" + (f"{'×bal':>6}" if show_loss else "") + " ", styles.muted))
        if with_numbers:
            for expert in range(num_experts):
                header.append(" " * (cell_width - digits - 2))
                header.append_text(expert_chip(expert, digits, surface=styles.surface))
        else:
            header.append(f"experts 0–{num_experts - 1} →", styles.muted)
        yield header
        distances = np.atleast_1d(load_distance_from_balanced(self.load))
        for layer in range(layers):
            selected = layer == self.selected_layer
            name = f"L{self.layer_indices[layer]}"
            line = Text.assemble((f"{name:>4}", styles.cursor if selected else styles.muted))
            line.append("▶" if selected else " ", styles.cursor)
            line.append(f"{float(distances[layer]):>6.2f}")
            if loss_ratio is not None:
                line.append(f"{float(loss_ratio[layer]):>6.2f}")
            line.append(" ")
            line.append_text(self._cells(self.load[layer], cell_width))
            line.truncate(options.max_width)
            yield line
        pooled = self.load.mean(axis=0)
        line = Text.assemble((f"{'all':>4} ", styles.heading))
        line.append(f"{float(load_distance_from_balanced(pooled)):>6.2f}" + (" " * 6 if show_loss else "") + " ")
        line.append_text(self._cells(pooled, cell_width))
        line.truncate(options.max_width)
        yield line
        legend = "TV: distance from even (0 = even)"
        if show_loss:
            legend += " · ×bal: layer loss ÷ balanced loss"
        yield Text(legend, styles.muted)

    def _cells(self, shares: np.ndarray, cell_width: int) -> Text:
        num_experts = len(shares)
        cells = Text()
        for share in shares:
            style = heat_style(float(share), num_experts, self.top_k, self.base)
            cells.append(f"{100 * share:>{cell_width - 1}.0f} " if cell_width > 1 else " ", style)
        return cells


MAX_EXPERT_ROWS = 16
"""Above this many experts the loss table lists the largest terms and sums the rest in one row."""


def _number(value: float) -> str:
    """Four significant figures without scientific notation for the loss's usual range."""
    return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.2e}"


class LoadBalanceView:
    """α · N · Σ f_i · P_i written out: the constants, a table of f_i and P_i, the result per layer and pooled."""

    def __init__(
        self,
        balance: LoadBalance,
        *,
        selected_layer: int,
        layer_indices: Sequence[int],
        styles: MoEStyles = MoEStyles(),
    ) -> None:
        self.balance = balance
        self.selected_layer = selected_layer
        self.layer_indices = tuple(layer_indices)
        self.layer_number = self.layer_indices[selected_layer]
        self.styles = styles

    def shown_experts(self) -> list[int]:
        """Experts listed one per row: all of them up to MAX_EXPERT_ROWS, else those with the largest
        fᵢ·Pᵢ in the selected layer (the rest are summed in one row)."""
        balance = self.balance
        if balance.num_experts <= MAX_EXPERT_ROWS:
            return list(range(balance.num_experts))
        layer = self.selected_layer
        terms = balance.layer_fraction[layer] * balance.layer_mean_prob[layer]
        return sorted(int(expert) for expert in np.argsort(-terms, kind="stable")[: MAX_EXPERT_ROWS - 4])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        balance, styles, layer = self.balance, self.styles, self.selected_layer
        k = balance.experts_per_token
        yield Text("L = α · N · Σᵢ fᵢ·Pᵢ", styles.heading)
        yield Text(
            f"α = {balance.alpha:g} (router_aux_loss_coef) · N = {balance.num_experts} experts · k = {k}", styles.muted
        )
        yield Text(f"fᵢ: share of tokens with expert i in their top-{k} (Σ = {k})", styles.muted)
        yield Text(f"Pᵢ: mean router probability of expert i (Σ = 1), over {balance.tokens:,} tokens", styles.muted)
        digits = len(str(max(0, balance.num_experts - 1)))
        table = Table(
            box=None,
            padding=(0, 1),
            pad_edge=False,
            header_style=styles.muted,
            show_footer=True,
            footer_style=styles.heading,
        )
        f_layer, p_layer = balance.layer_fraction[layer], balance.layer_mean_prob[layer]
        f_pool, p_pool = balance.pooled_fraction, balance.pooled_mean_prob
        table.add_column("i", footer="Σ", justify="right", no_wrap=True)
        groups = ((f"L{self.layer_number}", f_layer, p_layer), ("all", f_pool, p_pool))
        for name, fraction, prob in groups:
            table.add_column(f"{name} fᵢ", footer=f"{fraction.sum():.3f}", justify="right", no_wrap=True)
            table.add_column("Pᵢ", footer=f"{prob.sum():.3f}", justify="right", no_wrap=True)
            table.add_column("fᵢ·Pᵢ", footer=f"{(fraction * prob).sum():.4f}", justify="right", no_wrap=True)
        shown = self.shown_experts()
        for expert in shown:
            cells: list[Text | str] = [expert_chip(expert, digits, surface=styles.surface)]
            for _, fraction, prob in groups:
                cells += [f"{fraction[expert]:.3f}", f"{prob[expert]:.3f}", f"{fraction[expert] * prob[expert]:.4f}"]
            table.add_row(*cells)
        hidden = [expert for expert in range(balance.num_experts) if expert not in shown]
        if hidden:
            cells = [Text("…", styles.muted)]
            for _, fraction, prob in groups:
                cells += [
                    Text(f"{fraction[hidden].sum():.3f}", styles.muted),
                    Text(f"{prob[hidden].sum():.3f}", styles.muted),
                    Text(f"{(fraction[hidden] * prob[hidden]).sum():.4f}", styles.muted),
                ]
            table.add_row(*cells)
        yield table
        if hidden:
            yield Text(
                f"…: the other {len(hidden)} experts together (rows show the largest fᵢ·Pᵢ of L{self.layer_number})",
                styles.muted,
            )
        yield from self._results()

    def _results(self) -> RenderResult:
        balance, styles = self.balance, self.styles
        alpha, n = balance.alpha, balance.num_experts
        layer_dot = float(balance.layer_dot[self.selected_layer])
        layer_loss = float(balance.layer_loss[self.selected_layer])
        balanced = balance.balanced_loss
        rows = Table.grid(padding=(0, 1))
        rows.add_column(style=styles.muted, no_wrap=True)
        rows.add_column()
        rows.add_row(
            f"L{self.layer_number}",
            Text.assemble(
                f"L = {alpha:g} × {n} × {layer_dot:.4f} = ",
                (_number(layer_loss), styles.heading),
                (f"  ({layer_loss / balanced:.2f}× balanced)" if balanced else "", styles.muted),
            ),
        )
        rows.add_row(
            "all layers",
            Text.assemble(
                f"L = {alpha:g} × {n} × {balance.pooled_dot:.4f} = ",
                (_number(balance.pooled_loss), styles.heading),
                (f"  ({balance.pooled_loss / balanced:.2f}× balanced)" if balanced else "", styles.muted),
            ),
        )
        rows.add_row(
            "balanced",
            Text(
                f"α · k = {alpha:g} × {balance.experts_per_token} = {_number(balanced)}  (fᵢ = k/N, Pᵢ = 1/N)",
                styles.muted,
            ),
        )
        yield rows
        yield Text("transformers adds the all-layers value to the training loss.", styles.muted)
        if balanced:
            ratios = balance.layer_loss / balanced
            worst = int(np.argmax(ratios))
            pooled_ratio = balance.pooled_loss / balanced
            if ratios[worst] - pooled_ratio > 0.05:
                yield Text(
                    f"All layers: {pooled_ratio:.2f}× balanced, yet layer {self.layer_indices[worst]} alone is "
                    f"{ratios[worst]:.2f}×: pooling hides per-layer imbalance.",
                    styles.warn,
                )
