"""Demo scripts: validation with file and line, captions from the live run, headless export of every shipped demo."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmscope.demo.script import DemoScriptError, load_demo, shipped_demos
from llmscope.registry import builtin_model_dir
from llmscope.tui.demo_export import export_demo_svgs
from llmscope.tui.engine_factory import hf_engine_factory

GOOD_HEADER = 'title = "t"\nmodel = "smollm2"\n'


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\n\n[[step]]\npane = "brain"\n', 7, "unknown pane 'brain'"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\nslide = 3\n', 5, "unknown key 'slide'"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\nknobs = { top_p = 1.5 }\n', 5, "top_p=1.5 is invalid"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\nknobs = { warmth = 1 }\n', 5, "unknown knob 'warmth'"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\ngenerate = "many"\n', 5, "'generate' must be an integer"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\ngenerate = 2\n[[step]]\nrewind = 3\n', 6, "goes past the first token"),
        (GOOD_HEADER + "[[step]]\ngenerate = 2\n", 3, "needs a prompt first"),
        (
            GOOD_HEADER + '[[step]]\nprompt = "hi"\ncaption = "p = {probability}"\n',
            5,
            "unknown caption value {probability}",
        ),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\npreset = "spicy"\n', 5, "unknown preset 'spicy'"),
        ('title = "t"\n[[step]]\nprompt = "hi"\n', 1, "missing 'model'"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\npane = "kv"\nshow = "chart"\n', 6, "unknown part 'chart'"),
        (GOOD_HEADER + '[[step]]\nprompt = "hi"\npane = "tokens"\nshow = "what-if"\n', 3, "part of the kv pane"),
        (GOOD_HEADER + '[[step]\nprompt = "hi"\n', 3, "not valid TOML"),
    ],
)
def test_invalid_scripts_are_rejected_with_file_line_and_reason(tmp_path, body, line, reason):
    path = write(tmp_path, body)
    with pytest.raises(DemoScriptError) as caught:
        load_demo(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert reason in message


def test_shipped_demos_are_valid_and_listed():
    names = {name for name, _, _ in shipped_demos()}
    assert {
        "how-sampling-works",
        "attention-sinks-induction",
        "what-an-moe-router-does",
        "why-the-kv-cache-grows",
    } <= names


def test_cli_rejects_a_bad_script_before_loading_a_model(tmp_path):
    from typer.testing import CliRunner

    from llmscope.cli.main import app

    path = write(tmp_path, GOOD_HEADER + '[[step]]\nprompt = "hi"\npane = "brain"\n')
    result = CliRunner().invoke(app, ["demo", str(path)])
    assert result.exit_code == 2 and f"{path}:5: unknown pane 'brain'" in result.output


def run_demo(name: str, tmp_path: Path, model: str | None = None) -> tuple[list[Path], list[str]]:
    from llmscope.demo.script import find_demo

    script = find_demo(name)
    captions: list[str] = []

    def keep_caption(app) -> None:
        original = app.apply_demo_view

        def apply(index: int) -> None:
            original(index)
            captions.append(str(app.query_one("#caption").render()))

        app.apply_demo_view = apply

    paths = export_demo_svgs(
        script,
        hf_engine_factory(model or script.model),
        tmp_path / name,
        present=True,
        size=(120, 36),
        app_hook=keep_caption,
    )
    return paths, captions


@pytest.mark.smollm
@pytest.mark.parametrize("name", ["how-sampling-works", "attention-sinks-induction", "why-the-kv-cache-grows"])
def test_smollm2_demos_run_headless_end_to_end(smollm2_dir, tmp_path, name):
    paths, captions = run_demo(name, tmp_path)
    assert len(paths) == len(load_demo_by_name(name).steps)
    assert all(path.stat().st_size > 10_000 and path.read_text().startswith("<svg") for path in paths)
    assert not any("–" in caption for caption in captions), captions  # every placeholder had a value
    assert not any("{" in caption for caption in captions)


def load_demo_by_name(name: str):
    from llmscope.demo.script import find_demo

    return find_demo(name)


def test_slide_file_names_use_the_captions_words_not_their_placeholders():
    from llmscope.tui.demo_export import _slug

    assert _slug("{kv_tokens} tokens now take {kv_bytes}: {kv_growth}.") == "tokens-now-take"
    assert _slug("{model}") == "step"


def test_kv_demo_captions_state_the_measured_numbers(smollm2_dir, tmp_path):
    """The KV demo's captions quote the cache the engine measured, not a typed-in figure."""
    paths, captions = run_demo("why-the-kv-cache-grows", tmp_path)
    assert not any(
        field.replace("_", "-") in path.name for path in paths for field in ("kv_tokens", "kv_bytes", "steps")
    )
    # SmolLM2 on CPU: float32 cache, 2 × 30 layers × 3 kv heads × 64 dims × 4 bytes = 46,080 B per token.
    assert "45.0 KiB" in captions[1]
    assert "3×" in captions[3]  # 9 query heads / 3 KV heads


@pytest.mark.skipif(builtin_model_dir("tiny-moe") is None, reason="tiny-moe is not shipped in this build")
def test_moe_demo_runs_on_tiny_moe(tmp_path):
    paths, captions = run_demo("what-an-moe-router-does", tmp_path)
    assert len(paths) == 4 and "expert" in captions[0]


@pytest.mark.smollm
def test_replaying_the_recorded_demo_gives_the_same_screenshots(smollm2_dir, tmp_path):
    """--record saves the session as the demo plays; playing the demo over that recording draws the same screens."""
    from llmscope.demo.script import find_demo
    from llmscope.session.replay import replay_engine_factory

    script = find_demo("why-the-kv-cache-grows")
    recording = tmp_path / "kv.llmscope"
    live = export_demo_svgs(
        script, hf_engine_factory("smollm2"), tmp_path / "live", present=False, size=(140, 40), record_path=recording
    )
    replayed = export_demo_svgs(
        script,
        replay_engine_factory(recording),
        tmp_path / "replay",
        present=False,
        size=(140, 40),
        app_hook=lambda app: setattr(app, "show_replay_note", False),
    )
    assert [path.name for path in live] == [path.name for path in replayed]
    for live_svg, replay_svg in zip(live, replayed):
        assert live_svg.read_text() == replay_svg.read_text(), f"{live_svg.name} differs on replay"
