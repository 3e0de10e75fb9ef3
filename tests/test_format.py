"""llmscope.format: the one spelling of byte counts, probabilities, counts and token text, checked rule by rule."""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import numpy as np
import pytest

from llmscope.format import (
    UNDECODABLE_BYTES,
    WHITESPACE_GLYPHS,
    format_bytes,
    format_bytes_exact,
    format_bytes_per_element,
    format_compact_count,
    format_count,
    format_probability,
    printable_text,
    visible_token_runs,
    visible_token_text,
)
from llmscope.live import LiveView
from llmscope.sampler import SamplerConfig
from llmscope.trace import KVLayerStats, KVStats, ModelInfo

UNSAFE_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")
"""Unicode categories that must never reach the terminal inside a token label (control, format, separators)."""


# ----- bytes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1,023 B"),
        (1023.4, "1,023 B"),
        (1023.6, "1.00 KiB"),  # rounds to 1,024 B: the next unit, never '1,024 B'
        (1024, "1.00 KiB"),
        (10_234, "9.99 KiB"),  # 9.994 KiB: two decimals below 10
        (10_236, "10.0 KiB"),  # 9.996 KiB rounds to 10.0: one decimal, not '10.00'
        (23_040, "22.5 KiB"),  # SmolLM2 bf16: bytes per token
        (102_349, "100 KiB"),  # 99.95 KiB rounds to 100: no decimal, not '100.0'
        (1_048_063, "1023 KiB"),  # 1023.499 KiB
        (1_048_064, "1.00 MiB"),  # 1023.5 KiB would round to 1024: the next unit
        (1_843_200, "1.76 MiB"),  # SmolLM2 fp32 at 40 tokens (the figure the presenter showed as 1.76M)
        (188_743_680, "180 MiB"),  # SmolLM2 bf16 at 8,192 tokens (CONCEPTS T16)
        (2_684_354_560, "2.50 GiB"),  # Llama-3-70B bf16 at 8,192 tokens
        (3 * 2**30, "3.00 GiB"),
        (5 * 2**40, "5.00 TiB"),
        (2**50, "1.00 PiB"),
        (3000 * 2**50, "3,000 PiB"),  # past the last unit: whole, with separators
    ],
)
def test_format_bytes_units_boundaries_and_rounding(count: float, expected: str) -> None:
    assert format_bytes(count) == expected


def test_format_bytes_three_significant_figures_by_hand() -> None:
    for count in (1500, 15_000, 150_000, 1_500_000, 15_000_000, 150_000_000, 1_500_000_000):
        figure, unit = format_bytes(count).split(" ")
        scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
        assert len(figure.replace(".", "")) == 3  # always three digits
        assert abs(float(figure) - count / scale) <= 0.5 * 10 ** -(len(figure.split(".")[1]) if "." in figure else 0)


def test_format_bytes_negative_and_not_finite() -> None:
    assert format_bytes(-5000) == "−4.88 KiB"
    assert format_bytes(float("nan")) == format_bytes(float("inf")) == "–"


def test_exact_bytes_and_bytes_per_element() -> None:
    assert format_bytes_exact(1_843_200) == "1,843,200 B"
    assert format_bytes_exact(0) == "0 B"
    assert [format_bytes_per_element(value) for value in (4, 2.0, 1, 0.5)] == ["4 B", "2 B", "1 B", "0.5 B"]


# ----- probabilities and counts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probability", "expected"),
    [
        (0.0, "0"),
        (1.0, "100%"),
        (0.9996, ">99.9%"),
        (0.612, "61.2%"),
        (0.0652, "6.52%"),
        (0.00042, "0.042%"),
        (0.000001, "<.001%"),
        (float("nan"), "–"),
    ],
)
def test_format_probability(probability: float, expected: str) -> None:
    assert format_probability(probability) == expected
    assert len(expected) <= 6


def test_format_count_whole_and_effective() -> None:
    assert format_count(1_843_200) == "1,843,200"
    assert format_count(np.int64(49152)) == "49,152"  # numpy integers count as whole numbers
    assert format_count(12.34) == "12.3"  # an effective count (e^entropy) keeps one decimal below 100
    assert format_count(4096.4) == "4,096"


def test_format_compact_count() -> None:
    assert format_compact_count(134_515_008) == "135M"
    assert format_compact_count(4_200_000) == "4.2M"
    assert format_compact_count(950_000) == "950K"
    assert format_compact_count(1_240_000_000) == "1.2B"
    assert format_compact_count(999) == "999"


# ----- token text ----------------------------------------------------------------------------------------


def test_one_glyph_per_whitespace_kind() -> None:
    assert WHITESPACE_GLYPHS == {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
    assert visible_token_text(" Paris") == "␣Paris"
    assert visible_token_text("a b\tc\r\nd") == "a␣b⇥c␍⏎d"
    assert visible_token_text("") == visible_token_text(b"") == "∅"


def test_every_c0_control_and_del_shows_as_a_control_picture() -> None:
    for code in range(0x20):
        character = chr(code)
        shown = visible_token_text(character)
        if character in WHITESPACE_GLYPHS:
            assert shown == WHITESPACE_GLYPHS[character]
        else:
            assert shown == chr(0x2400 + code), hex(code)  # ␀ … ␟
    assert visible_token_text("\x1b[31mred") == "␛[31mred"  # an ANSI escape cannot colour the terminal
    assert visible_token_text("\x00") == "␀" and visible_token_text("\x7f") == "␡"


def test_c1_format_and_separator_characters_show_their_code_point() -> None:
    assert visible_token_text("\x85") == "‹U+0085›"  # NEL, a C1 control
    assert visible_token_text("\x9b2J") == "‹U+009B›2J"  # CSI: an 8-bit escape sequence
    assert visible_token_text("a\u202eb") == "a‹U+202E›b"  # right-to-left override
    assert visible_token_text("\u200b") == "‹U+200B›"  # zero-width space
    assert visible_token_text("\u00a0") == "‹U+00A0›"  # no-break space: not the ␣ of a plain space
    assert visible_token_text("\u2028") == "‹U+2028›"  # line separator
    assert visible_token_text("\ud800") == "‹U+D800›"  # a lone surrogate


def test_no_code_point_reaches_the_terminal_unsafe() -> None:
    """Every code point of the first planes comes out printable (no control, format or separator character)."""
    for code in [*range(0x0, 0x3100), *range(0xD7F0, 0xE010), *range(0xFE00, 0x10000)]:
        shown = visible_token_text(chr(code))
        assert not any(unicodedata.category(character) in UNSAFE_CATEGORIES for character in shown), hex(code)
        assert visible_token_text(shown) == shown  # idempotent: a label can be passed through twice


def test_undecodable_bytes_show_in_hex() -> None:
    assert visible_token_text(b"\xe6") == "‹e6›"  # lead byte of a 3-byte character, alone
    assert visible_token_text(b"\xe7\x8c") == "‹e7›‹8c›"  # a truncated character
    assert visible_token_text(b"\xe7\x8c\xab") == "猫"  # complete: the character itself
    assert visible_token_text(b" \xe7\x8c\xab!") == "␣猫!"
    assert visible_token_text(b"\xff\xc0\xaf") == "‹ff›‹c0›‹af›"  # never valid; an overlong '/'
    assert visible_token_text(b"\xed\xa0\x80") == "‹ed›‹a0›‹80›"  # an encoded surrogate is not UTF-8
    assert visible_token_text(b"\x1b") == "␛"
    assert visible_token_text(b"\xe6") != visible_token_text(b"\xe6".decode("utf-8", errors="replace"))


def test_running_text_decodes_stray_bytes_as_the_labels_do() -> None:
    """The generated-text pane decodes the byte stream with UNDECODABLE_BYTES: '‹8f›', as the token's label."""
    from llmscope.trace import TokenInfo
    from llmscope.widgets.generation.probability_text import build_paragraphs

    assert b"a\x8fb\xe7\x8c".decode("utf-8", errors=UNDECODABLE_BYTES) == "a‹8f›b‹e7›‹8c›"
    stray = TokenInfo(143, "ı", "\ufffd", b"\x8f")
    paragraphs = build_paragraphs(
        [TokenInfo(1, "Hi", "Hi", b"Hi")], [(stray, 0.2), (TokenInfo(2, "!", "!", b"!"), 0.9)]
    )
    shown = "".join(piece for paragraph in paragraphs for piece, _, _ in paragraph)
    assert "Hi‹8f›!" in shown and visible_token_text(stray.raw_bytes) == "‹8f›"


def test_runs_tell_text_markers_and_bytes_apart() -> None:
    assert visible_token_runs(b" \xe6ab\n") == [("␣", "marker"), ("‹e6›", "byte"), ("ab", "text"), ("⏎", "marker")]
    assert visible_token_runs("") == [("∅", "marker")]


def test_printable_text_keeps_layout_but_no_control() -> None:
    text = "Line one\n\tindented  twice\x1b[2J\r\x85\u202eend\u2029"
    shown = printable_text(text)
    assert shown == "Line one\n\tindented  twice␛[2J␍‹U+0085›‹U+202E›end‹U+2029›"
    assert all(character in "\n\t" or unicodedata.category(character) not in ("Cc", "Zl", "Zp") for character in shown)
    assert printable_text("naïve café 猫 👍🏽 e\u0301") == "naïve café 猫 👍🏽 e\u0301"  # ordinary text untouched


def test_format_module_imports_no_ui_or_numeric_library() -> None:
    code = "import sys, llmscope.format; print(sorted(m for m in ('rich', 'textual', 'torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----- consistency: the same figure through every screen, a caption and the CLI ---------------------------


def _render(renderable: object, width: int = 160) -> str:
    from rich.console import Console

    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text()


def _smollm2_fp32_cache(tokens: int) -> KVStats:
    """The KV cache SmolLM2-135M measures on CPU: 30 layers of K and V [1, 3, tokens, 64] in float32."""
    shape = (1, 3, tokens, 64)
    layers = tuple(KVLayerStats(layer, shape, shape, "float32", 2 * 3 * tokens * 64 * 4) for layer in range(30))
    return KVStats(layers, tokens, 4, 30, 3, 64)


def _smollm2_view(kv_history: tuple[KVStats, ...]) -> LiveView:
    """A LiveView as the controller builds it after a run, holding only what the captions and figures read."""
    info = ModelInfo(
        "smollm2", "test", "LlamaForCausalLM", "llama", 134_515_008, 30, 9, 3, 64, 576, 49152, 8192, "cpu", "float32"
    )
    return LiveView(info, "", False, (), (), None, None, {}, (), kv_history, (), (), None, None, SamplerConfig())


def test_the_same_byte_count_reads_the_same_everywhere() -> None:
    """1,843,200 B (SmolLM2 fp32, 40 tokens) once read 1.76 MiB, 1.8 MiB and 1.76M on one screen."""
    from typer.testing import CliRunner

    from llmscope.cli.main import app
    from llmscope.demo.captions import caption_values, fill_caption
    from llmscope.tui.demo_mode import presenter_figures
    from llmscope.widgets.kv.render import GrowthChart, KVSummary
    from llmscope.widgets.status_bar import StatusFigures, status_text

    kv = _smollm2_fp32_cache(40)
    assert kv.total_bytes == 2 * 30 * 3 * 64 * 40 * 4 == 1_843_200
    view = _smollm2_view((kv,))
    seen = {
        "status bar": status_text(view.info, StatusFigures(kv_bytes=kv.total_bytes)).plain,
        "KV pane": _render(KVSummary(kv, step=0)) + _render(GrowthChart([kv]), width=80),
        "caption": fill_caption("{kv_bytes}", view),
        "presenter": " ".join(presenter_figures(view)[2:]),
        "kv-calc": CliRunner()
        .invoke(app, ["kv-calc", "--preset", "smollm2-135m", "--context", "40", "--dtype", "fp32"])
        .output,
    }
    for where, text in seen.items():
        assert "1.76 MiB" in text, where
        assert not any(other in text for other in ("1.8 MiB", "1.76M", "1,800 KiB", "0.002 GiB")), where
    assert "1.76 MiB (1,843,200 B)" in seen["KV pane"] and "prefill 40 tokens → 1.76 MiB" in seen["KV pane"]
    assert "= 1,843,200 B = 1.76 MiB" in seen["kv-calc"]
    formula = "2 × 30 layers × 3 kv_heads × 64 head_dim × 40 tokens × 4 B = 1,843,200 B"  # by hand, as above
    assert kv.formula_text() == caption_values(view)["kv_formula"] == formula
    assert formula in seen["KV pane"]
    assert "× 40 tokens × 1 batch × 4 B = 1,843,200" in " ".join(seen["kv-calc"].split())  # kv-calc names its batch
    per_token = caption_values(view)["kv_per_token"]
    assert per_token == "45.0 KiB" and f"{per_token} (46,080 B)" in seen["KV pane"]


def test_the_same_token_reads_the_same_everywhere(tiny_model_dirs) -> None:
    """Byte tokens of '猫', a space, an ESC and a newline, through every pane that names a token, a caption and
    `llmscope tokenize`: each shows the one spelling, and no raw control character survives."""
    from typer.testing import CliRunner

    from llmscope.cli.main import app
    from llmscope.demo.captions import caption_values
    from llmscope.engines.hf import HFEngine
    from llmscope.live import LiveController
    from llmscope.widgets.compare.render import quoted
    from llmscope.widgets.moe.render import clean_label
    from llmscope.widgets.sampler.model import build_sampler_view
    from llmscope.widgets.tokens.chips import TokenChips

    model = str(tiny_model_dirs["llama-gqa"])
    prompt = "猫 Paris\x1b[31m\n"
    controller = LiveController(HFEngine.load(model))
    view = controller.start(prompt, chat=False)
    tokens = list(view.prompt_tokens)

    def chips(tokens: list) -> list[str]:
        return _render(TokenChips(tokens, show_ids=False), width=400).split()

    labels = chips(tokens)  # the tokens pane
    assert labels[:3] == ["‹e7›", "‹8c›", "‹ab›"]  # 猫 is e7 8c ab, one byte token each in this small vocabulary
    assert any(label.startswith("␣") for label in labels) and "␛" in "".join(labels) and labels[-1].endswith("⏎")
    assert list(view.context_labels) == labels  # attention axes and the MoE routing map
    assert [clean_label(label, 40) for label in labels] == labels
    assert [quoted(token.raw_bytes) for token in tokens] == [f"'{label}'" for label in labels]  # compare screen
    cli = CliRunner().invoke(app, ["tokenize", prompt, "--model", model]).output
    for label in labels:
        assert f"'{label}'" in cli
    sampler = build_sampler_view(view.sample, view.token_texts)
    for row in sampler.rows[:20]:  # the logits table spells each candidate as the tokens pane would
        assert [row.text] == chips([controller.token(row.token_id)])
    assert caption_values(view)["chosen"] == f"'{sampler.chosen.text}'"
    shown = "".join(labels) + cli + "".join(row.text for row in sampler.rows)
    assert not any(unicodedata.category(character) == "Cc" and character != "\n" for character in shown)


def test_a_replay_says_its_step_time_was_recorded() -> None:
    """The replayed file's ms/step is the recording machine's, not this one's: the bar says so."""
    from llmscope.widgets.status_bar import StatusFigures, status_text

    view = _smollm2_view((_smollm2_fp32_cache(40),))
    figures = StatusFigures(step_ms=44.0, tokens_per_second=22.0, steps=3)
    assert "· 44 ms/step" in status_text(view.info, figures).plain
    assert "recorded 44 ms/step" in status_text(view.info, figures, source="replay of tour").plain
