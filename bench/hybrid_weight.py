"""Choose the first stage's lexical weight for a model on the dev splits, and record it on its card.

For each dev split the pool is indexed as the runtime indexes it (`trainer.runtime_pipeline`), each
query's first-stage candidates are gathered once (dense top 100, lexical top 100), and every weight
of GRID orders them as the runtime does (`server.search.first_stage.rank`, cut to the runtime's 100). The
weight with the best mean MRR over the splits wins (ties: the smaller weight); it is written to
MODEL_DIR/model-card.json as `first_stage.lexical_weight` with the grid it was chosen from, and the
runtime reads it from there. Run it again on any new model (one command); test splits are never used.

    python bench/hybrid_weight.py codesieve/models/default            # CoSQA dev and CSN Ruby valid
    python bench/hybrid_weight.py MODEL_DIR --no-write                 # print the grid only
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np

from codesieve.server.model.encoders import OnnxRetriever
from codesieve.server.model.folder import CARD_NAME, FIRST_STAGE, ModelFolder, SearchSettings
from codesieve.server.search.first_stage import rank
from codesieve.trainer.data import load_eval_set
from codesieve.trainer.evaluate import code_embeddings, default_cache_dir
from codesieve.trainer.metrics import rank_of_gold, retrieval_metrics
from codesieve.trainer.runtime_pipeline import candidates, gold_rank, runtime_cascade

DEV_SETS = ("cosqa/dev", "csn_ruby/valid")
GRID = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5)
DEPTH = 100  # the runtime's N (EngineConfig.retrieve_depth)


def dev_grid(model_dir: Path, sets: list[str], threads: int) -> dict[str, dict[str, float]]:
    """MRR per weight (as text) per split."""
    model = ModelFolder.load(model_dir)
    encoder = OnnxRetriever(model, threads)
    grid: dict[str, dict[str, float]] = {f"{weight:g}": {} for weight in GRID}
    for name in sets:
        benchmark = load_eval_set(name)
        codes = code_embeddings(encoder, model, benchmark, default_cache_dir())
        queries = encoder.encode_queries([query.text for query in benchmark.queries])
        retriever_ranks = rank_of_gold(queries @ codes.T, benchmark.gold_positions())
        cascade = runtime_cascade(benchmark, model, codes, threads)
        found = candidates(benchmark, cascade, DEPTH)
        for weight in GRID:
            ranks = [
                gold_rank(
                    [
                        int(hit.chunk.id)
                        for hit in rank(options, SearchSettings(lexical_weight=weight))[:DEPTH]
                    ],
                    query.code_id,
                    int(retriever_ranks[row]),
                )
                for row, (query, options) in enumerate(zip(benchmark.queries, found, strict=True))
            ]
            grid[f"{weight:g}"][name] = round(retrieval_metrics(np.array(ranks))["mrr"], 4)
        cascade.store.close()
    return grid


def choose(grid: dict[str, dict[str, float]]) -> float:
    """The weight with the best mean MRR; ties go to the smaller weight."""
    return min(grid, key=lambda weight: (-sum(grid[weight].values()) / len(grid[weight]), float(weight)))


def write_weight(model_dir: Path, weight: float, grid: dict[str, dict[str, float]]) -> None:
    """Record the weight and its grid on the model card (temporary file, then renamed into place)."""
    path = model_dir / CARD_NAME
    card = json.loads(path.read_text(encoding="utf-8"))
    card[FIRST_STAGE] = {
        "lexical_weight": weight,
        "chosen_by": "bench/hybrid_weight.py: best mean MRR over " + ", ".join(next(iter(grid.values()))),
        "dev_mrr": grid,
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="model folder whose card gets the weight")
    parser.add_argument("--sets", nargs="+", default=list(DEV_SETS), help="dev splits (default: both)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print the grid, leave the card alone")
    args = parser.parse_args()
    if any(name.endswith("/test") for name in args.sets):
        sys.exit("hybrid_weight.py: choose on dev splits only; report test with `trainer eval`")
    grid = dev_grid(args.model, args.sets, args.threads)
    print("| lexical weight | " + " | ".join(args.sets) + " | mean |")
    print("|---|" + "---|" * (len(args.sets) + 1))
    for weight, scores in grid.items():
        cells = " | ".join(f"{scores[name]:.4f}" for name in args.sets)
        print(f"| {weight} | {cells} | {sum(scores.values()) / len(scores):.4f} |")
    chosen = float(choose(grid))
    print(f"chosen: {chosen:g}" + ("" if args.no_write else f" (written to {args.model / CARD_NAME})"))
    if not args.no_write:
        write_weight(args.model, chosen, grid)
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
