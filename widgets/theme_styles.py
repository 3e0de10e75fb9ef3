"""Read a widget's component-class styles as plain Rich text styles for its pure renderables."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def component_text_style(widget: Widget, name: str) -> Style:
    """Colour and text attributes of component class `name`, without its background.

    The colour comes from the full style, so theme colours with alpha ("auto 60%", $text-muted)
    are blended against the widget's real background and stay readable in light and dark themes.
    """
    full = widget.get_component_rich_style(name)
    partial = widget.get_component_rich_style(name, partial=True)
    return Style(
        color=full.color,
        bold=partial.bold,
        italic=partial.italic,
        dim=partial.dim,
        underline=partial.underline,
        reverse=partial.reverse,
    )
