"""Hostile demo scripts: caption templates are a closed language, bad files are one FILE:LINE line, and a
step that fails under --export-svg stops the export at once with its file and line (it used to hang 10 min)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope.demo.captions import fill_caption
from llmscope.demo.script import CAPTION_FIELDS, DemoScriptError, load_demo
from llmscope.demo.template import TemplateError, parse_template, render
from llmscope.tui.demo_export import DemoExportError, export_demo_svgs
from llmscope.tui.engine_factory import hf_engine_factory

HEADER = 'title = "t"\nmodel = "tiny-dense"\n'


def write(tmp_path: Path, body: str | bytes) -> Path:
    path = tmp_path / "script.toml"
    path.write_bytes(body.encode() if isinstance(body, str) else body)
    return path


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("{}", "a field needs a name"),
        ("{steps!z}", "conversions like !r are not allowed"),
        ("{steps!r}", "conversions like !r are not allowed"),
        ("{steps:d}", "the only format allowed is a width"),
        ("{model:{model.__class__.__mro__}}", "is not closed"),
        ("{model.__class__}", "no attributes or indexing"),
        ("{text[0]}", "no attributes or indexing"),
        ("{text:>2000000000}", "the only format allowed is a width"),
        ("{text:>200}", "width 200 is above the limit of 80"),
        ("a lone } brace", "a lone '}'"),
        ("{probability}", "unknown caption value {probability}"),
    ],
)
def test_caption_templates_are_refused_at_load_with_file_and_line(tmp_path, caption, reason):
    path = write(tmp_path, HEADER + f'[[step]]\nprompt = "hi"\n\n[[step]]\ncaption = "{caption}"\n')
    with pytest.raises(DemoScriptError) as caught:
        load_demo(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:7:") and reason in message and "\n" not in message, message


def test_allowed_templates_fill_with_names_widths_and_literal_braces():
    filled = render("{{x}} {steps:>4}|{model:^7}|{text}", {"steps": "12", "model": "tiny"})
    assert filled == f"{{x}}   12|{'tiny'.center(7)}|–"
    assert fill_caption("{steps} steps", None) == "– steps"


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        (HEADER.encode() + b'[[step]]\nprompt = "caf\xe9"\n', 4, "not valid UTF-8 (byte 0xe9)"),
        (HEADER + "step = [1, 2]\n", 3, "'step' must be [[step]] tables"),
        (HEADER + '[[step]]\nprompt = "   "\n', 4, "'prompt' is empty"),
    ],
)
def test_broken_scripts_are_one_line_with_file_and_line(tmp_path, body, line, reason):
    path = write(tmp_path, body)
    with pytest.raises(DemoScriptError) as caught:
        load_demo(path)
    assert str(caught.value).startswith(f"{path}:{line}:") and reason in str(caught.value), caught.value
    result = subprocess.run(
        [sys.executable, "-m", "llmscope", "demo", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "300"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_special_file_is_not_read_as_a_script(tmp_path):
    with pytest.raises(DemoScriptError, match="not a regular file"):
        load_demo("/dev/zero")


def test_a_failing_step_stops_the_export_at_once_with_its_line(tmp_path):
    """tiny-dense has no chat template: step 2 fails, and the export says where within seconds."""
    body = HEADER + '[[step]]\nprompt = "Hello"\n\n[[step]]\nprompt = "Hi"\nchat = true\n\n[[step]]\ngenerate = 1\n'
    script = load_demo(write(tmp_path, body))
    started = time.monotonic()
    with pytest.raises(DemoExportError) as caught:
        export_demo_svgs(script, hf_engine_factory("tiny-dense"), tmp_path / "svg", present=False, size=(100, 30))
    assert str(caught.value).startswith(f"{script.path}:6: demo step 2") and "chat template" in str(caught.value)
    assert time.monotonic() - started < 60
    assert [path.name for path in (tmp_path / "svg").iterdir()] == ["01-step.svg"]


# ---------------------------------------------------------------------------------------- fuzz
TEMPLATE_TEXT = st.lists(st.sampled_from([*"{}:!.[]<>^0123456789 abz_", "steps", "model"]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(template=TEMPLATE_TEXT)
def test_any_template_parses_or_is_refused_and_never_formats_beyond_its_bounds(template):
    try:
        parts = parse_template(template, known=set(CAPTION_FIELDS))
    except TemplateError as error:
        assert "\n" not in str(error)
        return
    filled = render(template, {name: "x" * 5 for name in CAPTION_FIELDS})
    assert len(filled) <= len(template) + 80 * len(parts)


STEP_VALUES = st.one_of(
    st.text(max_size=10),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.floats(allow_nan=True, allow_subnormal=False),  # the engines flush denormals process-wide
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["temperature", "top_k", "warmth"]), st.integers(), max_size=2),
)
STEP_KEYS = st.sampled_from(["caption", "prompt", "chat", "knobs", "generate", "rewind", "pane", "layer", "token", "x"])


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + " }"
    return str(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.dictionaries(STEP_KEYS, STEP_VALUES, max_size=4), min_size=1, max_size=3))
def test_any_script_loads_or_is_one_line_with_its_file(tmp_path, steps):
    body = HEADER + "".join(
        "[[step]]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in step.items()) for step in steps
    )
    path = write(tmp_path, body)
    try:
        script = load_demo(path)
    except DemoScriptError as error:
        assert str(error).startswith(f"{path}:") and "\n" not in str(error), error
        return
    for step in script.steps:
        fill_caption(step.caption, None)
