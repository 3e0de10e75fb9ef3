"""What every command shares: consoles, option types, one-line errors (exit 2), engine loading."""

import json
import os
import sys
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypedDict, TypeVar, Unpack

import typer
from rich.console import Console
from rich.markup import escape

from llmscope.format import printable_text, visible_token_text
from llmscope.registry import resolve
from llmscope.sampler_config import SamplerConfig, preset

if TYPE_CHECKING:
    from llmscope.engines.hf import HFEngine

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Registry name (smollm2, tiny-dense, tiny-moe), a local model directory, or a hub id already in the local HF cache.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
]


class StageOrder(str, Enum):
    hf = "hf"
    llama_cpp = "llama.cpp"


def fail(message: str) -> NoReturn:
    """Print one clear line and exit with status 2 (the convention for bad input)."""
    err.print(f"[bold red]error:[/] {markup_safe(message)}", soft_wrap=True)
    raise typer.Exit(2)


def markup_safe(text: str) -> str:
    """Text from a user or a file, for a Rich markup string: '[/x]' stays literal and control characters
    (ESC, OSC…) are shown as glyphs, never sent to the terminal."""
    from llmscope.format import printable_text

    return escape(printable_text(text))


def valid_text(text: str, what: str) -> str:
    """Fail (one line, exit 2) when text from the command line is not valid UTF-8: a stray byte reaches Python
    as a lone surrogate, which no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        found = f"the byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"a lone surrogate U+{code:04X}"
        fail(f"{what} is not valid UTF-8 text: {found} at character {error.start}")
    return text


def valid_prompt(text: str, what: str = "the prompt") -> str:
    """Fail (one line, exit 2) before any model loads when a prompt is empty or not valid UTF-8."""
    if not text.strip():
        fail("empty prompt: give some text for the model to continue")
    return valid_text(text, what)


def check_save_path(path: Path, option: str) -> None:
    """Fail now (one line, exit 2) when a save to `path` could not succeed, before any model work is done."""
    from llmscope.atomic_write import UnsafeTargetError, check_writable

    try:
        check_writable(path)
    except UnsafeTargetError as error:
        fail(f"{option}: {error}")


def check_record_path(path: Path | None, overwrite: bool) -> None:
    """--record never replaces an existing file silently: it needs --overwrite (and a writable target)."""
    if path is None:
        return
    if path.expanduser().exists() and not overwrite:
        fail(f"--record {path}: the file exists; add --overwrite to replace it, or record to another file")
    check_save_path(path, "--record")


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Let --record replace an existing file (otherwise it refuses).")
]


USER_ERRORS = {
    "llmscope.registry": "ModelNotFoundError",
    "llmscope.sampler_config": "SamplerConfigError",
    "llmscope.engine_api": "EngineError",
    "llmscope.session.codec": "SessionFormatError",
    "llmscope.engines.loading": "ModelLoadError",
}
"""Module → the error class of user mistakes it raises (besides ValueError and FileNotFoundError)."""


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is a known kind of user error. A class is looked up only in a module already imported: an
    error can only come from one, and importing the others here would cost start-up (the loader pulls in torch)."""
    known: list[type[BaseException]] = [ValueError, FileNotFoundError]
    for module_name, class_name in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        if module is not None:
            known.append(getattr(module, class_name))
    return isinstance(error, tuple(known))


def user_errors(action: Callable[[], T]) -> T:
    """Run `action`, turning every known kind of user error into one line and exit status 2."""
    try:
        return action()
    except (typer.Exit, typer.Abort, typer.TyperException):  # typer's own usage errors print themselves
        raise
    except Exception as error:
        if is_user_error(error):
            fail(str(error))
        if DEBUG.enabled:
            raise
        fail(unexpected_error_line(error))


class DEBUG:
    """Set by the global --debug option (or LLMSCOPE_DEBUG=1): unexpected errors show their traceback."""

    enabled = os.environ.get("LLMSCOPE_DEBUG", "") not in ("", "0")


def unexpected_error_line(error: BaseException) -> str:
    """One line for an error nobody anticipated: its type and first line, and how to see more."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first} (run with --debug for the traceback)".replace(":  (", " (")


def progress_printer(json_mode: bool) -> Callable[[str, float | None], None]:
    """Loading progress on stderr, so --json output on stdout stays clean."""

    def report(message: str, fraction: float | None) -> None:
        suffix = f" [{fraction:.0%}]" if fraction is not None else ""
        err.print(f"[dim]{markup_safe(message)}{suffix}[/]")

    return report


class CaptureSettings(TypedDict, total=False):
    """CaptureOptions' fields as keyword arguments (llmscope.trace is imported only once a model loads)."""

    attention: bool
    hidden_states: bool
    kv_cache: bool
    router: bool
    logit_lens: bool
    prefill_attention_rows: int


def load_engine(
    model: str,
    device: str,
    json_mode: bool,
    trust_remote_code: bool = False,
    placement: Mapping[str, Any] | None = None,
    **capture: Unpack[CaptureSettings],
) -> "HFEngine":
    """Resolve and load a model (resolution errors come before the slow torch import); `placement` holds the
    checked --device-map, --max-memory and --offload-folder (llmscope.cli.placement)."""
    resolve(model)
    try:
        from llmscope.engines.hf import HFEngine
    except ImportError as missing:
        fail(f"running a model needs torch and transformers ({missing}); run scripts/setup.sh")
    from llmscope.trace import CaptureOptions

    return HFEngine.load(
        model,
        device=device,
        capture=CaptureOptions(**capture),
        progress=progress_printer(json_mode),
        trust_remote_code=trust_remote_code,
        **(placement or {}),
    )


def visible(text: str | bytes) -> str:
    """A token's text (or raw bytes) quoted, spelled as on every screen by llmscope.format ('␣Paris', '⏎', '‹e6›')."""
    return f"'{visible_token_text(text)}'"


def quoted_prompt(text: str) -> str:
    """A prompt on one line in double quotes: newlines and tabs as JSON escapes, other controls as format's glyphs."""
    return json.dumps(printable_text(text), ensure_ascii=False)


PromptOption = Annotated[str, typer.Option("--prompt", help="Prompt the playground starts with.")]
TrustOption = Annotated[
    bool,
    typer.Option("--trust-remote-code", help="Allow a local model folder's own Python code to run (off by default)."),
]
AttentionRowsOption = Annotated[
    int,
    typer.Option(
        "--attention-rows", min=1, max=8192, help="Prompt rows of the prefill attention matrix to keep (the last ones)."
    ),
]
ChatOption = Annotated[bool, typer.Option("--chat", help="Start in chat mode (the model's chat template).")]


def sampler_config(
    preset_name: str | None,
    temperature: float | None,
    top_k: int | None,
    top_p: float | None,
    min_p: float | None,
    repetition_penalty: float | None,
    frequency_penalty: float | None,
    presence_penalty: float | None,
    seed: int,
    order: StageOrder,
) -> SamplerConfig:
    """A preset (or the defaults) with every knob the user gave on the command line applied on top."""
    base = preset(preset_name) if preset_name else SamplerConfig()
    given = {
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "min_p": min_p,
        "repetition_penalty": repetition_penalty,
        "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
    }
    changes: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    return base.with_changes(seed=seed, order=order.value, **changes)
