"""Train llmscope's shipped tiny models (`tiny-dense`, `tiny-moe`) offline and write their cards.

Run from the repository root, one model at a time (2 CPU cores):

    .venv/bin/python training/train_tiny.py --model tiny-dense
    .venv/bin/python training/train_tiny.py --model tiny-moe

Everything is seeded (python, numpy, torch) and the data order comes from one numpy Generator,
so a rerun on the same software versions reproduces the run up to floating-point thread effects.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import sys
import time
from pathlib import Path

import bpe
import card
import corpus
import evaluate
import numpy as np
import shapes
import torch
import torch.nn.functional as F
from data import IGNORE_INDEX, BatchPlan, BatchSampler, encode_documents
from tqdm import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR = Path.home() / ".cache" / "llmscope-training"
DOMAINS = ("shakespeare", "python")
SAMPLE_CHARS = 6000  # size of each shipped validation sample
INDUCTION_PERIODS = (10, 25, 50, 100)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults are the settings that produced the shipped models."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=shapes.MODEL_NAMES, required=True)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default per model)")
    p.add_argument(
        "--rows", default="12,8,4", help="rows per batch: shakespeare,python,synthetic-repeat (default 12,8,4)"
    )
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--aux-coef", type=float, default=0.02, help="router aux-loss coefficient (MoE)")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="sdist cache and logs")
    p.add_argument(
        "--out-dir", type=Path, default=None, help="where to write the model (default llmscope/models/<model>)"
    )
    args = p.parse_args(argv)
    if args.steps is None:
        args.steps = DEFAULT_STEPS[args.model]
    if args.out_dir is None:
        args.out_dir = REPO_ROOT / "llmscope" / "models" / args.model
    return args


# Fixed step counts (not a time budget) so reruns are reproducible. Chosen from the smoke runs'
# throughput on 2 idle cores (~0.5 s/step dense, ~0.7 s/step MoE: 12-14 minutes each); the shipped
# runs took 40 and 23 minutes because other jobs shared the cores.
DEFAULT_STEPS = {"tiny-dense": 1500, "tiny-moe": 1200}


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; pin the thread count."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr at the last step."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: PreTrainedModel, args: argparse.Namespace) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices (and expert tensors) only, not on norms."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy; labels equal to IGNORE_INDEX are skipped."""
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX
    )


def per_layer_aux_loss(router_logits: tuple[torch.Tensor, ...], cfg) -> torch.Tensor:
    """Mean over layers of Mixtral's load-balancing loss, each layer on its own (balanced = top_k).

    transformers pools all layers into one loss, which can stay balanced while single layers
    collapse; applying it per layer keeps every layer's load spread.
    """
    losses = [load_balancing_loss_func((g,), cfg.num_local_experts, cfg.num_experts_per_tok) for g in router_logits]
    return torch.stack(losses).mean()


def train(
    model: PreTrainedModel,
    sampler: BatchSampler,
    val_windows: dict[str, torch.Tensor],
    args: argparse.Namespace,
    log_path: Path,
) -> dict[str, object]:
    """The training loop; returns wall-clock seconds, tokens seen and the loss history."""
    is_moe = args.model == "tiny-moe"
    opt = make_optimizer(model, args)
    history: list[dict[str, float]] = []
    ema = None
    start = time.perf_counter()
    bar = tqdm(range(args.steps), desc=args.model, mininterval=5, file=sys.stderr)
    with log_path.open("w") as log:
        for step in bar:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, args)
            ids, labels, _ = sampler.next_batch()
            model.train()
            out = model(input_ids=ids, output_router_logits=True) if is_moe else model(input_ids=ids)
            loss = lm_loss(out.logits, labels)
            aux = per_layer_aux_loss(out.router_logits, model.config) if is_moe else torch.zeros(())
            (loss + args.aux_coef * aux).backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            bar.set_postfix(loss=f"{ema:.3f}", aux=f"{aux.item():.3f}", lr=f"{lr_at(step, args):.2e}", refresh=False)
            record = {
                "step": step + 1,
                "loss": loss.item(),
                "aux": aux.item(),
                "grad_norm": grad_norm.item(),
                "lr": lr_at(step, args),
                "elapsed": time.perf_counter() - start,
            }
            if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
                model.eval()
                for domain, windows in val_windows.items():
                    record[f"val_{domain}"] = evaluate.mean_nll(model, windows[:8])
                tqdm.write(
                    f"step {step + 1}: loss(ema) {ema:.3f} aux {aux.item():.3f} "
                    + " ".join(f"val_{d} {record[f'val_{d}']:.3f}" for d in val_windows)
                    + f" {record['elapsed']:.0f}s",
                    file=sys.stderr,
                )
            log.write(json.dumps(record) + "\n")
            history.append(record)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens": args.steps * sampler.plan.batch_size * args.seq_len, "history": history}


def validation_sample(docs: list[corpus.Document], chars: int) -> str:
    """A few KB of held-out text: from a third of the way in, paragraph-aligned, ending on a line."""
    text = "\n".join(d.text for d in docs)
    start = text.index("\n\n", len(text) // 3) + 2
    piece = text[start : start + chars]
    return piece[: piece.rindex("\n") + 1]


def export(model: PreTrainedModel, tokenizer, samples: dict[str, str], out_dir: Path) -> None:
    """Write fp16 safetensors, config (attention implementation unset), tokenizer and samples."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if stale.is_file():
            stale.unlink()
    model.config._attn_implementation = None  # let the loader pick (llmscope wants eager)
    model.to(torch.float16).save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    for domain, text in samples.items():
        (out_dir / f"validation_{domain}.txt").write_text(text, encoding="utf-8")


def measure_shipped(out_dir: Path, val_ids: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, object]:
    """Reload the shipped directory (fp32, eager) and take every measurement the card reports."""
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32, attn_implementation="eager")
    load_seconds = time.perf_counter() - t0
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(out_dir))
    bos = tok.bos_token_id
    m: dict[str, object] = {"load_seconds": load_seconds, "val": {}, "sample": {}}
    windows = {d: evaluate.make_windows(val_ids[d], args.seq_len, bos) for d in DOMAINS}
    sample_windows = {}
    for d in DOMAINS:
        text = (out_dir / f"validation_{d}.txt").read_text(encoding="utf-8")
        sample_windows[d] = evaluate.make_windows(
            np.asarray(tok(text, add_special_tokens=False).input_ids), args.seq_len, bos
        )
        nll = evaluate.mean_nll(model, windows[d])
        m["val"][d] = {"nll": nll, "ppl": evaluate.perplexity(nll), "tokens": int(windows[d][:, 1:].numel())}
        snll = evaluate.mean_nll(model, sample_windows[d])
        m["sample"][d] = {
            "nll": snll,
            "ppl": evaluate.perplexity(snll),
            "tokens": int(sample_windows[d][:, 1:].numel()),
        }
    if args.model == "tiny-moe":
        m["expert_load_val"] = {d: evaluate.expert_load(model, windows[d]) for d in DOMAINS}
        m["expert_load_sample"] = {d: evaluate.expert_load(model, sample_windows[d]) for d in DOMAINS}
    m["induction"] = evaluate.induction_scores(
        model, bos, len(bpe.SPECIAL_TOKENS), INDUCTION_PERIODS, per_period=8, seed=args.seed
    )
    gen_model = AutoModelForCausalLM.from_pretrained(str(out_dir))  # as shipped: fp16, default attention
    m["samples"] = evaluate.samples(gen_model, tok, card.PROMPTS, max_new_tokens=60, seed=args.seed)
    return m


def main(argv: list[str] | None = None) -> None:
    """Build data and tokenizer, train, export, measure and write the model card."""
    args = parse_args(argv)
    command = ".venv/bin/python training/train_tiny.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    seed_everything(args.seed, args.threads)
    args.work_dir.mkdir(parents=True, exist_ok=True)

    data = corpus.build_corpus(args.work_dir)
    raw_tok = bpe.train_bpe([d.text for dom in DOMAINS for d in data.train[dom]], args.vocab_size)
    tokenizer = bpe.save_fast_tokenizer(raw_tok, args.work_dir / "tokenizer", args.seq_len)
    bos, eos, pad = (raw_tok.token_to_id(t) for t in bpe.SPECIAL_TOKENS)
    train_ids = {d: encode_documents(raw_tok, data.train[d], eos) for d in DOMAINS}
    val_ids = {d: encode_documents(raw_tok, data.validation[d], eos) for d in DOMAINS}
    val_windows = {d: evaluate.make_windows(val_ids[d], args.seq_len, bos) for d in DOMAINS}

    rows = dict(zip(("shakespeare", "python", "synthetic"), (int(x) for x in args.rows.split(","))))
    plan = BatchPlan(rows={k: v for k, v in rows.items() if v > 0}, seq_len=args.seq_len)
    sampler = BatchSampler(train_ids, plan, bos, len(bpe.SPECIAL_TOKENS), args.vocab_size, args.seed)

    config = shapes.make_config(args.model, args.vocab_size, bos, eos, pad, args.aux_coef)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {n_params:,} parameters; corpus {data.stats()}", file=sys.stderr)

    run = train(model, sampler, val_windows, args, args.work_dir / f"{args.model}.log.jsonl")
    model.eval()
    fp32_val = {d: evaluate.mean_nll(model, val_windows[d]) for d in DOMAINS}

    samples = {d: validation_sample(data.validation[d], SAMPLE_CHARS) for d in DOMAINS}
    export(model, tokenizer, samples, args.out_dir)
    measured = measure_shipped(args.out_dir, val_ids, args)
    report = {
        "model": args.model,
        "command": command,
        "args": vars(args),
        "n_params": n_params,
        "config": config,
        "corpus": data.stats(),
        "corpus_sha256": corpus.corpus_digest(data),
        "train": run,
        "fp32_val": fp32_val,
        "measured": measured,
        "plan": plan,
    }
    card.write_card(args.out_dir, report)
    print(card.summary(report), file=sys.stderr)


if __name__ == "__main__":
    main()
