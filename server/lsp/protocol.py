"""The wire format of CodeSieve's LSP extensions: parsing their params, shaping their results.

Everything here is pure (no I/O, no server state), so the handlers in `server.py` and the
workspace folders' parts (`folder_set.py`, `folder_search.py`) share one definition of what a hit, a status and a find request look
like on the wire. docs/PROTOCOL.md describes the same shapes with examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import cattrs
from lsprotocol import converters, types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace import PositionCodec

from ..chunk.chunker import preview
from ..search.cascade import Hit
from ..workspace import Filters

FIND = "codeSearch/find"
FIND_SIMILAR = "codeSearch/findSimilar"
STATUS = "codeSearch/status"
INDEX_STATUS = "codeSearch/indexStatus"  # notification, server -> client
COMMAND_FIND = "codeSearch.find"
COMMAND_FIND_SIMILAR = "codeSearch.findSimilar"
COMMAND_REINDEX = "codeSearch.reindex"
CODE_ACTION_KIND = "refactor.codeSearch"  # a refactor sub-kind: VS Code's light bulb and Neovim both list it
CODE_ACTION_TITLE = "Find similar code"

REQUEST_FAILED = -32803  # LSP's RequestFailed: the request was valid but the server could not answer it

# Chunk kinds -> LSP SymbolKind. A line window is a slice of a file, not a symbol.
SYMBOL_KINDS = {
    "function": types.SymbolKind.Function,
    "method": types.SymbolKind.Method,
    "class": types.SymbolKind.Class,
    "window": types.SymbolKind.File,
}
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
# Caps on what a request may carry. The encoders read only a query's first max_query_tokens and
# a snippet's first max_code_tokens (64 and 256 by default), so these bound work and log lines,
# never what a search can see.
MAX_QUERY_CHARS = 10_000
MAX_CODE_CHARS = 1_000_000  # the default max_file_size: a snippet as long as the largest indexed file
MAX_PATTERNS = 100  # include/exclude globs, or languages, per request
MAX_PATTERN_CHARS = 1_000  # per glob: pathspec's compile time grows with the square of a glob's length
SHOWN_CHARS = 80  # of a bad value, quoted back in an error message


def request_failed(message: str) -> JsonRpcException:
    """An LSP error (RequestFailed) whose message a person can act on."""
    return JsonRpcException(message=message, code=REQUEST_FAILED)


def invalid_params(message: str) -> JsonRpcInvalidParams:
    """An InvalidParams error with a message that names the bad parameter."""
    return JsonRpcInvalidParams(message=message)


def clipped(text: str, limit: int) -> str:
    """`text`, or when it is longer than `limit` characters its start and its length."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def shown(value: Any) -> str:
    """A bad value as an error message quotes it: its repr, cut to SHOWN_CHARS."""
    text = repr(value)
    return clipped(text, SHOWN_CHARS)


def raw_params_converter() -> cattrs.Converter:
    """pygls' converter, except that params of custom methods stay plain JSON (dicts, lists)."""
    converter = converters.get_converter()
    for message_type in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(message_type, lambda obj, cls: cls(**obj))
    return converter


# params ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FindRequest:
    query: str
    limit: int
    rerank: bool
    filters: Filters
    include_tests: bool = False


def _mapping(params: Any, method: str) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise invalid_params(f"{method}: params must be an object, got {type(params).__name__}")
    return params


def _strings(params: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = params.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_params(f"{key} must be a list of strings, got {shown(value)}")
    if len(value) > MAX_PATTERNS or any(len(item) > MAX_PATTERN_CHARS for item in value):
        raise invalid_params(
            f"{key} may hold at most {MAX_PATTERNS} strings of at most {MAX_PATTERN_CHARS} characters each"
        )
    return tuple(value)


def _text(params: Mapping[str, Any], key: str, max_chars: int, needed: str) -> str:
    """A non-blank string parameter of at most `max_chars` characters; `needed` says what it is for."""
    text = params.get(key)
    if not isinstance(text, str) or not text.strip():
        raise invalid_params(needed)
    if len(text) > max_chars:
        raise invalid_params(
            f"`{key}` has {len(text)} characters; the limit is {max_chars} (the model reads only "
            "its start anyway): shorten it."
        )
    return text


def _limit(params: Mapping[str, Any]) -> int:
    limit = params.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT:
        raise invalid_params(f"limit must be an integer from 1 to {MAX_LIMIT}, got {shown(limit)}")
    return limit


def filters_of(params: Mapping[str, Any]) -> Filters:
    """The include/exclude/languages filters of a find or findSimilar request."""
    return Filters(
        languages=_strings(params, "languages"),
        include=_strings(params, "include"),
        exclude=_strings(params, "exclude"),
    )


def parse_find(params: Any) -> FindRequest:
    """Validate `codeSearch/find` params."""
    params = _mapping(params, FIND)
    needed = "codeSearch/find needs a non-empty `query` string: what the code should do."
    query = _text(params, "query", MAX_QUERY_CHARS, needed)
    rerank = params.get("rerank", True)
    if not isinstance(rerank, bool):
        raise invalid_params(f"rerank must be true or false, got {shown(rerank)}")
    return FindRequest(query, _limit(params), rerank, filters_of(params), _include_tests(params))


def _include_tests(params: Mapping[str, Any]) -> bool:
    include_tests = params.get("includeTests", False)
    if not isinstance(include_tests, bool):
        raise invalid_params(f"includeTests must be true or false, got {shown(include_tests)}")
    return include_tests


@dataclass(frozen=True)
class SimilarRequest:
    limit: int
    filters: Filters
    code: str | None = None  # either code ...
    uri: str | None = None  # ... or a document position
    line: int = 0  # 0-based, as LSP positions are
    include_tests: bool = False


def parse_find_similar(params: Any) -> SimilarRequest:
    """Validate `codeSearch/findSimilar` params: {textDocument, position} or {code, language?}."""
    params = _mapping(params, FIND_SIMILAR)
    limit, filters, include_tests = _limit(params), filters_of(params), _include_tests(params)
    if "code" in params:
        needed = "codeSearch/findSimilar: `code` must be a non-empty string."
        code = _text(params, "code", MAX_CODE_CHARS, needed)
        language = params.get("language")
        if language is not None:
            if not isinstance(language, str) or len(language) > MAX_PATTERN_CHARS:
                raise invalid_params(f"language must be a language id, got {shown(language)}")
            filters = Filters((*filters.languages, language), filters.include, filters.exclude)
        return SimilarRequest(limit, filters, code=code, include_tests=include_tests)
    document, position = params.get("textDocument"), params.get("position")
    if not isinstance(document, Mapping) or not isinstance(document.get("uri"), str):
        raise invalid_params(
            "codeSearch/findSimilar needs either `code` or `textDocument: {uri}` and `position`."
        )
    return SimilarRequest(
        limit, filters, uri=document["uri"], line=line_of(position), include_tests=include_tests
    )


def line_of(position: Any) -> int:
    """The 0-based line of an LSP Position given as JSON or as an lsprotocol Position.

    `character` may be left out (only the line matters here), but when given it must be an
    integer >= 0 too. A line past the end of the document is valid here and answered later.
    """
    if isinstance(position, types.Position):
        return position.line
    if isinstance(position, Mapping):
        line, character = position.get("line"), position.get("character", 0)
        if _natural(line) and _natural(character):
            return line
    raise invalid_params(f"position must be {{line, character}} with integers >= 0, got {shown(position)}")


def _natural(number: Any) -> TypeGuard[int]:
    return isinstance(number, int) and not isinstance(number, bool) and number >= 0


def local_path(uri: str) -> Path | None:
    """The file system path of a file:// URI; None for any other scheme (untitled:, https:, ...)."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(path) if path else None


def path_of(uri: str) -> Path:
    """The file system path of a file:// URI; InvalidParams for any other."""
    path = local_path(uri)
    if path is None:
        raise invalid_params(f"{shown(uri)} is not a file:// URI; CodeSieve searches files on disk.")
    return path


def uri_of(path: Path) -> str:
    """The file:// URI of a path."""
    return str(from_fs_path(str(path)))


# results --------------------------------------------------------------------------------------
def hit_json(root: Path, hit: Hit, codec: PositionCodec, last_line: str | None = None) -> dict[str, Any]:
    """One hit on the wire; `last_line` is the chunk's last line as the editor has it, if open."""
    chunk = hit.chunk
    if last_line is None:
        last_line = chunk.text.split("\n")[-1]
    end_character = codec.client_num_units(last_line.rstrip("\r\n"))
    return {
        "uri": uri_of(root / chunk.path),
        "range": {
            "start": {"line": chunk.start_line - 1, "character": 0},
            "end": {"line": chunk.end_line - 1, "character": end_character},
        },
        "name": chunk.name,
        "kind": int(SYMBOL_KINDS.get(chunk.kind, types.SymbolKind.File)),
        "chunkKind": chunk.kind,
        "language": chunk.language,
        "score": round(hit.score, 6),
        "stage": hit.stage,
        "preview": preview(chunk.text),
        # near-copies ranked below it (its sync/async twin, a copied function): one place for them all
        "alsoAt": [
            {"uri": uri_of(root / twin.path), "line": twin.start_line - 1, "name": twin.name}
            for twin in hit.twins
        ],
    }
