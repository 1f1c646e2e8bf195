"""Fine-tune the ranker (cross-encoder) with a listwise loss (R2PS; docs/TRAINING.md, "The ranker").

Each query comes with its correct code and M negatives; the ranker reads every
``[CLS] query [SEP] code [SEP]`` (built by the runtime's ``TokenEncoder.pair``, so training and
search frame pairs identically) and the loss is ``cross_entropy(20 · scores, 0)``.

Negatives (``negatives``):
- ``ranking``: ranking-based hard negatives: the codes ranked ``[⌊λN⌋ + S, ⌊λN⌋ + S + M)`` by a
  trained retriever (``retriever``) over the N training codes, gold and its duplicates removed,
  computed once before training and stored in the output folder. ``skip_top`` (S) is a margin of
  ours: in a multi-package corpus the best-ranked "negatives" are often just as correct;
- ``inbatch``: M of the other queries' codes in the batch (duplicates of the gold avoided);
- ``mixed``: the first ``ranking_negatives`` of the ranking window, the rest in-batch: the in-batch
  ones learn at once, the ranking ones teach what tells near answers apart.

What makes a fresh ranker learn on a CPU (docs/BENCHMARKS.md, "A ranker that learns"): a head
that starts at zero with its own larger learning rate (``head_lr``), a body learning rate of
1e-4 rather than 2e-5, and optionally a first phase of ``distill_steps`` that distils the
retriever's cosines over each query's gold and top M (``listwise_distillation_loss``) before the
listwise loss on the gold. The body may start from a trained retriever (``init``) and may keep
only its first ``layers`` layers (cheaper training and reranking).

The retriever may be a torch checkpoint or a runtime model folder (its int8 ONNX retriever, as
users run it). Dev sets (comma-separated) are scored as the cascade with the score fused,
``ranker + w · first-stage score`` (the cosine's z-score over the top 100, as the runtime fuses), at
each weight of ``ranker_dev.FUSION_WEIGHTS``; the best checkpoint and its weight are chosen on the
mean over the sets and recorded for the model card.

The paper's setting is M = 31 with 32 queries a batch for 10 epochs on a GPU (``docs/BENCHMARKS.md``
has that command); the defaults here (M = 7, 8 queries) keep a CPU step affordable
(docs/TRAINING.md, "Ranker settings").
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
from codesieve.server.model.folder import sha256_file

from .checkpoints import CHECKPOINT, load_ranker, load_state, retriever_from_model_folder
from .config import RankerConfig
from .data import CODE_VIEWS, read_pairs, to_tensors
from .loop import Run, start, train
from .losses.listwise import listwise_distillation_loss, listwise_ranking_loss
from .models import CrossEncoder, base_model_dir
from .negatives import PAD, code_key, ranking_based_negatives
from .ranker_dev import DevSet, dev_report, is_runtime_folder, load_dev_set, retriever_embeddings

NEGATIVE_KINDS = ("ranking", "inbatch", "mixed")
NEGATIVES_FILE = "ranker-negatives.pt"


def check_config(config: RankerConfig) -> None:
    """Raise ValueError naming the setting that cannot work."""
    if not config.pairs:
        raise ValueError("no training pairs: give --pairs PAIRS.jsonl (made by `trainer mine`)")
    if config.negatives not in NEGATIVE_KINDS:
        raise ValueError(f"negatives {config.negatives!r} unknown; choose one of {', '.join(NEGATIVE_KINDS)}")
    if config.negatives in ("ranking", "mixed") and not config.retriever:
        raise ValueError(
            f"negatives={config.negatives} needs --retriever: a trained retriever checkpoint (or use inbatch)"
        )
    if not 0 <= config.ranking_negatives <= config.num_negatives:
        raise ValueError("ranking_negatives must lie in [0, num_negatives]")
    if config.dev and not config.retriever:
        raise ValueError("--dev for the ranker needs --retriever: the ranker reorders the retriever's top K")
    if config.distill_steps > 0 and not config.retriever:
        raise ValueError("--distill-steps needs --retriever: the ranker distils the retriever's scores")
    if config.code_view not in CODE_VIEWS:
        raise ValueError(f"code view {config.code_view!r} unknown; choose one of {', '.join(CODE_VIEWS)}")
    if config.num_negatives < 1:
        raise ValueError("num_negatives must be at least 1")
    if config.skip_top < 0 or config.distill_steps < 0:
        raise ValueError("skip_top and distill_steps must be >= 0")


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


@dataclass
class RetrieverRanking:
    """The trained retriever's view of the training pairs, computed once and stored beside the run."""

    ranked: Tensor  # (N, S + M) non-gold codes ranked [⌊λN⌋, ⌊λN⌋ + S + M) for each query
    query_emb: Tensor  # (N, D) the retriever's query embeddings (the distillation teacher)
    code_emb: Tensor  # (N, D) its code embeddings


def rank_training_pairs(
    config: RankerConfig,
    queries: list[str],
    codes: list[str],
    keys: list[str],
    tokens: TokenEncoder,
    device: torch.device,
) -> RetrieverRanking:
    """Rank the N training codes (as training reads them) for every training query with the retriever
    (once, in chunks)."""
    print(f"ranking {len(codes)} training codes with {config.retriever} for negatives", file=sys.stderr)
    query_emb, code_emb = retriever_embeddings(
        Path(config.retriever),
        tokens,
        queries,
        codes,
        (config.max_query_tokens, config.max_code_tokens),
        device,
        config.threads or 1,
    )
    found = ranking_based_negatives(
        query_emb,
        code_emb,
        torch.arange(len(codes)),
        keys,
        M=config.skip_top + config.num_negatives,
        lam=config.lam,
    )
    return RetrieverRanking(fill_padding(found, keys, config.seed), query_emb, code_emb)


def load_ranking(path: Path) -> RetrieverRanking:
    stored = torch.load(path)
    return RetrieverRanking(stored["ranked"], stored["query_emb"], stored["code_emb"])


def save_ranking(path: Path, ranking: RetrieverRanking) -> None:
    torch.save({"ranked": ranking.ranked, "query_emb": ranking.query_emb, "code_emb": ranking.code_emb}, path)


def candidates_of(
    config: RankerConfig,
    step: int,
    indices: list[int],
    keys: list[str],
    ranking: RetrieverRanking | None,
) -> list[list[int]]:
    """Each query's candidates, gold first: the distillation phase's top M, else its negatives."""
    if ranking is not None and step < config.distill_steps:
        rows = ranking.ranked[indices, : config.num_negatives].tolist()
    elif ranking is not None and config.negatives == "ranking":
        rows = ranking.ranked[indices, config.skip_top :].tolist()
    else:
        generator = random.Random(config.seed * 1_000_003 + step)
        ranked = mixed_share(config) if ranking is not None and config.negatives == "mixed" else 0
        window: list[list[int]] = [[] for _ in indices]
        if ranking is not None and ranked:
            window = ranking.ranked[indices, config.skip_top : config.skip_top + ranked].tolist()
        batch = in_batch_negatives(indices, keys, config.num_negatives - ranked, generator)
        rows = [window[row] + batch[row] for row in range(len(indices))]
    return [[index, *row] for index, row in zip(indices, rows, strict=True)]


def mixed_share(config: RankerConfig) -> int:
    """How many of a query's M negatives come from the ranking window with --negatives mixed."""
    return config.ranking_negatives or config.num_negatives // 2


def step_loss(
    config: RankerConfig,
    step: int,
    scores: Tensor,
    candidates: list[list[int]],
    ranking: RetrieverRanking | None,
) -> Tensor:
    """Distillation of the retriever's cosines for the first `distill_steps`, then the listwise loss."""
    if ranking is not None and step < config.distill_steps:
        queries = ranking.query_emb[[row[0] for row in candidates]]
        codes = ranking.code_emb[torch.tensor(candidates)]
        cosines = (codes * queries[:, None, :]).sum(dim=-1).to(scores.device)
        return listwise_distillation_loss(scores, cosines, config.scale, config.distill_scale)
    return listwise_ranking_loss(scores, config.scale)


def parameter_groups(model: CrossEncoder, config: RankerConfig) -> list[dict[str, Any]]:
    """The body at `lr`, the fresh score head at its own `head_lr`."""
    head = list(model.head.parameters())
    body = [parameter for name, parameter in model.named_parameters() if not name.startswith("head.")]
    return [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}]


def starting_model(config: RankerConfig, out: Path, resumed: bool) -> tuple[CrossEncoder, Path]:
    """The ranker to train and its tokenizer: base weights or a retriever's encoder (a checkpoint or a
    runtime model folder) with a fresh head, cut to `layers`; a ranker checkpoint brings its own head;
    a resumed run continues from its checkpoint."""
    start_dir = Path(config.init or config.base_model or base_model_dir())
    tokenizer = start_dir / "tokenizer.json"
    if not resumed and is_runtime_folder(start_dir):  # the retriever users run, read back from ONNX
        retriever, tokenizer = retriever_from_model_folder(start_dir)
        model = CrossEncoder(retriever.bert)
    else:
        model = load_ranker(out / CHECKPOINT if resumed else start_dir)
    if config.layers and not resumed:
        model.keep_layers(config.layers)
    return model, tokenizer


def load_dev_sets(config: RankerConfig, tokens: TokenEncoder, device: torch.device) -> list[DevSet]:
    """The dev sets of `config.dev` (comma-separated), each with the retriever's top K candidates."""
    limits = (config.max_query_tokens, config.max_code_tokens)
    return [
        load_dev_set(
            spec.strip(),
            Path(config.retriever),
            tokens,
            limits,
            config.dev_depth,
            config.dev_max_queries,
            device,
            config.threads or 1,
        )
        for spec in config.dev.split(",")
        if spec.strip()
    ]


def train_ranker(config: RankerConfig, resume: bool = False) -> Path:
    """Train, checkpoint, pick the best by dev cascade MRR; returns the result folder (`out/model`)."""
    out = Path(config.out)
    started = time.monotonic()  # training time on the card includes loading and mining negatives
    state = load_state(out) if resume else None
    check_config(config)
    out.mkdir(parents=True, exist_ok=True)
    device = start(config.seed, config.threads, config.device)

    model, tokenizer = starting_model(config, out, resumed=state is not None)
    tokens = TokenEncoder(tokenizer)
    model.to(device)

    # data
    pairs = read_pairs(Path(config.pairs))[: config.max_pairs or None]
    if len(pairs) < 2:
        raise ValueError(f"{config.pairs} holds {len(pairs)} pairs; training needs at least 2")
    query_ids = tokens.ids([pair.query for pair in pairs], config.max_query_tokens)
    codes = [pair.code_view(config.code_view) for pair in pairs]
    code_ids = tokens.ids(codes, config.max_code_tokens)
    keys = [code_key(code) for code in codes]
    ranking_path = out / NEGATIVES_FILE
    ranking: RetrieverRanking | None = None
    if config.retriever and state is not None and ranking_path.exists():
        ranking = load_ranking(ranking_path)
    elif config.retriever and (config.negatives != "inbatch" or config.distill_steps > 0):
        ranking = rank_training_pairs(config, [pair.query for pair in pairs], codes, keys, tokens, device)
        save_ranking(ranking_path, ranking)
    dev_sets = load_dev_sets(config, tokens, device)
    lengths = [len(query) + len(code) for query, code in zip(query_ids, code_ids, strict=True)]

    def batch_loss(indices: list[int], step: int) -> Tensor:
        candidates = candidates_of(config, step, indices, keys, ranking)
        sequences = [tokens.pair(query_ids[row[0]], code_ids[index]) for row in candidates for index in row]
        scores = model(**to_tensors(sequences, device)).reshape(len(indices), -1)
        return step_loss(config, step, scores, candidates, ranking)

    run = Run(
        kind="ranker",
        config=config,
        out=out,
        model=model,
        tokenizer=tokenizer,
        data={"pairs": config.pairs, "count": len(pairs), "sha256": sha256_file(Path(config.pairs))},
        lengths=lengths,
        batch_loss=batch_loss,
        evaluate=(lambda: dev_report(model, tokens, dev_sets, device)) if dev_sets else None,
        parameter_groups=parameter_groups(model, config),
        best_keys=("mrr", "fusion_weight"),
        dev_line=fused_dev_line,
        started=started,
    )
    return train(run, state)


def fused_dev_line(entry: dict[str, Any], best: dict[str, Any]) -> str:
    """The progress line after a dev evaluation: the loss, the cascade's MRR plain and fused, the
    retriever's, and the best fused MRR so far."""
    return (
        f"step {entry['step']}: loss {entry['loss']:.4f}, dev cascade MRR {entry['cascade_mrr']:.4f}, "
        f"fused (w = {entry['fusion_weight']}) {entry['mrr']:.4f}, retriever "
        f"{entry['retriever_mrr']:.4f} (best fused {best['mrr']:.4f})"
    )
