"""Helpers for the compare tests: a scripted engine that says EOS on cue, and a tiny model with another vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llmscope.trace import Capabilities, CaptureOptions, ModelInfo, StepTrace, TokenInfo

EOS_ID = 5


class ScriptedEngine:
    """Six tokens; greedy picks token 4 every step until `eos_after` tokens were generated, then EOS (id 5)."""

    def __init__(self, eos_after: int | None, name: str = "scripted") -> None:
        self.info = ModelInfo(
            name=name,
            source="test",
            architecture="Scripted",
            model_type="scripted",
            num_parameters=0,
            num_layers=1,
            num_heads=1,
            num_kv_heads=1,
            head_dim=1,
            hidden_size=1,
            vocab_size=6,
            max_context=64,
            device="cpu",
            dtype="float32",
            eos_token_ids=(EOS_ID,),
        )
        self.capabilities = Capabilities(attention=False, hidden_states=False, kv_cache=False)
        self.capture = CaptureOptions(attention=False, hidden_states=False, kv_cache=False, router=False)
        self.forward_calls = 0
        self.eos_after = eos_after
        self._tokens: list[int] = []
        self._prompt_length = 0

    @property
    def context_length(self) -> int:
        return len(self._tokens)

    def encode(self, text: str, *, chat: bool = False, system_prompt: str | None = None) -> list[int]:
        return [1, 2]

    def inspect(self, text: str) -> list[TokenInfo]:
        return [self.token_info(1), self.token_info(2)]

    def token_info(self, token_id: int) -> TokenInfo:
        text = "<eos>" if token_id == EOS_ID else f" t{token_id}"
        return TokenInfo(token_id, text, text, text.encode(), special=token_id == EOS_ID)

    def prefill(self, prompt_ids: Sequence[int]) -> StepTrace:
        self._tokens, self._prompt_length = list(prompt_ids), len(prompt_ids)
        return self._trace(list(prompt_ids))

    def step(self, token_id: int) -> StepTrace:
        self._tokens.append(int(token_id))
        return self._trace([int(token_id)])

    def truncate(self, length: int) -> None:
        del self._tokens[length:]

    def set_capture(self, capture: CaptureOptions) -> None:
        self.capture = capture

    def _trace(self, fed: list[int]) -> StepTrace:
        self.forward_calls += 1
        generated = len(self._tokens) - self._prompt_length
        logits = np.array([0.0, 1.0, 2.0, 3.0, 4.0, -10.0], dtype=np.float32)
        if self.eos_after is not None and generated >= self.eos_after:
            logits[EOS_ID] = 20.0
        return StepTrace(index=generated, input_ids=tuple(fed), position=len(self._tokens) - 1, logits=logits)


def scripted_factory_for(eos_after: dict[str, int | None]):
    """factory_for for the compare screen: model name → a factory of a ScriptedEngine with that EOS cue."""

    def factory_for(model: str):
        def build(progress):
            return ScriptedEngine(eos_after[model], name=model)

        return build

    return factory_for


@pytest.fixture(scope="session")
def other_vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama whose tokenizer was trained with another vocabulary size (so ids mean other tokens)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("other-vocab")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(["Hello there, how are you? The capital of France is Paris. " * 3], trainer=trainer)
    PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>").save_pretrained(directory)
    torch.manual_seed(99)
    config = LlamaConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory
