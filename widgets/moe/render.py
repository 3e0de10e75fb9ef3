"""Pure Rich renderables for MoE routing: expert colours, the token × layer routing map, the router's distribution.

They take numpy arrays and plain values, draw only what fits (long sequences are windowed around the
selection), and know nothing of Textual, so tests render them in a plain Console.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.color import Color, blend_rgb
from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from llmscope.format import visible_token_text

EXPERT_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#8cd17d",
    "#a0cbe8",
)
"""Categorical colours for experts (Tableau-style); ids repeat colours past 12 but are always printed."""


@dataclass(frozen=True)
class MoEStyles:
    """Theme-derived styles the widget hands to its renderables (defaults suit a plain test console)."""

    muted: Style = Style(dim=True)
    heading: Style = Style(bold=True)
    cursor: Style = Style(bold=True, color="yellow")
    cursor_row: Style = Style(bold=True)
    bar: Style = Style(color="cyan")
    chosen_bar: Style = Style(color="yellow")
    good: Style = Style(color="green")
    warn: Style = Style(color="yellow", bold=True)
    surface: str = "#1e1e1e"
    """The pane's background colour; faint chips (small weights) fade towards it."""


def expert_style(expert: int, strength: float = 1.0, surface: str = "#1e1e1e") -> Style:
    """A chip style: the expert's palette colour as background (faded towards `surface` when strength < 1)
    with black or white text, whichever reads better on it."""
    color = Color.parse(EXPERT_PALETTE[expert % len(EXPERT_PALETTE)]).get_truecolor()
    if strength < 1.0:
        color = blend_rgb(Color.parse(surface).get_truecolor(), color, max(0.0, strength))
    luminance = (0.2126 * color.red + 0.7152 * color.green + 0.0722 * color.blue) / 255
    return Style(bgcolor=Color.from_triplet(color), color="#000000" if luminance > 0.45 else "#ffffff", bold=True)


def expert_chip(expert: int, digits: int, *, weight: float = 1.0, surface: str = "#1e1e1e") -> Text:
    """The expert id, right-aligned to `digits`, padded by one space each side, in the expert's colour.

    A smaller routing weight gives a fainter chip, so a 0.95 / 0.05 split reads at a glance.
    """
    return Text(f" {expert:>{digits}} ", expert_style(expert, 0.4 + 0.6 * min(1.0, weight), surface))


def format_weight(weight: float) -> str:
    """A routing weight in three characters: '.62', '.05', '1.0'."""
    return "1.0" if weight >= 0.995 else f"{weight:.2f}"[1:]


def clean_label(label: str, width: int) -> str:
    """A token's text made visible on one line as every pane shows it (llmscope.format), cut to width."""
    shown = visible_token_text(label)
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def window_start(selected: int, total: int, visible: int) -> int:
    """First index of a window of `visible` items out of `total` that keeps `selected` near the middle."""
    if total <= visible:
        return 0
    return min(max(0, selected - visible // 2), total - visible)


CELL_MODES = ("weights", "ids", "top1")
"""Routing-map cell styles, richest first: ids with weights, ids only, the top expert only."""


@dataclass(frozen=True)
class MapLayout:
    """Which rows and columns of the routing map are on screen, and how wide each cell is."""

    mode: str
    first_position: int
    rows: int
    first_layer: int
    columns: int
    label_width: int
    """Columns before the first cell (position, token text, separator)."""
    cell_width: int
    """Columns per layer, including the one-column gap before each cell."""

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        """(position, moe_layer) under a point of the rendered map, or None (header, labels, footer)."""
        row, column = y - 1, (x - self.label_width) // self.cell_width if x >= self.label_width else -1
        if not (0 <= row < self.rows and 0 <= column < self.columns):
            return None
        return self.first_position + row, self.first_layer + column


def map_layout(
    positions: int,
    layers: int,
    top_k: int,
    num_experts: int,
    *,
    width: int,
    height: int,
    selected_position: int,
    selected_layer: int,
) -> MapLayout:
    """Choose the richest cell style where every layer fits, else window the layers around the selection."""
    digits = len(str(max(0, num_experts - 1)))
    token_width = 12 if width >= 100 else 9
    label_width = len(str(max(0, positions - 1))) + 1 + token_width + 2
    widths = {"weights": top_k * (digits + 5) + (top_k - 1), "ids": top_k * (digits + 2), "top1": digits + 2}
    mode = next((name for name in CELL_MODES if label_width + layers * (widths[name] + 1) + 1 <= width), "top1")
    cell_width = widths[mode] + 1
    columns = max(1, min(layers, (width - label_width - 1) // cell_width))
    rows = max(1, min(positions, height - 2))
    return MapLayout(
        mode=mode,
        first_position=window_start(selected_position, positions, rows),
        rows=rows,
        first_layer=window_start(selected_layer, layers, columns),
        columns=columns,
        label_width=label_width,
        cell_width=cell_width,
    )


class RoutingMapView:
    """Rows are tokens, columns MoE layers; each cell shows the chosen experts (and weights when they fit)."""

    def __init__(
        self,
        experts: np.ndarray,
        weights: np.ndarray,
        token_labels: Sequence[str],
        layer_indices: Sequence[int],
        num_experts: int,
        *,
        selected_position: int,
        selected_layer: int,
        height: int,
        styles: MoEStyles = MoEStyles(),
    ) -> None:
        self.experts = experts
        self.weights = weights
        self.token_labels = token_labels
        self.layer_indices = tuple(layer_indices)
        self.num_experts = num_experts
        self.selected_position = selected_position
        self.selected_layer = selected_layer
        self.height = height
        self.styles = styles

    def layout(self, width: int) -> MapLayout:
        layers, positions, top_k = self.experts.shape
        return map_layout(
            positions,
            layers,
            top_k,
            self.num_experts,
            width=width,
            height=self.height,
            selected_position=self.selected_position,
            selected_layer=self.selected_layer,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        layout = self.layout(options.max_width)
        layers, positions, _ = self.experts.shape
        digits = len(str(max(0, self.num_experts - 1)))
        position_width = len(str(max(0, positions - 1)))
        token_width = layout.label_width - position_width - 3
        shown_layers = range(layout.first_layer, layout.first_layer + layout.columns)
        header = Text.assemble((f"{'#':>{position_width}} {'token':<{token_width}} │", self.styles.muted))
        for layer in shown_layers:
            name = f"L{self.layer_indices[layer]}"
            style = self.styles.cursor if layer == self.selected_layer else self.styles.muted
            header.append(f" {name:<{layout.cell_width - 1}}"[: layout.cell_width], style)
        yield header
        for position in range(layout.first_position, layout.first_position + layout.rows):
            yield self._row(position, layout, shown_layers, digits, position_width, token_width)
        yield self._footer(layout, positions, layers)

    def _row(
        self, position: int, layout: MapLayout, shown_layers: range, digits: int, position_width: int, token_width: int
    ) -> Text:
        selected_row = position == self.selected_position
        label_style = self.styles.cursor_row if selected_row else Style()
        label = clean_label(self.token_labels[position] if position < len(self.token_labels) else "", token_width)
        number_style = self.styles.cursor + label_style if selected_row else self.styles.muted
        line = Text.assemble((f"{position:>{position_width}} ", number_style))
        line.append(f"{label:<{token_width}}", label_style)
        line.append(" │", self.styles.muted + label_style)
        for layer in shown_layers:
            # The gap before each cell opens the selection's bracket, or closes the previous cell's.
            if selected_row and layer == self.selected_layer:
                line.append("[", self.styles.cursor + label_style)
            elif selected_row and layer == self.selected_layer + 1:
                line.append("]", self.styles.cursor + label_style)
            else:
                line.append(" ", label_style)
            line.append_text(self._cell(layer, position, layout.mode, digits, label_style))
        line.append(
            "]" if selected_row and self.selected_layer == shown_layers[-1] else " ", self.styles.cursor + label_style
        )
        return line

    def _cell(self, layer: int, position: int, mode: str, digits: int, row_style: Style = Style()) -> Text:
        chosen = self.experts[layer, position]
        if mode == "top1":
            return expert_chip(
                int(chosen[0]), digits, weight=float(self.weights[layer, position, 0]), surface=self.styles.surface
            )
        cell = Text()
        for slot, expert in enumerate(chosen):
            weight = float(self.weights[layer, position, slot])
            if mode == "weights" and slot:
                cell.append(" ", row_style)
            cell.append_text(expert_chip(int(expert), digits, weight=weight, surface=self.styles.surface))
            if mode == "weights":
                cell.append(format_weight(weight), self.styles.muted + row_style)
        return cell

    def _footer(self, layout: MapLayout, positions: int, layers: int) -> Text:
        parts = []
        if layout.rows < positions:
            last = layout.first_position + layout.rows - 1
            parts.append(f"tokens {layout.first_position}–{last} of {positions:,}")
        if layout.columns < layers:
            first = self.layer_indices[layout.first_layer]
            last = self.layer_indices[layout.first_layer + layout.columns - 1]
            parts.append(f"layers {first}–{last} of {layers}")
        parts.append(
            {
                "weights": "expert·weight, highest first",
                "ids": "chosen experts, highest weight first",
                "top1": "top expert per cell",
            }[layout.mode]
        )
        return Text(" · ".join(parts), self.styles.muted)


class RouterDistributionView:
    """The router's probability over every expert for one (token, layer), chosen experts marked."""

    def __init__(
        self,
        probs: np.ndarray,
        chosen: Sequence[int],
        weights: Sequence[float],
        *,
        token_label: str,
        position: int,
        layer: int,
        rule: str,
        max_rows: int = 16,
        styles: MoEStyles = MoEStyles(),
    ) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.chosen = [int(expert) for expert in chosen]
        self.weights = [float(weight) for weight in weights]
        self.token_label = token_label
        self.position = position
        self.layer = layer
        self.rule = rule
        self.max_rows = max(3, max_rows)
        self.styles = styles

    def shown_experts(self) -> list[int]:
        """Experts drawn as bars: all in id order when they fit, else the most probable (chosen always kept)."""
        count = len(self.probs)
        if count <= self.max_rows:
            return list(range(count))
        ranked = [int(expert) for expert in np.argsort(-self.probs, kind="stable")]
        keep = ranked[: self.max_rows - 1]
        keep += [expert for expert in self.chosen if expert not in keep]
        return sorted(keep)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        styles = self.styles
        digits = len(str(max(0, len(self.probs) - 1)))
        yield Text.assemble(
            ("Router at token ", styles.heading),
            (f"{self.position} ", styles.heading),
            (f"‘{clean_label(self.token_label, 16)}’", styles.cursor),
            (f" · layer {self.layer}", styles.heading),
        )
        weight_of = dict(zip(self.chosen, self.weights))
        shown = self.shown_experts()
        peak = float(self.probs.max()) or 1.0
        bar_width = max(6, min(40, options.max_width - (digits + 2) - 2 - 8 - 10))
        table = Table.grid(padding=(0, 1))
        for justify in ("left", "right", "left", "right", "left"):
            table.add_column(justify=justify, no_wrap=True)
        for expert in shown:
            probability = float(self.probs[expert])
            is_chosen = expert in weight_of
            bar = _bar(probability / peak, bar_width)
            table.add_row(
                Text("●" if is_chosen else " ", styles.cursor),
                expert_chip(expert, digits, surface=styles.surface),
                Text(bar, styles.chosen_bar if is_chosen else styles.bar),
                f"{probability:.3f}",
                Text(f"w {weight_of[expert]:.2f}" if is_chosen else "", styles.cursor),
            )
        yield table
        hidden = len(self.probs) - len(shown)
        if hidden:
            rest = 1.0 - float(self.probs[shown].sum())
            yield Text(f"  … {hidden} more experts share p = {rest:.3f}", styles.muted)
        yield Text("● chosen · p = router probability · w = weight applied", styles.muted)
        yield Text(f"rule: {self.rule}", styles.muted)


def _bar(fraction: float, width: int) -> str:
    """A horizontal bar of `fraction` × width cells with eighth-block precision."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, remainder = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[remainder] if remainder else "")
