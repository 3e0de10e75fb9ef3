"""`llmscope lens`: what every layer would predict next, for each generated token (the logit lens)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from llmscope.cli.common import (
    DeviceOption,
    JsonOption,
    ModelOption,
    TrustOption,
    fail,
    load_engine,
    markup_safe,
    out,
    user_errors,
    valid_prompt,
    visible,
)
from llmscope.cli.placement import DeviceMapOption, MaxMemoryOption, OffloadFolderOption, placement
from llmscope.registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from llmscope.engines.hf import HFEngine
    from llmscope.generation import Step

GRID_COLUMNS = 10
"""Steps per block of the layers × steps grid (wider blocks wrap on an 80-column terminal)."""


def lens(
    prompt: Annotated[str, typer.Argument(help="Text for the model to continue.")],
    model: ModelOption = DEFAULT_MODEL,
    steps: Annotated[int, typer.Option(min=1, max=1000, help="Tokens to generate (greedy unless --temperature).")] = 1,
    temperature: Annotated[float, typer.Option(min=0.0, max=100.0, help="0 = greedy (default).")] = 0.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the sampler when --temperature > 0.")] = 0,
    top: Annotated[int, typer.Option(min=1, max=10, help="Candidates listed per layer in the one-step table.")] = 3,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show, layer by layer, which next token the residual stream already points to (final norm + unembedding)."""
    valid_prompt(prompt)
    where = placement(device_map, max_memory, offload_folder)
    engine = user_errors(
        lambda: load_engine(
            model,
            device,
            json_output,
            trust_remote_code,
            where,
            attention=False,
            kv_cache=False,
            router=False,
            logit_lens=True,
        )
    )
    if not engine.capabilities.logit_lens:
        fail(f"no logit lens for {engine.info.name}: {engine.capabilities.reason.get('logit_lens', 'refused')}")
    from llmscope.generation import Generation
    from llmscope.sampler import SamplerConfig

    generation = Generation(engine, SamplerConfig(temperature=temperature, seed=seed))
    prompt_ids = user_errors(lambda: engine.encode(prompt))
    try:
        user_errors(lambda: generation.start(prompt_ids))
        while len(generation.steps) < steps and generation.stop_reason is None:
            user_errors(generation.advance)
    except KeyboardInterrupt:
        out.print("[dim]interrupted (Ctrl+C): showing the steps so far[/]")
    if generation.steps and generation.steps[-1].trace.lens is None:
        fail(f"no logit lens for {engine.info.name}: {engine.capabilities.reason.get('logit_lens', 'refused')}")
    if json_output:
        out.print_json(
            data={"model": engine.info.name, "prompt": prompt, "steps": _steps_json(engine, generation.steps)}
        )
        return
    out.print(
        f"[bold]{markup_safe(engine.info.name)}[/] · {engine.info.num_layers} layers · each row is that layer's "
        "residual stream read through the final norm and the unembedding (emb = the token embeddings)\n"
    )
    if len(generation.steps) == 1:
        out.print(_layer_table(engine, generation.steps[0], top))
    else:
        for begin in range(0, len(generation.steps), GRID_COLUMNS):
            out.print(_grid(engine, generation.steps[begin : begin + GRID_COLUMNS], begin))
    for index, step in enumerate(generation.steps):
        out.print(_summary(engine, index, step))


def _row_name(row: int) -> str:
    return "emb" if row == 0 else str(row)


def _text(engine: HFEngine, token_id: int) -> str:
    return visible(engine.token_info(token_id).raw_bytes)


def _layer_table(engine: HFEngine, step: Step, top: int) -> Table:
    """One step: per layer its top candidates, entropy, and the chosen token's rank and probability."""
    lens = step.trace.lens
    assert lens is not None and lens.chosen_rank is not None and lens.chosen_prob is not None
    chosen = _text(engine, step.token_id)
    title = f"next token {chosen} (green); rank and prob: where {chosen} stands in each layer"
    table = Table(title=markup_safe(title), title_justify="left", box=None, pad_edge=False)
    table.add_column("layer", justify="right")
    for place in range(top):
        table.add_column(f"#{place + 1}", no_wrap=True)
    table.add_column("rank", justify="right")
    table.add_column("prob", justify="right")
    table.add_column("entropy", justify="right")
    for row in range(lens.num_rows):
        cells = []
        for place in range(top):
            token_id = int(lens.top_ids[row, place])
            cell = Text(f"{_text(engine, token_id)} {lens.top_probs[row, place]:.2f}")
            if token_id == step.token_id:
                cell.stylize("bold green")
            cells.append(cell)
        table.add_row(
            _row_name(row),
            *cells,
            f"{int(lens.chosen_rank[row]):,}",
            f"{float(lens.chosen_prob[row]):.3f}",
            f"{float(lens.entropy[row]):.2f}",
        )
    return table


def _grid(engine: HFEngine, steps: list[Step], first: int) -> Table:
    """Layers × steps: each cell the layer's top-1 token, green where it is the token finally chosen."""
    table = Table(box=None, pad_edge=False)
    table.add_column("layer", justify="right")
    for offset, step in enumerate(steps):
        table.add_column(f"{first + offset}:{_text(engine, step.token_id)}", no_wrap=True, max_width=12)
    rows = steps[0].trace.lens.num_rows if steps[0].trace.lens is not None else 0
    for row in range(rows):
        cells = []
        for step in steps:
            lens = step.trace.lens
            assert lens is not None
            token_id = int(lens.top_ids[row, 0])
            style = "bold green" if token_id == step.token_id else ("" if lens.top_probs[row, 0] >= 0.3 else "dim")
            cells.append(Text(_text(engine, token_id), style=style))
        table.add_row(_row_name(row), *cells)
    return table


def _summary(engine: HFEngine, index: int, step: Step) -> str:
    lens = step.trace.lens
    assert lens is not None
    first, settled = lens.first_top1_layer(), lens.settled_layer()
    chosen = markup_safe(_text(engine, step.token_id))
    if first is None:
        return f"step {index} → {chosen}: never the top candidate of any layer (sampled below the top)"
    where = f"top-1 first at layer {_row_name(first)}"
    if settled is not None and settled != first:
        where += f", stays top-1 from layer {_row_name(settled)}"
    return f"step {index} → {chosen}: {where}"


def _steps_json(engine: HFEngine, steps: list[Step]) -> list[dict[str, Any]]:
    result = []
    for index, step in enumerate(steps):
        lens = step.trace.lens
        assert lens is not None and lens.chosen_rank is not None and lens.chosen_prob is not None
        layers = []
        for row in range(lens.num_rows):
            layers.append(
                {
                    "layer": row,
                    "name": _row_name(row),
                    "top": [
                        {"id": int(token), "text": engine.token_info(int(token)).text, "prob": float(prob)}
                        for token, prob in zip(lens.top_ids[row], lens.top_probs[row], strict=True)
                    ],
                    "entropy_nats": float(lens.entropy[row]),
                    "chosen_rank": int(lens.chosen_rank[row]),
                    "chosen_prob": float(lens.chosen_prob[row]),
                }
            )
        result.append(
            {
                "step": index,
                "chosen": {"id": step.token_id, "text": engine.token_info(step.token_id).text},
                "first_top1_layer": lens.first_top1_layer(),
                "settled_layer": lens.settled_layer(),
                "layers": layers,
            }
        )
    return result


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command()(lens)
