"""Fine-tune the retriever (dual encoder) on (description, code) pairs.

Reads top to bottom: the config, the data (pairs, tokens, mined hard negatives), the models (the
one being trained and any frozen estimator or teacher), then the loop. Losses (docs/TRAINING.md,
"The retriever"):

- ``infonce``: in-batch InfoNCE, plus ``hard_negatives`` mined negatives per query (shared
  across the batch), duplicates of a query's code masked out;
- ``softinfonce``: Soft-InfoNCE, the in-batch negatives weighted by an estimator of how
  negative they are: ``bm25`` (query-to-query BM25 in the batch), ``base`` (query-to-query
  cosine under the frozen base model) or ``trained`` (query-to-code cosine under a frozen copy
  of an InfoNCE-trained retriever, ``estimator_model``); weights clipped at ``clip``;
- ``oasis``: ``w_ibn·InfoNCE + w_cos·CoSENT`` over all B×B (query, code) pairs, labelled by
  a frozen teacher: ``base`` (the base model's cosine) or ``ranker`` (a trained ranker's scores,
  ``teacher_model``), correct pairs 1.0.

Hard negatives are mined once, before training, by the starting model (or ``negatives_model``)
and stored in the output folder, so a resumed run uses the same ones. Scale (1/τ) is 20.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from codesieve.server.model.encoders import TokenEncoder
from codesieve.server.model.folder import CODE_CONTEXT_PARTS, sha256_file
from codesieve.trainer.metrics import rank_of_gold_dot, retrieval_metrics

from .checkpoints import (
    CHECKPOINT,
    frozen_copy,
    load_ranker,
    load_retriever,
    load_state,
)
from .config import RetrieverConfig, code_context_parts
from .data import (
    CODE_VIEWS,
    Pair,
    Sequences,
    embed,
    load_eval_set,
    read_pairs,
    to_tensors,
    tokenize,
)
from .evaluate import pool_texts
from .loop import Run, start, train
from .losses.cosent import order_augmented_loss, teacher_labels
from .losses.info_nce import duplicate_mask, info_nce
from .losses.soft_info_nce import (
    ESTIMATOR_PRESETS,
    bm25_query_similarity,
    encoder_query_similarity,
    soft_info_nce,
    soft_weights,
    trained_model_similarity,
)
from .models import CrossEncoder, DualEncoder, base_model_dir
from .negatives import PAD, code_key, mine_hard_negatives

LOSSES = ("infonce", "softinfonce", "oasis")
ESTIMATORS = ("bm25", "base", "trained")
TEACHERS = ("base", "ranker")
NEGATIVES_FILE = "hard-negatives.pt"


def check_config(config: RetrieverConfig) -> None:
    """Raise ValueError naming the setting that cannot work."""
    if not config.pairs:
        raise ValueError("no training pairs: give --pairs PAIRS.jsonl (made by `trainer mine`)")
    if config.loss not in LOSSES:
        raise ValueError(f"loss {config.loss!r} unknown; choose one of {', '.join(LOSSES)}")
    if config.estimator not in ESTIMATORS:
        raise ValueError(f"estimator {config.estimator!r} unknown; choose one of {', '.join(ESTIMATORS)}")
    if config.teacher not in TEACHERS:
        raise ValueError(f"teacher {config.teacher!r} unknown; choose one of {', '.join(TEACHERS)}")
    if config.loss == "softinfonce" and config.estimator == "trained" and not config.estimator_model:
        raise ValueError(
            "estimator=trained needs --estimator-model: a retriever already trained with InfoNCE"
        )
    if config.loss == "oasis" and config.teacher == "ranker" and not config.teacher_model:
        raise ValueError("teacher=ranker needs --teacher-model: a trained ranker checkpoint")
    if config.code_view not in CODE_VIEWS:
        raise ValueError(f"code view {config.code_view!r} unknown; choose one of {', '.join(CODE_VIEWS)}")
    if unknown := set(code_context_parts(config.code_context)) - set(CODE_CONTEXT_PARTS):
        raise ValueError(
            f"code context {', '.join(sorted(unknown))} unknown; give some of {', '.join(CODE_CONTEXT_PARTS)}"
        )
    if config.query_anchor < 0:
        raise ValueError("query_anchor is a weight: 0 (off) or more")
    if config.batch_size < 2:
        raise ValueError("batch_size must be at least 2: in-batch negatives need another query")


# ---- data ---------------------------------------------------------------------------------------


@dataclass
class TrainingData:
    pairs: list[Pair]
    queries: Sequences
    codes: Sequences
    keys: list[str]  # code_key of each code: equal keys are duplicates
    hard_negatives: Tensor  # (N, k) code indices


def load_training_data(config: RetrieverConfig, tokens: TokenEncoder) -> TrainingData:
    """Pairs, tokenised as the runtime does; hard negatives are filled in later."""
    sources = set(config.sources.split(","))
    pairs = [pair for pair in read_pairs(Path(config.pairs)) if pair.source in sources]
    if config.max_pairs:
        pairs = pairs[: config.max_pairs]
    if len(pairs) < 2:
        raise ValueError(f"{config.pairs} holds {len(pairs)} pairs; training needs at least 2")
    context = code_context_parts(config.code_context)
    return TrainingData(
        pairs=pairs,
        queries=tokenize(tokens, [pair.query for pair in pairs], config.max_query_tokens),
        codes=tokenize(
            tokens,
            [pair.code_view(config.code_view, context) for pair in pairs],
            config.max_code_tokens,
        ),
        keys=[code_key(pair.code) for pair in pairs],
        hard_negatives=torch.zeros(len(pairs), 0, dtype=torch.long),
    )


def freeze_lower(model: DualEncoder, layers: int) -> None:
    """Stop gradients to the embeddings and the first `layers` transformer layers (none when < 0)."""
    frozen = [model.bert.embeddings, *model.bert.encoder.layer[: max(layers, 0)]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def mine_negatives(model: DualEncoder, data: TrainingData, k: int, device: torch.device, seed: int) -> Tensor:
    """(N, k) hard negatives: each query's top-k codes under `model`, own code and duplicates out.

    Where a tiny corpus runs out, the gap is filled with random other codes.
    """
    query_emb = embed(model, data.queries, device)
    code_emb = embed(model, data.codes, device)
    gold = torch.arange(len(data.pairs))
    negatives = mine_hard_negatives(query_emb, code_emb, gold, data.keys, k)
    generator = random.Random(seed)
    for row, column in (negatives == PAD).nonzero().tolist():
        others = [index for index in range(len(data.pairs)) if data.keys[index] != data.keys[row]]
        negatives[row, column] = generator.choice(others) if others else (row + 1) % len(data.pairs)
    return negatives


def load_dev(config: RetrieverConfig, tokens: TokenEncoder) -> tuple[Sequences, Sequences, Tensor] | None:
    """Dev queries, the pool's codes and each query's gold position, tokenised; None without a dev set."""
    if not config.dev:
        return None
    benchmark = load_eval_set(config.dev)
    queries = benchmark.queries[: config.dev_max_queries or None]
    gold = torch.as_tensor(benchmark.gold_positions()[: len(queries)])
    return (
        tokenize(tokens, [query.text for query in queries], config.max_query_tokens),
        tokenize(
            tokens, pool_texts(benchmark, code_context_parts(config.code_context)), config.max_code_tokens
        ),
        gold,
    )


def dev_metrics(
    model: DualEncoder, dev: tuple[Sequences, Sequences, Tensor], device: torch.device
) -> dict[str, float]:
    """MRR and Recall@k of `model` on the dev set, ranking each query against the whole pool."""
    queries, codes, gold = dev
    ranks = rank_of_gold_dot(
        embed(model, queries, device).numpy(), embed(model, codes, device).numpy(), gold.numpy()
    )
    return retrieval_metrics(ranks)


# ---- the loss of one batch ----------------------------------------------------------------------


@dataclass
class Frozen:
    """Models that label or weight a batch and never train."""

    base: DualEncoder | None = None  # estimator=base, teacher=base, query_anchor
    trained: DualEncoder | None = None  # estimator=trained
    ranker: CrossEncoder | None = None  # teacher=ranker


def load_frozen(config: RetrieverConfig, device: torch.device) -> Frozen:
    """Frozen deep copies (eval mode, no gradients) of the estimator or teacher the loss needs."""
    frozen = Frozen()
    soft = config.loss == "softinfonce"
    wants_base = (soft and config.estimator == "base") or (
        config.loss == "oasis" and config.teacher == "base"
    )
    if wants_base or config.query_anchor:
        base = load_retriever(Path(config.base_model) if config.base_model else base_model_dir())
        frozen.base = frozen_copy(base).to(device)
    if soft and config.estimator == "trained":
        frozen.trained = frozen_copy(load_retriever(Path(config.estimator_model))).to(device)
    if config.loss == "oasis" and config.teacher == "ranker":
        frozen.ranker = frozen_copy(load_ranker(Path(config.teacher_model))).to(device)
    return frozen


def ranker_scores(
    ranker: CrossEncoder, tokens: TokenEncoder, queries: Sequences, codes: Sequences, device: torch.device
) -> Tensor:
    """(B, B) scores of every (query i, code j) pair of a batch under a frozen ranker."""
    pairs = [tokens.pair(query[1:-1], code[1:-1]) for query, _ in queries for code, _ in codes]
    scores = embed(ranker, pairs, device, batch_size=64)
    return scores.reshape(len(queries), len(codes))


def batch_loss(
    config: RetrieverConfig,
    frozen: Frozen,
    tokens: TokenEncoder,
    batch: dict[str, Any],
    query_emb: Tensor,
    code_emb: Tensor,
    hard_emb: Tensor | None,
    device: torch.device,
) -> Tensor:
    """The configured loss of one batch; embeddings are L2-normalised, (B, D) and (B, k, D)."""
    mask = duplicate_mask(batch["keys"]).to(device)
    if config.loss == "infonce":
        full_mask = duplicate_mask(batch["keys"], batch["hard_keys"]) if hard_emb is not None else mask
        return info_nce(query_emb, code_emb, hard_emb, config.scale, full_mask.to(device))
    if config.loss == "softinfonce":
        preset = ESTIMATOR_PRESETS[config.estimator]
        if config.estimator == "bm25":
            similarity = bm25_query_similarity(batch["query_texts"])
        elif config.estimator == "base":
            assert frozen.base is not None
            similarity = encoder_query_similarity(embed(frozen.base, batch["queries"], device))
        else:
            assert frozen.trained is not None
            similarity = trained_model_similarity(
                embed(frozen.trained, batch["queries"], device), embed(frozen.trained, batch["codes"], device)
            )
        weights = soft_weights(
            similarity.to(device),
            t=config.soft_t or preset.t,
            alpha=config.soft_alpha or preset.alpha,
            beta=config.soft_beta or preset.beta,
            clip=config.clip,
            mask=mask,
        )
        return soft_info_nce(query_emb, code_emb, weights, config.scale, hard_emb)
    # oasis: w_ibn·InfoNCE (hard negatives included) + w_cos·CoSENT over the batch's B×B pairs
    if frozen.ranker is not None:
        teacher = ranker_scores(frozen.ranker, tokens, batch["queries"], batch["codes"], device)
    else:
        assert frozen.base is not None
        teacher = embed(frozen.base, batch["queries"], device) @ embed(frozen.base, batch["codes"], device).T
    labels = teacher_labels(teacher, mask.cpu()).to(device)
    full_mask = duplicate_mask(batch["keys"], batch["hard_keys"]) if hard_emb is not None else mask
    return order_augmented_loss(
        query_emb, code_emb, labels, config.scale, config.w_ibn, config.w_cos, full_mask.to(device), hard_emb
    )


def query_drift(query_emb: Tensor, base_emb: Tensor) -> Tensor:
    """Mean 1 - cos between the trained model's query embeddings and the frozen base model's (both
    L2-normalised): 0 while the queries read as the base reads them (docs/TRAINING.md, query anchor)."""
    return (1 - (query_emb * base_emb).sum(dim=-1)).mean()


def anchor_term(
    config: RetrieverConfig, frozen: Frozen, batch: dict[str, Any], query_emb: Tensor, device: torch.device
) -> Tensor | float:
    """The query anchor's share of the loss: its weight times the batch's `query_drift` (0 when off)."""
    if not config.query_anchor:
        return 0.0
    assert frozen.base is not None
    return config.query_anchor * query_drift(
        query_emb, embed(frozen.base, batch["queries"], device).to(device)
    )


def make_batch(data: TrainingData, indices: list[int]) -> dict[str, Any]:
    """Token sequences, texts and duplicate keys of one batch and its hard negatives."""
    hard = data.hard_negatives[indices].tolist()
    return {
        "queries": [data.queries[index] for index in indices],
        "codes": [data.codes[index] for index in indices],
        "query_texts": [data.pairs[index].query for index in indices],
        "keys": [data.keys[index] for index in indices],
        "hard": [data.codes[negative] for row in hard for negative in row],
        "hard_keys": [[data.keys[negative] for negative in row] for row in hard],
    }


def recompute_activations(model: DualEncoder) -> None:
    """Gradient checkpointing: the same gradients (dropout is replayed from the saved RNG state), less memory."""
    # activation_checkpointing_enable is the newer name: transformers 5.24 warns on the old one
    if hasattr(model.bert, "activation_checkpointing_enable"):
        model.bert.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.bert.gradient_checkpointing_enable(  # type: ignore[no-untyped-call]
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )


# ---- the loop -----------------------------------------------------------------------------------


def train_retriever(config: RetrieverConfig, resume: bool = False) -> Path:
    """Train, checkpoint, pick the best by dev MRR; returns the folder of the result (`out/model`)."""
    out = Path(config.out)
    started = time.monotonic()  # training time on the card includes loading and mining negatives
    state = load_state(out) if resume else None
    check_config(config)
    out.mkdir(parents=True, exist_ok=True)
    device = start(config.seed, config.threads, config.device)

    # model
    start_dir = Path(config.init or config.base_model or base_model_dir())
    tokenizer = start_dir / "tokenizer.json"
    model = load_retriever(out / CHECKPOINT if state is not None else start_dir)
    tokens = TokenEncoder(tokenizer)
    model.to(device)
    if config.freeze_layers:
        freeze_lower(model, config.freeze_layers)
    if config.gradient_checkpointing:
        recompute_activations(model)

    # data
    data = load_training_data(config, tokens)
    negatives_path = out / NEGATIVES_FILE
    if config.hard_negatives and state is not None and negatives_path.exists():
        data.hard_negatives = torch.load(negatives_path)
    elif config.hard_negatives:
        miner = load_retriever(Path(config.negatives_model)) if config.negatives_model else model
        print(f"mining {config.hard_negatives} hard negatives for {len(data.pairs)} pairs", file=sys.stderr)
        data.hard_negatives = mine_negatives(
            miner.to(device), data, config.hard_negatives, device, config.seed
        )  # type: ignore[arg-type]
        torch.save(data.hard_negatives, negatives_path)
    frozen = load_frozen(config, device)
    dev = load_dev(config, tokens)
    lengths = [len(query[0]) + len(code[0]) for query, code in zip(data.queries, data.codes, strict=True)]

    def step_loss(indices: list[int], step: int) -> Tensor:
        batch = make_batch(data, indices)
        query_emb = model(**to_tensors(batch["queries"], device))
        code_emb = model(**to_tensors(batch["codes"] + batch["hard"], device))
        size = len(batch["queries"])
        hard_emb = code_emb[size:].reshape(size, config.hard_negatives, -1) if config.hard_negatives else None
        loss = batch_loss(config, frozen, tokens, batch, query_emb, code_emb[:size], hard_emb, device)
        return loss + anchor_term(config, frozen, batch, query_emb, device)

    run = Run(
        kind="retriever",
        config=config,
        out=out,
        model=model,
        tokenizer=tokenizer,
        data={"pairs": config.pairs, "count": len(data.pairs), "sha256": sha256_file(Path(config.pairs))},
        lengths=lengths,
        batch_loss=step_loss,
        evaluate=None if dev is None else lambda: dev_metrics(model, dev, device),
        started=started,
    )
    return train(run, state)
