"""The attention pane's look: its CSS, and the handful of text styles its renderables use (defaults for rendering
outside an app)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rich.style import Style


@dataclass(frozen=True)
class AttentionStyles:
    """Rich styles for labels and highlights; the widget fills them from its CSS component classes."""

    label: Style = field(default_factory=lambda: Style())
    muted: Style = field(default_factory=lambda: Style(dim=True))
    selected: Style = field(default_factory=lambda: Style(reverse=True, bold=True))
    """A selected axis label (layer, head, query row, key)."""
    cursor: Style = field(default_factory=lambda: Style(color="bright_cyan", bold=True))
    """The frame around the selected cell; its colour also marks the visible window in overviews."""
    window: Style = field(default_factory=lambda: Style(color="grey50"))
    """The underline marking which keys the zoom window shows, in the whole-row overview."""
    group: Style = field(default_factory=lambda: Style(dim=True))
    """Brackets over heads that share a KV head."""
    selected_group: Style = field(default_factory=lambda: Style(color="bright_cyan"))
    """The bracket of the KV group that holds the selected head."""


COMPONENT_CLASSES = (
    "attention--label",
    "attention--muted",
    "attention--selected",
    "attention--cursor",
    "attention--window",
    "attention--group",
    "attention--selected-group",
)
"""The pane's CSS component classes, one per AttentionStyles field (the theme decides their colours)."""


def styles_from(component_style: Callable[[str], Style]) -> AttentionStyles:
    """AttentionStyles read from the pane's component classes (its `get_component_rich_style`)."""
    return AttentionStyles(
        label=component_style("attention--label"),
        muted=component_style("attention--muted"),
        selected=component_style("attention--selected"),
        cursor=component_style("attention--cursor"),
        window=component_style("attention--window"),
        group=component_style("attention--group"),
        selected_group=component_style("attention--selected-group"),
    )


ATTENTION_CSS = """
AttentionPane {
    layout: vertical;
    width: 1fr;
    height: 1fr;
    background: $surface;
    & > #attention-title { height: 1; padding: 0 1; background: $panel; color: $foreground; }
    &:focus > #attention-title { background: $primary 40%; }
    & > #attention-body { height: 1fr; }
    & #attention-canvas { padding: 0 1; }
    & #attention-side { display: none; width: 34; padding: 0 1; border-left: vkey $panel; }
    &.-wide #attention-side { display: block; }
    & > #attention-legend { height: 1; padding: 0 1; color: $text-muted; }
    & > #attention-status { height: 1; padding: 0 1; background: $panel; }
    & > #attention-unavailable {
        display: none; height: 1fr; content-align: center middle; text-align: center;
        color: $text-muted; padding: 1 4;
    }
    &.-unavailable > #attention-body, &.-unavailable > #attention-legend,
    &.-unavailable > #attention-status { display: none; }
    &.-unavailable > #attention-unavailable { display: block; }
    & > .attention--label { color: $foreground; }
    & > .attention--muted { color: $text-muted; }
    & > .attention--selected { color: $foreground; background: $accent 45%; text-style: bold; }
    & > .attention--cursor { color: $accent; text-style: bold; }
    & > .attention--window { color: $foreground 20%; }
    & > .attention--group { color: $text-muted; }
    & > .attention--selected-group { color: $accent; }
}
"""
"""The pane's default layout and colours (theme variables only, so every theme works)."""
