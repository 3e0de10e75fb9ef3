"""The contract every engine meets (live transformers model, replayed session, future remote server).

The TUI, CLI and generation loop talk only to this protocol, so they run the same over any engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from llmscope.trace import Capabilities, CaptureOptions, ModelInfo, StepTrace, TokenInfo

ProgressCallback = Callable[[str, float | None], None]
"""Receives a human message and a completed fraction in [0, 1] (None when unknown)."""


def no_progress(message: str, fraction: float | None) -> None:
    """A ProgressCallback that shows nothing."""


class EngineError(Exception):
    """A request the engine cannot honour (empty prompt, context overflow…); one clear line."""


@runtime_checkable
class Engine(Protocol):
    """Turns token ids into StepTraces one forward pass at a time, keeping a KV cache between calls."""

    info: ModelInfo
    capabilities: Capabilities
    capture: CaptureOptions
    forward_calls: int
    """Forward passes run so far (tests use it to prove re-sampling needs none)."""

    @property
    def context_length(self) -> int:
        """Tokens currently held in the KV cache."""
        ...

    def encode(self, text: str, *, chat: bool = False, system_prompt: str | None = None) -> list[int]:
        """Token ids for a prompt; with chat=True the model's chat template wraps it as a user turn."""
        ...

    def inspect(self, text: str) -> list[TokenInfo]:
        """Tokens of a text with pieces, bytes, offsets and special flags, for the tokenizer inspector."""
        ...

    def token_info(self, token_id: int) -> TokenInfo:
        """Display record of a single token id."""
        ...

    def prefill(self, prompt_ids: Sequence[int]) -> StepTrace:
        """Reset the cache and run the whole prompt; the trace's logits predict the first new token."""
        ...

    def step(self, token_id: int) -> StepTrace:
        """Feed one token after the cached context and return the trace of that forward."""
        ...

    def truncate(self, length: int) -> None:
        """Drop cached tokens beyond `length` (used to rewind)."""
        ...

    def set_capture(self, capture: CaptureOptions) -> None:
        """Change what later forwards capture."""
        ...


EngineFactory = Callable[[ProgressCallback], Engine]
"""Builds an engine (on a worker thread in the TUI), reporting progress through the callback."""
