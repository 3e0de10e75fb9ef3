"""--device-map, --max-memory and --offload-folder: a model larger than one device, spread by accelerate.

The values are checked here, before torch is imported, so a typo costs one line and exit status 2 rather
than a model load. HFEngine.load receives them as keyword arguments (device_map, max_memory, offload_folder).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from llmscope.cli.common import fail

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
"""accelerate's placement strategies (transformers' device_map strings)."""

SIZE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>GiB|MiB|KiB|GB|MB|KB)$", re.IGNORECASE)
UNITS = {"gib": 2**30, "mib": 2**20, "kib": 2**10, "gb": 10**9, "mb": 10**6, "kb": 10**3}

DeviceMapOption = Annotated[
    str | None,
    typer.Option(
        "--device-map",
        help="auto: spread a model larger than one device over the GPUs, then CPU memory, then disk (accelerate); "
        "also balanced, balanced_low_0, sequential.",
        show_default=False,
    ),
]
MaxMemoryOption = Annotated[
    list[str] | None,
    typer.Option(
        "--max-memory",
        help="Cap for one device under --device-map, DEVICE=SIZE: a GPU index, cpu or mps, and a size such as "
        "70GiB or 500MB. Repeat it per device: --max-memory 0=70GiB --max-memory cpu=100GiB.",
        show_default=False,
    ),
]
OffloadFolderOption = Annotated[
    Path | None,
    typer.Option(
        "--offload-folder",
        help="Folder for the layers that fit no --max-memory cap (disk offload, slow); created if missing.",
        show_default=False,
    ),
]


class Placement(TypedDict, total=False):
    """HFEngine.load's placement keywords."""

    device_map: str
    max_memory: dict[str, str]
    offload_folder: str


def size_bytes(text: str) -> int:
    """'70GiB' → 75161927680; ValueError (one line) for anything accelerate would not read the same way."""
    match = SIZE.match(text.strip())
    if not match:
        raise ValueError(f"size {text!r}: expected a number and a unit such as 70GiB, 512MiB or 8GB")
    return int(float(match["number"]) * UNITS[match["unit"].lower()])


def parse_max_memory(entries: list[str]) -> dict[str, str]:
    """['0=70GiB', 'cpu=2GiB'] → {'0': '70GiB', 'cpu': '2GiB'}; 'cuda:1' is written as its index, '1'."""
    caps: dict[str, str] = {}
    for entry in entries:
        device, separator, size = entry.partition("=")
        device = device.strip().lower().removeprefix("cuda:")
        if not separator or not device or not size.strip():
            raise ValueError(f"--max-memory {entry!r}: expected DEVICE=SIZE, e.g. 0=70GiB or cpu=2GiB")
        if not (device.isdigit() or device in ("cpu", "mps")):
            raise ValueError(f"--max-memory {entry!r}: the device is a GPU index (0, 1, …), cpu or mps")
        if device in caps:
            raise ValueError(f"--max-memory names {device} twice")
        if size_bytes(size) <= 0:
            raise ValueError(f"--max-memory {entry!r}: the size must be above zero")
        caps[device] = size.strip()
    return caps


def placement(device_map: str | None, max_memory: list[str] | None, offload_folder: Path | None) -> Placement:
    """The checked placement keywords; a bad value fails with one line and exit status 2."""
    if device_map is None:
        given = "--max-memory" if max_memory else "--offload-folder" if offload_folder else None
        if given:
            fail(f"{given} applies to a device map: add --device-map auto")
        return {}
    if device_map.strip().lower() not in DEVICE_MAPS:
        fail(f"--device-map {device_map!r}: expected one of {', '.join(DEVICE_MAPS)}")
    chosen: Placement = {"device_map": device_map.strip().lower()}
    if max_memory:
        try:
            chosen["max_memory"] = parse_max_memory(max_memory)
        except ValueError as error:
            fail(str(error))
    if offload_folder is not None:
        folder = offload_folder.expanduser()
        if folder.exists() and not folder.is_dir():
            fail(f"--offload-folder {offload_folder}: exists and is not a folder")
        chosen["offload_folder"] = str(folder)
    return chosen
