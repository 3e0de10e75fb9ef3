"""KV-cache calculator against hand computation and configs written by transformers itself."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from llmscope.kvcalc import (
    PRESETS,
    QUANT_SCHEMES,
    KVShape,
    dtype_bytes,
    estimate,
    get_preset,
    shape_from_config,
    shape_from_config_file,
    what_if,
)

# (layers, heads, kv_heads, head_dim, hidden_size, window) from the published config.json files.
PUBLISHED = {
    "llama-3-70b": (80, 64, 8, 128, 8192, None),
    "llama-3-8b": (32, 32, 8, 128, 4096, None),
    "llama-2-7b": (32, 32, 32, 128, 4096, None),
    "mistral-7b": (32, 32, 8, 128, 4096, 4096),
    "mixtral-8x7b": (32, 32, 8, 128, 4096, None),
    "gpt-2": (12, 12, 12, 64, 768, None),
    "smollm2-135m": (30, 9, 3, 64, 576, None),
}


def test_module_is_pure_python() -> None:
    code = (
        "import sys, llmscope.kvcalc; "
        "print(sorted(m for m in ('torch', 'transformers', 'textual', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_llama3_70b_at_8k_bf16_is_exact() -> None:
    result = estimate(PRESETS["llama-3-70b"], 8192)
    assert result.total_bytes == 2 * 80 * 8 * 128 * 8192 * 1 * 2 == 2_684_354_560
    assert result.formula_text == (
        "2 × 80 layers × 8 kv_heads × 128 head_dim × 8192 tokens × 1 batch × 2 B = 2,684,354,560 B"
    )
    assert result.gb == pytest.approx(2.68435456)
    assert result.gib == 2.5
    assert result.tokens_cached == 8192 and not result.window_applied


def test_llama3_70b_at_128k_matches_seed_figure() -> None:
    assert estimate(PRESETS["llama-3-70b"], 131072).gb == pytest.approx(42.95, abs=0.01)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_match_published_configs(name: str) -> None:
    layers, heads, kv_heads, head_dim, hidden, window = PUBLISHED[name]
    shape = PRESETS[name]
    assert (shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.head_dim) == (
        layers,
        heads,
        kv_heads,
        head_dim,
    )
    assert shape.head_dim * shape.num_heads == hidden
    assert shape.sliding_window == window
    assert shape.name == name and shape.source.startswith("config.json of ")


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize(("context", "batch", "dtype"), [(1, 1, "fp32"), (2048, 1, "fp16"), (3000, 4, "int8")])
def test_every_preset_equals_hand_formula(name: str, context: int, batch: int, dtype: str) -> None:
    shape = PRESETS[name]
    # transformers' sliding layers keep W−1 tokens between steps (the new token makes W)
    tokens = min(context, shape.sliding_window - 1) if shape.sliding_window else context
    elements = 2 * shape.num_layers * shape.num_kv_heads * shape.head_dim * tokens * batch
    hand = math.ceil(elements * {"fp32": 4, "fp16": 2, "int8": 1 + 2 / 64}[dtype])
    result = estimate(shape, context, batch, dtype)
    assert result.total_bytes == hand
    assert isinstance(result.total_bytes, int)
    assert result.formula_text.endswith(f"= {hand:,} B")


def test_seed_test_cases() -> None:
    # CONCEPTS T12, T16, T17: hand-checked figures.
    assert estimate(PRESETS["llama-2-7b"], 2048, dtype="fp16").total_bytes == 2**30
    assert estimate(PRESETS["llama-2-7b"], 2048, batch=8, dtype="fp16").gib == 8
    assert estimate(PRESETS["smollm2-135m"], 8192, dtype="fp16").total_bytes == 188_743_680
    assert estimate(PRESETS["smollm2-135m"], 1, dtype="fp16").bytes_per_token == 23_040
    assert estimate(PRESETS["llama-3-8b"], 4096).total_bytes == 536_870_912
    assert estimate(PRESETS["llama-2-7b"], 4096).total_bytes == 2_147_483_648


def test_sliding_window_caps_tokens() -> None:
    mistral = PRESETS["mistral-7b"]
    capped = estimate(mistral, 32768)
    full = estimate(mistral, 32768, use_window=False)
    assert capped.tokens_cached == 4095 and capped.window_applied
    assert capped.total_bytes == 2 * 32 * 8 * 128 * 4095 * 2 == 536_739_840
    assert full.tokens_cached == 32768 and full.total_bytes == 4_294_967_296
    short = estimate(mistral, 100)
    assert short.tokens_cached == 100 and not short.window_applied


def test_integer_caches_count_their_scales() -> None:
    """int8: one fp16 scale per 64 numbers; int4: an fp16 scale and zero-point per 32 (QUANT_SCHEMES says so)."""
    shape = PRESETS["llama-3-8b"]
    elements = 2 * 32 * 8 * 128 * 1000
    int8 = estimate(shape, 1000, dtype="int8")
    int4 = estimate(shape, 1000, dtype="int4")
    assert int8.total_bytes == elements + elements // 64 * 2
    assert int4.total_bytes == elements // 2 + elements // 32 * 4
    assert isinstance(int4.total_bytes, int) and "× 0.625 B =" in int4.formula_text
    assert "group of 64" in QUANT_SCHEMES["int8"] and "group of 32" in QUANT_SCHEMES["int4"]
    tiny = KVShape("tiny", num_layers=1, num_heads=1, num_kv_heads=1, head_dim=1)
    assert estimate(tiny, 1, dtype="int4").total_bytes == 2  # 2 numbers × 0.625 B, rounded up


def test_dtype_names() -> None:
    assert dtype_bytes("bf16") == dtype_bytes("bfloat16") == dtype_bytes("float16") == dtype_bytes("fp16") == 2
    assert dtype_bytes("fp32") == dtype_bytes("float32") == 4
    assert dtype_bytes("fp8") == 1 and dtype_bytes("int8") == 1 + 2 / 64
    assert dtype_bytes("int4") == 0.5 + 4 / 32
    assert dtype_bytes("torch.bfloat16") == 2 and dtype_bytes(" BF16 ") == 2
    with pytest.raises(ValueError, match="unknown dtype 'fp12'.*bf16.*int4"):
        estimate(PRESETS["gpt-2"], 10, dtype="fp12")


@pytest.mark.parametrize(("context", "batch"), [(0, 1), (-5, 1), (10, 0), (10, -1), (1.5, 1), (True, 1)])
def test_bad_counts_raise(context: object, batch: object) -> None:
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        estimate(PRESETS["gpt-2"], context, batch)  # type: ignore[arg-type]


def test_bad_shape_and_preset_raise() -> None:
    with pytest.raises(ValueError, match="num_kv_heads"):
        KVShape("bad", 2, 4, 0, 64)
    with pytest.raises(ValueError, match="sliding_window"):
        KVShape("bad", 2, 4, 4, 64, sliding_window=0)
    with pytest.raises(ValueError, match="llama-3-70b"):
        get_preset("llama-9")
    assert get_preset("GPT-2") is PRESETS["gpt-2"]


def test_what_if_rows() -> None:
    rows = dict(what_if(PRESETS["llama-3-70b"], 8192, 1, "bf16"))
    base = rows["as is (bf16)"].total_bytes
    assert base == 2_684_354_560
    assert rows["fp16 cache"].total_bytes == base
    assert rows["int8 cache (+ scales)"].total_bytes == base // 2 * 66 // 64
    assert rows["int4 cache (+ scales)"].total_bytes == base // 4 * 80 // 64
    assert rows["MHA: 64 kv_heads instead of 8"].total_bytes == base * 8
    assert rows["sliding window 4096"].total_bytes == base // 8192 * 4095
    assert rows["sliding window 4096"].tokens_cached == 4095


def test_what_if_skips_no_op_rows() -> None:
    gpt2_labels = [label for label, _ in what_if(PRESETS["gpt-2"], 1024, 1, "fp32")]
    assert not any(label.startswith("MHA") for label in gpt2_labels)
    mistral = dict(what_if(PRESETS["mistral-7b"], 32768, 2, "bf16"))
    assert mistral["as is (bf16)"].tokens_cached == 4095
    assert mistral["full cache (no sliding window)"].tokens_cached == 32768
    assert not any(label.startswith("sliding window") for label in mistral)


def test_shape_from_config_dicts() -> None:
    llama = {"num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "hidden_size": 8192}
    shape = shape_from_config(llama, "l")
    assert (shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.head_dim) == (80, 64, 8, 128)
    assert shape.caches == KVShape("l", 80, 64, 8, 128).caches
    no_kv = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}
    assert shape_from_config(no_kv, "m").num_kv_heads == 4
    explicit_head_dim = {**llama, "head_dim": 256}
    assert shape_from_config(explicit_head_dim, "g").head_dim == 256
    qwen_disabled_window = {**llama, "sliding_window": 32768, "use_sliding_window": False}
    assert shape_from_config(qwen_disabled_window, "q").sliding_window is None
    mixed_layers = {**llama, "sliding_window": 512, "layer_types": ["sliding_attention", "full_attention"] * 40}
    mixed = shape_from_config(mixed_layers, "g2")
    assert mixed.sliding_window is None  # no single window: the layers say which slide
    assert [(cache.kind, cache.layers, cache.window) for cache in mixed.caches] == [
        ("sliding", 40, 512),
        ("full", 40, 0),
    ]
    falcon = {"n_layer": 32, "n_head": 71, "hidden_size": 4544, "multi_query": True}
    assert shape_from_config(falcon, "falcon").num_kv_heads == 1
    wrapped = {"text_config": llama, "vision_config": {}}
    assert shape_from_config(wrapped, "vlm").num_layers == 80
    with pytest.raises(ValueError, match="num_hidden_layers"):
        shape_from_config({"hidden_size": 8}, "broken")


def test_transformers_llama_config_round_trip(tmp_path: Path) -> None:
    from transformers import LlamaConfig

    LlamaConfig(num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, hidden_size=256).save_pretrained(
        tmp_path
    )
    shape = shape_from_config_file(tmp_path / "config.json", name="tiny-llama")
    assert (shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.head_dim) == (4, 8, 2, 32)
    assert shape.sliding_window is None and str(tmp_path) in shape.source
    assert shape_from_config_file(tmp_path).num_layers == 4  # a folder works too


def test_transformers_gpt2_config_round_trip(tmp_path: Path) -> None:
    from transformers import GPT2Config

    GPT2Config(n_layer=3, n_head=4, n_embd=128).save_pretrained(tmp_path)
    shape = shape_from_config_file(tmp_path / "config.json")
    assert (shape.num_layers, shape.num_heads, shape.num_kv_heads, shape.head_dim) == (3, 4, 4, 32)


def test_transformers_moe_configs_round_trip(tmp_path: Path) -> None:
    from transformers import MistralConfig, MixtralConfig, Qwen2MoeConfig

    MixtralConfig(num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4, hidden_size=128).save_pretrained(
        tmp_path / "mixtral"
    )
    mixtral = shape_from_config_file(tmp_path / "mixtral" / "config.json")
    assert (mixtral.num_layers, mixtral.num_heads, mixtral.num_kv_heads, mixtral.head_dim) == (2, 8, 4, 16)
    assert mixtral.sliding_window is None  # saved as null

    Qwen2MoeConfig(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, hidden_size=64).save_pretrained(
        tmp_path / "qwen"
    )
    qwen = shape_from_config_file(tmp_path / "qwen" / "config.json")
    assert (qwen.num_layers, qwen.num_heads, qwen.num_kv_heads, qwen.head_dim, qwen.sliding_window) == (
        3,
        4,
        2,
        16,
        None,
    )

    MistralConfig(num_hidden_layers=2, sliding_window=4096).save_pretrained(tmp_path / "mistral")
    mistral = shape_from_config_file(tmp_path / "mistral")
    assert mistral.sliding_window == 4096 and mistral.head_dim == 128


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        shape_from_config_file(tmp_path / "missing.json")
    bad = tmp_path / "config.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        shape_from_config_file(bad)
    bad.write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(ValueError, match="JSON object"):
        shape_from_config_file(bad)


# Per-kind presets: hand figures from each config.json's numbers at 32,768 tokens in bf16 (2 B).
T = 32768


@pytest.mark.parametrize(
    ("name", "hand"),
    [
        ("deepseek-v3", 61 * (512 + 64) * T * 2),  # MLA: one latent of kv_lora_rank + qk_rope_head_dim per token
        ("gemma-2-9b", (21 * 2 * 8 * 256 * 4095 + 21 * 2 * 8 * 256 * T) * 2),  # alternating local/global
        ("gemma-2-27b", (23 * 2 * 16 * 128 * 4095 + 23 * 2 * 16 * 128 * T) * 2),
        ("gemma-3-4b", (29 * 2 * 4 * 256 * 1023 + 5 * 2 * 4 * 256 * T) * 2),  # 5 local : 1 global
        ("gemma-3-27b", (52 * 2 * 16 * 128 * 1023 + 10 * 2 * 16 * 128 * T) * 2),
        ("gpt-oss-20b", (12 * 2 * 8 * 64 * 127 + 12 * 2 * 8 * 64 * T) * 2),
        ("gpt-oss-120b", (18 * 2 * 8 * 64 * 127 + 18 * 2 * 8 * 64 * T) * 2),
        ("qwen3-8b", 2 * 36 * 8 * 128 * T * 2),
        ("qwen3-30b-a3b", 2 * 48 * 4 * 128 * T * 2),
        ("llama-3.2-1b", 2 * 16 * 8 * 64 * T * 2),
        ("llama-3.1-405b", 2 * 126 * 8 * 128 * T * 2),
        ("falcon-7b", 2 * 32 * 1 * 64 * T * 2),  # multi_query: one KV head
        ("falcon-40b", 2 * 60 * 8 * 64 * T * 2),  # new decoder architecture: num_kv_heads 8
    ],
)
def test_per_kind_presets_equal_hand_figures(name: str, hand: int) -> None:
    result = estimate(PRESETS[name], T)
    assert result.total_bytes == hand
    assert result.formula_text.endswith(f"= {hand:,} B")


def test_deepseek_v3_is_no_longer_overestimated_28_times() -> None:
    """The classic formula with DeepSeek-V3's 128 heads × 64 (its config's head_dim) gave 28× the latent cache."""
    shape = PRESETS["deepseek-v3"]
    classic = 2 * 61 * 128 * 64 * T * 2
    assert classic / estimate(shape, T).total_bytes == pytest.approx(28.44, abs=0.01)
    assert shape.attention_kind == "MLA"
    assert "61 layers MLA × 576 latent (512 kv_lora_rank + 64 qk_rope_head_dim)" in estimate(shape, T).formula_text


def test_mixed_windows_what_ifs() -> None:
    """Gemma 3: the window applies to some layers; 'full cache' removes every window; no extra window row."""
    rows = dict(what_if(PRESETS["gemma-3-27b"], T, 1, "bf16"))
    assert rows["as is (bf16)"].window_applied
    full = rows["full cache (no sliding window)"]
    assert full.total_bytes == 2 * 62 * 16 * 128 * T * 2 and not full.window_applied
    assert not any(label.startswith("sliding window") for label in rows)


def test_ssm_and_hybrid_layouts_from_configs() -> None:
    """Mamba holds constant states; Jamba mixes Mamba and attention layers; Falcon-H1 has both in every layer."""
    mamba = {"model_type": "mamba", "num_hidden_layers": 24, "hidden_size": 768, "intermediate_size": 1536,
             "state_size": 16, "conv_kernel": 4}  # fmt: skip
    shape = shape_from_config(mamba, "mamba-130m")
    # conv states in the model's bf16, recurrent states in float32 (as transformers keeps them)
    assert estimate(shape, 10).total_bytes == estimate(shape, 10_000).total_bytes == 24 * 1536 * (4 * 2 + 16 * 4)
    assert shape.attention_kind == "no attention"
    jamba = {"model_type": "jamba", "num_hidden_layers": 8, "hidden_size": 64, "num_attention_heads": 4,
             "num_key_value_heads": 2, "attn_layer_period": 8, "attn_layer_offset": 4, "mamba_expand": 2,
             "mamba_d_state": 16, "mamba_d_conv": 4}  # fmt: skip
    layers = {cache.kind: cache.layers for cache in shape_from_config(jamba, "jamba").caches}
    assert layers == {"ssm": 7, "full": 1}
    assert estimate(shape_from_config(jamba, "j"), 100).total_bytes == 7 * 128 * (4 * 2 + 16 * 4) + 2 * 2 * 16 * 100 * 2
