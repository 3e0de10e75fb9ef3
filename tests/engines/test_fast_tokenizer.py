"""`llmscope tokenize` without transformers: tokenizer.json through `tokenizers` gives AutoTokenizer's tokens.

For every shipped and registered tokenizer (SmolLM2, tiny-dense, tiny-moe, the conftest tiny models) and
the hand-built test tokenizers (byte-level, trimmed offsets, SentencePiece with byte fallback, Llama-2
normalizer, WordPiece) saved to folders, the inspector's records (ids, pieces, bytes, spans, special
flags) equal AutoTokenizer's on the same folder; and a fresh `llmscope tokenize` imports neither torch
nor transformers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmscope.engines.fast_tokenizer import open_fast
from llmscope.engines.tokenizer_view import inspect_text, special_token_ids

from .test_tokenizer_view import (  # noqa: F401 - the hand-built tokenizers, as fixtures
    byte_level,
    byte_level_trimmed,
    sentencepiece,
    sentencepiece_legacy,
    wordpiece,
)

TEXTS = [
    "hello world",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "emoji 🙂🙂 CJK 漢字 café e\u0301 42137",
    "<|im_start|>user typed a control token<|im_end|> and <s> </s> [CLS] <|endoftext|>",
    "def main():\n    print('hello world')\n    return 0\n",
]


def _same_as_auto(directory: Path) -> None:
    from transformers import AutoTokenizer

    fast = open_fast(directory)
    assert fast is not None, f"{directory} should not need transformers"
    auto = AutoTokenizer.from_pretrained(str(directory))
    assert special_token_ids(fast) == special_token_ids(auto)
    for text in TEXTS:
        for split in (False, True):
            assert inspect_text(fast, text, split_special_tokens=split) == inspect_text(
                auto, text, split_special_tokens=split
            ), (directory.name, text, split)


def test_smollm2(smollm2_dir: Path) -> None:
    _same_as_auto(smollm2_dir)


@pytest.mark.parametrize("name", ["tiny-dense", "tiny-moe"])
def test_registered_tiny_models(name: str) -> None:
    from llmscope.registry import resolve

    _same_as_auto(Path(resolve(name).path))


@pytest.mark.parametrize("kind", ["llama-gqa", "gpt2", "mixtral", "qwen2-moe-norm"])
def test_conftest_models(tiny_model_dirs: dict[str, Path], kind: str) -> None:
    _same_as_auto(tiny_model_dirs[kind])


@pytest.mark.parametrize(
    "fixture", ["byte_level", "byte_level_trimmed", "sentencepiece", "sentencepiece_legacy", "wordpiece"]
)
def test_hand_built_tokenizers(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    request.getfixturevalue(fixture).save_pretrained(tmp_path)
    _same_as_auto(tmp_path)


def test_folder_options_that_rewrite_the_pipeline_fall_back(smollm2_dir: Path, tmp_path: Path) -> None:
    for item in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / item).write_bytes((smollm2_dir / item).read_bytes())
    assert open_fast(tmp_path) is not None
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(dict(config, add_prefix_space=True)))
    assert open_fast(tmp_path) is None
    assert open_fast(tmp_path / "missing") is None


def test_tokenize_imports_neither_torch_nor_transformers(smollm2_dir: Path) -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom llmscope.cli.main import app\n"
        "result = CliRunner().invoke(app, ['tokenize', 'hello world', '--json'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)), result.output.count('\"id\"'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "[] 2", done.stdout
