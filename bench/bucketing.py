"""What length-bucketed batches save when training the retriever on this CPU.

The trainer pads each batch to its longest member and cuts an epoch into batches of similar length
(`trainer.data.bucketed_batches`). This script compares that with batches cut from the same
shuffle without sorting: the tokens each batch pads to (queries and codes, the in-batch InfoNCE
the runs use), and the seconds of forward and backward passes over the same number of batches of
each kind, with the model the runs train (embeddings frozen), on one torch thread.

    python bench/bucketing.py ~/.cache/codesieve-exp/doc12k.jsonl
    python bench/bucketing.py PAIRS --steps 10 --code-view doc --max-code-tokens 128
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from codesieve.server.model.encoders import TokenEncoder
from codesieve.trainer.checkpoints import load_retriever
from codesieve.trainer.config import RetrieverConfig
from codesieve.trainer.data import bucketed_batches, to_tensors
from codesieve.trainer.models import base_model_dir
from codesieve.trainer.quiet import quiet_libraries
from codesieve.trainer.train_retriever import freeze_lower, load_training_data

SCALE = 20.0


def shuffled_batches(count: int, batch_size: int, seed: int) -> list[list[int]]:
    """The same shuffle as `bucketed_batches`, cut into batches without sorting by length."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return [order[start : start + batch_size] for start in range(0, count, batch_size)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pairs", type=Path, help="pairs file (JSONL, as the trainer reads it)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="batches timed per kind (default 10)")
    parser.add_argument("--code-view", default="doc", choices=("bare", "doc"))
    parser.add_argument("--max-query-tokens", type=int, default=32)
    parser.add_argument("--max-code-tokens", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = RetrieverConfig(
        pairs=str(args.pairs),
        code_view=args.code_view,
        max_query_tokens=args.max_query_tokens,
        max_code_tokens=args.max_code_tokens,
        batch_size=args.batch_size,
    )
    start = base_model_dir()
    data = load_training_data(config, TokenEncoder(start / "tokenizer.json"))
    lengths = [len(query[0]) + len(code[0]) for query, code in zip(data.queries, data.codes, strict=True)]
    with quiet_libraries(verbose=False):
        model = load_retriever(start)
    freeze_lower(model, -1)
    model.train()
    kinds = {
        "bucketed (the trainer's)": bucketed_batches(lengths, args.batch_size, 0),
        "shuffled, not sorted": shuffled_batches(len(lengths), args.batch_size, 0),
    }
    device = torch.device("cpu")
    print(
        f"{len(lengths)} pairs from {args.pairs}, batch {args.batch_size}, {args.code_view} view, "
        f"{args.max_query_tokens}/{args.max_code_tokens} tokens, {args.steps} timed steps, 1 torch thread"
    )
    print("| batches | padded tokens a batch (mean over the epoch) | of them real | s a step (median) |")
    print("|---|---|---|---|")
    for name, batches in kinds.items():
        padded = [
            len(batch)
            * (max(len(data.queries[i][0]) for i in batch) + max(len(data.codes[i][0]) for i in batch))
            for batch in batches
        ]
        real = [sum(lengths[i] for i in batch) for batch in batches]
        seconds = []
        for batch in batches[: args.steps + 1]:  # the first is a warm-up
            began = time.perf_counter()
            queries = model(**to_tensors([data.queries[i] for i in batch], device))
            codes = model(**to_tensors([data.codes[i] for i in batch], device))
            loss = F.cross_entropy(SCALE * queries @ codes.T, torch.arange(len(batch)))
            loss.backward()  # type: ignore[no-untyped-call]
            model.zero_grad(set_to_none=True)
            seconds.append(time.perf_counter() - began)
        share = sum(real) / sum(padded)
        print(
            f"| {name} | {statistics.mean(padded):.0f} | {share:.0%} | {statistics.median(seconds[1:]):.2f} |"
        )
    print("reproduce: python " + " ".join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
