"""How far apart two next-token distributions are: KL both ways, Jensen–Shannon, top-N overlap, vocab checks.

Everything is computed in float64 on log-probabilities (log-softmax of the logits), never on rounded
probabilities, so no epsilon is needed: a finite logit always has a finite log-probability, and a
token with probability 0 (logit -inf, removed by a sampler stage) contributes exactly 0 to the sums
where it is the weighting side. Figures are in nats (natural log); `*_bits` divide by ln 2.
Imports only numpy and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

LN2 = math.log(2.0)
"""The upper bound of Jensen–Shannon divergence in nats (1 bit)."""
DEFAULT_TOP_N = 10
FINGERPRINT_SAMPLE = 96
"""Token ids whose vocabulary spelling is compared to decide whether two tokenizers are the same."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Float64 log-probabilities; -inf logits stay -inf (probability exactly 0). Rejects NaN, +inf, all -inf."""
    values = np.asarray(logits, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array, got shape {values.shape}")
    if np.isnan(values).any() or np.isposinf(values).any() or not np.isfinite(values).any():
        raise ValueError("logits need no NaN or +inf and at least one finite value")
    finite = np.isfinite(values)
    top = values[finite].max()
    log_total = top + math.log(float(np.exp(values[finite] - top).sum()))
    return np.where(finite, values - log_total, -np.inf)


def _check_pair(log_p: np.ndarray, log_q: np.ndarray) -> None:
    if log_p.shape != log_q.shape:
        raise ValueError(f"distributions over different vocabularies: {log_p.shape[0]} vs {log_q.shape[0]} ids")


def kl_from_log(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """KL(P‖Q) = Σ p·(log p − log q) in nats; +inf when P gives mass to a token Q rules out."""
    _check_pair(log_p, log_q)
    support = np.isfinite(log_p)
    if (support & ~np.isfinite(log_q)).any():
        return math.inf
    p = np.exp(log_p[support])
    return max(0.0, float(np.sum(p * (log_p[support] - log_q[support]))))


def js_from_log(log_p: np.ndarray, log_q: np.ndarray) -> float:
    """Jensen–Shannon ½KL(P‖M) + ½KL(Q‖M), M = (P+Q)/2, in nats; symmetric and within [0, ln 2]."""
    _check_pair(log_p, log_q)
    log_m = np.logaddexp(log_p, log_q) - LN2  # -inf only where both are 0
    half_p = kl_from_log(log_p, log_m)
    half_q = kl_from_log(log_q, log_m)
    return min(LN2, max(0.0, 0.5 * (half_p + half_q)))


def top_ids(logits: np.ndarray, count: int) -> list[int]:
    """The `count` highest-logit ids, lower id first among equal logits (as SampleResult.top)."""
    return [int(i) for i in np.argsort(-np.asarray(logits, dtype=np.float64), kind="stable")[: max(count, 0)]]


def top_overlap(logits_p: np.ndarray, logits_q: np.ndarray, count: int = DEFAULT_TOP_N) -> float:
    """|topN(P) ∩ topN(Q)| / N, with N capped at the vocabulary size."""
    count = min(count, len(logits_p))
    if count < 1:
        raise ValueError("top-N overlap needs N >= 1")
    return len(set(top_ids(logits_p, count)) & set(top_ids(logits_q, count))) / count


@dataclass(frozen=True)
class Divergence:
    """Divergence figures between lane A's distribution P and lane B's Q, in nats (natural log)."""

    kl_ab: float
    """KL(P‖Q): extra nats to code A's tokens with B's distribution (+inf if B rules out a token A allows)."""
    kl_ba: float
    """KL(Q‖P), the other direction; KL is not symmetric."""
    js: float
    """Jensen–Shannon divergence, symmetric, 0 ≤ JS ≤ ln 2."""
    overlap: float
    """Share of the top-N ids the two distributions have in common."""
    top_n: int

    @property
    def kl_ab_bits(self) -> float:
        return self.kl_ab / LN2

    @property
    def kl_ba_bits(self) -> float:
        return self.kl_ba / LN2

    @property
    def js_bits(self) -> float:
        """JS in bits, within [0, 1]."""
        return self.js / LN2


def divergence(logits_p: np.ndarray, logits_q: np.ndarray, *, top_n: int = DEFAULT_TOP_N) -> Divergence:
    """All figures for two logit vectors (raw logits, or a sampler stage's logits with -inf for removed ids)."""
    log_p, log_q = log_softmax(logits_p), log_softmax(logits_q)
    return Divergence(
        kl_ab=kl_from_log(log_p, log_q),
        kl_ba=kl_from_log(log_q, log_p),
        js=js_from_log(log_p, log_q),
        overlap=top_overlap(logits_p, logits_q, top_n),
        top_n=min(top_n, len(logits_p)),
    )


# ---------------------------------------------------------------------------- vocabulary check
@dataclass(frozen=True)
class VocabCompatibility:
    """Whether two lanes' token ids mean the same tokens, and why not when they do not."""

    comparable: bool
    reason: str
    """Empty when comparable; otherwise one sentence a user can act on."""


def fingerprint_ids(vocab_size: int, count: int = FINGERPRINT_SAMPLE) -> list[int]:
    """A fixed spread of ids: the first 32 (specials and bytes live there) and evenly spaced ones after."""
    head = list(range(min(32, vocab_size)))
    spread = np.linspace(0, vocab_size - 1, num=max(0, count - len(head)), dtype=np.int64).tolist()
    return sorted(set(head) | {int(i) for i in spread})


def vocab_fingerprint(vocab_size: int, piece_of: Callable[[int], str]) -> tuple[int, tuple[str, ...]]:
    """(vocab size, spellings of the fingerprint ids): equal fingerprints mean ids can be compared."""
    return vocab_size, tuple(_safe_piece(piece_of, token_id) for token_id in fingerprint_ids(vocab_size))


def _safe_piece(piece_of: Callable[[int], str], token_id: int) -> str:
    """An id's spelling, or a marker for ids the tokenizer does not know (padding rows of the embedding)."""
    try:
        return str(piece_of(token_id))
    except Exception:  # noqa: BLE001 - an unknown id is part of the fingerprint, not an error
        return f"<no token {token_id}>"


def check_vocabularies(
    size_a: int, piece_a: Callable[[int], str], size_b: int, piece_b: Callable[[int], str]
) -> VocabCompatibility:
    """Same vocabulary size and the same spelling for every fingerprint id, or the first difference found."""
    not_comparable = "so KL, JS and top-N overlap between the lanes are not comparable"
    if size_a != size_b:
        return VocabCompatibility(
            False,
            f"the lanes' vocabularies differ in size (A {size_a:,} ids, B {size_b:,} ids): "
            f"the same id names different tokens, {not_comparable}",
        )
    for token_id in fingerprint_ids(size_a):
        spelled_a, spelled_b = _safe_piece(piece_a, token_id), _safe_piece(piece_b, token_id)
        if spelled_a != spelled_b:
            return VocabCompatibility(
                False,
                f"the lanes use different tokenizers (id {token_id} is {spelled_a!r} in A "
                f"but {spelled_b!r} in B), {not_comparable}",
            )
    return VocabCompatibility(True, "")


def format_nats(value: float | None, digits: int = 3) -> str:
    """A divergence for a table: '∞' for infinity, '—' when there is no figure."""
    if value is None:
        return "—"
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


def jsonable_nats(value: float | None) -> float | str | None:
    """Infinity as the string 'inf' (JSON has no infinity); other values unchanged."""
    return "inf" if value is not None and math.isinf(value) else value


__all__: Sequence[str] = [
    "LN2",
    "Divergence",
    "VocabCompatibility",
    "check_vocabularies",
    "divergence",
    "fingerprint_ids",
    "format_nats",
    "js_from_log",
    "jsonable_nats",
    "kl_from_log",
    "log_softmax",
    "top_ids",
    "top_overlap",
    "vocab_fingerprint",
]
