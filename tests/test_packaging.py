"""A non-editable wheel installs `codesieve.*` names only and searches with the model inside it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import codesieve
from codesieve.server.lsp.server import CodeSieveServer

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """A sub-package missing from the list would be left out of the wheel (the editable install hides it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {"server", "trainer", "export"}
    assert all(setuptools["package-dir"][f"codesieve.{folder}"] == folder for folder in folders)
    packages = {
        "codesieve." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in folders
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert packages - set(setuptools["packages"]) == set(), "add these to pyproject's packages"


def test_the_package_the_language_server_and_the_extension_have_one_version() -> None:
    manifest = json.loads((ROOT / "editor-client" / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == codesieve.__version__ == importlib.metadata.version("codesieve")
    assert CodeSieveServer().version == codesieve.__version__


@pytest.mark.slow
def test_wheel_installs_namespaced_packages_and_the_default_model(
    tmp_path: Path, sample_workspace: Path, index_dir: Path
) -> None:
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("codesieve-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.startswith("codesieve-")}
    assert top_level == {"codesieve"}  # nothing called server, trainer or export in site-packages
    for required in (
        "codesieve/server/cli.py",
        "codesieve/trainer/cli.py",
        "codesieve/export/onnx_export.py",
        "codesieve/models/default/retriever.onnx",
        "codesieve/models/default/model-card.json",
        "codesieve/general/replay.jsonl.gz",
        "codesieve/general/check.jsonl.gz",
    ):
        assert required in names

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )

    def with_wheel(*arguments: str, hnswlib: bool = True) -> subprocess.CompletedProcess[str]:
        """`codesieve ARGUMENTS` from the installed wheel (PYTHONPATH puts its files ahead of the
        editable checkout; run from elsewhere), optionally with hnswlib blocked from import."""
        script = (
            ("" if hnswlib else "import sys\nsys.modules['hnswlib'] = None\n")
            + "import sys, codesieve.server.cli as cli\n"
            + f"assert cli.__file__.startswith({str(target)!r}), cli.__file__\n"
            + f"sys.exit(cli.main({list(arguments)!r}))\n"
        )
        return subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(target)},
        )

    search = ("search", "read a json config", str(sample_workspace), "--json", "-q")
    result = with_wheel(*search)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hits"]

    # where hnswlib cannot be imported (it needs a compiler to install), the installed wheel searches exactly
    status = with_wheel("status", str(sample_workspace), hnswlib=False)
    assert status.returncode == 0, status.stderr
    assert "search:    exact (numpy)" in status.stdout, status.stdout
    found = with_wheel(*search, hnswlib=False)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"]
