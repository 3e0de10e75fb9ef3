"""The live engine: any transformers causal LM, stepped one forward pass at a time with captures.

Each forward returns a StepTrace of numpy data: next-token logits, attention rows, hidden-state
norms, KV cache sizes and MoE routing. Attention capture needs a kernel that returns its weights (eager math,
without the grouped-query copy: engines/grouped_attention.py), so the engine switches between it and SDPA as
that capture is turned on and off.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from llmscope import cache_layout
from llmscope.engine_api import EngineError, ProgressCallback, no_progress
from llmscope.engines import architecture, prefill
from llmscope.engines.capture import attention_rows, kv_stats, routing
from llmscope.engines.device import DeviceChoice, choose_device, fast_attention, input_device, prepare, synchronize
from llmscope.engines.grouped_attention import CAPTURE_KERNEL
from llmscope.engines.lens import LensHead
from llmscope.engines.loading import load_model_and_tokenizer
from llmscope.engines.rewind import ForwardLog, can_crop
from llmscope.engines.routing import refusal_reason, router_rule
from llmscope.engines.tokenizer_view import inspect_text, token_info
from llmscope.lens import LogitLens
from llmscope.registry import resolve
from llmscope.trace import Capabilities, CaptureOptions, KVStats, ModelInfo, RouterTrace, StepTrace, TokenInfo


def _library_versions() -> dict[str, str]:
    versions = {}
    for package in ("llmscope", "torch", "transformers", "tokenizers", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _eos_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """Stop tokens from the generation config and the tokenizer, deduplicated."""
    found: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    for value in configured if isinstance(configured, list) else [configured]:
        if isinstance(value, int):
            found.append(value)
    if isinstance(tokenizer.eos_token_id, int):
        found.append(tokenizer.eos_token_id)
    return tuple(dict.fromkeys(found))


def cache_argument_name(model: Any) -> str:
    """The forward keyword that takes the KV cache: `cache` since transformers 5.24, `past_key_values` before.

    The old name still works in 5.24 but warns on every forward and goes away in 5.40.
    """
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def describe_model(model: Any, tokenizer: Any, *, name: str, source: str, device: DeviceChoice) -> ModelInfo:
    """Collect the config numbers the panes and session files need, for any layer mix (SSM layers have no heads)."""
    config = model.config.get_text_config()
    values = architecture.text_config_dict(model)
    layout = architecture.model_layout(model)
    num_heads, num_kv_heads, head_dim = cache_layout.attention_numbers(values)
    hidden = int(values.get("hidden_size") or values.get("n_embd") or values.get("d_model") or 0)
    moe_layers = tuple(layer for layer, _ in architecture.router_modules(model))
    experts = (getattr(config, key, None) for key in ("num_local_experts", "num_experts", "n_routed_experts"))
    num_experts = int(next((value for value in experts if value), 0) or 0) if moe_layers else 0
    return ModelInfo(
        name=name,
        source=source,
        architecture=(config.architectures or [type(model).__name__])[0],
        model_type=config.model_type,
        num_parameters=int(model.num_parameters()),
        num_layers=len(layout.per_layer),
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        vocab_size=int(model.get_output_embeddings().weight.shape[0]),
        max_context=int(getattr(config, "max_position_embeddings", 0) or 2048),
        device=str(device.device),
        dtype=str(device.dtype).removeprefix("torch."),
        num_experts=num_experts,
        experts_per_token=int(getattr(config, "num_experts_per_tok", 0) or 0) if num_experts else 0,
        moe_layers=moe_layers if num_experts else (),
        router_aux_loss_coef=float(getattr(config, "router_aux_loss_coef", 0.0) or 0.0) if num_experts else 0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_ids=_eos_ids(model, tokenizer),
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        library_versions=_library_versions(),
        layer_kinds=layout.kinds,
        layer_windows=layout.windows,
        cache_layers=layout.grouped,
    )


class HFEngine:
    """Steps a transformers causal LM with a DynamicCache and records a StepTrace per forward."""

    def __init__(
        self, model: Any, tokenizer: Any, info: ModelInfo, capture: CaptureOptions, device: DeviceChoice
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = info
        self.device = device
        self.capture = capture
        self.forward_calls = 0
        self._cache: DynamicCache | None = None
        self._tokens: list[int] = []
        self._prompt_length = 0
        self._log = ForwardLog()
        self._per_layer = architecture.model_layout(model).per_layer
        config = model.config.get_text_config()
        routers = architecture.router_modules(model)
        rule = router_rule(config) if info.is_moe else None
        reasons = {}
        if not info.is_moe:
            reasons["router"] = f"{info.name} is a dense model: every token uses the same MLP, there is no router"
        elif rule is None:
            reasons["router"] = refusal_reason(config, type(routers[0][1]).__name__ if routers else None)
        if not info.attention_layers:
            kinds = sorted({cache_layout.KIND_WORDS[kind] for kind in info.layer_kinds})
            reasons["attention"] = f"{info.name} has no softmax attention: every layer is {' or '.join(kinds)}"
        self._lens = LensHead(model)
        if refusal := self._lens.refusal:
            reasons["logit_lens"] = refusal
        self.capabilities = Capabilities(
            attention=bool(info.attention_layers), router=rule is not None, logit_lens=refusal is None, reason=reasons
        )
        self._router_rule = rule
        biases = [getattr(module, "e_score_correction_bias", None) for _, module in routers]
        known = [bias for bias in biases if isinstance(bias, torch.Tensor)]
        self._correction_bias = torch.stack(known).float() if known and len(known) == len(biases) else None
        self._cache_argument = cache_argument_name(model)
        self._has_sinks = architecture.has_attention_sinks(model)
        self._fast_attention = fast_attention(model)
        self._attention_modules = prefill.attention_modules(model)
        self._capture_kernel = CAPTURE_KERNEL if self._attention_modules else "eager"
        """Eager attention without the grouped-query copy (engines/grouped_attention.py) for captured steps."""
        if capture.attention and self._attention_modules:
            model.set_attn_implementation(self._capture_kernel)
        self._input_device = input_device(model, device)
        self.attention_budget = prefill.PREFILL_ATTENTION_BYTES
        """Most bytes of prompt attention rows a prefill keeps (engines/prefill.py)."""

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str = "auto",
        capture: CaptureOptions | None = None,
        trust_remote_code: bool = False,
        progress: ProgressCallback = no_progress,
        device_map: str | None = None,
        max_memory: dict[str, str] | None = None,
        offload_folder: str | None = None,
    ) -> HFEngine:
        """Resolve, load and wrap a model; torch.set_flush_denormal keeps dequantised weights fast on CPU.

        `device_map` ("auto") spreads a model larger than one device over GPUs, CPU and `offload_folder`
        with accelerate, within `max_memory` per device; captures are gathered to the CPU from each layer.
        """
        capture = capture or CaptureOptions()
        spec = resolve(model)
        choice = choose_device(device)
        if device_map:
            choice = dataclasses.replace(
                choice, device_map=device_map, max_memory=max_memory, offload_folder=offload_folder
            )
        prepare(choice)
        hf_model, tokenizer = load_model_and_tokenizer(
            spec, choice, eager_attention=capture.attention, trust_remote_code=trust_remote_code, progress=progress
        )
        info = describe_model(hf_model, tokenizer, name=spec.name, source=str(spec.path), device=choice)
        return cls(hf_model, tokenizer, info, capture, choice)

    # ----------------------------------------------------------------- tokens
    @property
    def context_length(self) -> int:
        return len(self._tokens)

    @property
    def tokens(self) -> tuple[int, ...]:
        """Token ids currently in the KV cache."""
        return tuple(self._tokens)

    def encode(self, text: str, *, chat: bool = False, system_prompt: str | None = None) -> list[int]:
        if not text.strip():
            raise EngineError("empty prompt: type some text for the model to continue")
        if not chat:
            return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])
        if not self.info.has_chat_template:
            raise EngineError(f"{self.info.name} has no chat template: use plain mode (drop --chat)")
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": text})
        rendered = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.tokenizer(rendered, add_special_tokens=False)["input_ids"])

    def render_chat(self, text: str, *, system_prompt: str | None = None) -> str:
        """The exact string the chat template produces for one user turn (special tokens included)."""
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": text})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def inspect(self, text: str) -> list[TokenInfo]:
        return inspect_text(self.tokenizer, text)

    def token_info(self, token_id: int) -> TokenInfo:
        return token_info(self.tokenizer, token_id)

    # ---------------------------------------------------------------- stepping
    def set_capture(self, capture: CaptureOptions) -> None:
        """Change captures; attention needs the weight-returning kernel, everything else runs on SDPA."""
        if capture.attention != self.capture.attention:
            self.model.set_attn_implementation(self._capture_kernel if capture.attention else self._fast_attention)
        self.capture = capture

    def reset(self) -> None:
        self._cache = None
        self._tokens = []
        self._prompt_length = 0
        self._log.reset()

    def prefill(self, prompt_ids: Sequence[int]) -> StepTrace:
        ids = [int(token) for token in prompt_ids]
        if not ids:
            raise EngineError("empty prompt: it tokenizes to no tokens")
        if len(ids) >= self.info.max_context:
            raise EngineError(
                f"prompt is {len(ids)} tokens but {self.info.name} has a context of {self.info.max_context}: "
                "shorten it to leave room for at least one new token"
            )
        self.reset()
        self._cache = DynamicCache(config=self.model.config)
        self._prompt_length = len(ids)
        return self._forward(ids)

    def step(self, token_id: int) -> StepTrace:
        if self._cache is None:
            raise EngineError("no prompt yet: prefill before stepping")
        if self.context_length + 1 >= self.info.max_context:
            raise EngineError(f"context full: {self.info.name} holds at most {self.info.max_context} tokens")
        return self._forward([int(token_id)])

    def truncate(self, length: int) -> None:
        """Put the cache back to exactly its state after `length` tokens, or change nothing and raise.

        Full-attention caches crop (crop(-n) behaves the same across transformers versions); sliding layers
        past their window and SSM/linear layers are rebuilt by replaying the logged forwards (engines/rewind.py)
        into a new cache that replaces the old one only once it is complete.
        """
        if length < self._prompt_length or length > self.context_length:
            raise EngineError(
                f"cannot truncate to {length} tokens: the cache holds {self.context_length}"
                f" of which {self._prompt_length} are the prompt"
            )
        remove = self.context_length - length
        if not remove or self._cache is None:
            return
        if can_crop(self._cache, remove):
            self._cache.crop(-remove)
        else:
            try:
                self._cache = self._log.rebuild(self._cache, length, self._new_cache, self._replay)
            except Exception as error:
                raise EngineError(f"could not rewind the cache to {length} tokens: {error}") from error
        self._log.truncate(length)
        del self._tokens[length:]

    def _new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.model.config)

    def _replay(self, cache: DynamicCache, ids: list[int]) -> None:
        """One forward as the original run made it, without captures, to refill a rebuilt cache."""
        arguments = {self._cache_argument: cache, "use_cache": True, "logits_to_keep": 1}
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([ids], device=self._input_device), **arguments)

    def _forward(self, ids: list[int]) -> StepTrace:
        capture = self.capture
        start_position = self.context_length
        kwargs: dict[str, Any] = {
            self._cache_argument: self._cache,
            "use_cache": True,
            "logits_to_keep": 1,
            "output_attentions": capture.attention,
            "output_hidden_states": capture.hidden_states or self._lens_on,
        }
        if self.info.is_moe:
            kwargs["output_router_logits"] = capture.router and self._router_rule is not None
        captured: tuple[int, ...] = ()
        attention, query_start, sink = None, start_position, None
        started = time.perf_counter()
        if len(ids) > 1 and capture.attention and self.capabilities.attention and self._attention_modules:
            output, (attention, query_start, captured, sink) = self._forward_keeping_rows(ids, kwargs)
        else:
            with torch.inference_mode():
                output = self.model(input_ids=torch.tensor([ids], device=self._input_device), **kwargs)
        synchronize(self.device)  # only here, where the forward is timed
        forward_ms = (time.perf_counter() - started) * 1000.0
        self.forward_calls += 1
        self._tokens.extend(ids)
        self._log.record(ids, self._cache, self.context_length)
        if (
            attention is None
            and capture.attention
            and self.capabilities.attention
            and getattr(output, "attentions", None)
        ):
            attention, query_start, captured, sink = attention_rows(
                output.attentions, self.info, start_position, capture.prefill_attention_rows, sinks=self._has_sinks
            )
        return StepTrace(
            index=self.context_length - self._prompt_length,
            input_ids=tuple(ids),
            position=self.context_length - 1,
            logits=output.logits[0, -1].float().cpu().numpy(),
            attention=attention,
            attention_query_start=query_start,
            attention_layers=captured,
            attention_sink=sink,
            hidden_norms=self._hidden_norms(output) if capture.hidden_states else None,
            kv=self._kv_stats() if capture.kv_cache else None,
            router=self._routing(output) if kwargs.get("output_router_logits") else None,
            lens=self._logit_lens(output) if self._lens_on else None,
            forward_ms=forward_ms,
        )

    def _forward_keeping_rows(self, ids: list[int], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...]]:
        """A multi-token forward whose kept attention rows are copied per layer (engines/prefill.py).

        The rows the capture drops run first through the fast kernel when the layer kinds allow a prompt in
        few forwards; the kept rows then run eager with the row hooks. Router logits of all are joined.
        """
        start = self.context_length
        context = start + len(ids)
        keep = prefill.kept_rows(self.info, context, self.capture.prefill_attention_rows, self.attention_budget)
        split = len(ids) - keep if prefill.can_chunk(self.info.layer_kinds) else 0
        device = self._input_device
        rows = prefill.RowCapture(self.info, context, keep)
        # The eager kernel is the fast one for Gemma 2 and gpt-oss: their dropped rows go in bounded chunks too.
        size = split if self._fast_attention != "eager" else prefill.EAGER_CHUNK
        early: list[Any] = []
        with torch.inference_mode():
            if split > 0:
                self.model.set_attn_implementation(self._fast_attention)
                try:
                    quiet = dict(kwargs, output_attentions=False, output_hidden_states=False)
                    for begin in range(0, split, size):
                        chunk = ids[begin : min(split, begin + size)]
                        early.append(self.model(input_ids=torch.tensor([chunk], device=device), **quiet))
                finally:
                    self.model.set_attn_implementation(self._capture_kernel)
            rows.install(self._attention_modules)
            try:
                tail = dict(kwargs, output_attentions=False)
                output = self.model(input_ids=torch.tensor([ids[split:]], device=device), **tail)
            finally:
                rows.remove()
        parts = [getattr(part, "router_logits", None) for part in [*early, output]]
        if early and all(parts):
            output.router_logits = tuple(
                torch.cat([layer.reshape(-1, layer.shape[-1]) for layer in per_layer])
                for per_layer in zip(*parts, strict=True)
            )
        return output, rows.result(sinks=self._has_sinks)

    # ---------------------------------------------------------------- captures
    @property
    def _lens_on(self) -> bool:
        return self.capture.logit_lens and self.capabilities.logit_lens

    def _logit_lens(self, output: Any) -> LogitLens | None:
        """The lens of the last position; a model whose head the lens cannot reproduce loses the capability."""
        if not getattr(output, "hidden_states", None):
            return None
        try:
            return self._lens.capture(output.hidden_states, output.logits[0, -1])
        except EngineError as refused:
            reason = dict(self.capabilities.reason, logit_lens=str(refused))
            self.capabilities = dataclasses.replace(self.capabilities, logit_lens=False, reason=reason)
            return None

    def _hidden_norms(self, output: Any) -> np.ndarray | None:
        if not getattr(output, "hidden_states", None):
            return None
        home = output.hidden_states[-1].device  # under a device map, layers' states live on different devices
        last = torch.stack([state[0, -1].to(home) for state in output.hidden_states]).float()
        return torch.linalg.vector_norm(last, dim=-1).cpu().numpy()

    def _kv_stats(self) -> KVStats | None:
        return kv_stats(self._cache, self.info, self.context_length, self._per_layer)

    def _routing(self, output: Any) -> RouterTrace | None:
        logits_per_layer = getattr(output, "router_logits", None)
        if not logits_per_layer or self._router_rule is None:
            return None
        return routing(logits_per_layer, self._router_rule, self.info.moe_layers, self._correction_bias)
