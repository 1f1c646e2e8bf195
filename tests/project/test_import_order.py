"""The layout is the pipeline: server/'s parts import only those before them, the packages depend one way
(trainer -> export -> server), every import resolves, none is circular.

Imports are read from the source (every `import` statement, including ones inside functions), so the
checks see what a reader sees, without importing anything.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest
from helpers import REPO

FOLDERS = {"server": "codesieve.server", "trainer": "codesieve.trainer", "export": "codesieve.export"}

# server/'s parts in the order data flows through them; a part may import the parts of lower rank.
# config, errors and languages are the foundations: every part may use them, they use no other part.
PIPELINE_RANK = {
    "config": 0,
    "errors": 0,
    "languages": 0,
    "scan": 1,
    "chunk": 2,
    "model": 3,
    "locations": 4,
    "index": 4,
    "search": 5,
    "workspace": 6,
    "lsp": 7,
    "mcp_folders": 7,
    "mcp_server": 8,
    "cli": 9,
}


# the packages in the order they depend on each other: each may import only those of lower rank (and itself)
PACKAGE_RANK = {"codesieve.server": 0, "codesieve.export": 1, "codesieve.trainer": 2}


def _module_names() -> dict[str, Path]:
    """Every module of server/, trainer/ and export/ by its installed name."""
    modules: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def _imported(module: str, path: Path, packages: set[str]) -> set[str]:
    """The `codesieve` modules that `module` imports."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            named = {f"{source}.{alias.name}" for alias in node.names}
            # this project's packages define no names, so `from package import x` means module x
            targets.update(named if source in packages else {source})
    return {target for target in targets if target.split(".")[0] == "codesieve" and target != module}


@pytest.fixture(scope="module")
def all_imports() -> dict[str, set[str]]:
    """Every `codesieve` name each module imports, whether or not such a module exists."""
    modules = _module_names()
    packages = {module for module, path in modules.items() if path.name == "__init__.py"}
    scripts = {
        ".".join(path.relative_to(REPO).with_suffix("").parts): path
        for folder in ("tests", "bench")
        for path in (REPO / folder).rglob("*.py")
        if "data" not in path.relative_to(REPO / folder).parts  # samples, some broken on purpose
    }
    return {module: _imported(module, path, packages) for module, path in {**modules, **scripts}.items()}


@pytest.fixture(scope="module")
def imports(all_imports: dict[str, set[str]]) -> dict[str, set[str]]:
    """The modules of this project each module imports."""
    return {module: targets & set(all_imports) for module, targets in all_imports.items()}


def _part_of(module: str) -> str | None:
    """The pipeline part of a server module (`codesieve.server.scan.walk` -> `scan`)."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["codesieve", "server"] and len(parts) > 2 else None


def test_imports_are_read_from_the_source(imports: dict[str, set[str]]) -> None:
    assert "codesieve.server.workspace" in imports["codesieve.server.cli"]
    assert "codesieve.server.chunk.text_positions" in imports["codesieve.server.chunk.chunker"]
    assert "codesieve.server.model.folder" in imports["codesieve.trainer.cli"]  # inside a function


def test_every_import_of_codesieve_names_a_module_that_exists(all_imports: dict[str, set[str]]) -> None:
    missing = {
        f"{module} imports {target}"
        for module, targets in all_imports.items()
        for target in targets - set(_module_names()) - {"codesieve"}
    }
    assert not missing, "imports of modules that moved or never were:\n" + "\n".join(sorted(missing))


def test_every_server_module_has_a_place_in_the_pipeline(imports: dict[str, set[str]]) -> None:
    parts = {_part_of(module) for module in imports} - {None}
    assert parts <= set(PIPELINE_RANK), f"place these in PIPELINE_RANK: {parts - set(PIPELINE_RANK)}"


def test_server_parts_import_only_the_parts_before_them(imports: dict[str, set[str]]) -> None:
    backwards = []
    for module, targets in imports.items():
        part = _part_of(module)
        if part is None:
            continue
        for target in sorted(targets):
            used = _part_of(target)
            if used is not None and used != part and PIPELINE_RANK[used] >= PIPELINE_RANK[part]:
                backwards.append(f"{module} imports {target}")
    assert not backwards, "imports against the pipeline order:\n" + "\n".join(backwards)


def test_server_imports_neither_the_trainer_nor_export(imports: dict[str, set[str]]) -> None:
    for module, targets in imports.items():
        if _part_of(module) is not None:
            assert not {t for t in targets if t.startswith(("codesieve.trainer", "codesieve.export"))}, module


def _package_of(module: str) -> str | None:
    """`codesieve.trainer.fit` -> `codesieve.trainer`; None outside the three packages."""
    package = ".".join(module.split(".")[:2])
    return package if package in PACKAGE_RANK else None


def test_packages_depend_one_way(imports: dict[str, set[str]]) -> None:
    backwards = sorted(
        f"{module} imports {target}"
        for module, targets in imports.items()
        if (package := _package_of(module)) is not None
        for target in targets
        if (used := _package_of(target)) is not None and PACKAGE_RANK[used] > PACKAGE_RANK[package]
    )
    assert not backwards, "imports against trainer -> export -> server:\n" + "\n".join(backwards)
    # the check sees a dependency that runs back: the trainer's models derive from the export's TorchModel
    assert "codesieve.export.torch_model" in imports["codesieve.trainer.models"]


def test_no_module_imports_itself_through_others(imports: dict[str, set[str]]) -> None:
    try:
        graphlib.TopologicalSorter(imports).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")
