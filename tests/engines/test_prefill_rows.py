"""Prompt attention kept row by row (engines/prefill.py) against the model's own full eager forward.

The prefill keeps only its last rows: the dropped rows run through the fast kernel and the kept ones
eager, with per-layer hooks. For every family in tests/architecture_configs.py (sliding windows, MLA,
sinks, MoE, hybrids) and the conftest tiny models, the kept rows, the logits, the router logits and
the following decode steps must equal one uncached eager forward of the whole text; the eager kernel
must never see more than the kept query rows; and the kept rows stay within the byte budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from architecture_configs import FAMILIES, build_models

from llmscope.engines import prefill
from llmscope.engines.hf import HFEngine
from llmscope.trace import CaptureOptions

PROMPT = [5, 17, 42, 99, 7, 3, 250, 31, 8, 64, 9, 21]
STEPS = [11, 12, 13]
KEEP = 3


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("prefill-families"))


def _reference(directory: Path, ids: list[int], *, moe: bool = False) -> Any:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    kwargs = {"output_router_logits": True} if moe else {}
    with torch.no_grad():
        return model(torch.tensor([ids]), output_attentions=True, **kwargs)


def first_router(traces: list[Any]) -> bool:
    return traces[0].router is not None


def _check(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefill, "EAGER_CHUNK", KEEP)  # Gemma 2 and gpt-oss: dropped rows eagerly, KEEP at a time
    engine = HFEngine.load(str(directory), device="cpu", capture=CaptureOptions(prefill_attention_rows=KEEP))
    seen_rows: list[int] = []
    hooks = [
        module.register_forward_hook(
            lambda _m, _a, out, index=index: (
                seen_rows.append(int(out[index].shape[-2]))
                if isinstance(out, tuple) and isinstance(out[index], torch.Tensor)
                else None
            )
        )
        for _, module, index in engine._attention_modules
    ]
    traces = [engine.prefill(PROMPT)] + [engine.step(token) for token in STEPS]
    for hook in hooks:
        hook.remove()
    info = engine.info
    full = _reference(directory, PROMPT + STEPS, moe=first_router(traces))
    logits = full.logits[0].numpy()
    for trace in traces:
        np.testing.assert_allclose(trace.logits, logits[trace.position], atol=2e-4, rtol=1e-4)
    if not info.attention_layers:
        assert traces[0].attention is None
        return
    bounded = prefill.can_chunk(info.layer_kinds)
    if engine._attention_modules and bounded:  # else the kept rows come from one eager forward of the prompt
        assert max(seen_rows) <= KEEP, f"the eager kernel saw {max(seen_rows)} query rows"
    first = traces[0]
    assert first.attention.shape == (info.num_layers, first.attention.shape[1], KEEP, len(PROMPT))
    assert first.attention_query_start == len(PROMPT) - KEEP
    assert first.attention_layers == info.attention_layers
    for layer in range(info.num_layers):
        if layer not in info.attention_layers:
            assert not first.attention[layer].any()
            continue
        pattern = full.attentions[info.attention_layers.index(layer)][0].numpy()
        want = pattern[:, len(PROMPT) - KEEP : len(PROMPT), : len(PROMPT)]
        np.testing.assert_allclose(first.attention[layer], want, atol=2e-5)
    if first.router is not None:
        reference = torch.stack([layer.reshape(-1, layer.shape[-1]) for layer in full.router_logits]).numpy()
        np.testing.assert_allclose(first.router.logits, reference[:, : len(PROMPT)], atol=2e-5)
    if first.attention_sink is not None:
        sums = first.attention.sum(-1) + first.attention_sink
        assert np.allclose(sums[list(info.attention_layers)], 1.0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_kept_rows_equal_the_full_eager_forward(family_dirs: dict[str, Path], family: str, monkeypatch) -> None:
    _check(family_dirs[family], monkeypatch)


@pytest.mark.parametrize("kind", ["llama-gqa", "gpt2", "mixtral", "qwen2-moe-raw"])
def test_kept_rows_on_the_tiny_models(tiny_model_dirs: dict[str, Path], kind: str, monkeypatch) -> None:
    _check(tiny_model_dirs[kind], monkeypatch)


def test_rows_are_capped_by_the_byte_budget(tiny_model_dirs: dict[str, Path]) -> None:
    engine = HFEngine.load(str(tiny_model_dirs["llama-gqa"]), device="cpu")
    info = engine.info
    per_row = info.num_layers * info.num_heads * len(PROMPT) * 4
    engine.attention_budget = 5 * per_row + 1
    trace = engine.prefill(PROMPT)
    assert trace.attention.shape[2] == 5 and trace.attention.nbytes <= engine.attention_budget
    assert prefill.kept_rows(info, len(PROMPT), 256, budget=1) == 1
    assert prefill.kept_rows(info, len(PROMPT), 4, budget=10**9) == 4


def test_short_prompt_keeps_every_row(tiny_model_dirs: dict[str, Path]) -> None:
    engine = HFEngine.load(str(tiny_model_dirs["gpt2"]), device="cpu")
    trace = engine.prefill(PROMPT[:6])
    full = _reference(tiny_model_dirs["gpt2"], PROMPT[:6])
    assert trace.attention_query_start == 0
    for layer in range(engine.info.num_layers):
        np.testing.assert_allclose(trace.attention[layer], full.attentions[layer][0].numpy(), atol=2e-5)
