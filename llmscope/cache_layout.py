"""What each kind of layer caches per sequence, read from a config: the per-kind KV model.

Caches differ by layer kind (transformers 5.2x): full attention keeps keys and values of every token;
a sliding-window layer keeps the last W−1 between steps (the new token makes W); MLA (DeepSeek-V3)
keeps one latent of kv_lora_rank + qk_rope_head_dim per token; SSM (Mamba) and linear-attention
(Gated DeltaNet) layers keep constant conv and recurrent states and no keys; a hybrid layer
(Falcon-H1) keeps both. The engine's measured bytes, the KV pane's formula and `kv-calc` all use
this one model. Pure Python, so replays and `kv-calc` run without torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

FULL = "full"
SLIDING = "sliding"
MLA = "mla"
SSM = "ssm"
LINEAR = "linear"
HYBRID = "hybrid"
NONE = "none"
KINDS = (FULL, SLIDING, MLA, SSM, LINEAR, HYBRID, NONE)

KIND_WORDS = {
    FULL: "full attention",
    SLIDING: "sliding-window attention",
    MLA: "multi-head latent attention (MLA)",
    SSM: "SSM (Mamba), no attention",
    LINEAR: "linear attention (Gated DeltaNet), no softmax attention",
    HYBRID: "attention and SSM side by side",
    NONE: "no cache",
}

RECURRENT_STATE_BYTES = 4
"""SSM and linear-attention recurrent states are float32 whatever the model's dtype: transformers 5.23 keeps them
so in Mamba, Jamba, Falcon-H1 and Qwen3-Next (measured in bf16 and fp16 models); conv states follow the model."""

SSM_FAMILIES = {"mamba", "falcon_mamba", "mamba2", "jamba", "falcon_h1", "bamba", "zamba", "zamba2", "nemotron_h"}
"""model_type values whose 'linear_attention' layers are Mamba-style state-space layers."""


@dataclass(frozen=True)
class LayerCache:
    """What a group of `layers` identical layers caches for one sequence, from the config's numbers."""

    kind: str
    layers: int = 1
    kv_heads: int = 0
    head_dim: int = 0
    window: int = 0
    """Sliding window W (0: none); transformers keeps W−1 tokens between steps."""
    latent_dim: int = 0
    """MLA: kv_lora_rank + qk_rope_head_dim elements per token."""
    conv_elements: int = 0
    """SSM / linear attention: elements of the rolling convolution state (constant)."""
    recurrent_elements: int = 0
    """SSM / linear attention: elements of the recurrent state (constant)."""
    detail: str = ""
    """How the per-token latent or the states are made, with the config's numbers."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; expected one of {', '.join(KINDS)}")

    @property
    def has_attention(self) -> bool:
        return self.kind in (FULL, SLIDING, MLA, HYBRID)

    @property
    def has_keys(self) -> bool:
        """True when the cache grows with tokens (keys and values, or MLA latents)."""
        return self.kind in (FULL, SLIDING, MLA, HYBRID)

    @property
    def state_elements(self) -> int:
        return self.conv_elements + self.recurrent_elements

    def tokens_held(self, tokens: int) -> int:
        """Tokens whose keys this layer holds after `tokens` tokens went through it."""
        if not self.has_keys:
            return 0
        return min(tokens, self.window - 1) if self.window else tokens

    def per_token_elements(self) -> int:
        """Elements one held token costs in one layer."""
        if self.kind == MLA:
            return self.latent_dim
        return 2 * self.kv_heads * self.head_dim if self.has_keys else 0

    def elements(self, tokens: int) -> int:
        """Elements all `layers` hold after `tokens` tokens."""
        return self.key_elements(tokens) + self.layers * self.state_elements

    def key_elements(self, tokens: int) -> int:
        """Elements of keys and values (or MLA latents) all `layers` hold after `tokens` tokens: the part that grows."""
        return self.layers * self.per_token_elements() * self.tokens_held(tokens)

    def key_term(self, tokens: int) -> str:
        """The growing part of the formula (keys and values, or MLA latents) with its numbers; '' without keys."""
        count = f"{self.layers} {'layer' if self.layers == 1 else 'layers'}"
        held = self.tokens_held(tokens)
        if self.kind == MLA:
            return f"{count} MLA × {self.latent_dim} latent ({self.detail}) × {held} tokens"
        if not self.has_keys:
            return ""
        label = f"{self.layers} sliding {'layer' if self.layers == 1 else 'layers'} (window {self.window})"
        return f"2 × {label if self.window else count} × {self.kv_heads} kv_heads × {self.head_dim} head_dim × {held} tokens"

    def state_term(self, part: str) -> str:
        """One constant state ('conv' or 'recurrent') of all `layers` with its numbers; '' when there is none."""
        elements = self.conv_elements if part == "conv" else self.recurrent_elements
        if not elements:
            return ""
        count = f"{self.layers} {'layer' if self.layers == 1 else 'layers'}"
        return f"{count} {'SSM' if self.kind in (SSM, HYBRID) else 'linear'} × {elements} {part}"

    def term(self, tokens: int) -> str:
        """This group's share of the formula, with the numbers substituted (no bytes)."""
        count = f"{self.layers} {'layer' if self.layers == 1 else 'layers'}"
        held = self.tokens_held(tokens)
        if self.kind == MLA:
            return f"{count} MLA × {self.latent_dim} latent ({self.detail}) × {held} tokens"
        attention = ""
        if self.has_keys:
            label = f"{self.layers} sliding {'layer' if self.layers == 1 else 'layers'} (window {self.window})"
            label = label if self.window else count
            attention = f"2 × {label} × {self.kv_heads} kv_heads × {self.head_dim} head_dim × {held} tokens"
        if not self.state_elements:
            return attention or f"{count} × 0"
        state = f"{count} {'SSM' if self.kind in (SSM, HYBRID) else 'linear'} × {self.state_elements} state"
        state += f" ({self.detail})" if self.detail else ""
        return f"{attention} + {state}" if attention else state

    def describe(self) -> str:
        """The kind in words, with its window."""
        words = KIND_WORDS[self.kind]
        return f"{words} (window {self.window})" if self.window else words


def formula_terms(caches: tuple[LayerCache, ...], tokens: int) -> str:
    """The formula's element count for a cache layout: one term per group, joined by +."""
    terms = [cache.term(tokens) for cache in caches if cache.elements(tokens) or cache.has_keys]
    return " + ".join(terms) if len(terms) < 2 else "(" + " + ".join(terms) + ")"


def total_elements(caches: tuple[LayerCache, ...], tokens: int) -> int:
    return sum(cache.elements(tokens) for cache in caches)


@dataclass(frozen=True)
class Pricing:
    """Bytes per number of each part of a cache: keys and values (or latents), conv states, recurrent states.

    They differ: a KV quantiser (int8/int4) touches only keys and values, and transformers keeps recurrent
    states in float32 (RECURRENT_STATE_BYTES) while keys and conv states follow the model's dtype.
    """

    keys: float
    conv: float
    recurrent: float

    @classmethod
    def uniform(cls, bytes_per_element: float) -> Pricing:
        return cls(bytes_per_element, bytes_per_element, bytes_per_element)


def layout_bytes(caches: tuple[LayerCache, ...], tokens: int, pricing: Pricing, batch: int = 1) -> int:
    """Bytes of a cache layout after `tokens` tokens for `batch` sequences, each part at its own price, rounded up
    once (states are per sequence: they scale with batch, never with tokens)."""
    keys = sum(cache.key_elements(tokens) for cache in caches)
    conv = sum(cache.layers * cache.conv_elements for cache in caches)
    recurrent = sum(cache.layers * cache.recurrent_elements for cache in caches)
    exact = Fraction(pricing.keys) * keys + Fraction(pricing.conv) * conv + Fraction(pricing.recurrent) * recurrent
    return math.ceil(exact * batch)


def priced_terms(caches: tuple[LayerCache, ...], tokens: int) -> list[tuple[str, str]]:
    """(part, term) for every non-empty part of the layout: part is 'keys', 'conv' or 'recurrent'."""
    terms = [("keys", cache.key_term(tokens)) for cache in caches]
    for part in ("conv", "recurrent"):
        terms += [(part, cache.state_term(part)) for cache in caches]
    return [(part, term) for part, term in terms if term]


def grouped(caches: list[LayerCache]) -> tuple[LayerCache, ...]:
    """Merge equal per-layer caches into groups, keeping first-seen order (one entry per kind and shape)."""
    groups: dict[LayerCache, int] = {}
    for cache in caches:
        key = replace(cache, layers=1)
        groups[key] = groups.get(key, 0) + cache.layers
    return tuple(replace(key, layers=count) for key, count in groups.items())


# ------------------------------------------------------------------------------------- from a config
def _int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if value is not None and not isinstance(value, (bool, str)):
            return int(value)
    return None


def attention_numbers(config: dict[str, Any]) -> tuple[int, int, int]:
    """(query heads, KV heads, head_dim) of the attention layers; (0, 0, 0) for a model without attention.

    KV heads: Llama/Mistral/Qwen's num_key_value_heads, Falcon's num_kv_heads with the new decoder
    architecture, else Falcon's multi_query (one KV head), else plain multi-head attention.
    """
    heads = _int(config, "num_attention_heads", "n_head", "num_heads") or 0
    if not heads:
        return 0, 0, 0
    if config.get("model_type") == "falcon" and not config.get("new_decoder_architecture"):
        kv_heads = 1 if config.get("multi_query") else heads
    else:
        kv_heads = _int(config, "num_key_value_heads", "num_kv_heads", "n_head_kv") or heads
        if kv_heads == heads and config.get("multi_query") and not config.get("new_decoder_architecture"):
            kv_heads = 1
    head_dim = _int(config, "head_dim")
    if _int(config, "kv_lora_rank"):  # MLA: queries and keys are qk_nope + qk_rope wide (config.head_dim is rope's)
        head_dim = (_int(config, "qk_nope_head_dim") or 0) + (_int(config, "qk_rope_head_dim") or 0)
    if not head_dim:
        hidden = _int(config, "hidden_size", "n_embd", "d_model") or 0
        head_dim = hidden // heads
    return heads, kv_heads, head_dim


def layer_types(config: dict[str, Any], num_layers: int) -> list[str]:
    """transformers' layer_types for the config, with the families' own defaults when config.json omits them."""
    given = config.get("layer_types") or config.get("layers_block_type")
    family = config.get("model_type", "")
    if given and len(given) == num_layers:
        return ["full_attention" if kind == "attention" else kind for kind in given]
    window = config.get("sliding_window")
    if family in ("mamba", "falcon_mamba", "mamba2"):
        return ["linear_attention"] * num_layers
    if family == "falcon_h1":
        return ["hybrid"] * num_layers
    if family == "jamba":
        period, offset = _int(config, "attn_layer_period") or 8, _int(config, "attn_layer_offset") or 4
        return ["full_attention" if i % period == offset else "linear_attention" for i in range(num_layers)]
    if family == "qwen3_next":
        interval = _int(config, "full_attention_interval") or 4
        return ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(num_layers)]
    if family in ("gemma2", "gpt_oss", "gemma3_text", "gemma3", "cohere2") and window:
        default = {"gemma3_text": 6, "gemma3": 6, "cohere2": 4}.get(family, 2)
        pattern = _int(config, "sliding_window_pattern") or default
        return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(num_layers)]
    if family in ("qwen2", "qwen3", "qwen2_moe", "qwen3_moe"):
        if not window or not config.get("use_sliding_window"):
            return ["full_attention"] * num_layers
        first = _int(config, "max_window_layers") or 0
        return ["sliding_attention" if i >= first else "full_attention" for i in range(num_layers)]
    if window and config.get("use_sliding_window") is not False:
        return ["sliding_attention"] * num_layers
    return ["full_attention"] * num_layers


def _state(config: dict[str, Any]) -> tuple[int, int, str]:
    """(conv elements, recurrent elements, how) per SSM or linear-attention layer, from the family's numbers."""
    family = config.get("model_type", "")
    hidden = _int(config, "hidden_size", "d_model") or 0
    if family == "qwen3_next":
        key_heads, value_heads = _int(config, "linear_num_key_heads") or 0, _int(config, "linear_num_value_heads") or 0
        key_dim, value_dim = _int(config, "linear_key_head_dim") or 0, _int(config, "linear_value_head_dim") or 0
        kernel = _int(config, "linear_conv_kernel_dim") or 4
        channels = 2 * key_heads * key_dim + value_heads * value_dim
        how = f"{channels} channels × {kernel} conv + {value_heads} heads × {key_dim} × {value_dim} recurrent"
        return channels * kernel, value_heads * key_dim * value_dim, how
    if family in ("falcon_h1", "mamba2", "bamba"):
        prefix = "mamba_" if family != "mamba2" else ""
        inner = _int(config, "mamba_d_ssm") if family == "falcon_h1" else None
        inner = inner or (_int(config, f"{prefix}expand") or 2) * hidden
        heads = _int(config, f"{prefix}n_heads", "num_heads") or 1
        head_dim = _int(config, f"{prefix}d_head", "head_dim") or inner // heads
        groups = _int(config, f"{prefix}n_groups", "n_groups") or 1
        state = _int(config, f"{prefix}d_state", "state_size") or 16
        kernel = _int(config, f"{prefix}d_conv", "conv_kernel") or 4
        channels = inner + 2 * groups * state
        how = f"({inner} + 2 × {groups} × {state}) channels × {kernel} conv + {heads} × {head_dim} × {state} recurrent"
        return channels * kernel, heads * head_dim * state, how
    if family == "jamba":
        inner = (_int(config, "mamba_expand") or 2) * hidden
        state, kernel = _int(config, "mamba_d_state") or 16, _int(config, "mamba_d_conv") or 4
    else:  # mamba, falcon_mamba
        inner = _int(config, "intermediate_size") or (_int(config, "expand") or 2) * hidden
        state, kernel = _int(config, "state_size") or 16, _int(config, "conv_kernel") or 4
    return inner * kernel, inner * state, f"{inner} channels × ({kernel} conv + {state} recurrent)"


def layer_caches(config: dict[str, Any]) -> tuple[LayerCache, ...]:
    """Grouped cache model of a transformers config dict (a multimodal wrapper's text_config is used)."""
    return grouped(per_layer_caches(config))


def per_layer_caches(config: dict[str, Any]) -> list[LayerCache]:
    """One LayerCache per model layer, in model order, from a transformers config dict."""
    if "num_hidden_layers" not in config and "n_layer" not in config and isinstance(config.get("text_config"), dict):
        return per_layer_caches(config["text_config"])
    num_layers = _int(config, "num_hidden_layers", "n_layer", "num_layers")
    if not num_layers or num_layers < 1:
        raise ValueError("config has none of num_hidden_layers, n_layer, num_layers")
    family = config.get("model_type", "")
    _, kv_heads, head_dim = attention_numbers(config)
    window = _int(config, "sliding_window") or 0
    chunk = _int(config, "attention_chunk_size") or 0
    latent = (_int(config, "kv_lora_rank") or 0, _int(config, "qk_rope_head_dim") or 0)
    caches: list[LayerCache] = []
    for kind in layer_types(config, num_layers):
        if kind == "full_attention" and latent[0]:
            how = f"{latent[0]} kv_lora_rank + {latent[1]} qk_rope_head_dim"
            caches.append(LayerCache(MLA, latent_dim=sum(latent), detail=how))
        elif kind in ("full_attention", "indexed_attention"):
            caches.append(LayerCache(FULL, kv_heads=kv_heads, head_dim=head_dim))
        elif kind in ("sliding_attention", "chunked_attention"):
            size = chunk if kind == "chunked_attention" else window
            caches.append(LayerCache(SLIDING, kv_heads=kv_heads, head_dim=head_dim, window=size))
        elif kind in ("linear_attention", "conv", "hybrid", "hybrid_sliding"):
            conv, recurrent, how = _state(config)
            states = LayerCache(SSM if family in SSM_FAMILIES else LINEAR, 1, 0, 0, 0, 0, conv, recurrent, how)
            if kind.startswith("hybrid"):
                size = window if kind == "hybrid_sliding" else 0
                states = replace(states, kind=HYBRID, kv_heads=kv_heads, head_dim=head_dim, window=size)
            caches.append(states)
        else:  # "dummy", "moe", "mlp": layers that hold nothing of their own
            caches.append(LayerCache(NONE))
    return caches


def ceil_bytes(elements: int, bytes_per_element: float) -> int:
    """Whole bytes for `elements` at a (possibly fractional, e.g. int4 with scales) size per element."""
    return math.ceil(Fraction(bytes_per_element) * elements)
