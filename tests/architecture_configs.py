"""Tiny random configs of every causal-LM family the coverage suite checks (a few hidden units, 2–4 layers).

Sliding windows are 4 so that an 8-token prompt plus a few steps runs past them; MoE families keep
4–8 experts with top-2 so that routing differences show. Each entry builds in a few lines so the whole
set saves in seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

WINDOW = 4
"""Sliding window of every windowed family (positions q attends keys q-3..q)."""

SMALL = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
MOE = dict(num_experts_per_tok=2)


def _specs() -> dict[str, tuple[str, dict[str, Any]]]:
    """family name → (transformers config class name, keyword arguments)."""
    return {
        "llama": ("LlamaConfig", dict(SMALL, num_hidden_layers=2)),
        "qwen2": ("Qwen2Config", dict(SMALL, num_hidden_layers=2)),
        "qwen3": ("Qwen3Config", dict(SMALL, num_hidden_layers=2, head_dim=8)),
        "olmo2": ("Olmo2Config", dict(SMALL, num_hidden_layers=2)),
        "phi3": ("Phi3Config", dict(SMALL, num_hidden_layers=2)),
        "cohere": ("CohereConfig", dict(SMALL, num_hidden_layers=2)),
        "starcoder2": ("Starcoder2Config", dict(SMALL, num_hidden_layers=2, sliding_window=None)),
        "gpt2": ("GPT2Config", dict(n_embd=32, n_layer=2, n_head=4)),
        "gptj": ("GPTJConfig", dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4)),
        "gpt_neox": (
            "GPTNeoXConfig",
            dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
        ),
        "mistral": ("MistralConfig", dict(SMALL, num_hidden_layers=2, sliding_window=WINDOW)),
        "falcon": (
            "FalconConfig",
            dict(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                multi_query=True,
                new_decoder_architecture=False,
            ),
        ),
        "gemma2": (
            "Gemma2Config",
            dict(SMALL, num_hidden_layers=2, head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW),
        ),
        "gemma3": (
            "Gemma3TextConfig",
            dict(
                SMALL,
                num_hidden_layers=3,
                head_dim=8,
                query_pre_attn_scalar=8,
                sliding_window=WINDOW,
                layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            ),
        ),
        "gpt_oss": (
            "GptOssConfig",
            dict(SMALL, num_hidden_layers=2, head_dim=8, sliding_window=WINDOW, num_local_experts=4, **MOE),
        ),
        "mixtral": ("MixtralConfig", dict(SMALL, num_hidden_layers=2, num_local_experts=4, **MOE)),
        "qwen2_moe": (
            "Qwen2MoeConfig",
            dict(
                SMALL,
                num_hidden_layers=2,
                moe_intermediate_size=32,
                shared_expert_intermediate_size=32,
                num_experts=4,
                norm_topk_prob=False,
                **MOE,
            ),
        ),
        "qwen3_moe": (
            "Qwen3MoeConfig",
            dict(
                SMALL,
                num_hidden_layers=2,
                head_dim=8,
                moe_intermediate_size=32,
                num_experts=4,
                norm_topk_prob=True,
                **MOE,
            ),
        ),
        "olmoe": ("OlmoeConfig", dict(SMALL, num_hidden_layers=2, num_experts=4, **MOE)),
        "granitemoe": ("GraniteMoeConfig", dict(SMALL, num_hidden_layers=2, num_local_experts=4, **MOE)),
        "deepseek_v3": (
            "DeepseekV3Config",
            dict(
                SMALL,
                num_key_value_heads=4,
                num_hidden_layers=3,
                moe_intermediate_size=16,
                n_shared_experts=1,
                n_routed_experts=8,
                n_group=4,
                topk_group=2,
                first_k_dense_replace=1,
                kv_lora_rank=16,
                q_lora_rank=24,
                qk_rope_head_dim=4,
                qk_nope_head_dim=8,
                v_head_dim=8,
                routed_scaling_factor=2.5,
                **MOE,
            ),
        ),
        "jamba": (
            "JambaConfig",
            dict(
                SMALL,
                num_hidden_layers=4,
                num_experts=4,
                expert_layer_period=2,
                expert_layer_offset=1,
                attn_layer_period=2,
                attn_layer_offset=1,
                use_mamba_kernels=False,
                mamba_d_state=4,
                mamba_dt_rank=4,
                **MOE,
            ),
        ),
        "mamba": ("MambaConfig", dict(hidden_size=32, state_size=4, num_hidden_layers=2, expand=2, conv_kernel=4)),
        "falcon_h1": (
            "FalconH1Config",
            dict(
                SMALL,
                num_hidden_layers=2,
                mamba_d_ssm=32,
                mamba_n_heads=4,
                mamba_d_head=8,
                mamba_d_state=4,
                mamba_d_conv=4,
                mamba_chunk_size=8,
            ),
        ),
        "qwen3_next": (
            "Qwen3NextConfig",
            dict(
                SMALL,
                num_hidden_layers=4,
                head_dim=8,
                linear_conv_kernel_dim=4,
                linear_key_head_dim=8,
                linear_value_head_dim=8,
                linear_num_key_heads=2,
                linear_num_value_heads=4,
                moe_intermediate_size=16,
                shared_expert_intermediate_size=16,
                num_experts=4,
                layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"],
                **MOE,
            ),
        ),
    }


FAMILIES: tuple[str, ...] = tuple(_specs())


def tiny_config(family: str, vocab_size: int) -> Any:
    """The transformers config of one family, sized for the coverage suite."""
    import transformers

    class_name, kwargs = _specs()[family]
    common = dict(vocab_size=vocab_size, bos_token_id=0, eos_token_id=2, pad_token_id=0)
    positions = "n_positions" if family == "gpt2" else "max_position_embeddings"
    if family not in ("mamba", "gptj"):
        common[positions] = 64
    elif family == "gptj":
        common["n_positions"] = 64
    return getattr(transformers, class_name)(**kwargs, **common)


def build_models(root: Path, families: tuple[str, ...] = FAMILIES) -> dict[str, Path]:
    """Save every family's tiny model beside one shared tokenizer (about 2 s for all of them)."""
    import torch
    from conftest import _train_tokenizer
    from transformers import AutoModelForCausalLM

    tokenizer_dir = root / "_tokenizer"
    vocab_size = _train_tokenizer(tokenizer_dir)
    directories = {}
    for family in families:
        directory = root / family
        torch.manual_seed(4321 + FAMILIES.index(family))  # the same weights whichever subset is built
        model = AutoModelForCausalLM.from_config(tiny_config(family, vocab_size))
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(4.0)  # sharper logits, so sampling differences show
        model.save_pretrained(directory)
        for item in tokenizer_dir.iterdir():
            shutil.copy(item, directory / item.name)
        directories[family] = directory
    return directories
