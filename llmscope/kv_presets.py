"""The published config numbers behind `kv-calc --preset`: only the keys that decide a model's cache size.

Plain data (kvcalc builds the shapes), copied from each repository's config.json as published; a multimodal
model's numbers come from its text_config.
"""

from __future__ import annotations

from typing import Any

PUBLISHED_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    # preset name → (Hugging Face repository, the cache-relevant keys of its config.json, as published)
    "llama-3-70b": ("meta-llama/Meta-Llama-3-70B", {"model_type": "llama", "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "hidden_size": 8192}),
    "llama-3-8b": ("meta-llama/Meta-Llama-3-8B", {"model_type": "llama", "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}),
    "llama-3.1-405b": ("meta-llama/Llama-3.1-405B", {"model_type": "llama", "num_hidden_layers": 126,
        "num_attention_heads": 128, "num_key_value_heads": 8, "hidden_size": 16384}),
    "llama-3.2-1b": ("meta-llama/Llama-3.2-1B", {"model_type": "llama", "num_hidden_layers": 16,
        "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 2048, "head_dim": 64}),
    "llama-2-7b": ("meta-llama/Llama-2-7b-hf", {"model_type": "llama", "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "hidden_size": 4096}),
    "mistral-7b": ("mistralai/Mistral-7B-v0.1", {"model_type": "mistral", "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "sliding_window": 4096}),
    "mixtral-8x7b": ("mistralai/Mixtral-8x7B-v0.1", {"model_type": "mixtral", "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096, "sliding_window": None}),
    "gemma-2-9b": ("google/gemma-2-9b", {"model_type": "gemma2", "num_hidden_layers": 42,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256, "hidden_size": 3584,
        "sliding_window": 4096}),
    "gemma-2-27b": ("google/gemma-2-27b", {"model_type": "gemma2", "num_hidden_layers": 46,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128, "hidden_size": 4608,
        "sliding_window": 4096}),
    "gemma-3-4b": ("google/gemma-3-4b-it (text_config)", {"model_type": "gemma3_text", "num_hidden_layers": 34,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "hidden_size": 2560,
        "sliding_window": 1024, "sliding_window_pattern": 6}),
    "gemma-3-27b": ("google/gemma-3-27b-it (text_config)", {"model_type": "gemma3_text", "num_hidden_layers": 62,
        "num_attention_heads": 32, "num_key_value_heads": 16, "head_dim": 128, "hidden_size": 5376,
        "sliding_window": 1024, "sliding_window_pattern": 6}),
    "gpt-oss-20b": ("openai/gpt-oss-20b", {"model_type": "gpt_oss", "num_hidden_layers": 24,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "hidden_size": 2880,
        "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 12}),
    "gpt-oss-120b": ("openai/gpt-oss-120b", {"model_type": "gpt_oss", "num_hidden_layers": 36,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "hidden_size": 2880,
        "sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 18}),
    "qwen3-8b": ("Qwen/Qwen3-8B", {"model_type": "qwen3", "num_hidden_layers": 36, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 128, "hidden_size": 4096, "sliding_window": None,
        "use_sliding_window": False}),
    "qwen3-30b-a3b": ("Qwen/Qwen3-30B-A3B", {"model_type": "qwen3_moe", "num_hidden_layers": 48,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "hidden_size": 2048,
        "sliding_window": None, "use_sliding_window": False}),
    "deepseek-v3": ("deepseek-ai/DeepSeek-V3", {"model_type": "deepseek_v3", "num_hidden_layers": 61,
        "num_attention_heads": 128, "num_key_value_heads": 128, "hidden_size": 7168, "kv_lora_rank": 512,
        "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128}),
    "qwen3-next-80b-a3b": ("Qwen/Qwen3-Next-80B-A3B-Instruct", {"model_type": "qwen3_next", "num_hidden_layers": 48,
        "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 256, "hidden_size": 2048,
        "full_attention_interval": 4, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
        "linear_value_head_dim": 128, "linear_num_key_heads": 16, "linear_num_value_heads": 32}),
    "falcon-7b": ("tiiuae/falcon-7b", {"model_type": "falcon", "n_layer": 32, "n_head": 71, "hidden_size": 4544,
        "multi_query": True, "new_decoder_architecture": False}),
    "falcon-40b": ("tiiuae/falcon-40b", {"model_type": "falcon", "num_hidden_layers": 60,
        "num_attention_heads": 128, "num_kv_heads": 8, "hidden_size": 8192, "new_decoder_architecture": True}),
    "gpt-2": ("openai-community/gpt2", {"model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_embd": 768}),
    "smollm2-135m": ("HuggingFaceTB/SmolLM2-135M", {"model_type": "llama", "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}),
}  # fmt: skip
"""The numbers each preset reads, copied from the model's config.json (gemma-3: its text_config)."""
