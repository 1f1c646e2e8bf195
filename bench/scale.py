"""How indexing and search grow with the code base, from 1,000 to 100,000 functions, on this machine.

The code base is the training corpus's packages (those of data/corpus/manifest.json, 7 languages, from
PyPI, npm and Debian; `python -m codesieve.trainer.corpus build` fetches and unpacks them). Whole
packages, in a fixed shuffled order, are added to one workspace folder (hard links) to land near each
size; at each size the new files are indexed incrementally and search is timed, so the index time of a
row is the total to get there.
At the largest size it also times: re-opening the saved index, a sync with nothing changed, and a
branch switch (hundreds of files changed or deleted, then synced).

    python bench/scale.py                                  # sizes 1k 10k 30k 100k, shipped model
    python bench/scale.py --sizes 1000 10000 --threads 1   # a quicker run

Prints one table row per size and ends with the command that reproduces the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shlex
import shutil
import sys
import time
from pathlib import Path

from engine_speed import bench_config, percentile, repeat_queries, time_searches

from codesieve.server.chunk.chunker import chunk_source
from codesieve.server.scan.safe_read import SourceError, read_source
from codesieve.server.scan.walk import scan_workspace
from codesieve.server.workspace import Workspace
from codesieve.trainer.corpus.manifest import load_manifest

SOURCES = Path.home() / ".cache" / "codesieve-corpus" / "sources"
MANIFEST = Path(__file__).resolve().parent.parent / "data" / "corpus" / "manifest.json"
CACHE = Path.home() / ".cache" / "codesieve-bench" / "scale"


def count_chunks(folder: Path) -> int:
    """Chunks the engine would index in `folder` (chunking only, no embedding)."""
    total = 0
    for file in scan_workspace(folder).files:
        try:
            total += len(chunk_source(file.path, read_source(folder / file.path, 1_000_000), file.language))
        except (OSError, SourceError):
            continue
    return total


def pick_packages(sizes: dict[Path, int], have: int, target: int) -> list[Path]:
    """Packages (in `sizes`' order) that bring `have` chunks close to `target`.

    Takes each package that keeps the total within 10% over the target, then the smallest remaining
    ones while the total is more than 10% short, so rows land near their targets whatever the
    package sizes.
    """
    chosen = []
    for package, count in sizes.items():
        if have < target and have + count <= target * 1.1:
            chosen.append(package)
            have += count
    for package in sorted((p for p in sizes if p not in chosen), key=sizes.__getitem__):
        if have >= target * 0.9:
            break
        chosen.append(package)
        have += sizes[package]
    return chosen


def row(label: str, workspace: Workspace, seconds: float, embedded: int, queries: list[str]) -> str:
    plain = time_searches(workspace, queries, rerank=False)
    reranked = time_searches(workspace, queries, rerank=True) if workspace.ranker else []
    rerank = f"{percentile(reranked, 0.5):.0f} ms" if reranked else "-"
    return (
        f"| {label} | {workspace.store.chunk_count():,} | {seconds / 60:.1f} min | "
        f"{embedded / seconds:.1f} | {percentile(plain, 0.5):.1f} / {percentile(plain, 0.95):.1f} ms | {rerank} | "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB | {workspace.status()['indexBytes'] / 1e6:.0f} MB |"
    )


def branch_switch(files: list[Path], count: int, seed: int) -> tuple[int, int]:
    """Change `count` Python files (a function added) and delete a tenth as many: (changed, deleted)."""
    chosen = random.Random(seed).sample(files, min(count + count // 10, len(files)))
    changed, deleted = chosen[:count], chosen[count:]
    for n, path in enumerate(changed):
        text = path.read_text(encoding="utf-8", errors="replace")
        path.unlink()  # a hard link: write a new file, leave the corpus copy alone
        path.write_text(
            f"{text}\n\ndef switched_branch_{n}(value):\n    return value * {n}\n", encoding="utf-8"
        )
    for path in deleted:
        path.unlink()
    return len(changed), len(deleted)  # fewer than asked when the workspace has fewer Python files


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 10000, 30000, 100000], help="functions"
    )
    parser.add_argument("--sources", type=Path, default=SOURCES, help="folder of unpacked packages")
    parser.add_argument("--model", type=Path, help="model folder (default: the shipped default)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: cores, at most 4)")
    parser.add_argument("--queries", type=int, default=40, help="timed searches per size (default 40)")
    parser.add_argument("--switch", type=int, default=300, help="files a branch switch changes (default 300)")
    args = parser.parse_args()
    if not args.sources.is_dir():
        sys.exit(
            f"{args.sources} is missing: python -m codesieve.trainer.corpus build (see data/corpus/README.md)"
        )

    root = CACHE / "workspace"
    shutil.rmtree(CACHE, ignore_errors=True)
    root.mkdir(parents=True)
    config = bench_config("codesieve-scale-", args.model, args.threads)
    workspace = Workspace(root, config)
    queries = repeat_queries(args.queries)
    print(
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
        f"threads {config.threads}; model {workspace.model.card.name} ({workspace.model.card.quantization})"
    )
    _, pinned = load_manifest(MANIFEST)
    packages = sorted(args.sources / package.slug for package in pinned)
    missing = [path.name for path in packages if not path.is_dir()]
    if missing:
        sys.exit(f"{len(missing)} packages missing from {args.sources} ({missing[0]}, ...): corpus build")
    random.Random(0).shuffle(packages)  # languages mixed at every size
    sizes = {package: count_chunks(package) for package in packages}
    print(f"corpus: {len(packages)} packages, {sum(sizes.values()):,} chunks")
    print(
        "| functions (target) | chunks indexed | total index time | functions/s | search p50 / p95 | "
        "rerank K=10 p50 | peak RSS | index on disk |"
    )
    print("|---|---|---|---|---|---|---|---|")
    chunks, seconds, embedded = 0, 0.0, 0
    for size in sorted(args.sizes):
        for package in pick_packages(sizes, chunks, size):
            shutil.copytree(package, root / package.name, copy_function=os.link, symlinks=True)
            chunks += sizes.pop(package)
        report = workspace.sync()
        seconds += report.seconds
        embedded += report.chunks_embedded
        print(row(f"{size:,}", workspace, seconds, embedded, queries), flush=True)

    workspace.close()
    started = time.perf_counter()
    workspace = Workspace(root, config)
    reopen = time.perf_counter() - started
    print(f"re-open the saved index: {reopen:.1f} s ({workspace.loaded_how})")
    report = workspace.sync()
    print(f"sync with nothing changed: {report.seconds:.1f} s over {report.files_total:,} files")
    changed, deleted = branch_switch(sorted(root.rglob("*.py")), args.switch, seed=0)
    report = workspace.sync()
    print(
        f"branch switch, {changed} files changed and {deleted} deleted: synced in {report.seconds:.1f} s "
        f"({report.chunks_embedded} chunks embedded, {report.chunks_reused} reused)"
    )
    workspace.close()
    print("reproduce: python " + " ".join(shlex.quote(arg) for arg in sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
