"""Generated-text view: probability bands, joined text, byte-split characters, styles, and pilot tests."""

from __future__ import annotations

import asyncio
import math

from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult

from llmscope.panes import GenerationContent
from llmscope.trace import TokenInfo
from llmscope.widgets.generation import pane as generated_module
from llmscope.widgets.generation.pane import GeneratedText, GeneratedTextRenderable, GeneratedTextView, probability_band
from llmscope.widgets.generation.probability_text import PROBABILITY_BANDS, TextStyles


def tok(token_id: int, raw: bytes, special: bool = False) -> TokenInfo:
    return TokenInfo(
        token_id, raw.decode("utf-8", errors="replace"), raw.decode("utf-8", errors="replace"), raw, special
    )


PROMPT = [tok(504, b"The"), tok(3575, b" capital"), tok(282, b" of"), tok(4649, b" France"), tok(314, b" is")]
GENERATED = [(tok(7042, b" Paris"), 0.95), (tok(30, b"."), 0.05), (tok(198, b"\n"), 0.2), (tok(1779, b"It"), 0.6)]


def render(renderable: object, width: int = 80) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def test_band_boundaries() -> None:
    assert probability_band(0.05) == 0
    assert probability_band(0.95) == len(PROBABILITY_BANDS) - 1 == 4
    assert [probability_band(p) for p in (0.0, 0.0999, 0.1, 0.2999, 0.3, 0.4999, 0.5, 0.6999, 0.7, 1.0)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]
    assert probability_band(math.nan) == 0


def test_generated_text_joins_to_the_right_string() -> None:
    lines = render(GeneratedTextRenderable(PROMPT, GENERATED, stop_reason="end-of-sequence token", legend=False))
    # The newline token breaks the line (its ⏎ marker stays visible where it was generated).
    assert [line.rstrip() for line in lines] == ["The capital of France is Paris.⏎", "It", "■ end-of-sequence token"]
    joined = "".join(line.rstrip() + "\n" for line in lines[:2]).replace("⏎\n", "\n").rstrip("\n")
    expected = "".join(t.text for t in PROMPT) + "".join(t.text for t, _ in GENERATED)
    assert joined == expected == "The capital of France is Paris.\nIt"


def test_cursor_shows_while_generation_runs() -> None:
    lines = render(GeneratedTextRenderable(PROMPT, GENERATED[:1], legend=False))
    assert lines[0].rstrip() == "The capital of France is Paris▌"


def test_character_split_over_byte_tokens_is_drawn_once() -> None:
    paint = "🎨".encode()  # f0 9f 8e a8
    generated = [(tok(1, b" "), 0.9), (tok(2, paint[:2]), 0.8), (tok(3, paint[2:]), 0.02)]
    lines = render(GeneratedTextRenderable([], generated, legend=False))
    assert lines[0].rstrip() == " 🎨▌"
    assert "\ufffd" not in "".join(lines)


def band_styles() -> TextStyles:
    """Distinct background colours per band so rendered segments reveal which band they got."""
    colours = ("#100000", "#200000", "#300000", "#400000", "#500000")
    return TextStyles(bands=tuple(Style(bgcolor=c) for c in colours), selected=Style(bgcolor="#0000ff"))


def segments_by_text(renderable: object) -> dict[str, Style]:
    console = Console(width=80, color_system="truecolor")
    return {segment.text: segment.style for segment in console.render(renderable) if segment.style}


def test_tokens_are_coloured_by_their_band() -> None:
    styles = band_styles()
    segments = segments_by_text(GeneratedTextRenderable(PROMPT, GENERATED, styles=styles, legend=False))
    assert segments[" Paris"].bgcolor.name == "#500000"  # 0.95 → highest band
    assert segments["."].bgcolor.name == "#100000"  # 0.05 → lowest band
    assert segments["It"].bgcolor.name == "#400000"  # 0.6 → 0.5–0.7
    assert segments[" Paris"].meta["step"] == 0 and segments["It"].meta["step"] == 3
    assert segments[" is"].bgcolor is None  # prompt text is not banded


def test_split_character_takes_the_lowest_probability_of_its_tokens() -> None:
    paint = "🎨".encode()
    generated = [(tok(2, paint[:2]), 0.8), (tok(3, paint[2:]), 0.02)]
    segments = segments_by_text(GeneratedTextRenderable([], generated, styles=band_styles(), legend=False))
    assert segments["🎨"].bgcolor.name == "#100000" and segments["🎨"].meta["step"] == 0


def test_selected_token_uses_the_selected_style() -> None:
    segments = segments_by_text(
        GeneratedTextRenderable(PROMPT, GENERATED, selected=1, styles=band_styles(), legend=False)
    )
    assert segments["."].bgcolor.name == "#0000ff"
    assert segments[" Paris"].bgcolor.name == "#500000"


def test_legend_lists_every_band() -> None:
    legend = render(GeneratedTextRenderable([], [], legend=True), width=100)[-1]
    for band in PROBABILITY_BANDS:
        assert band.label in legend
    assert "<0.1" in legend and "≥0.7" in legend


# ----- the widget ----------------------------------------------------------------------------------------


class GeneratedApp(App[None]):
    """Mounts only the generated-text view and records TokenClicked messages."""

    def __init__(self) -> None:
        super().__init__()
        self.clicked: list[int] = []

    def compose(self) -> ComposeResult:
        yield GeneratedText()

    def on_generated_text_token_clicked(self, message: GeneratedText.TokenClicked) -> None:
        self.clicked.append(message.step_index)


def test_pilot_keys_and_clicks_post_token_clicked() -> None:
    async def scenario() -> None:
        app = GeneratedApp()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(GeneratedText)
            view.content = GenerationContent(tuple(PROMPT), tuple(GENERATED), stop_reason="end-of-sequence token")
            view.focus()
            await pilot.pause()
            await pilot.press("right", "right")
            await pilot.pause()
            assert view.selected == 1 and app.clicked == [0, 1]
            # "It" (step 3) starts the second line of the text view.
            await pilot.click(GeneratedTextView, offset=(0, 1))
            await pilot.pause()
            assert app.clicked[-1] == 3 and view.selected == 3
            await pilot.click(GeneratedTextView, offset=(2, 0))  # "e" of the prompt: not a generated token
            await pilot.pause()
            assert app.clicked[-1] == 3 and len(app.clicked) == 3

    run(scenario)


def run(coroutine_function) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(coroutine_function())


def test_pilot_follows_the_end_of_a_long_text_and_rewraps_only_the_last_paragraph(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    prompt = [tok(i, f"line {i}\n".encode()) for i in range(300)]
    calls: list[int] = []
    real_paragraph_text = generated_module.paragraph_text

    def counting(paragraph, styles):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real_paragraph_text(paragraph, styles)

    monkeypatch.setattr(generated_module, "paragraph_text", counting)

    async def scenario() -> None:
        app = GeneratedApp()
        async with app.run_test(size=(80, 24)) as pilot:
            widget = app.query_one(GeneratedText)
            widget.content = GenerationContent(tuple(prompt), tuple([(tok(1, b"Once"), 0.5)]))
            await pilot.pause()
            text_view = app.query_one(GeneratedTextView)
            assert text_view.virtual_size.height == 301
            assert text_view.max_scroll_y > 0 and text_view.scroll_y == text_view.max_scroll_y
            calls.clear()
            widget.content = GenerationContent(tuple(prompt), tuple([(tok(1, b"Once"), 0.5), (tok(2, b" upon"), 0.4)]))
            await pilot.pause()
            assert len(calls) == 1  # only the paragraph being written was wrapped again
            assert text_view.scroll_y == text_view.max_scroll_y
            assert "Once upon" in text_view.render_line(text_view.size.height - 1).text

    run(scenario)


def test_pilot_unavailable_and_empty_states() -> None:
    async def scenario() -> None:
        app = GeneratedApp()
        async with app.run_test(size=(80, 24)) as pilot:
            widget = app.query_one(GeneratedText)
            await pilot.pause()
            assert "Nothing generated yet" in app.query_one(GeneratedTextView).render_line(0).text
            widget.show_unavailable("the model is still loading.")
            await pilot.pause()
            message = app.query_one("#generated-unavailable")
            assert message.display and "the model is still loading." in str(message.render())
            widget.content = GenerationContent(tuple(PROMPT), tuple(GENERATED))
            await pilot.pause()
            assert not message.display

    run(scenario)


def test_help_is_written_for_learners() -> None:
    assert len(GeneratedText.HELP) > 200 and "probability" in GeneratedText.HELP
