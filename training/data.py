"""Token streams per domain and a seeded batch sampler mixing both domains with synthetic repeats.

Each training row starts with BOS (as the shipped tokenizer's encodings do) and comes from one
domain only, so the router sees whole-domain contexts. Synthetic rows repeat a random token span
with a period that varies from row to row, the signal an induction head needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from corpus import Document
from tokenizers import Tokenizer

IGNORE_INDEX = -100  # labels with this value are left out of the loss (transformers' convention)


def encode_documents(tok: Tokenizer, docs: list[Document], eos_id: int) -> np.ndarray:
    """One flat uint16 stream: each document's ids (no BOS) followed by EOS."""
    encodings = tok.encode_batch([d.text for d in docs], add_special_tokens=False)
    parts = [np.asarray(e.ids + [eos_id], dtype=np.uint16) for e in encodings]
    return np.concatenate(parts)


def synthetic_repeat(rng: np.random.Generator, length: int, period: int, low: int, high: int) -> np.ndarray:
    """A random span of `period` ids from [low, high) repeated to `length` ids."""
    span = rng.integers(low, high, size=period)
    return np.resize(span, length)


@dataclass
class BatchPlan:
    """How many rows of each kind every batch holds, and the range of synthetic periods."""

    rows: dict[str, int]  # domain name -> rows per batch; "synthetic" for repeated random spans
    seq_len: int = 256
    min_period: int = 8
    max_period: int = 96

    @property
    def batch_size(self) -> int:
        return sum(self.rows.values())


class BatchSampler:
    """Deterministic batches (seeded numpy Generator): same seed, same batches, same order."""

    def __init__(
        self,
        streams: dict[str, np.ndarray],
        plan: BatchPlan,
        bos_id: int,
        first_plain_id: int,
        vocab_size: int,
        seed: int,
    ) -> None:
        self.streams = streams
        self.plan = plan
        self.bos_id = bos_id
        self.first_plain_id = first_plain_id
        self.vocab_size = vocab_size
        self.rng = np.random.default_rng(seed)

    def _text_row(self, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BOS plus a random window of the stream; every position is trained."""
        body = self.plan.seq_len - 1
        start = int(self.rng.integers(0, len(stream) - body))
        ids = np.concatenate([[self.bos_id], stream[start : start + body]]).astype(np.int64)
        return ids, ids.copy()

    def _synthetic_row(self) -> tuple[np.ndarray, np.ndarray]:
        """BOS plus a repeated random span; only tokens of the second and later copies are trained."""
        body = self.plan.seq_len - 1
        period = int(self.rng.integers(self.plan.min_period, self.plan.max_period + 1))
        span = synthetic_repeat(self.rng, body, period, self.first_plain_id, self.vocab_size)
        ids = np.concatenate([[self.bos_id], span]).astype(np.int64)
        labels = ids.copy()
        labels[: period + 1] = IGNORE_INDEX  # BOS and the first copy are unpredictable
        return ids, labels

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """(input_ids, labels, kind of each row), each tensor of shape [batch, seq_len]."""
        rows, kinds = [], []
        for kind, count in self.plan.rows.items():
            for _ in range(count):
                rows.append(self._synthetic_row() if kind == "synthetic" else self._text_row(self.streams[kind]))
                kinds.append(kind)
        ids = torch.from_numpy(np.stack([r[0] for r in rows]))
        labels = torch.from_numpy(np.stack([r[1] for r in rows]))
        return ids, labels, kinds
