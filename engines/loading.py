"""Load a resolved model and tokenizer with transformers, converting the embedded GGUF once.

The SmolLM2 GGUF is dequantised and saved as bf16 safetensors in the user cache on first use
(about 15 s), so later loads take well under two seconds. Progress goes to a callback so the
CLI and the TUI can each show it their own way.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
from transformers.utils import logging as hf_logging

from llmscope.engine_api import ProgressCallback, no_progress
from llmscope.engines.device import DeviceChoice
from llmscope.registry import ModelSpec, converted_dir

hf_logging.disable_progress_bar()  # progress is reported through our own callback instead

MODEL_LOAD_LOCK = threading.RLock()
"""Held around every model construction (load, conversion, from_config).

transformers builds weights on the meta device with process-global patches while it loads, so a
second load (or any module construction) on another thread at the same time ends with "Cannot copy
out of meta tensor". Re-entrant, because a load may convert the GGUF first.
"""


class ModelLoadError(Exception):
    """A model that exists but cannot be loaded; the message is one clear line."""


def ensure_converted(spec: ModelSpec, progress: ProgressCallback = no_progress) -> Path:
    """Return a Hugging Face directory for the spec, converting a GGUF into the cache first if needed.

    The conversion is written to a temporary sibling directory and renamed into place, so an
    interrupted conversion never leaves a half-written model behind.
    """
    if spec.kind != "gguf":
        return spec.path
    with MODEL_LOAD_LOCK:
        return _convert_gguf(spec, progress)


def _convert_gguf(spec: ModelSpec, progress: ProgressCallback) -> Path:
    target = converted_dir(spec)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    progress(f"Converting {spec.path.name} to safetensors (one time, ~15 s)…", 0.0)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path.parent), gguf_file=spec.path.name)
    progress("Dequantising GGUF weights…", 0.2)
    model = AutoModelForCausalLM.from_pretrained(
        str(spec.path.parent),
        gguf_file=spec.path.name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(dequantize=True),
    )
    progress("Saving bf16 safetensors to the cache…", 0.8)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    progress(f"Converted in {time.perf_counter() - started:.1f} s → {target}", 1.0)
    return target


def load_problem(error: BaseException) -> str:
    """One line for a load failure; a folder that needs its own code is told about --trust-remote-code."""
    text = str(error).strip()
    if "trust_remote_code" in text or "custom code" in text:
        return (
            "its config asks to run the folder's own Python code; add --trust-remote-code if you trust "
            "that code (it runs with your permissions)"
        )
    if "does not recognize this architecture" in text:
        return (
            f"{text.split('.')[0]} (a newer transformers may know it; a folder that ships its own modeling code "
            "needs --trust-remote-code)"
        )
    if "ignore_mismatched_sizes" in text:
        return "the weights' shapes do not match config.json (a tensor is another size than the config implies)"
    first = text.splitlines()[0] if text else type(error).__name__
    return first if isinstance(error, (OSError, ValueError)) else f"{type(error).__name__}: {first}"


def load_tokenizer(
    spec: ModelSpec, *, trust_remote_code: bool = False, progress: ProgressCallback = no_progress
) -> Any:
    """Only the tokenizer (converting the GGUF first if needed), for the tokenizer inspector."""
    directory = ensure_converted(spec, progress)
    try:
        with MODEL_LOAD_LOCK:
            return AutoTokenizer.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
    except Exception as error:  # noqa: BLE001 - whatever a broken folder raises, the user gets one line
        raise ModelLoadError(
            f"could not load the tokenizer of '{spec.name}' from {directory}: {load_problem(error)}"
        ) from error


def load_model_and_tokenizer(
    spec: ModelSpec,
    device: DeviceChoice,
    *,
    eager_attention: bool,
    trust_remote_code: bool = False,
    progress: ProgressCallback = no_progress,
) -> tuple[Any, Any]:
    """Load weights and tokenizer offline; errors become ModelLoadError with the cause in one line."""
    with MODEL_LOAD_LOCK:
        directory = ensure_converted(spec, progress)
        return _load_converted(spec, directory, device, eager_attention, trust_remote_code, progress)


def _from_pretrained(directory: Path, device: DeviceChoice, attention: str, trust_remote_code: bool) -> Any:
    placement: dict[str, Any] = {}
    if device.device_map:
        placement = {"device_map": device.device_map, "max_memory": _max_memory(device.max_memory)}
        placement["offload_folder"] = device.offload_folder
    return AutoModelForCausalLM.from_pretrained(
        str(directory),
        dtype=device.dtype,
        attn_implementation=attention,
        trust_remote_code=trust_remote_code,
        **placement,
    )


def _max_memory(caps: dict[str, str] | None) -> dict[int | str, str] | None:
    """accelerate wants GPU indices as ints ("0" → 0) and "cpu"/"disk"/"mps" as names."""
    if not caps:
        return None
    return {int(key) if key.isdigit() else key: value for key, value in caps.items()}


def _load_converted(
    spec: ModelSpec,
    directory: Path,
    device: DeviceChoice,
    eager_attention: bool,
    trust_remote_code: bool,
    progress: ProgressCallback,
) -> tuple[Any, Any]:
    progress(f"Loading {spec.name} on {device.device.type} ({device.dtype_name})…", None)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=trust_remote_code)
        try:
            model = _from_pretrained(directory, device, "eager" if eager_attention else "sdpa", trust_remote_code)
        except ValueError as refused:
            if "scaled_dot_product_attention" not in str(refused):
                raise
            # Gemma 2, gpt-oss and Mamba refuse SDPA: the eager kernel computes the same thing, only slower.
            model = _from_pretrained(directory, device, "eager", trust_remote_code)
    except Exception as error:  # noqa: BLE001 - truncated weights, mismatched shapes…: one line, not a traceback
        raise ModelLoadError(f"could not load model '{spec.name}' from {directory}: {load_problem(error)}") from error
    if not device.device_map:
        model.to(device.device)
    model.eval()
    return model, tokenizer
