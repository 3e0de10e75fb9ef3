"""Demo scripts: a small declarative TOML format for scripted walk-throughs and live talks.

A script is a title, a model and a list of `[[step]]` tables; each step is one press of the
presenter's key and may set the prompt, knobs, generate tokens, focus a pane, select a
layer/head/token and show a caption. Captions are templates filled from the live run
(`{chosen}`, `{top1_p}`, `{kv_bytes}`…), so every number on screen comes from the model.
The whole script is checked before anything runs; errors name the file, line and reason.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from llmscope.demo.template import Field, TemplateError, parse_template
from llmscope.sampler import PRESETS, SamplerConfig, SamplerConfigError

PANES = ("generation", "tokens", "logits", "attention", "kv", "moe", "lens")
PANE_PARTS: dict[str, tuple[str, ...]] = {
    "kv": ("summary", "layers", "growth", "what-if"),
    "moe": ("router", "load", "loss"),
}
"""Parts of a pane that `show` scrolls into view (the widget's PARTS; a test keeps the two lists equal)."""
KNOB_NAMES = tuple(SamplerConfig.__dataclass_fields__)
STEP_KEYS = {
    "caption": str,
    "prompt": str,
    "chat": bool,
    "system": str,
    "knobs": dict,
    "preset": str,
    "generate": int,
    "rewind": int,
    "pane": str,
    "layer": int,
    "head": int,
    "token": int,
    "zoom": bool,
    "wait": bool,
    "show": str,
    "notes": str,
}
TOP_KEYS = {"title": str, "model": str, "description": str, "step": list}
MAX_SCRIPT_BYTES = 2**20
MAX_GENERATE = 512


class DemoScriptError(ValueError):
    """A script problem, phrased as 'FILE:LINE: reason'."""


@dataclass(frozen=True)
class DemoStep:
    """What one press of the presenter's key does, in the order: prompt, preset, knobs, rewind, generate, view."""

    line: int
    caption: str = ""
    prompt: str | None = None
    chat: bool = False
    system: str | None = None
    preset: str | None = None
    knobs: dict[str, Any] = field(default_factory=dict)
    generate: int = 0
    rewind: int = 0
    pane: str | None = None
    layer: int | None = None
    head: int | None = None
    token: int | None = None
    zoom: bool | None = None
    wait: bool = True
    show: str | None = None
    """A part of the pane to scroll into view (PANE_PARTS), so what the caption names is on screen."""
    notes: str = ""
    """Presenter notes: shown only on the presenter's key, never in the caption or an exported slide."""


@dataclass(frozen=True)
class DemoScript:
    """A validated demo: where it came from, its model and its steps."""

    path: Path
    title: str
    model: str
    description: str
    steps: tuple[DemoStep, ...]

    @property
    def needs_lens(self) -> bool:
        """Whether a step shows the Layers pane or a caption names a lens figure: the engine then captures it."""
        return any(
            step.pane == "lens" or any(name.startswith("lens_") for name in caption_fields(step.caption))
            for step in self.steps
        )


# ----------------------------------------------------------------------------------- parsing
def _step_lines(text: str) -> list[int]:
    """1-based line numbers of every `[[step]]` header, in order."""
    return [
        number for number, line in enumerate(text.splitlines(), start=1) if re.match(r"\s*\[\[\s*step\s*\]\]", line)
    ]


def _key_line(text: str, start: int, end: int | None, key: str) -> int:
    """Line of `key =` inside a step's line range (the header line when not found)."""
    lines = text.splitlines()
    for number in range(start, (end or len(lines) + 1)):
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[number - 1]):
            return number
    return start


def load_demo(path: str | Path) -> DemoScript:
    """Read and validate a script; any problem raises DemoScriptError naming the file, line and reason."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_SCRIPT_BYTES:
                raise DemoScriptError(f"{source}: not a demo script (not a regular file of at most 1 MiB)")
            raw = handle.read(status.st_size + 1)
    except OSError as error:
        raise DemoScriptError(f"{source}: cannot read the demo script ({error.strerror or error})") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DemoScriptError(f"{source}:{line}: not valid UTF-8 (byte 0x{raw[error.start]:02x})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = getattr(error, "lineno", None) or _line_from_message(str(error))
        raise DemoScriptError(f"{source}:{line}: not valid TOML ({str(error).split(' (at')[0]})") from error
    return parse_demo(data, text, source)


def _line_from_message(message: str) -> int:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 1


def parse_demo(data: dict[str, Any], text: str, source: Path) -> DemoScript:
    """Check every key, type and value of a parsed script against the format."""
    for key, value in data.items():
        if key not in TOP_KEYS:
            raise DemoScriptError(
                f"{source}:{_key_line(text, 1, None, key)}: unknown key '{key}' "
                f"(allowed at the top: {', '.join(TOP_KEYS)})"
            )
        if not isinstance(value, TOP_KEYS[key]):
            raise DemoScriptError(
                f"{source}:{_key_line(text, 1, None, key)}: '{key}' must be a {TOP_KEYS[key].__name__}"
            )
    for required in ("title", "model"):
        if required not in data:
            raise DemoScriptError(f"{source}:1: missing '{required}' at the top of the script")
    raw_steps = data.get("step", [])
    if not raw_steps:
        raise DemoScriptError(f"{source}:1: the script has no [[step]] tables")
    headers = _step_lines(text)
    steps = []
    for number, raw in enumerate(raw_steps):
        start = headers[number] if number < len(headers) else 1
        end = headers[number + 1] if number + 1 < len(headers) else None
        if not isinstance(raw, dict):
            line = _key_line(text, 1, None, "step")
            raise DemoScriptError(
                f"{source}:{line}: 'step' must be [[step]] tables, not a list of {type(raw).__name__}"
            )
        steps.append(_parse_step(raw, text, source, start, end))
    _check_sequence(steps, source)
    return DemoScript(
        path=source,
        title=data["title"],
        model=data["model"],
        description=data.get("description", ""),
        steps=tuple(steps),
    )


def _parse_step(raw: dict[str, Any], text: str, source: Path, start: int, end: int | None) -> DemoStep:
    def fail(key: str, reason: str) -> DemoScriptError:
        return DemoScriptError(f"{source}:{_key_line(text, start, end, key)}: {reason}")

    for key, value in raw.items():
        if key not in STEP_KEYS:
            raise fail(key, f"unknown key '{key}' in [[step]] (allowed: {', '.join(STEP_KEYS)})")
        expected = STEP_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise fail(
                key, f"'{key}' must be {'an integer' if expected is int else 'a ' + expected.__name__}, got {value!r}"
            )
    if "pane" in raw and raw["pane"] not in PANES:
        raise fail("pane", f"unknown pane '{raw['pane']}' (panes: {', '.join(PANES)})")
    if "show" in raw and raw["show"] not in {part for parts in PANE_PARTS.values() for part in parts}:
        known = ", ".join(f"{pane}: {' '.join(parts)}" for pane, parts in PANE_PARTS.items())
        raise fail("show", f"unknown part '{raw['show']}' to show (parts by pane: {known})")
    if "preset" in raw and raw["preset"] not in PRESETS:
        raise fail("preset", f"unknown preset '{raw['preset']}' (presets: {', '.join(PRESETS)})")
    for key in ("generate", "rewind", "layer", "head", "token"):
        if key in raw and raw[key] < 0:
            raise fail(key, f"'{key}' must be 0 or more, got {raw[key]}")
    if raw.get("generate", 0) > MAX_GENERATE:
        raise fail("generate", f"'generate' is at most {MAX_GENERATE} tokens per step, got {raw['generate']}")
    knobs = raw.get("knobs", {})
    for knob in knobs:
        if knob not in KNOB_NAMES:
            raise fail("knobs", f"unknown knob '{knob}' (knobs: {', '.join(KNOB_NAMES)})")
    try:
        SamplerConfig().with_changes(**knobs)
    except (SamplerConfigError, TypeError) as error:
        raise fail("knobs", f"bad knob value: {error}") from error
    if "prompt" in raw and not raw["prompt"].strip():
        raise fail("prompt", "'prompt' is empty: give the text the model should continue")
    if "caption" in raw:
        try:
            unknown = sorted(set(caption_fields(raw["caption"])) - set(CAPTION_FIELDS))
        except DemoScriptError as error:
            raise fail("caption", str(error)) from None
        if unknown:
            raise fail(
                "caption", f"unknown caption value {{{unknown[0]}}} (known: {', '.join(sorted(CAPTION_FIELDS))})"
            )
    return DemoStep(line=start, knobs=dict(knobs), **{key: value for key, value in raw.items() if key != "knobs"})


def _check_sequence(steps: list[DemoStep], source: Path) -> None:
    """Things only visible across steps: generating before any prompt, rewinding past the first token."""
    generated: int | None = None
    pane: str | None = None
    for step in steps:
        pane = step.pane or pane
        if step.show is not None and step.show not in PANE_PARTS.get(pane or "", ()):
            owner = next(name for name, parts in PANE_PARTS.items() if step.show in parts)
            raise DemoScriptError(
                f"{source}:{step.line}: show = '{step.show}' is a part of the {owner} pane, "
                f"but this step shows {pane or 'no pane'} (set pane = '{owner}')"
            )
        if step.prompt is not None:
            generated = 1
        if (step.generate or step.rewind or step.knobs or step.preset) and generated is None:
            raise DemoScriptError(
                f"{source}:{step.line}: this step needs a prompt first (set 'prompt' in an earlier step)"
            )
        if generated is not None:
            if step.rewind >= generated:
                raise DemoScriptError(
                    f"{source}:{step.line}: rewind {step.rewind} goes past the first token "
                    f"(only {generated} generated by then)"
                )
            generated += step.generate - step.rewind


def caption_fields(template: str) -> list[str]:
    """Field names used in a caption template (llmscope.demo.template: names and bounded widths only)."""
    try:
        return [part.name for part in parse_template(template) if isinstance(part, Field)]
    except TemplateError as error:
        raise DemoScriptError(f"caption is not a valid template: {error}") from None


# ---------------------------------------------------------------------------------- captions
CAPTION_FIELDS = {
    "model": "model name",
    "layers": "decoder layers",
    "heads": "query heads",
    "kv_heads": "KV heads",
    "steps": "tokens generated so far",
    "text": "generated text",
    "chosen": "the token just chosen",
    "chosen_p": "its probability when sampled",
    "chosen_raw_p": "its raw probability",
    "top1": "most likely raw token",
    "top1_p": "its raw probability",
    "top2": "second",
    "top2_p": "its probability",
    "top3": "third",
    "top3_p": "its probability",
    "entropy": "raw entropy (nats)",
    "entropy_final": "entropy after sampling",
    "kept": "tokens left after every stage",
    "kept_top_k": "after top-k",
    "kept_top_p": "after top-p",
    "kept_min_p": "after min-p",
    "vocab": "vocabulary size",
    "knobs": "knob summary",
    "kv_bytes": "KV cache size",
    "kv_tokens": "tokens in the cache",
    "kv_per_token": "KV bytes per token",
    "kv_mha_bytes": "the cache without GQA",
    "kv_mha_ratio": "how many times bigger without GQA",
    "kv_formula": "the KV formula with numbers",
    "sink": "mean attention on the first token",
    "sink_max": "strongest sink weight",
    "sink_head": "its layer/head",
    "busiest_expert": "the most loaded expert and its share",
    "prompt_tokens": "prompt length in tokens",
    "sink_even": "the first token's share under an even spread",
    "head": "the layer/head selected in the attention pane",
    "query": "the newest query token",
    "head_focus": "where the selected head's newest row looks, and whether that is the induction target",
    "head_induction": "the selected head's induction score on this step's rows",
    "best_induction": "the head with the highest induction score, and the score",
    "induction_rows": "query rows whose token occurred earlier (what the induction score averages)",
    "copied": "generated tokens that repeat what followed the same token earlier, of those that could",
    "kv_growth": "how much each step since the prefill added to the cache",
    "gqa_group": "query heads per KV head",
    "experts": "experts per MoE layer",
    "experts_per_token": "experts each token is routed to",
    "lens_token": "the token the logit lens follows (the step's chosen token)",
    "lens_first": "the first layer where the chosen token is the lens's top candidate",
    "lens_settled": "the layer from which it stays the top candidate",
    "lens_mid_layer": "the middle layer's number",
    "lens_mid_top1": "the middle layer's top candidate",
    "lens_mid_top1_p": "its lens probability",
    "lens_mid_rank": "the chosen token's rank at the middle layer",
    "lens_final_p": "the chosen token's probability at the last layer (the model's output)",
    "lens_ranks": "the chosen token's rank at five layers up the stack",
}


def load_shipped_demo(name: str) -> Path | None:
    """Path of a demo shipped in the package (sessions/demos/NAME.toml), or None."""
    folder = _demo_folder()
    candidate = folder / f"{name}.toml" if folder else None
    return candidate if candidate is not None and candidate.is_file() else None


def _demo_folder() -> Path | None:
    """sessions/demos as installed (the `llmscope.sessions` package maps to the repo's sessions/)."""
    try:
        folder = Path(str(resources.files("llmscope.sessions"))) / "demos"
    except ModuleNotFoundError:
        return None
    return folder if folder.is_dir() else None


def shipped_demos() -> list[tuple[str, str, str]]:
    """(name, title, description) of every shipped demo."""
    folder = _demo_folder()
    found = []
    for path in sorted(folder.glob("*.toml")) if folder else []:
        script = load_demo(path)
        found.append((path.stem, script.title, script.description))
    return found


def find_demo(name_or_path: str) -> DemoScript:
    """A shipped demo by name, or a script file by path."""
    path = Path(name_or_path)
    if path.is_file():
        return load_demo(path)
    shipped = load_shipped_demo(name_or_path)
    if shipped is None:
        names = ", ".join(name for name, _, _ in shipped_demos()) or "none shipped"
        raise DemoScriptError(f"{name_or_path}: no such demo file or shipped demo (shipped: {names})")
    return load_demo(shipped)
