"""The wheel: `python -m build` makes it with the default model inside, it installs `codesieve.*` names only,
needs no compiler (hnswlib is an extra), and searches in a fresh environment without the source tree."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO
from wheelhouse import build_wheel, offline_pip_env, runtime_wheelhouse

import codesieve
from codesieve.server.lsp.server import CodeSieveServer


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """A sub-package missing from the list would be left out of the wheel (the editable install hides it)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {"server", "trainer", "export"}
    assert all(setuptools["package-dir"][f"codesieve.{folder}"] == folder for folder in folders)
    packages = {
        "codesieve." + ".".join(init.parent.relative_to(REPO).parts)
        for folder in folders
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert packages - set(setuptools["packages"]) == set(), "add these to pyproject's packages"


def test_the_package_the_language_server_and_the_extension_have_one_version() -> None:
    manifest = json.loads((REPO / "editor-client" / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == codesieve.__version__ == importlib.metadata.version("codesieve")
    assert CodeSieveServer().version == codesieve.__version__


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build` makes, once for the module."""
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.mark.slow
def test_the_wheel_carries_the_namespaced_packages_and_the_default_model_and_needs_no_compiler(
    wheel: Path,
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_file,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata_file).decode("utf-8").splitlines()
            if line.startswith("Requires-Dist:")
        ]
    top_level = {name.split("/")[0] for name in names if not name.startswith("codesieve-")}
    assert top_level == {"codesieve"}  # nothing called server, trainer or export in site-packages
    for required in (
        "codesieve/server/cli.py",
        "codesieve/trainer/cli.py",
        "codesieve/export/onnx_export.py",
        "codesieve/models/default/retriever.onnx",
        "codesieve/models/default/tokenizer.json",
        "codesieve/models/default/model-card.json",
        "codesieve/general/replay.jsonl.gz",
        "codesieve/general/check.jsonl.gz",
    ):
        assert required in names
    # hnswlib compiles C++ on install: only the `hnsw` extra asks for it
    hnswlib = [requirement for requirement in requires if requirement.startswith("hnswlib")]
    assert hnswlib and all('extra == "hnsw"' in requirement for requirement in hnswlib), requires


@pytest.mark.slow
def test_the_wheel_in_a_fresh_environment_without_hnswlib_searches_exactly(
    wheel: Path, sample_workspace: Path, tmp_path: Path
) -> None:
    """A new virtual environment, the wheel and its dependencies from a wheelhouse (no index, no compiler,
    no source tree): hnswlib is not there, status says the search is exact, and search finds."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = offline_pip_env()
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-index", "--find-links",
         str(runtime_wheelhouse(sys.executable, wheel)), str(wheel)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr

    def installed(*arguments: str) -> subprocess.CompletedProcess[str]:
        """A command of the new environment, run from outside the checkout."""
        return subprocess.run(
            [*arguments], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
        )

    where = installed(python, "-c", "import codesieve.server.cli as cli; print(cli.__file__)")
    assert where.stdout.startswith(str(venv)), where
    no_hnswlib = installed(python, "-c", "import hnswlib")
    assert "No module named 'hnswlib'" in no_hnswlib.stderr, no_hnswlib

    cli = str(venv / "bin" / "codesieve")
    index = ("--index-dir", str(tmp_path / "indexes"))
    search = (cli, "search", "read a json config", str(sample_workspace), "--json", "-q", *index)
    found = installed(*search)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert hits and all((tmp_path / hit["path"]).is_file() for hit in hits), hits  # paths from the cwd
    status = installed(cli, "status", str(sample_workspace), *index)
    assert status.returncode == 0, status.stderr
    assert "search:    exact (numpy)" in status.stdout, status.stdout
    assert f"at {venv}" in status.stdout, status.stdout  # the model inside the installed wheel

    # the command `trainer` gives for installing torch asks for the installed codesieve, not the index's
    requirement = installed(
        python, "-c", "from codesieve.trainer.extras import install_commands as c; print(c()[0][-1])"
    )
    assert requirement.stdout.strip() == f"codesieve[train]=={codesieve.__version__}", requirement
    offline = installed(
        python, "-m", "pip", "install", "--dry-run", "--no-index", "--no-deps", requirement.stdout.strip()
    )
    assert offline.returncode == 0 and "Requirement already satisfied" in offline.stdout, offline
