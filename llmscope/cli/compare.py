"""`llmscope compare`: two lanes stepped together, a table of where their choices and distributions differ.

Registered on the main typer app by llmscope.cli.main; reuses its error conventions (one line, exit 2).
torch is imported only when the models load, so `compare --help` answers at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from llmscope.cli.placement import DeviceMapOption, MaxMemoryOption, OffloadFolderOption
from llmscope.compare.presets import EXPERIMENTS, LaneSpec, experiment_lanes
from llmscope.divergence import DEFAULT_TOP_N, Divergence, format_nats
from llmscope.registry import DEFAULT_MODEL, resolve
from llmscope.sampler_config import SamplerConfig

if TYPE_CHECKING:
    from llmscope.compare.lanes import CompareStep, Comparison, Lane, LaneToken
    from llmscope.generation import Generation

T = TypeVar("T")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")
]
# llmscope.cli.main registers this module's command at its end, so its helpers are imported inside the functions.


def _knob(help_text: str, *names: str) -> Any:
    return typer.Option(*names, help=help_text, show_default=False)


def lane_specs(
    base: LaneSpec,
    prompt_b: str | None,
    preset_name: str | None,
    a_model: str | None,
    b_model: str | None,
    a_chat: bool,
    b_chat: bool,
    a_system: str | None,
    b_system: str | None,
    a_knobs: dict[str, Any],
    b_knobs: dict[str, Any],
) -> tuple[LaneSpec, LaneSpec]:
    """Base lane → preset pair (or two copies) → per-lane options on top; knob values are validated here."""
    lane_a, lane_b = experiment_lanes(preset_name, base) if preset_name else (base, base)
    if prompt_b is not None:
        lane_b = lane_b.with_changes(prompt=prompt_b)
    lanes = []
    for name, lane, model, chat, system, knobs in (
        ("A", lane_a, a_model, a_chat, a_system, a_knobs),
        ("B", lane_b, b_model, b_chat, b_system, b_knobs),
    ):
        given = {knob: value for knob, value in knobs.items() if value is not None}
        config = in_lane(name, lambda: lane.config.with_changes(**given))
        lane = lane.with_changes(config=config)
        lane = lane.with_changes(
            model=model or lane.model,
            chat=lane.chat or chat,
            system_prompt=system if system is not None else lane.system_prompt,
        )
        if lane.system_prompt and not lane.chat:
            raise ValueError(f"lane {name}: a system prompt needs chat mode (--chat or --{name.lower()}-chat)")
        lanes.append(lane)
    return lanes[0], lanes[1]


def lane_dict(lane: Lane, generation: Generation) -> dict[str, Any]:
    from dataclasses import asdict

    from llmscope.cli.report import generated_text, model_dict, token_dict

    return {
        "name": lane.name,
        "model": model_dict(lane.engine.info),
        "prompt": lane.prompt,
        "chat": lane.chat,
        "system_prompt": lane.system_prompt,
        "sampler": asdict(lane.config),
        "prompt_ids": list(generation.prompt_ids),
        "prompt_tokens": [token_dict(lane.engine.token_info(i)) for i in generation.prompt_ids],
        "text": generated_text(generation),
        "stop_reason": generation.stop_reason,
    }


def divergence_dict(figures: Divergence | None) -> dict[str, Any] | None:
    from llmscope.divergence import jsonable_nats

    if figures is None:
        return None
    return {
        "kl_ab_nats": jsonable_nats(figures.kl_ab),
        "kl_ba_nats": jsonable_nats(figures.kl_ba),
        "js_nats": figures.js,
        "kl_ab_bits": jsonable_nats(figures.kl_ab_bits),
        "kl_ba_bits": jsonable_nats(figures.kl_ba_bits),
        "js_bits": figures.js_bits,
        "top_n_overlap": figures.overlap,
        "top_n": figures.top_n,
    }


def compare_step_dict(record: CompareStep) -> dict[str, Any]:
    """One CompareStep as builtins for --json (infinite KL as the string 'inf')."""
    from dataclasses import asdict

    from llmscope.cli.report import token_dict

    def lane_token(lane: LaneToken | None) -> dict[str, Any] | None:
        return (
            None
            if lane is None
            else {
                "token": token_dict(lane.token),
                "probability": lane.probability,
                "raw_probability": lane.raw_probability,
                "raw_rank": lane.raw_rank,
            }
        )

    return {
        "index": record.index,
        "a": lane_token(record.a),
        "b": lane_token(record.b),
        "diverged": record.diverged,
        "first_divergence": record.first_divergence,
        "raw": divergence_dict(record.raw),
        "final": divergence_dict(record.final),
        "rows": [{**asdict(row), "delta": row.delta} for row in record.rows],
    }


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    tokenization = comparison.tokenization()
    return {
        "log_base": "e (divergences in nats; *_bits = nats / ln 2)",
        "distributions": {
            "raw": "softmax of each model's logits, float64",
            "final": "the distribution each lane sampled from, after its sampler stages",
        },
        "lanes": [lane_dict(lane, generation) for lane, generation in zip(comparison.lanes, comparison.generations)],
        "comparable": comparison.compatibility.comparable,
        "not_comparable_reason": comparison.compatibility.reason,
        "first_divergence": comparison.first_divergence,
        "tokenization": {
            "a_tokens": len(tokenization.a),
            "b_tokens": len(tokenization.b),
            "difference": tokenization.difference,
        },
        "steps": [compare_step_dict(record) for record in comparison.records()],
    }


def print_comparison(comparison: Comparison) -> None:
    """Lane headers, one row per step (first divergence marked), the aligned candidates there, then both texts."""
    from llmscope.cli.common import markup_safe, out, quoted_prompt
    from llmscope.cli.report import generated_text
    from llmscope.format import printable_text

    tokenization = comparison.tokenization()
    for lane, count in zip(comparison.lanes, (len(tokenization.a), len(tokenization.b))):
        described = markup_safe(f"{lane.describe()} · prompt {count} tokens: {quoted_prompt(lane.prompt)}")
        out.print(f"[bold]lane {lane.name}[/] {described}")
    out.print(
        f"[dim]tokenization: A {len(tokenization.a)} tokens, B {len(tokenization.b)} tokens "
        f"({tokenization.difference:+d})[/]"
    )
    if not comparison.compatibility.comparable:
        out.print(f"[bold yellow]divergence not comparable:[/] {markup_safe(comparison.compatibility.reason)}")
    out.print(
        f"[dim]KL and JS in nats (natural log) between the models' raw next-token distributions; JS final between "
        f"the distributions each lane sampled from; ∩ = shared share of the top-{comparison.top_n}.[/]\n"
    )
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("step", "right"),
        ("A token", "left"),
        ("B token", "left"),
        ("KL(A‖B)", "right"),
        ("KL(B‖A)", "right"),
        ("JS", "right"),
        ("JS final", "right"),
        ("∩", "right"),
        ("", "left"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    for record in comparison.records():
        marker = Text("◆ first", style="bold magenta") if record.first_divergence else Text("")
        raw, final = record.raw, record.final
        table.add_row(
            str(record.index),
            _token_cell(record.a, record.diverged),
            _token_cell(record.b, record.diverged),
            format_nats(raw.kl_ab if raw else None),
            format_nats(raw.kl_ba if raw else None),
            format_nats(raw.js if raw else None),
            format_nats(final.js if final else None),
            f"{raw.overlap:.0%}" if raw else "—",
            marker,
        )
    out.print(table)
    first = comparison.first_divergence
    out.print("")
    if first is None:
        out.print(f"[green]The lanes chose the same {comparison.length} tokens.[/]")
    else:
        print_aligned(comparison.record(first))
    out.rule("results")
    for lane, generation, reason in zip(comparison.lanes, comparison.generations, comparison.stop_reasons()):
        shown = ((printable_text(lane.prompt), "dim"), (printable_text(generated_text(generation)), "bold"))
        out.print(Text.assemble((f"{lane.name}: ", "bold"), *shown))
        out.print(f"[dim]   {len(generation.steps)} tokens · stopped: {reason or 'step limit reached'}[/]")


def _token_cell(lane: LaneToken | None, diverged: bool) -> Text:
    from llmscope.cli.common import visible

    if lane is None:
        return Text("(stopped)", style="dim italic")
    return Text(visible(lane.token.raw_bytes), style="bold yellow" if diverged else "green")


def print_aligned(record: CompareStep, rows: int = 8) -> None:
    """The candidates at the first divergence with both lanes' ranks and probabilities, shared tokens aligned."""
    from llmscope.cli.common import markup_safe, out, visible

    def chose(lane: LaneToken | None) -> str:
        return (
            f"{visible(lane.token.raw_bytes)} (id {lane.token.id}, p {lane.probability:.3f})"
            if lane
            else "nothing (stopped)"
        )

    out.print(
        f"[bold magenta]◆ first divergence at step {record.index}[/]: A chose {markup_safe(chose(record.a))}, "
        f"B chose {markup_safe(chose(record.b))}"
    )
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
    for column in ("token", "id", "rank A", "p A", "final A", "rank B", "p B", "final B", "Δp", ""):
        table.add_column(column, justify="left" if column in ("token", "") else "right")
    for row in record.rows[:rows]:
        mark = " ".join(name for name, chosen in (("◀A", row.chosen_a), ("◀B", row.chosen_b)) if chosen)
        ids = (
            str(row.id_a if row.id_a is not None else row.id_b)
            if row.id_a == row.id_b or None in (row.id_a, row.id_b)
            else f"{row.id_a}/{row.id_b}"
        )
        table.add_row(
            Text(visible(row.label or row.text)),
            ids,
            _num(row.rank_a, "d"),
            _num(row.p_a, ".3f"),
            _num(row.final_a, ".3f"),
            _num(row.rank_b, "d"),
            _num(row.p_b, ".3f"),
            _num(row.final_b, ".3f"),
            _num(row.delta, "+.3f"),
            Text(mark, style="bold"),
        )
    out.print(table)
    out.print(
        "[dim]p = raw probability (softmax of the logits); final = in the distribution the lane sampled from; "
        "Δp = p B − p A.[/]"
    )


def _num(value: float | int | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def compare(
    prompt_a: Annotated[str, typer.Argument(help="Prompt of lane A (and of lane B unless PROMPT_B is given).")],
    prompt_b: Annotated[str | None, typer.Argument(help="Prompt of lane B (default: PROMPT_A).")] = None,
    steps: Annotated[int, typer.Option(min=1, max=10_000, help="Step indices to generate.")] = 8,
    preset_name: Annotated[str | None, typer.Option("--preset", help=f"Experiment: {', '.join(EXPERIMENTS)}.")] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model of both lanes (registry name, directory, hub id).")
    ] = DEFAULT_MODEL,
    a_model: Annotated[str | None, _knob("Model of lane A (default --model).", "--a-model")] = None,
    b_model: Annotated[str | None, _knob("Model of lane B (default --model).", "--b-model")] = None,
    chat: Annotated[bool, typer.Option("--chat", help="Both lanes in chat mode.")] = False,
    a_chat: Annotated[bool, typer.Option("--a-chat", help="Lane A in chat mode.")] = False,
    b_chat: Annotated[bool, typer.Option("--b-chat", help="Lane B in chat mode.")] = False,
    system: Annotated[str | None, _knob("System prompt of both lanes (chat mode).", "--system")] = None,
    a_system: Annotated[str | None, _knob("System prompt of lane A.", "--a-system")] = None,
    b_system: Annotated[str | None, _knob("System prompt of lane B.", "--b-system")] = None,
    temperature: Annotated[float | None, _knob("Temperature of both lanes (0 = greedy).", "--temperature")] = None,
    a_temperature: Annotated[float | None, _knob("Temperature of lane A.", "--a-temperature")] = None,
    b_temperature: Annotated[float | None, _knob("Temperature of lane B.", "--b-temperature")] = None,
    top_k: Annotated[int | None, _knob("top-k of both lanes (0 = off).", "--top-k")] = None,
    a_top_k: Annotated[int | None, _knob("top-k of lane A.", "--a-top-k")] = None,
    b_top_k: Annotated[int | None, _knob("top-k of lane B.", "--b-top-k")] = None,
    top_p: Annotated[float | None, _knob("top-p of both lanes (1 = off).", "--top-p")] = None,
    a_top_p: Annotated[float | None, _knob("top-p of lane A.", "--a-top-p")] = None,
    b_top_p: Annotated[float | None, _knob("top-p of lane B.", "--b-top-p")] = None,
    min_p: Annotated[float | None, _knob("min-p of both lanes (0 = off).", "--min-p")] = None,
    a_min_p: Annotated[float | None, _knob("min-p of lane A.", "--a-min-p")] = None,
    b_min_p: Annotated[float | None, _knob("min-p of lane B.", "--b-min-p")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Sampler seed of both lanes.")] = 0,
    a_seed: Annotated[int | None, _knob("Seed of lane A.", "--a-seed")] = None,
    b_seed: Annotated[int | None, _knob("Seed of lane B.", "--b-seed")] = None,
    top_n: Annotated[
        int, typer.Option(min=1, max=200, help="N of the top-N overlap and the aligned candidates.")
    ] = DEFAULT_TOP_N,
    tui: Annotated[bool, typer.Option("--tui", help="Open the compare screen instead of printing tables.")] = False,
    save: Annotated[
        Path | None,
        typer.Option("--save", help="Save both lanes (same model only) as a session for `llmscope replay`."),
    ] = None,
    save_logits: Annotated[
        str, typer.Option("--save-logits", help="Logits kept per step: full (float16) or top-k:N.")
    ] = "full",
    device: DeviceOption = "auto",
    device_map: DeviceMapOption = None,
    max_memory: MaxMemoryOption = None,
    offload_folder: OffloadFolderOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run two lanes side by side (prompts, knobs, chat template or models differ) and show where they diverge."""
    from llmscope.cli.common import check_save_path, fail, out, user_errors, valid_prompt
    from llmscope.cli.placement import placement

    for text, what in ((prompt_a, "PROMPT_A"), (prompt_b, "PROMPT_B")):
        if text is not None:
            valid_prompt(text, what)
    if save is not None:
        from llmscope.session.files import parse_logits_option

        user_errors(lambda: parse_logits_option(save_logits))
        check_save_path(save, "--save")
        if tui:
            fail("--save works with the printed comparison, not with --tui")
    shared = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "min_p": min_p}
    base_config = user_errors(
        lambda: SamplerConfig(seed=seed).with_changes(
            **{name: value for name, value in shared.items() if value is not None}
        )
    )
    base = LaneSpec(model=model, prompt=prompt_a, chat=chat, system_prompt=system, config=base_config)
    specs = user_errors(
        lambda: lane_specs(
            base,
            prompt_b,
            preset_name,
            a_model,
            b_model,
            a_chat,
            b_chat,
            a_system,
            b_system,
            {"temperature": a_temperature, "top_k": a_top_k, "top_p": a_top_p, "min_p": a_min_p, "seed": a_seed},
            {"temperature": b_temperature, "top_k": b_top_k, "top_p": b_top_p, "min_p": b_min_p, "seed": b_seed},
        )
    )
    for name, spec in zip("AB", specs):
        user_errors(lambda: in_lane(name, lambda: resolve(spec.model)))
    where = placement(device_map, max_memory, offload_folder)
    if tui:
        from llmscope.tui.compare_launch import launch_compare_tui

        launch_compare_tui(specs, device=device, steps=steps, experiment=preset_name, placement=where)
        return
    comparison = user_errors(lambda: build_comparison(specs, device, json_output, top_n, where))
    if save is not None:
        from llmscope.compare.session import same_model

        if not same_model(comparison):
            fail(
                f"--save needs both lanes on one model (a session file holds one model): lane A runs "
                f"{comparison.lanes[0].engine.info.name}, lane B {comparison.lanes[1].engine.info.name}"
            )
    user_errors(lambda: comparison.run(steps))
    if json_output:
        from llmscope.cli.report import to_jsonable

        out.print_json(data=to_jsonable(comparison_dict(comparison)))
    else:
        print_comparison(comparison)
    if save is not None:
        save_comparison(comparison, save, save_logits)


def save_comparison(comparison: Comparison, path: Path, logits: str) -> None:
    """Write both lanes and the comparison event as one session file; say where on stderr."""
    from llmscope.cli.common import err, fail, user_errors
    from llmscope.compare.session import comparison_session
    from llmscope.session.files import save_session

    lanes = " vs ".join(lane.describe() for lane in comparison.lanes)
    session = user_errors(
        lambda: comparison_session(
            comparison,
            title=f"compare: {lanes}",
            description="Lane A is run 1, lane B run 2; the comparison event holds the per-step divergence figures.",
        )
    )
    try:
        saved = save_session(session, path, logits=logits)
    except (OSError, ValueError) as error:
        fail(f"cannot save to {path}: {getattr(error, 'strerror', None) or error}")
    err.print(
        f"[dim]saved both lanes ({comparison.length} steps) to {saved} ({saved.stat().st_size:,} bytes); "
        f"replay with: llmscope replay {saved} --headless[/]"
    )


def in_lane(name: str, action: Callable[[], T]) -> T:
    """Run `action`; a failure is re-raised as the same kind of error with the lane's name in front."""
    try:
        return action()
    except Exception as error:
        try:
            renamed = type(error)(f"lane {name}: {error}")
        except Exception:  # noqa: BLE001 - an error type with another signature keeps its own message
            raise error from None
        raise renamed from error


def build_comparison(
    specs: tuple[LaneSpec, LaneSpec],
    device: str,
    json_output: bool,
    top_n: int,
    placement: Mapping[str, Any] | None = None,
) -> Comparison:
    """Load one engine per lane (the same model twice when both lanes use it: each lane needs its own KV cache);
    `placement`: the checked --device-map, --max-memory and --offload-folder."""
    from llmscope.cli.common import load_engine
    from llmscope.compare.lanes import Comparison, Lane

    lanes = []
    for name, spec in zip("AB", specs):
        engine = in_lane(name, lambda: load_engine(spec.model, device, json_output, placement=placement))
        lanes.append(Lane(name, engine, spec.prompt, spec.chat, spec.system_prompt, spec.config))
    return Comparison(lanes[0], lanes[1], top_n=top_n)


def register(app: typer.Typer) -> None:
    """Add the `compare` command to the llmscope CLI."""
    app.command("compare")(compare)
