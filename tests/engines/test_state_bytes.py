"""kv-calc's per-part pricing equals the bytes transformers' own caches hold on hybrid models.

Keys and conv states follow the model's dtype and recurrent states stay float32 (transformers 5.23), so a
bf16 or fp16 Falcon-H1 / Qwen3-Next / Mamba / Jamba cache is not 'elements × 2 B'.
"""

from __future__ import annotations

import pytest
import torch
from architecture_configs import tiny_config
from transformers import AutoModelForCausalLM

from llmscope.engines.hf import cache_argument_name
from llmscope.kvcalc import estimate, shape_from_config

PROMPT = list(range(3, 13))


def cache_bytes(cache: object) -> int:
    """Every tensor a transformers 5 cache holds: keys, values, conv and recurrent states."""
    total = 0
    for layer in cache.layers:  # type: ignore[attr-defined]
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            total += tensor.nbytes if isinstance(tensor, torch.Tensor) else 0
        for name in ("conv_states", "recurrent_states"):
            states = getattr(layer, name, None)
            values = states.values() if isinstance(states, dict) else ()
            total += sum(state.nbytes for state in values if isinstance(state, torch.Tensor))
    return total


@pytest.mark.parametrize("family", ["falcon_h1", "qwen3_next", "mamba", "jamba"])
@pytest.mark.parametrize(("dtype", "name"), [(torch.bfloat16, "bf16"), (torch.float16, "fp16")])
def test_estimate_equals_the_cache_tensors(family: str, dtype: torch.dtype, name: str) -> None:
    config = tiny_config(family, 300)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).to(dtype).eval()
    with torch.inference_mode():
        output = model(torch.tensor([PROMPT]), use_cache=True)
        cache = {cache_argument_name(model): output.past_key_values}  # `cache` since transformers 5.24
        output = model(torch.tensor([[20]]), use_cache=True, **cache)
    measured = cache_bytes(output.past_key_values)
    shape = shape_from_config(config.to_dict(), family)
    assert estimate(shape, len(PROMPT) + 1, dtype=name).total_bytes == measured
    assert estimate(shape, len(PROMPT) + 1, dtype=name, state_dtype=name).total_bytes < measured  # the old pricing


def test_the_kv_panes_formula_equals_the_measured_cache_in_bf16(tmp_path) -> None:
    """KVStats (what the KV pane shows) prices recurrent states at float32 beside bf16 keys, as the cache holds them."""
    from architecture_configs import build_models

    from llmscope.engines.hf import HFEngine

    for family, directory in build_models(tmp_path, ("falcon_h1", "mamba")).items():
        engine = HFEngine.load(str(directory), device="cpu")
        engine.model.to(torch.bfloat16)
        engine.prefill(PROMPT)
        kv = engine.step(20).kv
        assert kv is not None and kv.bytes_per_element == 2
        assert kv.formula_bytes == kv.total_bytes, family
        assert kv.formula_text().endswith(f"= {kv.total_bytes:,} B"), kv.formula_text()
