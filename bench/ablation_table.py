"""The table of bench/ablation.sh's results, for docs/BENCHMARKS.md.

    python bench/ablation_table.py [WORK]        # default WORK: ~/.cache/codesieve-ablation

One row per system of the ablation (docs/TRAINING.md): BM25 and the base model zero-shot (evaluated here; the base is
exported once into ~/.cache/codesieve-bench/base-model), then every trained run in WORK (its eval
JSON files and the training time its trainer recorded). Dev columns chose the runs; test columns
are for reporting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from quality import base_model

from codesieve.trainer.benchmarks import load_benchmark
from codesieve.trainer.checkpoints import CONFIG_FILE
from codesieve.trainer.evaluate import default_cache_dir, evaluate

SPLITS = ("cosqa-dev", "csn_ruby-valid", "cosqa-test", "csn_ruby-test")
RETRIEVERS = {
    "infonce": "InfoNCE (in-batch)",
    "hardneg": "+ hard negatives (k=1, mined by the base model)",
    "soft-bm25": "Soft-InfoNCE, BM25 estimator",
    "soft-base": "Soft-InfoNCE, frozen base model estimator",
    "soft-trained": "Soft-InfoNCE, trained-retriever estimator",
    "oasis": "order-augmented (InfoNCE + CoSENT, base teacher)",
}
RANKERS = {"ranker-inbatch": "in-batch negatives", "ranker-ranking": "ranking-based negatives (R2PS)"}


def metrics(work: Path, name: str, split: str) -> dict[str, Any] | None:
    path = work / "evals" / f"{name}-{split}.json"
    return next(iter(json.loads(path.read_text()).values())) if path.exists() else None


def cells(rows: list[dict[str, float] | None]) -> str:
    """Dev MRRs, then test MRR (R@1 / R@10) for each test split."""
    out = []
    for split, row in zip(SPLITS, rows, strict=True):
        if row is None:
            out.append("-")
        elif split.endswith("test"):
            out.append(f"{row['mrr']:.3f} ({row['recall@1']:.3f} / {row['recall@10']:.3f})")
        else:
            out.append(f"{row['mrr']:.3f}")
    return " | ".join(out)


def minutes(work: Path, name: str) -> str:
    config = work / name / "model" / CONFIG_FILE
    seconds = json.loads(config.read_text()).get("seconds") if config.exists() else None
    return f"{seconds / 60:.0f} min" if seconds else "-"


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".cache" / "codesieve-ablation"
    print(
        "| system | CoSQA dev MRR | Ruby valid MRR | CoSQA test MRR (R@1 / R@10) | Ruby test MRR (R@1 / R@10) | training |"
    )
    print("|---|---|---|---|---|---|")
    benchmarks = [load_benchmark(*split.split("-")) for split in SPLITS]
    bm25 = [evaluate(benchmark, None, bm25=True).rows["bm25"] for benchmark in benchmarks]
    print(f"| BM25 | {cells(bm25)} | - |")
    base = base_model()
    zero = [evaluate(b, base, (), cache_dir=default_cache_dir()).rows["retriever"] for b in benchmarks]
    print(f"| all-MiniLM-L6-v2 zero-shot (64/256 tokens) | {cells(zero)} | - |")
    for name, label in RETRIEVERS.items():
        rows = [metrics(work, name, split) for split in SPLITS]
        print(f"| {label} | {cells([row and row['retriever'] for row in rows])} | {minutes(work, name)} |")
    best = (work / "best-retriever").read_text().strip() if (work / "best-retriever").exists() else "?"
    for name, label in RANKERS.items():
        rows = [metrics(work, name, split) for split in SPLITS]
        cascade = [row and row.get("cascade@10") for row in rows]
        print(f"| cascade K=10: {best} + ranker, {label} | {cells(cascade)} | {minutes(work, name)} |")
    for split in ("cosqa-test", "csn_ruby-test"):
        row = metrics(work, "depths", split)
        if row:
            depths = ", ".join(
                f"K={key.split('@')[1]}: {value['mrr']:.3f}" for key, value in row.items() if "@" in key
            )
            print(
                f"\ncascade depth on {split} (MRR): retriever alone {row['retriever']['mrr']:.3f}, {depths}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
