"""Text → TokenInfo records (id, vocabulary piece, bytes, special flag, character span) for the tokenizer inspector.

Works on any transformers fast tokenizer. Each token's raw bytes are recovered from its vocabulary
piece by the rule of the tokenizer's family (byte-level BPE, SentencePiece-style, WordPiece), which
is read from the backend tokenizer's JSON rather than guessed from the strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from weakref import WeakKeyDictionary

from llmscope.token_counts import count_tokens
from llmscope.trace import TokenInfo

__all__ = ["Family", "inspect_text", "special_token_ids", "summarize", "token_info", "tokenizer_family"]

Family = Literal["byte_level", "sentencepiece", "wordpiece", "other"]

_BYTE_FALLBACK_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class _Profile:
    """How one tokenizer spells bytes in its vocabulary pieces."""

    family: Family
    space_marker: str = "\u2581"
    """SentencePiece's stand-in for a space (the Metaspace `replacement`)."""
    byte_fallback: bool = False
    """Whether `<0xXX>` pieces stand for single raw bytes."""
    subword_prefix: str = "##"
    """WordPiece's continuation prefix."""


_PROFILES: WeakKeyDictionary[Any, _Profile] = WeakKeyDictionary()


@lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode: printable stand-in character → the byte it encodes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + shifted)] = b  # space → Ġ (U+0120), newline → Ċ (U+010A), ...
            shifted += 1
    return table


def _backend(tokenizer: Any) -> Any:
    """The `tokenizers.Tokenizer` behind a transformers fast tokenizer (TypeError for slow ones)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", True):
        raise TypeError(f"needs a fast (tokenizers-backed) tokenizer, got {type(tokenizer).__name__}")
    return backend


def _components(node: Any) -> list[dict[str, Any]]:
    """Every component dict in a pipeline part, flattening `Sequence` wrappers."""
    if isinstance(node, list):
        return [part for item in node for part in _components(item)]
    if not isinstance(node, dict):
        return []
    nested = [value for value in node.values() if isinstance(value, list)]
    return [node] + [part for value in nested for part in _components(value)]


def _pipeline_spec(backend: Any) -> dict[str, Any]:
    """The parts of the backend's JSON a profile reads: normalizer, pre-tokenizer and decoder as the library
    serialises them, and the model's type, byte_fallback and subword prefix, without the vocabulary (serialising
    a 49k-piece tokenizer with to_str and parsing it costs ~70 ms of a 0.5 s `tokenize`)."""
    try:
        spec: dict[str, Any] = {}
        for name in ("normalizer", "pre_tokenizer", "decoder"):
            part = getattr(backend, name)
            spec[name] = json.loads(part.__getstate__()) if part is not None else None
        model = backend.model
        spec["model"] = {
            "type": type(model).__name__,
            "byte_fallback": getattr(model, "byte_fallback", False),
            "continuing_subword_prefix": getattr(model, "continuing_subword_prefix", None),
        }
        return spec
    except Exception:  # noqa: BLE001 - an unusual backend: read the whole JSON instead
        return dict(json.loads(backend.to_str()))


def _read_profile(tokenizer: Any) -> _Profile:
    """Classify the backend pipeline from its JSON (model type, decoder, pre-tokenizer, normalizer)."""
    spec = _pipeline_spec(_backend(tokenizer))
    model = spec.get("model") or {}
    parts = _components([spec.get("normalizer"), spec.get("pre_tokenizer"), spec.get("decoder")])
    types = {part.get("type") for part in parts}
    metaspace = next((part for part in parts if part.get("type") == "Metaspace"), None)
    marker = metaspace.get("replacement", "\u2581") if metaspace else "\u2581"
    byte_fallback = bool(model.get("byte_fallback"))
    marker_rewrites = any(
        part.get("type") in ("Replace", "Prepend") and marker in json.dumps(part, ensure_ascii=False) for part in parts
    )
    if model.get("type") == "WordPiece" or "WordPiece" in types:
        prefix = model.get("continuing_subword_prefix") or "##"
        return _Profile("wordpiece", subword_prefix=prefix)
    if "ByteLevel" in types:
        return _Profile("byte_level")
    if metaspace or byte_fallback or marker_rewrites or "ByteFallback" in types or model.get("type") == "Unigram":
        return _Profile("sentencepiece", space_marker=marker, byte_fallback=byte_fallback)
    return _Profile("other")


def _profile(tokenizer: Any) -> _Profile:
    """Cached profile (reading the JSON of a 49k-piece vocabulary costs tens of milliseconds)."""
    try:
        return _PROFILES[tokenizer]
    except (KeyError, TypeError):
        pass
    profile = _read_profile(tokenizer)
    try:
        _PROFILES[tokenizer] = profile
    except TypeError:
        pass  # not weak-referenceable or unhashable: just don't cache
    return profile


def tokenizer_family(tokenizer: Any) -> Family:
    """'byte_level' (GPT-2 style Ġ/Ċ), 'sentencepiece' (▁ and <0xXX>), 'wordpiece' (##) or 'other'."""
    return _profile(tokenizer).family


def special_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of named special tokens plus every added token marked special (GGUF tokenizers list few by name)."""
    named = {token_id for token_id in tokenizer.all_special_ids if token_id is not None}
    added = {token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
    return frozenset(named | added)


def _piece_bytes(profile: _Profile, piece: str) -> bytes | None:
    """The raw bytes a vocabulary piece stands for, by the family's spelling rule (None: unknown rule)."""
    if profile.family == "byte_level":
        table = _unicode_to_byte()
        return b"".join(bytes([table[ch]]) if ch in table else ch.encode("utf-8") for ch in piece)
    if profile.family == "sentencepiece":
        match = _BYTE_FALLBACK_PIECE.fullmatch(piece) if profile.byte_fallback else None
        if match:
            return bytes([int(match.group(1), 16)])
        return piece.replace(profile.space_marker, " ").encode("utf-8")
    if profile.family == "wordpiece":
        return piece.removeprefix(profile.subword_prefix).encode("utf-8")
    return None


def _describe(tokenizer: Any, token_id: int, special: bool, added: dict[int, Any]) -> tuple[str, str, bytes]:
    """(piece, text, raw_bytes) of one id; added tokens are stored as plain text, not in the family's spelling."""
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if piece is None:
        raise ValueError(f"token id {token_id} is outside the vocabulary")
    if special or token_id in added:
        content = added[token_id].content if token_id in added else piece
        return piece, content, content.encode("utf-8")
    raw = _piece_bytes(_profile(tokenizer), piece)
    if raw is None:
        text = tokenizer.decode([token_id])
        return piece, text, text.encode("utf-8")
    return piece, raw.decode("utf-8", errors="replace"), raw


def token_info(tokenizer: Any, token_id: int) -> TokenInfo:
    """Everything about one vocabulary entry (no character span: it is not tied to a text)."""
    special = token_id in special_token_ids(tokenizer)
    piece, text, raw = _describe(tokenizer, token_id, special, tokenizer.added_tokens_decoder)
    return TokenInfo(id=token_id, piece=piece, text=text, raw_bytes=raw, special=special)


def _drop_synthetic_space(profile: _Profile, piece: str, raw: bytes, text: str, start: int, consumed: int) -> bytes:
    """Strip the dummy-prefix ▁ that SentencePiece prepends to a segment; it stands for no character of the text.

    The library aligns that ▁ with the segment's first character, so a leading ▁ is real only when that
    character is an unclaimed space (Llama 2's normalizer prepends even before a typed space: two ▁, one char).
    """
    if profile.family != "sentencepiece" or not piece.startswith(profile.space_marker) or not raw.startswith(b" "):
        return raw
    real = start >= consumed and start < len(text) and text[start] in (" ", profile.space_marker)
    return raw if real else raw[1:]


def _untrim(text: str, start: int, end: int, raw: bytes) -> tuple[int, int]:
    """Undo `trim_offsets` (RoBERTa-style ByteLevel post-processing), which drops a token's spaces from its span."""
    if text[start:end].encode("utf-8") == raw:
        return start, end
    lead = len(raw) - len(raw.lstrip(_ASCII_WHITESPACE))
    if lead and not text[start:end].encode("utf-8").startswith(raw[:lead]):
        if start >= lead and text[start - lead : start].encode("utf-8") == raw[:lead]:
            start -= lead
    if text[start:end].encode("utf-8") == raw:
        return start, end
    trail = len(raw) - len(raw.rstrip(_ASCII_WHITESPACE))
    if trail and not text[start:end].encode("utf-8").endswith(raw[-trail:]):
        if text[end : end + trail].encode("utf-8") == raw[-trail:]:
            end += trail
    return start, end


def inspect_text(
    tokenizer: Any, text: str, *, add_special_tokens: bool = False, split_special_tokens: bool = False
) -> list[TokenInfo]:
    """Tokenize `text` and describe every token, with the character span of `text` it covers.

    Several tokens share one span when a character is split into bytes (emoji, CJK in byte-level
    BPE); tokens the template adds (BOS/EOS) are special and have no span.
    `split_special_tokens=True` reads a typed `<|im_start|>` as plain text instead of the control token.
    """
    _backend(tokenizer)
    encoding = tokenizer(
        text,
        add_special_tokens=add_special_tokens,
        split_special_tokens=split_special_tokens,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    ids: list[int] = encoding["input_ids"]
    offsets: list[tuple[int, int]] = encoding["offset_mapping"]
    sequence_ids: list[int | None] = encoding.sequence_ids(0)
    specials, added, profile = special_token_ids(tokenizer), tokenizer.added_tokens_decoder, _profile(tokenizer)
    tokens: list[TokenInfo] = []
    consumed = 0  # characters of `text` already claimed by earlier tokens
    for token_id, (start, end), sequence_id in zip(ids, offsets, sequence_ids):
        from_text = sequence_id is not None  # None marks tokens the post-processor inserted
        special = token_id in specials or not from_text
        piece, token_text, raw = _describe(tokenizer, token_id, special, added)
        if not from_text:
            tokens.append(TokenInfo(token_id, piece, token_text, raw, special))
            continue
        if not special and token_id not in added:
            raw = _drop_synthetic_space(profile, piece, raw, text, start, consumed)
            token_text = raw.decode("utf-8", errors="replace")
        # A lone prepended ▁ covers no character: give it an empty span rather than the library's (0, 1).
        span_start, span_end = (start, start) if not raw else _untrim(text, start, end, raw)
        consumed = max(consumed, span_end)
        tokens.append(TokenInfo(token_id, piece, token_text, raw, special, span_start, span_end))
    return tokens


def summarize(tokens: list[TokenInfo], text: str) -> dict[str, int | float | bool]:
    """Counts for `llmscope tokenize`: characters, tokens, UTF-8 bytes, words, their ratios and the round trip.

    The counting lives in llmscope.token_counts so that the tokens pane (no engine imports) shows the same
    figures; `round_trip` False (WordPiece, or a byte-level vocabulary missing some bytes) is worth a warning.
    """
    return count_tokens(tokens, text).as_dict()
