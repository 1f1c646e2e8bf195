"""General (description, code) pairs shipped with the package: the replay sample and the general check.

`trainer fit` fine-tunes the model a user has on one repository. Two small samples of the training
corpus (data/corpus: 84 permissively licensed packages, decontaminated against the benchmarks) keep
it honest, both in ``codesieve/general/`` as gzipped JSONL, each pair with its package, version,
registry and licence:

- ``replay.jsonl.gz``: pairs mixed into the repository's training pairs so that the model does not
  forget what it knew (rehearsal); `replay_pairs` draws as many as the repository has, within bounds;
- ``check.jsonl.gz``: the general check, a fixed benchmark (each description against all the
  check's codes) on which a fitted model may not lose more than a little MRR. Its pairs come from
  packages the replay sample does not use, so rehearsal cannot teach the check.

`python -m codesieve.trainer.general_pairs build` makes both from a corpus build, reproducibly
(fixed seed, sorted packages, gzip without timestamps), and decontaminates them against the
benchmarks once more.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .corpus.decontaminate import normalise_query
from .data import Pair
from .negatives import code_key

REPLAY_FILE = "replay.jsonl.gz"
CHECK_FILE = "check.jsonl.gz"
REPLAY_PAIRS = 2000  # pairs in the shipped replay sample
CHECK_PAIRS = 500  # pairs in the general check: MRR standard error about 0.015
CHECK_PACKAGE_EVERY = 6  # every 6th package of each language (by name) gives the check its pairs
MAX_CODE_CHARACTERS = 1500  # codes are cut at a line end past this: the models read 128-256 tokens
KEPT_FIELDS = ("id", "query", "code", "language", "path", "name", "package", "version", "registry", "licence")


def general_dir() -> Path:
    """The folder of the shipped general pairs inside the package."""
    return Path(str(resources.files("codesieve") / "general"))


def read_general(path: Path) -> list[Pair]:
    """Pairs from a gzipped JSONL file of general pairs."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [
        Pair(
            id=str(row["id"]),
            query=str(row["query"]),
            code=str(row["code"]),
            language=str(row.get("language", "")),
            path=str(row.get("path", "")),
            name=str(row.get("name", "")),
        )
        for row in rows
    ]


def without_overlap(pairs: Iterable[Pair], others: Iterable[Pair]) -> list[Pair]:
    """`pairs` minus any whose code or description equals one of `others` (a repository's pairs)."""
    others = list(others)
    codes = {code_key(pair.code) for pair in others}
    queries = {normalise_query(pair.query) for pair in others}
    return [
        pair
        for pair in pairs
        if code_key(pair.code) not in codes and normalise_query(pair.query) not in queries
    ]


def replay_pairs(
    sample: Sequence[Pair], repository_pairs: int, ratio: float, minimum: int, seed: int
) -> list[Pair]:
    """`ratio` replay pairs per repository pair, at least `minimum`, at most the whole sample."""
    count = min(len(sample), max(minimum, round(ratio * repository_pairs)))
    return random.Random(seed).sample(list(sample), count)


# ---- building the shipped files -------------------------------------------------------------------


def _cut(code: str, limit: int) -> str:
    if len(code) <= limit:
        return code
    end = code.rfind("\n", 0, limit)
    return code[: end if end > 0 else limit]


def _write(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with (
        temporary.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as out,
    ):
        for row in rows:
            out.write((json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    temporary.replace(path)


def split_packages(rows: Sequence[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(replay packages, check packages): every `CHECK_PACKAGE_EVERY`-th of each language to the check."""
    by_language: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_language[row["language"]].add(row["package"])
    check: set[str] = set()
    for packages in by_language.values():
        check.update(sorted(packages)[CHECK_PACKAGE_EVERY // 2 :: CHECK_PACKAGE_EVERY])
    return {row["package"] for row in rows} - check, check


def build(corpus: Path, out: Path, benchmarks: Path | None, seed: int = 0) -> dict[str, Any]:
    """Write `REPLAY_FILE` and `CHECK_FILE` into `out` from a corpus pairs file; returns a summary."""
    with Path(corpus).expanduser().open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    dropped = 0
    if benchmarks is not None:
        from .corpus.decontaminate import decontaminate, load_contamination

        before = len(rows)
        rows, _ = decontaminate(rows, load_contamination(benchmarks), set())
        dropped = before - len(rows)
    replay_packages, check_packages = split_packages(rows)
    generator = random.Random(seed)
    samples = {}
    for name, packages, count in (
        ("check", check_packages, CHECK_PAIRS),
        ("replay", replay_packages, REPLAY_PAIRS),
    ):
        candidates = [row for row in rows if row["package"] in packages]
        chosen = generator.sample(candidates, min(count, len(candidates)))
        samples[name] = [
            {
                **{field: row.get(field, "") for field in KEPT_FIELDS},
                "code": _cut(row["code"], MAX_CODE_CHARACTERS),
            }
            for row in chosen
        ]
    out.mkdir(parents=True, exist_ok=True)
    _write(out / REPLAY_FILE, samples["replay"])
    _write(out / CHECK_FILE, samples["check"])
    return {
        "corpus_pairs": len(rows),
        "dropped_as_benchmark": dropped,
        "replay": len(samples["replay"]),
        "check": len(samples["check"]),
        "check_packages": sorted(check_packages),
        "licences": sorted(
            {
                f"{row['package']} {row['version']}: {row['licence']}"
                for rows_ in samples.values()
                for row in rows_
            }
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m codesieve.trainer.general_pairs build``."""
    parser = argparse.ArgumentParser(
        prog="python -m codesieve.trainer.general_pairs",
        description="Make the replay sample and the general check that `trainer fit` uses, from a corpus build.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build_parser = commands.add_parser("build", help="sample, decontaminate and write both files")
    build_parser.add_argument("--corpus", type=Path, default=Path("~/.cache/codesieve-corpus/pairs.jsonl"))
    build_parser.add_argument("--out", type=Path, default=Path("codesieve/general"))
    build_parser.add_argument(
        "--benchmarks",
        type=Path,
        help="benchmarks folder (default: $CODESIEVE_BENCHMARKS or shared/benchmarks)",
    )
    build_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .benchmarks import find_benchmarks_root

    try:
        benchmarks = args.benchmarks or find_benchmarks_root()
        summary = build(args.corpus, args.out, benchmarks, args.seed)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
