"""The languages split into definitions: test code as each ecosystem marks it, damaged files, long
names, and every place that lists the languages (README, `--lang`, the editor clients) agreeing with
what is parsed. Chunk boundaries, names and doc comments per language are in chunk/test_chunker.py."""

from __future__ import annotations

import json
import re

import pytest
from helpers import REPO, TESTS, lines_of

from codesieve.server.chunk.chunker import MAX_NAME_CHARS, Chunk, chunk_source
from codesieve.server.languages import known_languages, parsed_languages
from codesieve.server.search.tests_by_path import is_test_code, is_test_path

DATA = TESTS / "data"


def flag_tests(path: str, text: str) -> dict[str, bool]:
    """Each definition's name and whether it is test code."""
    return {chunk.name: is_test_code(chunk) for chunk in chunk_source(path, text) if chunk.kind != "window"}


# (file, source, the definitions that are test code); every other definition in it is not.
MARKED_TESTS = [
    (
        "src/Greeter.cs",
        "public class GreeterChecks\n{\n    [Fact]\n    public void SaysHello() { }\n\n"
        "    [Theory, InlineData(1)]\n    public void Counts(int n) { }\n\n    [Serializable]\n"
        "    public class Helper { }\n\n    public void Arrange() { }\n}\n",
        {"GreeterChecks.SaysHello", "GreeterChecks.Counts"},
    ),
    (
        "src/Fixture.cs",
        "[TestFixture]\npublic class Parsing\n{\n    [Test]\n    public void Parses() { }\n}\n",
        {"Parsing", "Parsing.Parses"},
    ),
    (
        "app/src/main/Registry.kt",
        "class RegistryChecks {\n    @Test\n    fun registers() {}\n\n    @JvmStatic\n    fun helper() {}\n}\n",
        {"RegistryChecks.registers"},
    ),
    (
        "Sources/Point.swift",
        "final class PointTests: XCTestCase {\n    func testNorm() throws {\n        XCTAssertEqual(1, 1)\n"
        "    }\n\n    func makePoint() -> Int { 1 }\n}\n\n@Test func addsUp() {\n    #expect(1 + 1 == 2)\n}\n",
        {"PointTests", "PointTests.testNorm", "addsUp"},
    ),
    (
        "src/Handler.php",
        "<?php\nclass StreamHandlerTest extends \\PHPUnit\\Framework\\TestCase\n{\n"
        "    public function testWrites(): void {}\n\n    #[Test]\n    public function flushes(): void {}\n\n"
        "    private function stream() {}\n}\n\nclass TestCaseFactory\n{\n    public function make() {}\n}\n",
        {"StreamHandlerTest", "StreamHandlerTest.testWrites", "StreamHandlerTest.flushes"},
    ),
    (
        "src/validator.cc",
        'TEST_F(ValidatorTest, RejectsEmpty) {\n  EXPECT_FALSE(Validate(""));\n}\n\n'
        "bool Validate(const std::string& s) { return !s.empty(); }\n",
        {"TEST_F"},
    ),
    (
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n"
        "    #[test]\n    fn adds() {\n        assert_eq!(add(1, 2), 3);\n    }\n\n    #[tokio::test]\n"
        "    async fn adds_later() {}\n\n    fn fixture() -> i32 { 1 }\n}\n",
        {"tests.adds", "tests.adds_later"},
    ),
    (
        "src/main/scala/Suite.scala",
        'class ValidatedSuite extends AnyFunSuite {\n  test("valid") { assert(true) }\n}\n\n'
        "object Validated {\n  def valid(x: Int) = x\n}\n",
        {"ValidatedSuite"},
    ),
]


@pytest.mark.parametrize(("path", "text", "expected"), MARKED_TESTS, ids=[case[0] for case in MARKED_TESTS])
def test_definitions_marked_as_tests_are_test_code(path: str, text: str, expected: set[str]) -> None:
    found = flag_tests(path, text)
    assert expected <= set(found), found
    assert {name for name, test in found.items() if test} == expected


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("Tests/AppTests/PointTests.swift", True),
        ("MyAppTests/Helpers.swift", True),
        ("src/App.Tests/Helpers.cs", True),
        ("src/Client/ClientTests.cs", True),
        ("tests/Unit/TestStreamHandler.php", True),
        ("src/Handler/StreamHandlerTest.php", True),
        ("src/list_spec.lua", True),
        ("spec/list.lua", True),
        ("test/helpers.bats", True),
        ("src/validator_unittest.cc", True),
        ("src/test/kotlin/RegistryTest.kt", True),
        ("src/main/scala/ValidatedSpec.scala", True),
        ("src/Testing.php", False),
        ("src/Contest.cs", False),
        ("src/Attestation.swift", False),
        ("src/Handler/Tester.php", False),
        ("lib/list.lua", False),
    ],
)
def test_test_files_of_each_ecosystem(path: str, is_test: bool) -> None:
    assert is_test_path(path) is is_test


def test_windows_are_test_code_by_their_path_only() -> None:
    (window,) = chunk_source("src/checks.sql", "-- [Fact] @Test #[test]\nSELECT 1;\n")
    assert window.kind == "window" and not is_test_code(window)


# Each sample cut short inside a definition and given stray closing brackets: a definition before the
# damage is still found by its name (the scopes the damage left open may drop from it), and every chunk
# still holds whole lines of the file.
DAMAGED = {
    "sample.c": ("add", "int main(void) {"),
    "sample.cpp": ("Validator.operator()", "template <typename T>"),
    "Sample.cs": ("Python.Runtime.Converter", "public interface"),
    "sample.php": ("Monolog.Handler.StreamHandler", "interface Formattable"),
    "Sample.kt": ("ModuleRegistry", "object Registry"),
    "Sample.swift": ("CAPPluginCall", "extension CAPPluginCall"),
    "Sample.scala": ("Validated.fold", "trait Semigroup"),
    "sample.lua": ("List.new", "local function private_helper"),
    "sample.sh": ("check", "function depends"),
}


@pytest.mark.parametrize("file_name", sorted(DAMAGED))
def test_a_damaged_file_keeps_the_definitions_before_the_damage(file_name: str) -> None:
    kept, cut_at = DAMAGED[file_name]
    folder = DATA / ("chunking" if file_name == "sample.c" else "languages")
    text = (folder / file_name).read_text(encoding="utf-8")
    damaged = text[: text.index(cut_at) + len(cut_at) + 3] + "\n)) }} ]] end fi @@ ${\n"
    chunks = chunk_source(f"damaged/{file_name}", damaged)
    assert any(chunk.name == kept or chunk.name.endswith(f".{kept}") for chunk in chunks)
    assert_whole_lines(chunks, damaged)


def assert_whole_lines(chunks: list[Chunk], text: str) -> None:
    lines = lines_of(text)
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line])


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("q.cpp", "void " + "::".join(f"part{i}" for i in range(20_000)) + "() {}\n"),
        ("q.lua", "function " + ".".join(f"part{i}" for i in range(20_000)) + ":run() end\n"),
        ("q.cs", "namespace " + ".".join(f"P{i}" for i in range(20_000)) + ";\nclass C { void Run() {} }\n"),
    ],
)
def test_a_name_in_thousands_of_parts_is_capped_and_keeps_its_end(path: str, text: str) -> None:
    chunks = [chunk for chunk in chunk_source(path, text) if chunk.kind != "window"]
    assert chunks and all(len(chunk.name) <= MAX_NAME_CHARS for chunk in chunks)
    assert chunks[-1].name.endswith(("part19999", "run", "P19999.C"))


# Every list of languages agrees with what is parsed ------------------------------------------------
README_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "typescript": "TypeScript",
    "tsx": "TSX",
    "go": "Go",
    "java": "Java",
    "rust": "Rust",
    "ruby": "Ruby",
    "c": "C",
    "cpp": "C++",
    "csharp": "C#",
    "php": "PHP",
    "kotlin": "Kotlin",
    "swift": "Swift",
    "scala": "Scala",
    "lua": "Lua",
    "shell": "shell",
    "sql": "SQL",
}


def readme_sentence() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("What gets indexed:")
    return " ".join(text[start : text.index("\n\n", start)].split())


def test_the_readme_names_what_is_split_into_definitions_and_what_into_windows() -> None:
    assert set(README_NAMES) == set(known_languages())
    sentence = readme_sentence()
    parsed_part, _, windows_part = sentence.partition("are split into functions")
    named = {
        language
        for language, name in README_NAMES.items()
        if re.search(rf"(?<![\w+#]){re.escape(name)}(?![\w+#])", parsed_part)
    }
    assert named == set(parsed_languages())
    unparsed = set(known_languages()) - set(parsed_languages())
    assert all(README_NAMES[language] in windows_part.split("windows")[0] for language in unparsed)


def test_cli_lang_help_lists_every_language() -> None:
    source = (REPO / "server" / "cli.py").read_text(encoding="utf-8")
    help_text = source[source.index('"--lang"') : source.index('"--path"')]
    listed = set(re.findall(r"\b[a-z]+\b", help_text.split("(repeatable):", 1)[1]))
    assert set(known_languages()) <= listed


def test_the_editor_clients_serve_every_parsed_language() -> None:
    """The clients start the server for any file (no language filter), so every language the server
    parses reaches it; a filter added later must list them all."""
    package = json.loads((REPO / "editor-client" / "package.json").read_text(encoding="utf-8"))
    on_language = {
        event.split(":", 1)[1] for event in package["activationEvents"] if event.startswith("onLanguage:")
    }
    assert "onStartupFinished" in package["activationEvents"] or on_language >= VSCODE_IDS.keys()
    client = (REPO / "editor-client" / "src" / "client.ts").read_text(encoding="utf-8")
    selector = client[client.index("documentSelector:") :].split("]", 1)[0]
    selected = set(re.findall(r'language:\s*"([\w-]+)"', selector))
    assert 'scheme: "file"' in selector and (not selected or selected >= set(VSCODE_IDS.values()))
    neovim = (REPO / "editor-client" / "nvim" / "lua" / "codesieve.lua").read_text(encoding="utf-8")
    autocmd = neovim[neovim.index('nvim_create_autocmd("FileType"') :].split("})", 1)[0]
    assert "pattern" not in autocmd  # every filetype starts the client


VSCODE_IDS = {  # CodeSieve's language -> VS Code's language id
    "python": "python",
    "javascript": "javascript",
    "typescript": "typescript",
    "tsx": "typescriptreact",
    "go": "go",
    "java": "java",
    "rust": "rust",
    "ruby": "ruby",
    "c": "c",
    "cpp": "cpp",
    "csharp": "csharp",
    "php": "php",
    "kotlin": "kotlin",
    "swift": "swift",
    "scala": "scala",
    "lua": "lua",
    "shell": "shellscript",
}


def test_vscode_ids_cover_the_parsed_languages() -> None:
    assert set(VSCODE_IDS) == set(parsed_languages())
