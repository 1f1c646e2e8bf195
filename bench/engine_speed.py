"""Indexing and search speed of the engine on a real code base, on this machine.

Downloads the source distribution of a pinned PyPI package (default Django 5.1.4) once into a
cache folder, indexes it from scratch into a temporary index, and prints: functions indexed per
second, index size on disk, peak memory of this process, and the p50/p95 latency of search
without and with reranking at N=100, K=10. Ends with the command that reproduces the figures.

    python bench/engine_speed.py                                  # Django 5.1.4, shipped default model
    python bench/engine_speed.py --package django==5.1.4 --package networkx==3.4.2 --package rich==13.9.4
    python bench/engine_speed.py --subset django/db --queries 40  # a quicker run
    python bench/engine_speed.py --model /tmp/timing-model        # a model folder with a ranker

A model folder without a ranker gives no rerank figures; for latency alone, build one with
`trainer export --base --untrained-ranker --out /tmp/timing-model` (same size as a
trained ranker, meaningless scores).
"""

from __future__ import annotations

import argparse
import platform
import resource
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from codesieve.server.config import Settings
from codesieve.server.workspace import Workspace
from codesieve.trainer.corpus.fetch import extract, fetch_archive

CACHE = Path.home() / ".cache" / "codesieve-bench"
QUERIES = [
    "parse the config file and fall back to defaults",
    "retry an http request with backoff",
    "validate an email address",
    "escape html special characters",
    "convert a datetime to a timezone aware value",
    "read a file in chunks",
    "compute a hash of a password",
    "build an sql query with a where clause",
    "paginate a list of objects",
    "serialize an object to json",
    "check whether the user has a permission",
    "send an email to the site admins",
    "cache the result of a function",
    "parse an http accept-language header",
    "split a string into words",
    "format a number with thousands separators",
    "open a database connection",
    "render a template with a context",
    "load translations for a language",
    "compare two version strings",
]


def fetch_package(spec: str) -> Path:
    """Download and unpack a source distribution once (the corpus builder's fetcher); its folder."""
    name, _, version = spec.partition("==")
    folder = CACHE / f"{name}-{version}"
    if not (folder / ".complete").exists():
        with tempfile.TemporaryDirectory() as download:
            extract(fetch_archive("pypi", name, version, Path(download)), folder)
    (top,) = [path for path in folder.iterdir() if path.is_dir()]  # an sdist holds one NAME-VERSION folder
    return top


def combine(folders: list[Path]) -> Path:
    """One folder holding copies of several unpacked packages (symlinks would be skipped as outside)."""
    if len(folders) == 1:
        return folders[0]
    target = CACHE / "+".join(folder.name for folder in folders)
    if not target.is_dir():
        staging = target.with_name(target.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        for folder in folders:
            shutil.copytree(folder, staging / folder.name)
        staging.rename(target)
    return target


def bench_config(prefix: str, model: Path | None, threads: int | None) -> Settings:
    """Engine settings for a benchmark: a fresh temporary index, the model and threads if given."""
    settings: dict[str, object] = {"index_dir": Path(tempfile.mkdtemp(prefix=prefix))}
    if model:
        settings["model"] = model
    if threads:
        settings["threads"] = threads
    return Settings(**settings)  # type: ignore[arg-type]


def repeat_queries(count: int) -> list[str]:
    """`count` queries: QUERIES repeated as needed."""
    return (QUERIES * (count // len(QUERIES) + 1))[:count]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def time_searches(workspace: Workspace, queries: list[str], rerank: bool) -> list[float]:
    for query in queries[:3]:  # warm-up
        workspace.search(query, rerank=rerank)
    timings = []
    for query in queries:
        started = time.perf_counter()
        workspace.search(query, rerank=rerank)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--package",
        action="append",
        help="PyPI sdist to index, repeatable: several are copied into one folder (default django==5.1.4)",
    )
    parser.add_argument("--folder", type=Path, help="index this folder instead of a package")
    parser.add_argument("--subset", help="only this subfolder of the package (e.g. django/db)")
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped default)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: cores, at most 4)")
    parser.add_argument("--queries", type=int, default=60, help="timed searches per mode (default 60)")
    args = parser.parse_args()

    folder = args.folder or combine([fetch_package(spec) for spec in args.package or ["django==5.1.4"]])
    if args.subset:
        folder = folder / args.subset
    config = bench_config("codesieve-bench-", args.model, args.threads)

    started = time.perf_counter()
    workspace = Workspace(folder, config)
    load_seconds = time.perf_counter() - started
    report = workspace.sync()
    size = workspace.status()["indexBytes"]
    queries = repeat_queries(args.queries)
    plain = time_searches(workspace, queries, rerank=False)
    reranked = time_searches(workspace, queries, rerank=True) if workspace.ranker else []
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores, "
        f"Python {platform.python_version()}, threads {config.threads}"
    )
    print(f"code base: {folder} ({report.files_total} files)")
    print(
        f"model: {workspace.model.card.name} ({workspace.model.card.quantization}); loaded in {load_seconds:.2f} s"
    )
    print(
        f"indexed: {report.chunks_total} chunks ({report.chunks_embedded} embedded) in {report.seconds:.1f} s "
        f"= {report.chunks_embedded / report.seconds:.1f} functions/s"
    )
    print(f"index size on disk: {size / 1e6:.1f} MB; peak memory (RSS): {peak_mb:.0f} MB")
    print(
        f"search, no rerank (N={config.retrieve_depth}): p50 {percentile(plain, 0.5):.1f} ms, "
        f"p95 {percentile(plain, 0.95):.1f} ms over {len(plain)} queries"
    )
    if reranked:
        print(
            f"search, rerank K={config.rerank_depth} of N={config.retrieve_depth}: "
            f"p50 {percentile(reranked, 0.5):.1f} ms, p95 {percentile(reranked, 0.95):.1f} ms"
        )
    else:
        print("search with rerank: no ranker in this model folder (see --help)")
    print(f"mean query latency no-rerank {statistics.mean(plain):.1f} ms")
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
