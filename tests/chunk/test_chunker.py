"""Chunk boundaries, names, doc spans and fallbacks of the tree-sitter chunker, per language."""

from __future__ import annotations

import hashlib
import random

import pytest
from helpers import TESTS, lines_of
from hypothesis import given, settings
from hypothesis import strategies as st

from codesieve.server.chunk.chunker import MAX_CHUNK_LINES, Chunk, chunk_at_line, chunk_source
from codesieve.server.chunk.language_specs import definition_query
from codesieve.server.languages import language_for_path, parser_for

DATA = TESTS / "data" / "chunking"  # also the workspace of the engine, LSP and editor tests
# Samples of the languages parsed later, kept apart so that those workspaces stay as they were.
MORE_DATA = TESTS / "data" / "languages"
GRAMMAR_LANGUAGES = (
    *("python", "javascript", "typescript", "tsx", "go", "java", "rust", "ruby"),
    *("c", "cpp", "csharp", "php", "kotlin", "swift", "scala", "lua", "shell"),
)

# (kind, name, start_line, end_line) of every chunk, in output order.
EXPECTED_CHUNKS: dict[str, list[tuple[str, str, int, int]]] = {
    "sample.py": [
        ("class", "Config", 9, 30),
        ("method", "Config.load", 18, 27),
        ("function", "Config.load.pick", 24, 25),
        ("method", "Config.url", 29, 30),
        ("function", "retry", 34, 46),
        ("function", "retry.decorate", 35, 44),
        ("function", "retry.decorate.wrapper", 36, 42),
        ("function", "fetch", 49, 51),
    ],
    "broken.py": [
        ("function", "good", 1, 2),
        ("function", "bad", 5, 6),
        ("class", "Half", 9, 11),
        ("method", "Half.method", 10, 11),
        ("function", "also_good", 14, 16),
    ],
    "sample.js": [
        ("function", "fetchUser", 3, 10),
        ("class", "Cache", 12, 28),
        ("method", "Cache.constructor", 16, 18),
        ("method", "Cache.get", 20, 23),
        ("method", "Cache.clear", 25, 27),
        ("function", "outer", 30, 35),
        ("function", "outer.inner", 31, 33),
        ("method", "helpers.double", 38, 40),
        ("method", "helpers.triple", 41, 43),
        ("function", "handler", 46, 48),
    ],
    "sample.ts": [
        ("class", "User", 3, 7),
        ("class", "UserService", 9, 24),
        ("method", "UserService.find", 13, 19),
        ("method", "UserService.save", 21, 23),
        ("class", "Role", 26, 29),
        ("function", "Util.slug", 32, 34),
        ("function", "greet", 37, 39),
    ],
    "sample.tsx": [
        ("function", "Counter", 5, 10),
        ("function", "Counter.onClick", 8, 8),
        ("function", "Badge", 12, 12),
        ("class", "Panel", 14, 18),
        ("method", "Panel.render", 15, 17),
    ],
    "sample.go": [
        ("class", "Server", 5, 9),
        ("class", "Handler", 12, 15),
        ("function", "NewServer", 19, 22),
        ("method", "Server.Handle", 24, 27),
        ("method", "Port.String", 29, 31),
    ],
    "Sample.java": [
        ("class", "Sample", 5, 37),
        ("method", "Sample.Sample", 12, 15),
        ("method", "Sample.deposit", 17, 21),
        ("class", "Sample.Listener", 23, 25),
        ("method", "Sample.Listener.changed", 24, 24),
        ("class", "Sample.Kind", 27, 34),
        ("method", "Sample.Kind.isSavings", 31, 33),
        ("class", "Sample.Entry", 36, 36),
    ],
    "sample.rs": [
        ("class", "Stack", 5, 10),
        ("method", "Stack.push", 13, 16),
        ("method", "Stack.len", 18, 21),
        ("class", "Shape", 24, 31),
        ("method", "Shape.double", 27, 30),
        ("method", "Stack.fmt", 34, 36),
        ("class", "Color", 39, 42),
        ("function", "util.clamp", 45, 47),
    ],
    "sample.rb": [
        ("class", "Settings", 3, 29),
        ("class", "Settings.Entry", 6, 22),
        ("method", "Settings.Entry.initialize", 10, 12),
        ("method", "Settings.Entry.secret?", 14, 17),
        ("method", "Settings.Entry.parse", 19, 21),
        ("method", "Settings.load", 25, 27),
        ("function", "main", 31, 33),
    ],
    "sample.c": [("function", "add", 3, 6), ("function", "main", 8, 11)],
    "sample.sql": [("window", "sample.sql:1-8", 1, 8)],
    "sample.cpp": [
        ("class", "CLI.detail.Validator", 9, 24),
        ("method", "CLI.detail.Validator.Validator", 13, 13),
        ("method", "CLI.detail.Validator.operator()", 15, 16),
        ("class", "CLI.detail.Validator.Result", 18, 20),
        ("function", "CLI.Option.as", 29, 32),
        ("function", "CLI.detail.Validator.describe", 34, 34),
        ("function", "a.b.twice", 39, 39),
    ],
    "Sample.cs": [
        ("class", "Python.Runtime.Converter", 5, 22),
        ("method", "Python.Runtime.Converter.ToManaged", 11, 17),
        ("function", "Python.Runtime.Converter.ToManaged.Local", 14, 14),
        ("class", "Python.Runtime.Converter.Pending", 19, 19),
        ("method", "Python.Runtime.Converter.~Converter", 21, 21),
        ("class", "Python.Runtime.IPyDisposable", 24, 24),
        ("class", "Python.Runtime.Mode", 26, 26),
        ("class", "Python.Runtime.Nested.Space.Point", 30, 30),
    ],
    "sample.php": [
        ("class", "Monolog.Handler.StreamHandler", 7, 29),
        ("method", "Monolog.Handler.StreamHandler.__construct", 15, 21),
        ("method", "Monolog.Handler.StreamHandler.write", 23, 28),
        ("class", "Monolog.Handler.FormattableHandlerInterface", 31, 34),
        ("method", "Monolog.Handler.FormattableHandlerInterface.getFormatter", 33, 33),
        ("class", "Monolog.Handler.ProcessableHandlerTrait", 36, 42),
        ("method", "Monolog.Handler.ProcessableHandlerTrait.pushProcessor", 38, 41),
        ("function", "Monolog.Handler.handler_name", 44, 47),
    ],
    "Sample.kt": [
        ("class", "ModuleRegistry", 5, 25),
        ("method", "ModuleRegistry.register", 11, 14),
        ("method", "ModuleRegistry.hasModule", 16, 16),
        ("method", "ModuleRegistry.empty", 19, 19),
        ("class", "ModuleRegistry.Cursor", 22, 24),
        ("method", "ModuleRegistry.Cursor.next", 23, 23),
        ("class", "Module", 27, 29),
        ("class", "Registry", 31, 33),
        ("method", "Registry.all", 32, 32),
        ("function", "toMap", 35, 38),
        ("function", "toMap.convert", 36, 36),
    ],
    "Sample.swift": [
        ("class", "CAPBridgeProtocol", 3, 6),
        ("method", "CAPBridgeProtocol.saveCall", 5, 5),
        ("class", "CAPPluginCall", 8, 25),
        ("method", "CAPPluginCall.init", 12, 14),
        ("method", "CAPPluginCall.resolve", 16, 19),
        ("class", "CAPPluginCall.Options", 21, 24),
        ("method", "CAPPluginCall.Options.merged", 23, 23),
        ("class", "CAPPluginCall", 27, 31),
        ("method", "CAPPluginCall.getString", 28, 30),
        ("class", "Kind", 33, 36),
        ("method", "Kind.label", 35, 35),
        ("function", "makeCall", 38, 40),
    ],
    "Sample.scala": [
        ("class", "Validated", 3, 12),
        ("method", "Validated.isValid", 5, 5),
        ("method", "Validated.fold", 7, 11),
        ("class", "Validated", 14, 21),
        ("method", "Validated.valid", 15, 15),
        ("method", "Validated.helper", 17, 20),
        ("function", "Validated.helper.inner", 18, 18),
        ("class", "Semigroup", 23, 25),
        ("method", "Semigroup.combine", 24, 24),
        ("class", "Valid", 27, 29),
        ("method", "Valid.isValid", 28, 28),
        ("function", "topLevel", 31, 31),
        ("class", "syntax", 33, 36),
        ("method", "syntax.validNel", 35, 35),
    ],
    "sample.lua": [
        ("method", "List.__tostring", 4, 4),
        ("function", "List.new", 7, 11),
        ("function", "List.append", 13, 22),
        ("function", "List.append.check", 15, 17),
        ("function", "private_helper", 24, 26),
        ("function", "List.len", 28, 31),
    ],
    "sample.sh": [
        ("function", "check", 4, 8),
        ("function", "install", 10, 13),
        ("function", "install.inst_hook", 11, 11),
        ("function", "depends", 15, 17),
    ],
}

# name -> exact text of its doc span; chunks not listed have none.
EXPECTED_DOCS: dict[str, dict[str, str]] = {
    "sample.py": {
        "Config": '"""Runtime settings — port and host."""',
        "Config.load": '"""Read a JSON file into a Config."""',
        "fetch": "'Fetch a URL; naïve and slow.'",
    },
    "broken.py": {"also_good": '"""Still found."""'},
    "sample.js": {
        "fetchUser": "/**\n * Fetch one user by id.\n * @param {string} id\n */",
        "Cache": "// Caches results in memory.",
        "Cache.get": "/** Look a key up. */",
    },
    "sample.ts": {
        "User": "/** A user as stored. */",
        "UserService.find": "/**\n   * Find a user by id.\n   */",
    },
    "sample.tsx": {"Counter": "/** A button that counts clicks. */"},
    "sample.go": {
        "Server": "// Server answers HTTP requests.\n// It is safe for concurrent use.",
        "Handler": "// Handler handles one route.",
        "NewServer": "// NewServer makes a Server.",
        "Server.Handle": "// Handle answers one request.",
    },
    "Sample.java": {
        "Sample": "/**\n * A bank account.\n */",
        "Sample.Sample": "/** Make an empty account. */",
        "Sample.deposit": "// Adds money.",
    },
    "sample.rs": {
        "Stack": "/// A stack of values.\n/// Grows without bound.",
        "Stack.push": "/// Push a value.",
        "Shape.double": "// Twice the area.",
    },
    "sample.rb": {
        "Settings": "# Parses and stores settings.\n# Loaded once at boot.",
        "Settings.Entry": "# One setting.",
        "Settings.Entry.secret?": "# Whether the key is secret.",
    },
    "sample.c": {"add": "/* Add two numbers. */"},
    "sample.sql": {},
    "sample.cpp": {
        "CLI.detail.Validator": "/// A validator checks one value.",
        "CLI.detail.Validator.operator()": "/// Run the check; empty when the value is fine.",
    },
    "Sample.cs": {
        "Python.Runtime.Converter": "/// <summary>\n/// Converts between Python and CLR objects.\n/// </summary>",
        "Python.Runtime.Converter.ToManaged": "/// <summary>Return a managed object for a Python one.</summary>",
    },
    "sample.php": {
        "Monolog.Handler.StreamHandler": "/**\n * Stores to any stream resource.\n */",
        "Monolog.Handler.StreamHandler.__construct": "/**\n     * @param resource|string $stream\n     */",
        "Monolog.Handler.StreamHandler.write": "// Writes one record.",
    },
    "Sample.kt": {
        "ModuleRegistry": "/**\n * Holds the modules of an app.\n */",
        "ModuleRegistry.register": "// Register one module.",
    },
    "Sample.swift": {
        "CAPBridgeProtocol": "/// Bridges plugin calls to the web view.",
        "CAPPluginCall": "/// One call from JavaScript.",
        "CAPPluginCall.resolve": "// Resolve with data.",
    },
    "Sample.scala": {
        "Validated": "/** A validated value: valid or invalid. */",
        "Validated.fold": "/** Fold both sides. */",
        "syntax": "/** Syntax for any value. */",
    },
    "sample.lua": {
        "List.new": "--- Create a list from a table.\n-- @param t a table",
        "List.append": "-- Append one value.",
        "List.len": "-- The number of values.",
    },
    "sample.sh": {
        "check": "# Is the module needed on this host?",
    },
}

LANGUAGE_OF_SAMPLE = {
    "sample.py": "python",
    "broken.py": "python",
    "sample.js": "javascript",
    "sample.ts": "typescript",
    "sample.tsx": "tsx",
    "sample.go": "go",
    "Sample.java": "java",
    "sample.rs": "rust",
    "sample.rb": "ruby",
    "sample.c": "c",
    "sample.sql": "sql",
    "sample.cpp": "cpp",
    "Sample.cs": "csharp",
    "sample.php": "php",
    "Sample.kt": "kotlin",
    "Sample.swift": "swift",
    "Sample.scala": "scala",
    "sample.lua": "lua",
    "sample.sh": "shell",
}


def sample_text(file_name: str) -> str:
    """One sample file's text."""
    folder = DATA if (DATA / file_name).exists() else MORE_DATA
    return (folder / file_name).read_text(encoding="utf-8")


def sample_chunks(file_name: str) -> list[Chunk]:
    """Chunk one sample file under its own name."""
    return chunk_source(f"samples/{file_name}", sample_text(file_name))


def by_name(chunks: list[Chunk]) -> dict[str, Chunk]:
    """Index chunks by name."""
    return {chunk.name: chunk for chunk in chunks}


def assert_well_formed(chunks: list[Chunk], text: str) -> None:
    """Every chunk lies within the file, holds exactly its lines, and is hashed and ordered."""
    lines = lines_of(text)
    for chunk in chunks:
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])
        assert chunk.content_hash == hashlib.sha1(chunk.text.encode("utf-8", "surrogatepass")).hexdigest()
        if chunk.doc_span is not None:
            start, end = chunk.doc_span
            assert 0 <= start < end <= len(chunk.text)
    order = [(chunk.start_line, -chunk.end_line) for chunk in chunks]
    assert order == sorted(order)


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("stubs/x.pyi", "python"),
        ("web/app.jsx", "javascript"),
        ("lib/x.mjs", "javascript"),
        ("lib/x.cjs", "javascript"),
        ("src/x.ts", "typescript"),
        ("src/x.d.ts", "typescript"),
        ("src/x.mts", "typescript"),
        ("src/App.tsx", "tsx"),
        ("main.go", "go"),
        ("A.java", "java"),
        ("lib.rs", "rust"),
        ("x.rb", "ruby"),
        ("tasks/db.rake", "ruby"),
        ("Rakefile", "ruby"),
        ("app/Gemfile", "ruby"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cpp", "cpp"),
        ("x.hpp", "cpp"),
        ("x.cs", "csharp"),
        ("x.kt", "kotlin"),
        ("x.swift", "swift"),
        ("x.php", "php"),
        ("x.scala", "scala"),
        ("x.lua", "lua"),
        ("run.sh", "shell"),
        ("x.bash", "shell"),
        ("q.sql", "sql"),
        ("README.md", None),
        ("package.json", None),
        ("config.yaml", None),
        ("Cargo.lock", None),
        ("Makefile", None),
        ("noext", None),
    ],
)
def test_language_for_path(path: str, language: str | None) -> None:
    assert language_for_path(path) == language


def test_parsers_exist_only_for_grammar_languages() -> None:
    for language in GRAMMAR_LANGUAGES:
        assert parser_for(language) is not None
        assert parser_for(language) is parser_for(language)
        assert definition_query(language) is not None
    for language in ("sql", "nope"):
        assert parser_for(language) is None


@pytest.mark.parametrize("file_name", sorted(EXPECTED_CHUNKS))
def test_chunk_boundaries_names_and_kinds(file_name: str) -> None:
    chunks = sample_chunks(file_name)
    got = [(chunk.kind, chunk.name, chunk.start_line, chunk.end_line) for chunk in chunks]
    assert got == EXPECTED_CHUNKS[file_name]
    assert {chunk.language for chunk in chunks} == {LANGUAGE_OF_SAMPLE[file_name]}
    assert_well_formed(chunks, sample_text(file_name))


@pytest.mark.parametrize("file_name", sorted(EXPECTED_DOCS))
def test_doc_span_slices_out_the_doc(file_name: str) -> None:
    docs = {
        chunk.name: chunk.text[chunk.doc_span[0] : chunk.doc_span[1]]
        for chunk in sample_chunks(file_name)
        if chunk.doc_span is not None
    }
    assert docs == EXPECTED_DOCS[file_name]


def test_decorators_attributes_and_leading_comments_are_included() -> None:
    python = by_name(sample_chunks("sample.py"))
    assert python["Config"].text.startswith(
        "# Settings read from disk.\n# Unknown keys are ignored.\n@dataclass"
    )
    assert python["Config.load"].text.startswith("    @classmethod\n    def load(")
    assert "a dedented comment" not in python["Config"].text
    typescript = by_name(sample_chunks("sample.ts"))
    assert typescript["UserService"].text.startswith("@Injectable()\nexport class UserService {")
    assert "  @Memoize()\n  async find(" in typescript["UserService.find"].text
    rust = by_name(sample_chunks("sample.rs"))
    assert rust["Stack"].text.startswith("/// A stack of values.\n/// Grows without bound.\n#[derive(")
    assert rust["Stack.len"].text.startswith("    #[inline]\n    pub fn len")
    java = by_name(sample_chunks("Sample.java"))
    assert java["Sample.deposit"].text.startswith("    // Adds money.\n    @Override\n")


def test_first_line_keeps_its_indentation() -> None:
    method = by_name(sample_chunks("sample.rb"))["Settings.Entry.initialize"]
    assert method.text == "    def initialize(key)\n      @key = key\n    end"


def test_doc_span_counts_characters_not_bytes() -> None:
    text = 'x = "ü"\n\n# ünïcode 🎉 above\ndef f():\n    """Dœc — 🎉."""\n    return "é"\n'
    (chunk,) = chunk_source("m.py", text)
    assert chunk.doc_span is not None
    assert chunk.text[chunk.doc_span[0] : chunk.doc_span[1]] == '"""Dœc — 🎉."""'
    rust = "/// ünï\n/// émoji 🎉\nfn f() {}\n"
    (chunk,) = chunk_source("m.rs", rust)
    assert chunk.doc_span is not None
    assert chunk.text[chunk.doc_span[0] : chunk.doc_span[1]] == "/// ünï\n/// émoji 🎉"
    inline = "/** ünï — doc */ function f() {}\n"
    (chunk,) = chunk_source("m.js", inline)
    assert chunk.doc_span is not None
    assert chunk.text[chunk.doc_span[0] : chunk.doc_span[1]] == "/** ünï — doc */"


def test_crlf_lines_keep_their_carriage_returns() -> None:
    text = 'def f():\r\n    """Doc."""\r\n    return 1\r\n'
    (chunk,) = chunk_source("m.py", text)
    assert (chunk.start_line, chunk.end_line) == (1, 3)
    assert chunk.text == 'def f():\r\n    """Doc."""\r\n    return 1\r'
    assert chunk.doc_span is not None
    assert chunk.text[chunk.doc_span[0] : chunk.doc_span[1]] == '"""Doc."""'


def test_python_comment_on_previous_line_of_code_is_not_leading() -> None:
    text = "x = 1  # trailing\ndef f():\n    pass\n"
    (chunk,) = chunk_source("m.py", text)
    assert (chunk.start_line, chunk.doc_span) == (2, None)


def test_blank_line_separates_comment_from_definition() -> None:
    text = "// Not attached.\n\nfunction f() {}\n"
    (chunk,) = chunk_source("m.js", text)
    assert (chunk.start_line, chunk.doc_span) == (3, None)


def test_a_jsdoc_one_blank_line_above_stays_with_its_function() -> None:
    text = (
        "/**\n * @fileoverview The HTTP client.\n */\n\n"
        "function first() {}\n\n"
        "/**\n * Send a request.\n * @param {Request} request\n */\n\n"
        "obj.send = function (request) {\n  return request;\n};\n\n"
        "/** Close the socket. */\n\nexport function close() {}\n\n"
        "/** Not this one's. */\n\n// Its own comment.\nfunction own() {}\n\n"
        "/** Two blank lines. */\n\n\nfunction far() {}\n"
    )
    chunks = by_name(chunk_source("client.js", text))
    docs = {
        name: chunk.text[chunk.doc_span[0] : chunk.doc_span[1]] if chunk.doc_span else None
        for name, chunk in chunks.items()
    }
    assert docs == {
        "first": None,
        "send": "/**\n * Send a request.\n * @param {Request} request\n */",
        "close": "/** Close the socket. */",
        "own": "// Its own comment.",
        "far": None,
    }
    assert chunks["send"].start_line == 7 and chunks["send"].text.endswith("};")
    assert not [chunk for chunk in chunk_source("client.js", text) if chunk.kind == "window"]
    (python,) = chunk_source("m.py", "# A comment.\n\ndef f():\n    pass\n")  # only where JSDoc is the habit
    assert (python.start_line, python.doc_span) == (3, None)


def test_ids_are_stable_and_follow_content() -> None:
    text = (DATA / "sample.py").read_text(encoding="utf-8")
    first = chunk_source("pkg/sample.py", text)
    assert [chunk.id for chunk in first] == [chunk.id for chunk in chunk_source("pkg/sample.py", text)]
    assert len({chunk.id for chunk in first}) == len(first)
    fetch = by_name(first)["fetch"]
    expected = hashlib.sha1(f"pkg/sample.py\0fetch\0{fetch.content_hash}".encode()).hexdigest()[:20]
    assert fetch.id == expected
    edited = by_name(chunk_source("pkg/sample.py", text.replace("return url.encode()", "return b''")))
    assert edited["fetch"].id != fetch.id
    assert edited["retry"].id == by_name(first)["retry"].id
    moved = by_name(chunk_source("pkg/sample.py", "\n\n" + text))
    assert moved["retry"].id == by_name(first)["retry"].id
    assert by_name(chunk_source("other/sample.py", text))["retry"].id != by_name(first)["retry"].id


def test_repeated_definitions_get_distinct_ids() -> None:
    text = "if FAST:\n    def f():\n        pass\nelse:\n    def f():\n        pass\n"
    first, second = chunk_source("m.py", text)
    assert (first.name, first.text) == (second.name, second.text)
    assert first.id == hashlib.sha1(f"m.py\0f\0{first.content_hash}".encode()).hexdigest()[:20]
    assert second.id != first.id
    assert [chunk.id for chunk in chunk_source("m.py", text)] == [first.id, second.id]


def test_language_without_grammar_gets_overlapping_windows() -> None:
    text = "".join(f"line {number};\n" for number in range(1, 151))
    chunks = chunk_source("src/big.sql", text)
    assert [(chunk.name, chunk.start_line, chunk.end_line) for chunk in chunks] == [
        ("big.sql:1-60", 1, 60),
        ("big.sql:41-100", 41, 100),
        ("big.sql:81-140", 81, 140),
        ("big.sql:121-150", 121, 150),
    ]
    assert {(chunk.kind, chunk.language) for chunk in chunks} == {("window", "sql")}
    assert_well_formed(chunks, text)


def test_whitespace_windows_are_skipped() -> None:
    text = "int x;\n" + "\n" * 100 + "   \n" * 30 + "int y;\n"
    chunks = chunk_source("a.sql", text)
    assert [(chunk.start_line, chunk.end_line) for chunk in chunks] == [(1, 60), (81, 132)]


def test_file_without_definitions_gets_windows() -> None:
    text = "import os\n\nprint(os.getcwd())\n"
    assert [(chunk.kind, chunk.name) for chunk in chunk_source("s.py", text)] == [("window", "s.py:1-3")]


def test_garbage_file_falls_back_to_windows() -> None:
    rng = random.Random(7)
    text = bytes(rng.randrange(256) for _ in range(6000)).decode("utf-8", errors="replace")
    chunks = chunk_source("garbage.py", text)
    assert chunks
    assert_well_formed(chunks, text)
    covered = {line for chunk in chunks for line in range(chunk.start_line, chunk.end_line + 1)}
    assert covered >= {number for number, line in enumerate(lines_of(text), 1) if line.strip()}


def test_script_with_few_definitions_also_gets_windows_for_the_rest() -> None:
    body = "".join(f"print({number})\n" for number in range(50))
    text = f"def tiny():\n    return 1\n\n{body}"
    chunks = chunk_source("script.py", text)
    assert [(chunk.kind, chunk.name, chunk.start_line, chunk.end_line) for chunk in chunks] == [
        ("function", "tiny", 1, 2),
        ("window", "script.py:4-53", 4, 53),
    ]


def test_long_definitions_are_capped() -> None:
    body = "".join(f"    x{number} = {number}\n" for number in range(600))
    text = f"class Big:\n{body}"
    (chunk,) = chunk_source("big.py", text)
    assert (chunk.start_line, chunk.end_line) == (1, MAX_CHUNK_LINES)
    assert chunk.text.count("\n") == MAX_CHUNK_LINES - 1


def test_chunk_at_line_picks_innermost() -> None:
    chunks = sample_chunks("sample.py")
    assert chunk_at_line(chunks, 25).name == "Config.load.pick"  # type: ignore[union-attr]
    assert chunk_at_line(chunks, 21).name == "Config.load"  # type: ignore[union-attr]
    assert chunk_at_line(chunks, 9).name == "Config"  # type: ignore[union-attr]
    assert chunk_at_line(chunks, 1) is None
    windows = chunk_source("a.sql", "".join(f"x{number};\n" for number in range(100)))
    assert chunk_at_line(windows, 50).name == "a.sql:41-100"  # type: ignore[union-attr]
    assert chunk_at_line([], 1) is None


@pytest.mark.parametrize(
    "text",
    ["", "\n", "\n\n\n", "\x00" * 10, "def\x00 f(): pass", "x" * 200_000, "\ud800 lone surrogate", "\r\r\r"],
)
@pytest.mark.parametrize("language", [*GRAMMAR_LANGUAGES, "sql", None])
def test_odd_inputs_never_raise(text: str, language: str | None) -> None:
    assert_well_formed(chunk_source("odd.txt", text, language), text)


CODE_TOKENS = st.sampled_from(
    [
        "def ", "class ", "fn ", "func ", "function ", "impl ", "struct ", "interface ", "module ", "end",
        "mod ", "trait ", "enum ", "type ", "const ", " = ", "=> ", "async ", "self", "@dec", "#[a]", "x",
        "Foo", "(", ")", "{", "}", "[", "]", ":", ";", ",", ".", "\n", "\n\n", "    ", "\t", "# c\n",
        "// c\n", "/// d\n", "/**", "*/", '"""', "'", '"', "`", "é", "🎉", "\r\n", "\x00", "<a>", "</a>",
    ]
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(st.text(), st.lists(CODE_TOKENS, max_size=80).map("".join)))
@pytest.mark.parametrize("language", [*GRAMMAR_LANGUAGES, "sql"])
def test_any_text_chunks_cleanly(language: str, text: str) -> None:
    chunks = chunk_source("random.src", text, language)
    assert_well_formed(chunks, text)


# pathological sources, which real workspaces hold (generated, minified): bounded work, bounded output ----------------------------------------
COMMENT_RUN = "def first():\n    return 1\n\nx = 1\n" + "# a comment line\n" * 20_000


@pytest.mark.timeout(30)  # unbounded, tree-sitter-python takes 10 s and more on this file
def test_a_file_past_the_parse_budget_is_cut_into_line_windows() -> None:
    from codesieve.server.languages import parse_within_budget

    assert parse_within_budget("python", COMMENT_RUN.encode()) is None
    assert parse_within_budget("python", b"def first():\n    return 1\n") is not None  # the parser was reset
    chunks = chunk_source("run.py", COMMENT_RUN)
    assert {chunk.kind for chunk in chunks} == {"window"} and chunks[0].start_line == 1
    assert chunk_source("run.py", COMMENT_RUN) == chunks  # the budget counts work, not time


def test_each_thread_parses_with_its_own_parser() -> None:
    import threading

    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(parser_for("python")))
    thread.start()
    thread.join()
    assert other[0] is not None and other[0] is not parser_for("python")


# language -> (file name, how one level opens, how it closes): a definition named f<i> per level
NESTING: dict[str, tuple[str, str, str]] = {
    "rust": ("deep.rs", "fn f{i}() {{\n", "}\n"),
    "javascript": ("deep.js", "function f{i}() {{\n", "}\n"),
    "ruby": ("deep.rb", "def f{i}\n", "end\n"),
    "c": ("deep.c", "struct f{i} {{\n", "};\n"),
    "cpp": ("deep.cpp", "class f{i} {{\n", "};\n"),
    "csharp": ("deep.cs", "class f{i} {{\n", "}\n"),
    "php": ("deep.php", "function f{i}() {{\n", "}\n"),
    "kotlin": ("deep.kt", "class f{i} {{\n", "}\n"),
    "swift": ("deep.swift", "func f{i}() {{\n", "}\n"),
    "scala": ("deep.scala", "object f{i} {{\n", "}\n"),
    "lua": ("deep.lua", "function f{i}()\n", "end\n"),
    "shell": ("deep.sh", "f{i}() {{\n", "}\n"),
}


def _nested(language: str, depth: int) -> tuple[str, str]:
    path, opening, closing = NESTING[language]
    prefix = "<?php\n" if language == "php" else ""
    return path, prefix + "".join(opening.format(i=i) for i in range(depth)) + closing * depth


@pytest.mark.timeout(60)
@pytest.mark.parametrize("language", sorted(NESTING))
def test_deeply_nested_definitions_give_chunks_in_proportion_to_the_source(language: str) -> None:
    from codesieve.server.chunk.definition_roles import MAX_NESTING

    path, text = _nested(language, 5_000)
    chunks = chunk_source(path, text)
    definitions = [chunk for chunk in chunks if chunk.kind != "window"]
    assert len(definitions) == MAX_NESTING
    assert definitions[-1].name == ".".join(f"f{i}" for i in range(MAX_NESTING))
    assert sum(len(chunk.text) + len(chunk.name) for chunk in chunks) < 10 * len(text)
    covered = {line for chunk in chunks for line in range(chunk.start_line, chunk.end_line + 1)}
    assert covered == set(range(1, text.count("\n") + 1))  # the lines deeper down are in windows


def test_a_long_qualified_name_keeps_its_innermost_end() -> None:
    from codesieve.server.chunk.chunker import MAX_NAME_CHARS

    source = (
        f"class {'A' * 5_000}:\n    class {'B' * 5_000}:\n        def handle(self):\n            return 1\n"
    )
    names = [chunk.name for chunk in chunk_source("long.py", source)]
    assert all(len(name) <= MAX_NAME_CHARS for name in names)
    assert any(name.endswith(".handle") for name in names)
