"""Screenshots that read the same in every SVG renderer.

Rich writes one `<text>` per run of equal style, spaces as `&#160;`, stretched to its cells with `textLength`.
librsvg (rsvg-convert, and the many tools built on it) drops the spaces at either end of such a run and
stretches what is left over the whole length, so tinted tokens that start with a space run together
("Tobe ,or not"). Moving the run's start past its leading spaces and shortening it by its trailing ones draws
the same picture in a browser and in librsvg; the cell backgrounds are separate `<rect>`s and do not move.
"""

from __future__ import annotations

import html
import re

from rich.cells import cell_len

NBSP = "&#160;"
_TEXT = re.compile(
    r'<text\b(?P<head>[^>]*?)\bx="(?P<x>[-\d.]+)"(?P<mid>[^>]*?)\btextLength="(?P<length>[\d.]+)"(?P<tail>[^>]*)>(?P<body>.*?)</text>'
)


def _without_edge_spaces(match: re.Match[str]) -> str:
    body = match["body"]
    core = body
    lead = 0
    while core.startswith(NBSP):
        core, lead = core[len(NBSP) :], lead + 1
    trail = 0
    while core.endswith(NBSP):
        core, trail = core[: -len(NBSP)], trail + 1
    if not lead and not trail:
        return match[0]
    if not core:
        return ""  # only spaces: the background rect already draws the cells
    cells = cell_len(html.unescape(body))
    cell_width = float(match["length"]) / cells
    x = float(match["x"]) + lead * cell_width
    length = float(match["length"]) - (lead + trail) * cell_width
    return f'<text{match["head"]}x="{x:g}"{match["mid"]}textLength="{length:g}"{match["tail"]}>{core}</text>'


def renderer_safe_svg(svg: str) -> str:
    """The same screenshot with no text run starting or ending in a space (see the module docstring)."""
    return _TEXT.sub(_without_edge_spaces, svg)


class SafeScreenshotMixin:
    """Every screenshot the app exports (palette, demo slides, tests) goes through `renderer_safe_svg`."""

    def export_screenshot(self, *, title: str | None = None, simplify: bool = False) -> str:
        return renderer_safe_svg(super().export_screenshot(title=title, simplify=simplify))  # type: ignore[misc]
