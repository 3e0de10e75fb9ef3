"""Plain summaries of generated steps, shared by the CLI's tables and its --json output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from llmscope.cli.common import out, visible
from llmscope.format import format_bytes
from llmscope.generation import Generation
from llmscope.sampler import SampleResult
from llmscope.trace import ModelInfo, StepTrace, TokenInfo


def token_dict(token: TokenInfo) -> dict[str, Any]:
    return {
        "id": token.id,
        "text": token.text,
        "piece": token.piece,
        "bytes": token.raw_bytes.hex(),
        "special": token.special,
    }


def candidate_rows(result: SampleResult, count: int, token_info: Callable[[int], TokenInfo]) -> list[dict[str, Any]]:
    """The `count` most likely raw tokens with raw logit, raw probability and final probability."""
    rows = []
    for rank, token_id in enumerate(result.top(count), start=1):
        token = token_info(token_id)
        rows.append(
            {
                "rank": rank,
                "id": token_id,
                "text": token.text,
                "logit": float(result.raw_logits[token_id]),
                "p_raw": float(result.raw_probs[token_id]),
                "p_final": float(result.final_probs[token_id]),
                "chosen": token_id == result.token_id,
            }
        )
    return rows


def survivors(result: SampleResult) -> list[dict[str, Any]]:
    """How many tokens each sampler stage left, in the order the stages ran."""
    return [
        {"stage": stage.name, "label": stage.label, "active": stage.active, "kept": stage.kept}
        for stage in result.stages
    ]


def step_dict(
    trace: StepTrace, result: SampleResult, candidates: int, token_info: Callable[[int], TokenInfo]
) -> dict[str, Any]:
    assert trace.chosen is not None
    kv = trace.kv
    return {
        "index": trace.index,
        "position": trace.position,
        "token": token_dict(trace.chosen),
        "p_raw": float(result.raw_probs[result.token_id]),
        "p_final": float(result.final_probs[result.token_id]),
        "candidates": candidate_rows(result, candidates, token_info),
        "survivors": survivors(result),
        "vocab_size": int(result.raw_logits.shape[0]),
        "entropy_raw_nats": result.entropy_raw,
        "entropy_final_nats": result.entropy_final,
        "kv_bytes": kv.total_bytes if kv else None,
        "kv_formula_bytes": kv.formula_bytes if kv else None,
        "kv_tokens": kv.tokens if kv else None,
        "forward_ms": trace.forward_ms,
        "hidden_norm_final": float(trace.hidden_norms[-1]) if trace.hidden_norms is not None else None,
        "routing": routing_dict(trace),
        "lens": lens_dict(trace),
    }


def lens_dict(trace: StepTrace) -> dict[str, Any] | None:
    """The chosen token's path up the layers (logit lens; None when not captured): rank and probability per row
    (row 0 the embeddings), where it is first top-1 and from where it stays top-1."""
    lens = trace.lens
    if lens is None or lens.chosen_rank is None or lens.chosen_prob is None:
        return None
    return {
        "chosen_rank": lens.chosen_rank.tolist(),
        "chosen_prob": [float(prob) for prob in lens.chosen_prob],
        "first_top1_layer": lens.first_top1_layer(),
        "settled_layer": lens.settled_layer(),
    }


def routing_dict(trace: StepTrace) -> dict[str, Any] | None:
    """Experts and weights the router used for this step's last position, per MoE layer (None without routing)."""
    router = trace.router
    if router is None:
        return None
    return {
        "rule": router.rule,
        "layers": list(router.layers),
        "experts": router.experts[:, -1].tolist(),
        "weights": router.weights[:, -1].tolist(),
    }


def model_dict(info: ModelInfo) -> dict[str, Any]:
    data = asdict(info)
    data["moe_layers"] = list(info.moe_layers)
    data["eos_token_ids"] = list(info.eos_token_ids)
    return data


def generation_dict(generation: Generation, prompt: str, candidates: int, stop_reason: str | None) -> dict[str, Any]:
    """Everything `llmscope generate --json` prints."""
    engine = generation.engine
    steps = [
        step_dict(step.trace, generation.sample_result(number), candidates, engine.token_info)
        for number, step in enumerate(generation.steps)
    ]
    text = generated_text(generation)
    return {
        "model": model_dict(engine.info),
        "prompt": prompt,
        "prompt_ids": list(generation.prompt_ids),
        "sampler": asdict(generation.config),
        "steps": steps,
        "text": text,
        "stop_reason": stop_reason,
        "forward_calls": engine.forward_calls,
        "capabilities": asdict(engine.capabilities),
    }


def generated_text(generation: Generation) -> str:
    """The generated continuation, joined at the byte level so split multi-byte characters survive."""
    joined = b"".join(step.trace.chosen.raw_bytes for step in generation.steps if step.trace.chosen)
    return joined.decode("utf-8", errors="replace")


def to_jsonable(value: Any) -> Any:
    """numpy scalars and arrays into builtins, for json.dumps."""
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def print_step(step: dict[str, Any]) -> None:
    """One step as a header line, the survivors of each sampler stage, and the candidate table."""
    token = step["token"]
    kv = f"KV {format_bytes(step['kv_bytes'])}" if step["kv_bytes"] is not None else "KV off"
    header = Text.assemble(
        (f"step {step['index']:>3} ", "bold"),
        (visible(bytes.fromhex(token["bytes"])), "bold green"),
        f"  id {token['id']}",
        f"  p_raw {step['p_raw']:.3f}  p_final {step['p_final']:.3f}",
        f"  H {abs(step['entropy_raw_nats']):.2f}→{abs(step['entropy_final_nats']):.2f} nats  {kv}  {step['forward_ms']:.0f} ms",
    )
    out.print(header)
    stages = "  ".join(
        f"{stage['label']}: {stage['kept']:,}" if stage["active"] else f"[dim]{stage['label']}[/]"
        for stage in step["survivors"]
    )
    out.print(f"  survivors of {step['vocab_size']:,}: {stages}")
    if lens := step.get("lens"):  # recorded with the logit lens: where the token formed
        first, settled = lens["first_top1_layer"], lens["settled_layer"]
        where = "no layer ranks it first" if first is None else f"top-1 first at layer {first or 'emb'}"
        if settled is not None and settled != first:
            where += f", stays top-1 from layer {settled}"
        out.print(f"  logit lens: {where}; rank per layer " + " ".join(map(str, lens["chosen_rank"])))
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("rank", "right"),
        ("token", "left"),
        ("id", "right"),
        ("logit", "right"),
        ("p_raw", "right"),
        ("p_final", "right"),
    )
    for column, justify in columns:
        table.add_column(column, justify=justify, style="dim" if column in ("rank", "id") else None)
    for row in step["candidates"]:
        style = "bold green" if row["chosen"] else ("strike dim" if row["p_final"] == 0 else None)
        table.add_row(
            str(row["rank"]),
            Text(visible(row["text"])),  # a Text, so a token reading '[/x]' is not taken for markup
            str(row["id"]),
            f"{row['logit']:.2f}",
            f"{row['p_raw']:.4f}",
            f"{row['p_final']:.4f}",
            style=style,
        )
    out.print(table, "")
