"""A model folder is checked completely when it is loaded, since a copied or half-written folder must not be searched with: its card field by field, its
files' permissions, and what its graphs output, before any index is opened. Each problem is one
message naming the file and the field, never a traceback and never a wiped index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from indexcheck import open_workspace

from codesieve.server.model.folder import (
    CARD_NAME,
    DigestCache,
    ModelCard,
    ModelError,
    ModelFolder,
    write_card,
)


def copy_model(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def rewrite_card(folder: Path, **changes: Any) -> None:
    card = json.loads((folder / CARD_NAME).read_text())
    (folder / CARD_NAME).write_text(json.dumps({**card, **changes}))


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ([], "JSON object"),
        (None, "JSON object"),
        ("x", "JSON object"),
        ({"files": "abc"}, "`files`"),
        ({"max_query_tokens": None}, "`max_query_tokens`"),
        ({"max_code_tokens": "256"}, "`max_code_tokens`"),
        ({"dimension": 0}, "`dimension`"),
        ({"dimension": True}, "`dimension`"),
        ({"name": None}, "`name`"),
    ],
)
def test_an_invalid_card_names_its_file_and_field(
    tiny_model: Path, tmp_path: Path, card: Any, field: str
) -> None:
    folder = copy_model(tiny_model, tmp_path / "model")
    if isinstance(card, dict):
        rewrite_card(folder, **card)
    else:
        (folder / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(ModelError) as caught:
        ModelFolder.load(folder)
    assert str(folder / CARD_NAME) in str(caught.value) and field in str(caught.value), caught.value


def test_a_card_without_a_required_field_says_which(tiny_model: Path, tmp_path: Path) -> None:
    folder = copy_model(tiny_model, tmp_path / "model")
    card = json.loads((folder / CARD_NAME).read_text())
    del card["dimension"]
    (folder / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="`dimension` is missing"):
        ModelFolder.load(folder)


def test_a_wrong_dimension_fails_at_load_and_leaves_the_index_as_it_was(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path, index_dir: Path
) -> None:
    workspace = open_workspace(sample_workspace, tiny_model)
    workspace.sync()
    chunks, model_id = workspace.store.chunk_count(), workspace.store.get_meta("model_id")
    snapshots = sorted(path.name for path in workspace.folder.glob("vectors-*.hnsw"))
    workspace.close()

    wrong = copy_model(tiny_model, tmp_path / "wrong")
    rewrite_card(wrong, dimension=128)
    with pytest.raises(ModelError, match=r"shape \(2, 32\).*`dimension: 128`"):
        open_workspace(sample_workspace, wrong)
    again = open_workspace(sample_workspace, tiny_model)
    assert again.store.chunk_count() == chunks and again.store.get_meta("model_id") == model_id
    assert sorted(path.name for path in again.folder.glob("vectors-*.hnsw")) == snapshots
    assert again.loaded_how.startswith("loaded vectors-")


def test_a_ranker_with_the_wrong_output_shape_fails_at_load(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path, index_dir: Path
) -> None:
    folder = copy_model(tiny_model, tmp_path / "model")
    shutil.copy(folder / "retriever.onnx", folder / "ranker.onnx")  # (B, 32) where (B,) is due
    write_card(folder, ModelCard.from_json(json.loads((folder / CARD_NAME).read_text())))
    with pytest.raises(ModelError, match=r"ranker.onnx outputs shape \(2, 32\)"):
        open_workspace(sample_workspace, folder)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv")
@pytest.mark.parametrize("name", ["tokenizer.json", "retriever.onnx", "ranker.onnx", CARD_NAME])
def test_an_unreadable_model_file_is_named(
    sample_workspace: Path, tiny_model: Path, tmp_path: Path, index_dir: Path, name: str
) -> None:
    """Real EACCES: as root the CLI runs without CAP_DAC_OVERRIDE, so the file's mode applies."""
    folder = copy_model(tiny_model, tmp_path / "model")
    (folder / name).chmod(0)
    command = [
        sys.executable,
        "-m",
        "codesieve.server.cli",
        "status",
        str(sample_workspace),
        "--model",
        str(folder),
    ]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"Cannot read {folder / name}" in result.stderr and "permissions" in result.stderr
    assert not index_dir.exists()


def test_remembered_digests_are_used_until_a_file_changes_even_at_the_same_size_and_mtime(
    tiny_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    digests_file = tmp_path / "digests.json"
    learned = DigestCache(digests_file)
    first = ModelFolder.load(model, digests=learned)
    learned.save()
    remembered = json.loads(digests_file.read_text())
    assert {Path(path).name for path in remembered} == {"retriever.onnx", "ranker.onnx", "tokenizer.json"}
    cache = DigestCache(digests_file)
    assert ModelFolder.load(model, digests=cache).model_id == first.model_id and not cache.changed  # no hash
    retriever = model / "retriever.onnx"
    stat = retriever.stat()
    data = bytearray(retriever.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size, and the same mtime put back: only the ctime tells
    retriever.write_bytes(bytes(data))
    os.utime(retriever, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ModelError, match="does not match the sha256 in its model card"):
        ModelFolder.load(model, digests=DigestCache(digests_file))
    stale = DigestCache(digests_file)
    stale.entries[str(tmp_path / "gone.hnsw")] = [1, 2, 3, 4, "0" * 64]  # a snapshot replaced since
    stale.sha256(retriever)  # learns the damaged file's digest, so it saves
    stale.save()
    assert str(tmp_path / "gone.hnsw") not in json.loads(digests_file.read_text())
    digests_file.write_text("not json")  # a damaged digest file costs a hash, nothing else
    shutil.copy(tiny_model / "retriever.onnx", retriever)
    assert ModelFolder.load(model, digests=DigestCache(digests_file)).model_id == first.model_id
