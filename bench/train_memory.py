"""Peak memory and time of retriever training on the worst batches a fit meets: the 96 longest pairs of a
`trainer fit` work folder's training file (every batch 32 codes of 128 tokens), 3 steps from its start model.

    python bench/train_memory.py ~/.cache/codesieve/indexes/REPO-*/training
    python bench/train_memory.py WORK --gradient-checkpointing
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from codesieve.trainer.config import RetrieverConfig
from codesieve.trainer.train_retriever import train_retriever


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("work", type=Path, help="a `trainer fit` work folder (train-mixed.jsonl, start/)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="train-memory-"))
    rows = [json.loads(line) for line in (args.work / "train-mixed.jsonl").read_text().splitlines()]
    rows.sort(key=lambda row: -len(row["code"]))
    pairs = scratch / "longest.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in rows[:96]))
    config = RetrieverConfig(
        pairs=str(pairs),
        out=str(scratch / "run"),
        init=str(args.work / "start"),
        max_steps=3,
        batch_size=32,
        max_query_tokens=32,
        max_code_tokens=128,
        threads=1,
        checkpoint_every=1000,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    started = time.monotonic()
    train_retriever(config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"gradient checkpointing {args.gradient_checkpointing}: peak {peak} MB, {time.monotonic() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
