"""Search through MCP as a coding agent calls it: `codesieve mcp` over stdio, driven by the `mcp` SDK's client.

Indexes requests 2.32.3's sdist once (the CLI, into a temporary index folder), then starts
`codesieve mcp FOLDER` and times, from the process start, the first `search_code` answer; then asks
each query of the set RUNS times and reports the share of queries whose answer is in the top 5, the
size of an answer in tokens at `limit` 5 (p50 and max, counted with the shipped model's tokenizer,
a WordPiece vocabulary: about what an agent's tokenizer counts, not exactly), and the latency p50/p95
of a call as the client waits for it.

The queries: until the project's real-query set exists, the 20 implementation queries of
`bench/test_share.py`, written by a person for requests 2.32.3, each with the definitions that answer it.

    python bench/mcp_search.py                 # requests 2.32.3, 3 rounds
    python bench/mcp_search.py --runs 5 --threads 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine_speed import fetch_package
from mcp import ClientSession, StdioServerParameters, stdio_client
from test_share import PACKAGE, QUERIES
from tokenizers import Tokenizer

from codesieve.server.model.folder import default_model_dir

TOP = 5


def answer_of(result: Any) -> dict[str, Any]:
    """The structured answer of a tool call, or the tool's error."""
    if result.is_error:
        raise RuntimeError(f"search_code failed: {result.content}")
    return dict(result.structured_content)


async def measure(folder: Path, env: dict[str, str], threads: int, runs: int) -> dict[str, Any]:
    codesieve = str(Path(sys.executable).with_name("codesieve"))
    flags = ["--threads", str(threads)] if threads else []
    parameters = StdioServerParameters(command=codesieve, args=["mcp", str(folder), *flags], env=env)
    tokenizer = Tokenizer.from_file(str(default_model_dir() / "tokenizer.json"))
    started = time.perf_counter()
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        first_query = next(iter(QUERIES))
        answer_of(await session.call_tool("search_code", {"query": first_query, "limit": TOP}))
        first_answer = time.perf_counter() - started
        latencies, sizes, found = [], [], 0
        for round_number in range(runs):
            for query, answers in QUERIES.items():
                called = time.perf_counter()
                result = await session.call_tool("search_code", {"query": query, "limit": TOP})
                latencies.append(time.perf_counter() - called)
                answer = answer_of(result)
                if round_number == 0:
                    text = "".join(part.text for part in result.content if hasattr(part, "text"))
                    sizes.append(len(tokenizer.encode(text).ids))
                    found += any(hit["name"] in answers for hit in answer["hits"][:TOP])
    ordered = sorted(latencies)
    return {
        "first_answer_s": first_answer,
        "top5_share": found / len(QUERIES),
        "tokens_p50": statistics.median(sizes),
        "tokens_max": max(sizes),
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000,
        "calls": len(latencies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="rounds over the queries (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (default: the server's)")
    args = parser.parse_args()
    folder = fetch_package(PACKAGE)
    env = {**os.environ, "CODESIEVE_INDEX_DIR": tempfile.mkdtemp(prefix="mcp-search-")}
    codesieve = str(Path(sys.executable).with_name("codesieve"))
    subprocess.run([codesieve, "index", str(folder), "-q"], env=env, check=True, capture_output=True)
    figures = asyncio.run(measure(folder, env, args.threads, args.runs))
    print(
        f"{PACKAGE}, {len(QUERIES)} queries x {args.runs} rounds through `codesieve mcp` (load {os.getloadavg()[0]:.2f})"
    )
    print("| answer in the top 5 | tokens an answer (limit 5) p50 / max | latency p50 / p95 | first answer |")
    print("|---|---|---|---|")
    print(
        f"| {figures['top5_share']:.0%} | {figures['tokens_p50']:.0f} / {figures['tokens_max']} | "
        f"{figures['p50_ms']:.0f} / {figures['p95_ms']:.0f} ms | {figures['first_answer_s']:.2f} s |"
    )
    print(json.dumps(figures))
    print("reproduce: python " + shlex.join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
