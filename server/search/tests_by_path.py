"""Which code is test code: its path says so (a `tests/` folder, a `test_*.py` or `*_test.go` name),
or, in languages that mark tests in the code, the definition's own mark (`[Fact]`, `@Test`, `#[test]`,
`TEST_F(`, a class that extends `XCTestCase` or `TestCase`).

Search ranks implementation ahead of test code of similar relevance (`first_stage.py`), and the
trainer mines no pairs from test files (`trainer/mining.py`): both use these detectors. They read the
workspace-relative path and, for a definition, the head of its own text (its attributes and
signature, up to its first `{`) and its qualified name, so they cost next to nothing at search time and
never judge a function by its body. A method of a test class is test code by its own mark, or by its
name where the framework names tests so (PHPUnit and XCTest: `testSomething` in a class named
`...Test` or `...Tests`); a helper of a test class in a file that is not a test file is not.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..chunk.code_unit import CodeUnit

TEST_DIRECTORIES = frozenset({"test", "tests", "spec", "specs", "__tests__", "testing"})
_TEST_FILE = re.compile(
    r"(^test_|_test\.|_tests\.|_unittest\.|_spec\.|\.spec\.|\.test\.|\.bats$|^conftest\.py$"
    r"|Tests?\.(java|kt|cs|scala|php|swift)$|Spec\.(kt|scala)$|^Test[A-Z_]\w*\.php$)"
)
# A test project or target named for what it tests: `App.Tests/`, Xcode's `AppTests/`, `UnitTests/`.
_TEST_FOLDER = re.compile(r"(^|[.\w])Tests$")

_HEAD_CHARS = 1000  # of a definition's text searched for its marks, at most: attributes and signature
_JUNIT = r"@(?:[\w.]+\.)?(?:Test|ParameterizedTest|RepeatedTest|TestFactory|TestTemplate)\b"
_GTEST = r"(?m)^\s*(?:TEST|TEST_F|TEST_P|TYPED_TEST|TYPED_TEST_P)\s*\("
# Language -> what marks a definition as a test (or a class as a test class), in its head.
_TEST_MARKS: dict[str, re.Pattern[str]] = {
    "csharp": re.compile(
        r"\[\s*(?:[\w.]+\.)?(?:Test|TestCase|TestCaseSource|Fact|Theory|TestMethod|DataTestMethod"
        r"|TestClass|TestFixture)(?:Attribute)?\s*[\](,]"
    ),
    "java": re.compile(_JUNIT),
    "kotlin": re.compile(_JUNIT),
    "scala": re.compile(_JUNIT + r"|\bextends\s+[\w.]*(?:Suite|Spec|Specification)\b"),
    "swift": re.compile(r"@Test\b|@Suite\b|:\s*(?:[\w.]+\s*,\s*)*XCTestCase\b"),
    "php": re.compile(
        r"#\[\s*(?:\\?PHPUnit\\Framework\\Attributes\\)?Test\b|@test\b|\bextends\s+[\w\\]*TestCase\b"
    ),
    "rust": re.compile(r"#\[\s*(?:[\w:]+::)?test\b"),
    "c": re.compile(_GTEST),
    "cpp": re.compile(_GTEST),
}
# Language -> frameworks that find tests by name: a method `test...` of a class `...Test(s)`.
_TESTS_BY_NAME = frozenset({"php", "swift"})
_TEST_CLASS = re.compile(r"Tests?$|TestCase$")


def is_test_path(path: str) -> bool:
    """Whether a workspace-relative path looks like a test file."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    folders = parts[:-1]
    return any(part.lower() in TEST_DIRECTORIES or _TEST_FOLDER.search(part) for part in folders) or bool(
        _TEST_FILE.search(parts[-1])
    )


def is_test_code(chunk: CodeUnit) -> bool:
    """Whether a chunk is test code: by its path, or a definition by its own mark or test name."""
    return is_test_path(chunk.path) or is_marked_test(chunk)


def is_marked_test(chunk: CodeUnit) -> bool:
    """Whether a definition marks itself as a test, or is named as its framework names tests."""
    if chunk.kind == "window":
        return False
    marks = _TEST_MARKS.get(chunk.language)
    if marks is not None:
        head = chunk.text[:_HEAD_CHARS]
        if marks.search(head.split("{", 1)[0]):
            return True
    if chunk.language in _TESTS_BY_NAME and chunk.kind == "method":
        *owners, own = chunk.name.split(".")
        return own.startswith("test") and bool(owners) and bool(_TEST_CLASS.search(owners[-1]))
    return False
