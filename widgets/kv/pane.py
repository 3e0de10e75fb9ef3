"""KVCachePane: the KV cache's bytes per layer, its growth over the steps, the formula, and what-ifs.

A thin Textual widget over the renderables in kv_render; the App calls `show()` after every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from llmscope.kvcalc import KVEstimate
from llmscope.trace import KVStats
from llmscope.widgets.kv.render import GrowthChart, KVStyles, KVSummary, LayerBytesChart, WhatIfTable
from llmscope.widgets.theme_styles import component_text_style

WIDE_AT = 120
"""Pane width (columns) from which the two charts sit side by side."""


class KVCachePane(Widget):
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
        &.-wide #kv-charts { layout: horizontal; }
        &.-wide #kv-growth-box { margin-left: 2; }
        &.-unavailable #kv-message { display: block; }
        &.-unavailable #kv-body { display: none; }
    }
    """

    unavailable_reason: reactive[str | None] = reactive(None, init=False)
    """Why there is nothing to show (None while data is shown)."""

    tokens: reactive[int] = reactive(0, init=False)
    """Tokens held by the cache after the most recent step shown."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._history: list[KVStats] = []
        self._what_if: list[tuple[str, KVEstimate]] = []
        self._what_if_at_max: list[tuple[str, KVEstimate]] = []

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
            yield Static("What if…", classes="kv-section-title")
            yield Static(id="kv-what-if")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.call_after_refresh(self._render_views))
        self.watch_unavailable_reason(self.unavailable_reason)
        self._render_views()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width >= WIDE_AT, "-wide")
        self._render_views()  # chart heights follow the pane's height

    def show(
        self,
        *,
        history: Sequence[KVStats],
        what_if: Sequence[tuple[str, KVEstimate]],
        what_if_at_max_context: Sequence[tuple[str, KVEstimate]] | None = None,
    ) -> None:
        """Draw the cache after the latest step: `history` holds one KVStats per step so far (step 0 first).

        `what_if` comes from kvcalc.what_if at the current context; the optional
        `what_if_at_max_context` (same rows at the model's max context) adds a column.
        """
        if not history:
            self.show_unavailable("No step has run yet, so the cache is still empty.")
            return
        self._history = list(history)
        self._what_if = list(what_if)
        self._what_if_at_max = list(what_if_at_max_context or [])
        self.tokens = self._history[-1].tokens
        self.unavailable_reason = None
        self.remove_class("-unavailable")
        self._render_views()

    def show_unavailable(self, reason: str) -> None:
        """Replace the views with a calm sentence saying why there is no KV data."""
        self.unavailable_reason = reason

    def watch_unavailable_reason(self, reason: str | None) -> None:
        self.set_class(reason is not None or not self._history, "-unavailable")
        if reason is not None and self.is_mounted:
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
        if not self._history or not self.is_mounted:
            return
        styles = self.styles_for_renderables()
        latest = self._history[-1]
        chart_height = 3 if self.size.height < 30 else 4 if self.size.height < 40 else 6
        self.query_one("#kv-summary", Static).update(KVSummary(latest, step=len(self._history) - 1, styles=styles))
        self.query_one("#kv-layers", Static).update(LayerBytesChart(latest, height=chart_height, styles=styles))
        self.query_one("#kv-growth", Static).update(GrowthChart(self._history, height=chart_height, styles=styles))
        self.query_one("#kv-what-if", Static).update(
            WhatIfTable(
                self._what_if, at_max_context=self._what_if_at_max, measured_bytes=latest.total_bytes, styles=styles
            )
        )
