"""Latency of the language server as an editor sees it, over stdio, on a real folder.

Measures: the time from `initialize` to the first answered `codeSearch/find`; p50/p95 of
`codeSearch/find` with and without reranking while a file is being edited (a didChange + didSave
loop runs alongside, so the index updates under the searches; `--edit-period 0` turns it off); for
the reranked finds, p50/p95 of each stage as the server reports it (`stats.retrieveMs`: query
encoding and the first stage; `stats.rerankMs`: the ranker over the top K) next to the total the
client waited; whether a reranked find's p50 is within the budget (BUDGET_MS: what a command-palette search can take); and the
server process's resident memory (peak and at the end). It prints the figures and the command that
reproduces them.

    python bench/lsp_latency.py                       # the installed transformers' models/bert
    python bench/lsp_latency.py ~/src/myrepo --model path/to/model-folder --searches 200 --rerank-depth 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

from codesieve.server.lsp.protocol import raw_params_converter, uri_of

QUERIES = [
    "load the weights from a checkpoint",
    "apply attention over the hidden states",
    "tokenize a batch of sentences",
    "compute the loss for masked tokens",
    "resize the embedding matrix",
    "parse the configuration",
]
BUDGET_MS = 150.0  # p50 of a search reranked at K = 10, through the language server, for a ranker to ship


def default_folder() -> Path | None:
    """The installed transformers' BERT folder, a real, medium-sized Python package."""
    try:
        import transformers
    except ImportError:
        return None
    folder = Path(transformers.__file__).parent / "models" / "bert"
    return folder if folder.is_dir() else None


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc (Linux) or psutil."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import psutil

    return int(psutil.Process(pid).memory_info().rss)


async def call(client: LanguageClient, method: str, params: Any) -> Any:
    """One request, its result as JSON."""
    return await client.protocol.send_request_async(method, params)  # type: ignore[no-untyped-call]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def start(folder: Path, options: dict[str, Any]) -> tuple[LanguageClient, float]:
    client = LanguageClient(converter_factory=raw_params_converter)
    register_lsp_features(client)
    client.feature(types.CLIENT_REGISTER_CAPABILITY)(lambda params: None)  # accept the file watcher
    client.feature("codeSearch/indexStatus")(lambda params: None)
    await client.start_io(sys.executable, "-m", "codesieve.server.cli", "serve")
    started = time.perf_counter()
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=uri_of(folder),
            workspace_folders=[types.WorkspaceFolder(uri_of(folder), folder.name)],
            initialization_options=options,
        )
    )
    return client, started


async def edit_loop(client: LanguageClient, file: Path, stop: asyncio.Event, period: float) -> int:
    """Append a line and save, over and over, as a user typing and saving would."""
    uri, text, version = uri_of(file), file.read_text(encoding="utf-8"), 1
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
    )
    while not stop.is_set():
        version += 1
        text += f"\ndef edited_{version}(value):\n    return value * {version}\n"
        file.write_text(text, encoding="utf-8")
        change = types.TextDocumentContentChangeWholeDocument(text=text)
        identifier = types.VersionedTextDocumentIdentifier(version=version, uri=uri)
        client.text_document_did_change(types.DidChangeTextDocumentParams(identifier, [change]))
        client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
        await asyncio.sleep(period)
    return version - 1


@dataclass
class Timings:
    """Milliseconds per find: what the client waited, and each stage as the server's stats say."""

    total: list[float] = field(default_factory=list)
    retrieve: list[float] = field(default_factory=list)
    rerank: list[float] = field(default_factory=list)
    reranked: list[int] = field(default_factory=list)  # hits the ranker scored


async def timed_finds(client: LanguageClient, count: int, rerank: bool, pid: int, peak: list[int]) -> Timings:
    timings = Timings()
    for number in range(count):
        started = time.perf_counter()
        params = {"query": QUERIES[number % len(QUERIES)], "limit": 20, "rerank": rerank}
        stats = (await call(client, "codeSearch/find", params))["stats"]
        timings.total.append((time.perf_counter() - started) * 1000)
        timings.retrieve.append(float(stats["retrieveMs"]))
        timings.rerank.append(float(stats["rerankMs"]))
        timings.reranked.append(int(stats["reranked"]))
        peak[0] = max(peak[0], rss_bytes(pid))
    return timings


def spread(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.1f} ms  p95 {percentile(values, 0.95):7.1f} ms"


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="codesieve-bench-"))
    folder = work / args.folder.name
    shutil.copytree(args.folder, folder, ignore=shutil.ignore_patterns("__pycache__", ".git"))
    options: dict[str, Any] = {"indexDir": str(work / "indexes")}
    if args.model:
        options["model"] = str(args.model)
    if args.threads:
        options["threads"] = args.threads
    options["rerankDepth"] = args.rerank_depth
    client, started = await start(folder, options)
    assert client._server is not None
    pid = client._server.pid
    try:
        await call(client, "codeSearch/find", {"query": QUERIES[0]})
        first_find = time.perf_counter() - started
        while (status := await call(client, "codeSearch/status", None))["state"] == "indexing":
            await asyncio.sleep(0.2)
        ready = time.perf_counter() - started
        if status["state"] == "error":
            raise SystemExit(f"the server reports an error: {status.get('lastError')}")
        edited = sorted(folder.rglob("*.py"), key=lambda path: path.stat().st_size)[
            len(list(folder.rglob("*.py"))) // 2
        ]
        stop, peak = asyncio.Event(), [rss_bytes(pid)]
        editing = None
        if args.edit_period > 0:
            editing = asyncio.ensure_future(edit_loop(client, edited, stop, args.edit_period))
        reranked = await timed_finds(client, args.searches, True, pid, peak)
        plain = await timed_finds(client, args.searches, False, pid, peak)
        stop.set()
        edits = await editing if editing else 0
        final_rss = rss_bytes(pid)
    finally:
        await client.shutdown_session()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"folder:  {args.folder} ({status['files']} files, {status['chunks']} chunks), model {status['model']}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"initialize -> first find answered: {first_find:.2f} s (answered from what was indexed by then)")
    print(f"initialize -> index ready:         {ready:.2f} s")
    alongside = f"{edits} edits+saves of {edited.name} alongside" if editing else "no edits alongside"
    depth = max(reranked.reranked)
    for name, latencies in (("find, rerank", reranked.total), ("find, no rerank", plain.total)):
        print(f"{name:16} {spread(latencies)}  ({len(latencies)} requests, {alongside})")
    print(
        f"stages of the reranked finds (server stats, K = {args.rerank_depth}: {depth} hits reranked at most):"
    )
    print(f"  retrieve       {spread(reranked.retrieve)}  (query encoding + first stage)")
    print(f"  rerank         {spread(reranked.rerank)}")
    print(f"  total          {spread(reranked.total)}  (request to answer, as the client waited)")
    if depth == 0:
        print(
            "budget: nothing was reranked (the model folder has no ranker), so there is no rerank budget to check"
        )
    else:
        p50 = statistics.median(reranked.total)
        verdict = "within" if p50 <= BUDGET_MS else f"over by {p50 - BUDGET_MS:.0f} ms"
        print(
            f"budget: reranked find p50 {p50:.1f} ms at K = {args.rerank_depth}, {verdict} the {BUDGET_MS:.0f} ms budget"
        )
    print(f"server RSS: peak {peak[0] / 2**20:.0f} MiB, at the end {final_rss / 2**20:.0f} MiB")
    print("reproduce: " + shlex.join([sys.executable, *sys.argv]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "folder",
        type=Path,
        nargs="?",
        default=default_folder(),
        help="folder to index and "
        "search; it is copied first, since the benchmark edits a file (default: the installed "
        "transformers' models/bert)",
    )
    parser.add_argument("--model", type=Path, help="model folder (default: the server's default model)")
    parser.add_argument("--searches", type=int, default=100, help="finds per mode (default 100)")
    parser.add_argument(
        "--edit-period", type=float, default=0.25, help="seconds between edits; 0: no edits (default 0.25)"
    )
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads of the server")
    parser.add_argument(
        "--rerank-depth", type=int, default=10, help="K, hits the ranker rescores (default 10)"
    )
    args = parser.parse_args()
    if args.folder is None or not args.folder.is_dir():
        parser.error("give a folder to index (transformers is not installed, so there is no default)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
