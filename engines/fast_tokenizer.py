"""A model folder's tokenizer.json through the `tokenizers` library alone, for a fast `llmscope tokenize`.

Importing transformers (and torch with it) costs over a second before the first token; the `tokenizers`
library reads the same tokenizer.json in milliseconds. FastTokenizer offers the part of a transformers
fast tokenizer that tokenizer_view uses, and `open_fast` returns None where transformers would build
something the JSON alone does not say (remote code, a slow-only tokenizer, options that rewrite the
pipeline), so the caller falls back to AutoTokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Encoding, Tokenizer

REWRITING_OPTIONS = ("auto_map", "add_prefix_space", "legacy", "from_slow", "clean_up_tokenization_spaces_rewrite")
"""tokenizer_config.json keys under which transformers may change the JSON's pipeline: use AutoTokenizer."""
NAMED_SPECIALS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class _Encoded(dict[str, Any]):
    """The `tokenizer(text)` result: input_ids, offset_mapping and sequence_ids(0)."""

    def __init__(self, encoding: Encoding) -> None:
        super().__init__(input_ids=list(encoding.ids), offset_mapping=list(encoding.offsets))
        self._sequence_ids = list(encoding.sequence_ids)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        del batch_index
        return self._sequence_ids


class FastTokenizer:
    """tokenizers.Tokenizer with the attributes tokenizer_view reads from a transformers fast tokenizer."""

    is_fast = True

    def __init__(self, backend: Tokenizer, config: dict[str, Any]) -> None:
        self.backend_tokenizer = backend
        self.added_tokens_decoder: dict[int, AddedToken] = dict(backend.get_added_tokens_decoder())
        named = [_content(config.get(key)) for key in NAMED_SPECIALS]
        named += [_content(token) for token in config.get("additional_special_tokens") or []]
        ids = (backend.token_to_id(token) for token in named if token)
        self.all_special_ids = sorted({token_id for token_id in ids if token_id is not None})

    def __call__(
        self, text: str, *, add_special_tokens: bool = False, split_special_tokens: bool = False, **_: Any
    ) -> _Encoded:
        self.backend_tokenizer.encode_special_tokens = split_special_tokens
        return _Encoded(self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def convert_ids_to_tokens(self, token_id: int) -> str | None:
        return self.backend_tokenizer.id_to_token(token_id)

    def decode(self, ids: list[int]) -> str:
        return self.backend_tokenizer.decode(ids, skip_special_tokens=False)


def _content(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or an AddedToken dict."""
    if isinstance(token, dict):
        return token.get("content")
    return token if isinstance(token, str) else None


def open_fast(directory: Path) -> FastTokenizer | None:
    """The folder's tokenizer.json as a FastTokenizer, or None where AutoTokenizer is needed to match it."""
    json_path, config_path = directory / "tokenizer.json", directory / "tokenizer_config.json"
    if not json_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        if not isinstance(config, dict) or any(key in config for key in REWRITING_OPTIONS):
            return None
        return FastTokenizer(Tokenizer.from_file(str(json_path)), config)
    except (OSError, ValueError, Exception):  # noqa: BLE001 - anything odd: the slow path reports it properly
        return None


def load_for_inspection(spec: Any, *, trust_remote_code: bool = False, progress: Any = None) -> Any:
    """The tokenizer for `llmscope tokenize`: tokenizer.json alone where it suffices, else AutoTokenizer."""
    from llmscope.registry import converted_dir

    directory = converted_dir(spec) if spec.kind == "gguf" else Path(spec.path)
    fast = None if trust_remote_code else open_fast(directory)
    if fast is not None:
        return fast
    from llmscope.engines.loading import load_tokenizer

    return load_tokenizer(spec, trust_remote_code=trust_remote_code, **({"progress": progress} if progress else {}))
