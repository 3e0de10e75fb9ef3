"""engines/device.py: the device and dtype choice for every machine (CUDA and MPS branches stated as arguments,
not faked), the attention kernel, input placement under a device map, and the figures a benchmark prints."""

from __future__ import annotations

import pytest
import torch

from llmscope.engines.device import (
    DeviceChoice,
    DeviceError,
    Machine,
    choose_device,
    input_device,
    memory_figures,
    placed_device,
    synchronize,
)

CPU_ONLY = Machine(cuda=False, cuda_bf16=False, mps=False)
HOPPER = Machine(cuda=True, cuda_bf16=True, mps=False)
TURING = Machine(cuda=True, cuda_bf16=False, mps=False)  # e.g. a T4: no bf16, so fp16
APPLE = Machine(cuda=False, cuda_bf16=False, mps=True)


@pytest.mark.parametrize(
    ("requested", "machine", "device", "dtype"),
    [
        ("auto", CPU_ONLY, "cpu", torch.float32),
        ("auto", HOPPER, "cuda", torch.bfloat16),
        ("auto", TURING, "cuda", torch.float16),
        ("auto", APPLE, "mps", torch.float16),
        ("cpu", HOPPER, "cpu", torch.float32),
        ("cuda:1", HOPPER, "cuda:1", torch.bfloat16),
        (" CUDA ", HOPPER, "cuda", torch.bfloat16),
        ("mps", APPLE, "mps", torch.float16),
    ],
)
def test_choice_per_machine(requested: str, machine: Machine, device: str, dtype: torch.dtype) -> None:
    choice = choose_device(requested, machine)
    assert choice.device == torch.device(device) and choice.dtype == dtype


@pytest.mark.parametrize(
    ("requested", "machine", "fragment"),
    [
        ("cuda", CPU_ONLY, "no CUDA device"),
        ("cuda:0", APPLE, "no CUDA device"),
        ("mps", HOPPER, "MPS is not available"),
        ("tpu", CPU_ONLY, "expected auto, cpu, cuda, cuda:N or mps"),
        ("cuda:x", HOPPER, "expected auto, cpu, cuda, cuda:N or mps"),
    ],
)
def test_unavailable_or_unknown_devices_are_one_line_value_errors(
    requested: str, machine: Machine, fragment: str
) -> None:
    with pytest.raises(DeviceError, match=fragment) as raised:
        choose_device(requested, machine)
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)  # the CLI's user_errors: exit 2


def test_this_machine_is_detected() -> None:
    machine = Machine.detect()
    assert machine.cuda == torch.cuda.is_available()
    expected = "cuda" if machine.cuda else "mps" if machine.mps else "cpu"
    assert choose_device("auto").device.type == expected


def test_device_map_placement_and_inputs() -> None:
    assert placed_device(0) == torch.device("cuda", 0)
    assert placed_device("disk") == placed_device("cpu") == torch.device("cpu")
    assert placed_device("mps") == torch.device("mps")

    class Split:
        hf_device_map = {"model.embed_tokens": 1, "model.layers.0": 1, "lm_head": "disk"}

    mapped = DeviceChoice(torch.device("cpu"), torch.float32, device_map="auto")
    assert input_device(Split(), mapped) == torch.device("cuda", 1)
    assert input_device(Split(), DeviceChoice(torch.device("cpu"), torch.float32)) == torch.device("cpu")


def test_describe_and_memory_figures_on_cpu() -> None:
    choice = choose_device("cpu", CPU_ONLY)
    assert choice.describe() == "cpu float32" and choice.dtype_name == "float32"
    mapped = DeviceChoice(torch.device("cuda", 0), torch.bfloat16, device_map="auto")
    assert mapped.describe() == "cuda:0 bfloat16 (device map auto)"
    synchronize(choice)  # a no-op on CPU, and never an error
    figures = memory_figures(choice)
    assert set(figures) == {"peak_rss_mib"} and 10 < figures["peak_rss_mib"] < 1_000_000


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_memory_figures() -> None:
    choice = choose_device("cuda")
    block = torch.ones(1024, 1024, device=choice.device)
    synchronize(choice)
    figures = memory_figures(choice)
    assert figures["cuda_allocated_mib"] >= 4 and figures["cuda_peak_mib"] >= figures["cuda_allocated_mib"]
    del block
