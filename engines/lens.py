"""The logit lens with the model's own modules: each layer's residual stream → final norm → unembedding.

transformers returns `hidden_states` as the embedding output, then each decoder layer's output, with the
last entry replaced by the final-normed state the head reads; so every entry but the last is normed here
and the last one is not normed twice. The head is reproduced with the family's own output scaling (Cohere's
logit_scale, Granite's logits_scaling, Falcon-H1's multiplier, Gemma's final soft-cap) and checked against the model's logits once:
a model whose head this cannot reproduce is refused with the reason, rather than shown wrongly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from llmscope.engine_api import EngineError
from llmscope.lens import LogitLens, from_log_probs

FINAL_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f", "norm_f", "final_norm")
"""Attribute names of the final norm on the decoder stack, across the families transformers ships."""

OUTPUT_MULTIPLIERS = (("model", "logit_scale"), ("config", "lm_head_multiplier"), ("config", "output_multiplier"))
"""Factors families multiply their head's logits by (Cohere's logit_scale on the model; Falcon-H1's and Muse's
multipliers in the config); Granite divides by `logits_scaling`, Gemma and others soft-cap (both below)."""

HEAD_TOLERANCE = 1e-3
"""Largest |lens − model| logit difference, relative to the logits' scale, accepted for the last layer."""


def _decoder(model: Any) -> Any:
    getter = getattr(model, "get_decoder", None)
    decoder = getter() if callable(getter) else None
    return decoder if decoder is not None else getattr(model, "base_model", model)


def final_norm(model: Any) -> torch.nn.Module | None:
    """The decoder's final norm module (the one whose output the head reads), or None when none is found."""
    decoder = _decoder(model)
    for owner in (decoder, getattr(decoder, "decoder", None), getattr(model, "model", None)):
        for name in FINAL_NORM_NAMES:
            module = getattr(owner, name, None) if owner is not None else None
            if isinstance(module, torch.nn.Module):
                return module
    return None


class LensHead:
    """Applies final norm and unembedding to stacked residual states, exactly as the model's head would."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.norm = final_norm(model)
        self.head = model.get_output_embeddings()
        config = model.config.get_text_config()
        self.scale = 1.0
        for owner, name in OUTPUT_MULTIPLIERS:
            value = getattr(model if owner == "model" else config, name, None)
            self.scale *= float(value) if isinstance(value, (int, float)) and value else 1.0
        self.divide = float(getattr(config, "logits_scaling", None) or 1.0)
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.verified: bool | None = None
        """None until the first capture compares the last layer with the model's own logits."""

    @property
    def refusal(self) -> str | None:
        """Why this model gets no lens, or None."""
        if self.norm is None:
            return "llmscope found no final norm on this model's decoder, so it cannot apply the logit lens"
        if self.head is None:
            return "this model has no output embedding (unembedding) to apply the logit lens with"
        if self.verified is False:
            return "the lens's last layer did not reproduce this model's logits, so its other layers would mislead"
        return None

    def logits(self, states: torch.Tensor, *, normed_last: bool) -> torch.Tensor:
        """float32 [rows, vocab] head logits of [rows, hidden] residual states (the last one already normed)."""
        assert self.norm is not None and self.head is not None
        weight_device = self.head.weight.device
        states = states.to(weight_device)
        normed = self.norm(states[:-1] if normed_last else states)
        if normed_last:
            normed = torch.cat([normed, states[-1:]])
        logits = self.head(normed.to(self.head.weight.dtype)).float()
        logits = logits * self.scale / self.divide
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def capture(self, hidden_states: Sequence[torch.Tensor], model_logits: torch.Tensor) -> LogitLens:
        """The lens of one forward's last position; the first call checks the last layer against `model_logits`."""
        if self.refusal:
            raise EngineError(self.refusal)
        home = self.head.weight.device
        with torch.inference_mode():
            states = torch.stack([state[0, -1].to(home) for state in hidden_states])
            logits = self.logits(states, normed_last=True)
            if self.verified is None:
                self.verified = _matches(logits[-1], model_logits.float().to(home))
                if not self.verified:
                    raise EngineError(self.refusal or "logit lens refused")
            log_probs = torch.log_softmax(logits, dim=-1).cpu().numpy().astype(np.float32)
        return from_log_probs(log_probs)


def _matches(lens_last: torch.Tensor, model_logits: torch.Tensor) -> bool:
    scale = float(model_logits.abs().max().clamp(min=1.0))
    return bool((lens_last - model_logits).abs().max() <= HEAD_TOLERANCE * scale)
