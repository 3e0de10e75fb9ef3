"""Pure Rich renderables of the Layers pane: the layers × steps grid of top-1 guesses and a cell's candidates.

Rows are drawn with the model's output at the top and the embedding output at the bottom, so the answer "rises"
through the stack as it does in logit-lens plots. No Textual here: the pane (lens/pane.py) passes sizes and styles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.color import Color, blend_rgb
from rich.color_triplet import ColorTriplet
from rich.console import Group
from rich.style import Style
from rich.text import Text

from llmscope.format import format_probability
from llmscope.lens import LogitLens
from llmscope.panes import LensContent

LABEL_WIDTH = 6
"""Row label ('emb', '30') right-aligned in 3 cells, a gap, then the first-top-1 and settled markers."""
RANK_WIDTH = 13
"""The chosen token's rank at each layer: a 6-cell bar, then the rank."""
CELL_WIDTH = 9
"""One step column: 8 cells of token text and a gap."""
HEADER_ROWS = 2
"""Step numbers, then the token each step chose."""
FIRST_MARK, SETTLED_MARK = "★", "▸"
EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True)
class LensStyles:
    """Theme colours for the renderables (read from the pane's component classes)."""

    muted: Style
    heading: Style
    chosen: Style
    """Top-1 text where it already is the token the step finally chose."""
    mark: Style
    bar: Style
    cursor: Style
    surface: tuple[int, int, int]
    tint: tuple[int, int, int]
    """The colour a probability-1 cell's background blends towards."""
    chosen_tint: tuple[int, int, int] = (78, 191, 113)
    """The same for a cell whose guess already is the step's chosen token."""

    @classmethod
    def plain(cls) -> LensStyles:
        """Styles without a theme (tests, exports)."""
        return cls(
            muted=Style(dim=True),
            heading=Style(bold=True),
            chosen=Style(color="green", bold=True),
            mark=Style(color="yellow", bold=True),
            bar=Style(color="blue"),
            cursor=Style(reverse=True, bold=True),
            surface=(30, 30, 30),
            tint=(1, 120, 212),
        )


def fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells: padded, or cut with '…' when it is longer (wide characters counted)."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of `width` cells filled to `fraction` in eighths."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[rest] if rest else "")).ljust(width)


def format_rank(rank: int) -> str:
    """A rank in at most 5 cells: '1', '312', '4.2k', '31k'."""
    if rank < 10_000:
        return str(rank)
    return f"{rank / 1000:.0f}k" if rank < 1_000_000 else f"{rank / 1e6:.0f}M"


def rank_scale(lens: LogitLens) -> float:
    """log10 of the worst rank the bars must show (at least 10): rank 1 fills a bar, that rank leaves it empty."""
    worst = int(lens.chosen_rank.max()) if lens.chosen_rank is not None else 10
    return math.log10(max(worst, 10)) + 0.3


def rank_fraction(rank: int, scale: float) -> float:
    """How full a rank's bar is on a log scale: 1 for rank 1, shrinking by one step per factor of ten."""
    return max(0.0, 1.0 - math.log10(max(rank, 1)) / scale)


def step_summary(data: LensContent, column: int) -> str:
    """One line on how step `column`'s token formed: where it first became top-1 and where it settled."""
    lens = data.lenses[column]
    labels = data.layer_labels
    chosen = data.token_texts.get(data.chosen_ids[column], "?")
    first, settled = lens.first_top1_layer(), lens.settled_layer()
    text = f"step {data.step_indices[column]} chose '{chosen}': "
    if lens.chosen_rank is None:
        return text + "rank per layer unknown (forced after the step's full distributions were let go)."
    if first is None:
        return text + "no layer ranks it first (sampled or forced: the output did not favour it)."
    text += f"{FIRST_MARK} first top-1 at layer {labels[first]}"
    if settled is None:
        return text + ", but the output does not rank it first (it was sampled, not the argmax)."
    if settled == first:
        return text + f", and it stays on top from there ({SETTLED_MARK} settled)."
    return text + f", {SETTLED_MARK} settled from layer {labels[settled]}."


def visible_columns(width: int) -> int:
    """How many step columns fit a grid `width` cells wide (at least one)."""
    return max(1, (width - LABEL_WIDTH - RANK_WIDTH) // CELL_WIDTH)


def visible_rows(height: int) -> int:
    """How many layer rows fit a grid `height` rows tall under the two header rows (at least one)."""
    return max(1, height - HEADER_ROWS)


def follow(offset: int, cursor: int, capacity: int, total: int) -> int:
    """The first visible index that keeps `cursor` in a window of `capacity` (moving as little as possible)."""
    offset = min(offset, cursor)
    if cursor >= offset + capacity:
        offset = cursor - capacity + 1
    return max(0, min(offset, max(0, total - capacity)))


@dataclass(frozen=True)
class GridCursor:
    """Selection and scroll state of the grid, in lens coordinates."""

    layer: int
    """Lens row (0: embedding output; the last: the model's output)."""
    column: int
    """Position in `LensContent.lenses`."""
    top: int = 0
    """First drawn display row (display row 0 is the output layer)."""
    left: int = 0
    """First drawn column."""


def cell_style(probability: float, styles: LensStyles, *, chosen: bool) -> Style:
    """A cell tinted by its top-1 probability: green where that guess is the step's final token, else blue.

    The text is white or black, whichever reads better on that background (light and dark themes alike).
    """
    surface = ColorTriplet(*styles.surface)
    tint = ColorTriplet(*(styles.chosen_tint if chosen else styles.tint))
    background = blend_rgb(surface, tint, 0.08 + 0.62 * probability)
    luminance = 0.299 * background.red + 0.587 * background.green + 0.114 * background.blue
    return Style(color="white" if luminance < 140 else "black", bold=chosen, bgcolor=Color.from_triplet(background))


def grid_text(data: LensContent, cursor: GridCursor, width: int, height: int, styles: LensStyles) -> Text:
    """The grid window: header rows, then one row per layer (output first) with its rank bar and top-1 cells."""
    rows = data.lenses[0].num_rows
    columns = range(cursor.left, min(len(data.lenses), cursor.left + visible_columns(width)))
    display = range(cursor.top, min(rows, cursor.top + visible_rows(height)))
    selected = data.lenses[cursor.column]
    labels = data.layer_labels
    scale = rank_scale(selected)
    first, settled = selected.first_top1_layer(), selected.settled_layer()
    lines: list[Text] = []

    steps = Text(fit("layer", LABEL_WIDTH) + fit(" chosen rank", RANK_WIDTH), style=styles.muted)
    chosen = Text(" " * LABEL_WIDTH + fit(f" {data.token_texts.get(data.chosen_ids[cursor.column], '?')}", RANK_WIDTH))
    chosen.stylize(styles.heading)
    for column in columns:
        style = styles.cursor if column == cursor.column else styles.muted
        steps.append(fit(f"step {data.step_indices[column]}", CELL_WIDTH - 1), style=style)
        steps.append(" ")
        chosen.append(fit(data.token_texts.get(data.chosen_ids[column], "?"), CELL_WIDTH - 1), style=styles.heading)
        chosen.append(" ")
    lines += [steps, chosen]

    for display_row in display:
        layer = rows - 1 - display_row
        line = Text()
        label_style = styles.cursor if layer == cursor.layer else styles.muted
        line.append(f"{labels[layer]:>3}", style=label_style)
        line.append(" ")
        line.append(FIRST_MARK if layer == first else " ", style=styles.mark)
        line.append(SETTLED_MARK if layer == settled else " ", style=styles.mark)
        if selected.chosen_rank is not None:
            rank = int(selected.chosen_rank[layer])
            line.append(" " + bar(rank_fraction(rank, scale), 6), style=styles.bar)
            line.append(f"{format_rank(rank):>5} ", style=styles.heading if rank == 1 else styles.muted)
        else:
            line.append(" " * RANK_WIDTH)
        for column in columns:
            lens = data.lenses[column]
            top_id = int(lens.top_ids[layer, 0])
            style = cell_style(float(lens.top_probs[layer, 0]), styles, chosen=top_id == data.chosen_ids[column])
            if layer == cursor.layer and column == cursor.column:
                style += styles.cursor
            line.append(fit(data.token_texts.get(top_id, "?"), CELL_WIDTH - 1), style=style)
            line.append(" ")
        lines.append(line)
    grid = Text("\n").join(lines)
    grid.no_wrap = True
    grid.overflow = "crop"
    return grid


def detail_renderable(data: LensContent, layer: int, column: int, styles: LensStyles, bar_width: int = 12) -> Group:
    """One cell in full: the layer's top candidates with probabilities, its entropy, and the chosen token there."""
    lens = data.lenses[column]
    labels = data.layer_labels
    last = lens.num_rows - 1
    where = (
        "the embeddings (before any layer)"
        if layer == 0
        else f"layer {labels[layer]} of {last} (the model's own output)"
        if layer == last
        else f"layer {labels[layer]} of {last}"
    )
    title = Text.assemble((f"step {data.step_indices[column]} · {where}", styles.heading))
    entropy = float(lens.entropy[layer])
    figures = Text.assemble(
        ("entropy ", styles.muted),
        f"{entropy:.2f} nats",
        (f" (as unsure as a pick among ~{math.exp(entropy):,.0f} equally likely tokens)", styles.muted),
    )
    chosen_text = data.token_texts.get(data.chosen_ids[column], "?")
    chosen = Text.assemble(("chosen ", styles.muted), (chosen_text, styles.chosen))
    if lens.chosen_rank is not None and lens.chosen_prob is not None:
        chosen.append(
            f"  rank {int(lens.chosen_rank[layer]):,} · p {format_probability(float(lens.chosen_prob[layer]))}"
        )
    rows = [title, figures, chosen, Text("top candidates at this layer", style=styles.heading)]
    for place, (token_id, probability) in enumerate(zip(lens.top_ids[layer].tolist(), lens.top_probs[layer].tolist())):
        row = Text(f"{place + 1:>2} ", style=styles.muted)
        style = styles.chosen if token_id == data.chosen_ids[column] else Style()
        row.append(fit(data.token_texts.get(token_id, "?"), 14), style=style)
        row.append(f" {format_probability(probability):>7} ")
        row.append(bar(probability, bar_width), style=styles.bar)
        rows.append(row)
    rest = max(0.0, 1.0 - float(lens.top_probs[layer].sum()))
    rows.append(Text(f"   all other tokens {format_probability(rest):>7}", style=styles.muted))
    return Group(*rows)
