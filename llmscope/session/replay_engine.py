"""The replay engine: serves a recorded session's forward passes through the Engine protocol, without torch.

Stepping follows the recording: a prefill or a fed token that was recorded returns its trace; anything
else has diverged from the recording and needs the live model. Re-sampling needs only logits, so
every knob still works on every recorded step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np

from llmscope.engine_api import EngineError
from llmscope.sampler import SamplerConfig
from llmscope.session.checks import SessionFormatError
from llmscope.session.recording import PromptEvent, RecordedStep, Session
from llmscope.trace import Capabilities, CaptureOptions, KVStats, RouterTrace, StepTrace, TokenInfo

NOT_RECORDED = "not recorded"


class _TraceTrim(TypedDict, total=False):
    """The StepTrace fields that a narrower capture setting than the recording's drops or trims."""

    attention: np.ndarray | None
    attention_sink: np.ndarray | None
    attention_query_start: int
    hidden_norms: np.ndarray | None
    kv: KVStats | None
    router: RouterTrace | None


def _quote(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def replay_capabilities(session: Session) -> Capabilities:
    """What the recording holds; a capture the live engine had but the recording lacks says so."""
    forwards = session.forwards
    captured = {
        "attention": any("attention" in forward.arrays for forward in forwards),
        "hidden_states": any("hidden_norms" in forward.arrays for forward in forwards),
        "kv_cache": any(forward.kv is not None for forward in forwards),
        "router": any(forward.has_router for forward in forwards),
        "logit_lens": any("lens_top_ids" in forward.arrays for forward in forwards),
    }
    reasons = dict(session.capabilities.reason)
    for name, present in captured.items():
        if not present and name not in reasons:
            reasons[name] = f"{name.replace('_', ' ')} was not captured in this recording"
    return Capabilities(**captured, reason=reasons)


class ReplayEngine:
    """An Engine over a Session: recorded prompts tokenize, recorded forwards step, new text needs the model."""

    def __init__(self, session: Session, *, capture: CaptureOptions | None = None) -> None:
        self.session = session
        self.info = session.model
        self.capabilities = replay_capabilities(session)
        self.attention_note = session.attention_storage
        """How the file stored attention when a replay's weights are not exact to float16 (None when they are);
        a view showing attention figures should say it (docs/session-format.md gives the precision)."""
        self.capture = capture or session.capture
        self.forward_calls = 0
        self._path: list[int] = []
        """Canonical forward indices whose tokens make up the current context."""
        self._canonical: list[int] = []
        """Forward → the first recorded forward over the same context (a rewind can re-run one)."""
        self._children: dict[tuple[int | None, tuple[int, ...]], int] = {}
        for number, forward in enumerate(session.forwards):
            parent = None if forward.parent is None else self._canonical[forward.parent]
            self._canonical.append(self._children.setdefault((parent, forward.input_ids), number))
        self._samples: dict[int, list[RecordedStep]] = {}
        for step in session.steps:
            self._samples.setdefault(self._canonical[step.forward], []).append(step)
        self._preferred: int | None = None

    @classmethod
    def open(cls, path: str | Path) -> ReplayEngine:
        from llmscope.session.files import load_session

        return cls(load_session(path))

    # ----------------------------------------------------------------- tokens
    @property
    def context_length(self) -> int:
        return self.session.forwards[self._path[-1]].position + 1 if self._path else 0

    def _prompt_summary(self) -> str:
        prompts = self.session.prompts
        if not prompts:
            return "this replay has no prompt"
        others = f" (and {len(prompts) - 1} other prompt{'s' if len(prompts) > 2 else ''})" if len(prompts) > 1 else ""
        return f"this is a replay of '{_quote(prompts[0].text)}'{others}"

    def _prompt(self, text: str, chat: bool, system_prompt: str | None) -> PromptEvent | None:
        for event in self.session.prompts:
            if event.text == text and event.chat == chat and event.system_prompt == system_prompt:
                return event
        return None

    def encode(self, text: str, *, chat: bool = False, system_prompt: str | None = None) -> list[int]:
        if not text.strip():
            raise EngineError("empty prompt: type some text for the model to continue")
        event = self._prompt(text, chat, system_prompt)
        if event is None:
            mode = " in chat mode" if chat else ""
            raise EngineError(f"{self._prompt_summary()}: it cannot tokenize new text{mode} without the model")
        return list(event.prompt_ids)

    def render_chat(self, text: str, *, system_prompt: str | None = None) -> str:
        """The recorded chat-template rendering of a recorded chat prompt."""
        event = self._prompt(text, True, system_prompt)
        if event is None:
            raise EngineError(f"{self._prompt_summary()}: it cannot render a new chat prompt without the model")
        return event.shown_text

    def inspect(self, text: str) -> list[TokenInfo]:
        for event in self.session.prompts:
            if event.shown_text == text and event.shown_tokens:
                return list(event.shown_tokens)
        raise EngineError(f"{self._prompt_summary()}: it cannot tokenize new text without the model")

    def token_info(self, token_id: int) -> TokenInfo:
        """The recorded token, or a placeholder saying it was not recorded."""
        token = self.session.tokens.get(int(token_id))
        if token is not None:
            return token
        text = f"⟨{int(token_id)}: {NOT_RECORDED}⟩"
        return TokenInfo(int(token_id), piece=f"<{NOT_RECORDED}>", text=text, raw_bytes=text.encode("utf-8"))

    # ---------------------------------------------------------------- stepping
    def set_capture(self, capture: CaptureOptions) -> None:
        """Later traces show at most what was recorded, filtered by `capture`."""
        self.capture = capture

    def prefill(self, prompt_ids: Sequence[int]) -> StepTrace:
        ids = tuple(int(token) for token in prompt_ids)
        if not ids:
            raise EngineError("empty prompt: it tokenizes to no tokens")
        number = self._children.get((None, ids))
        if number is None:
            raise EngineError(
                f"{self._prompt_summary()}: no recorded prefill of these {len(ids)} tokens; "
                "a new prompt needs the live model"
            )
        trace = self._serve(number)  # a damaged array raises here, before the path moves
        self._path = [number]
        return trace

    def step(self, token_id: int) -> StepTrace:
        if not self._path:
            raise EngineError("no prompt yet: prefill before stepping")
        number = self._children.get((self._path[-1], (int(token_id),)))
        if number is None:
            raise EngineError(self._divergence(int(token_id)))
        trace = self._serve(number)
        self._path.append(number)
        return trace

    def truncate(self, length: int) -> None:
        prompt_length = len(self.session.forwards[self._path[0]].input_ids) if self._path else 0
        if length < prompt_length or length > self.context_length:
            raise EngineError(
                f"cannot truncate to {length} tokens: the cache holds {self.context_length}"
                f" of which {prompt_length} are the prompt"
            )
        while self.context_length > length:
            self._path.pop()

    def _divergence(self, token_id: int) -> str:
        step_number = len(self._path) - 1
        recorded = sorted(
            {
                forward.input_ids[0]
                for (parent, _), number in self._children.items()
                if parent == self._path[-1]
                for forward in [self.session.forwards[number]]
            }
        )
        was = (
            f"the recording fed {', '.join(repr(self.token_info(t).text) for t in recorded[:3])} here"
            if recorded
            else "the recording stopped here"
        )
        return (
            f"the run has diverged from the recording at step {step_number} ({was}, not "
            f"{self.token_info(token_id).text!r}): re-sampling still works, but stepping past the divergence "
            "needs the live model"
        )

    def prefer_forward(self, number: int | None) -> None:
        """Serve recorded forward `number` (rather than the first one over the same context) when it comes up."""
        self._preferred = number

    def _serve(self, number: int) -> StepTrace:
        self.forward_calls += 1
        preferred = self._preferred
        if preferred is not None and self._canonical[preferred] == number:
            number = preferred
        try:
            trace = self.session.forwards[number].trace(attention_rows=self.capture.attention)
        except SessionFormatError as error:
            raise EngineError(f"the recording is damaged, so it cannot be replayed past here: {error}") from None
        capture = self.capture
        changes: _TraceTrim = {}
        if not capture.attention:
            changes["attention"] = changes["attention_sink"] = None
        elif trace.attention is not None and trace.attention.shape[2] > capture.prefill_attention_rows:
            drop = trace.attention.shape[2] - capture.prefill_attention_rows
            changes["attention"] = trace.attention[:, :, drop:, :]
            changes["attention_query_start"] = trace.attention_query_start + drop
            if trace.attention_sink is not None:
                changes["attention_sink"] = trace.attention_sink[:, :, drop:]
        if not capture.hidden_states:
            changes["hidden_norms"] = None
        if not capture.kv_cache:
            changes["kv"] = None
        if not capture.router:
            changes["router"] = None
        return dataclasses.replace(trace, **changes) if changes else trace

    # ------------------------------------------------------- recording marks
    def _recorded_samples(self, step_index: int) -> list[RecordedStep]:
        try:
            return self._samples.get(self._path[step_index], [])
        except IndexError:
            return []

    def recorded_choices(self, step_index: int = -1) -> tuple[int, ...]:
        """Tokens the recording sampled at step `step_index` of the current run, in recorded order."""
        return tuple(step.token_id for step in self._recorded_samples(step_index))

    def recorded_config(self, step_index: int = -1) -> SamplerConfig | None:
        """Knobs of the recording's last sample at that step (a view can offer them to reproduce the recording)."""
        samples = self._recorded_samples(step_index)
        return samples[-1].config if samples else None

    def matches_recording(self, step_index: int, token_id: int) -> bool:
        """True when the recording sampled `token_id` at that step (a view marks the rest 'diverges')."""
        return int(token_id) in self.recorded_choices(step_index)


def replay_engine_factory(
    path: str | Path, *, session: Session | None = None
) -> Callable[[Callable[[str, float | None], None]], ReplayEngine]:
    """An App engine factory: loads the session (unless given) on the worker thread, reporting progress."""

    def build(progress: Callable[[str, float | None], None]) -> ReplayEngine:
        if session is not None:
            return ReplayEngine(session)
        progress(f"opening {Path(path).name}…", None)
        return ReplayEngine.open(path)

    return build
