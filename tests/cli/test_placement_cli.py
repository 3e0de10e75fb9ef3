"""--device-map, --max-memory, --offload-folder from the command line: bad values are one line and exit 2; a tiny
model forced across CPU and disk by the flags generates exactly what the unsplit model does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from llmscope.cli.main import app
from llmscope.cli.placement import parse_max_memory, size_bytes

runner = CliRunner()


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--device-map", "everywhere"], "expected one of auto, balanced, balanced_low_0, sequential"),
        (["--max-memory", "cpu=2GiB"], "--max-memory applies to a device map: add --device-map auto"),
        (["--offload-folder", "/tmp"], "--offload-folder applies to a device map"),
        (["--device-map", "auto", "--max-memory", "cpu"], "expected DEVICE=SIZE"),
        (["--device-map", "auto", "--max-memory", "gpu=1GiB"], "a GPU index (0, 1, …), cpu or mps"),
        (["--device-map", "auto", "--max-memory", "cpu=lots"], "expected a number and a unit"),
        (["--device-map", "auto", "--max-memory", "0=70"], "expected a number and a unit"),
        (["--device-map", "auto", "--max-memory", "cpu=0GiB"], "above zero"),
        (["--device-map", "auto", "--max-memory", "cpu=1GiB", "--max-memory", "cpu=2GiB"], "names cpu twice"),
    ],
)
@pytest.mark.parametrize("command", [["generate", "hi"], ["compare", "hi", "ho"], ["lens", "hi"], ["tui"]])
def test_bad_placement_is_one_line_and_status_2(command: list[str], flags: list[str], fragment: str) -> None:
    result = runner.invoke(app, [*command, "--model", "tiny-dense", *flags])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_offload_folder_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["generate", "hi", "--model", "tiny-dense", "--device-map", "auto", "--offload-folder", str(blocker)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "exists and is not a folder" in result.output


def test_sizes_read_as_accelerate_reads_them() -> None:
    from accelerate.utils import convert_file_size_to_int

    for text in ("70GiB", "1.5GiB", "512MiB", "900KiB", "8GB", "250MB", "64KB", "2gib"):
        assert size_bytes(text) == convert_file_size_to_int(text), text
    assert parse_max_memory(["cuda:1=70GiB", "CPU=2GiB", "0=10GB"]) == {"1": "70GiB", "cpu": "2GiB", "0": "10GB"}


def test_unavailable_device_is_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["generate", "hi", "--model", "tiny-dense", "--device", "cuda:0"])
    assert result.exit_code == 2 and "no CUDA device is available" in result.output


def generate_json(monkeypatch: pytest.MonkeyPatch, model: str, *flags: str) -> tuple[dict[str, Any], Any]:
    """Run `generate --json` in-process and return its output and the engine it loaded."""
    from llmscope.engines.hf import HFEngine

    loaded = []
    original = HFEngine.load.__func__  # type: ignore[attr-defined]

    def spy(cls: type[HFEngine], *args: Any, **kwargs: Any) -> HFEngine:
        engine = original(cls, *args, **kwargs)
        loaded.append(engine)
        return engine

    monkeypatch.setattr(HFEngine, "load", classmethod(spy))
    args = ["generate", "The quick brown fox", "--model", model, "--steps", "4", "--temperature", "0", "--json"]
    result = runner.invoke(app, [*args, *flags])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), loaded[0]


@pytest.mark.parametrize("model", ["tiny-dense", "tiny-moe"])
def test_split_across_cpu_and_disk_generates_the_same(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str
) -> None:
    whole, engine = generate_json(monkeypatch, model)
    weights = sum(parameter.numel() * parameter.element_size() for parameter in engine.model.parameters())
    cap = f"{weights * 9 // 10 // 1024}KiB"  # 90% of the weights in CPU memory: the rest must go to disk
    flags = ("--device-map", "auto", "--max-memory", f"cpu={cap}", "--offload-folder", str(tmp_path / "offload"))
    split, split_engine = generate_json(monkeypatch, model, *flags)
    assert {"cpu", "disk"} <= set(split_engine.model.hf_device_map.values()), split_engine.model.hf_device_map
    assert [step["token"]["id"] for step in split["steps"]] == [step["token"]["id"] for step in whole["steps"]]
    for mine, theirs in zip(split["steps"], whole["steps"], strict=True):
        np.testing.assert_allclose(
            [c["logit"] for c in mine["candidates"]], [c["logit"] for c in theirs["candidates"]], atol=1e-5
        )
        assert (mine["kv_bytes"], mine["kv_tokens"]) == (theirs["kv_bytes"], theirs["kv_tokens"])
        assert mine["hidden_norm_final"] == pytest.approx(theirs["hidden_norm_final"], rel=1e-5)
        if model == "tiny-moe":
            assert mine["routing"]["experts"] == theirs["routing"]["experts"]
            np.testing.assert_allclose(mine["routing"]["weights"], theirs["routing"]["weights"], atol=1e-6)


def test_logit_lens_of_a_split_model(tmp_path: Path) -> None:
    """The lens applies the final norm and head that accelerate placed on disk; every layer's guess is unchanged."""
    args = ["lens", "The quick brown fox", "--model", "tiny-dense", "--steps", "2", "--json"]
    whole = runner.invoke(app, args)
    flags = ["--device-map", "auto", "--max-memory", "cpu=5000KiB", "--offload-folder", str(tmp_path / "offload")]
    split = runner.invoke(app, [*args, *flags])  # tiny-dense holds ~6 MB of float32 weights: some go to disk
    assert whole.exit_code == 0 and split.exit_code == 0, split.output
    for mine, theirs in zip(json.loads(split.stdout)["steps"], json.loads(whole.stdout)["steps"], strict=True):
        assert mine["chosen"] == theirs["chosen"]
        for layer, reference in zip(mine["layers"], theirs["layers"], strict=True):
            assert [t["id"] for t in layer["top"]] == [t["id"] for t in reference["top"]]
            np.testing.assert_allclose(
                [t["prob"] for t in layer["top"]], [t["prob"] for t in reference["top"]], atol=1e-5
            )


def test_the_table_header_says_where_the_layers_went(tmp_path: Path) -> None:
    flags = ["--device-map", "auto", "--max-memory", "cpu=5000KiB", "--offload-folder", str(tmp_path / "offload")]
    result = runner.invoke(app, ["generate", "hello world", "--model", "tiny-dense", "--steps", "1", *flags])
    assert result.exit_code == 0, result.output
    assert "(device map auto: cpu, disk)" in result.stdout
    plain = runner.invoke(app, ["generate", "hello world", "--model", "tiny-dense", "--steps", "1"])
    assert "device map" not in plain.stdout
