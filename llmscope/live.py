"""The TUI's model-side state: one engine, one generation, and plain snapshots of them for the panes.

All methods run on the App's engine worker thread; what they return (`LiveView`) is immutable
plain data the App hands to widgets on the UI thread. Imports no torch and no Textual.
"""

from __future__ import annotations

import codecs
import numbers
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from llmscope import kvcalc
from llmscope.engine_api import Engine, EngineError
from llmscope.format import visible_token_text
from llmscope.generation import ATTENTION_BUDGET_BYTES, Generation, Step
from llmscope.lens_view import lens_content, lens_pane
from llmscope.panes import (
    AttentionContent,
    DenseModel,
    GenerationContent,
    KVContent,
    LensContent,
    MoEContent,
    PaneContents,
    SamplerContent,
    TokensContent,
    Unavailable,
)
from llmscope.sampler import SamplerConfig, SampleResult
from llmscope.session.replay import ReplayMove, play_move
from llmscope.trace import KVStats, ModelInfo, StepTrace, TokenInfo

if TYPE_CHECKING:
    from llmscope.session.recording import SessionRecorder

ATTENTION_DROPPED = (
    "This step's attention weights were dropped to bound memory: a long run keeps the rows of its newest steps "
    f"({ATTENTION_BUDGET_BYTES // 2**20} MiB in all). Rewind less far, or start a shorter run, to see them."
)
TOP_CANDIDATES = 48
"""Candidates whose display text is precomputed for the sampler table."""


def visible_label(text: str | bytes) -> str:
    """A token's text (better: its raw bytes) as an axis label, spelled by llmscope.format.visible_token_text."""
    return visible_token_text(text)


@dataclass(frozen=True)
class Routing:
    """MoE routing for every position in the context, concatenated over the prefill and later steps."""

    logits: np.ndarray
    """float32 [moe_layers, positions, experts]"""
    experts: np.ndarray
    """int64 [moe_layers, positions, experts_per_token]"""
    weights: np.ndarray
    """float32 [moe_layers, positions, experts_per_token]"""
    layers: tuple[int, ...]
    rule: str


@dataclass(frozen=True)
class LiveView:
    """Everything the panes show after an action, as plain data."""

    info: ModelInfo
    prompt_text: str
    chat: bool
    prompt_tokens: tuple[TokenInfo, ...]
    generated: tuple[tuple[TokenInfo, float], ...]
    """Each generated token with the probability it had when chosen (the raw one for greedy steps,
    whose sampled distribution is one-hot)."""
    current: StepTrace | None
    sample: SampleResult | None
    token_texts: dict[int, str]
    """Display text of the current step's top candidates and chosen token."""
    context_labels: tuple[str, ...]
    """Visible labels of every token in the KV cache, by position (for attention axes)."""
    kv_history: tuple[KVStats, ...]
    what_if: tuple[tuple[str, kvcalc.KVEstimate], ...]
    what_if_at_max_context: tuple[tuple[str, kvcalc.KVEstimate], ...]
    """The same variants with the context window full (info.max_context tokens)."""
    routing: Routing | None
    stop_reason: str | None
    config: SamplerConfig
    step_times_ms: tuple[float, ...] = field(default=())
    forward_calls: int = 0
    panes: PaneContents | None = None
    """What each pane draws, built once by the worker (see `pane_contents`)."""
    viewing: int | None = None
    """The earlier step the step panes show (`LiveController.view_at`); None while they show the latest."""
    forced_token: int | None = None
    """The token the user forced at the step shown (`LiveController.force`); None when the sampler picked it."""
    lens: LensContent | None = None
    """The logit lens of every step that captured it (None: no step did)."""

    @property
    def step_count(self) -> int:
        return len(self.generated)


class LiveController:
    """Owns the engine and the generation; every action returns a fresh LiveView."""

    def __init__(
        self, engine: Engine, config: SamplerConfig | None = None, *, recorder: SessionRecorder | None = None
    ) -> None:
        self.engine = engine
        self.generation = Generation(engine, config or SamplerConfig())
        self.recorder = recorder
        """When set, every action is recorded in order (for saving the session)."""
        self.prompt_text = ""
        self.chat = False
        self._token_cache: dict[int, TokenInfo] = {}
        self._routing_parts: list[StepTrace] = []

    # ---------------------------------------------------------------- actions
    def start(self, prompt_text: str, *, chat: bool, system_prompt: str | None = None) -> LiveView:
        """Tokenize the prompt, prefill it and sample the first token."""
        prompt_ids = self.engine.encode(prompt_text, chat=chat, system_prompt=system_prompt)
        step = self.generation.start(prompt_ids)
        self.prompt_text, self.chat = prompt_text, chat
        if self.recorder is not None:
            self.recorder.prompt(prompt_text, chat=chat, system_prompt=system_prompt, prompt_ids=prompt_ids)
            self.recorder.step(step, first=True)
        return self.view()

    def step(self) -> LiveView:
        step = self.generation.advance()
        if self.recorder is not None:
            self.recorder.step(step)
        return self.view()

    def rewind(self, count: int = 1) -> LiveView:
        self.generation.rewind(count)
        if self.recorder is not None:
            self.recorder.rewind(count)
        return self.view()

    def resample(self, config: SamplerConfig) -> LiveView:
        """New knobs for the current step, from its stored logits (no forward pass)."""
        if self.generation.steps:
            step = self.generation.resample(config)
            if self.recorder is not None:
                self.recorder.resample(step)
        else:
            self.generation.config = config.validate()
            if self.recorder is not None:
                self.recorder.knobs(self.generation.config)
        return self.view()

    def force(self, token_id: int, *, at: int | None = None) -> LiveView:
        """Continue from `token_id` instead of the sampled token, with no forward pass (it is not in the cache yet).

        `at` names an earlier step to branch from: the later tokens are rewound first (a recorded rewind).
        """
        steps = self.generation.steps
        if not steps:
            raise EngineError("nothing to force yet: run a prompt first")
        vocab_size = int(steps[-1].trace.logits.shape[0])
        if isinstance(token_id, bool) or not isinstance(token_id, numbers.Integral) or not 0 <= token_id < vocab_size:
            raise EngineError(f"token id {token_id!r} is not in the vocabulary (0 to {vocab_size - 1})")
        last = len(steps) - 1
        if at is not None and at != last:
            if not 0 <= at < last:
                raise EngineError(f"cannot force at step {at}: steps 0 to {last} exist")
            self.generation.rewind(last - at)
            if self.recorder is not None:
                self.recorder.rewind(last - at)
        step = self.generation.force(int(token_id))
        if self.recorder is not None:
            self.recorder.force(step)
        return self.view()

    def follow(self, move: ReplayMove) -> LiveView:
        """Re-enact one recorded move (a replay): its prompt, its knobs, and the token the recording chose."""
        step = play_move(self.generation, move)
        if move.kind == "prompt":
            prompt = move.prompt
            self.prompt_text, self.chat = prompt.text, prompt.chat
        recorder = self.recorder
        if recorder is not None:
            if move.kind == "rewind":
                recorder.rewind(move.count)
            elif move.kind == "prompt":
                prompt = move.prompt
                recorder.prompt(
                    prompt.text, chat=prompt.chat, system_prompt=prompt.system_prompt, prompt_ids=prompt.prompt_ids
                )
            if step is not None and move.kind == "resample":
                recorder.resample(step)
            elif step is not None and move.kind == "force":
                recorder.force(step)
            elif step is not None:
                recorder.step(step, first=move.kind == "prompt")
        return self.view()

    def inspect(self, text: str) -> list[TokenInfo]:
        return self.engine.inspect(text)

    @property
    def started(self) -> bool:
        return bool(self.generation.steps)

    # ------------------------------------------------------------------ views
    def token(self, token_id: int) -> TokenInfo:
        """TokenInfo for an id, cached: labels are asked for every position at every step."""
        if token_id not in self._token_cache:
            self._token_cache[token_id] = self.engine.token_info(token_id)
        return self._token_cache[token_id]

    def view(self) -> LiveView:
        """What every pane shows after the latest step."""
        return self.view_at(None)

    def view_at(self, index: int | None) -> LiveView:
        """The panes as they were at generated step `index` (None: the latest), from the steps' kept traces.

        Logits, attention, KV cache and routing are those of that step; the generation column still holds every
        token, with step `index` selected. Asking for the latest step gives the same view as `view()`.
        """
        generation = self.generation
        info = self.engine.info
        all_steps = generation.steps
        last = len(all_steps) - 1
        if index is not None and not 0 <= index <= last:
            raise EngineError(f"no step {index} to show: {len(all_steps)} generated")
        shown = last if index is None else index
        steps = all_steps[: shown + 1]
        current = steps[-1] if steps else None
        sample = generation.sample_result(shown) if steps else None
        token_texts: dict[int, str] = {}
        if sample is not None and current is not None:
            for token_id in [*sample.top(TOP_CANDIDATES), sample.token_id, current.token_id]:
                token_texts[token_id] = visible_token_text(self.token(token_id).raw_bytes)
        fed = [*generation.prompt_ids, *generation.generated_ids[: max(shown, 0)]]
        kv_history = tuple(step.trace.kv for step in steps if step.trace.kv is not None)
        context = max(1, len(fed))
        shape = kvcalc.KVShape(
            info.name, info.num_layers, info.num_heads, info.num_kv_heads, info.head_dim, layers=info.cache_layers
        )
        cache_dtype = _cache_dtype(kv_history, info.dtype)
        what_if = tuple(kvcalc.what_if(shape, context, 1, cache_dtype))
        what_if_max = tuple(kvcalc.what_if(shape, max(1, info.max_context), 1, cache_dtype))
        view = LiveView(
            info=info,
            prompt_text=self.prompt_text,
            chat=self.chat,
            prompt_tokens=tuple(self.token(token_id) for token_id in generation.prompt_ids),
            generated=tuple(
                (step.trace.chosen, step.raw_probability if step.config.greedy else step.probability)
                for step in all_steps
                if step.trace.chosen
            ),
            current=current.trace if current else None,
            sample=sample,
            token_texts=token_texts,
            context_labels=tuple(visible_label(self.token(token_id).raw_bytes) for token_id in fed),
            kv_history=kv_history,
            what_if=what_if,
            what_if_at_max_context=what_if_max,
            routing=_routing(steps),
            stop_reason=generation.stop_reason,
            config=generation.config,
            step_times_ms=tuple(step.trace.forward_ms for step in all_steps),
            forward_calls=self.engine.forward_calls,
            viewing=None if shown == last else shown,
            forced_token=current.token_id if current is not None and current.forced else None,
            lens=lens_content(
                all_steps,
                shown,
                lambda token_id: visible_token_text(self.token(token_id).raw_bytes),
                model_name=info.name,
                capturing=self.engine.capture.logit_lens,
            ),
        )
        reasons = self.engine.capabilities.reason
        note = getattr(self.engine, "attention_note", None)  # a replayed file whose attention is approximate
        panes = pane_contents(view, reasons.get("router"), reasons.get("attention"), note)
        lens = lens_pane(
            view.lens,
            stepped=view.current is not None,
            model_name=info.name,
            refusal=reasons.get("logit_lens"),
            capturing=self.engine.capture.logit_lens,
        )
        return replace(view, panes=replace(panes, lens=lens))


def _layer_note(info: ModelInfo, layer: int) -> str:
    """What a reader must know about one layer's attention row; empty for plain full attention."""
    if layer >= info.num_layers or layer in info.attention_layers:
        window = info.layer_window(layer) if layer < info.num_layers else 0
        return f"sliding window {window}: only the last {window} keys are visible to a query" if window else ""
    kind = info.layer_kind(layer)
    return f"{kind} layer: no attention weights (a fixed-size state summarises the past)"


def pane_contents(
    view: LiveView,
    router_reason: str | None = None,
    attention_reason: str | None = None,
    storage_note: str | None = None,
) -> PaneContents:
    """Each pane's record for a view, or the one sentence saying why that pane has nothing to show."""
    info, trace = view.info, view.current
    generation = GenerationContent(view.prompt_tokens, view.generated, view.stop_reason, selected=view.viewing)
    logits: SamplerContent | Unavailable = (
        SamplerContent(view.sample, view.token_texts, forced=view.forced_token)
        if view.sample is not None
        else Unavailable("No step yet. Generate or replay a token and its sampler stages appear here.")
    )
    attention: AttentionContent | Unavailable
    if trace is None:
        attention = Unavailable("No step yet: attention appears after the first forward pass.")
    elif trace.attention_dropped:
        attention = Unavailable(ATTENTION_DROPPED)
    elif trace.attention is None:
        attention = Unavailable(
            attention_reason or "Attention capture is off for this engine, so there are no weights to show."
        )
    else:
        attention = AttentionContent(
            trace.attention,
            trace.attention_query_start,
            view.context_labels,
            info.num_kv_heads,
            trace.index,
            layer_notes=tuple(_layer_note(info, layer) for layer in range(trace.attention.shape[0])),
            weightless_layers=tuple(
                layer
                for layer in range(min(info.num_layers, trace.attention.shape[0]))
                if layer not in info.attention_layers
            ),
            attention_sink=trace.attention_sink,
            storage_note=storage_note or "",
        )
    kv: KVContent | Unavailable = (
        KVContent(view.kv_history, view.what_if, view.what_if_at_max_context)
        if view.kv_history
        else Unavailable("KV capture is off, so the cache size was not measured.")
    )
    moe: MoEContent | DenseModel | Unavailable
    if not info.is_moe:
        moe = DenseModel(info.name)
    elif view.routing is not None:
        routing = view.routing
        moe = MoEContent(
            routing.logits,
            routing.experts,
            routing.weights,
            view.context_labels,
            routing.layers,
            info.num_experts,
            info.experts_per_token,
            info.router_aux_loss_coef,
            routing.rule,
        )
    elif trace is None:
        moe = Unavailable("Run a prompt to see which experts each token is routed to.")
    else:
        moe = Unavailable(router_reason or "Router capture is off, so no routing was recorded.")
    return PaneContents(
        generation=generation, logits=logits, attention=attention, kv=kv, moe=moe, tokens=run_tokens(view)
    )


def run_tokens(view: LiveView) -> TokensContent:
    """The run as the tokens pane shows it: the prompt's tokens (chat template included), then the generated ones.

    The text is their bytes decoded together (a character split over two tokens reads whole), and each token's
    offsets are where its bytes land in it, so the pane's detail line can point into it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = ""
    placed = []
    for token in (*view.prompt_tokens, *(token for token, _ in view.generated)):
        start = len(text)
        text += decoder.decode(token.raw_bytes)  # a partial character waits for the token that completes it
        placed.append(replace(token, start=start, end=len(text)))
    text += decoder.decode(b"", final=True)
    return TokensContent(tuple(placed), text, vocab_size=view.info.vocab_size, generated=len(view.generated))


def _cache_dtype(history: tuple[KVStats, ...], fallback: str) -> str:
    """The cache's dtype name as kvcalc knows it (float32 on CPU, bfloat16 on most GPUs)."""
    name = history[-1].layers[0].dtype if history and history[-1].layers else fallback
    try:
        kvcalc.dtype_bytes(name)
        return name
    except ValueError:
        return "bf16"


def _routing(steps: list[Step]) -> Routing | None:
    """Concatenate per-step router traces along positions; None unless every step has one."""
    traces = [step.trace.router for step in steps if step.trace.router is not None]
    if not traces or len(traces) < len(steps):
        return None
    # The last step's forward fed the token chosen before it; routing covers every fed position.
    return Routing(
        logits=np.concatenate([trace.logits for trace in traces], axis=1),
        experts=np.concatenate([trace.experts for trace in traces], axis=1),
        weights=np.concatenate([trace.weights for trace in traces], axis=1),
        layers=traces[0].layers,
        rule=traces[0].rule,
    )


__all__ = ["EngineError", "LiveController", "LiveView", "Routing", "visible_label"]
