"""One way to write a byte count, a probability, a count and a token's text, for every screen, the CLI and captions.

Plain Python (no torch, Textual or Rich): widgets, the CLI, demo captions and presenter figures all call these,
so 1,843,200 B reads "1.76 MiB" and a space reads "␣" wherever it appears.
"""

from __future__ import annotations

import codecs
import math
import numbers
import unicodedata
from typing import Literal, SupportsFloat

__all__ = [
    "CARRIAGE_RETURN_GLYPH",
    "EMPTY_GLYPH",
    "NEWLINE_GLYPH",
    "SPACE_GLYPH",
    "TAB_GLYPH",
    "UNDECODABLE_BYTES",
    "WHITESPACE_GLYPHS",
    "GlyphKind",
    "format_bytes",
    "format_bytes_exact",
    "format_bytes_per_element",
    "format_compact_count",
    "format_count",
    "format_probability",
    "printable_text",
    "utf8_runs",
    "visible_char",
    "visible_token_runs",
    "visible_token_text",
]

# ---------------------------------------------------------------------------------------------------- bytes

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
"""Binary units, each 1024 times the one before."""


def _three_figures(value: float) -> str:
    """A value in [1, 1024) with three significant figures: '1.76', '22.5', '180' (never '10.00' or '100.0')."""
    digits = 2 if value < 9.995 else 1 if value < 99.95 else 0
    return f"{value:.{digits}f}"


def format_bytes(count: float) -> str:
    """Bytes in binary units with three significant figures: '1,023 B', '1.00 KiB', '22.5 KiB', '1.76 MiB', '180 MiB'.

    Below 1024 bytes the whole number is written with thousands separators. Above, the unit is the largest
    one that keeps the *rounded* figure under 1024 (1,048,575 B is '1.00 MiB', not '1024 KiB'); two decimals
    below 10, one below 100, none above. A negative count gets a '−' sign; NaN or infinity reads '–'.
    """
    if not math.isfinite(count):
        return "–"
    if count < 0:
        return "−" + format_bytes(-count)
    if round(count) < 1024:
        return f"{round(count):,} B"
    value = float(count)
    for unit in BYTE_UNITS[1:]:
        value /= 1024
        figure = _three_figures(value)
        if float(figure) < 1024:
            return f"{figure} {unit}"
    return f"{value:,.0f} {BYTE_UNITS[-1]}"


def format_bytes_exact(count: float) -> str:
    """Every byte, with thousands separators, for formulas and exact checks: '1,843,200 B'."""
    return f"{round(count):,} B"


def format_bytes_per_element(value: float) -> str:
    """Bytes per stored number, as short as exact: '4 B', '2 B', '0.5 B' (int4)."""
    return f"{value:g} B"


# ------------------------------------------------------------------------------------- probabilities, counts


def format_probability(probability: float) -> str:
    """A probability as a percentage of at most 6 cells, more decimals for small values.

    '100%', '>99.9%', '61.2%' (≥ 10 %), '6.52%' (≥ 0.1 %), '0.042%', '<.001%', and '0' for exactly zero
    (a removed token); NaN reads '–'.
    """
    if math.isnan(probability):
        return "–"
    if probability <= 0:
        return "0"
    if probability >= 1:
        return "100%"
    percent = probability * 100
    if percent >= 99.95:
        return ">99.9%"
    if percent >= 9.995:
        return f"{percent:.1f}%"
    if percent >= 0.0995:
        return f"{percent:.2f}%"
    if percent >= 0.0005:
        return f"{percent:.3f}%"
    return "<.001%"


def format_count(value: SupportsFloat) -> str:
    """A count: whole numbers (int, numpy integers) with thousands separators ('1,843,200'); a fractional
    (effective) count with one decimal below 100 ('12.3') and whole with separators above ('4,096')."""
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    number = float(value)
    return f"{number:.1f}" if number < 100 else f"{number:,.0f}"


def format_compact_count(value: float) -> str:
    """A large count the way people say it: '135M', '4.2M', '950K', '1.2B' (one decimal below 100 of a unit)."""
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= threshold:
            scaled = value / threshold
            return f"{scaled:.0f}{suffix}" if scaled >= 100 else f"{scaled:.1f}{suffix}"
    return str(value)


# ------------------------------------------------------------------------------------------------ token text

SPACE_GLYPH = "␣"
NEWLINE_GLYPH = "⏎"
TAB_GLYPH = "⇥"
CARRIAGE_RETURN_GLYPH = "␍"
EMPTY_GLYPH = "∅"
"""Shown for a token with no text at all."""
WHITESPACE_GLYPHS: dict[str, str] = {
    " ": SPACE_GLYPH,
    "\n": NEWLINE_GLYPH,
    "\t": TAB_GLYPH,
    "\r": CARRIAGE_RETURN_GLYPH,
}
"""One glyph per whitespace kind, the same in every pane, the CLI and captions."""

GlyphKind = Literal["text", "marker", "byte"]
"""What a run of visible text stands for: the text itself, a glyph for whitespace or a control character,
or a byte that is not (part of) a valid UTF-8 character."""

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Marks and embeddings that reorder the characters around them on a terminal ('Trojan source')."""


def _hex_bytes_replacement(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte that is not valid UTF-8 becomes '‹e6›', as visible_token_runs shows it."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "".join(f"‹{byte:02x}›" for byte in error.object[error.start : error.end]), error.end


UNDECODABLE_BYTES = "llmscope.hexbytes"
"""Name of a codec error handler for running text decoded from token bytes: `raw.decode("utf-8", errors=
UNDECODABLE_BYTES)` shows each undecodable byte as '‹e6›' instead of '�', like the token labels."""
codecs.register_error(UNDECODABLE_BYTES, _hex_bytes_replacement)


def visible_char(character: str) -> tuple[str, GlyphKind]:
    """One character of a token's text as it is shown, and whether it was replaced by a marker.

    Space, newline, tab and CR have their own glyphs (WHITESPACE_GLYPHS); the other C0 controls and DEL
    show as Unicode control pictures (ESC is '␛', NUL '␀', DEL '␡'); C1 controls, format characters
    (zero-width, bidi), line/paragraph separators, other spaces (no-break space…) and lone surrogates show
    as '‹U+0085›'. Everything else is itself.
    """
    if character in WHITESPACE_GLYPHS:
        return WHITESPACE_GLYPHS[character], "marker"
    code = ord(character)
    if code < 0x20:
        return chr(0x2400 + code), "marker"
    if code == 0x7F:
        return "␡", "marker"
    if unicodedata.category(character) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"):
        return f"‹U+{code:04X}›", "marker"
    return character, "text"


def _utf8_length(lead: int) -> int:
    """Length of the UTF-8 sequence that starts with `lead` (0 when it cannot start one)."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def utf8_runs(raw: bytes) -> list[tuple[str, bool]]:
    """Split bytes into (text, True) for runs of complete UTF-8 characters and (hex pair, False) for each stray byte.

    A byte-level token that holds only part of a multi-byte character ('猫' is e7 8c ab, often three tokens)
    then shows its bytes instead of a replacement character.
    """
    runs: list[tuple[str, bool]] = []
    position = 0
    while position < len(raw):
        length = _utf8_length(raw[position])
        chunk = raw[position : position + length] if length else b""
        try:
            character = chunk.decode("utf-8") if len(chunk) == length and length else None
        except UnicodeDecodeError:
            character = None
        if character is None:
            runs.append((f"{raw[position]:02x}", False))
            position += 1
            continue
        if runs and runs[-1][1]:
            runs[-1] = (runs[-1][0] + character, True)
        else:
            runs.append((character, True))
        position += length
    return runs


def visible_token_runs(text: str | bytes) -> list[tuple[str, GlyphKind]]:
    """A token's text (or its raw bytes) as (run, kind) pairs, for renderers that style markers apart.

    Characters follow `visible_char`; given bytes, each byte that is not part of a complete UTF-8 character
    shows as '‹e6›' (kind 'byte'). An empty token is '∅'. Joining the runs gives `visible_token_text`.
    """
    if isinstance(text, (bytes, bytearray)):
        pieces = [(chunk, complete) for chunk, complete in utf8_runs(bytes(text))]
    else:
        pieces = [(text, True)] if text else []
    if not pieces:
        return [(EMPTY_GLYPH, "marker")]
    runs: list[tuple[str, GlyphKind]] = []

    def add(shown: str, kind: GlyphKind) -> None:
        if runs and runs[-1][1] == kind:
            runs[-1] = (runs[-1][0] + shown, kind)
        else:
            runs.append((shown, kind))

    for chunk, complete in pieces:
        if not complete:
            add(f"‹{chunk}›", "byte")
            continue
        for character in chunk:
            add(*visible_char(character))
    return runs


def visible_token_text(text: str | bytes) -> str:
    """A token's text on one line with nothing invisible: '␣Paris', '⏎', '␛[31m', '‹e6›', '∅'.

    Pass the token's raw bytes where they are known, so a partial UTF-8 character shows as '‹e6›' rather
    than '�'. The result has no whitespace or control character left, so applying it twice changes nothing.
    """
    return "".join(run for run, _ in visible_token_runs(text))


def _unsafe_in_running_text(character: str) -> bool:
    """True for characters a terminal must not receive raw inside prose (newline and tab are fine there)."""
    if character in "\n\t":
        return False
    code = ord(character)
    if code < 0x20 or 0x7F <= code <= 0x9F or character in _BIDI_CONTROLS:
        return True
    return unicodedata.category(character) in ("Zl", "Zp", "Cs")


def printable_text(text: str) -> str:
    """Running text (a prompt, a generated answer) safe for a terminal: spaces, newlines and tabs stay; every
    other control character, bidi control and line/paragraph separator is replaced as `visible_char` shows it."""
    return "".join(
        visible_char(character)[0] if _unsafe_in_running_text(character) else character for character in text
    )
