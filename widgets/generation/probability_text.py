"""Prompt plus generated text, each generated token tinted by the probability it had when it was chosen.

Text is split into paragraphs at newlines so the widget can wrap and cache each paragraph on its own: while
generating, only the last paragraph changes from one step to the next.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from llmscope.format import NEWLINE_GLYPH, UNDECODABLE_BYTES, printable_text
from llmscope.trace import TokenInfo


@dataclass(frozen=True)
class ProbabilityBand:
    """One colour of the probability scale: tokens whose probability is at least `lower` (and below the next band)."""

    lower: float
    label: str
    meaning: str


PROBABILITY_BANDS: tuple[ProbabilityBand, ...] = (
    ProbabilityBand(0.0, "<0.1", "surprising"),
    ProbabilityBand(0.1, "0.1–0.3", "unlikely"),
    ProbabilityBand(0.3, "0.3–0.5", "plausible"),
    ProbabilityBand(0.5, "0.5–0.7", "likely"),
    ProbabilityBand(0.7, "≥0.7", "expected"),
)
"""Five bands from red (the model gave the chosen token under 10 %) to green (70 % or more)."""


def probability_band(probability: float) -> int:
    """Index into PROBABILITY_BANDS for a probability (NaN or negative counts as the lowest band)."""
    if math.isnan(probability):
        return 0
    band = 0
    for index, candidate in enumerate(PROBABILITY_BANDS):
        if probability >= candidate.lower:
            band = index
    return band


@dataclass(frozen=True)
class TextStyles:
    """Rich styles for the prompt, each band, special tokens, the selection and the stop line (theme-filled by the widget)."""

    prompt: Style = field(default_factory=lambda: Style(dim=True))
    special: Style = field(default_factory=lambda: Style(italic=True, bold=True))
    bands: tuple[Style, ...] = field(
        default_factory=lambda: (
            Style(bgcolor="#8f2f2b"),
            Style(bgcolor="#8a5220"),
            Style(bgcolor="#6e6314"),
            Style(bgcolor="#3f5a26"),
            Style(bgcolor="#23402a"),
        )
    )
    selected: Style = field(default_factory=lambda: Style(reverse=True, bold=True, underline=True))
    marker: Style = field(default_factory=lambda: Style(dim=True))
    stop: Style = field(default_factory=lambda: Style(dim=True, italic=True))


Piece = tuple[str, str, int]
"""(text, style key, generation step or -1 for the prompt): the unit both caching and drawing work on."""

NEWLINE_MARKER = NEWLINE_GLYPH
"""Drawn where a generated token produced a newline, so a chosen newline stays visible and clickable."""
CURSOR = "▌"
"""Drawn after the last generated token while generation has not stopped."""


def _decoded(decoder: codecs.IncrementalDecoder, token: TokenInfo) -> str:
    """Text a token adds to the running UTF-8 stream ('' while a multi-byte character is still incomplete)."""
    if token.special:
        return decoder.decode(b"", final=True) + token.text
    return decoder.decode(token.raw_bytes)


def build_paragraphs(
    prompt_tokens: list[TokenInfo],
    generated: list[tuple[TokenInfo, float]],
    *,
    stop_reason: str | None = None,
    selected: int | None = None,
) -> list[tuple[Piece, ...]]:
    """Split prompt and generated text into newline-separated paragraphs of styled pieces.

    A character split over several byte tokens is drawn once, with the lowest probability among its tokens,
    and is attributed to the first of them (the step that started it).
    """
    paragraphs: list[list[Piece]] = [[]]

    def add(text: str, key: str, step: int, mark_newlines: bool) -> None:
        for number, line in enumerate(text.split("\n")):
            if number:
                if mark_newlines:
                    paragraphs[-1].append((NEWLINE_MARKER, f"{key}:marker", step))
                paragraphs.append([])
            if line:  # no control character reaches the terminal raw (an ESC from the model shows as ␛)
                paragraphs[-1].append((printable_text(line), key, step))

    decoder = codecs.getincrementaldecoder("utf-8")(errors=UNDECODABLE_BYTES)  # a stray byte reads '‹8f›' here too
    for token in prompt_tokens:
        add(_decoded(decoder, token), "special" if token.special else "prompt", -1, False)
    pending_step: int | None = None
    pending_probability = 1.0
    for step, (token, probability) in enumerate(generated):
        if pending_step is None:
            pending_step, pending_probability = step, probability
        else:
            pending_probability = min(pending_probability, probability)
        text = _decoded(decoder, token)
        if not text and not token.special:
            continue  # incomplete character: wait for the token that finishes it
        band_key = "selected" if selected == pending_step else f"band{probability_band(pending_probability)}"
        add(text, f"{band_key}:special" if token.special else band_key, pending_step, True)
        pending_step = None
    if pending_step is not None:  # the stream ends inside a character
        band_key = "selected" if selected == pending_step else f"band{probability_band(pending_probability)}"
        add(decoder.decode(b"", final=True), band_key, pending_step, True)
    if stop_reason:
        if paragraphs[-1]:
            paragraphs.append([])
        paragraphs[-1].append((f"■ {stop_reason}", "stop", -1))
    elif generated or prompt_tokens:
        paragraphs[-1].append((CURSOR, "cursor", -1))
    return [tuple(paragraph) for paragraph in paragraphs]


def piece_style(key: str, styles: TextStyles) -> Style:
    """Resolve a piece's style key ('prompt', 'band3', 'band3:special', 'selected:marker', …)."""
    base, _, modifier = key.partition(":")
    if base == "prompt":
        style = styles.prompt
    elif base == "special":
        style = styles.prompt + styles.special
    elif base == "selected":
        style = styles.selected
    elif base in ("stop", "cursor"):
        style = styles.stop
    else:
        style = styles.bands[int(base.removeprefix("band"))]
    if modifier == "special":
        style = style + styles.special
    elif modifier == "marker":
        style = style + styles.marker
    return style


def paragraph_text(paragraph: Iterable[Piece], styles: TextStyles) -> Text:
    """One paragraph as Rich Text; generated pieces carry their step in the style's meta, for mouse clicks."""
    text = Text()
    for content, key, step in paragraph:
        style = piece_style(key, styles)
        if step >= 0:
            style = style + Style(meta={"step": step})
        text.append(content, style)
    return text


class ProbabilityLegend:
    """Rich renderable: one swatch per band ('<0.1  0.1–0.3 …') so the colours can be read without help."""

    def __init__(self, styles: TextStyles | None = None) -> None:
        self.styles = styles or TextStyles()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = options.max_width >= 70
        line = Text("p(chosen) " if wide else "p ", style=self.styles.stop)
        for index, band in enumerate(PROBABILITY_BANDS):
            line.append(f" {band.label} ", self.styles.bands[index])
            line.append(" ")
        if wide:
            line.append(" prompt", self.styles.prompt)
        yield line


class GeneratedTextRenderable:
    """Rich renderable of the whole view (prompt, coloured generation, stop reason, legend); used by tests and exports."""

    def __init__(
        self,
        prompt_tokens: list[TokenInfo],
        generated: list[tuple[TokenInfo, float]],
        *,
        stop_reason: str | None = None,
        selected: int | None = None,
        styles: TextStyles | None = None,
        legend: bool = True,
    ) -> None:
        self.paragraphs = build_paragraphs(prompt_tokens, generated, stop_reason=stop_reason, selected=selected)
        self.styles = styles or TextStyles()
        self.legend = legend

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for paragraph in self.paragraphs:
            yield paragraph_text(paragraph, self.styles)
        if self.legend:
            yield ProbabilityLegend(self.styles)
