"""The plain data each pane draws, built once per action by the live controller (the pane contract's data half).

A pane's content is either one of these records or `Unavailable(reason)`: the one place a pane learns why it
has nothing to show. Widgets import these types (never torch); the worker thread builds them; the App assigns
them. Numbers are numpy arrays and tuples, so a record can cross threads and be kept for replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from llmscope.kvcalc import KVEstimate
from llmscope.lens import LogitLens
from llmscope.sampler import SampleResult
from llmscope.trace import KVStats, TokenInfo


@dataclass(frozen=True)
class Unavailable:
    """Why a pane has nothing to show, as one calm sentence."""

    reason: str


@dataclass(frozen=True)
class SamplerContent:
    """One sampling step: every stage's distribution, and display text for the candidates shown."""

    result: SampleResult
    token_texts: Mapping[int, str]
    """Display text of at least the top candidates and the chosen token."""
    forced: int | None = None
    """The token the user forced instead of the sampler's pick (the table marks it as chosen); None if sampled."""


@dataclass(frozen=True)
class AttentionContent:
    """Attention of one step: rows for the query positions it fed, over every key in the cache."""

    attention: np.ndarray
    """float32 [layers, heads, rows, keys] (blocks.{L}.attn.pattern, the newest rows)."""
    query_start: int
    """Context position of the first row."""
    token_labels: tuple[str, ...]
    """Visible label of every key position."""
    num_kv_heads: int
    """KV heads (query heads are grouped over them, GQA)."""
    step_index: int | None = None
    layer_notes: tuple[str, ...] = ()
    """Per layer, what is special about its attention ("" for plain full attention): a sliding window, or no
    softmax weights at all (SSM, linear attention: the grid writes "no attention" there)."""
    weightless_layers: tuple[int, ...] = ()
    """Layers without softmax attention (SSM, linear attention): their rows are zeros, not measurements."""
    storage_note: str = ""
    """How a replayed file stored these weights when they are not exact to float16 ("" when they are)."""
    attention_sink: np.ndarray | None = None
    """Weight each row gave a learned sink instead of any key (gpt-oss), float32 [layers, heads, rows]; the row's
    key weights then sum to 1 − sink. None: the model has no learned sink."""


@dataclass(frozen=True)
class KVContent:
    """The KV cache after every step so far, and what other choices would cost at this and the full context."""

    history: tuple[KVStats, ...]
    """One KVStats per step, step 0 (the prefill) first."""
    what_if: tuple[tuple[str, KVEstimate], ...]
    what_if_at_max_context: tuple[tuple[str, KVEstimate], ...] = ()


@dataclass(frozen=True)
class MoEContent:
    """Router decisions for every position in the context, per MoE layer."""

    logits: np.ndarray
    """float32 [moe_layers, positions, experts]: the router's raw scores."""
    experts: np.ndarray
    """int64 [moe_layers, positions, experts_per_token]: the experts actually used."""
    weights: np.ndarray
    """float32 [moe_layers, positions, experts_per_token]: their mixing weights."""
    token_labels: tuple[str, ...]
    layer_indices: tuple[int, ...]
    """Model layer number of each MoE layer."""
    num_experts: int
    experts_per_token: int
    alpha: float
    """The load-balancing loss coefficient the model was trained with."""
    rule: str
    """How the family turns router scores into choices (softmax-top-k-renormalise, …)."""


@dataclass(frozen=True)
class DenseModel:
    """The model has no router: the MoE pane explains that and offers a mixture-of-experts model."""

    model_name: str


@dataclass(frozen=True)
class TokensContent:
    """A text as the tokenizer splits it."""

    tokens: tuple[TokenInfo, ...]
    text: str
    vocab_size: int | None = None
    family: str | None = None
    """The tokenizer family (byte_level, sentencepiece, wordpiece) when known: it decides how bytes are shown."""
    generated: int = 0
    """How many of the last tokens the model generated (the others are the prompt it was given)."""
    edited: bool = False
    """The prompt field holds edits that the run shown has not used yet (Enter runs them)."""


@dataclass(frozen=True)
class GenerationContent:
    """The prompt and every generated token with the probability it had when chosen."""

    prompt_tokens: tuple[TokenInfo, ...]
    generated: tuple[tuple[TokenInfo, float], ...]
    stop_reason: str | None = None
    selected: int | None = None
    """The generated step to highlight (compare marks its first divergence); None highlights nothing."""


@dataclass(frozen=True)
class LensContent:
    """The logit lens of every step that captured it: per step, each layer's top candidates and the chosen token."""

    lenses: tuple[LogitLens, ...]
    """One resolved lens per captured step, oldest first; row 0 is the embedding output, the last row the output."""
    step_indices: tuple[int, ...]
    """Generated-step index of each lens (0: the prefill's prediction)."""
    chosen_ids: tuple[int, ...]
    """The token chosen at each of those steps."""
    token_texts: Mapping[int, str]
    """Visible text of every token id in the lenses' top-k lists and of the chosen tokens."""
    selected: int
    """Position in `lenses` of the step the other panes show (the newest unless the user looks back)."""
    model_name: str = ""
    capturing: bool = True
    """Whether the engine captures the lens for the next steps (False: turned off after these were captured)."""

    @property
    def layer_labels(self) -> tuple[str, ...]:
        """Row names: 'emb' for the embedding output, then the decoder layer numbers 1 … L."""
        rows = self.lenses[0].num_rows if self.lenses else 0
        return ("emb", *(str(layer) for layer in range(1, rows)))


@dataclass(frozen=True)
class PaneContents:
    """What every step-following pane draws after one action (the tokens pane too: the run, prompt and generated)."""

    generation: GenerationContent | Unavailable
    logits: SamplerContent | Unavailable
    attention: AttentionContent | Unavailable
    kv: KVContent | Unavailable
    moe: MoEContent | DenseModel | Unavailable
    tokens: TokensContent | None = None
    """The run's tokens, prompt then generated (None for a view built by hand)."""
    lens: LensContent | Unavailable = Unavailable("No step yet: the logit lens appears after the first forward pass.")
