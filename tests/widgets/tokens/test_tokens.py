"""Tokenizer inspector: counts against hand counts, chip and byte rendering, selection detail, and pilot tests."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget

from llmscope.panes import TokensContent
from llmscope.trace import TokenInfo
from llmscope.widgets.tokens.chips import ChipStyles, TokenChips
from llmscope.widgets.tokens.pane import TokenChipView, TokenInspector
from llmscope.widgets.tokens.summary import CountsLine, DetailLine, count_text, detail_text, legend_text


def tok(token_id: int, piece: str, raw: bytes, start: int | None, end: int | None, special: bool = False) -> TokenInfo:
    """A token built by hand: text is what the bytes decode to on their own."""
    return TokenInfo(token_id, piece, raw.decode("utf-8", errors="replace"), raw, special, start, end)


# "Hello, how are you?" as SmolLM2 cuts it: ['Hello', ',', 'Ġhow', 'Ġare', 'Ġyou', '?'].
HELLO_TEXT = "Hello, how are you?"
HELLO = [
    tok(19556, "Hello", b"Hello", 0, 5),
    tok(28, ",", b",", 5, 6),
    tok(638, "Ġhow", b" how", 6, 10),
    tok(359, "Ġare", b" are", 10, 14),
    tok(346, "Ġyou", b" you", 14, 18),
    tok(47, "?", b"?", 18, 19),
]
# '猫' (U+732B) is e7 8c ab in UTF-8; byte-level BPE may split it into one token per byte.
CAT_SPLIT = [tok(178, "ç", b"\xe7", 0, 1), tok(230, "Į", b"\x8c", 0, 1), tok(121, "«", b"\xab", 0, 1)]
CAT_WHOLE = [tok(5000, "猫", "猫".encode(), 0, 1)]


def render(renderable: object, width: int = 80) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


# ----- counts --------------------------------------------------------------------------------------------


def test_counts_ascii_match_hand_counts() -> None:
    counts = count_text(HELLO, HELLO_TEXT)
    # 19 characters, all ASCII so 19 bytes; 4 words; 6 tokens.
    assert (counts.characters, counts.utf8_bytes, counts.words, counts.tokens) == (19, 19, 4, 6)
    assert abs(counts.bytes_per_token - 19 / 6) < 1e-12
    assert abs(counts.chars_per_token - 19 / 6) < 1e-12
    assert abs(counts.tokens_per_word - 6 / 4) < 1e-12
    line = render(CountsLine(counts, vocab_size=49152, family="byte_level"), width=200)
    assert "19 chars" in line and "19 bytes" in line and "6 tokens" in line and "4 words" in line
    assert "3.17 bytes/token" in line and "1.50 tokens/word" in line
    assert "byte-level BPE" in line and "vocab 49,152" in line


def test_counts_emoji_and_cjk_match_hand_counts() -> None:
    emoji_text = "I 👍 it"  # I, space, 👍 (one code point, 4 bytes), space, i, t
    emoji = count_text([tok(1, "I", b"I", 0, 1)] * 5, emoji_text)
    assert (emoji.characters, emoji.utf8_bytes, emoji.words) == (6, 9, 3)
    cjk_text = "猫坐在垫子上。"  # 7 characters of 3 UTF-8 bytes each, no spaces
    cjk = count_text([tok(1, "x", b"x", 0, 1)] * 12, cjk_text)
    assert (cjk.characters, cjk.utf8_bytes, cjk.words, cjk.tokens) == (7, 21, 1, 12)
    assert abs(cjk.bytes_per_token - 21 / 12) < 1e-12
    assert abs(cjk.chars_per_token - 7 / 12) < 1e-12


def test_counts_fold_to_two_lines_when_narrow() -> None:
    counts = count_text(HELLO, HELLO_TEXT)
    wide = render(CountsLine(counts, vocab_size=49152, family="byte_level"), width=200).strip().splitlines()
    narrow = render(CountsLine(counts, vocab_size=49152, family="byte_level"), width=60).strip().splitlines()
    assert len(wide) == 1
    assert len(narrow) == 2 and all(len(line) <= 60 for line in narrow)


def test_counts_warn_when_the_tokens_do_not_spell_the_text_back() -> None:
    """A tokenizer that drops a character (SmolLM2 drops 0x04) loses the round trip; the pane says so."""
    text = "a\x04b"
    dropped = [tok(1, "a", b"a", 0, 1), tok(2, "b", b"b", 2, 3)]
    counts = count_text(dropped, text)
    assert not counts.round_trip
    assert "do not spell the text back" in render(CountsLine(counts), width=200)
    whole = count_text([*dropped[:1], tok(3, "\x04", b"\x04", 1, 2), dropped[1]], text)
    assert whole.round_trip and "spell" not in render(CountsLine(whole), width=200)


def test_empty_text_counts_are_zero_without_dividing_by_zero() -> None:
    counts = count_text([], "")
    assert (counts.characters, counts.tokens, counts.bytes_per_token, counts.tokens_per_word) == (0, 0, 0.0, 0.0)


# ----- chips ---------------------------------------------------------------------------------------------


def test_chips_make_whitespace_visible_and_show_ids() -> None:
    tokens = [
        tok(1, "a", b"a", 0, 1),
        tok(2, "Ġb", b" b", 1, 3),
        tok(3, "ĉ", b"\t", 3, 4),
        tok(4, "Ċ", b"\n", 4, 5),
        tok(5, "c", b"c", 5, 6),
    ]
    lines = render(TokenChips(tokens, show_ids=True), width=40).splitlines()
    assert lines[0].split() == ["a", "␣b", "⇥", "⏎"]  # one glyph per whitespace kind (llmscope.format)
    assert lines[1].split() == ["1", "2", "3", "4"]
    assert lines[2].split() == ["c"]  # the newline token ended the row
    without_ids = render(TokenChips(tokens, show_ids=False), width=40).splitlines()
    assert without_ids[0].split() == ["a", "␣b", "⇥", "⏎"] and without_ids[1].split() == ["c"]


def test_chips_wrap_to_the_width() -> None:
    tokens = [tok(i, "word", b"word", 4 * i, 4 * i + 4) for i in range(10)]
    lines = render(TokenChips(tokens, show_ids=False), width=20).strip().splitlines()
    # Each chip is 4 cells plus a 1-cell gap: four chips fit in 20 columns (4*4 + 3 gaps = 19).
    assert [line.split() for line in lines] == [["word"] * 4, ["word"] * 4, ["word"] * 2]


def test_special_tokens_use_the_special_style() -> None:
    special_bg, normal_bg = "#ff0000", "#00ff00"
    styles = ChipStyles(special=Style(bgcolor=special_bg), even=Style(bgcolor=normal_bg), odd=Style(bgcolor=normal_bg))
    tokens = [tok(1, "<|im_start|>", b"<|im_start|>", 0, 12, special=True), tok(4093, "user", b"user", 12, 16)]
    console = Console(width=60, color_system="truecolor")
    segments = list(console.render(TokenChips(tokens, show_ids=False, styles=styles)))
    special_segment = next(s for s in segments if "<|im_start|>" in s.text)
    user_segment = next(s for s in segments if "user" in s.text)
    assert special_segment.style is not None and special_segment.style.bgcolor.name == special_bg
    assert user_segment.style is not None and user_segment.style.bgcolor.name == normal_bg


def test_split_character_shows_its_bytes_in_chip_view() -> None:
    assert render(TokenChips(CAT_SPLIT, show_ids=False)).split() == ["‹e7›", "‹8c›", "‹ab›"]
    assert render(TokenChips(CAT_WHOLE, show_ids=False)).split() == ["猫"]


def test_byte_view_shows_utf8_hex_of_the_cat() -> None:
    whole = render(TokenChips(CAT_WHOLE, byte_view=True, show_ids=False))
    assert "e7 8c ab" in whole
    split = render(TokenChips(CAT_SPLIT, byte_view=True, show_ids=True)).splitlines()
    assert split[0].split() == ["ç", "Į", "«"]  # the vocabulary's own spelling
    assert split[1].split() == ["e7", "8c", "ab"]
    assert split[2].split() == ["178", "230", "121"]


def test_byte_view_shows_pieces_and_space_bytes() -> None:
    lines = render(TokenChips(HELLO[:3], byte_view=True, show_ids=False), width=60).splitlines()
    assert lines[0].split() == ["Hello", ",", "Ġhow"]
    assert "48 65 6c 6c 6f" in lines[1] and "2c" in lines[1] and "20 68 6f 77" in lines[1]


def test_legend_explains_markers_per_family() -> None:
    byte_level = render(legend_text(True, "byte_level"), width=120)
    assert "Ġ space" in byte_level and "Ċ newline" in byte_level
    sentencepiece = render(legend_text(True, "sentencepiece"), width=120)
    assert "▁ space" in sentencepiece and "<0xNN> byte fallback" in sentencepiece
    chips = render(legend_text(False, None), width=120)
    assert "␣ space" in chips and "⏎ newline" in chips


# ----- detail --------------------------------------------------------------------------------------------


def test_detail_shows_id_bytes_and_offsets() -> None:
    line = render(detail_text(HELLO, 2, HELLO_TEXT), width=200)
    assert "position 2" in line and "id 638" in line and "'Ġhow'" in line
    assert "bytes 20 68 6f 77" in line
    assert "text[6:10] '␣how'" in line  # HELLO_TEXT[6:10] == ' how', its space shown as in the chips
    assert HELLO_TEXT[6:10] == " how"


def test_detail_of_a_split_character_names_the_shared_span() -> None:
    line = render(detail_text(CAT_SPLIT, 1, "猫"), width=200)
    assert "bytes 8c" in line and "text[0:1] '猫'" in line and "2 of 3 tokens" in line
    assert "part of a multi-byte character" in line


def test_detail_line_wraps_between_fields() -> None:
    lines = [line.rstrip() for line in render(DetailLine(HELLO, 2, HELLO_TEXT), width=40).strip().splitlines()]
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert any("text[6:10] '␣how'" in line for line in lines)


def test_detail_without_selection_gives_a_hint() -> None:
    assert "select a token" in render(detail_text(HELLO, None, HELLO_TEXT))


# ----- the widget ----------------------------------------------------------------------------------------


class InspectorApp(App[None]):
    """Mounts only the inspector and records the TokenSelected messages it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.selected_messages: list[tuple[int, int]] = []

    def compose(self) -> ComposeResult:
        yield TokenInspector()

    def on_token_inspector_token_selected(self, message: TokenInspector.TokenSelected) -> None:
        self.selected_messages.append((message.index, message.token.id))


def widget_text(widget: Widget) -> str:
    """What a mounted widget shows on screen, as plain text."""
    strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(strip.text for strip in strips)


def run(coroutine_function) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(coroutine_function())


def test_pilot_arrow_keys_move_selection_and_post_token_selected() -> None:
    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.content = TokensContent(tuple(HELLO), HELLO_TEXT, vocab_size=49152, family="byte_level")
            inspector.focus()
            await pilot.pause()
            assert inspector.selected is None
            await pilot.press("right", "right", "l")
            await pilot.pause()
            assert inspector.selected == 2
            await pilot.press("left")
            await pilot.press("end")
            await pilot.press("right")  # already at the last token: no change, no message
            await pilot.pause()
            assert app.selected_messages == [(0, 19556), (1, 28), (2, 638), (1, 28), (5, 47)]
            detail = widget_text(app.query_one("#token-detail"))
            assert "position 5" in detail and "text[18:19] '?'" in detail

    run(scenario)


def test_pilot_toggles_byte_view_and_ids() -> None:
    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.content = TokensContent(tuple(CAT_SPLIT), "猫")
            inspector.focus()
            await pilot.pause()
            chip_view = app.query_one(TokenChipView)
            assert chip_view.chip_layout is not None and chip_view.chip_layout.kinds == ("label", "id")
            await pilot.press("b")
            await pilot.pause()
            assert inspector.byte_view and chip_view.chip_layout.kinds == ("label", "bytes", "id")
            assert "e7" in chip_view.render_line(1).text
            await pilot.press("i")
            await pilot.pause()
            assert not inspector.show_ids and chip_view.chip_layout.kinds == ("label", "bytes")
            legend = str(app.query_one("#token-legend").render())
            assert "Ġ space" in legend and "<0xNN> byte fallback" in legend

    run(scenario)


def test_pilot_click_selects_a_chip() -> None:
    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.content = TokensContent(tuple(HELLO), HELLO_TEXT)
            await pilot.pause()
            layout = app.query_one(TokenChipView).chip_layout
            assert layout is not None
            _, left, _ = layout.rows[0][2]  # the chip of 'Ġhow'
            await pilot.click(TokenChipView, offset=(left + 1, 0))
            await pilot.pause()
            assert inspector.selected == 2 and app.selected_messages == [(2, 638)]

    run(scenario)


def test_pilot_thousands_of_tokens_render_only_visible_lines() -> None:
    words = [f"w{i % 97}" for i in range(3000)]
    text = " ".join(words)
    tokens, cursor = [], 0
    for number, word in enumerate(words):
        raw = (" " if number else "") + word
        tokens.append(tok(number, raw.replace(" ", "Ġ"), raw.encode(), cursor, cursor + len(raw)))
        cursor += len(raw)
    assert cursor == len(text)

    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.content = TokensContent(tuple(tokens), text)
            await pilot.pause()
            chip_view = app.query_one(TokenChipView)
            assert chip_view.chip_layout is not None and chip_view.chip_layout.line_count > 200
            assert len(chip_view._line_cache) <= chip_view.size.height
            await pilot.press("end")
            await pilot.pause()
            last_line = chip_view.chip_layout.lines_of_token(2999).stop
            assert chip_view.scroll_y + chip_view.scrollable_content_region.height >= last_line

    run(scenario)


def test_pilot_selection_is_clamped_when_the_text_shrinks() -> None:
    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.content = TokensContent(tuple(HELLO), HELLO_TEXT)
            inspector.focus()
            await pilot.press("end")
            inspector.content = TokensContent(tuple(HELLO[:2]), "Hello,")
            await pilot.pause()
            assert inspector.selected == 1
            inspector.select(0)  # from another pane: no message by default
            await pilot.pause()
            assert inspector.selected == 0 and app.selected_messages[-1] == (1, 28)

    run(scenario)


def test_pilot_unavailable_says_why() -> None:
    async def scenario() -> None:
        app = InspectorApp()
        async with app.run_test(size=(80, 24)) as pilot:
            inspector = app.query_one(TokenInspector)
            inspector.show_unavailable("this replay has no tokenizer.")
            await pilot.pause()
            message = app.query_one("#token-unavailable")
            assert message.display and "this replay has no tokenizer." in str(message.render())
            assert not app.query_one(TokenChipView).display
            inspector.content = TokensContent(tuple(HELLO), HELLO_TEXT)
            await pilot.pause()
            assert not message.display and app.query_one(TokenChipView).display

    run(scenario)


def test_help_is_written_for_learners() -> None:
    assert len(TokenInspector.HELP) > 200 and "Ġ" in TokenInspector.HELP


def test_pilot_unavailable_before_mount_is_shown_once_mounted() -> None:
    class EarlyApp(App[None]):
        def compose(self) -> ComposeResult:
            inspector = TokenInspector(byte_view=True, show_ids=False)
            inspector.show_unavailable("the tokenizer is still loading.")
            yield inspector

    async def scenario() -> None:
        app = EarlyApp()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            inspector = app.query_one(TokenInspector)
            assert inspector.byte_view and not inspector.show_ids
            message = app.query_one("#token-unavailable")
            assert message.display and "still loading" in str(message.render())

    run(scenario)
