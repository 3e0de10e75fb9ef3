"""Text helpers shared by the token widgets: visible whitespace, UTF-8 runs, hex bytes and vocabulary markers.

Kept free of Textual so the Rich renderables (and their tests) use exactly the same spelling rules.
"""

from __future__ import annotations

import re

from llmscope.format import WHITESPACE_GLYPHS, GlyphKind, visible_char, visible_token_runs

Role = GlyphKind
"""How a run of a label is drawn: plain text, a stand-in for whitespace or a control character, or a raw byte."""

WHITESPACE_MARKERS: dict[str, str] = WHITESPACE_GLYPHS
"""Visible stand-ins for whitespace inside a token chip: llmscope.format's, the same on every screen."""

BYTE_FALLBACK_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
VOCAB_MARKERS: tuple[str, ...] = ("Ġ", "Ċ", "ĉ", "▁")
"""Characters that byte-level BPE (Ġ space, Ċ newline, ĉ tab) and SentencePiece (▁ space) use in pieces."""


def hex_bytes(raw: bytes) -> str:
    """Bytes as lowercase hex pairs separated by spaces ('e7 8c ab')."""
    return " ".join(f"{byte:02x}" for byte in raw)


def token_label(raw: bytes) -> list[tuple[str, Role]]:
    """What a chip shows for a token's bytes: visible whitespace, and '‹e7›' for bytes of a split character."""
    return visible_token_runs(raw)


def piece_label(piece: str) -> list[tuple[str, Role]]:
    """A vocabulary piece with its space/newline/byte-fallback markers (Ġ, Ċ, ▁, <0xNN>, ##) set apart."""
    if BYTE_FALLBACK_PIECE.fullmatch(piece):
        return [(piece, "byte")]
    runs: list[tuple[str, Role]] = []
    body = piece
    if piece.startswith("##") and len(piece) > 2:
        runs.append(("##", "marker"))
        body = piece[2:]
    for character in body:
        role: Role
        character, role = (character, "marker") if character in VOCAB_MARKERS else visible_char(character)
        if runs and runs[-1][1] == role:
            runs[-1] = (runs[-1][0] + character, role)
        else:
            runs.append((character, role))
    return runs
