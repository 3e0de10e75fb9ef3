"""How big a text is, measured four ways, and whether its tokens spell it back: for the tokens pane and `tokenize`.

Plain Python over TokenInfo records, so the CLI (through engines.tokenizer_view.summarize) and the tokens pane
(which never imports the engine) count the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmscope.trace import TokenInfo

__all__ = ["ROUND_TRIP_WARNING", "TokenCounts", "count_tokens"]

ROUND_TRIP_WARNING = "⚠ these tokens do not spell the text back: the tokenizer dropped or changed some characters"
"""Said by the tokens pane and `llmscope tokenize` when the tokens' bytes differ from the typed text."""


@dataclass(frozen=True)
class TokenCounts:
    """Size of a text measured four ways, the ratios a learner compares across languages, and the round trip."""

    characters: int
    """Unicode code points."""
    utf8_bytes: int
    tokens: int
    words: int
    """Whitespace-separated runs."""
    special_tokens: int = 0
    round_trip: bool = True
    """True when the bytes of the tokens taken from the text rebuild it exactly. False for WordPiece (spaces are
    dropped) and for byte-level vocabularies missing some bytes (SmolLM2 silently drops 0x04 or the lead byte
    0xF1): the model then never sees part of what was typed."""

    @property
    def bytes_per_token(self) -> float:
        return self.utf8_bytes / self.tokens if self.tokens else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.characters / self.tokens if self.tokens else 0.0

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    def as_dict(self) -> dict[str, int | float | bool]:
        """The counts and ratios under the keys `llmscope tokenize --json` prints."""
        return {
            "characters": self.characters,
            "tokens": self.tokens,
            "special_tokens": self.special_tokens,
            "utf8_bytes": self.utf8_bytes,
            "words": self.words,
            "bytes_per_token": self.bytes_per_token,
            "chars_per_token": self.chars_per_token,
            "tokens_per_word": self.tokens_per_word,
            "round_trip": self.round_trip,
        }


def count_tokens(tokens: Sequence[TokenInfo], text: str) -> TokenCounts:
    """Count `text` and the `tokens` it was cut into; only tokens with a span in the text join the round trip."""
    encoded = text.encode("utf-8")
    rebuilt = b"".join(token.raw_bytes for token in tokens if token.start is not None)
    return TokenCounts(
        characters=len(text),
        utf8_bytes=len(encoded),
        tokens=len(tokens),
        words=len(text.split()),
        special_tokens=sum(1 for token in tokens if token.special),
        round_trip=rebuilt == encoded,
    )
