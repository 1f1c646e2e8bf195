"""The `codesieve` command line, run as a user would: real processes, real output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import codesieve

from codesieve.server.model.folder import ModelFolder, default_model_dir


def test_search_json_lists_hits_and_stats(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    result = codesieve(
        "search",
        "read a json config",
        str(sample_workspace),
        "--json",
        "--limit",
        "7",
        "--model",
        str(tiny_model),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert len(output["hits"]) == 7
    hit = output["hits"][0]
    assert set(hit) == {
        "path",
        "start_line",
        "end_line",
        "name",
        "kind",
        "language",
        "score",
        "stage",
        "preview",
        "also_at",
    }
    assert Path(hit["path"]).exists() and hit["start_line"] <= hit["end_line"]
    assert output["stats"]["retrieved"] >= 7 and output["stats"]["reranked"] == 10  # K, whatever the limit
    assert output["stats"]["indexed"]["changed"] == 10  # the first search indexed the folder


def test_plain_output_filters_and_no_rerank(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    result = codesieve(
        "search",
        "a handler",
        str(sample_workspace),
        "--lang",
        "go",
        "--no-rerank",
        "--model",
        str(tiny_model),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    locations = lines[0::2]
    assert locations and all(".go:" in line for line in locations)
    assert all(line.startswith("    ") for line in lines[1::2])
    assert "reranking turned off" in result.stderr


def test_plain_output_says_reranked_when_the_ranker_ran_and_retriever_order_without_one(
    sample_workspace: Path, tiny_model: Path, other_tiny_model: Path, index_dir: Path
) -> None:
    reranked = codesieve("search", "a handler", str(sample_workspace), "--model", str(tiny_model), "-q")
    assert reranked.returncode == 0, reranked.stderr
    assert "reranked 10 in" in reranked.stderr and "retriever order" not in reranked.stderr
    plain = codesieve("search", "a handler", str(sample_workspace), "--model", str(other_tiny_model), "-q")
    assert plain.returncode == 0, plain.stderr
    assert "no ranker in the model folder: retriever order" in plain.stderr and "reranked" not in plain.stderr


def test_search_ranks_test_code_after_implementation_unless_tests(
    tmp_path: Path, tiny_model: Path, index_dir: Path
) -> None:
    body = "def parse_row(line):\n    return line.split(',')\n"
    (tmp_path / "repo" / "tests").mkdir(parents=True)
    (tmp_path / "repo" / "tests" / "test_rows.py").write_text(body, encoding="utf-8")
    (tmp_path / "repo" / "zlib").mkdir()
    (tmp_path / "repo" / "zlib" / "rows.py").write_text(body, encoding="utf-8")
    common = (body, str(tmp_path / "repo"), "--json", "--limit", "2", "--model", str(tiny_model), "-q")
    paths = [Path(hit["path"]).as_posix() for hit in json.loads(codesieve("search", *common).stdout)["hits"]]
    assert paths[0].endswith("zlib/rows.py") and paths[1].endswith("tests/test_rows.py")
    result = codesieve("search", *common, "--tests")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["hits"]) == 2


def test_similar_and_status(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    indexed = codesieve("index", str(sample_workspace), "--model", str(tiny_model), "-q")
    assert indexed.returncode == 0, indexed.stderr
    result = codesieve(
        "similar", f"{sample_workspace / 'sample.py'}:20", "--json", "--model", str(tiny_model), "-q"
    )
    assert result.returncode == 0, result.stderr
    names = [hit["name"] for hit in json.loads(result.stdout)["hits"]]
    assert names and "Config.load" not in names
    status = codesieve("status", str(sample_workspace), "--json", "--model", str(tiny_model))
    data = json.loads(status.stdout)
    assert data["files"] == 10 and data["chunks"] > 30 and data["stale"] == {"changed": 0, "deleted": 0}
    (sample_workspace / "sample.rb").unlink()
    stale = codesieve("status", str(sample_workspace), "--model", str(tiny_model))
    assert "1 deleted since the last index" in stale.stdout


def test_similar_outside_every_indexed_folder_needs_a_root(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, tmp_path: Path
) -> None:
    """`codesieve similar /etc/passwd:1` must not index /etc: only a folder indexed before, or --root."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".git").mkdir()  # a repository, but never indexed
    (elsewhere / "tool.py").write_text("def tool(a):\n    return a * 2\n")
    model = ["--model", str(tiny_model), "-q"]
    refused = codesieve("similar", f"{elsewhere / 'tool.py'}:2", *model)
    assert refused.returncode == 2 and "--root" in refused.stderr and "Traceback" not in refused.stderr
    outside_root = codesieve("similar", f"{elsewhere / 'tool.py'}:2", "--root", str(sample_workspace), *model)
    assert outside_root.returncode == 2 and "not inside the workspace" in outside_root.stderr
    assert not index_dir.exists() or not any(index_dir.iterdir())  # nothing indexed, nothing made

    rooted = codesieve("similar", f"{elsewhere / 'tool.py'}:2", "--root", str(elsewhere), "--json", *model)
    assert rooted.returncode == 0, rooted.stderr
    # once indexed, its files need no --root (from a subfolder's file too)
    again = codesieve("similar", f"{elsewhere / 'tool.py'}:2", "--json", *model)
    assert again.returncode == 0, again.stderr


def test_index_prints_a_summary(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    (sample_workspace / "blob.py").write_bytes(b"\x00" * 100)
    result = codesieve("index", str(sample_workspace), "--model", str(tiny_model), "-q")
    assert result.returncode == 0, result.stderr
    assert "10 files (10 new or changed, 0 deleted)" in result.stdout
    assert "1 binary" in result.stdout and str(index_dir) in result.stdout


def test_an_invalid_path_glob_is_a_clear_error(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    result = codesieve(
        "search", "x", str(sample_workspace), "--model", str(tiny_model), "--path", "[z-a]", "-q"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "codesieve: The include glob '[z-a]' is not a valid gitignore-style pattern" in result.stderr


def test_an_ignore_file_warning_is_a_codesieve_message(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    (sample_workspace / ".gitignore").write_text("[z-a]*.log\n", encoding="utf-8")
    result = codesieve("index", str(sample_workspace), "--model", str(tiny_model), "-q")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "[z-a]*.log" in line]
    assert warnings == [
        f"codesieve: {sample_workspace / '.gitignore'}:1: skipped '[z-a]*.log', not a valid pattern "
        "(bad character range z-a), as git does"
    ], result.stderr


def test_errors_say_what_to_do(sample_workspace: Path, tmp_path: Path, index_dir: Path) -> None:
    missing = codesieve("search", "x", str(sample_workspace), "--model", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "--model" in missing.stderr
    bad = codesieve("similar", "sample.py", "--model", str(tmp_path / "nope"))
    assert bad.returncode == 2 and "FILE:LINE" in bad.stderr
    for command in ("index", "search", "similar", "status", "serve"):
        helped = codesieve(command, "--help")
        assert helped.returncode == 0 and "usage: codesieve" in helped.stdout


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--threads", "0", "threads must be an integer from 1 to 256"),
        ("--max-file-size", "-5", "maxFileSize must"),
    ],
)
def test_an_invalid_setting_flag_is_an_error_that_names_it(
    sample_workspace: Path, index_dir: Path, flag: str, value: str, says: str
) -> None:
    result = codesieve("index", str(sample_workspace), flag, value, "-q")
    assert result.returncode == 2 and f"codesieve: {flag}: {says}" in result.stderr
    assert "Traceback" not in result.stderr


def assert_search_loads_no_module(arguments: list[str], loaded: str) -> None:
    """`main(['search', *arguments])` in a fresh interpreter exits 0 and leaves no module `name` of
    `sys.modules` for which the expression `loaded` holds."""
    script = (
        "import sys\n"
        "from codesieve.server.cli import main\n"
        f"assert main(['search', *{arguments!r}]) == 0\n"
        f"loaded = [name for name in sys.modules if {loaded}]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_search_never_imports_torch(sample_workspace: Path, tiny_model: Path, index_dir: Path) -> None:
    assert_search_loads_no_module(
        ["parse config", str(sample_workspace), "--model", str(tiny_model), "-q"],
        "name.split('.')[0] in ('torch', 'transformers') or name.startswith('codesieve.trainer')"
        " or name.startswith('codesieve.export')",
    )


def test_a_search_that_parses_nothing_loads_no_grammar(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    (sample_workspace / "util.c").write_text("int add(int a, int b) { return a + b; }\n", encoding="utf-8")
    assert codesieve("index", str(sample_workspace), "--model", str(tiny_model), "-q").returncode == 0
    assert_search_loads_no_module(
        ["add two numbers", str(sample_workspace), "--model", str(tiny_model), "--no-update", "-q"],
        "name.startswith('tree_sitter_')",
    )


def test_shipped_default_model_loads_and_searches(sample_workspace: Path, index_dir: Path) -> None:
    folder = ModelFolder.load(default_model_dir())  # verifies every sha256 in the card
    assert folder.card.quantization.startswith("int8") and folder.card.dimension == 384
    result = codesieve("search", "load settings from a json file", str(sample_workspace), "--json", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hits"]


@pytest.mark.parametrize("location", ["sample.py:0", "sample.py:x", ":3"])
def test_bad_locations(location: str, tiny_model: Path) -> None:
    result = codesieve("similar", location, "--model", str(tiny_model))
    assert result.returncode == 2 and "FILE:LINE" in result.stderr


def test_permission_denied_files_and_folders_are_skipped_and_counted(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    """Real EACCES: as root, the run drops CAP_DAC_OVERRIDE so file modes apply to it too."""
    secret = sample_workspace / "secret.py"
    secret.write_text("def hidden():\n    return 1\n")
    locked = sample_workspace / "locked"
    locked.mkdir()
    (locked / "inner.py").write_text("def inner():\n    return 2\n")
    secret.chmod(0)
    locked.chmod(0)
    command = [
        sys.executable,
        "-m",
        "codesieve.server.cli",
        "index",
        str(sample_workspace),
        "--model",
        str(tiny_model),
    ]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert "10 files (10 new or changed" in result.stdout
    assert "2 unreadable" in result.stdout


DECORATED = """import pytest


@pytest.mark.parametrize(
    "left, right",
    [(1, 2), (3, 4)],
)
@pytest.mark.slow
def test_adds(left, right):
    assert left + right > 0
"""


def test_preview_of_a_function_with_a_multi_line_decorator_is_its_def_line(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    (sample_workspace / "test_decorated.py").write_text(DECORATED)
    result = codesieve(
        "search", DECORATED, str(sample_workspace), "--json", "--model", str(tiny_model), "-q", "--no-rerank"
    )
    assert result.returncode == 0, result.stderr
    hit = next(hit for hit in json.loads(result.stdout)["hits"] if hit["name"] == "test_adds")
    assert hit["start_line"] == 4 and hit["preview"] == "def test_adds(left, right):"


def test_status_of_a_folder_never_indexed_creates_nothing(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    before = sorted(index_dir.rglob("*"))
    status = codesieve("status", str(sample_workspace), "--model", str(tiny_model))
    assert status.returncode == 0, status.stderr
    assert "none yet" in status.stdout and "codesieve index" in status.stdout
    as_json = json.loads(
        codesieve("status", str(sample_workspace), "--json", "--model", str(tiny_model)).stdout
    )
    assert as_json["indexed"] is False and as_json["chunks"] == 0
    assert sorted(index_dir.rglob("*")) == before


@pytest.mark.parametrize("limit", ["-3", "0", "1001", "ten"])
def test_a_limit_that_is_not_a_count_of_hits_is_refused(
    sample_workspace: Path, tiny_model: Path, index_dir: Path, limit: str
) -> None:
    result = codesieve("search", "x", str(sample_workspace), "--limit", limit, "--model", str(tiny_model))
    assert result.returncode == 2 and "--limit" in result.stderr and result.stdout == ""


def test_a_long_query_is_answered_quickly_and_says_it_was_cut(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    model = ["--model", str(tiny_model), "-q"]
    assert codesieve("index", str(sample_workspace), *model).returncode == 0
    for query in ("x" * 10_000, "read the config file " * 500, "a.b " * 2_500):
        started = time.perf_counter()
        result = codesieve("search", query, str(sample_workspace), "--json", "--no-update", *model)
        assert result.returncode == 0, result.stderr
        assert time.perf_counter() - started < 10
        stats = json.loads(result.stdout)["stats"]
        words = len(query.split())
        assert ("queryCut" in stats) == (words > 100), (query[:20], stats)  # one [UNK] for 10,000 x
    plain = codesieve("search", "read the config file " * 500, str(sample_workspace), "--no-update", *model)
    assert "only its first" in plain.stderr


def test_similar_past_the_last_line_says_how_many_lines_the_file_has(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    lines = len((sample_workspace / "sample.py").read_text(encoding="utf-8").splitlines())
    result = codesieve(
        "similar",
        f"{sample_workspace / 'sample.py'}:99999",
        "--root",
        str(sample_workspace),
        "--model",
        str(tiny_model),
        "-q",
    )
    assert (
        result.returncode == 2 and f"sample.py has {lines} lines: line 99999 is past its end" in result.stderr
    )


def test_a_reader_that_leaves_early_gets_no_traceback(
    sample_workspace: Path, tiny_model: Path, index_dir: Path
) -> None:
    """`codesieve search ... | head -1`: the pipe closes under a long output; the command exits quietly."""
    assert codesieve("index", str(sample_workspace), "--model", str(tiny_model), "-q").returncode == 0
    command = [sys.executable, "-m", "codesieve.server.cli", "search", "parse", str(sample_workspace)]
    command += ["--limit", "1000", "--no-update", "--model", str(tiny_model), "--json"]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()  # as head does after its first line
    error = reader.stderr.read().decode()
    assert reader.wait(timeout=120) in (0, 141) and "Traceback" not in error, error
