"""Shared fixtures: tiny random-initialised models saved to disk (so the real load path runs) and SmolLM2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TOKENIZER_CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 4,
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
    "def main():\n    print('hello world')\n    return 0\n",
    "Hello, how are you? I am fine, thank you. The capital of France is Paris.",
]


def _train_tokenizer(directory: Path) -> int:
    """A small byte-level BPE with ChatML specials, saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(TOKENIZER_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(directory)
    return backend.get_vocab_size()


def _tiny_config(kind: str, vocab_size: int):
    from transformers import GPT2Config, LlamaConfig, MixtralConfig, Qwen2MoeConfig

    common = dict(vocab_size=vocab_size, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    if kind == "llama-gqa":
        return LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            **common,
        )
    if kind == "gpt2":
        return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, **common)
    if kind == "mixtral":
        return MixtralConfig(
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_local_experts=4,
            num_experts_per_tok=2,
            max_position_embeddings=128,
            **common,
        )
    if kind in ("qwen2-moe-norm", "qwen2-moe-raw"):
        return Qwen2MoeConfig(
            hidden_size=64,
            intermediate_size=96,
            moe_intermediate_size=48,
            shared_expert_intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_experts=6,
            num_experts_per_tok=2,
            norm_topk_prob=(kind == "qwen2-moe-norm"),
            max_position_embeddings=128,
            **common,
        )
    raise ValueError(kind)


TINY_KINDS = ("llama-gqa", "gpt2", "mixtral", "qwen2-moe-norm", "qwen2-moe-raw")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny architecture, seeded, saved with its tokenizer in its own directory."""
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("tiny-models")
    directories: dict[str, Path] = {}
    for number, kind in enumerate(TINY_KINDS):
        directory = root / kind
        vocab_size = _train_tokenizer(directory)
        torch.manual_seed(1234 + number)
        model = AutoModelForCausalLM.from_config(_tiny_config(kind, vocab_size))
        # Random init gives near-uniform logits; a larger output scale makes sampling differences visible.
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(8.0)
        model.save_pretrained(directory)
        directories[kind] = directory
    return directories


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2 converted to safetensors in the user cache (converted once, ~15 s)."""
    from llmscope.engines.loading import ensure_converted
    from llmscope.registry import ModelNotFoundError, resolve

    try:
        spec = resolve("smollm2")
    except ModelNotFoundError as missing:
        pytest.skip(str(missing))
    return ensure_converted(spec)


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_dir: Path):
    """One SmolLM2 engine shared by the tests that need trained weights (loading costs ~1 s)."""
    from llmscope.engines.hf import HFEngine

    return HFEngine.load("smollm2")


@pytest.fixture(autouse=True)
def no_thread_outlives_its_test(request: pytest.FixtureRequest):
    """A test must not leave threads behind: a leftover model load would collide with the next test's."""
    import threading

    before = set(threading.enumerate())
    yield
    leftovers = [thread for thread in threading.enumerate() if thread not in before and thread.is_alive()]
    for thread in leftovers:
        thread.join(timeout=60)
    still_running = [thread.name for thread in leftovers if thread.is_alive()]
    assert not still_running, f"threads still running after the test: {still_running}"
    if leftovers:
        print(f"\n[{request.node.nodeid}: leftover threads joined: {[thread.name for thread in leftovers]}]")


pytest_plugins = ["compare_helpers"]  # its `other_vocab_dir` fixture serves the compare tests in every folder
