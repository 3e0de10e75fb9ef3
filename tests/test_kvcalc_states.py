"""KV what-ifs on hybrid models price SSM / linear-attention states apart from keys (issue 11).

States are per sequence: they never grow with tokens, a KV quantiser (int8/int4) leaves them alone, and
transformers keeps recurrent states in float32 while conv states follow the model's dtype. The numbers are
transformers' own tiny Falcon-H1 / Qwen3-Next configs (tests/architecture_configs.py) and the published
Qwen3-Next-80B-A3B config; every figure is a hand formula written out here.
"""

from __future__ import annotations

import pytest
from architecture_configs import tiny_config

from llmscope.kvcalc import PRESETS, estimate, shape_from_config, state_pricing, what_if

INT8 = 1 + 2 / 64  # one fp16 scale per 64 numbers (QUANT_SCHEMES)
INT4 = 0.5 + 4 / 32  # fp16 scale and zero-point per 32

# family → (key elements per token, conv state elements, recurrent state elements), all layers, one sequence
HAND = {
    # 2 hybrid layers: attention 2 kv_heads × head_dim 8 (hidden 32 / 4 heads), beside a Mamba-2 mixer with
    # d_ssm 32, 1 group, d_state 4, d_conv 4, 4 heads × d_head 8
    "falcon_h1": (2 * 2 * 2 * 8, 2 * (32 + 2 * 1 * 4) * 4, 2 * 4 * 8 * 4),
    # 2 full layers (2 kv_heads × 8) and 2 Gated DeltaNet layers: conv (2 × 2 key heads × 8 + 4 value heads × 8)
    # channels × kernel 4, recurrent 4 value heads × 8 × 8
    "qwen3_next": (2 * 2 * 2 * 8, 2 * (2 * 2 * 8 + 4 * 8) * 4, 2 * 4 * 8 * 8),
}


def hand_bytes(family: str, tokens: int, batch: int, keys: float, conv: float, recurrent: float) -> int:
    per_token, conv_elements, recurrent_elements = HAND[family]
    exact = (per_token * tokens * keys + conv_elements * conv + recurrent_elements * recurrent) * batch
    return int(-(-exact // 1))


@pytest.fixture(scope="module", params=sorted(HAND))
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def shape_of(family: str):  # type: ignore[no-untyped-def]
    return shape_from_config(tiny_config(family, 300).to_dict(), family)


@pytest.mark.parametrize(("tokens", "batch"), [(1, 1), (10, 1), (1000, 1), (10, 3)])
def test_states_are_per_sequence_and_do_not_grow(family: str, tokens: int, batch: int) -> None:
    """bf16 model: keys and conv states at 2 B, recurrent states at 4 B (float32); states scale with batch only."""
    result = estimate(shape_of(family), tokens, batch, "bf16")
    assert result.total_bytes == hand_bytes(family, tokens, batch, 2, 2, 4)
    assert result.formula_text.endswith(f"= {result.total_bytes:,} B")
    assert "conv × 2 B" in result.formula_text and "recurrent × 4 B" in result.formula_text


def test_growth_is_keys_only(family: str) -> None:
    shape = shape_of(family)
    step = estimate(shape, 101).total_bytes - estimate(shape, 100).total_bytes
    assert step == HAND[family][0] * 2 == estimate(shape, 100).bytes_per_token


@pytest.mark.parametrize(("name", "factor"), [("int8", INT8), ("int4", INT4), ("fp16", 2)])
def test_dtype_what_ifs_change_only_keys_and_values(family: str, name: str, factor: float) -> None:
    """The int8/int4 rows quantise keys and values (scales counted); the states keep the as-is bytes."""
    rows = dict(what_if(shape_of(family), 50, 2, "bf16"))
    assert set(rows) >= {"as is (bf16)", "int8 keys/values (+ scales)", "int4 keys/values (+ scales)"}
    label = f"{name} keys/values" + (" (+ scales)" if name != "fp16" else "")
    assert rows[label].total_bytes == hand_bytes(family, 50, 2, factor, 2, 4)
    as_is = rows["as is (bf16)"].total_bytes
    states = hand_bytes(family, 0, 2, 0, 2, 4)
    assert rows[label].total_bytes - states == pytest.approx((as_is - states) * factor / 2, abs=1)


def test_context_what_ifs_leave_states_alone(family: str) -> None:
    """Other contexts (the pane's max-context rows, a window) change the key part only."""
    shape = shape_of(family)
    short, long = dict(what_if(shape, 10)), dict(what_if(shape, 4000))
    for label in ("as is (bf16)", "int8 keys/values (+ scales)"):
        key_bytes = 2 if label.startswith("as is") else INT8
        difference = long[label].total_bytes - short[label].total_bytes
        assert difference == pytest.approx(HAND[family][0] * 3990 * key_bytes, abs=1)


def test_explicit_state_dtype_and_quantised_kv_defaults() -> None:
    """--dtype int8 alone keeps conv states in bf16 and recurrent in fp32; a state dtype prices both states."""
    assert state_pricing("int8") == state_pricing("bf16").__class__(INT8, 2, 4)
    assert state_pricing("fp32") == state_pricing("fp32", "fp32")
    shape = shape_of("falcon_h1")
    assert estimate(shape, 7, dtype="int4").total_bytes == hand_bytes("falcon_h1", 7, 1, INT4, 2, 4)
    assert estimate(shape, 7, state_dtype="bf16").total_bytes == hand_bytes("falcon_h1", 7, 1, 2, 2, 2)


def test_models_without_states_read_as_before() -> None:
    """A plain attention model keeps the old labels and a single bytes factor in its formula."""
    rows = dict(what_if(PRESETS["llama-3-8b"], 100))
    assert "int8 cache (+ scales)" in rows and "fp16 cache" in rows
    assert rows["as is (bf16)"].formula_text.startswith("2 × 32 layers × 8 kv_heads")


def test_qwen3_next_80b_published_config() -> None:
    """Qwen3-Next-80B-A3B: 12 full layers (2 kv_heads × 256) and 36 Gated DeltaNet layers (16 key heads and
    32 value heads of 128, conv kernel 4); at 32k tokens the states are a small constant beside the keys."""
    shape = PRESETS["qwen3-next-80b-a3b"]
    tokens = 32768
    keys = 2 * 12 * 2 * 256 * tokens * 2
    conv = 36 * (2 * 16 * 128 + 32 * 128) * 4 * 2
    recurrent = 36 * 32 * 128 * 128 * 4
    assert estimate(shape, tokens).total_bytes == keys + conv + recurrent == 883_163_136
    int8 = dict(what_if(shape, tokens))["int8 keys/values (+ scales)"]
    assert int8.total_bytes == keys // 2 * 66 // 64 + conv + recurrent


def test_kv_calc_cli_state_dtype(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`kv-calc DIR --dtype int8` keeps the states as transformers does; --state-dtype int8 says otherwise."""
    import json

    from typer.testing import CliRunner

    from llmscope.cli.main import app

    tiny_config("falcon_h1", 300).save_pretrained(tmp_path)
    runner = CliRunner()
    args = ["kv-calc", str(tmp_path), "--context", "100", "--dtype", "int8", "--json"]
    default = json.loads(runner.invoke(app, args).stdout)
    said = json.loads(runner.invoke(app, [*args, "--state-dtype", "int8"]).stdout)
    assert default["bytes"] == hand_bytes("falcon_h1", 100, 1, INT8, 2, 4)
    assert said["bytes"] == hand_bytes("falcon_h1", 100, 1, INT8, INT8, INT8)
    assert [row["bytes"] for row in said["what_if"]][0] == said["bytes"]
    assert runner.invoke(app, [*args, "--state-dtype", "fp7"]).exit_code == 2
