"""The two shipped model shapes: a dense Llama with grouped-query attention and an 8-expert Mixtral."""

from __future__ import annotations

from transformers import LlamaConfig, MixtralConfig, PretrainedConfig

MODEL_NAMES = ("tiny-dense", "tiny-moe")

# Shared by both shapes so that their numbers compare: 4 layers, width 128, 4 query / 2 KV heads.
COMMON = dict(
    hidden_size=128,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    hidden_act="silu",
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    initializer_range=0.02,
    attention_dropout=0.0,
)


def make_config(
    name: str, vocab_size: int, bos_id: int, eos_id: int, pad_id: int, router_aux_loss_coef: float = 0.02
) -> PretrainedConfig:
    """Config of `tiny-dense` (LlamaConfig) or `tiny-moe` (MixtralConfig, 8 experts, top-2)."""
    ids = dict(vocab_size=vocab_size, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    if name == "tiny-dense":
        return LlamaConfig(
            **COMMON, **ids, intermediate_size=512, rope_theta=10000.0, attention_bias=False, mlp_bias=False
        )
    if name == "tiny-moe":
        # Each expert is half the dense MLP, so top-2 routing costs what the dense MLP costs.
        return MixtralConfig(
            **COMMON,
            **ids,
            intermediate_size=256,
            rope_theta=10000.0,
            num_local_experts=8,
            num_experts_per_tok=2,
            output_router_logits=False,
            router_aux_loss_coef=router_aux_loss_coef,
            router_jitter_noise=0.0,
            sliding_window=None,
        )
    raise ValueError(f"unknown model {name!r}; choose from {MODEL_NAMES}")
