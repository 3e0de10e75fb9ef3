"""Text helpers shared by the token widgets: visible whitespace, UTF-8 runs, hex bytes and vocabulary markers.

Kept free of Textual so the Rich renderables (and their tests) use exactly the same spelling rules.
"""

from __future__ import annotations

import re
from typing import Literal

Role = Literal["text", "marker", "byte"]
"""How a run of a label is drawn: plain text, a stand-in for whitespace, or a raw byte in hex."""

WHITESPACE_MARKERS: dict[str, str] = {" ": "·", "\n": "⏎", "\t": "⇥", "\r": "␍"}
"""Visible stand-ins for whitespace inside a token chip."""

BYTE_FALLBACK_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")
VOCAB_MARKERS: tuple[str, ...] = ("Ġ", "Ċ", "ĉ", "▁")
"""Characters that byte-level BPE (Ġ space, Ċ newline, ĉ tab) and SentencePiece (▁ space) use in pieces."""


def hex_bytes(raw: bytes) -> str:
    """Bytes as lowercase hex pairs separated by spaces ('e7 8c ab')."""
    return " ".join(f"{byte:02x}" for byte in raw)


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
    """Split bytes into (text, True) for complete UTF-8 characters and (hex pair, False) for each stray byte.

    A token that holds only part of a multi-byte character (byte-level BPE splits '猫' into three tokens)
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


def visible_text(text: str) -> list[tuple[str, Role]]:
    """Text with whitespace and control characters replaced by visible stand-ins, as (run, role) pairs."""
    runs: list[tuple[str, Role]] = []
    for character in text:
        if character in WHITESPACE_MARKERS:
            shown, role = WHITESPACE_MARKERS[character], "marker"
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            shown, role = chr(0x2400 + (ord(character) if ord(character) < 0x20 else 0x21)), "marker"
        else:
            shown, role = character, "text"
        if runs and runs[-1][1] == role:
            runs[-1] = (runs[-1][0] + shown, role)
        else:
            runs.append((shown, role))
    return runs


def token_label(raw: bytes) -> list[tuple[str, Role]]:
    """What a chip shows for a token's bytes: visible whitespace, and '‹e7›' for bytes of a split character."""
    runs: list[tuple[str, Role]] = []
    for chunk, complete in utf8_runs(raw):
        if complete:
            runs.extend(visible_text(chunk))
        else:
            runs.append((f"‹{chunk}›", "byte"))
    return runs


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
        role: Role = "marker" if character in VOCAB_MARKERS else "text"
        if runs and runs[-1][1] == role:
            runs[-1] = (runs[-1][0] + character, role)
        else:
            runs.append((character, role))
    return runs
