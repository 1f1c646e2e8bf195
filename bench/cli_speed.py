"""How long the command line takes, as whole processes, beside `python -c pass` in the same run.

Indexes a real package once (default docutils 0.21.2's sdist, about 4,600 chunks) into a temporary
index folder, then times each command RUNS times, in turn (one run of each, then the next round), so
that machine noise falls on every row alike. Prints the median and the 90th percentile of each row's
wall time, and the command that reproduces the table.

    python bench/cli_speed.py                               # docutils 0.21.2, 7 rounds
    python bench/cli_speed.py --package requests==2.32.3 --runs 11
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_speed import fetch_package

QUERY = "parse the config file and fall back to defaults"


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of `command`; a failure stops the benchmark with its output."""
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--package", default="docutils==0.21.2", help="sdist to index (default docutils==0.21.2)"
    )
    parser.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    parser.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads of every command (default: its own)"
    )
    args = parser.parse_args()
    folder = fetch_package(args.package)
    codesieve = str(Path(sys.executable).with_name("codesieve"))
    index_dir = tempfile.mkdtemp(prefix="cli-speed-")
    env = {**os.environ, "CODESIEVE_INDEX_DIR": index_dir}
    started = time.perf_counter()
    threads = ["--threads", str(args.threads)] if args.threads else []
    indexed = subprocess.run(
        [codesieve, "index", str(folder), "-q", *threads], env=env, capture_output=True, text=True, check=True
    )
    print(f"indexed {folder.name} in {time.perf_counter() - started:.1f} s: {indexed.stdout.splitlines()[0]}")
    rows = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import codesieve.server.cli": [sys.executable, "-c", "import codesieve.server.cli"],
        "codesieve --help": [codesieve, "--help"],
        "codesieve search (--no-update)": [
            codesieve,
            "search",
            QUERY,
            str(folder),
            "--no-update",
            "-q",
            *threads,
        ],
        "codesieve search": [codesieve, "search", QUERY, str(folder), "-q", *threads],
        "codesieve status": [codesieve, "status", str(folder), *threads],
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.runs):
        for name, command in rows.items():
            times[name].append(timed(command, env))
    shutil.rmtree(index_dir, ignore_errors=True)
    print(f"| what | p50 | p90 | ({args.runs} runs, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"| {name} | {statistics.median(values) * 1000:.0f} ms | {p90 * 1000:.0f} ms | |")
    print("reproduce: python " + shlex.join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
