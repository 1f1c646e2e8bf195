"""`trainer fit` end to end on a tiny random model: mine, train, export, evaluate, install, search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codesieve.server.config import Settings
from codesieve.server.model.folder import ModelFolder
from codesieve.server.workspace import WORKSPACE_MODEL, Workspace, index_folder_for
from codesieve.trainer.cli import main

DATA = Path(__file__).parent / "data"


def test_fit_installs_a_model_the_runtime_searches_with(
    tiny_base_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(DATA / "minirepo", repo)
    flags = ["--base-model", str(tiny_base_model), "--min-pairs", "10", "--threads", "1", "--no-quantize"]
    assert (
        main(
            [
                "fit",
                str(repo),
                "--max-steps",
                "2",
                "--retriever-batch-size",
                "4",
                "--ranker-batch-size",
                "3",
                *flags,
            ]
        )
        == 0
    )
    output = capsys.readouterr().out
    assert "base retriever" in output and "fitted cascade@10" in output

    installed = index_folder_for(repo, Settings()) / WORKSPACE_MODEL
    folder = ModelFolder.load(installed)
    assert folder.ranker_path is not None
    card = json.loads((installed / "model-card.json").read_text())
    assert card["training"]["retriever"]["step"] == 2 and card["training"]["data"]["count"] > 0
    assert card["training"]["ranker"]["config"]["negatives"] == "ranking"
    assert set(card["scores"]["held-out"]["fitted"]) == {"retriever", "cascade@10"}

    workspace = Workspace(repo)
    try:
        assert workspace.model.path == installed and workspace.ranker is not None
        workspace.sync()
        result = workspace.search("turn a title into a url slug", limit=5)
        assert result.hits and result.stats.reranked > 0
    finally:
        workspace.close()


def test_fit_refuses_a_repository_with_too_few_pairs(
    tiny_base_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "small"
    shutil.copytree(DATA / "minirepo" / "geometry", repo)
    assert main(["fit", str(repo), "--base-model", str(tiny_base_model)]) == 2
    error = capsys.readouterr().err
    assert "yields 5 (description, code) pairs" in error and "at least 200" in error
