"""Number formats, bars and Rich styles shared by the sampler table and its summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.style import Style

from llmscope.format import format_count, format_probability

__all__ = ["SamplerStyles", "format_count", "format_logit", "format_probability", "probability_bar"]

STRIKE = Style(strike=True)
"""Always added to removed tokens' numbers, whatever the theme's style for them."""
BAR_EIGHTHS = " ▏▎▍▌▋▊▉"


def format_logit(logit: float) -> str:
    """Logit with two decimals ('-inf' for a masked token)."""
    return f"{logit:.2f}" if math.isfinite(logit) else "-inf"


def probability_bar(probability: float, width: int) -> str:
    """A left-aligned bar of `width` cells where a full bar is probability 1 (eighth-cell resolution)."""
    eighths = round(max(0.0, min(1.0, probability)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BAR_EIGHTHS[part] if part else "")).ljust(width)


@dataclass(frozen=True)
class SamplerStyles:
    """Rich styles for the table; the widget fills them from its CSS component classes."""

    header: Style = field(default_factory=lambda: Style(bold=True))
    muted: Style = field(default_factory=lambda: Style(dim=True))
    removed: Style = field(default_factory=lambda: Style(dim=True))
    remover: Style = field(default_factory=lambda: Style(color="red", bold=True))
    penalised: Style = field(default_factory=lambda: Style(color="yellow"))
    chosen: Style = field(default_factory=lambda: Style(color="cyan", bold=True))
    bar: Style = field(default_factory=lambda: Style(color="blue"))
    cursor: Style = field(default_factory=lambda: Style(reverse=True))
