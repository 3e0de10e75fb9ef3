"""A model split by accelerate's device map (here CPU plus disk offload) captures exactly what the whole model does.

`HFEngine.load(..., device_map="auto", max_memory=..., offload_folder=...)` is the path a model larger than
one device takes (several GPUs, then CPU, then disk). A tiny model is forced across CPU and disk by a CPU
cap of 90% of its weights (accelerate keeps room for the largest layer); logits, attention rows, KV cache tensors and routing must equal the unsplit run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from architecture_configs import build_models

from llmscope.engines.hf import HFEngine

PROMPT = [5, 17, 42, 99, 7, 3, 250, 31]
STEPS = [11, 12, 13]


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("device-map"), ("llama", "mixtral", "mistral"))


@pytest.mark.parametrize("family", ["llama", "mixtral", "mistral"])
def test_split_model_equals_the_whole_one(family_dirs: dict[str, Path], family: str, tmp_path: Path) -> None:
    whole = HFEngine.load(str(family_dirs[family]), device="cpu")
    weights = sum(parameter.numel() * parameter.element_size() for parameter in whole.model.parameters())
    split = HFEngine.load(
        str(family_dirs[family]),
        device="cpu",
        device_map="auto",
        max_memory={"cpu": f"{weights * 9 // 10 // 1024}KiB"},
        offload_folder=str(tmp_path / "offload"),
    )
    placed = set(split.model.hf_device_map.values())
    assert {"cpu", "disk"} <= placed, split.model.hf_device_map
    expected = [whole.prefill(PROMPT)] + [whole.step(token) for token in STEPS]
    got = [split.prefill(PROMPT)] + [split.step(token) for token in STEPS]
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have.logits, want.logits, atol=1e-5)
        np.testing.assert_allclose(have.attention, want.attention, atol=1e-6)
        np.testing.assert_allclose(have.hidden_norms, want.hidden_norms, rtol=1e-5)
        assert have.kv == want.kv
        if want.router is not None:
            np.testing.assert_allclose(have.router.logits, want.router.logits, atol=1e-6)
            assert (have.router.experts == want.router.experts).all()
    for mine, theirs in zip(split._cache.layers, whole._cache.layers, strict=True):
        assert torch.allclose(mine.keys, theirs.keys, atol=1e-6) and torch.allclose(mine.values, theirs.values)
