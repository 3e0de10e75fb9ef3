"""Engine construction for the TUI: a factory the load worker calls, so torch is imported off the UI thread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmscope.engine_api import Engine, EngineFactory, ProgressCallback


def hf_engine_factory(
    model: str,
    device: str = "auto",
    trust_remote_code: bool = False,
    attention_rows: int = 256,
    *,
    logit_lens: bool = False,
    placement: Mapping[str, Any] | None = None,
) -> EngineFactory:
    """A factory that imports torch and loads `model` only when the worker calls it (`logit_lens`: capture it;
    `placement`: device_map, max_memory, offload_folder for HFEngine.load)."""

    def build(progress: ProgressCallback) -> Engine:
        progress("importing torch and transformers…", None)
        from llmscope.engines.hf import HFEngine
        from llmscope.trace import CaptureOptions

        return HFEngine.load(
            model,
            device=device,
            trust_remote_code=trust_remote_code,
            progress=progress,
            capture=CaptureOptions(prefill_attention_rows=attention_rows, logit_lens=logit_lens),
            **(placement or {}),
        )

    return build
