"""Does this checkout train exactly the weights another commit trains? (docs/BENCHMARKS.md: a restructuring must not change what trains)

    python bench/same_training.py main

Exports REF's tree to a temporary folder, then trains the same tiny runs with REF's trainer and
with this checkout's, in fresh processes, on the same inputs (the tiny random base model of
tests/conftest.py and the pairs mined from tests/data/minirepo), one thread, seed 0:
- a retriever with the OASIS loss, a mined hard negative and a dev set (4 steps, checkpoints at 2);
- a retriever with Soft-InfoNCE (BM25 estimator);
- a ranker with in-batch negatives;
- a ranker with the recipe of docs/BENCHMARKS.md "A ranker that learns": started from the first
  retriever's encoder cut to 1 layer, ranking negatives with skip_top 1, 2 distillation steps,
  its own head learning rate, two dev sets (fused cascade, fusion weight chosen);
- the same ranker trained 2 steps, then resumed to 5.
It compares every tensor of every weight file, the optimiser states, the mined negatives, the
schedule's step, the best checkpoint and the dev metrics of each, and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def prepare(inputs: Path) -> None:
    """The shared inputs: a tiny random base model and the minirepo's pairs."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import DATA, build_tiny_base_model

    from codesieve.trainer.data import write_pairs
    from codesieve.trainer.mining import mine_repository

    build_tiny_base_model(inputs / "base")
    write_pairs(inputs / "pairs.jsonl", mine_repository(DATA / "minirepo").pairs)


def train(inputs: Path, out: Path) -> None:
    """The runs, with whichever codesieve comes first on sys.path."""
    from codesieve.trainer.config import RankerConfig, RetrieverConfig
    from codesieve.trainer.train_ranker import train_ranker
    from codesieve.trainer.train_retriever import train_retriever

    base, pairs = str(inputs / "base"), str(inputs / "pairs.jsonl")
    retriever = RetrieverConfig(
        pairs=pairs,
        out=str(out / "retriever"),
        base_model=base,
        batch_size=4,
        threads=1,
        loss="oasis",
        hard_negatives=1,
        dev=pairs,
        max_steps=4,
        checkpoint_every=2,
    )
    train_retriever(retriever)
    soft = replace(retriever, out=str(out / "retriever-soft"), loss="softinfonce", hard_negatives=0)
    train_retriever(replace(soft, estimator="bm25"))
    inbatch = RankerConfig(
        pairs=pairs,
        out=str(out / "ranker-inbatch"),
        base_model=base,
        negatives="inbatch",
        num_negatives=3,
        batch_size=4,
        max_steps=4,
        checkpoint_every=2,
        threads=1,
    )
    train_ranker(inbatch)
    trained = str(out / "retriever" / "checkpoint")
    recipe = replace(
        inbatch,
        out=str(out / "ranker-recipe"),
        init=trained,
        retriever=trained,
        negatives="ranking",
        num_negatives=2,
        skip_top=1,
        distill_steps=2,
        layers=1,
        lr=1e-4,
        head_lr=1e-3,
        max_steps=5,
        dev=f"{pairs},{pairs}",
        dev_depth=4,
    )
    train_ranker(recipe)
    resumed = replace(recipe, out=str(out / "ranker-resumed"))
    train_ranker(replace(resumed, max_steps=2))
    train_ranker(resumed, resume=True)


def _differences(x: Any, y: Any, where: str) -> tuple[int, list[str]]:
    """(tensors compared, where they differ) between two nested dicts/lists of tensors."""
    import torch

    if isinstance(x, torch.Tensor):
        equal = (
            isinstance(y, torch.Tensor) and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
        )
        return 1, [] if equal else [where]
    if isinstance(x, dict):
        if not isinstance(y, dict) or set(x) != set(y):
            return 0, [f"{where}: different keys"]
        found = [_differences(x[key], y[key], f"{where}.{key}") for key in x]
    elif isinstance(x, list | tuple):
        if not isinstance(y, list | tuple) or len(x) != len(y):
            return 0, [f"{where}: different lengths"]
        found = [_differences(u, v, f"{where}[{i}]") for i, (u, v) in enumerate(zip(x, y, strict=True))]
    else:
        return 0, []
    return sum(count for count, _ in found), [line for _, lines in found for line in lines]


def _dev(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in entry.items() if k != "loss"}
        for entry in info.get("dev_history", [])
        if "mrr" in entry
    ]


def compare(a: Path, b: Path) -> tuple[int, int, list[str]]:
    """(files, tensors compared, differences) between two output trees of `train`."""
    import torch
    from safetensors.torch import load_file

    files = sorted(path.relative_to(a) for path in a.rglob("*") if path.is_file())
    tensors, different = 0, []
    for relative in files:
        x, y = a / relative, b / relative
        if not y.exists():
            different.append(f"{relative}: missing")
            continue
        found: tuple[int, list[str]] = (0, [])
        if relative.suffix == ".safetensors":
            found = _differences(load_file(x), load_file(y), str(relative))
        elif relative.name == "train-state.pt":
            sx, sy = torch.load(x, weights_only=False), torch.load(y, weights_only=False)
            found = _differences(sx["optimizer"], sy["optimizer"], f"{relative}:optimizer")
            if (sx["step"], sx["scheduler"]["last_epoch"], sx["best"]) != (
                sy["step"],
                sy["scheduler"]["last_epoch"],
                sy["best"],
            ):
                different.append(f"{relative}: step, schedule or best")
        elif relative.suffix == ".pt":
            found = _differences(
                torch.load(x, weights_only=False), torch.load(y, weights_only=False), str(relative)
            )
        elif relative.name == "train-config.json":
            ix, iy = json.loads(x.read_text()), json.loads(y.read_text())
            if (_dev(ix), ix.get("best"), ix.get("step")) != (_dev(iy), iy.get("best"), iy.get("step")):
                different.append(f"{relative}: dev metrics, best or step")
        tensors += found[0]
        different += found[1]
    return len(files), tensors, different


def _export(ref: str, folder: Path) -> Path:
    """REF's tree under `folder/src`, and `folder/pkg/codesieve` mapping it as the install does."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    source = folder / "src"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    package = folder / "pkg" / "codesieve"
    package.mkdir(parents=True)
    for entry in (source / "codesieve").iterdir():
        (package / entry.name).symlink_to(entry)
    for name in ("server", "trainer", "export"):
        (package / name).symlink_to(source / name)
    return folder / "pkg"


def _run(mode: str, *args: Path, pythonpath: Path | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    command = [sys.executable, str(Path(__file__).resolve()), mode, *map(str, args)]
    subprocess.run(command, check=True, env=env, cwd=args[-1].parent)  # outside the checkout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ref", help="the commit to compare with, e.g. main")
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ref in ("prepare", "train"):
        (prepare if args.ref == "prepare" else train)(*args.paths)
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        other = _export(args.ref, work / "ref")
        _run("prepare", work / "inputs")
        _run("train", work / "inputs", work / "out-ref", pythonpath=other)
        _run("train", work / "inputs", work / "out-here")
        files, tensors, different = compare(work / "out-ref", work / "out-here")
    print(f"{files} files, {tensors} tensors compared with {args.ref}: {len(different)} differences")
    for line in different:
        print("  " + line)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
