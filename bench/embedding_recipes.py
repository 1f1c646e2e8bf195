"""What the retriever should read of a chunk: the embedding recipes on the dev splits, through the runtime.

Each recipe is a copy of a model folder (default: the shipped one) with its card changed, and nothing
retrained: `code_context` (a first line with the chunk's path and qualified name; `encoders.code_text`),
`max_code_tokens` (how much of a function is read) and `max_query_tokens`. Each is scored by
`trainer eval` on CoSQA dev and CSN Ruby valid (the `runtime` row: the pool indexed and searched as
`codesieve search` does, lexical fusion on; CSN rows give their path through their URL, CoSQA's have none,
so there the context is the name alone). Prints one table of MRR and the command.

    python bench/embedding_recipes.py                       # every recipe, one thread
    python bench/embedding_recipes.py --recipes t128 t128-path+name
    python bench/embedding_recipes.py --model DIR
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from real_queries import card_variant

from codesieve.server.model.folder import default_model_dir

CACHE = Path("~/.cache/codesieve-bench/recipes").expanduser()
DEV = ("cosqa/dev", "csn_ruby/valid")
# name -> card changes
RECIPES: dict[str, dict[str, object]] = {
    "t128": {},
    "t128-path": {"code_context": ["path"]},
    "t128-path+name": {"code_context": ["path", "name"]},
    "t256": {"max_code_tokens": 256},
    "t256-path+name": {"max_code_tokens": 256, "code_context": ["path", "name"]},
    "t128-path+name-q64": {"code_context": ["path", "name"], "max_query_tokens": 64},
    "t128-path+name-q128": {"code_context": ["path", "name"], "max_query_tokens": 128},
}


def recipe_folder(model: Path, name: str) -> Path:
    """A copy of `model` whose card has the recipe's changes (made once; `real_queries.card_variant`)."""
    return card_variant(model, name, RECIPES[name], CACHE)


def dev_mrr(folder: Path, benchmark: str, threads: int) -> float:
    """The runtime row's MRR from `trainer eval` (embeddings cached per model and recipe)."""
    out = CACHE / f"{folder.name}-{benchmark.replace('/', '-')}.json"
    if not out.exists():
        command = [
            sys.executable,
            "-m",
            "codesieve.trainer.cli",
            "eval",
            "--benchmark",
            benchmark,
            "--model",
            str(folder),
        ]
        command += ["--threads", str(threads), "--json", str(out)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return float(json.loads(out.read_text(encoding="utf-8"))[benchmark]["runtime"]["mrr"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=default_model_dir(), help="model folder (default: shipped)"
    )
    parser.add_argument("--recipes", nargs="*", choices=sorted(RECIPES), default=list(RECIPES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"| recipe | {' | '.join(DEV)} | mean |")
    print(f"|---|{'---|' * len(DEV)}---|")
    for name in args.recipes:
        scores = [dev_mrr(recipe_folder(args.model, name), benchmark, args.threads) for benchmark in DEV]
        print(
            f"| {name} | {' | '.join(f'{score:.3f}' for score in scores)} | {sum(scores) / len(scores):.3f} |"
        )
    print(f"\n$ {shlex.join(['python', *sys.argv])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
