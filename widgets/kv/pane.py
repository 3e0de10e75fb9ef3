"""KVCachePane: the KV cache's bytes per layer, its growth over the steps, the formula, and what-ifs.

A thin Textual widget over the renderables in kv/render.py; the App assigns `content` (a `KVContent`) after every step.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Static

from llmscope.panes import KVContent
from llmscope.widgets.kv.render import GrowthChart, KVStyles, KVSummary, LayerBytesChart, WhatIfTable
from llmscope.widgets.pane import Pane
from llmscope.widgets.theme_styles import component_text_style

WIDE_AT = 120
"""Pane width (columns) from which the two charts sit side by side."""


class KVCachePane(Pane[KVContent]):
    """How big the KV cache is, where the bytes sit, how it grew, and what other choices would cost."""

    HELP: ClassVar[str] = (
        "The KV cache keeps every past token's keys and values so each new token only computes its own. "
        "Its size follows one formula: 2 (keys and values) × layers × KV heads × head size × tokens × bytes "
        "per number; the pane prints it with this model's numbers next to the bytes measured in the real "
        "cache tensors (✓ when they agree). The bars show each layer's share (every layer caches the same "
        "shape), the growth chart shows the prompt's jump at prefill and then the same step for every "
        "generated token, and the what-if table shows what a smaller number format, plain multi-head "
        "attention (one KV head per query head instead of shared ones) or a sliding window would cost."
    )

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "kv-pane--keys",
        "kv-pane--values",
        "kv-pane--growth",
        "kv-pane--muted",
        "kv-pane--good",
        "kv-pane--warn",
        "kv-pane--heading",
    }

    DEFAULT_CSS = """
    KVCachePane {
        height: 1fr;
        width: 1fr;
        background: $surface;
        & > .kv-pane--keys { color: $primary; }
        & > .kv-pane--values { color: $accent; }
        & > .kv-pane--growth { color: $success; }
        & > .kv-pane--muted { color: $text-muted; }
        & > .kv-pane--good { color: $success; text-style: bold; }
        & > .kv-pane--warn { color: $warning; text-style: bold; }
        & > .kv-pane--heading { color: $foreground; text-style: bold; }
        #kv-message { padding: 1 2; color: $text-muted; display: none; }
        #kv-body { padding: 0 1; scrollbar-size-vertical: 1; }
        .kv-section-title { color: $accent; text-style: bold; margin-top: 1; }
        #kv-charts { height: auto; layout: vertical; }
        #kv-charts > Vertical { height: auto; width: 1fr; }
        #kv-what-if-box { height: auto; }
        &.-wide #kv-charts { layout: horizontal; }
        &.-wide #kv-growth-box { margin-left: 2; }
        &.-unavailable #kv-message { display: block; }
        &.-unavailable #kv-body { display: none; }
    }
    """

    WAITING = "No KV cache yet: run a step to fill it."
    PARTS: ClassVar[dict[str, str]] = {
        "summary": "#kv-summary",
        "layers": "#kv-layers-box",
        "growth": "#kv-growth-box",
        "what-if": "#kv-what-if-box",
    }

    tokens: reactive[int] = reactive(0, init=False)
    """Tokens held by the cache after the most recent step shown."""

    def compose(self) -> ComposeResult:
        yield Static("No KV cache yet: run a step to fill it.", id="kv-message")
        with VerticalScroll(id="kv-body"):
            yield Static(id="kv-summary")
            with Horizontal(id="kv-charts"):
                with Vertical(id="kv-layers-box"):
                    yield Static("Bytes per layer", classes="kv-section-title")
                    yield Static(id="kv-layers")
                with Vertical(id="kv-growth-box"):
                    yield Static("Growth over the steps", classes="kv-section-title")
                    yield Static(id="kv-growth")
            with Vertical(id="kv-what-if-box"):
                yield Static("What if…", classes="kv-section-title")
                yield Static(id="kv-what-if")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_views))

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")
        self._render_views()  # chart heights follow the pane's height

    def draw(self, data: KVContent) -> None:
        """Draw the cache after the latest step; with no step yet, say the cache is still empty."""
        if not data.history:
            self.show_unavailable("No step has run yet, so the cache is still empty.")
            return
        self.tokens = data.history[-1].tokens
        self._render_views()

    def draw_unavailable(self, reason: str) -> None:
        self.query_one("#kv-message", Static).update(f"KV cache: nothing to show. {reason}")

    def styles_for_renderables(self) -> KVStyles:
        """The theme's colours for the charts, read from this widget's component classes."""

        def style(name: str) -> Style:
            return component_text_style(self, f"kv-pane--{name}")

        return KVStyles(
            keys=style("keys"),
            values=style("values"),
            growth=style("growth"),
            muted=style("muted"),
            good=style("good"),
            warn=style("warn"),
            heading=style("heading"),
        )

    def _render_views(self) -> None:
        """Rebuild the renderables from the stored data (on new data or a theme change only)."""
        data = self.data
        if data is None or not data.history or not self.is_mounted:
            return
        styles = self.styles_for_renderables()
        latest = data.history[-1]
        chart_height = 3 if self.size.height < 30 else 4 if self.size.height < 40 else 6
        self.query_one("#kv-summary", Static).update(KVSummary(latest, step=len(data.history) - 1, styles=styles))
        self.query_one("#kv-layers", Static).update(LayerBytesChart(latest, height=chart_height, styles=styles))
        self.query_one("#kv-growth", Static).update(GrowthChart(data.history, height=chart_height, styles=styles))
        self.query_one("#kv-what-if", Static).update(
            WhatIfTable(
                data.what_if,
                at_max_context=data.what_if_at_max_context,
                measured_bytes=latest.total_bytes,
                styles=styles,
            )
        )
