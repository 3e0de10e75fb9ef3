"""Measurements written into the model cards: loss per domain, expert load, induction score, samples.

All functions take a model in eval mode and plain token data; none of them trains.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def make_windows(ids: np.ndarray, seq_len: int, bos_id: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows [n, seq_len]: BOS then seq_len-1 consecutive ids; the tail is dropped."""
    body = seq_len - 1
    n = len(ids) // body if max_windows is None else min(len(ids) // body, max_windows)
    chunks = np.asarray(ids[: n * body], dtype=np.int64).reshape(n, body)
    bos = np.full((n, 1), bos_id, dtype=np.int64)
    return torch.from_numpy(np.concatenate([bos, chunks], axis=1))


@torch.no_grad()
def mean_nll(model: PreTrainedModel, windows: torch.Tensor, batch_size: int = 16) -> float:
    """Mean next-token negative log-likelihood (nats) over every non-BOS position of the windows."""
    total, count = 0.0, 0
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        logits = model(input_ids=batch).logits.float()
        total += F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
        ).item()
        count += batch[:, 1:].numel()
    return total / count


@torch.no_grad()
def expert_load(model: PreTrainedModel, windows: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Per-layer fraction of top-k routing slots per expert, [layers, experts], rows sum to 1.

    Uses Mixtral's own rule on the router logits: softmax over experts, then top-k.
    """
    cfg = model.config
    counts = np.zeros((cfg.num_hidden_layers, cfg.num_local_experts))
    for start in range(0, len(windows), batch_size):
        out = model(input_ids=windows[start : start + batch_size], output_router_logits=True)
        for layer, logits in enumerate(out.router_logits):
            top = torch.topk(torch.softmax(logits.float(), dim=-1), cfg.num_experts_per_tok, dim=-1).indices
            counts[layer] += np.bincount(top.reshape(-1).numpy(), minlength=cfg.num_local_experts)
    return counts / counts.sum(axis=1, keepdims=True)


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Total-variation distance between load distributions along the last axis."""
    return 0.5 * np.abs(p - q).sum(axis=-1)


def top2_share(load: np.ndarray) -> np.ndarray:
    """Share of routing slots taken by the two busiest experts, per layer."""
    return np.sort(load, axis=-1)[..., -2:].sum(axis=-1)


@torch.no_grad()
def induction_scores(
    model: PreTrainedModel, bos_id: int, low_id: int, periods: tuple[int, ...], per_period: int, seed: int
) -> dict[str, object]:
    """Induction score per layer and head on random spans repeated twice, plus loss per copy.

    Score = mean attention from each second-copy token to the token right after its first
    occurrence, averaged over sequences and periods. Needs eager attention.
    """
    gen = torch.Generator().manual_seed(seed)
    cfg = model.config
    scores = torch.zeros(cfg.num_hidden_layers, cfg.num_attention_heads)
    first_losses, second_losses = [], []
    for period in periods:
        span = torch.randint(low_id, cfg.vocab_size, (per_period, period), generator=gen)
        ids = torch.cat([torch.full((per_period, 1), bos_id), span, span], dim=1)
        out = model(input_ids=ids, output_attentions=True)
        queries = torch.arange(1 + period, 1 + 2 * period)  # second-copy positions
        keys = queries - period + 1  # token after the earlier occurrence
        for layer, attn in enumerate(out.attentions):  # attn: [batch, heads, q, k]
            scores[layer] += attn[:, :, queries, keys].mean(dim=(0, 2)) / len(periods)
        nll = F.cross_entropy(out.logits[:, :-1].transpose(1, 2).float(), ids[:, 1:], reduction="none")
        first_losses.append(nll[:, 1:period].mean().item())  # predicting copy 1 tokens 2..p
        second_losses.append(nll[:, period : 2 * period].mean().item())  # predicting copy 2
    return {
        "scores": scores.numpy(),
        "loss_first_copy": float(np.mean(first_losses)),
        "loss_second_copy": float(np.mean(second_losses)),
    }


@torch.no_grad()
def samples(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int, seed: int
) -> list[dict[str, str]]:
    """A greedy and a seeded sampled continuation (temperature 0.8, top-k 40) of each prompt."""
    out = []
    for prompt in prompts:
        enc = tokenizer(prompt, return_tensors="pt")
        greedy = model.generate(
            **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        torch.manual_seed(seed)
        sampled = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=0.8,
            top_k=40,
            top_p=1.0,
            pad_token_id=tokenizer.pad_token_id,
        )
        n = enc.input_ids.shape[1]
        out.append(
            {
                "prompt": prompt,
                "greedy": tokenizer.decode(greedy[0, n:], skip_special_tokens=True),
                "sampled": tokenizer.decode(sampled[0, n:], skip_special_tokens=True),
            }
        )
    return out


def perplexity(nll: float) -> float:
    """exp(mean NLL)."""
    return math.exp(nll)
