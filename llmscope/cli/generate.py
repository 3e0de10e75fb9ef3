"""`llmscope generate`: step a model from the command line and print every sampler stage."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from llmscope.cli.common import (
    AttentionRowsOption,
    DeviceOption,
    JsonOption,
    ModelOption,
    StageOrder,
    TrustOption,
    check_save_path,
    err,
    fail,
    load_engine,
    markup_safe,
    out,
    sampler_config,
    user_errors,
    valid_prompt,
    valid_text,
)
from llmscope.cli.placement import DeviceMapOption, MaxMemoryOption, OffloadFolderOption, placement
from llmscope.cli.report import print_step
from llmscope.format import printable_text
from llmscope.registry import DEFAULT_MODEL
from llmscope.sampler_config import PRESETS

if TYPE_CHECKING:
    from llmscope.engines.hf import HFEngine
    from llmscope.generation import Generation


def generate(
    prompt: Annotated[str, typer.Argument(help="Text for the model to continue.")],
    model: ModelOption = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Tokens to generate.")] = 8,
    chat: Annotated[
        bool, typer.Option("--chat", help="Wrap the prompt in the model's chat template as a user turn.")
    ] = False,
    system: Annotated[str | None, typer.Option(help="System prompt for --chat (else the template's default).")] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help=f"Start from a preset: {', '.join(PRESETS)}.")
    ] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy. Default 1.0.")] = None,
    top_k: Annotated[int | None, typer.Option(help="Keep the k most likely tokens; 0 = off (default).")] = None,
    top_p: Annotated[
        float | None, typer.Option(help="Nucleus: smallest set with cumulative probability ≥ p; 1 = off.")
    ] = None,
    min_p: Annotated[float | None, typer.Option(help="Drop tokens below min_p × the top probability; 0 = off.")] = None,
    repetition_penalty: Annotated[
        float | None, typer.Option(help="CTRL/transformers penalty on seen tokens; 1 = off.")
    ] = None,
    frequency_penalty: Annotated[
        float | None, typer.Option(help="OpenAI: minus penalty × count in the output.")
    ] = None,
    presence_penalty: Annotated[
        float | None, typer.Option(help="OpenAI: minus penalty once a token was output.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sampler's random generator.")] = 0,
    order: Annotated[
        StageOrder, typer.Option(help="Stage order: hf (temperature first) or llama.cpp (temperature last).")
    ] = StageOrder.hf,
    candidates: Annotated[int, typer.Option(min=1, max=50, help="Candidates shown per step.")] = 5,
    no_captures: Annotated[
        bool, typer.Option("--no-captures", help="Skip attention/hidden/KV/router captures (faster).")
    ] = False,
    attention_rows: AttentionRowsOption = 256,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    json_output: JsonOption = False,
    save: Annotated[
        Path | None, typer.Option("--save", help="Save the session to this file (.llmscope) for `llmscope replay`.")
    ] = None,
    save_logits: Annotated[
        str, typer.Option("--save-logits", help="Logits kept per step: full (float16) or top-k:N (the N largest).")
    ] = "full",
) -> None:
    """Generate STEPS tokens and show, per step, the candidates, each sampler stage's survivors, entropy, KV bytes and time."""
    config = user_errors(
        lambda: sampler_config(
            preset_name,
            temperature,
            top_k,
            top_p,
            min_p,
            repetition_penalty,
            frequency_penalty,
            presence_penalty,
            seed,
            order,
        )
    )
    if save is not None:
        from llmscope.session.files import parse_logits_option

        user_errors(lambda: parse_logits_option(save_logits))
        check_save_path(save, "--save")
    valid_prompt(prompt)
    valid_text(system or "", "--system")
    captures = not no_captures
    where = placement(device_map, max_memory, offload_folder)
    engine = user_errors(
        lambda: load_engine(
            model,
            device,
            json_output,
            trust_remote_code,
            where,
            attention=captures,
            hidden_states=captures,
            kv_cache=captures,
            router=captures,
            prefill_attention_rows=attention_rows,
        )
    )
    from llmscope.cli.report import generated_text, generation_dict, step_dict, to_jsonable
    from llmscope.generation import Generation

    generation = Generation(engine, config)
    prompt_ids = user_errors(lambda: engine.encode(prompt, chat=chat, system_prompt=system))
    if not json_output:
        out.print(
            f"[bold]{markup_safe(engine.info.name)}[/] · {engine.info.device} {engine.info.dtype}{placed(engine)} · "
            f"{config.describe()} · prompt {len(prompt_ids)} tokens\n"
        )
    try:
        user_errors(lambda: generation.start(prompt_ids))
        if not json_output:
            print_step(step_dict(generation.steps[-1].trace, generation.sample_result(), candidates, engine.token_info))
        while len(generation.steps) < steps and generation.stop_reason is None:
            user_errors(generation.advance)
            if not json_output:
                print_step(
                    step_dict(generation.steps[-1].trace, generation.sample_result(), candidates, engine.token_info)
                )
        stop_reason = generation.stop_reason or "step limit reached"
    except KeyboardInterrupt:
        stop_reason = "interrupted (Ctrl+C)"
    if json_output:
        out.print_json(data=to_jsonable(generation_dict(generation, prompt, candidates, stop_reason)))
    else:
        out.rule("result")
        shown = (
            Text(printable_text(prompt), style="dim"),
            Text(printable_text(generated_text(generation)), style="bold"),
        )
        out.print(*shown, sep="")
        out.print(f"\n[dim]{len(generation.steps)} tokens · stopped: {stop_reason}[/]")
    if dropped := generation.attention_budget.dropped:
        err.print(
            f"[dim]attention rows of the {dropped:,} oldest steps were dropped to bound memory (the newest steps "
            f"keep theirs, {generation.attention_budget.budget_bytes // 2**20} MiB in all)[/]"
        )
    if save is not None and generation.steps:
        save_generation(generation, save, save_logits, prompt=prompt, chat=chat, system=system)
    if stop_reason.startswith("interrupted"):
        raise typer.Exit(130)


def save_generation(
    generation: "Generation", path: Path, logits: str, *, prompt: str, chat: bool, system: str | None
) -> None:
    """Save a finished generation as a session file and say where (on stderr, so --json stays clean)."""
    from llmscope.session.files import save_session
    from llmscope.session.recording import Session

    session = Session.from_generation(generation, prompt_text=prompt, chat=chat, system_prompt=system)
    try:
        saved = save_session(session, path, logits=logits)
    except (OSError, ValueError) as error:
        fail(f"cannot save to {path}: {getattr(error, 'strerror', None) or error}")
    err.print(f"[dim]saved {len(generation.steps)} steps to {saved} ({saved.stat().st_size:,} bytes)[/]")


def placed(engine: "HFEngine") -> str:
    """' (device map auto: 0, 1, cpu)' naming where accelerate put the layers; '' without a device map."""
    placement = getattr(engine.model, "hf_device_map", None) if engine.device.device_map else None
    if not placement:
        return ""
    return f" (device map {engine.device.device_map}: {', '.join(dict.fromkeys(str(v) for v in placement.values()))})"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(generate)
