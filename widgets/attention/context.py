"""The context as running text, each token shaded by how much one query attends to it.

Used under a decode step's single-row zoom: the new token's attention reads like highlighted text, and
the window of lines follows the cursor so a 2,000-token context stays a few calm lines.
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment

from llmscope.widgets.attention.data import AttentionData
from llmscope.widgets.attention.palette import HeatPalette, to_levels
from llmscope.widgets.attention.styles import AttentionStyles


def flow_tokens(labels: list[str], width: int) -> list[list[int]]:
    """Token indices wrapped into lines of at most `width` cells (a token wider than a line gets its own)."""
    lines: list[list[int]] = [[]]
    used = 0
    for index, label in enumerate(labels):
        size = min(width, max(1, cell_len(label)))
        if used + size > width and lines[-1]:
            lines.append([])
            used = 0
        lines[-1].append(index)
        used += size
    return lines


def context_lines(
    data: AttentionData,
    *,
    layer: int,
    head: int,
    row: int,
    cursor_key: int,
    scaled_row: np.ndarray,
    width: int,
    height: int,
    palette: HeatPalette,
    styles: AttentionStyles,
) -> list[list[Segment]]:
    """A caption and up to `height - 1` lines of the context, tokens shaded by `scaled_row` (values in [0, 1])."""
    if height < 2 or width < 8:
        return []
    position = data.query_position(row)
    room = height - 1
    # Only the tokens that can reach the screen are flowed: a screenful of cells either side of the cursor, so the
    # work follows the pane's size, not the context's length (a query never sees later keys).
    anchor = min(cursor_key, position)
    labels, budget = data.token_labels, room * width
    start, used = anchor, 0
    while start > 0 and used < budget:
        start -= 1
        used += min(width, max(1, cell_len(labels[start])))
    end, used = anchor + 1, 0
    while end <= position and used < budget:
        used += min(width, max(1, cell_len(labels[end])))
        end += 1
    visible = list(labels[start:end])
    caption = f"the context, shaded by the weight L{layer} H{head} gives each token for query {position}"
    lines: list[list[Segment]] = [[Segment(set_cell_size(caption, width), styles.muted)]]
    flowed = flow_tokens(visible, width)
    cursor_index = anchor - start
    cursor_line = next((n for n, line in enumerate(flowed) if line and line[0] <= cursor_index <= line[-1]), 0)
    first = max(0, min(cursor_line - room // 2, len(flowed) - room))
    levels = to_levels(scaled_row[start : start + len(visible)], palette.levels)
    for line in flowed[first : first + room]:
        segments: list[Segment] = []
        for index in line:
            key = start + index
            text = set_cell_size(visible[index], min(width, max(1, cell_len(visible[index]))))
            style = palette.contrast_text(int(levels[index])) if levels[index] else styles.label
            if key == cursor_key:
                style = style + styles.cursor + styles.selected
            segments.append(Segment(text, style))
        lines.append(segments)
    return lines
