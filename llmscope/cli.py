"""The `llmscope` command line: generate, replay, tokenize, models, kv-calc.

torch and transformers are imported only inside the commands that run a model, so `--help`,
`models` and `kv-calc` answer at once. Every user error prints one line and exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmscope import kvcalc
from llmscope.registry import DEFAULT_MODEL, ModelNotFoundError, list_models, resolve
from llmscope.sampler import PRESETS, SamplerConfig, SamplerConfigError, preset

app = typer.Typer(
    name="llmscope",
    help="A terminal microscope for language models: tokens, attention, logits, sampler stages, KV cache, MoE routing.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Registry name (smollm2, tiny-dense, tiny-moe), a local model directory, or a hub id already in the local HF cache.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]


class StageOrder(str, Enum):
    hf = "hf"
    llama_cpp = "llama.cpp"


def fail(message: str) -> NoReturn:
    """Print one clear line and exit with status 2 (the convention for bad input)."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(2)


def user_errors(action: Callable[[], T]) -> T:
    """Run `action`, turning every known kind of user error into one line and exit status 2."""
    from llmscope.engine_api import EngineError
    from llmscope.session_codec import SessionFormatError

    known: tuple[type[Exception], ...] = (ModelNotFoundError, SamplerConfigError, EngineError, ValueError, FileNotFoundError,
                                          SessionFormatError)
    try:
        return action()
    except Exception as error:
        # ModelLoadError can only come from an already imported loader; importing it here would pull in torch.
        loading = sys.modules.get("llmscope.engines.loading")
        if isinstance(error, known) or (loading is not None and isinstance(error, loading.ModelLoadError)):
            fail(str(error))
        raise


def progress_printer(json_mode: bool) -> Callable[[str, float | None], None]:
    """Loading progress on stderr, so --json output on stdout stays clean."""

    def report(message: str, fraction: float | None) -> None:
        suffix = f" [{fraction:.0%}]" if fraction is not None else ""
        err.print(f"[dim]{message}{suffix}[/]")

    return report


def load_engine(model: str, device: str, json_mode: bool, trust_remote_code: bool = False, **capture: bool | int):
    """Resolve and load a model (resolution errors come before the slow torch import)."""
    resolve(model)
    try:
        from llmscope.engines.hf import HFEngine
    except ImportError as missing:
        fail(f"running a model needs torch and transformers ({missing}); run scripts/setup.sh")
    from llmscope.trace import CaptureOptions

    return HFEngine.load(model, device=device, capture=CaptureOptions(**capture), progress=progress_printer(json_mode),
                         trust_remote_code=trust_remote_code)


def visible(text: str) -> str:
    """A token's text with whitespace made visible, in quotes (' Paris', '\\n')."""
    return json.dumps(text, ensure_ascii=False)


# ------------------------------------------------------------------------------------- tui
def launch_tui(model: str, device: str, prompt: str, chat: bool, record: Path | None = None,
               attention_rows: int = 256, trust_remote_code: bool = False) -> None:
    """Open the playground; the model name is checked first so a typo fails before the screen opens."""
    user_errors(lambda: resolve(model))
    from llmscope.app import LLMScopeApp, hf_engine_factory

    LLMScopeApp(hf_engine_factory(model, device, trust_remote_code, attention_rows), model_label=model, prompt=prompt,
                chat=chat, record_path=record).run()


PromptOption = Annotated[str, typer.Option("--prompt", help="Prompt the playground starts with.")]
TrustOption = Annotated[bool, typer.Option("--trust-remote-code",
                                           help="Allow a local model folder's own Python code to run (off by default).")]
AttentionRowsOption = Annotated[int, typer.Option("--attention-rows", min=1, max=8192,
                                                  help="Prompt rows of the prefill attention matrix to keep (the last ones).")]
ChatOption = Annotated[bool, typer.Option("--chat", help="Start in chat mode (the model's chat template).")]


@app.callback()
def root(ctx: typer.Context) -> None:
    """With no command, open the playground (the TUI) on the default model."""
    if ctx.invoked_subcommand is None:
        launch_tui(DEFAULT_MODEL, "auto", "The capital of France is", False)


@app.command()
def tui(
    model: ModelOption = DEFAULT_MODEL,
    prompt: PromptOption = "The capital of France is",
    chat: ChatOption = False,
    device: DeviceOption = "auto",
    record: Annotated[Path | None, typer.Option("--record", help="Autosave the session to this .llmscope file as you go.")] = None,
    attention_rows: AttentionRowsOption = 256,
    trust_remote_code: TrustOption = False,
) -> None:
    """Open the playground: prompt, generation, tokens, logits & sampler, attention, KV cache, MoE routing."""
    launch_tui(model, device, prompt, chat, record, attention_rows, trust_remote_code)


# --------------------------------------------------------------------------------- generate
def sampler_config(
    preset_name: str | None, temperature: float | None, top_k: int | None, top_p: float | None, min_p: float | None,
    repetition_penalty: float | None, frequency_penalty: float | None, presence_penalty: float | None,
    seed: int, order: StageOrder,
) -> SamplerConfig:
    """A preset (or the defaults) with every knob the user gave on the command line applied on top."""
    base = preset(preset_name) if preset_name else SamplerConfig()
    given = {
        "temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p,
        "repetition_penalty": repetition_penalty, "frequency_penalty": frequency_penalty,
        "presence_penalty": presence_penalty,
    }
    changes: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    return base.with_changes(seed=seed, order=order.value, **changes)


def print_step(step: dict[str, Any]) -> None:
    """One step as a header line, the survivors of each sampler stage, and the candidate table."""
    token = step["token"]
    kv = f"KV {step['kv_bytes']:,} B" if step["kv_bytes"] is not None else "KV off"
    header = Text.assemble(
        (f"step {step['index']:>3} ", "bold"), (visible(token["text"]), "bold green"), f"  id {token['id']}",
        f"  p_raw {step['p_raw']:.3f}  p_final {step['p_final']:.3f}",
        f"  H {abs(step['entropy_raw_nats']):.2f}→{abs(step['entropy_final_nats']):.2f} nats  {kv}  {step['forward_ms']:.0f} ms",
    )
    out.print(header)
    stages = "  ".join(
        f"{stage['label']}: {stage['kept']:,}" if stage["active"] else f"[dim]{stage['label']}[/]"
        for stage in step["survivors"]
    )
    out.print(f"  survivors of {step['vocab_size']:,}: {stages}")
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
    for column, justify in (("rank", "right"), ("token", "left"), ("id", "right"), ("logit", "right"), ("p_raw", "right"), ("p_final", "right")):
        table.add_column(column, justify=justify, style="dim" if column in ("rank", "id") else None)
    for row in step["candidates"]:
        style = "bold green" if row["chosen"] else ("strike dim" if row["p_final"] == 0 else None)
        table.add_row(str(row["rank"]), visible(row["text"]), str(row["id"]), f"{row['logit']:.2f}",
                      f"{row['p_raw']:.4f}", f"{row['p_final']:.4f}", style=style)
    out.print(table, "")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Text for the model to continue.")],
    model: ModelOption = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Tokens to generate.")] = 8,
    chat: Annotated[bool, typer.Option("--chat", help="Wrap the prompt in the model's chat template as a user turn.")] = False,
    system: Annotated[str | None, typer.Option(help="System prompt for --chat (else the template's default).")] = None,
    preset_name: Annotated[str | None, typer.Option("--preset", help=f"Start from a preset: {', '.join(PRESETS)}.")] = None,
    temperature: Annotated[float | None, typer.Option(help="0 = greedy. Default 1.0.")] = None,
    top_k: Annotated[int | None, typer.Option(help="Keep the k most likely tokens; 0 = off (default).")] = None,
    top_p: Annotated[float | None, typer.Option(help="Nucleus: smallest set with cumulative probability ≥ p; 1 = off.")] = None,
    min_p: Annotated[float | None, typer.Option(help="Drop tokens below min_p × the top probability; 0 = off.")] = None,
    repetition_penalty: Annotated[float | None, typer.Option(help="CTRL/transformers penalty on seen tokens; 1 = off.")] = None,
    frequency_penalty: Annotated[float | None, typer.Option(help="OpenAI: minus penalty × count in the output.")] = None,
    presence_penalty: Annotated[float | None, typer.Option(help="OpenAI: minus penalty once a token was output.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sampler's random generator.")] = 0,
    order: Annotated[StageOrder, typer.Option(help="Stage order: hf (temperature first) or llama.cpp (temperature last).")] = StageOrder.hf,
    candidates: Annotated[int, typer.Option(min=1, max=50, help="Candidates shown per step.")] = 5,
    no_captures: Annotated[bool, typer.Option("--no-captures", help="Skip attention/hidden/KV/router captures (faster).")] = False,
    attention_rows: AttentionRowsOption = 256,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
    save: Annotated[Path | None, typer.Option("--save", help="Save the session to this file (.llmscope) for `llmscope replay`.")] = None,
    save_logits: Annotated[str, typer.Option("--save-logits", help="Logits kept per step: full (float16) or top-k:N (the N largest).")] = "full",
) -> None:
    """Generate STEPS tokens and show, per step, the candidates, each sampler stage's survivors, entropy, KV bytes and time."""
    config = user_errors(lambda: sampler_config(preset_name, temperature, top_k, top_p, min_p, repetition_penalty,
                                                frequency_penalty, presence_penalty, seed, order))
    if save is not None:
        from llmscope.session import parse_logits_option

        user_errors(lambda: parse_logits_option(save_logits))
        if not save.parent.is_dir():
            fail(f"cannot save to {save}: folder {save.parent} does not exist")
    if not prompt.strip():
        fail("empty prompt: give some text for the model to continue")
    captures = not no_captures
    engine = user_errors(lambda: load_engine(model, device, json_output, trust_remote_code, attention=captures,
                                             hidden_states=captures,
                                             kv_cache=captures, router=captures, prefill_attention_rows=attention_rows))
    from llmscope.generation import Generation
    from llmscope.step_report import generation_dict, generated_text, step_dict, to_jsonable

    generation = Generation(engine, config)
    prompt_ids = user_errors(lambda: engine.encode(prompt, chat=chat, system_prompt=system))
    if not json_output:
        out.print(f"[bold]{engine.info.name}[/] · {engine.info.device} {engine.info.dtype} · {config.describe()} · "
                  f"prompt {len(prompt_ids)} tokens\n")
    try:
        user_errors(lambda: generation.start(prompt_ids))
        if not json_output:
            print_step(step_dict(generation.current.trace, generation.sample_result(), candidates, engine.token_info))
        while len(generation.steps) < steps and generation.stop_reason is None:
            user_errors(generation.advance)
            if not json_output:
                print_step(step_dict(generation.current.trace, generation.sample_result(), candidates, engine.token_info))
        stop_reason = generation.stop_reason or "step limit reached"
    except KeyboardInterrupt:
        stop_reason = "interrupted (Ctrl+C)"
    if json_output:
        out.print_json(data=to_jsonable(generation_dict(generation, prompt, candidates, stop_reason)))
    else:
        out.rule("result")
        out.print(Text(prompt, style="dim"), Text(generated_text(generation), style="bold"), sep="")
        out.print(f"\n[dim]{len(generation.steps)} tokens · stopped: {stop_reason}[/]")
    if save is not None and generation.steps:
        save_generation(generation, save, save_logits, prompt=prompt, chat=chat, system=system)
    if stop_reason.startswith("interrupted"):
        raise typer.Exit(130)


def save_generation(generation: Any, path: Path, logits: str, *, prompt: str, chat: bool, system: str | None) -> None:
    """Save a finished generation as a session file and say where (on stderr, so --json stays clean)."""
    from llmscope.recording import Session
    from llmscope.session import save_session

    session = Session.from_generation(generation, prompt_text=prompt, chat=chat, system_prompt=system)
    try:
        saved = save_session(session, path, logits=logits)
    except OSError as error:
        fail(f"cannot save to {path}: {error.strerror or error}")
    err.print(f"[dim]saved {len(generation.steps)} steps to {saved} ({saved.stat().st_size:,} bytes)[/]")


# ----------------------------------------------------------------------------------- replay
def launch_replay_tui(session_path: Path) -> None:
    """Open the playground over a recorded session (no model needed); the file is checked before the screen opens."""
    from llmscope.session import load_session

    session = user_errors(lambda: load_session(session_path))
    try:
        from llmscope.app import LLMScopeApp
    except ImportError:
        fail("the replay TUI is not wired yet: use --headless")
    from llmscope.replay import replay_engine_factory

    first = session.prompts[0] if session.prompts else None
    LLMScopeApp(replay_engine_factory(session_path, session=session), model_label=f"{session.model.name} (replay)",
                prompt=first.text if first else "", chat=first.chat if first else False).run()


def list_sessions(json_output: bool) -> None:
    from llmscope.replay import shipped_sessions

    shipped = shipped_sessions()
    if json_output:
        out.print_json(data=[{"name": s.name, "description": s.description, "path": str(s.path)} for s in shipped])
        return
    if not shipped:
        out.print("[dim]no shipped sessions are installed[/]")
        return
    table = Table(box=None, padding=(0, 2))
    table.add_column("name", style="bold")
    table.add_column("description")
    for shipped_session in shipped:
        table.add_row(shipped_session.name, shipped_session.description)
    out.print(table)
    out.print("\n[dim]Open one with: llmscope replay NAME (add --headless for a table in the terminal).[/]")


@app.command()
def replay(
    session_file: Annotated[str | None, typer.Argument(metavar="FILE_OR_NAME", help="A .llmscope file, or the name of a shipped session (see --list).")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="Print the steps as tables instead of opening the playground.")] = False,
    list_shipped: Annotated[bool, typer.Option("--list", help="List the sessions shipped with llmscope.")] = False,
    candidates: Annotated[int, typer.Option(min=1, max=50, help="Candidates shown per step.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Replay a recorded session without the model: every step re-sampled from its recorded logits and knobs."""
    if list_shipped:
        list_sessions(json_output)
        return
    if session_file is None:
        fail("give a session file or a shipped session name (llmscope replay --list shows them)")
    from llmscope.replay import find_session_file

    path = user_errors(lambda: find_session_file(session_file))
    if not headless:
        launch_replay_tui(path)
        return
    from llmscope.session import load_session

    session = user_errors(lambda: load_session(path))
    user_errors(lambda: replay_headless(session, path, candidates, json_output))


def replay_headless(session: Any, path: Path, candidates: int, json_output: bool) -> None:
    """Re-enact every event, printing each step like `generate` and whether it reproduced the recording."""
    from dataclasses import asdict

    from llmscope.recording import KnobsEvent, PromptEvent, RewindEvent
    from llmscope.replay import ReplayEngine, ReplayedStep, reenact
    from llmscope.step_report import generated_text, model_dict, step_dict, to_jsonable, token_dict

    engine = ReplayEngine(session)
    actions: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    sampled = reproduced = 0
    if not json_output:
        kept = session.logits_kept
        out.print(f"[bold]{session.title or path.name}[/] · replay of {session.model.name} · "
                  f"{len(session.steps)} recorded steps · logits {'top-' + str(kept) if kept else 'full'}")
        if session.description:
            out.print(f"[dim]{session.description}[/]")
    generation = None
    for item, generation in reenact(session, engine):
        if isinstance(item, PromptEvent):
            runs.append({"prompt": item.text, "chat": item.chat, "prompt_ids": list(item.prompt_ids)})
            actions.append({"action": "prompt", "run": len(runs) - 1, "text": item.text, "chat": item.chat})
            if not json_output:
                out.rule(f"prompt {len(runs)}{' (chat)' if item.chat else ''} · {len(item.prompt_ids)} tokens")
                out.print(Text(item.text, style="dim"), "\n")
        elif isinstance(item, KnobsEvent):
            actions.append({"action": "knobs", "sampler": asdict(item.config)})
            if not json_output:
                out.print(f"[cyan]knobs:[/] {item.config.describe()}")
        elif isinstance(item, RewindEvent):
            actions.append({"action": "rewind", "count": item.count})
            if not json_output:
                out.print(f"[cyan]rewind {item.count}[/]\n")
        elif isinstance(item, ReplayedStep):
            sampled += 1
            reproduced += item.reproduced
            report = step_dict(item.step.trace, item.result, candidates, engine.token_info)
            recorded = token_dict(engine.token_info(item.recorded.token_id))
            actions.append({"action": item.action, **report, "recorded": recorded, "reproduced": item.reproduced})
            if not json_output:
                if item.action == "resample":
                    out.print(f"[cyan]re-sample with {item.recorded.config.describe()}[/]")
                print_step(report)
                if not item.reproduced:
                    out.print(f"  [bold red]✗ differs from the recording[/], which chose {visible(recorded['text'])}"
                              " (following the recording)\n")
        if generation is not None and runs:
            runs[-1]["text"] = generated_text(generation)
    if json_output:
        out.print_json(data=to_jsonable({
            "file": str(path), "title": session.title, "description": session.description,
            "model": model_dict(session.model), "logits_kept": session.logits_kept,
            "runs": runs, "actions": actions, "sampled": sampled, "reproduced": reproduced,
            "forward_calls": engine.forward_calls,
        }))
        return
    out.rule("result")
    if runs and generation is not None:
        out.print(Text(runs[-1]["prompt"], style="dim"), Text(runs[-1].get("text", ""), style="bold"), sep="")
    mark = "[green]all reproduced[/]" if reproduced == sampled else f"[red]{sampled - reproduced} differ[/]"
    out.print(f"\n[dim]{sampled} samples re-sampled from recorded logits · {reproduced}/{sampled} match the "
              f"recording · {mark}[/]")


# --------------------------------------------------------------------------------- tokenize
@app.command()
def tokenize(
    text: Annotated[str, typer.Argument(help="Text to split into tokens.")],
    model: ModelOption = DEFAULT_MODEL,
    json_output: JsonOption = False,
) -> None:
    """Show each token with its id, vocabulary piece (Ġ, Ċ, ▁, <0xXX>), bytes, character offsets and special flag."""
    if not text:
        fail("empty text: nothing to tokenize")
    spec = user_errors(lambda: resolve(model))
    from llmscope.engines.loading import load_tokenizer
    from llmscope.engines.tokenizer_view import inspect_text, summarize

    tokenizer = user_errors(lambda: load_tokenizer(spec, progress=progress_printer(json_output)))
    tokens = inspect_text(tokenizer, text)
    summary = summarize(tokens, text)
    if json_output:
        rows = [{"index": n, "id": t.id, "piece": t.piece, "text": t.text, "bytes": t.raw_bytes.hex(),
                 "start": t.start, "end": t.end, "special": t.special} for n, t in enumerate(tokens)]
        out.print_json(data={"model": model, "text": text, "tokens": rows, "summary": summary})
        return
    table = Table(title=f"{len(tokens)} tokens · {model}", title_justify="left", box=None, padding=(0, 1))
    for column, justify in (("#", "right"), ("id", "right"), ("piece", "left"), ("text", "left"), ("bytes", "left"), ("chars", "right"), ("", "left")):
        table.add_column(column, justify=justify)
    for number, token in enumerate(tokens):
        span = f"{token.start}–{token.end}" if token.start is not None else ""
        table.add_row(str(number), str(token.id), Text(token.piece, style="cyan"), visible(token.text),
                      token.raw_bytes.hex(" "), span, Text("special", style="bold magenta") if token.special else "")
    out.print(table)
    out.print(" · ".join(f"{key.replace('_', ' ')} {value:.2f}" if isinstance(value, float) else f"{key.replace('_', ' ')} {value}"
                         for key, value in summary.items()))


# ----------------------------------------------------------------------------------- models
@app.command()
def models(json_output: JsonOption = False) -> None:
    """List the models llmscope can load offline and whether each is ready."""
    entries = list_models()
    if json_output:
        out.print_json(data=[entry.__dict__ for entry in entries])
        return
    table = Table(box=None, padding=(0, 2))
    table.add_column("name", style="bold")
    table.add_column("description")
    table.add_column("status", style="dim")
    for entry in entries:
        table.add_row(entry.name, entry.description, entry.status)
    out.print(table)
    out.print("\n[dim]Also accepted by --model: a local Hugging Face model directory, or a hub id already in the local HF cache.[/]")


# ---------------------------------------------------------------------------------- kv-calc
def kv_shape_for(source: str | None, preset_name: str | None) -> kvcalc.KVShape:
    """A preset, a config.json (or its directory), or a registry model's config."""
    if preset_name:
        return kvcalc.get_preset(preset_name)
    if source is None:
        raise ValueError(f"give a config path, a model name, or --preset ({', '.join(kvcalc.PRESETS)})")
    path = Path(source).expanduser()
    if path.is_file():
        return kvcalc.shape_from_config_file(path)
    if path.is_dir():
        return kvcalc.shape_from_config_file(path / "config.json", path.name)
    spec = resolve(source)
    if spec.kind == "gguf":
        return kvcalc.get_preset("smollm2-135m")
    return kvcalc.shape_from_config_file(spec.path / "config.json", spec.name)


@app.command("kv-calc")
def kv_calc(
    source: Annotated[str | None, typer.Argument(help="A config.json, a model directory, or a registry model.")] = None,
    preset_name: Annotated[str | None, typer.Option("--preset", help=f"Published config: {', '.join(kvcalc.PRESETS)}.")] = None,
    context: Annotated[int, typer.Option(help="Tokens per sequence.")] = 4096,
    batch: Annotated[int, typer.Option(help="Sequences held at once.")] = 1,
    dtype: Annotated[str, typer.Option(help="Cache dtype: fp32, bf16, fp16, fp8, int8, int4.")] = "bf16",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Same as SOURCE: a registry model or model folder.")] = None,
    json_output: JsonOption = False,
) -> None:
    """KV-cache size: 2 × layers × kv_heads × head_dim × tokens × batch × bytes, with what-if rows."""
    if source and model:
        fail("give the model either as SOURCE or with --model, not both")
    shape = user_errors(lambda: kv_shape_for(source or model, preset_name))
    result = user_errors(lambda: kvcalc.estimate(shape, context, batch, dtype))
    rows = user_errors(lambda: kvcalc.what_if(shape, context, batch, dtype))
    if json_output:
        def as_dict(estimate: kvcalc.KVEstimate) -> dict[str, Any]:
            return {"bytes": estimate.total_bytes, "gb": estimate.gb, "gib": estimate.gib, "formula": estimate.formula_text,
                    "tokens_cached": estimate.tokens_cached, "dtype": estimate.dtype}
        out.print_json(data={"model": shape.__dict__, "context": context, "batch": batch, **as_dict(result),
                             "what_if": [{"label": label, **as_dict(row)} for label, row in rows]})
        return
    out.print(f"[bold]{shape.name}[/] · {shape.num_layers} layers · {shape.num_heads} heads · "
              f"{shape.num_kv_heads} KV heads ({shape.attention_kind}) · head_dim {shape.head_dim}"
              + (f" · sliding window {shape.sliding_window}" if shape.sliding_window else ""))
    if shape.source:
        out.print(f"[dim]source: {shape.source}[/]")
    out.print(f"\n{result.formula_text}")
    out.print(f"[bold]= {result.total_bytes:,} bytes = {result.gb:.3f} GB = {result.gib:.3f} GiB[/]\n")
    table = Table(title="what if", title_justify="left", box=None, padding=(0, 2))
    table.add_column("variant")
    table.add_column("bytes", justify="right")
    table.add_column("GiB", justify="right")
    table.add_column("vs as is", justify="right")
    for label, row in rows:
        table.add_row(label, f"{row.total_bytes:,}", f"{row.gib:.3f}", f"{row.total_bytes / result.total_bytes:.2f}×")
    out.print(table)


from llmscope.compare_cli import register_compare  # noqa: E402 - it builds on the helpers above

register_compare(app)


def main() -> None:
    """Console-script entry point; llmscope never reaches a model hub, so the HF libraries run offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    app()


from llmscope.cli_demo import register as _register_demo_commands  # noqa: E402  (needs `app` and its helpers)

_register_demo_commands(app)

if __name__ == "__main__":
    main()
