"""The one-line status bar: model shape, device, speed and KV total, always visible."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from llmscope.format import format_bytes, format_compact_count, printable_text
from llmscope.trace import ModelInfo


def human_count(value: int) -> str:
    """135M, 4.2M, 950K: parameter counts the way people say them (llmscope.format.format_compact_count)."""
    return format_compact_count(value)


def human_bytes(value: int) -> str:
    """Bytes as every screen writes them (llmscope.format.format_bytes): '1.76 MiB'."""
    return format_bytes(value)


@dataclass(frozen=True)
class StatusFigures:
    """Live numbers for the bar; None hides a figure (before the first step, or in deterministic mode)."""

    step_ms: float | None = None
    tokens_per_second: float | None = None
    kv_bytes: int | None = None
    steps: int = 0
    state: str = ""


def status_text(info: ModelInfo | None, figures: StatusFigures, *, loading: str = "", source: str = "") -> Text:
    """Compose the bar's text; pure so that tests can check it without an app.

    `source` names what is loaded when it is not the live model ('replay of sampling-tour').
    """
    text = Text(no_wrap=True, overflow="ellipsis")
    if info is None:
        text.append(" llmscope ", style="bold reverse")
        text.append(f" {loading or 'starting…'}")
        return text
    text.append(f" {printable_text(info.name)} ", style="bold reverse")  # a session may name its model anything
    if source:
        text.append(f" {printable_text(source)} ", style="bold")
    text.append(f" {human_count(info.num_parameters)} params · {info.device} {info.dtype} · ")
    text.append(f"L{info.num_layers} H{info.num_heads} KV{info.num_kv_heads}")
    if info.is_moe:
        text.append(f" E{info.num_experts}·top{info.experts_per_token}")
    if figures.steps:  # tokens generated; every pane numbers steps from 0, the prefill
        text.append(f" · step {figures.steps - 1}")
    recorded = "recorded " if source else ""  # a replay shows the speed of the machine that made the file
    if figures.step_ms is not None:
        text.append(f" · {recorded}{figures.step_ms:.0f} ms/step")
    if figures.tokens_per_second is not None:
        text.append(f" · {figures.tokens_per_second:.1f} tok/s")
    if figures.kv_bytes is not None:
        text.append(f" · KV {human_bytes(figures.kv_bytes)}")
    if figures.state:
        text.append(f" · {figures.state}", style="bold")
    return text


class StatusBar(Widget):
    """Model, parameter count, device, dtype, layers/heads/KV heads/experts, step time, tokens/s, KV total."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $foreground;
    }
    """

    info: reactive[ModelInfo | None] = reactive(None, layout=False)
    """The loaded model (None while loading)."""
    figures: reactive[StatusFigures] = reactive(StatusFigures, layout=False)
    """Latest speed and size numbers."""
    loading_text: reactive[str] = reactive("")
    """Loading progress message shown before a model is ready."""
    source: reactive[str] = reactive("")
    """What is loaded when it is not a live model ('replay of sampling-tour'); empty for a live model."""

    def render(self) -> Text:
        return status_text(self.info, self.figures, loading=self.loading_text, source=self.source)
