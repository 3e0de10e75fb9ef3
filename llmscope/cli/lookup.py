"""`llmscope tokenize`, `models` and `kv-calc`: look at a tokenizer, the registry and KV cache sizes."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from llmscope import kvcalc
from llmscope.cli.common import (
    JsonOption,
    ModelOption,
    TrustOption,
    fail,
    markup_safe,
    out,
    progress_printer,
    user_errors,
    valid_text,
    visible,
)
from llmscope.format import format_bytes, format_bytes_exact
from llmscope.registry import DEFAULT_MODEL, list_models, resolve
from llmscope.token_counts import ROUND_TRIP_WARNING


# --------------------------------------------------------------------------------- tokenize
def tokenize(
    text: Annotated[str, typer.Argument(help="Text to split into tokens.")],
    model: ModelOption = DEFAULT_MODEL,
    json_output: JsonOption = False,
    trust_remote_code: TrustOption = False,
) -> None:
    """Show each token with its id, vocabulary piece (Ġ, Ċ, ▁, <0xXX>), bytes, character offsets and special flag."""
    if not text:
        fail("empty text: nothing to tokenize")
    valid_text(text, "the text")
    spec = user_errors(lambda: resolve(model))
    from llmscope.engines.fast_tokenizer import load_for_inspection
    from llmscope.engines.tokenizer_view import inspect_text, summarize

    tokenizer = user_errors(
        lambda: load_for_inspection(spec, trust_remote_code=trust_remote_code, progress=progress_printer(json_output))
    )
    tokens = inspect_text(tokenizer, text)
    summary = summarize(tokens, text)
    if json_output:
        rows = [
            {
                "index": n,
                "id": t.id,
                "piece": t.piece,
                "text": t.text,
                "bytes": t.raw_bytes.hex(),
                "start": t.start,
                "end": t.end,
                "special": t.special,
            }
            for n, t in enumerate(tokens)
        ]
        out.print_json(data={"model": model, "text": text, "tokens": rows, "summary": summary})
        return
    table = Table(title=f"{len(tokens)} tokens · {model}", title_justify="left", box=None, padding=(0, 1))
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("id", "right"),
        ("piece", "left"),
        ("text", "left"),
        ("bytes", "left"),
        ("chars", "right"),
        ("", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for number, token in enumerate(tokens):
        span = f"{token.start}–{token.end}" if token.start is not None else ""
        table.add_row(
            str(number),
            str(token.id),
            Text(token.piece, style="cyan"),
            visible(token.raw_bytes),
            token.raw_bytes.hex(" "),
            span,
            Text("special", style="bold magenta") if token.special else "",
        )
    out.print(table)
    out.print(
        " · ".join(
            f"{key.replace('_', ' ')} {value:.2f}" if isinstance(value, float) else f"{key.replace('_', ' ')} {value}"
            for key, value in summary.items()
        )
    )
    if not summary["round_trip"]:
        out.print(Text(ROUND_TRIP_WARNING, style="bold yellow"))


# ----------------------------------------------------------------------------------- models
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
    out.print(
        "\n[dim]Also accepted by --model: a local Hugging Face model directory, or a hub id already in the local HF cache.[/]"
    )


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


def kv_calc(
    source: Annotated[str | None, typer.Argument(help="A config.json, a model directory, or a registry model.")] = None,
    preset_name: Annotated[
        str | None, typer.Option("--preset", help=f"Published config: {', '.join(kvcalc.PRESETS)}.")
    ] = None,
    context: Annotated[int, typer.Option(help="Tokens per sequence.")] = 4096,
    batch: Annotated[int, typer.Option(help="Sequences held at once.")] = 1,
    dtype: Annotated[str, typer.Option(help="Cache dtype: fp32, bf16, fp16, fp8, int8, int4.")] = "bf16",
    state_dtype: Annotated[
        str | None,
        typer.Option(
            "--state-dtype",
            help="SSM / linear-attention states' dtype (both conv and recurrent). Default: as transformers keeps "
            "them, conv states in the model's dtype (bf16 under an int8/int4/fp8 cache), recurrent states fp32.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Same as SOURCE: a registry model or model folder.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """KV-cache size: 2 × layers × kv_heads × head_dim × tokens × batch × bytes, with what-if rows."""
    if source and model:
        fail("give the model either as SOURCE or with --model, not both")
    shape = user_errors(lambda: kv_shape_for(source or model, preset_name))
    result = user_errors(lambda: kvcalc.estimate(shape, context, batch, dtype, state_dtype=state_dtype))
    rows = user_errors(lambda: kvcalc.what_if(shape, context, batch, dtype, state_dtype=state_dtype))
    if json_output:

        def as_dict(estimate: kvcalc.KVEstimate) -> dict[str, Any]:
            return {
                "bytes": estimate.total_bytes,
                "gb": estimate.gb,
                "gib": estimate.gib,
                "formula": estimate.formula_text,
                "tokens_cached": estimate.tokens_cached,
                "dtype": estimate.dtype,
            }

        out.print_json(
            data={
                "model": {**shape.__dict__, "layers": [cache.__dict__ for cache in shape.caches]},
                "context": context,
                "batch": batch,
                **as_dict(result),
                "what_if": [{"label": label, **as_dict(row)} for label, row in rows],
            }
        )
        return
    out.print(
        f"[bold]{shape.name}[/] · {shape.num_layers} layers · {shape.num_heads} heads · "
        f"{shape.num_kv_heads} KV heads ({shape.attention_kind}) · head_dim {shape.head_dim}"
        + (f" · sliding window {shape.sliding_window}" if shape.sliding_window else "")
    )
    if shape.source:
        out.print(f"[dim]source: {markup_safe(shape.source)}[/]")
    out.print("layers: " + " + ".join(f"{cache.layers} × {cache.describe()}" for cache in shape.caches))
    out.print(f"\n{result.formula_text}")
    out.print(f"[bold]= {format_bytes_exact(result.total_bytes)} = {format_bytes(result.total_bytes)}[/]\n")
    table = Table(title="what if", title_justify="left", box=None, padding=(0, 2))
    table.add_column("variant")
    table.add_column("bytes", justify="right")
    table.add_column("size", justify="right")
    table.add_column("vs as is", justify="right")
    for label, row in rows:
        ratio = f"{row.total_bytes / result.total_bytes:.2f}×" if result.total_bytes else ""
        table.add_row(label, format_bytes_exact(row.total_bytes), format_bytes(row.total_bytes), ratio)
    out.print(table)
    for name, scheme in kvcalc.QUANT_SCHEMES.items():
        out.print(f"[dim]{name}: {scheme}[/]")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(tokenize)
    app.command()(models)
    app.command("kv-calc")(kv_calc)
