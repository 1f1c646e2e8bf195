"""Real queries, as developers type them, over real projects outside the training corpus, through `codesieve search`.

The set (bench/real_queries/): `manifest.json` pins four projects by registry, version and the
sha256 of the archive (none in data/corpus/manifest.json, none on the holdout list); `queries.jsonl`
holds one query a line, `{id, repo, kind, query, answers: [{path, name}]}`, written by hand after
reading the code, of four kinds: `task` (a short task phrase), `behaviour` (a sentence or two on
what the code does, in a user's words), `identifier` (a half-remembered name: fragments, camel or
snake case), `bug` (a bug report's sentence). An answer is a definition a maintainer would accept:
its path below the archive's top folder and its qualified name as CodeSieve names the chunk.

Each archive is downloaded once with its registry's client and checked against its sha256 (the
corpus builder's `download`), unpacked into ~/.cache/codesieve-bench/real-queries/, indexed with
`codesieve index`, and each query runs as its own `codesieve search --json --limit 10 --threads 1
--no-update` process, as a user's would. A hit matches when its path and name equal an answer's;
a hit that merely encloses an answer (its class, a window of lines) does not count, since the user
still has to find the function in it (where the class is an answer, the answers list it).

Columns, per kind and overall: MRR@10, R@1, R@5, R@10 (the share of queries with an accepted
answer in the top k) and the share of test code (`is_test_path`) among the top 10 hits.

Rows: each `--model DIR` as its card says (default: the shipped model), after these when asked:
    --zero-shot   all-MiniLM-L6-v2 exported like a shipped model (bench/quality.py's, cached), given the
                  shipped card's lexical weight: the same hybrid first stage as the default
    --bm25        the lexical index alone: the shipped folder with `first_stage.lexical_weight` 1, so the
                  runtime ranks by the FTS5 BM25 z-score only (a chunk holding no query word scores
                  0, and such ties keep dense order), with the runtime's test penalty and name rule
Each model's indexes live in ~/.cache/codesieve-bench/real-queries/index-<retriever sha256>/
(`--index-dir` to change), never in the user's cache; the BM25 row shares the default's, whose
retriever it is.

    python bench/real_queries.py                                  # the shipped default
    python bench/real_queries.py --bm25 --zero-shot --json /tmp/real-queries.json
    python bench/real_queries.py --model DIR --repo rq            # another model folder, one project
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from quality import base_model  # bench/quality.py, beside this script

from codesieve.server.model.folder import ModelFolder, default_model_dir
from codesieve.server.search.tests_by_path import is_test_path
from codesieve.trainer.corpus.build import download
from codesieve.trainer.corpus.fetch import extract
from codesieve.trainer.corpus.manifest import Package, load_manifest

SET = Path(__file__).parent / "real_queries"
MANIFEST = SET / "manifest.json"
QUERIES = SET / "queries.jsonl"
CACHE = Path.home() / ".cache" / "codesieve-bench" / "real-queries"
KINDS = ("task", "behaviour", "identifier", "bug")
DEPTH = 10  # hits read per query: every metric is @10 or less


@dataclass(frozen=True)
class Answer:
    """A definition a maintainer would accept: path below the archive's top folder, qualified name."""

    path: str
    name: str


@dataclass(frozen=True)
class RealQuery:
    """One query of the set, with every answer accepted for it."""

    id: str
    repo: str  # a manifest package's name
    kind: str  # one of KINDS
    query: str
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class System:
    """One row: a label and the model folder that `codesieve search` runs with."""

    label: str
    model: Path


def load_queries(path: Path = QUERIES) -> list[RealQuery]:
    """The queries of a JSONL file, in file order."""
    queries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            answers = tuple(Answer(answer["path"], answer["name"]) for answer in row["answers"])
            queries.append(RealQuery(row["id"], row["repo"], row["kind"], row["query"], answers))
    return queries


def load_projects(path: Path = MANIFEST) -> tuple[list[Package], dict[str, list[str]]]:
    """The manifest's packages (checked as the corpus manifest is) and each one's excluded globs."""
    data, packages = load_manifest(path)
    return packages, {str(name): list(globs) for name, globs in data.get("exclude", {}).items()}


def fetch(package: Package, cache: Path = CACHE) -> Path:
    """The unpacked archive's top folder, downloaded and verified once (the corpus builder's helpers)."""
    unpacked = extract(download(package, cache / "archives"), cache / "src" / package.slug)
    (top,) = [path for path in unpacked.iterdir() if path.is_dir()]  # an sdist or npm tarball: one folder
    return top


def card_variant(model: Path, tag: str, changes: dict[str, Any], cache: Path = CACHE) -> Path:
    """A copy of a model folder whose card has `changes` (top-level keys) on it, named by the retriever and
    `tag`: made once, checked to load as the runtime loads it, then reused."""
    card = ModelFolder.load(model).card
    target = cache / "models" / f"{card.files['retriever.onnx'][:16]}-{tag}"
    if not (target / "model-card.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
        for name in card.files:
            shutil.copy2(model / name, staging / name)
        data = {**card.to_json(), **changes}
        (staging / "model-card.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        ModelFolder.load(staging)  # the copy must load as the runtime will load it
        staging.rename(target)
    return target


def with_lexical_weight(model: Path, weight: float, cache: Path = CACHE) -> Path:
    """A copy of a model folder whose card sets `first_stage.lexical_weight`."""
    first_stage = ModelFolder.load(model).card.extra.get("first_stage", {})
    return card_variant(
        model, f"lexical-{weight:g}", {"first_stage": {**first_stage, "lexical_weight": weight}}, cache
    )


def index_dir_for(model: Path, cache: Path = CACHE) -> Path:
    """The index folder of a model: one per retriever and embedding recipe (`ModelFolder.model_id`), so
    rows never clobber each other's index."""
    return cache / f"index-{ModelFolder.load(model).model_id}"


def codesieve_command() -> list[str]:
    """The `codesieve` console script of this interpreter's environment."""
    found = shutil.which("codesieve", path=str(Path(sys.executable).parent)) or shutil.which("codesieve")
    if found is None:
        raise SystemExit("real_queries: no `codesieve` command; install the project (pip install -e .)")
    return [found]


def settings_flags(model: Path, index_dir: Path, exclude: Sequence[str]) -> list[str]:
    flags = ["--model", str(model), "--index-dir", str(index_dir), "--threads", "1", "-q"]
    for glob in exclude:
        flags += ["--exclude", glob]
    return flags


def run_cli(arguments: list[str], folder: Path) -> str:
    """Run `codesieve` in `folder` (so hit paths come relative to it); its stdout."""
    finished = subprocess.run(
        codesieve_command() + arguments, cwd=folder, capture_output=True, text=True, check=False
    )
    if finished.returncode != 0:
        raise SystemExit(
            f"`codesieve {shlex.join(arguments)}` failed in {folder}:\n{finished.stderr[-2000:]}"
        )
    return finished.stdout


def search(query: str, folder: Path, flags: list[str]) -> list[dict[str, Any]]:
    """The top DEPTH hits of one `codesieve search --json --no-update` (`flags` may end with search's own)."""
    output = run_cli(["search", "--json", "--limit", str(DEPTH), "--no-update", *flags, query, "."], folder)
    hits: list[dict[str, Any]] = json.loads(output)["hits"]
    return hits


def first_match(hits: Sequence[dict[str, Any]], answers: Sequence[Answer]) -> int | None:
    """1-based rank of the first hit whose path and name are an answer's, or one of its twins' (shown
    with it as "also at"), else None."""
    accepted = {(answer.path, answer.name) for answer in answers}
    for rank, hit in enumerate(hits, 1):
        places = [hit, *hit.get("also_at", [])]
        if any((place["path"], place["name"]) in accepted for place in places):
            return rank
    return None


def metrics(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """MRR@10, R@1, R@5, R@10 and the test share of the top 10 over some queries' results."""
    count = max(len(results), 1)
    ranks = [result["rank"] for result in results]
    shown = sum(len(result["hits"]) for result in results)
    tests = sum(hit["test"] for result in results for hit in result["hits"])
    return {
        "queries": len(results),
        "mrr@10": sum(1 / rank for rank in ranks if rank) / count,
        "recall@1": sum(1 for rank in ranks if rank and rank <= 1) / count,
        "recall@5": sum(1 for rank in ranks if rank and rank <= 5) / count,
        "recall@10": sum(1 for rank in ranks if rank) / count,
        "test_share@10": tests / max(shown, 1),
        # near-copies folded into a top-5 hit ("also at"): each would have taken a place of its own
        "twins_in_top5": sum(hit["twins"] for result in results for hit in result["hits"][:5]),
        "queries_with_twins_in_top5": sum(
            any(hit["twins"] for hit in result["hits"][:5]) for result in results
        ),
    }


def run_system(
    system: System,
    queries: Sequence[RealQuery],
    folders: dict[str, tuple[Path, list[str]]],
    index_root: Path | None,
    rerank_depth: int | None = None,
) -> list[dict[str, Any]]:
    """Index each project with the system's model, then run its queries one process each (a model
    with a ranker reranks the top `rerank_depth`, else search's default)."""
    index_dir = index_root or index_dir_for(system.model)
    depth = [] if rerank_depth is None else ["--rerank-depth", str(rerank_depth)]  # search's own flag
    results = []
    for repo, (folder, exclude) in folders.items():
        flags = settings_flags(system.model, index_dir, exclude)
        started = time.perf_counter()
        run_cli(["index", *flags, "."], folder)
        print(f"{system.label}: {repo} indexed in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for query in (query for query in queries if query.repo == repo):
            hits = search(query.query, folder, flags + depth)
            results.append(
                {
                    "id": query.id,
                    "repo": repo,
                    "kind": query.kind,
                    "query": query.query,
                    "rank": first_match(hits, query.answers),
                    "hits": [
                        {
                            "path": hit["path"],
                            "name": hit["name"],
                            "test": is_test_path(hit["path"]),
                            "twins": len(hit.get("also_at", [])),
                        }
                        for hit in hits
                    ],
                }
            )
    return results


def summary(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Metrics overall, per kind and per project."""
    groups: dict[str, dict[str, float]] = {"all": metrics(results)}
    for kind in KINDS:
        groups[kind] = metrics([result for result in results if result["kind"] == kind])
    for repo in sorted({result["repo"] for result in results}):
        groups[f"repo:{repo}"] = metrics([result for result in results if result["repo"] == repo])
    return groups


def systems_of(args: argparse.Namespace) -> list[System]:
    shipped = default_model_dir()
    systems = []
    if args.bm25:
        systems.append(System("BM25 (runtime lexical index alone)", with_lexical_weight(shipped, 1.0)))
    if args.zero_shot:
        weight = ModelFolder.load(shipped).card.lexical_weight
        systems.append(
            System(f"zero-shot MiniLM, hybrid w={weight:g}", with_lexical_weight(base_model(), weight))
        )
    for model in [path.resolve() for path in args.model or [shipped]]:
        card = ModelFolder.load(model).card
        systems.append(
            System(f"{card.name} [{card.embedding_recipe}], hybrid w={card.lexical_weight:g}", model)
        )
    return systems


def print_tables(rows: list[tuple[str, dict[str, dict[str, float]]]]) -> None:
    print(
        "| system | MRR@10 | R@1 | R@5 | R@10 | tests in top 10 | twins folded into the top 5 (queries) "
        "| MRR@10 task / behaviour / identifier / bug |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, groups in rows:
        overall = groups["all"]
        kinds = " / ".join(f"{groups[kind]['mrr@10']:.3f}" for kind in KINDS)
        print(
            f"| {label} | {overall['mrr@10']:.3f} | {overall['recall@1']:.3f} | {overall['recall@5']:.3f} | "
            f"{overall['recall@10']:.3f} | {overall['test_share@10']:.1%} | {overall['twins_in_top5']:.0f} "
            f"({overall['queries_with_twins_in_top5']:.0f}) | {kinds} |"
        )
    print()
    print("| system | group | queries | MRR@10 | R@1 | R@5 | R@10 | tests in top 10 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, groups in rows:
        for group, found in groups.items():
            if group == "all":
                continue
            print(
                f"| {label} | {group} | {found['queries']:.0f} | {found['mrr@10']:.3f} | {found['recall@1']:.3f} | "
                f"{found['recall@5']:.3f} | {found['recall@10']:.3f} | {found['test_share@10']:.1%} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, action="append", help="model folder, repeatable (default: the shipped one)"
    )
    parser.add_argument(
        "--bm25", action="store_true", help="add the BM25 row (the runtime's lexical index alone)"
    )
    parser.add_argument(
        "--zero-shot", action="store_true", help="add the zero-shot row (base model, same hybrid)"
    )
    parser.add_argument("--repo", action="append", help="only this manifest package, repeatable")
    parser.add_argument(
        "--index-dir", type=Path, help="index folder for every row (default: one per retriever)"
    )
    parser.add_argument("--json", type=Path, help="write every query's hits and the metrics here")
    parser.add_argument(
        "--rerank-depth", type=int, metavar="K", help="a model with a ranker reranks its top K (default 10)"
    )
    args = parser.parse_args()

    packages, excludes = load_projects()
    chosen = [package for package in packages if not args.repo or package.name in args.repo]
    folders = {package.name: (fetch(package), excludes.get(package.name, [])) for package in chosen}
    queries = [query for query in load_queries() if query.repo in folders]
    rows = []
    report: dict[str, Any] = {"date": date.today().isoformat(), "machine": platform.machine(), "systems": []}
    for system in systems_of(args):
        results = run_system(system, queries, folders, args.index_dir, args.rerank_depth)
        groups = summary(results)
        rows.append((system.label, groups))
        report["systems"].append(
            {"label": system.label, "model": str(system.model), "metrics": groups, "queries": results}
        )
    print(
        f"real queries: {len(queries)} over {', '.join(f'{p.name} {p.version}' for p in chosen)}; "
        f"{date.today().isoformat()}, {platform.machine()}, Python {platform.python_version()}, 1 thread"
    )
    print_tables(rows)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print("reproduce: python " + shlex.join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
