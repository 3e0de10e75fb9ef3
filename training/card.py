"""Render MODEL_CARD.md for a trained tiny model from the training script's report.

The card ends with two machine-readable fenced blocks that tests read: ```sha256 (one
"<hash>  <file>" line per shipped file) and ```json (the measured metrics).
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import corpus
import numpy as np
import tokenizers
import torch
import transformers

CARD_NAME = "MODEL_CARD.md"
PROMPTS = [
    "KING.\nWhat say you, my lord?\n\n",
    "SCENE II. A room in the palace.\n\n[Enter ",
    "def shutil.copyfile(src, dst)\n\n",
    'The "while" statement\n*********************\n\n',
]


def sha256_lines(out_dir: Path) -> list[str]:
    """`<sha256>  <name>` for every shipped file except the card itself, sorted by name."""
    lines = []
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and path.name != CARD_NAME:
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")
    return lines


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _architecture(report: dict) -> list[str]:
    cfg = report["config"]
    rows = [
        ("class", f"{type(cfg).__name__} / {cfg.architectures[0] if cfg.architectures else ''}"),
        ("layers", cfg.num_hidden_layers),
        ("hidden size", cfg.hidden_size),
        ("attention heads (query / key-value)", f"{cfg.num_attention_heads} / {cfg.num_key_value_heads} (GQA)"),
        ("head dim", cfg.head_dim),
        ("MLP", f"SwiGLU, intermediate {cfg.intermediate_size}"),
    ]
    if report["model"] == "tiny-moe":
        rows += [
            ("experts", f"{cfg.num_local_experts}, top-{cfg.num_experts_per_tok} (softmax, top-k, renormalise)"),
            ("router aux-loss coefficient", f"{cfg.router_aux_loss_coef} (applied per layer, see below)"),
        ]
    rows += [
        ("vocabulary", f"{cfg.vocab_size} (byte-level BPE)"),
        ("context (trained)", cfg.max_position_embeddings),
        ("positions", f"RoPE, theta {cfg.rope_parameters['rope_theta']:g}"),
        ("norm", f"RMSNorm, eps {cfg.rms_norm_eps}"),
        ("tied input/output embeddings", cfg.tie_word_embeddings),
        ("parameters", f"{report['n_params']:,}" + _active(report)),
        ("shipped dtype", "float16 safetensors (trained in float32)"),
    ]
    return ["| field | value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]


def _active(report: dict) -> str:
    """Parameters used per token, for the MoE (only top-k of the expert tensors)."""
    cfg = report["config"]
    if report["model"] != "tiny-moe":
        return ""
    per_expert = 3 * cfg.hidden_size * cfg.intermediate_size
    idle = cfg.num_hidden_layers * (cfg.num_local_experts - cfg.num_experts_per_tok) * per_expert
    return f" ({report['n_params'] - idle:,} active per token)"


def _expert_tables(load: dict[str, np.ndarray]) -> list[str]:
    """Per-layer expert load (percent of top-k slots) for each domain, with TV and top-2 share."""
    n_experts = load["shakespeare"].shape[1]
    head = "| layer | domain | " + " | ".join(f"e{i}" for i in range(n_experts)) + " | top-2 share | TV(domains) |"
    lines = [head, "|" + " --- |" * (n_experts + 4)]
    tv = 0.5 * np.abs(load["shakespeare"] - load["python"]).sum(axis=1)
    for layer in range(load["shakespeare"].shape[0]):
        for domain in ("shakespeare", "python"):
            row = load[domain][layer]
            share = np.sort(row)[-2:].sum()
            lines.append(
                f"| {layer} | {domain} | " + " | ".join(_pct(x) for x in row) + f" | {_pct(share)} | {tv[layer]:.3f} |"
            )
    return lines


def metrics_json(report: dict) -> dict:
    """The numbers tests and people may want to read back, as plain JSON."""
    m = report["measured"]
    scores = m["induction"]["scores"]
    out = {
        "model": report["model"],
        "n_params": report["n_params"],
        "steps": report["args"]["steps"],
        "train_seconds": round(report["train"]["seconds"], 1),
        "tokens_seen": report["train"]["tokens"],
        "validation": {
            d: {k: round(v, 5) if isinstance(v, float) else v for k, v in x.items()} for d, x in m["val"].items()
        },
        "validation_sample": {
            d: {k: round(v, 5) if isinstance(v, float) else v for k, v in x.items()} for d, x in m["sample"].items()
        },
        "induction_best_per_layer": [round(float(s.max()), 4) for s in scores],
        "induction_loss_first_copy": round(m["induction"]["loss_first_copy"], 4),
        "induction_loss_second_copy": round(m["induction"]["loss_second_copy"], 4),
    }
    if "expert_load_sample" in m:
        for key in ("expert_load_val", "expert_load_sample"):
            load = m[key]
            out[key] = {d: np.round(v, 5).tolist() for d, v in load.items()}
            out[key.replace("expert_load", "tv")] = np.round(
                0.5 * np.abs(load["shakespeare"] - load["python"]).sum(axis=1), 4
            ).tolist()
            out[key.replace("expert_load", "top2_share")] = {
                d: np.round(np.sort(v, axis=1)[:, -2:].sum(axis=1), 4).tolist() for d, v in load.items()
            }
        out["router_aux_loss_coef"] = report["config"].router_aux_loss_coef
    return out


def render(report: dict, sha_lines: list[str]) -> str:
    """The whole card as markdown."""
    name, args, m, run = report["model"], report["args"], report["measured"], report["train"]
    plan = report["plan"]
    cls = "8-expert top-2 Mixtral" if name == "tiny-moe" else "dense Llama with grouped-query attention"
    lines = [
        f"# {name}",
        "",
        f"A {report['n_params'] / 1e6:.2f} M-parameter {cls}, trained from scratch on CPU by llmscope's own "
        "reproducible script so that the playground has a real trained model that loads in milliseconds"
        + (" and a router that has learned something." if name == "tiny-moe" else "."),
        "It writes Shakespeare-like verse and Python-documentation-like prose; it knows nothing else.",
        "",
        "## Data and licences",
        "",
        f"- {corpus.SHAKESPEARE_ATTRIBUTION}",
        f"- {corpus.PYTHON_ATTRIBUTION}",
        "- Model weights and this card: Apache-2.0, like llmscope.",
        "",
        "| split / domain | documents | characters |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {k} | {v['documents']} | {v['chars']:,} |" for k, v in report["corpus"].items()]
    lines += [
        "",
        f"Validation holds out whole documents: the plays {', '.join(corpus.SHAKESPEARE_VALIDATION)}, and every "
        f"{corpus.PYTHON_VALIDATION_STRIDE}th Python document (sorted by name, offset "
        f"{corpus.PYTHON_VALIDATION_OFFSET}). The tokenizer was trained on the training split only. "
        f"Corpus SHA-256 (all documents): `{report['corpus_sha256']}`. The Python docstrings depend on the "
        "CPython version that runs the script.",
        "`validation_shakespeare.txt` and `validation_python.txt` are small held-out samples shipped for tests.",
        "",
        "## How it was made",
        "",
        "```sh",
        report["command"],
        "```",
        "",
        f"Software: Python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, tokenizers {tokenizers.__version__}; {args['threads']} CPU threads, seed "
        f"{args['seed']}.",
        "",
        f"- {args['steps']} AdamW steps (betas 0.9/0.95, weight decay {args['weight_decay']}), peak lr {args['lr']}, "
        f"{args['warmup']} warmup steps, cosine decay to {args['min_lr_ratio']}x; gradient clipping 1.0; float32.",
        f"- Batches of {plan.batch_size} rows x {args['seq_len']} tokens, each row BOS + one domain: "
        + ", ".join(f"{v} {k}" for k, v in plan.rows.items())
        + f" (synthetic rows repeat a random token span with a period drawn from {plan.min_period}-"
        f"{plan.max_period}; loss only on the repeats, to grow induction heads).",
        f"- Tokens seen: {run['tokens']:,}; training wall-clock {run['seconds'] / 60:.1f} min "
        f"({run['seconds'] / args['steps']:.2f} s/step) on a shared 2-core machine.",
    ]
    if name == "tiny-moe":
        lines.append(
            f"- Router aux loss: Mixtral's load-balancing loss computed per layer and averaged "
            f"(transformers pools all layers, which can hide a collapsed layer), coefficient "
            f"{args['aux_coef']}."
        )
    lines += ["", "## Architecture", ""] + _architecture(report)
    lines += [
        "",
        "## Validation",
        "",
        "Mean next-token loss over non-overlapping 256-token windows (BOS + 255 tokens) of the held-out text.",
        "",
        "| domain | tokens | loss as trained (fp32) | loss shipped (fp16 weights) | perplexity shipped |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d, v in m["val"].items():
        lines.append(f"| {d} | {v['tokens']:,} | {report['fp32_val'][d]:.4f} | {v['nll']:.4f} | {v['ppl']:.2f} |")
    lines += [
        "",
        "On the shipped samples (what `tests/test_tiny_models.py` recomputes):",
        "",
        "| sample | tokens | loss | perplexity |",
        "| --- | --- | --- | --- |",
    ]
    for d, v in m["sample"].items():
        lines.append(f"| validation_{d}.txt | {v['tokens']:,} | {v['nll']:.4f} | {v['ppl']:.2f} |")
    if name == "tiny-moe":
        lines += [
            "",
            "## Expert load per layer and domain",
            "",
            "Percent of top-2 routing slots per expert on the whole validation split of each domain "
            "(softmax over the router logits, top-2), the share of the two busiest experts, and the "
            "total-variation distance between the two domains' loads.",
            "",
        ]
        lines += _expert_tables(m["expert_load_val"])
        tv_s = 0.5 * np.abs(m["expert_load_sample"]["shakespeare"] - m["expert_load_sample"]["python"]).sum(axis=1)
        lines += [
            "",
            "On the shipped samples the TV distances per layer are " + ", ".join(f"{x:.3f}" for x in tv_s) + ".",
        ]
    scores = m["induction"]["scores"]
    lines += [
        "",
        "## Induction heads",
        "",
        f"Random token spans repeated twice (periods {', '.join(map(str, (10, 25, 50, 100)))}, 8 each); score = mean "
        "attention from each second-copy token to the token after its first occurrence.",
        "",
        "| layer | best head | score | all heads |",
        "| --- | --- | --- | --- |",
    ]
    for layer, row in enumerate(scores):
        lines.append(
            f"| {layer} | {int(row.argmax())} | {row.max():.3f} | " + ", ".join(f"{x:.2f}" for x in row) + " |"
        )
    lines += [
        "",
        f"Loss on the first copy {m['induction']['loss_first_copy']:.2f} nats, on the second copy "
        f"{m['induction']['loss_second_copy']:.2f} nats (uniform guessing: {np.log(report['config'].vocab_size):.2f}).",
    ]
    lines += [
        "",
        "## Samples",
        "",
        "From the shipped weights (fp16, default attention); sampled with temperature 0.8, top-k 40, seed "
        f"{args['seed']}; 60 new tokens.",
        "",
    ]
    for s in m["samples"]:
        lines += [
            f"Prompt: `{json.dumps(s['prompt'])}`",
            "",
            "Greedy:",
            "",
            "```text",
            s["prompt"] + s["greedy"],
            "```",
            "",
            "Sampled:",
            "",
            "```text",
            s["prompt"] + s["sampled"],
            "```",
            "",
        ]
    lines += [
        "## Load time",
        "",
        f"`AutoModelForCausalLM.from_pretrained` of this directory took {m['load_seconds'] * 1000:.0f} ms "
        "after imports when the card was written.",
        "",
        "## Files",
        "",
        "```sha256",
        *sha_lines,
        "```",
        "",
        "## Metrics (machine-readable)",
        "",
        "```json",
        json.dumps(metrics_json(report), indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def write_card(out_dir: Path, report: dict) -> Path:
    """Hash the shipped files and write MODEL_CARD.md next to them."""
    path = out_dir / CARD_NAME
    path.write_text(render(report, sha256_lines(out_dir)), encoding="utf-8")
    return path


def summary(report: dict) -> str:
    """A few lines for the terminal at the end of a run."""
    return json.dumps(metrics_json(report), indent=1)
