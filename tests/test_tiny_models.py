"""The shipped trained models `tiny-dense` and `tiny-moe`: intact files, offline loading, a router
that learned domain-dependent routing, and validation perplexity matching their model cards.

Training is not part of the tests (see training/README.md); these check what ships.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

import llmscope

MODELS_DIR = Path(llmscope.__file__).resolve().parent / "models"
NAMES = ("tiny-dense", "tiny-moe")
DOMAINS = ("shakespeare", "python")
SEQ_LEN = 256  # training context; the card's windows are BOS + 255 tokens
CARD = "MODEL_CARD.md"


def card_block(name: str, lang: str) -> str:
    """The body of the first ```<lang> fenced block of a model card."""
    text = (MODELS_DIR / name / CARD).read_text(encoding="utf-8")
    match = re.search(rf"^```{lang}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"{name}/{CARD} has no ```{lang} block"
    return match.group(1)


def card_metrics(name: str) -> dict:
    return json.loads(card_block(name, "json"))


@pytest.fixture(scope="module")
def fp32_models() -> dict:
    """Each shipped model loaded once in float32 (how the card measured it), with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = {}
    for name in NAMES:
        path = MODELS_DIR / name
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True).eval()
        loaded[name] = (model, AutoTokenizer.from_pretrained(path, local_files_only=True))
    return loaded


def sample_windows(tokenizer, name: str, domain: str):
    """Non-overlapping windows of the shipped validation sample: BOS + 255 tokens each, tail dropped."""
    import torch

    text = (MODELS_DIR / name / f"validation_{domain}.txt").read_text(encoding="utf-8")
    ids = tokenizer(text, add_special_tokens=False).input_ids
    body = SEQ_LEN - 1
    n = len(ids) // body
    chunks = torch.tensor(ids[: n * body]).reshape(n, body)
    return torch.cat([torch.full((n, 1), tokenizer.bos_token_id), chunks], dim=1)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_files_match_card_hashes(name: str) -> None:
    listed = {}
    for line in card_block(name, "sha256").splitlines():
        digest, filename = line.split("  ", 1)
        listed[filename] = digest
    shipped = {p.name for p in (MODELS_DIR / name).iterdir() if p.is_file() and p.name != CARD}
    assert shipped == set(listed), "card and directory list different files"
    for filename, digest in listed.items():
        assert hashlib.sha256((MODELS_DIR / name / filename).read_bytes()).hexdigest() == digest, filename
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= shipped


@pytest.mark.parametrize("name", NAMES)
def test_loads_offline_and_generates_deterministically(name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = MODELS_DIR / name
    outputs = []
    for _ in range(2):
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        enc = tokenizer("KING.\nWhat say you", return_tensors="pt")
        assert enc.input_ids[0, 0].item() == tokenizer.bos_token_id
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        outputs.append(out[0].tolist())
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == enc.input_ids.shape[1] + 8
    assert model.dtype == torch.float16  # shipped as fp16 safetensors
    assert tokenizer.decode(outputs[0][enc.input_ids.shape[1] :]).strip()


def expert_load(model, windows) -> np.ndarray:
    """Per-layer fraction of top-k routing slots per expert, by Mixtral's rule (softmax, top-k)."""
    import torch

    cfg = model.config
    with torch.no_grad():
        router_logits = model(input_ids=windows, output_router_logits=True).router_logits
    load = np.zeros((cfg.num_hidden_layers, cfg.num_local_experts))
    for layer, logits in enumerate(router_logits):  # logits: [tokens, experts]
        top = torch.topk(torch.softmax(logits.float(), dim=-1), cfg.num_experts_per_tok, dim=-1).indices
        load[layer] = np.bincount(top.reshape(-1).numpy(), minlength=cfg.num_local_experts)
    return load / load.sum(axis=1, keepdims=True)


def test_moe_router_learned_domain_dependent_balanced_routing(fp32_models: dict) -> None:
    model, tokenizer = fp32_models["tiny-moe"]
    load = {d: expert_load(model, sample_windows(tokenizer, "tiny-moe", d)) for d in DOMAINS}
    tv = 0.5 * np.abs(load["shakespeare"] - load["python"]).sum(axis=1)
    print(f"\ntiny-moe per-layer TV distance between domains: {np.round(tv, 3).tolist()}")
    assert tv.max() >= 0.2, f"routing barely depends on the domain: TV per layer {tv}"
    for domain, per_layer in load.items():
        top2 = np.sort(per_layer, axis=1)[:, -2:].sum(axis=1)
        print(f"tiny-moe top-2 share on {domain}: {np.round(top2, 3).tolist()}")
        assert top2.max() <= 0.8, f"{domain}: a layer routes >80% of slots to two experts: {top2}"
    np.testing.assert_allclose(tv, card_metrics("tiny-moe")["tv_sample"], atol=0.02)


@pytest.mark.parametrize("name", NAMES)
def test_validation_perplexity_matches_card(name: str, fp32_models: dict) -> None:
    import torch
    import torch.nn.functional as F

    model, tokenizer = fp32_models[name]
    expected = card_metrics(name)["validation_sample"]
    for domain in DOMAINS:
        windows = sample_windows(tokenizer, name, domain)
        with torch.no_grad():
            logits = model(input_ids=windows).logits.float()
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1)).item()
        ppl = float(np.exp(nll))
        assert ppl == pytest.approx(expected[domain]["ppl"], rel=0.02), (name, domain, ppl)


@pytest.mark.parametrize("name", NAMES)
def test_report_load_time(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    import torch  # noqa: F401  (imports are not part of the load time)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(MODELS_DIR / name, local_files_only=True)
    AutoTokenizer.from_pretrained(MODELS_DIR / name, local_files_only=True)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\n{name}: model + tokenizer load {seconds * 1000:.0f} ms after imports "
            f"({sum(p.numel() for p in model.parameters()):,} parameters)"
        )
