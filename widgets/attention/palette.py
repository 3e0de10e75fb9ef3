"""A sequential heat palette that fades into the pane's own background, and half-block drawing with it.

On a dark background weights run from the background through purple and orange to pale yellow (an
inferno-like ramp); on a light background the same ramp runs the other way, so high always means contrast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style

RGB = tuple[int, int, int]

INFERNO_STOPS: tuple[RGB, ...] = (
    (0, 0, 4),
    (40, 11, 84),
    (101, 21, 110),
    (159, 42, 99),
    (212, 72, 66),
    (245, 125, 21),
    (250, 193, 39),
    (252, 255, 164),
)
"""Eight evenly spaced samples of matplotlib's 'inferno' map (dark to bright)."""

DEFAULT_LEVELS = 33
"""Level 0 is 'nothing here' (drawn as background); levels 1..32 are the ramp."""

DARK_BACKGROUND: RGB = (18, 18, 18)
LIGHT_BACKGROUND: RGB = (250, 250, 250)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _ramp(stops: Sequence[RGB], t: float) -> RGB:
    position = t * (len(stops) - 1)
    index = min(int(position), len(stops) - 2)
    return _mix(stops[index], stops[index + 1], position - index)


def is_dark(background: RGB) -> bool:
    """Perceived brightness below one half (ITU-R BT.601 weights)."""
    return (0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]) / 255 < 0.5


def to_levels(values: np.ndarray, levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """Map values in [0, 1] to palette levels: exactly 0 (or masked) → 0, anything positive → 1..levels-1."""
    scaled = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    ramp = 1 + np.rint(scaled * (levels - 2)).astype(np.int16)
    return np.where(scaled > 0, ramp, 0).astype(np.int16)


class HeatPalette:
    """Colours for heat levels on one background, with cached Rich styles for half-block pixels."""

    def __init__(self, background: RGB = DARK_BACKGROUND, *, levels: int = DEFAULT_LEVELS) -> None:
        self.background = background
        self.levels = levels
        dark = is_dark(background)
        stops = INFERNO_STOPS if dark else tuple(reversed(INFERNO_STOPS))
        # The ramp starts a little away from the background so the weakest non-zero weight is still visible;
        # pale yellow against a light background needs a gentler start than deep purple against a dark one.
        origin, strength = (0.18, 0.4) if dark else (0.1, 0.22)
        start = _mix(background, _ramp(stops, origin), strength)
        ramp_stops = (start, *(_ramp(stops, origin + (1 - origin) * i / 6) for i in range(1, 7)))
        self.colors: list[RGB | None] = [None] + [_ramp(ramp_stops, i / (levels - 2)) for i in range(levels - 1)]
        self._rich_colors: list[Color | None] = [None if c is None else Color.from_rgb(*c) for c in self.colors]
        self._styles: dict[tuple[int, int], Style] = {}

    def color(self, level: int) -> Color | None:
        """The Rich colour of a level (None for level 0, which shows the background)."""
        return self._rich_colors[level]

    def style(self, fg_level: int, bg_level: int) -> Style:
        """A cached style with the two levels as foreground and background (0 leaves that side unset)."""
        key = (fg_level, bg_level)
        style = self._styles.get(key)
        if style is None:
            style = Style(color=self._rich_colors[fg_level], bgcolor=self._rich_colors[bg_level])
            self._styles[key] = style
        return style

    def contrast_text(self, level: int) -> Style:
        """Text that stays readable on top of a level's colour."""
        color = self.colors[level] or self.background
        return Style(color="black" if not is_dark(color) else "white", bgcolor=self._rich_colors[level])

    def halfblock_segments(self, top: Sequence[int], bottom: Sequence[int] | None = None) -> list[Segment]:
        """One text row showing two pixel rows (top via '▀' foreground, bottom via background), runs merged."""
        if bottom is None:
            bottom = [0] * len(top)
        segments: list[Segment] = []
        run_text = ""
        run_style: Style | None = None
        for upper, lower in zip(top, bottom):
            upper, lower = int(upper), int(lower)
            if upper == 0 and lower == 0:
                char, style = " ", self.style(0, 0)
            elif lower == 0:
                char, style = "▀", self.style(upper, 0)
            elif upper == 0:
                char, style = "▄", self.style(lower, 0)
            elif upper == lower:
                char, style = "█", self.style(upper, 0)
            else:
                char, style = "▀", self.style(upper, lower)
            if style is run_style:
                run_text += char
            else:
                if run_text:
                    segments.append(Segment(run_text, run_style))
                run_text, run_style = char, style
        if run_text:
            segments.append(Segment(run_text, run_style))
        return segments

    def swatch(self, width: int) -> list[Segment]:
        """A left-to-right ramp from the weakest to the strongest level, `width` cells wide."""
        if width <= 0:
            return []
        steps = [1 + round(i * (self.levels - 2) / max(1, width - 1)) for i in range(width)]
        return [Segment("█", self.style(level, 0)) for level in steps]
