"""Everything device-specific in one place: which device and dtype, which attention kernel, when to synchronise,
how much memory is in use. The rest of the engine asks this module, so a GPU run needs no code change.

The choice logic takes what the machine offers as arguments (defaulting to what torch reports), so its CUDA
and MPS branches are tested on a CPU-only machine without faking torch.cuda.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from typing import Any

import torch

from llmscope.engines import architecture


class DeviceError(ValueError):
    """A device the user asked for that this machine does not have; the message is one line."""


@dataclass(frozen=True)
class DeviceChoice:
    """The torch device and the dtype computation runs in."""

    device: torch.device
    dtype: torch.dtype
    device_map: str | None = None
    """accelerate's placement ("auto", "balanced", …) for a model larger than one device; None: all on `device`."""
    max_memory: dict[str, str] | None = None
    """Per-device caps for device_map, e.g. {"0": "70GiB", "1": "70GiB", "cpu": "100GiB"}."""
    offload_folder: str | None = None
    """Where layers that fit nowhere go (accelerate's disk offload)."""

    @property
    def dtype_name(self) -> str:
        """'bfloat16', 'float16', 'float32'."""
        return str(self.dtype).removeprefix("torch.")

    def describe(self) -> str:
        """One line for a benchmark or a log: 'cuda:0 bfloat16', 'cpu float32 (device map auto)'."""
        placement = f" (device map {self.device_map})" if self.device_map else ""
        return f"{self.device} {self.dtype_name}{placement}"


@dataclass(frozen=True)
class Machine:
    """What the machine offers, as torch reports it (or as a test states it)."""

    cuda: bool
    cuda_bf16: bool
    mps: bool

    @classmethod
    def detect(cls) -> Machine:
        cuda = torch.cuda.is_available()
        mps_backend = getattr(torch.backends, "mps", None)
        return cls(
            cuda=cuda,
            cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
            mps=mps_backend is not None and mps_backend.is_available(),
        )


def choose_device(requested: str = "auto", machine: Machine | None = None) -> DeviceChoice:
    """CUDA, then MPS, then CPU unless the user names one; bf16 on CUDA (fp16 where bf16 is missing), fp16 on MPS,
    float32 on CPU (CPUs here have no fast bf16 matmul, so float32 is faster there; weights are stored in bf16)."""
    machine = machine or Machine.detect()
    name = requested.strip().lower()
    if name == "auto":
        name = "cuda" if machine.cuda else "mps" if machine.mps else "cpu"
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not machine.cuda:
            raise DeviceError(f"--device {requested}: no CUDA device is available on this machine")
        return DeviceChoice(torch.device(name), torch.bfloat16 if machine.cuda_bf16 else torch.float16)
    if name == "mps":
        if not machine.mps:
            raise DeviceError(f"--device {requested}: MPS is not available on this machine")
        return DeviceChoice(torch.device("mps"), torch.float16)
    if name == "cpu":
        return DeviceChoice(torch.device("cpu"), torch.float32)
    raise DeviceError(f"--device {requested}: expected auto, cpu, cuda, cuda:N or mps")


def prepare(choice: DeviceChoice) -> None:
    """Process-wide settings for the device before a load: on CPU, flush denormals (dequantised weights otherwise
    run up to 10× slower)."""
    if choice.device.type == "cpu":
        torch.set_flush_denormal(True)


def fast_attention(model: Any) -> str:
    """The attention kernel for steps whose attention is not captured: SDPA (flash / memory-efficient kernels on
    CUDA) where the model class accepts it, else eager (Gemma 2, gpt-oss and Mamba refuse SDPA)."""
    return "sdpa" if architecture.supports_sdpa(model) else "eager"


def input_device(model: Any, choice: DeviceChoice) -> torch.device:
    """Where input ids go: the chosen device, or under a device map the device of the first placed module."""
    placement = getattr(model, "hf_device_map", None) if choice.device_map else None
    if not placement:
        return choice.device
    return placed_device(next(iter(placement.values())))


def placed_device(where: int | str) -> torch.device:
    """accelerate's placement value as a torch device: 0 → cuda:0; 'disk' and 'cpu' → cpu (offloaded weights are
    brought in by hooks, inputs stay on the CPU)."""
    if isinstance(where, int):
        return torch.device("cuda", where)
    return torch.device("cpu") if where in ("disk", "cpu") else torch.device(where)


def synchronize(choice: DeviceChoice) -> None:
    """Wait for queued GPU work; call only where a time is taken (elsewhere the GPU runs ahead of Python)."""
    if choice.device.type == "cuda" or (choice.device_map and torch.cuda.is_available()):
        torch.cuda.synchronize()
    elif choice.device.type == "mps":
        torch.mps.synchronize()


def memory_figures(choice: DeviceChoice) -> dict[str, float]:
    """Memory in MiB: the process's peak resident set, plus on CUDA the allocator's current and peak bytes."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    figures = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}
    if choice.device.type == "cuda":
        figures["cuda_allocated_mib"] = torch.cuda.memory_allocated(choice.device) / 2**20
        figures["cuda_peak_mib"] = torch.cuda.max_memory_allocated(choice.device) / 2**20
    return figures
