"""The logit lens against a direct computation with each model's own modules, for every family we build.

The reference runs one uncached full forward with `output_hidden_states`, normalises each layer's state at the
step's position with the family's final norm named by hand below (the last state is already normed), applies
the output embedding and the family's output scaling as its modeling code does, and takes log-softmax. The
engine captured its lens while stepping through the KV cache past every sliding window.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from architecture_configs import FAMILIES, build_models

from llmscope.engines.hf import HFEngine
from llmscope.generation import Generation
from llmscope.lens import bucketed_kl, from_log_probs
from llmscope.sampler import SamplerConfig
from llmscope.trace import CaptureOptions

PROMPT = [5, 17, 42, 99, 7, 3, 250, 31]
STEPS = [11, 12, 13, 14, 15, 16, 17, 18]
FINAL_NORM = {
    "gpt2": "transformer.ln_f",
    "gptj": "transformer.ln_f",
    "falcon": "transformer.ln_f",
    "gpt_neox": "gpt_neox.final_layer_norm",
    "mamba": "backbone.norm_f",
    "jamba": "model.final_layernorm",
    "falcon_h1": "model.final_layernorm",
}
"""Where each family keeps its final norm, read from its modeling file (model.norm for all others)."""
LENS = CaptureOptions(logit_lens=True)


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("lens-families"))


def reference_log_probs(model: Any, family: str, ids: list[int]) -> np.ndarray:
    """float64 [positions, layers + 1, vocab] lens log-probabilities, computed by hand from the model's modules."""
    norm = model.get_submodule(FINAL_NORM.get(family, "model.norm"))
    config = model.config
    with torch.no_grad():
        output = model(torch.tensor([ids]), output_hidden_states=True)
        states = torch.stack([state[0] for state in output.hidden_states], dim=1)  # [positions, rows, hidden]
        normed = torch.cat([norm(states[:, :-1]), states[:, -1:]], dim=1)
        logits = model.lm_head(normed).double()
        if family == "cohere":
            logits = logits * config.logit_scale
        if family == "granitemoe":
            logits = logits / config.logits_scaling
        if family == "falcon_h1":
            logits = logits * config.lm_head_multiplier
        if getattr(config, "final_logit_softcapping", None):
            logits = torch.tanh(logits / config.final_logit_softcapping) * config.final_logit_softcapping
        # The last row must be the model's own output, or the hand computation above is wrong.
        assert torch.allclose(logits[:, -1], output.logits[0].double(), atol=1e-4)
        return torch.log_softmax(logits, dim=-1).numpy()


def check_family(directory: Path, family: str) -> float:
    engine = HFEngine.load(str(directory), device="cpu", capture=LENS)
    traces = [engine.prefill(PROMPT)] + [engine.step(token) for token in STEPS]
    model = engine.model
    reference = reference_log_probs(model, family, PROMPT + STEPS)
    worst = 0.0
    for trace in traces:
        assert trace.lens is not None
        expected = reference[trace.position]
        lens = trace.lens.resolved(int(np.argmax(trace.logits)))
        assert lens.num_rows == engine.info.num_layers + 1
        rows = np.arange(lens.num_rows)[:, None]
        worst = max(worst, float(np.abs(lens.top_probs - np.exp(expected[rows, lens.top_ids])).max()))
        # every kept candidate is at least as likely as anything not kept, in the reference
        kth = np.exp(expected[rows, lens.top_ids[:, -1:]])
        assert (np.sort(np.exp(expected), axis=1)[:, -lens.top_ids.shape[1] - 1] <= kth[:, 0] + 1e-5).all()
        entropy = -(np.exp(expected) * expected).sum(axis=1)
        worst = max(worst, float(np.abs(lens.entropy - entropy).max()))
        token = int(np.argmax(trace.logits))
        assert lens.chosen_rank is not None and lens.chosen_prob is not None
        ranks = (expected > expected[:, token : token + 1] + 1e-6).sum(axis=1) + 1
        assert lens.chosen_rank[-1] == 1
        assert np.abs(lens.chosen_rank - ranks).max() <= 1  # ties at float precision may swap neighbours
        worst = max(worst, float(np.abs(lens.chosen_prob - np.exp(expected[:, token])).max()))
    return worst


@pytest.mark.parametrize("family", FAMILIES)
def test_lens_equals_the_models_own_modules(family_dirs: dict[str, Path], family: str) -> None:
    assert check_family(family_dirs[family], family) < 1e-4


def test_output_scalings_are_applied(family_dirs: dict[str, Path], tmp_path: Path) -> None:
    """Non-default Granite logits_scaling and Falcon-H1 lm_head_multiplier: the lens still equals the model."""
    from transformers import AutoModelForCausalLM

    for family, change in (("granitemoe", {"logits_scaling": 4.0}), ("falcon_h1", {"lm_head_multiplier": 0.5})):
        model = AutoModelForCausalLM.from_pretrained(family_dirs[family])
        for key, value in change.items():
            setattr(model.config, key, value)
        if family == "falcon_h1":
            model.model.lm_head_multiplier = change["lm_head_multiplier"]
        directory = tmp_path / family
        model.save_pretrained(directory)
        for item in family_dirs[family].iterdir():
            if item.name.startswith(("tokenizer", "special_tokens")):
                (directory / item.name).write_bytes(item.read_bytes())
        assert check_family(directory, family) < 1e-4


def test_a_head_the_lens_cannot_reproduce_is_refused(family_dirs: dict[str, Path]) -> None:
    engine = HFEngine.load(str(family_dirs["llama"]), device="cpu", capture=LENS)
    engine._lens.scale = 2.0  # a head the lens gets wrong: the first capture must notice and refuse
    trace = engine.prefill(PROMPT)
    assert trace.lens is None and trace.logits.shape[0] > 0
    assert not engine.capabilities.logit_lens
    assert "did not reproduce" in engine.capabilities.reason["logit_lens"]
    assert engine.step(STEPS[0]).lens is None


def test_lens_off_by_default_and_switchable(family_dirs: dict[str, Path]) -> None:
    engine = HFEngine.load(str(family_dirs["llama"]), device="cpu")
    assert engine.prefill(PROMPT).lens is None
    engine.set_capture(dataclasses.replace(engine.capture, logit_lens=True, hidden_states=False))
    trace = engine.step(STEPS[0])
    assert trace.lens is not None and trace.hidden_norms is None


def test_a_force_after_a_short_rewind_ranks_any_token(family_dirs: dict[str, Path]) -> None:
    """Within the lens budget, rewound-to steps keep their full distributions: any forced token gets its ranks."""
    engine = HFEngine.load(str(family_dirs["llama"]), device="cpu", capture=LENS)
    generation = Generation(engine, SamplerConfig(temperature=0.0))
    generation.start(PROMPT)
    for _ in range(3):
        generation.advance()
    assert all(step.trace.lens is not None and step.trace.lens.log_probs is not None for step in generation.steps)
    generation.rewind(2)
    full = generation.steps[-1].trace.lens.log_probs  # type: ignore[union-attr]
    other = int(np.argsort(full[-1])[-7])  # never chosen: only the full distributions can rank it
    forced = generation.force(other).trace.lens
    assert forced is not None and forced.chosen_rank is not None and forced.chosen_rank[-1] == 7


def test_only_the_newest_steps_keep_full_distributions(family_dirs: dict[str, Path]) -> None:
    """Force and re-sample re-rank the newest step; beyond the lens budget older steps drop their full arrays."""
    engine = HFEngine.load(str(family_dirs["llama"]), device="cpu", capture=LENS)
    generation = Generation(engine, SamplerConfig(temperature=0.0), lens_budget=1)  # room for the newest only
    generation.start(PROMPT)
    generation.advance()
    generation.advance()
    old, newest = generation.steps[0].trace.lens, generation.steps[-1].trace.lens
    assert old is not None and old.log_probs is None and old.chosen_rank is not None
    assert newest is not None and newest.log_probs is not None
    full = newest.log_probs
    other = int(np.argsort(full[-1])[-5])  # the output layer's 5th candidate
    forced = generation.force(other).trace.lens
    assert forced is not None and forced.chosen_rank is not None
    assert forced.chosen_rank[-1] == 5
    np.testing.assert_allclose(forced.chosen_prob, np.exp(full[:, other]), rtol=1e-6)
    generation.rewind(1)
    earlier = generation.steps[-1]
    ranked = earlier.trace.lens
    assert ranked is not None and ranked.chosen_rank is not None
    candidates = [int(t) for t in np.argsort(earlier.trace.logits)[::-1][:5] if int(t) != earlier.token_id]
    generation.force(candidates[0])
    stale = generation.steps[-1].trace.lens
    assert stale is not None and stale.chosen_rank is None  # never ranked, full distributions gone: no guess
    generation.force(earlier.token_id)  # ranked before: its ranks come back
    back = generation.steps[-1].trace.lens
    assert back is not None and back.chosen_rank is not None
    np.testing.assert_array_equal(back.chosen_rank, ranked.chosen_rank)


def test_bucketed_kl_is_a_lower_bound_and_matches_a_hand_computation() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        first = torch.log_softmax(torch.tensor(rng.normal(size=(3, 200)) * 3), dim=-1).numpy()
        second = torch.log_softmax(torch.tensor(rng.normal(size=(3, 200)) * 3), dim=-1).numpy()
        a, b = from_log_probs(first), from_log_probs(second)
        true_kl = (np.exp(first) * (first - second)).sum(axis=1)
        assert (bucketed_kl(a, b) <= true_kl + 1e-6).all()
    # by hand: p = (.5, .3, rest .2), q = (.25, .25, rest .5) over the two shared tokens 1 and 2
    p = np.log(np.array([[0.5, 0.3, 0.2 / 98] + [0.2 / 98] * 97]))
    q = np.log(np.array([[0.25, 0.25, 0.5 / 98] + [0.5 / 98] * 97]))
    lens_p, lens_q = from_log_probs(p, k=2), from_log_probs(q, k=2)
    expected = 0.5 * np.log(0.5 / 0.25) + 0.3 * np.log(0.3 / 0.25) + 0.2 * np.log(0.2 / 0.5)
    assert bucketed_kl(lens_p, lens_q)[0] == pytest.approx(expected, rel=1e-5)


def test_smollm2_forms_paris_in_its_upper_layers(smollm2_engine: HFEngine) -> None:
    """Trained weights: the lens of the real model equals model.model.norm + lm_head, and ' Paris' forms late."""
    engine = smollm2_engine
    saved = engine.capture
    engine.set_capture(dataclasses.replace(saved, logit_lens=True, attention=False))
    try:
        generation = Generation(engine, SamplerConfig(temperature=0.0))
        ids = engine.encode("The capital of France is")
        lens = generation.start(ids).trace.lens
    finally:
        engine.set_capture(saved)
    assert lens is not None and lens.chosen_rank is not None and lens.chosen_prob is not None
    model = engine.model
    with torch.no_grad():
        states = model(torch.tensor([ids]), output_hidden_states=True).hidden_states
        last = torch.stack([state[0, -1] for state in states])
        normed = torch.cat([model.model.norm(last[:-1]), last[-1:]])
        expected = torch.log_softmax(model.lm_head(normed).double(), dim=-1).numpy()
    paris = engine.tokenizer.encode(" Paris")[0]
    assert generation.steps[0].token_id == paris
    np.testing.assert_allclose(lens.chosen_prob, np.exp(expected[:, paris]), atol=1e-5)
    np.testing.assert_array_equal(lens.top_ids[:, 0], expected.argmax(axis=1))
    assert lens.top_probs[-1, 0] == pytest.approx(0.77, abs=0.01)
    first = lens.first_top1_layer()
    assert first is not None and first >= engine.info.num_layers - 3  # the answer appears only at the top
    assert lens.chosen_rank[engine.info.num_layers // 2] > 100  # mid-stack, ' Paris' is far from the top
