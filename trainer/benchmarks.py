"""Loading the code-search evaluation sets (format and protocol: docs/TRAINING.md, "Evaluation protocol").

A benchmark is a list of queries, each with the id of its one correct code, and the pool of codes
every query is ranked against: CoSQA ranks against all 6,267 codes for both dev and test; CSN Ruby
ranks against the codebase rows whose "split" equals the query split. The find-similar set
("find_similar/test", built by bench/find_similar.py into `find_similar_folder()`) has code as its
queries: each is embedded as code, as "Find similar code" embeds the function at the cursor.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

BENCHMARKS_ENV = "CODESIEVE_BENCHMARKS"
FIND_SIMILAR_ENV = "CODESIEVE_FIND_SIMILAR"
FIND_SIMILAR = "find_similar"
# The find-similar set's rules (trainer/find_similar.py): its build folder is named for it.
FIND_SIMILAR_VERSION = 2
QueryKind = Literal["text", "code"]  # text: a search query; code: a function, embedded as code

# name -> (folder, {query split: (query file, codebase "split" filter or None for the whole pool)})
_LAYOUT: dict[str, tuple[str, dict[str, tuple[str, str | None]]]] = {
    "cosqa": ("cosqa", {"dev": ("dev_queries.jsonl", None), "test": ("test_queries.jsonl", None)}),
    "csn_ruby": (
        "csn_ruby",
        {"valid": ("valid_queries.jsonl", "valid"), "test": ("test_queries.jsonl", "test")},
    ),
}


@dataclass(frozen=True)
class Query:
    """A search query and the id of its one correct code in the pool."""

    id: str
    text: str
    code_id: int


@dataclass(frozen=True)
class CodeRow:
    """One code in a benchmark's pool."""

    id: int
    code: str
    language: str
    path: str = (
        ""  # within its repository: the row's `path`, else from its `url` (CSN: .../blob/<commit>/<path>)
    )
    name: str = ""  # the definition's qualified name, when the row gives it (`name`: the find-similar pool)


@dataclass(frozen=True)
class Benchmark:
    """Queries and the pool of codes they are ranked against; every gold code_id is in the pool."""

    queries: list[Query]
    codebase: list[CodeRow]
    name: str = ""
    query_kind: QueryKind = "text"

    def gold_positions(self) -> npt.NDArray[np.int64]:
        """Return, for each query, the position of its correct code in `codebase`, shape (Q,)."""
        position = {row.id: index for index, row in enumerate(self.codebase)}
        return np.array([position[query.code_id] for query in self.queries], dtype=np.int64)


def find_benchmarks_root(start: Path | None = None) -> Path:
    """Return the benchmarks folder: $CODESIEVE_BENCHMARKS, else `shared/benchmarks` above cwd or the repo.

    Walks up from `start` (default: the current directory) and then from this file's repository,
    checking `<ancestor>/shared/benchmarks` at each level (so a `shared/benchmarks` folder beside
    the checkout is found too). Raises FileNotFoundError naming what was tried.
    """
    from_env = os.environ.get(BENCHMARKS_ENV)
    if from_env:
        root = Path(from_env).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"${BENCHMARKS_ENV} is set to {root}, which is not a folder")
        return root
    starts = [(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for origin in starts:
        for ancestor in (origin, *origin.parents):
            candidate = ancestor / "shared" / "benchmarks"
            if candidate.is_dir():
                return candidate
    raise FileNotFoundError(
        f"no shared/benchmarks folder found above {starts[0]} or {starts[1]}; "
        f"set ${BENCHMARKS_ENV} to the folder holding cosqa/ and csn_ruby/"
    )


def find_similar_folder() -> Path:
    """Where the find-similar set is built: $CODESIEVE_FIND_SIMILAR, else
    ~/.cache/codesieve-bench/find-similar-v<FIND_SIMILAR_VERSION> (a set built by other rules is elsewhere)."""
    from_env = os.environ.get(FIND_SIMILAR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".cache" / "codesieve-bench" / f"find-similar-v{FIND_SIMILAR_VERSION}"


def load_find_similar(folder: Path | None = None) -> Benchmark:
    """The find-similar set (code queries) from its build folder; says how to build it when it is missing."""
    folder = folder or find_similar_folder()
    if not (folder / "queries.jsonl").is_file():
        raise FileNotFoundError(
            f"the find-similar set is not built in {folder}; build it with `python bench/find_similar.py --build`"
        )
    benchmark = load_jsonl_benchmark(folder / "queries.jsonl", folder / "codebase.jsonl")
    return Benchmark(benchmark.queries, benchmark.codebase, name=f"{FIND_SIMILAR}/test", query_kind="code")


def load_benchmark(name: str, split: str, root: Path | None = None) -> Benchmark:
    """Load benchmark `name` ("cosqa" | "csn_ruby" | "find_similar") at `split` ("dev" | "valid" | "test")."""
    if name == FIND_SIMILAR:
        if split != "test":
            raise ValueError(f"benchmark {name!r} has only the split 'test'")
        return load_find_similar()
    if name not in _LAYOUT:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted([*_LAYOUT, FIND_SIMILAR])}")
    folder, splits = _LAYOUT[name]
    if split not in splits:
        raise ValueError(f"benchmark {name!r} has no split {split!r}; choose one of {sorted(splits)}")
    query_file, pool_split = splits[split]
    base = (root if root is not None else find_benchmarks_root()) / folder
    benchmark = load_jsonl_benchmark(base / query_file, base / "codebase.jsonl", pool_split=pool_split)
    return Benchmark(queries=benchmark.queries, codebase=benchmark.codebase, name=f"{name}/{split}")


def _blob_path(url: object) -> str:
    """The file path in a repository blob URL (`https://github.com/o/r/blob/<commit>/lib/x.rb#L3`), else ""."""
    match = re.match(r"https?://[^/]+/[^/]+/[^/]+/blob/[^/]+/([^#?]+)", url) if isinstance(url, str) else None
    return match.group(1) if match else ""


def load_jsonl_benchmark(queries_path: Path, codebase_path: Path, pool_split: str | None = None) -> Benchmark:
    """Load a benchmark from a query file and a codebase file in the shared/benchmarks JSONL format.

    With `pool_split`, keep only codebase rows whose "split" equals it; rows with no "split" are
    always kept. Raises ValueError naming the file and line on a malformed row, a duplicate code id,
    or a query whose code_id is not in the (filtered) pool.
    """
    codebase: list[CodeRow] = []
    seen: set[int] = set()
    for line_number, row in _read_jsonl(codebase_path):
        if pool_split is not None and "split" in row and row["split"] != pool_split:
            continue
        code = CodeRow(
            id=_field(row, "id", int, codebase_path, line_number),
            code=_field(row, "code", str, codebase_path, line_number),
            language=str(row.get("language", "")),
            path=str(row["path"]) if isinstance(row.get("path"), str) else _blob_path(row.get("url")),
            name=str(row["name"]) if isinstance(row.get("name"), str) else "",
        )
        if code.id in seen:
            raise ValueError(f"{codebase_path}:{line_number}: duplicate code id {code.id}")
        seen.add(code.id)
        codebase.append(code)
    queries: list[Query] = []
    for line_number, row in _read_jsonl(queries_path):
        query = Query(
            id=str(_field(row, "id", (str, int), queries_path, line_number)),
            text=_field(row, "query", str, queries_path, line_number),
            code_id=_field(row, "code_id", int, queries_path, line_number),
        )
        if query.code_id not in seen:
            where = f" with split {pool_split!r}" if pool_split is not None else ""
            raise ValueError(
                f"{queries_path}:{line_number}: code_id {query.code_id} of query {query.id!r} "
                f"is not in the pool {codebase_path}{where}"
            )
        queries.append(query)
    return Benchmark(queries=queries, codebase=codebase, name=queries_path.stem)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (1-based line number, object) for each non-blank line of a JSONL file."""
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_number}: expected a JSON object, got {type(row).__name__}")
            yield line_number, row


def _field(row: dict[str, Any], key: str, kind: type | Sequence[type], path: Path, line_number: int) -> Any:
    """Return row[key], raising ValueError naming the file and line if it is missing or of the wrong type."""
    kinds = tuple(kind) if isinstance(kind, Sequence) else (kind,)
    if key not in row:
        raise ValueError(f"{path}:{line_number}: missing field {key!r}")
    value = row[key]
    # bool is an int subclass; a true/false id is a data error, not an id.
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{path}:{line_number}: field {key!r} should be {names}, got {value!r:.80}")
    return value
