"""Prompt attention captured without the L×L matrices: only the kept rows of each layer ever exist at once.

The prompt runs through the cache in two forwards: every row the capture drops goes through the fast
kernel (SDPA, nothing captured), then the kept last rows go through the eager kernel, whose per-layer
weights a forward hook copies into one preallocated [layers, heads, rows, context] buffer as each layer
finishes, so transformers never holds all layers' patterns. The rows kept are capped so that buffer
stays within PREFILL_ATTENTION_BYTES at any context.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers.utils.output_capturing import OutputRecorder

from llmscope import cache_layout
from llmscope.engines.architecture import layer_number
from llmscope.trace import ModelInfo

PREFILL_ATTENTION_BYTES = 256 * 2**20
"""Most bytes the kept prompt attention rows may take ([layers, heads, rows, context] float32)."""
EAGER_CHUNK = 512
"""Prompt rows per forward where the model's fast kernel is eager (bounds its per-layer scores to 512×L)."""
CHUNKABLE_KINDS = frozenset({cache_layout.FULL, cache_layout.SLIDING, cache_layout.MLA})
"""Layer kinds whose caches take a prompt in two forwards with the same result as one."""


def kept_rows(info: ModelInfo, context: int, wanted: int, budget: int = PREFILL_ATTENTION_BYTES) -> int:
    """How many of the prompt's last rows to keep: at most `wanted`, within `budget` bytes, at least one."""
    per_row = max(1, info.num_layers * max(1, info.num_heads) * context * 4)
    return max(1, min(wanted, context, budget // per_row))


def attention_modules(model: Any) -> list[tuple[int, Any, int]]:
    """(layer, module, output index) of every module whose output transformers records as `attentions`."""
    found: dict[int, tuple[int, Any, int]] = {}
    for prefix, owner in model.named_modules():
        specs = (getattr(type(owner), "_can_record_outputs", None) or {}).get("attentions")
        for spec in specs if isinstance(specs, (list, tuple)) else [specs]:
            if spec is None:
                continue
            recorder = spec if isinstance(spec, OutputRecorder) else OutputRecorder(spec, index=1)
            if not isinstance(recorder.target_class, type):
                continue
            wanted_name = "." + (recorder.layer_name or "").strip(".") + "." if recorder.layer_name else None
            for name, module in owner.named_modules(prefix=prefix):
                number = layer_number(name)
                if number is None or not isinstance(module, recorder.target_class) or id(module) in found:
                    continue
                if wanted_name is None or wanted_name in name + ".":
                    found[id(module)] = (number, module, recorder.index)
    return sorted(found.values(), key=lambda entry: entry[0])


@dataclass
class RowCapture:
    """Forward hooks that copy the last `keep` query rows of each layer's eager attention into one buffer."""

    info: ModelInfo
    context: int
    keep: int
    rows: torch.Tensor | None = None
    captured: list[int] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)

    def install(self, modules: list[tuple[int, Any, int]]) -> RowCapture:
        for layer, module, index in modules:
            self._handles.append(module.register_forward_hook(self._hook(layer, index)))
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, layer: int, index: int) -> Any:
        def copy_rows(module: Any, args: Any, output: Any) -> None:
            weights = output[index] if isinstance(output, tuple) and len(output) > index else None
            if not isinstance(weights, torch.Tensor):
                return
            if self.rows is None:
                shape = (self.info.num_layers, int(weights.shape[1]), self.keep, self.context)
                self.rows = torch.zeros(shape, dtype=torch.float32)
            keys, available = int(weights.shape[-1]), int(weights.shape[-2])
            self.rows[layer, :, :, self.context - keys :] = weights[0, :, available - self.keep :, :].float().cpu()
            self.captured.append(layer)

        return copy_rows

    def result(self, *, sinks: bool) -> tuple[np.ndarray | None, int, tuple[int, ...], np.ndarray | None]:
        """(rows [layers, heads, keep, context], first row's position, layers captured, sink weight or None)."""
        first = self.context - self.keep
        if self.rows is None:
            return None, first, (), None
        captured = tuple(sorted(set(self.captured)))
        sink = None
        if sinks:
            sink = torch.zeros(self.rows.shape[:3], dtype=torch.float32)
            for layer in captured:
                sink[layer] = (1.0 - self.rows[layer].sum(dim=-1)).clamp(min=0.0)
        return self.rows.numpy(), first, captured, None if sink is None else sink.numpy()


def can_chunk(kinds: tuple[str, ...]) -> bool:
    """Whether a prompt may go through this model's cache in two forwards (attention-only layer kinds)."""
    return bool(kinds) and all(kind in CHUNKABLE_KINDS for kind in kinds)
