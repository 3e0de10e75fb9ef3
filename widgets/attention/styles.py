"""The handful of text styles the attention renderables use, with defaults for rendering outside an app."""

from __future__ import annotations

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
