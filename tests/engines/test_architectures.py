"""Every causal-LM family against transformers itself, on tiny random configs, past the sliding window.

For each family (tests/architecture_configs.py): cached logits equal an uncached full forward; attention
rows equal the model's own eager attentions at their positions (zeros outside a window, none for SSM
layers); reported cache bytes equal the cache tensors and the per-kind formula; routing equals what the
model's router module returned (forward hooks); rewinding then stepping equals never having stepped; and
`llmscope generate --model DIR --steps 8` with captures on exits 0. The check functions return their
largest error so `python tests/engines/test_architectures.py` prints the family × check matrix.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from architecture_configs import FAMILIES, WINDOW, build_models

from llmscope.engines.hf import HFEngine

PROMPT = [5, 17, 42, 99, 7, 3, 250, 31]
STEPS = [11, 12, 13, 14, 15, 16, 17, 18]
"""Fed after the prompt: 16 tokens in all, four times the window of 4."""
ROUTER_CLASS = re.compile(r"Top[Kk]Router$")
"""Every router class in transformers 5.24 (MixtralTopKRouter, DeepseekV3TopkRouter, GptOssTopKRouter, …)."""
MOE_FAMILIES = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "granitemoe", "deepseek_v3", "gpt_oss", "jamba"}
MOE_FAMILIES |= {"qwen3_next"}


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("architectures"))


def reference(directory: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()


def run_engine(directory: Path) -> tuple[HFEngine, list]:
    engine = HFEngine.load(str(directory), device="cpu")
    traces = [engine.prefill(PROMPT)] + [engine.step(token) for token in STEPS]
    return engine, traces


# ------------------------------------------------------------------------------------------- checks
def check_logits(directory: Path) -> float:
    """Largest |cached logits − uncached full-forward logits| over the prefill and every step."""
    _, traces = run_engine(directory)
    with torch.no_grad():
        full = reference(directory)(torch.tensor([PROMPT + STEPS])).logits[0].numpy()
    return max(float(np.abs(trace.logits - full[trace.position]).max()) for trace in traces)


def check_attention(directory: Path) -> float:
    """Largest |engine row − the model's own eager attention row| at every decode position, every layer."""
    engine, traces = run_engine(directory)
    info = engine.info
    if not info.attention_layers:
        assert not engine.capabilities.attention and "no softmax attention" in engine.capabilities.reason["attention"]
        assert all(trace.attention is None for trace in traces)
        return 0.0
    with torch.no_grad():
        out = reference(directory)(torch.tensor([PROMPT + STEPS]), output_attentions=True)
    patterns = [pattern[0].numpy() for pattern in out.attentions]  # one per attention layer, [heads, L, L]
    assert traces[-1].attention_layers == info.attention_layers
    worst = 0.0
    for trace in traces:
        rows = trace.attention  # [model layers, heads, rows, keys]
        assert rows.shape[0] == info.num_layers and rows.shape[-1] == trace.position + 1
        for layer in range(info.num_layers):
            if layer not in info.attention_layers:
                assert not rows[layer].any(), f"layer {layer} has no attention but holds weights"
                continue
            expected = patterns[info.attention_layers.index(layer)]
            for row in range(rows.shape[2]):
                position = trace.attention_query_start + row
                want = expected[:, position, : trace.position + 1]  # causal: zeros after `position`
                worst = max(worst, float(np.abs(rows[layer, :, row] - want).max()))
                first, last = info.key_range(layer, position)
                assert not rows[layer, :, row, :first].any() and not rows[layer, :, row, last + 1 :].any()
                sink = trace.attention_sink[layer, :, row] if trace.attention_sink is not None else 0.0
                np.testing.assert_allclose(rows[layer, :, row].sum(-1) + sink, 1.0, atol=1e-5)
    return worst


def cache_tensor_bytes(cache: Any) -> list[int]:
    """Bytes of every tensor each cache layer holds, found independently of the engine."""
    sizes = []
    for layer in cache.layers:
        total = 0
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
        for name in ("conv_states", "recurrent_states"):
            for tensor in (getattr(layer, name, None) or {}).values():
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        sizes.append(total)
    return sizes


def check_kv_bytes(directory: Path) -> float:
    """|reported − tensor bytes| and |per-kind formula − tensor bytes|, after every step (must be 0)."""
    engine = HFEngine.load(str(directory), device="cpu")
    worst = 0
    traces = [engine.prefill(PROMPT)]
    for token in STEPS:
        traces.append(engine.step(token))
        tensors = cache_tensor_bytes(engine._cache)
        kv = traces[-1].kv
        assert [layer.nbytes for layer in kv.layers] == [size for size in tensors if size]
        worst = max(worst, abs(kv.total_bytes - sum(tensors)), abs(kv.formula_bytes - sum(tensors)))
    from llmscope.kvcalc import estimate, shape_from_config_file

    shape = shape_from_config_file(directory)  # what `llmscope kv-calc DIR` reads: the same per-kind model
    assert shape.caches == engine.info.cache_layers
    assert estimate(shape, engine.context_length, dtype="fp32").total_bytes == traces[-1].kv.total_bytes
    sliding = [layer for layer in traces[-1].kv.layers if layer.kind == "sliding"]
    assert all(layer.tokens_held == WINDOW - 1 for layer in sliding), "a sliding layer kept more than W−1 tokens"
    return float(worst)


def hooked_routers(model: Any) -> tuple[list, list]:
    """Record (weights, experts) exactly as every router module returned them."""
    used: list[tuple[torch.Tensor, torch.Tensor]] = []
    handles = [
        module.register_forward_hook(lambda _m, _i, out: used.append((out[1].detach().float(), out[2].detach())))
        for module in model.modules()
        if ROUTER_CLASS.search(type(module).__name__)
    ]
    return used, handles


def check_routing(directory: Path) -> float:
    """Largest |engine weight − the router's own weight|, experts compared as sets per position."""
    engine = HFEngine.load(str(directory), device="cpu")
    if not engine.info.is_moe:
        assert not engine.capabilities.router
        return 0.0
    used, handles = hooked_routers(engine.model)
    assert handles, "no router module found"
    worst = 0.0
    try:
        for feed in [None, *STEPS]:
            used.clear()
            trace = engine.prefill(PROMPT) if feed is None else engine.step(feed)
            router = trace.router
            assert router is not None and len(used) == len(router.layers)
            for layer, (weights, experts) in enumerate(used):
                order = torch.argsort(experts, dim=-1)
                mine = torch.from_numpy(router.experts[layer])
                mine_order = torch.argsort(mine, dim=-1)
                assert torch.equal(mine.gather(-1, mine_order), experts.gather(-1, order))
                theirs = weights.gather(-1, order).numpy()
                ours = router.weights[layer][np.arange(len(mine))[:, None], mine_order.numpy()]
                worst = max(worst, float(np.abs(ours - theirs).max()))
    finally:
        for handle in handles:
            handle.remove()
    return worst


def check_rewind(directory: Path) -> float:
    """Largest |logits| difference between rewind-3-then-step and a run that never took those steps."""
    engine, _ = run_engine(directory)
    history = engine.context_length
    engine.truncate(history - 3)
    again = engine.step(77)
    fresh = HFEngine.load(str(directory), device="cpu")
    fresh.prefill(PROMPT)
    for token in STEPS[:-3]:
        fresh.step(token)
    expected = fresh.step(77)
    assert again.kv.total_bytes == expected.kv.total_bytes
    worst = float(np.abs(again.logits - expected.logits).max())
    if again.attention is not None:
        worst = max(worst, float(np.abs(again.attention - expected.attention).max()))
    return worst


def check_cli(directory: Path) -> float:
    """`llmscope generate --model DIR --steps 8 --json` with captures on: exit 0, eight tokens (0 if so)."""
    import json

    from typer.testing import CliRunner

    from llmscope.cli.main import app

    result = CliRunner().invoke(app, ["generate", "Hello there", "--model", str(directory), "--steps", "8", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["steps"]) == 8
    return 0.0


CHECKS = {
    "logits": check_logits,
    "attention": check_attention,
    "kv_bytes": check_kv_bytes,
    "routing": check_routing,
    "rewind": check_rewind,
    "cli": check_cli,
}
TOLERANCE = {"logits": 1e-4, "attention": 1e-5, "kv_bytes": 0.0, "routing": 1e-6, "rewind": 0.0, "cli": 0.0}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("check", list(CHECKS))
def test_family(family_dirs: dict[str, Path], family: str, check: str) -> None:
    assert CHECKS[check](family_dirs[family]) <= TOLERANCE[check]


def test_routing_families_are_all_moe(family_dirs: dict[str, Path]) -> None:
    """Every MoE family is routed (none refused), and the dense ones say why there is no router."""
    for family in MOE_FAMILIES:
        engine = HFEngine.load(str(family_dirs[family]), device="cpu")
        assert engine.capabilities.router, engine.capabilities.reason


@pytest.mark.parametrize("family", ["gemma2", "falcon_h1"])
def test_a_rewind_that_fails_midway_leaves_the_cache_as_it_was(family_dirs, family, monkeypatch) -> None:
    """A rebuild that breaks part-way raises one clear EngineError and the engine carries on unharmed."""
    from llmscope.engine_api import EngineError

    engine, _ = run_engine(family_dirs[family])
    length, cache = engine.context_length, engine._cache
    calls = []

    def broken(cache: Any, ids: list[int]) -> None:
        calls.append(ids)
        if len(calls) == 2:
            raise RuntimeError("device lost")

    monkeypatch.setattr(engine, "_replay", broken)
    with pytest.raises(EngineError, match="could not rewind the cache to 13 tokens: device lost"):
        engine.truncate(length - 3)
    assert engine.context_length == length and engine._cache is cache
    monkeypatch.undo()
    after = engine.step(77)
    fresh, _ = run_engine(family_dirs[family])
    np.testing.assert_array_equal(after.logits, fresh.step(77).logits)


@pytest.mark.parametrize("family", ["gpt_oss", "qwen3_next"])
def test_long_rewinds_replay_from_the_nearest_checkpoint(family_dirs, family, monkeypatch) -> None:
    """45 steps in, a rewind replays from the checkpoint at forward 33, not from the prompt, and stays exact."""
    from llmscope.engines import rewind

    tokens = [(7 * number) % 300 + 3 for number in range(45)]
    engine = HFEngine.load(str(family_dirs[family]), device="cpu")
    engine.prefill(PROMPT)
    for token in tokens:
        engine.step(token)
    assert sorted(engine._log.checkpoints) == [len(PROMPT), len(PROMPT) + rewind.CHECKPOINT_EVERY]
    replayed = []
    original = engine._replay
    monkeypatch.setattr(engine, "_replay", lambda cache, ids: (replayed.append(ids), original(cache, ids)))
    engine.truncate(engine.context_length - 5)
    assert len(replayed) == 45 - 5 - rewind.CHECKPOINT_EVERY  # forwards after the checkpoint, one per token
    again = engine.step(99)
    engine.truncate(len(PROMPT) + 10)  # before the later checkpoint: from the prefill's, which it also drops
    assert sorted(engine._log.checkpoints) == [len(PROMPT)]
    fresh = HFEngine.load(str(family_dirs[family]), device="cpu")
    fresh.prefill(PROMPT)
    for token in tokens[:-5]:
        fresh.step(token)
    np.testing.assert_array_equal(again.logits, fresh.step(99).logits)


def test_gpt_oss_sinks_are_kept(family_dirs) -> None:
    """gpt-oss rows sum to less than 1: the rest went to the learned sink, reported per layer, head and row."""
    engine, traces = run_engine(family_dirs["gpt_oss"])
    sink = traces[-1].attention_sink
    assert sink is not None and sink.shape == traces[-1].attention.shape[:3]
    assert (sink[list(engine.info.attention_layers)] > 1e-3).all()
    plain, plain_traces = run_engine(family_dirs["llama"])
    assert plain_traces[-1].attention_sink is None


def test_layer_kinds_and_windows(family_dirs) -> None:
    """What each family's layers are, as the trace reports them."""
    expected = {
        "gemma3": (("sliding", "sliding", "full"), (WINDOW, WINDOW, 0)),
        "gpt_oss": (("sliding", "full"), (WINDOW, 0)),
        "mistral": (("sliding", "sliding"), (WINDOW, WINDOW)),
        "jamba": (("ssm", "full", "ssm", "full"), (0, 0, 0, 0)),
        "qwen3_next": (("linear", "full", "linear", "full"), (0, 0, 0, 0)),
        "falcon_h1": (("hybrid", "hybrid"), (0, 0)),
        "mamba": (("ssm", "ssm"), (0, 0)),
        "deepseek_v3": (("mla", "mla", "mla"), (0, 0, 0)),
    }
    for family, (kinds, windows) in expected.items():
        info = HFEngine.load(str(family_dirs[family]), device="cpu").info
        assert (info.layer_kinds, info.layer_windows) == (kinds, windows), family
    falcon = HFEngine.load(str(family_dirs["falcon"]), device="cpu").info
    assert (falcon.num_heads, falcon.num_kv_heads) == (4, 1), "Falcon multi_query means one KV head"


if __name__ == "__main__":  # the matrix for the report: family × check, largest error
    import tempfile
    import time

    sys.path.insert(0, str(Path(__file__).parents[1]))
    with tempfile.TemporaryDirectory() as folder:
        dirs = build_models(Path(folder))
        print(f"{'family':12s} " + " ".join(f"{name:>10s}" for name in CHECKS) + "   seconds")
        for family in FAMILIES:
            started = time.perf_counter()
            cells = []
            for name, check in CHECKS.items():
                try:
                    cells.append(f"{check(dirs[family]):10.1e}")
                except Exception as error:  # noqa: BLE001 - the matrix shows a failure instead of stopping
                    cells.append(f"{'FAIL':>10s}")
                    print(f"  {family}/{name}: {type(error).__name__}: {str(error)[:200]}")
            print(f"{family:12s} " + " ".join(cells) + f"   {time.perf_counter() - started:5.1f}")
