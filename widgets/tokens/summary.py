"""The one-line texts around the token chips: counts, the selected token's details, and the marker legend."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from llmscope.format import NEWLINE_GLYPH, SPACE_GLYPH, TAB_GLYPH, visible_token_text
from llmscope.token_counts import ROUND_TRIP_WARNING, TokenCounts, count_tokens
from llmscope.trace import TokenInfo
from llmscope.widgets.tokens.text import hex_bytes

FAMILY_NAMES: dict[str, str] = {
    "byte_level": "byte-level BPE",
    "sentencepiece": "SentencePiece",
    "wordpiece": "WordPiece",
    "other": "tokenizer",
}
"""How each tokenizer family (engines/tokenizer_view.py names) is written for a reader."""


def count_text(tokens: list[TokenInfo], text: str) -> TokenCounts:
    """Characters are Unicode code points, bytes are UTF-8, words are whitespace-separated runs; the round trip
    checks that the tokens spell the text back (llmscope.token_counts, shared with `llmscope tokenize`)."""
    return count_tokens(tokens, text)


def _join(groups: list[list[tuple[str, str]]]) -> Text:
    """Groups of (bold number, dim unit) pairs, ' · ' within a group and ' │ ' between groups."""
    line = Text()
    for group_number, group in enumerate(groups):
        if group_number:
            line.append("  │  ", style="dim")
        for number, (value, unit) in enumerate(group):
            if number:
                line.append(" · ", style="dim")
            line.append(value, style="bold")
            line.append(unit, style="dim")
    return line


def counts_lines(
    counts: TokenCounts, width: int, *, vocab_size: int | None = None, family: str | None = None
) -> list[Text]:
    """The counts as one line when it fits `width`, else counts and ratios on two lines (tokenizer name last to go)."""
    parts = [
        (f"{counts.characters:,}", " chars"),
        (f"{counts.utf8_bytes:,}", " bytes"),
        (f"{counts.tokens:,}", " tokens"),
        (f"{counts.words:,}", " words"),
    ]
    if counts.special_tokens:
        parts.append((f"{counts.special_tokens:,}", " special"))
    ratios = [
        (f"{counts.bytes_per_token:.2f}", " bytes/token"),
        (f"{counts.chars_per_token:.2f}", " chars/token"),
        (f"{counts.tokens_per_word:.2f}", " tokens/word"),
    ]
    about = [FAMILY_NAMES.get(family, family)] if family else []
    if vocab_size:
        about.append(f"vocab {vocab_size:,}")
    about_group = [("", " · ".join(about))] if about else []
    candidates = [
        [_join([parts, ratios, about_group] if about_group else [parts, ratios])],
        [_join([parts]), _join([ratios, about_group] if about_group else [ratios])],
        [_join([parts]), _join([ratios])],
    ]
    warning = [] if counts.round_trip else [Text(ROUND_TRIP_WARNING, style="bold yellow")]
    for lines in candidates:
        if all(line.cell_len <= width for line in lines):
            return lines + warning
    return candidates[-1] + warning


class CountsLine:
    """Rich renderable: the counts, laid out for the width it is given (one line when there is room)."""

    def __init__(self, counts: TokenCounts, *, vocab_size: int | None = None, family: str | None = None) -> None:
        self.counts, self.vocab_size, self.family = counts, vocab_size, family

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from counts_lines(self.counts, options.max_width, vocab_size=self.vocab_size, family=self.family)


def _shown_text(token: TokenInfo) -> str:
    """The token's text as every pane shows it ('␣Paris'), with a note when its bytes are only part of a character."""
    shown = f"'{visible_token_text(token.raw_bytes or token.text)}'"
    try:
        token.raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return f"{shown} (part of a multi-byte character)"
    return shown


def detail_fields(tokens: list[TokenInfo], index: int, source: str) -> list[tuple[str, str]]:
    """(name, value) pairs describing token `index`: position, id, piece, text, bytes and its span of `source`."""
    token = tokens[index]
    fields: list[tuple[str, str]] = [("position", str(index))]
    if token.special:
        fields.append(("", "special token"))
    fields += [("id", str(token.id)), ("piece", repr(token.piece))]
    if token.text != token.piece:
        fields.append(("text", _shown_text(token)))
    fields.append(("bytes", hex_bytes(token.raw_bytes) if not token.special else "— (one control token)"))
    if token.start is None or token.end is None:
        fields.append(("span", "none: added by the template, not typed" if token.special else "none"))
        return fields
    fields.append((f"text[{token.start}:{token.end}]", f"'{visible_token_text(source[token.start : token.end])}'"))
    sharing = [number for number, other in enumerate(tokens) if (other.start, other.end) == (token.start, token.end)]
    if len(sharing) > 1 and token.end > token.start:
        fields.append(("shared", f"{sharing.index(index) + 1} of {len(sharing)} tokens that together spell this text"))
    return fields


def _field_text(name: str, value: str) -> Text:
    """One 'name value' field, the value in bold for the position, id and flags."""
    field_line = Text()
    if name:
        field_line.append(f"{name} ", style="dim")
    field_line.append(value, style="bold" if name in ("position", "id") or not name else "")
    return field_line


_HINT = "←/→ select a token to see its id, bytes and where it sits in the text"


def detail_text(tokens: list[TokenInfo], index: int | None, source: str) -> Text:
    """The selected token's fields on one line (a hint when nothing is selected)."""
    if index is None or not 0 <= index < len(tokens):
        return Text(_HINT, style="dim italic")
    return Text("  ").join(_field_text(name, value) for name, value in detail_fields(tokens, index, source))


class DetailLine:
    """Rich renderable: the selected token's fields, wrapped between fields rather than inside one."""

    def __init__(self, tokens: list[TokenInfo], index: int | None, source: str) -> None:
        self.tokens, self.index, self.source = tokens, index, source

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.index is None or not 0 <= self.index < len(self.tokens):
            yield Text(_HINT, style="dim italic")
            return
        width = options.max_width
        line = Text()
        for name, value in detail_fields(self.tokens, self.index, self.source):
            field_line = _field_text(name, value)
            if line.cell_len and line.cell_len + 2 + field_line.cell_len > width:
                yield line
                line = Text()
            if line.cell_len:
                line.append("  ")
            line.append_text(field_line)
        yield line


_CHIP_LEGEND: list[tuple[str, str]] = [
    (SPACE_GLYPH, "space"),
    (NEWLINE_GLYPH, "newline"),
    (TAB_GLYPH, "tab"),
    ("‹e7›", "byte of a character split over tokens"),
]
_PIECE_LEGEND: dict[str, list[tuple[str, str]]] = {
    "byte_level": [("Ġ", "space"), ("Ċ", "newline"), ("ĉ", "tab (byte-level BPE)")],
    "sentencepiece": [("▁", "space (SentencePiece)"), ("<0xNN>", "byte fallback: one raw byte")],
    "wordpiece": [("##", "continues the previous word (WordPiece)")],
}


def legend_text(byte_view: bool, family: str | None) -> Text:
    """Explain the markers on screen: visible whitespace in chip view, vocabulary spellings in byte view."""
    if byte_view:
        if family in _PIECE_LEGEND:
            entries = _PIECE_LEGEND[family]
        else:
            entries = [
                ("Ġ", "space (byte-level BPE)"),
                ("Ċ", "newline"),
                ("▁", "space (SentencePiece)"),
                ("<0xNN>", "byte fallback"),
            ]
        entries = entries + [("hex", "the token's UTF-8 bytes")]
    else:
        entries = _CHIP_LEGEND
    line = Text(style="dim")
    for number, (mark, meaning) in enumerate(entries):
        if number:
            line.append("   ")
        line.append(mark, style="bold not dim")
        line.append(f" {meaning}")
    return line
