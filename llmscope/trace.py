"""Plain-data records of what a model did: tokens, per-step traces, KV cache and routing statistics.

Everything here is numpy or builtin types so that replays, the sampler and the CLI work without
torch. Shapes are written next to each array, named after the model's structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from llmscope import kvcalc
from llmscope.cache_layout import FULL, HYBRID, MLA, SLIDING, LayerCache, Pricing
from llmscope.lens import LogitLens

ATTENTION_KINDS = (FULL, SLIDING, MLA, HYBRID)
"""Layer kinds whose attention weights can be captured."""


@dataclass(frozen=True)
class TokenInfo:
    """One token as the tokenizer sees it, with everything a display needs."""

    id: int
    piece: str
    """The vocabulary's own spelling (`Ġhow`, `Ċ`, `▁the`, `<0xE7>`)."""
    text: str
    """What the token decodes to on its own (may be a replacement char for a partial UTF-8 byte)."""
    raw_bytes: bytes
    """The UTF-8 bytes this token stands for."""
    special: bool = False
    start: int | None = None
    """Character offset in the source text where the token starts (None when not from text)."""
    end: int | None = None
    """Character offset one past the token's last character."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can capture; a pane without data shows the reason given here."""

    attention: bool = True
    hidden_states: bool = True
    kv_cache: bool = True
    router: bool = False
    logit_lens: bool = True
    reason: dict[str, str] = field(default_factory=dict)
    """Why a capability is missing, keyed by capability name."""


@dataclass(frozen=True)
class CaptureOptions:
    """Which captures the engine collects per step; fewer captures means a faster step."""

    attention: bool = True
    hidden_states: bool = True
    kv_cache: bool = True
    router: bool = True
    logit_lens: bool = False
    """Every layer's residual stream through the final norm and unembedding (llmscope.lens); off by default because
    it costs one unembedding per layer per step (several forwards' worth on a small model, bench/lens_cost.py)."""
    prefill_attention_rows: int = 256
    """Cap on prompt query rows kept from the prefill attention matrix (the last rows are kept)."""

    def __post_init__(self) -> None:
        if self.prefill_attention_rows < 1:
            raise ValueError("prefill_attention_rows must be at least 1")


@dataclass(frozen=True)
class ModelInfo:
    """What the UI and session files need to know about a model, without loading it."""

    name: str
    source: str
    """Where the weights came from (a path, a hub id, or a package file)."""
    architecture: str
    model_type: str
    num_parameters: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    max_context: int
    device: str
    dtype: str
    num_experts: int = 0
    experts_per_token: int = 0
    moe_layers: tuple[int, ...] = ()
    router_aux_loss_coef: float = 0.0
    """alpha of the load-balancing loss the model was configured with (0 for dense models)."""
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    has_chat_template: bool = False
    library_versions: dict[str, str] = field(default_factory=dict)
    layer_kinds: tuple[str, ...] = ()
    """Kind of every model layer, in order (cache_layout: full, sliding, mla, ssm, linear, hybrid, none);
    empty for a record written before kinds were recorded (every layer then counts as full attention)."""
    layer_windows: tuple[int, ...] = ()
    """Sliding window W of every model layer (0: the layer sees the whole context); empty as above."""
    cache_layers: tuple[LayerCache, ...] = ()
    """What each group of identical layers caches per token or per sequence (the per-kind KV model)."""

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def layer_kind(self, layer: int) -> str:
        """Kind of model layer `layer` (full attention when kinds were not recorded)."""
        return self.layer_kinds[layer] if self.layer_kinds else FULL

    def layer_window(self, layer: int) -> int:
        """Sliding window of model layer `layer`, 0 when it attends to the whole context."""
        return self.layer_windows[layer] if self.layer_windows else 0

    @property
    def attention_layers(self) -> tuple[int, ...]:
        """Model layers that compute softmax attention (SSM and linear-attention layers do not)."""
        return tuple(layer for layer in range(self.num_layers) if self.layer_kind(layer) in ATTENTION_KINDS)

    def key_range(self, layer: int, position: int) -> tuple[int, int]:
        """First and last key position a query at `position` can attend in `layer`.

        A sliding layer of window W sees keys position−W+1 … position; any other attention layer sees 0 … position.
        """
        window = self.layer_window(layer)
        return (max(0, position - window + 1) if window else 0), position

    @property
    def gqa_group_size(self) -> int:
        """Query heads that share one KV head (1 means plain multi-head attention)."""
        return max(1, self.num_heads // max(1, self.num_kv_heads))


@dataclass(frozen=True)
class KVLayerStats:
    """Measured size of one layer's KV cache."""

    layer: int
    key_shape: tuple[int, ...]
    """[batch, kv_heads, seq, head_dim]"""
    value_shape: tuple[int, ...]
    dtype: str
    nbytes: int
    """Bytes actually held by the layer's cache tensors: keys and values (or MLA latents) plus any states."""
    kind: str = FULL
    """The layer's kind (cache_layout): full, sliding, mla, ssm, linear, hybrid."""
    window: int = 0
    """Sliding window W (0: none); such a layer holds at most W−1 tokens between steps."""
    conv_shape: tuple[int, ...] = ()
    """SSM / linear attention: the rolling convolution state, [batch, channels, kernel] (empty: none)."""
    recurrent_shape: tuple[int, ...] = ()
    """SSM / linear attention: the recurrent state (Mamba [batch, channels, state]; empty: none)."""

    @property
    def tokens_held(self) -> int:
        """Tokens whose keys the layer holds (the seq axis of key_shape; 0 for a layer without keys)."""
        return self.key_shape[2] if len(self.key_shape) == 4 else 0


@dataclass(frozen=True)
class KVStats:
    """The KV cache after a forward pass, measured and by formula."""

    layers: tuple[KVLayerStats, ...]
    tokens: int
    bytes_per_element: int
    num_layers: int
    num_kv_heads: int
    head_dim: int
    cache_layers: tuple[LayerCache, ...] = ()
    """The model's per-kind cache model (empty: every layer full attention, the classic formula)."""

    @property
    def total_bytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)

    @property
    def pricing(self) -> Pricing | None:
        """Bytes per number of keys, conv and recurrent states as transformers keeps them (recurrent states stay
        float32 in a bf16 model); None when every layer holds only keys and values, priced at `bytes_per_element`."""
        if not self.layers or not any(layer.conv_shape or layer.recurrent_shape for layer in self.layers):
            return None
        return kvcalc.state_pricing(self.layers[0].dtype)

    @property
    def formula_bytes(self) -> int:
        """The per-kind formula's bytes; without cache_layers 2 × layers × kv_heads × head_dim × tokens × B."""
        if self.cache_layers:
            return kvcalc.layout_formula_bytes(
                self.cache_layers, self.tokens, self.bytes_per_element, pricing=self.pricing
            )
        return kvcalc.formula_bytes(
            self.num_layers, self.num_kv_heads, self.head_dim, self.tokens, self.bytes_per_element
        )

    def formula_text(self) -> str:
        """The formula with this cache's numbers, spelled by kvcalc.formula_text (no batch factor: one sequence)."""
        if self.cache_layers:
            return kvcalc.layout_formula_text(
                self.cache_layers, self.tokens, self.bytes_per_element, pricing=self.pricing
            )
        return kvcalc.formula_text(
            self.num_layers, self.num_kv_heads, self.head_dim, self.tokens, self.bytes_per_element
        )


@dataclass(frozen=True)
class RouterTrace:
    """MoE routing for the positions of one forward pass, following the family's own rule."""

    layers: tuple[int, ...]
    """Indices of the decoder layers that have a router."""
    logits: np.ndarray
    """blocks.{L}.mlp.gate logits, float32 [moe_layers, positions, experts]"""
    experts: np.ndarray
    """Chosen experts, int64 [moe_layers, positions, experts_per_token], highest weight first."""
    weights: np.ndarray
    """Weights the block applied to each chosen expert, float32 [moe_layers, positions, experts_per_token]."""
    rule: str
    """The routing rule used, in words (for example 'softmax → top-2 → renormalise')."""


@dataclass(frozen=True)
class StepTrace:
    """Everything one forward pass revealed, plus (once sampled) the token chosen from it.

    Step 0 is the prefill over the prompt; step n > 0 fed the token chosen at step n-1.
    """

    index: int
    input_ids: tuple[int, ...]
    """Token ids fed to this forward (the whole prompt at prefill, one token afterwards)."""
    position: int
    """Sequence position of the last input token; the logits predict position + 1."""
    logits: np.ndarray
    """Next-token logits at the last position, float32 [vocab]"""
    attention: np.ndarray | None = None
    """blocks.{L}.attn.pattern rows for the query positions of this forward,
    float32 [layers, heads, query_rows, key_positions]: one entry per *model* layer, keys 0 … position.

    Ragged layers are stored padded, with a mask you can recompute: a sliding-window layer's row for
    query q holds weights only on keys q−W+1 … q (`ModelInfo.key_range`) and exact zeros elsewhere,
    which is what the model's own masked softmax gives, so every row sits at its true key positions.
    A layer without softmax attention (SSM, linear attention: not in `attention_layers`) is all zeros.
    Padding keeps the full-attention case shaped as before and every pane indexing by model layer."""
    attention_query_start: int = 0
    """Sequence position of the first query row in `attention` (rows may be capped at prefill)."""
    attention_layers: tuple[int, ...] = ()
    """Model layers whose rows in `attention` were captured (empty: all of them, as in older records)."""
    attention_sink: np.ndarray | None = None
    """Weight each row gave a learned attention sink instead of any key (gpt-oss), float32
    [layers, heads, query_rows]; the row's key weights then sum to 1 − sink. None: the model has no sinks."""
    hidden_norms: np.ndarray | None = None
    """L2 norm of the residual stream after embeddings and each layer, at the last position,
    float32 [layers + 1] (the last entry is after the final norm, as transformers returns it)."""
    kv: KVStats | None = None
    router: RouterTrace | None = None
    lens: LogitLens | None = None
    """What each layer's residual stream predicts at the last position (None: the lens capture was off)."""
    forward_ms: float = 0.0
    chosen: TokenInfo | None = None
    """The token picked from these logits (None until sampled)."""
    attention_dropped: bool = False
    """True when `attention` was captured but later dropped to bound a long run's memory (AttentionBudget)."""

    @property
    def is_prefill(self) -> bool:
        return self.index == 0

    def with_chosen(self, token: TokenInfo, *, keep_full_lens: bool = True) -> StepTrace:
        """This trace with `token` as its pick; the lens then ranks that token at every layer.

        The lens keeps its full distributions while `keep_full_lens` (the newest step, which a force or a
        re-sample may still re-pick with any token); afterwards it can rank only tokens it ranked before.
        """
        lens = None if self.lens is None else self.lens.resolved(token.id)
        if lens is not None and not keep_full_lens:
            lens = lens.without_full()
        return replace(self, chosen=token, lens=lens)

    def without_full_lens(self) -> StepTrace:
        """This trace with the lens's full distributions dropped (the ranks already made stay)."""
        if self.lens is None or self.lens.log_probs is None:
            return self
        return replace(self, lens=self.lens.without_full())

    @property
    def sequence_length(self) -> int:
        """Tokens in context after this forward."""
        return self.position + 1
