"""The training loop the retriever and the ranker share (in the manner of nanoGPT's train.py).

A trainer prepares its model and data, then hands `train` a `Run`: the token lengths of its
training examples (for length-bucketed batches), `batch_loss` (the loss of one batch of example
indices at a step), `evaluate` (dev metrics, or None without a dev set) and, when parts of the
model learn at their own rate, its AdamW parameter groups. The loop owns the optimiser (AdamW,
gradients clipped at norm 1), the linear warm-up schedule, resuming, the time limit, checkpoints
every `checkpoint_every` steps (the checkpoint state is built in `_training_state` only; each
records the mean training loss since the last one and the dev metrics), keeping the best dev MRR
in `best/`, and the final model folder.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from .checkpoints import (
    BEST,
    CHECKPOINT,
    finish,
    save_checkpoint,
    save_weights,
)
from .config import LoopConfig, config_to_json
from .data import bucketed_batches, resolve_device
from .models import CrossEncoder, DualEncoder
from .seeding import restore_rng, seed_everything


@dataclass
class Run:
    """What a trainer hands the loop: where to write, what to train, and how to score it."""

    kind: str  # "retriever" | "ranker": the progress bar's name and the card's kind
    config: LoopConfig  # a RetrieverConfig or RankerConfig, stored with every checkpoint
    out: Path
    model: DualEncoder | CrossEncoder
    tokenizer: Path
    data: dict[str, Any]  # the training data's description on the card (pairs file, count, sha256)
    lengths: list[int]  # token length of each training example
    batch_loss: Callable[[list[int], int], Tensor]  # (example indices, step) -> scalar loss
    evaluate: Callable[[], dict[str, Any]] | None  # dev metrics with "mrr"; None without a dev set
    parameter_groups: list[dict[str, Any]] | None = None  # AdamW groups with their own "lr"; None =
    # every trainable parameter at config.lr
    best_keys: tuple[str, ...] = ("mrr",)  # dev metrics kept with the best step (the card reads them)
    dev_line: Callable[[dict[str, Any], dict[str, Any]], str] | None = None  # (history entry, best) ->
    # the progress line after a dev evaluation; None = the dev MRR and the best so far
    started: float = field(default_factory=time.monotonic)  # training time counts from here


def default_torch_threads() -> int:
    """torch's CPU threads when the config says 0: all cores. (The runtime's ONNX default,
    `server.config.default_onnx_threads`, stops at four: a search shares the machine with the editor.)"""
    return max(1, os.cpu_count() or 1)


def dev_mrr_line(entry: dict[str, Any], best: dict[str, Any]) -> str:
    """The progress line after a dev evaluation: its MRR and the best so far."""
    return f"step {entry['step']}: dev MRR {entry['mrr']:.4f} (best {best['mrr']:.4f} at {best['step']})"


def start(seed: int, threads: int, device: str) -> torch.device:
    """Seed every generator, set torch's threads (0 = all cores) and pick the device."""
    seed_everything(seed)
    torch.set_num_threads(threads or default_torch_threads())
    return resolve_device(device)


def linear_warmup_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first `warmup` share of the steps, then linear decay to 0."""
    warmup_steps = max(1, round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _training_state(
    run: Run,
    step: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[dict[str, float]],
    best: dict[str, Any],
) -> dict[str, Any]:
    """Everything a resumed run needs besides the weights (the RNG state is added on save)."""
    return {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": config_to_json(run.config),
        "history": history,
        "seconds": time.monotonic() - run.started,
        "best": best,
    }


def train(run: Run, state: dict[str, Any] | None) -> Path:
    """Train to the configured number of steps (or the time limit) from `state` (a checkpoint's, or
    None for a fresh start); returns the result's model folder (`out/model`).

    Long on purpose: the loop reads top to bottom, as nanoGPT's train.py does (STYLE.md): optimiser,
    resume, the checkpoint it writes, the steps, the result.
    """
    config = run.config
    steps_per_epoch = len(bucketed_batches(run.lengths, config.batch_size, config.seed))
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    groups = run.parameter_groups or [
        {"params": [parameter for parameter in run.model.parameters() if parameter.requires_grad]}
    ]
    trainable = [parameter for group in groups for parameter in group["params"]]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = linear_warmup_schedule(optimizer, total, config.warmup)
    step, history, best = 0, [], {"step": -1, "mrr": -1.0}
    losses: list[float] = []  # training loss of each step since the last checkpoint
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, best = state["step"], state["history"], state["best"]
        run.started -= state.get("seconds", 0.0)
        restore_rng(state["rng"])
    info = {"kind": run.kind, "config": config_to_json(run.config), "data": run.data}

    def checkpoint(evaluate: bool = True) -> None:
        nonlocal best
        entry: dict[str, Any] = {"step": step, "loss": round(sum(losses) / max(1, len(losses)), 5)}
        losses.clear()
        if run.evaluate is not None and evaluate:
            metrics = run.evaluate()
            run.model.train()
            entry.update(metrics)
            if float(metrics["mrr"]) > float(best["mrr"]):
                best = {"step": step, **{key: metrics[key] for key in run.best_keys}}
                save_weights(run.out / BEST, run.model, run.tokenizer, {**info, "step": step, "dev": metrics})
            print((run.dev_line or dev_mrr_line)(entry, best), file=sys.stderr)
        history.append(entry)
        training = _training_state(run, step, optimizer, scheduler, history, best)
        save_checkpoint(run.out, run.model, run.tokenizer, {**info, "step": step}, training)

    def out_of_time() -> bool:
        return config.time_limit > 0 and time.monotonic() - run.started >= config.time_limit

    run.model.train()
    epoch_batches: dict[int, list[list[int]]] = {}
    progress = (
        tqdm(  # gone when done: a caller's lines stay one a stage (a width-less terminal showed blanks)
            total=total,
            initial=step,
            desc=run.kind,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )
    )
    while step < total and not out_of_time():
        epoch, position = divmod(step, steps_per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: bucketed_batches(run.lengths, config.batch_size, config.seed + epoch)}
        loss = run.batch_loss(epoch_batches[epoch][position], step)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(loss.item())
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
        last = step == total or out_of_time()
        if step % config.checkpoint_every == 0 or last:
            checkpoint(last or step % (config.dev_every or config.checkpoint_every) == 0)
    progress.close()
    if step < total:
        print(f"{run.kind}: time limit reached at step {step} of {total}", file=sys.stderr)
    if not (run.out / CHECKPOINT).exists():
        checkpoint()
    seconds = round(time.monotonic() - run.started, 1)
    summary = {**info, "step": step, "seconds": seconds, "dev_history": history, "best": best}
    return finish(run.out, run.evaluate is not None, summary)
