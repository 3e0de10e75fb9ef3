"""`llmscope` with no command, and `llmscope tui`: open the playground."""

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from llmscope.cli.common import (
    DEBUG,
    AttentionRowsOption,
    ChatOption,
    DeviceOption,
    ModelOption,
    OverwriteOption,
    PromptOption,
    TrustOption,
    check_record_path,
    user_errors,
    valid_text,
)
from llmscope.cli.placement import DeviceMapOption, MaxMemoryOption, OffloadFolderOption, placement
from llmscope.registry import DEFAULT_MODEL, resolve


def launch_tui(
    model: str,
    device: str,
    prompt: str,
    chat: bool,
    record: Path | None = None,
    attention_rows: int = 256,
    trust_remote_code: bool = False,
    overwrite: bool = False,
    lens: bool = False,
    placement: Mapping[str, Any] | None = None,
) -> None:
    """Open the playground; the model name and the --record file are checked before the screen opens."""
    user_errors(lambda: resolve(model))
    valid_text(prompt, "--prompt")
    check_record_path(record, overwrite)
    from llmscope.tui.app import LLMScopeApp
    from llmscope.tui.engine_factory import hf_engine_factory

    LLMScopeApp(
        hf_engine_factory(model, device, trust_remote_code, attention_rows, logit_lens=lens, placement=placement),
        model_label=model,
        prompt=prompt,
        chat=chat,
        record_path=record,
    ).run()


def root(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an unexpected error (else: one line, exit 2).")
    ] = False,
) -> None:
    """With no command, open the playground (the TUI) on the default model."""
    if debug:
        DEBUG.enabled = True
    if ctx.invoked_subcommand is None:
        launch_tui(DEFAULT_MODEL, "auto", "The capital of France is", False)


def tui(
    model: ModelOption = DEFAULT_MODEL,
    prompt: PromptOption = "The capital of France is",
    chat: ChatOption = False,
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Autosave the session to this .llmscope file as you go (a model switch continues in a new file).",
        ),
    ] = None,
    attention_rows: AttentionRowsOption = 256,
    trust_remote_code: TrustOption = False,
    overwrite: OverwriteOption = False,
    lens: Annotated[
        bool,
        typer.Option(
            "--lens", help="Capture the logit lens from the first step (each layer's guess; ~1.7x a step on CPU)."
        ),
    ] = False,
) -> None:
    """Open the playground: prompt, generation, tokens, logits & sampler, attention, KV cache, MoE routing, layers."""
    where = placement(device_map, max_memory, offload_folder)
    launch_tui(
        model, device, prompt, chat, record, attention_rows, trust_remote_code, overwrite, lens=lens, placement=where
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.callback()(root)
    app.command()(tui)
