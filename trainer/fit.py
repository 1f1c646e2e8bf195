"""`trainer fit`: fine-tune the model in use on one repository, and install it only if it is better.

Stages, each recorded in ``<work>/fit-state.json`` when it finishes (``--resume`` continues after
the last one that did):

1. mine (description, code) pairs from the repository (`mining.py`) and hold out whole files for
   the repository check (10% of the pairs, at least `min_held_out` when there are enough); below
   `min_pairs` nothing can be measured, and the fit stops unless ``--force``;
2. start: read the current model (the repository's installed model, else the shipped default)
   back into torch (`checkpoints.retriever_from_model_folder`);
3. fine-tune its retriever on the repository's training pairs mixed with as many general pairs
   from the shipped replay sample (`general_pairs`), so that it does not forget (InfoNCE,
   in-batch negatives, the current model's token limits); steps grow with the pairs, capped by
   `max_steps` and by the time budget;
4. export the candidate (ONNX, int8, parity check, model card), with int8 weights on another
   grid than the current model's (`onnx_export.off_grid_weight_type`: on the same grid, rounding
   would undo the fine-tuning);
5. the ranker, only with ``--ranker on``: trained on the candidate's ranking-based negatives, its
   fusion weight chosen on half of the held-out pairs, and kept only when the cascade beats the
   candidate retriever on the other half. Any failure
   here (no learning, export, parity) costs one line: the retriever goes on alone;
6. check current and candidate on the repository's held-out pairs and the shipped general check
   (`fit_checks`), and decide;
7. install the candidate into ``index_folder_for(root) / "model"`` (or ``--out``) when it passed,
   else keep the current model and say which check failed and by how much (``--force`` installs).

Defaults fit a repository of about 700 pairs in 20 minutes on two cores (``--time-budget``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import random
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from codesieve.export.onnx_export import ParityError, WeightType, off_grid_weight_type
from codesieve.server.config import Settings
from codesieve.server.locations import WORKSPACE_MODEL, index_folder_for, resolve_model_dir
from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import ModelCard, ModelError, ModelFolder, replace_folder, write_card

from .benchmarks import Benchmark
from .checkpoints import retriever_from_model_folder
from .config import FitConfig, RankerConfig, RetrieverConfig
from .data import Pair, read_pairs, split_by_file, write_pairs
from .evaluate import code_embeddings
from .export_run import export_checkpoint
from .fit_checks import (
    Decision,
    ModelScores,
    before_after_table,
    decide,
    general_benchmark,
    repository_benchmark,
    score_model,
    scores_from_json,
    scores_json,
)
from .general_pairs import CHECK_FILE, REPLAY_FILE, general_dir, read_general, replay_pairs, without_overlap
from .mining import mine_repository
from .models import save_model
from .ranker_dev import FUSION_WEIGHTS
from .runtime_pipeline import gold_rank, rerank_grid, runtime_cascade
from .train_ranker import train_ranker
from .train_retriever import train_retriever

STAGES = ("mine", "start", "retriever", "export", "ranker", "check", "install")
STATE_FILE = "fit-state.json"
RUNTIME_CARD_KEYS = (
    "first_stage",
)  # search settings on the current model's card that the fitted model keeps
RANKER_LAYERS = 3  # of the retriever's body the ranker keeps (what the rerank latency budget allows)
RANKER_MARGIN = 10  # ranks of the retriever skipped before ranking-based negatives: likely also correct
MAX_HELD_OUT_SHARE = 0.3  # the held-out side never takes more than this share of the pairs
AFTER_TRAINING_SECONDS = 180.0  # the least kept from the budget for the export and the candidate's checks


class FitError(Exception):
    """`trainer fit` cannot go on; the message says why and what to do. `code` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


TOO_FEW_PAIRS = 4  # exit status when the repository is below the floor and --force was not given


@dataclass
class FitResult:
    decision: Decision
    current: ModelScores
    candidate: ModelScores
    destination: Path
    table: str


# ---- bookkeeping ---------------------------------------------------------------------------------


class FitStages:
    """Stage lines on stderr, the stages that finished (fit-state.json), and the time budget."""

    def __init__(self, work: Path, config: FitConfig, current: Path, resume: bool) -> None:
        self.path = work / STATE_FILE
        self.started = time.monotonic()
        fresh: dict[str, Any] = {"root": str(Path(config.root).resolve()), "current": _folder_sha(current)}
        fresh.update(done=[], seconds=0.0)
        state: dict[str, Any] = (
            json.loads(self.path.read_text(encoding="utf-8")) if resume and self.path.exists() else fresh
        )
        if state.get("current") != fresh["current"] or state.get("root") != fresh["root"]:
            state = fresh  # another repository or model: nothing can be reused
        self.state = state
        self.budget = config.time_budget * 60
        if resume and state["done"]:
            print(f"resuming after stage {state['done'][-1]}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return float(self.state["seconds"]) + time.monotonic() - self.started

    def left(self) -> float:
        return self.budget - self.elapsed()

    def done(self, stage: str) -> bool:
        return stage in self.state["done"]

    def stage(self, stage: str, text: str) -> None:
        number = STAGES.index(stage) + 1
        print(f"[{number}/{len(STAGES)}] {text}", file=sys.stderr, flush=True)

    def finish(self, stage: str, **facts: Any) -> None:
        self.state["done"] = [*self.state["done"], stage]
        self.state.setdefault("facts", {})[stage] = facts
        self.state["seconds"] = self.elapsed()
        self.started = time.monotonic()
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(self.state, indent=2) + "\n", encoding="utf-8")
        temporary.replace(self.path)

    def facts(self, stage: str) -> dict[str, Any]:
        found: dict[str, Any] = self.state.get("facts", {}).get(stage, {})
        return found


def _folder_sha(folder: Path) -> str:
    return ModelFolder.load(folder).retriever_sha256


def _release_memory() -> None:
    """Hand freed memory back to the system between stages (glibc keeps it otherwise), for a lower peak."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _read_any(path: Path) -> list[Pair]:
    return read_general(path) if path.name.endswith(".gz") else read_pairs(path)


# ---- the stages -----------------------------------------------------------------------------------


def held_out_split(pairs: list[Pair], config: FitConfig) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out) by file: `held_out` of the pairs, at least `min_held_out`, at most 30%.

    Whole files keep the check honest (functions of one file share names and helpers); where the
    files are too few or too big for that (a single-module library), functions are held out instead.
    """
    if len(pairs) < config.min_pairs:
        return pairs, []
    share = min(MAX_HELD_OUT_SHARE, max(config.held_out, config.min_held_out / len(pairs)))
    train, held_out = split_by_file(pairs, share, config.seed, at_most=MAX_HELD_OUT_SHARE)
    if len(held_out) < share * len(pairs) / 2:  # one or two big files: hold out functions instead
        order = list(range(len(pairs)))
        random.Random(config.seed).shuffle(order)
        chosen = set(order[: round(share * len(pairs))])
        train = [pair for index, pair in enumerate(pairs) if index not in chosen]
        held_out = [pair for index, pair in enumerate(pairs) if index in chosen]
    return train, held_out


def _mine(config: FitConfig, root: Path, work: Path) -> dict[str, Any]:
    report = mine_repository(root)
    pairs = [pair for pair in report.pairs if pair.source == "docstring"]  # test names cost web queries
    count = len(pairs)
    if count < config.min_pairs and not config.force:
        raise FitError(
            f"{root} yields {count} (description, code) pairs (documented functions and methods outside "
            f"tests); with fewer than {config.min_pairs} the held-out check cannot tell a better model from a "
            "worse one, so nothing was trained or changed. Document more code, or run again with --force to "
            "train on them anyway and install the result without the repository check.",
            TOO_FEW_PAIRS,
        )
    train, held_out = held_out_split(pairs, config)
    write_pairs(work / "train.jsonl", train)
    write_pairs(work / "held-out.jsonl", held_out)
    return {"pairs": count, "files": report.files, "train": len(train), "held_out": len(held_out)}


def _mixed_pairs(config: FitConfig, work: Path, train: list[Pair], held_out: list[Pair]) -> int:
    """Write the training file: the repository's pairs and general replay pairs; returns the replay count."""
    sample = _read_any(Path(config.replay) if config.replay else general_dir() / REPLAY_FILE)
    sample = without_overlap(sample, [*train, *held_out])  # a repository from the corpus gets no free answers
    replay = replay_pairs(sample, len(train), config.replay_ratio, config.min_replay, config.seed)
    write_pairs(work / "train-mixed.jsonl", [*train, *replay])
    return len(replay)


def _train_retriever(
    config: FitConfig, work: Path, progress: FitStages, card: ModelCard, seconds: float
) -> dict[str, Any]:
    train, held_out = read_pairs(work / "train.jsonl"), read_pairs(work / "held-out.jsonl")
    replay = _mixed_pairs(config, work, train, held_out)
    planned = max(
        1, min(config.max_steps, math.ceil(config.epochs * (len(train) + replay) / config.batch_size))
    )
    progress.stage(
        "retriever",
        f"fine-tuning the retriever: {planned} steps on {len(train)} repository + {replay} general pairs "
        f"(at most {_minutes(seconds)})",
    )
    retriever = RetrieverConfig(
        pairs=str(work / "train-mixed.jsonl"),
        out=str(work / "retriever"),
        init=str(work / "start"),
        batch_size=config.batch_size,
        lr=config.lr,
        max_steps=planned,
        max_query_tokens=card.max_query_tokens,
        max_code_tokens=card.max_code_tokens,
        code_view="doc",  # the chunk as the index embeds it, as the shipped model trained
        code_context=",".join(card.code_context),  # the line the index puts before each chunk, if any
        seed=config.seed,
        threads=config.threads,
        checkpoint_every=25,
        time_limit=seconds,
        gradient_checkpointing=True,  # the activations of a 32 x 128-token batch were 1 GB of a 2.7 GB peak
    )
    folder = train_retriever(retriever, resume=True)  # a checkpoint there is this fit's own
    step = json.loads((folder / "train-config.json").read_text(encoding="utf-8"))["step"]
    return {"steps": step, "planned": planned, "replay": replay}


def _layers(checkpoint: Path) -> int:
    """The transformer layers of a saved model."""
    return int(json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))["num_hidden_layers"])


def _train_ranker(
    config: FitConfig, work: Path, card: ModelCard, seconds: float, weight_type: WeightType
) -> Path:
    ranker = RankerConfig(  # the recipe of the shipped ranker's runs (bench/ranker_runs.sh)
        pairs=str(work / "train.jsonl"),
        out=str(work / "ranker"),
        base_model=config.base_model,
        init=str(work / "retriever" / "model"),  # the body of the retriever just fitted, a zero head
        layers=min(RANKER_LAYERS, _layers(work / "retriever" / "model")),
        code_view="doc",
        negatives="mixed",
        skip_top=RANKER_MARGIN,
        distill_steps=config.ranker_max_steps // 5,
        retriever=str(work / "retriever" / "model"),
        num_negatives=config.ranker_negatives,
        batch_size=config.ranker_batch_size,
        max_steps=config.ranker_max_steps,
        max_query_tokens=card.max_query_tokens,
        max_code_tokens=card.max_code_tokens,
        seed=config.seed,
        threads=config.threads,
        checkpoint_every=25,
        time_limit=seconds,
    )
    train_ranker(ranker, resume=True)
    with_ranker = work / "candidate-ranked"
    export_checkpoint(
        work / "retriever",
        with_ranker,
        ranker=work / "ranker",
        name=card.name,
        quantize=config.quantize,
        weight_type=weight_type,
    )
    return with_ranker


def _export_candidate(work: Path, name: str, quantize: bool, weight_type: WeightType) -> None:
    """Export the trained retriever; when int8 falls short of parity, fp32 (bigger, slower, exact) instead."""
    try:
        export_checkpoint(
            work / "retriever", work / "candidate", name=name, quantize=quantize, weight_type=weight_type
        )
        return
    except ParityError as error:
        if not quantize:
            raise FitError(
                f"the candidate's export failed its parity check ({error}); nothing was installed and the "
                "current model stays in use"
            ) from error
        print(
            f"      int8 weights fell short of parity ({error}); exporting fp32 weights instead",
            file=sys.stderr,
        )
    export_checkpoint(work / "retriever", work / "candidate", name=name, quantize=False)


def _late(stage: str, error: Exception, verbose: bool) -> None:
    """One line for a failure the fit survives (the traceback too with --verbose)."""
    if verbose:
        traceback.print_exception(error)
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    print(
        f"      {stage} failed ({type(error).__name__}: {first}); going on with the retriever alone",
        file=sys.stderr,
    )


def _ranker_stage(
    config: FitConfig,
    work: Path,
    progress: FitStages,
    name: str,
    repository: Benchmark | None,
    weight_type: WeightType,
) -> dict[str, Any]:
    """Train and keep a ranker only when asked, when there is time, and when the cascade pays."""
    if config.ranker != "on":
        progress.stage(
            "ranker",
            "ranker: skipped (no ranker recipe beats the retriever on CPU yet; --ranker on tries one)",
        )
        return {"kept": False, "why": "off"}
    seconds = (
        progress.left() - AFTER_TRAINING_SECONDS - float(progress.facts("start").get("check_seconds", 0))
    )
    if seconds < 120 or repository is None:
        why = "the time budget is spent" if repository is not None else "no held-out pairs to show it pays"
        progress.stage("ranker", f"ranker: skipped ({why})")
        return {"kept": False, "why": why}
    progress.stage(
        "ranker", f"training the ranker on the candidate's hard negatives (at most {_minutes(seconds)})"
    )
    card = ModelFolder.load(work / "candidate").card
    try:
        folder = _train_ranker(config, work, replace(card, name=name), seconds, weight_type)
        weight, cascade, alone = _fusion_on_held_out(repository, folder, config, work)
    except Exception as error:  # a late failure loses nothing: the candidate retriever goes on alone
        _late("the ranker", error, config.verbose)
        return {"kept": False, "why": "failed"}
    if cascade <= alone:
        print(
            f"      ranker dropped: the cascade does not beat the retriever on the held-out pairs "
            f"(MRR {cascade:.3f} vs {alone:.3f}, fusion weight {weight:g})",
            file=sys.stderr,
        )
        return {
            "kept": False,
            "why": "no gain",
            "cascade": cascade,
            "retriever": alone,
            "fusion_weight": weight,
        }
    replace_folder(folder, work / "candidate")
    return {"kept": True, "cascade": cascade, "retriever": alone, "fusion_weight": weight}


def _fusion_on_held_out(
    repository: Benchmark, folder: Path, config: FitConfig, work: Path
) -> tuple[float, float, float]:
    """The fusion weight for the ranker in `folder`, written on its card, and the MRR of the cascade at that
    weight and of the retriever alone, as search runs them (`runtime_pipeline.rerank_grid`, depth K).

    The weight is chosen on the held-out queries of even position and judged on the others, so the
    decision is not made on the queries that chose it."""
    model = ModelFolder.load(folder)
    encoder = OnnxRetriever(model, config.threads or None)
    codes = code_embeddings(encoder, model, repository, work / "eval-cache")
    cascade = runtime_cascade(repository, model, codes, config.threads or None)
    try:
        grid = rerank_grid(repository, cascade, [config.rerank_depth], FUSION_WEIGHTS)
    finally:
        cascade.store.close()
    ids = [query.code_id for query in repository.queries]

    def mrr(rankings: Sequence[list[int]], half: int) -> float:
        ranks = [
            gold_rank(ranking, gold, len(ranking) + 1) for ranking, gold in zip(rankings, ids, strict=True)
        ]
        return sum(1 / rank for rank in ranks[half::2]) / max(1, len(ranks[half::2]))

    at = {weight: grid.reranked[(config.rerank_depth, weight)] for weight in FUSION_WEIGHTS}
    weight = max(FUSION_WEIGHTS, key=lambda w: (mrr(at[w], 0), -w))
    write_card(folder, replace(model.card, fusion_weight=weight))
    return weight, mrr(at[weight], 1), mrr(grid.retrieved, 1)


def _benchmarks(config: FitConfig, work: Path) -> tuple[Benchmark | None, Benchmark]:
    train, held_out = read_pairs(work / "train.jsonl"), read_pairs(work / "held-out.jsonl")
    check = _read_any(Path(config.general_check) if config.general_check else general_dir() / CHECK_FILE)
    check = without_overlap(check, [*train, *held_out])
    if len(check) < 2:
        raise FitError(
            "the general check has no pairs left once those that are also the repository's are removed: "
            "give a larger --general-check"
        )
    repository = repository_benchmark(held_out, train) if held_out else None
    return repository, general_benchmark(check)


def _score(config: FitConfig, work: Path, name: str, folder: Path) -> ModelScores:
    """Score one model folder on both checks; stored in `<name>-checks.json` for --resume."""
    repository, general = _benchmarks(config, work)
    scores = score_model(
        folder, repository, general, config.rerank_depth, work / "eval-cache", config.threads or None
    )
    (work / f"{name}-checks.json").write_text(
        json.dumps(scores_json(scores), indent=2) + "\n", encoding="utf-8"
    )
    return scores


def _stored_checks(work: Path) -> dict[str, ModelScores]:
    return {
        name: scores_from_json(json.loads((work / f"{name}-checks.json").read_text(encoding="utf-8")))
        for name in ("current", "candidate")
    }


def _install(
    work: Path, destination: Path, current: Path, scores: dict[str, ModelScores], facts: dict[str, Any]
) -> None:
    """Put the checks and the starting model on the candidate's card, then rename it into place."""
    candidate = work / "candidate"
    card = ModelFolder.load(candidate).card
    started_from = ModelFolder.load(current)
    training = {
        **card.training,
        "start": {"model": started_from.card.name, "retriever_sha256": started_from.retriever_sha256},
        "fit": facts,
    }
    inherited = {key: value for key, value in started_from.card.extra.items() if key in RUNTIME_CARD_KEYS}
    fitted = replace(
        card,
        extra={**inherited, **card.extra},
        training=training,
        scores={**card.scores, "fit": {name: scores_json(value) for name, value in scores.items()}},
    )
    write_card(candidate, fitted)
    destination.parent.mkdir(parents=True, exist_ok=True)
    replace_folder(candidate, destination)


# ---- the whole fit --------------------------------------------------------------------------------


def fit(config: FitConfig, resume: bool = False) -> FitResult:
    """Run the stages (after the last finished one with `resume`); returns the checks and the decision."""
    root = Path(config.root).resolve()
    if not root.is_dir():
        raise FitError(f"{config.root} is not a folder: give the repository to learn from")
    if config.ranker not in ("off", "on"):
        raise FitError(f"--ranker {config.ranker!r}: choose off or on")
    engine = Settings(index_dir=Path(config.index_dir).expanduser() if config.index_dir else None)
    index_folder = index_folder_for(root, engine)  # found exactly as the server finds it
    work = Path(config.work) if config.work else index_folder / "training"
    current = Path(config.model) if config.model else resolve_model_dir(root, engine)
    destination = Path(config.out) if config.out else index_folder / WORKSPACE_MODEL
    try:
        ModelFolder.load(current)
    except ModelError as error:
        raise FitError(f"the model to start from is unusable: {error}") from error
    return _run(config, root, work, current, destination, resume)


# What a fit that kept the current model leaves, so that `--resume --force` can still install its
# candidate: the candidates, their checks and the stages' record.
KEPT_FOR_INSTALL = (
    "candidate",
    "candidate-ranked",
    "current-checks.json",
    "candidate-checks.json",
    STATE_FILE,
)


def _empty_work(work: Path, keep: Sequence[str] = ()) -> None:
    """Empty the work folder of a fit but for `keep` and its embedding cache (a few MB that the next
    fit reuses)."""
    if work.exists():
        for entry in work.iterdir():
            if entry.name != "eval-cache" and entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _fresh_work(work: Path) -> None:
    """Empty the work folder of an earlier fit, keeping its embedding cache."""
    _empty_work(work)
    work.mkdir(parents=True, exist_ok=True)


def _run(
    config: FitConfig, root: Path, work: Path, current: Path, destination: Path, resume: bool
) -> FitResult:
    """The fit's stages, each skipped when a resumed fit finished it already.

    Long on purpose: the stages in the order they run, read top to bottom like a training script.
    """
    work.mkdir(parents=True, exist_ok=True)
    progress = FitStages(work, config, current, resume)
    if not progress.state["done"]:
        _fresh_work(work)
    name = f"codesieve-fit-{root.name}"
    if not progress.done("mine"):
        progress.stage("mine", f"mining pairs from {root}")
        facts = _mine(config, root, work)
        print(
            f"      {facts['pairs']} pairs from {facts['files']} files: {facts['train']} to train on, "
            f"{facts['held_out']} held out",
            file=sys.stderr,
        )
        progress.finish("mine", **facts)
    if not progress.done("start"):
        progress.stage("start", f"reading the current model into torch, and checking it ({current})")
        model, tokenizer = retriever_from_model_folder(current)
        save_model(model, work / "start", tokenizer)
        del model
        _release_memory()
        began = time.monotonic()
        _score(config, work, "current", current)
        progress.finish("start", check_seconds=round(time.monotonic() - began, 1))
    current_model = ModelFolder.load(current)  # loading checks the sha256 of every file: once is enough
    card = current_model.card
    weight_type = off_grid_weight_type(current_model.retriever_path)
    if not progress.done("retriever"):
        # After training: the export, and the candidate's checks, which cost what the current model's did.
        reserve = max(AFTER_TRAINING_SECONDS, 3 * float(progress.facts("start").get("check_seconds", 0)))
        seconds = progress.left() - reserve
        seconds = seconds / 2 if config.ranker == "on" else seconds
        if seconds < 60:
            raise FitError(
                f"the time budget of {config.time_budget:g} minutes leaves no time to train: "
                "give a larger --time-budget"
            )
        progress.finish("retriever", **_train_retriever(config, work, progress, card, seconds))
        _release_memory()
    if not progress.done("export"):
        weights = f"{weight_type} weights" if config.quantize else "fp32 weights"
        progress.stage("export", f"exporting the candidate (ONNX, {weights}, parity check)")
        _export_candidate(work, name, config.quantize, weight_type)
        progress.finish("export")
    if not progress.done("ranker"):
        repository, _ = _benchmarks(config, work)
        progress.finish("ranker", **_ranker_stage(config, work, progress, name, repository, weight_type))
    if not progress.done("check"):
        progress.stage("check", "checking the candidate on the held-out pairs and the general check")
        _score(config, work, "candidate", work / "candidate")
        progress.finish("check")
    scores = _stored_checks(work)
    decision = decide(scores["current"], scores["candidate"], config.general_tolerance, config.force)
    table = before_after_table(scores["current"], scores["candidate"])
    if progress.done("install"):
        decision = Decision(True, str(progress.facts("install").get("reason", "installed")))
    elif decision.install:
        facts = {stage: progress.facts(stage) for stage in ("mine", "retriever", "ranker")}
        _install(work, destination, current, scores, facts)
        progress.finish("install", reason=decision.reason)
    progress.stage("install", f"{decision.reason} ({_minutes(progress.elapsed())} in all)")
    if not config.keep_training:  # the decision is made: the pairs and checkpoints go
        _empty_work(work, keep=() if decision.install else KEPT_FOR_INSTALL)
    return FitResult(decision, scores["current"], scores["candidate"], destination, table)
