"""`codesieve`: semantic code search from the terminal, offline.

    codesieve index ~/src/myrepo
    codesieve search "retry an http request with backoff" ~/src/myrepo
    codesieve search "parse config" . --json --limit 20 --no-rerank --lang python --path 'src/**'
    codesieve search "mock the http adapter" . --tests      # test code ranked like any other
    codesieve similar ~/src/myrepo/pkg/io.py:120
    codesieve status ~/src/myrepo
    codesieve serve                      # the language server, over stdio
    codesieve mcp ~/src/myrepo           # the tools for coding agents (MCP), over stdio

Indexes live in the user cache directory (see `codesieve status`); a search on a folder with no
index indexes it first, and every search first picks up files changed since the last one.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, read_setting, setting_name
from .errors import WorkspaceError
from .model.folder import ModelError
from .scan.safe_read import SourceError

if TYPE_CHECKING:
    from .index.indexer import IndexReport
    from .search.cascade import Hit, SearchResult
    from .workspace import Workspace

# Each command imports what it needs when it runs: `--help` and a search load no language server
# (lsprotocol alone takes 0.3 s), and a search parses no grammar unless a file changed.


def _config(args: argparse.Namespace) -> Settings:
    """The settings the flags give, read by the same converter as the language server's."""
    values: dict[str, Any] = {}
    for name in (
        "model",
        "index_dir",
        "threads",
        "max_file_size",
        "retrieve_depth",
        "rerank_depth",
        "exclude",
    ):
        value = getattr(args, name, None)
        if value is None:
            continue
        try:
            values[name] = read_setting(setting_name(name), str(value) if isinstance(value, Path) else value)
        except ValueError as error:
            raise WorkspaceError(f"--{name.replace('_', '-')}: {error}") from error
    return Settings(**values)


def _warnings_to_stderr() -> None:
    """Warnings the engine logs (an ignore file's invalid line) as `codesieve: ...` lines on stderr,
    like the command's own messages; `serve` logs with timestamps instead (lsp/server.py)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("codesieve: %(message)s"))
    logger = logging.getLogger("codesieve")
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def _open(root: Path, args: argparse.Namespace) -> Workspace:
    from .workspace import SHARED, Workspace

    workspace = Workspace(root, _config(args))
    for warning in ([SHARED] if workspace.shared else []) + workspace.warnings:
        print(f"codesieve: {warning}", file=sys.stderr)
    return workspace


def _sync(workspace: Workspace, quiet: bool) -> IndexReport:
    """Index with a progress bar on stderr (hidden when quiet or nothing to do)."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", desc="indexing", disable=quiet or None, file=sys.stderr, leave=False)

    def progress(report: IndexReport) -> None:
        bar.total = report.files_total
        bar.n = report.files_done
        bar.set_postfix(embedded=report.chunks_embedded, refresh=False)
        bar.refresh()

    try:
        return workspace.sync(progress)
    finally:
        bar.close()


def _summary(report: IndexReport) -> str:
    skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
    unchanged = report.chunks_total - report.chunks_embedded - report.chunks_reused
    return (
        f"{report.files_total} files ({report.files_changed} new or changed, {report.files_deleted} deleted), "
        f"{report.chunks_total} chunks ({report.chunks_embedded} embedded, {report.chunks_reused} reused"
        f"{f', {unchanged} unchanged' if unchanged > 0 else ''}), "
        f"skipped: {skipped or 'none'}; {report.seconds:.1f} s"
    )


def _display_path(workspace: Workspace, relpath: str) -> str:
    absolute = workspace.root / relpath
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def _hit_json(workspace: Workspace, hit: Hit) -> dict[str, Any]:
    from .chunk.chunker import preview

    chunk = hit.chunk
    return {
        "path": _display_path(workspace, chunk.path),
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "name": chunk.name,
        "kind": chunk.kind,
        "language": chunk.language,
        "score": round(hit.score, 4),
        "stage": hit.stage,
        "preview": preview(chunk.text),
        "also_at": [
            {"path": _display_path(workspace, twin.path), "start_line": twin.start_line, "name": twin.name}
            for twin in hit.twins
        ],
    }


def _print_result(workspace: Workspace, result: SearchResult, as_json: bool, extra: dict[str, Any]) -> None:
    from .chunk.chunker import preview

    if as_json:
        summary = {**result.stats.to_json(), **extra}
        print(
            json.dumps(
                {"hits": [_hit_json(workspace, hit) for hit in result.hits], "stats": summary}, indent=2
            )
        )
        return
    for hit in result.hits:
        chunk = hit.chunk
        print(f"{_display_path(workspace, chunk.path)}:{chunk.start_line}  {chunk.name}  {hit.score:.3f}")
        print(f"    {preview(chunk.text)}")
        if hit.twins:
            places = ", ".join(
                f"{_display_path(workspace, twin.path)}:{twin.start_line}" for twin in hit.twins
            )
            print(f"    also at {places}")
    stats = result.stats
    timing = f"retrieved {stats.retrieved} in {stats.retrieve_ms:.0f} ms"
    if stats.reranked:
        timing += f", reranked {stats.reranked} in {stats.rerank_ms:.0f} ms"
    note = f" ({stats.note})" if stats.note else ""
    print(f"{len(result.hits)} hits; {timing}{note}", file=sys.stderr)
    if stats.missing_name:
        print(
            f"codesieve: no definition is named {stats.missing_name}; the nearest code is above",
            file=sys.stderr,
        )
    if stats.query_cut:
        print(
            f"codesieve: the query is longer than the model reads: only its first {stats.query_cut} "
            "tokens (about as many words) were embedded",
            file=sys.stderr,
        )


def _prepare(workspace: Workspace, args: argparse.Namespace) -> dict[str, Any]:
    if args.no_update and not workspace.is_empty:
        return {}
    report = _sync(workspace, args.quiet)
    if report.files_changed or report.files_deleted:
        print(f"codesieve: indexed {_summary(report)}", file=sys.stderr)
    return {"indexed": {"changed": report.files_changed, "deleted": report.files_deleted}}


def command_index(args: argparse.Namespace) -> int:
    workspace = _open(args.folder, args)
    report = _sync(workspace, args.quiet)
    print(_summary(report))
    print(f"index: {workspace.folder}")
    for reason, examples in sorted(report.skipped_examples.items()):
        print(f"  {reason}: {', '.join(examples[:3])}{' ...' if len(examples) > 3 else ''}")
    return 0


def command_search(args: argparse.Namespace) -> int:
    from .workspace import Filters

    workspace = _open(args.folder, args)
    extra = _prepare(workspace, args)
    filters = Filters(languages=tuple(args.lang or ()), include=tuple(args.path or ()))
    result = workspace.search(
        args.query, limit=args.limit, rerank=not args.no_rerank, filters=filters, include_tests=args.tests
    )
    _print_result(workspace, result, args.json, extra)
    return 0


def _split_location(location: str) -> tuple[Path, int]:
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit() or int(line) < 1:
        raise WorkspaceError(f"Expected FILE:LINE (for example pkg/io.py:120), got {location!r}")
    return Path(path), int(line)


def _indexed_root_of(file: Path, config: Settings) -> Path:
    """The nearest folder above `file` that CodeSieve has indexed; never a folder indexed unasked."""
    from .locations import index_folder_for

    for folder in file.parents:
        if (index_folder_for(folder, config) / "index.db").is_file():
            return folder
    raise WorkspaceError(
        f"{file} is not inside a folder CodeSieve has indexed: index that folder first "
        "(`codesieve index FOLDER`), or name it with --root FOLDER."
    )


def command_similar(args: argparse.Namespace) -> int:
    file, line = _split_location(args.location)
    if not file.is_file():
        raise WorkspaceError(f"{file} is not a file")
    file = file.resolve()  # symlinks too: the file read must be inside the root
    root = args.root.resolve() if args.root else _indexed_root_of(file, _config(args))
    if not file.is_relative_to(root):  # checked before anything is opened or indexed
        raise WorkspaceError(f"{file} is not inside the workspace {root}")
    workspace = _open(root, args)
    extra = _prepare(workspace, args)
    result = workspace.similar_at(file, line, limit=args.limit, include_tests=args.tests)
    _print_result(workspace, result, args.json, extra)
    return 0


def _unindexed_status(root: Path, config: Settings) -> dict[str, Any] | None:
    """The status of a folder with no index yet, read without creating anything; None once it has one."""
    from .locations import index_folder_for, resolve_model_dir
    from .model.folder import ModelFolder

    if not root.is_dir():
        raise WorkspaceError(f"{root} is not a folder")
    folder = index_folder_for(root.resolve(), config)
    if (folder / "index.db").is_file():
        return None
    model = ModelFolder.load(resolve_model_dir(root.resolve(), config))
    return {
        "root": str(root.resolve()),
        "model": model.card.name,
        "indexPath": str(folder),
        "indexed": False,
        "ranker": model.ranker_path is not None,
        "files": 0,
        "chunks": 0,
        "modelPath": str(model.path),
        "indexBytes": 0,
    }


def command_status(args: argparse.Namespace) -> int:
    status = _unindexed_status(args.folder, _config(args))
    if status is None:
        workspace = _open(args.folder, args)
        status = {**workspace.status(check_staleness=True), "indexed": True}
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    ranker = "with ranker" if status["ranker"] else "retriever only"
    print(f"workspace: {status['root']}")
    print(f"model:     {status['model']} ({ranker}) at {status['modelPath']}")
    if not status["indexed"]:
        print(f"index:     none yet; `codesieve index {args.folder}` builds it in {status['indexPath']}")
        return 0
    print(
        f"index:     {status['indexPath']}: {status['files']} files, {status['chunks']} chunks, "
        f"{status['indexBytes'] / 1e6:.1f} MB"
    )
    stale = status["stale"]
    fresh = (
        "up to date"
        if not (stale["changed"] or stale["deleted"])
        else (f"{stale['changed']} files new or changed and {stale['deleted']} deleted since the last index")
    )
    print(f"staleness: {fresh}")
    print(f"search:    {status['vectorSearch']}")
    return 0


def command_serve(args: argparse.Namespace) -> int:
    from .lsp.server import serve
    from .lsp.tcp import TcpError

    try:
        return serve(tcp=args.tcp, config=_config(args), token_file=args.token_file)
    except TcpError as error:
        print(f"codesieve: {error}", file=sys.stderr)
        return 2


def command_mcp(args: argparse.Namespace) -> int:
    from .mcp_server import serve_mcp  # the MCP SDK loads for this command only

    return serve_mcp(args.folders, _config(args), verbose=args.verbose)


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings")
    group.add_argument(
        "--model",
        type=Path,
        help="model folder (default: the workspace's trained model, else the shipped default)",
    )
    group.add_argument(
        "--index-dir",
        type=Path,
        help="where indexes live (default: the user cache directory, or $CODESIEVE_INDEX_DIR)",
    )
    group.add_argument("--threads", type=int, help="ONNX Runtime threads (default: cores, at most 4)")
    group.add_argument(
        "--max-file-size", type=int, help="skip files larger than this many bytes (default 1000000)"
    )
    group.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="also ignore paths matching this gitignore-style glob (repeatable)",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


MAX_LIMIT = 1000  # hits a command prints at most


def _hit_count(text: str) -> int:
    """--limit's value: a whole number of hits from 1 to MAX_LIMIT."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of hits, got {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must lie between 1 and {MAX_LIMIT}, got {value}")
    return value


def _add_result_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print {hits: [...], stats: {...}} as JSON")
    parser.add_argument(
        "--limit", type=_hit_count, default=20, help=f"number of hits, 1 to {MAX_LIMIT} (default 20)"
    )
    parser.add_argument(
        "--no-update",
        action="store_true",
        help="search the index as it is, without first picking up changed files",
    )


def _add_tests_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tests",
        action="store_true",
        help="rank test code like any other (by default it comes after implementation of similar relevance)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The `codesieve` command line.

    Long on purpose: one block per subcommand, so the whole command line reads in one place.
    """
    parser = argparse.ArgumentParser(
        prog="codesieve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="index a folder (incremental after the first time)")
    index.add_argument("folder", type=Path, nargs="?", default=Path("."), help="folder to index (default .)")
    _add_settings_options(index)
    index.set_defaults(run=command_index)

    search = commands.add_parser("search", help="find code that does what a sentence says")
    search.add_argument("query", help='what the code does, e.g. "parse the config file"')
    search.add_argument(
        "folder", type=Path, nargs="?", default=Path("."), help="folder to search (default .)"
    )
    _add_result_options(search)
    search.add_argument("--no-rerank", action="store_true", help="skip the cross-encoder (faster)")
    search.add_argument(
        "--lang",
        action="append",
        metavar="LANGUAGE",
        help="only this language (repeatable): python, javascript, typescript, tsx, go, java, rust, ruby, "
        "c, cpp, csharp, php, kotlin, swift, scala, lua, shell (split into functions), sql (line windows)",
    )
    search.add_argument(
        "--path",
        action="append",
        metavar="GLOB",
        help="only paths matching this gitignore-style glob, e.g. 'src/**' (repeatable)",
    )
    _add_tests_option(search)
    search.add_argument("--retrieve-depth", type=int, help="candidates from the retriever (default 100)")
    search.add_argument("--rerank-depth", type=int, help="candidates the ranker reorders (default 10)")
    _add_settings_options(search)
    search.set_defaults(run=command_search)

    similar = commands.add_parser("similar", help="find code similar to the function at FILE:LINE")
    similar.add_argument("location", metavar="FILE:LINE", help="a line inside a function, method or class")
    similar.add_argument(
        "--root",
        type=Path,
        help="workspace folder, indexed first if it has no index yet "
        "(default: the nearest folder above FILE that CodeSieve has indexed)",
    )
    _add_result_options(similar)
    _add_tests_option(similar)
    _add_settings_options(similar)
    similar.set_defaults(run=command_similar)

    status = commands.add_parser("status", help="model, index size and location, staleness")
    status.add_argument(
        "folder", type=Path, nargs="?", default=Path("."), help="workspace folder (default .)"
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _add_settings_options(status)
    status.set_defaults(run=command_status)

    serve = commands.add_parser("serve", help="run the language server (stdio)")
    serve.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="listen on TCP instead of stdio, for debugging. Risk: every process on this machine can "
        "connect to a TCP port, and a client can read the code of any folder; so only loopback hosts are "
        "allowed (HOST defaults to 127.0.0.1) and the client must send the token of --token-file as "
        "initializationOptions.token",
    )
    serve.add_argument(
        "--token-file",
        type=Path,
        help="with --tcp: a file only you can read holding the token (default: tcp-token in the user "
        "cache folder; created with a random token when missing)",
    )
    _add_settings_options(serve)
    serve.set_defaults(run=command_serve)

    mcp = commands.add_parser("mcp", help="serve search to coding agents over MCP (stdio)")
    mcp.add_argument(
        "folders",
        type=Path,
        nargs="*",
        metavar="FOLDER",
        help="folders to search (default: the client's MCP roots, else the working directory)",
    )
    mcp.add_argument("--verbose", action="store_true", help="log what the server does on stderr")
    _add_settings_options(mcp)
    mcp.set_defaults(run=command_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Paths are os.fsdecode()d, so a name that is not UTF-8 holds lone surrogates (surrogateescape).
    # Plain output prints such a name as its raw bytes, as find and grep do, instead of failing on
    # it; --json output stays ASCII: json.dumps writes them as \udcXX escapes, which json.loads and
    # os.fsencode turn back into the name's bytes.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    if args.run is not command_serve:
        _warnings_to_stderr()
    try:
        return int(args.run(args))
    except (WorkspaceError, ModelError, SourceError) as error:
        print(f"codesieve: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("codesieve: interrupted; the index keeps everything committed so far", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `codesieve search ... | head`: the reader left, as it may; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
