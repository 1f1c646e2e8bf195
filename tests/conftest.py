"""Shared fixtures: a tiny random-weight BERT with its own tokenizer, exported to a real model folder.

No test downloads anything or uses the shipped weights: the tokenizer is trained here on the test
data, the BERT is random (seeded), and `export/` turns both into the same kind of model folder
the runtime loads in production (ONNX, int8, model card with hashes).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

USER_CACHE = pytest.StashKey[tuple[Path, dict[str, int]]]()

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "chunking"


def _write_tokenizer(target: Path) -> None:
    """A WordPiece tokenizer whose vocabulary is built deterministically from the sample files.

    (tokenizers' WordPiece trainer breaks ties by hash order, so it is not reproducible.)
    """
    import re
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    text = " ".join(path.read_text(encoding="utf-8", errors="replace") for path in sorted(SAMPLES.iterdir()))
    words = Counter(re.findall(r"[a-z]+|[0-9]", text.lower()))
    characters = sorted({character for word in words for character in word})
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary += characters + [f"##{character}" for character in characters]
    vocabulary += sorted(set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"))
    vocabulary += [word for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0]))[:1500]]
    vocabulary = list(dict.fromkeys(vocabulary))
    tokenizer = Tokenizer(
        models.WordPiece({token: index for index, token in enumerate(vocabulary)}, unk_token="[UNK]")
    )
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.save(str(target))


def _tiny_bert_config(tokenizer: Path) -> Any:
    from tokenizers import Tokenizer
    from transformers import BertConfig

    return BertConfig(
        vocab_size=Tokenizer.from_file(str(tokenizer)).get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )


def build_tiny_model(folder: Path, with_ranker: bool = True, seed: int = 0, quantize: bool = True) -> Path:
    """A tiny random BERT retriever (and ranker) exported as a runtime model folder."""
    import torch
    from transformers import BertModel

    from codesieve.export.onnx_export import export_model_folder
    from codesieve.server.model.folder import ModelCard
    from codesieve.trainer.models import CrossEncoder, DualEncoder

    work = folder.parent / f".{folder.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = work / "tokenizer.json"
    _write_tokenizer(tokenizer)
    config = _tiny_bert_config(tokenizer)
    torch.manual_seed(seed)
    retriever = DualEncoder(BertModel(config, add_pooling_layer=False))
    ranker = None
    if with_ranker:
        ranker = CrossEncoder(BertModel(config, add_pooling_layer=False))
        torch.nn.init.normal_(ranker.head.weight, std=0.3)  # spread the scores so their order is not noise
    card = ModelCard(name=f"tiny-random-{seed}", base_model="random tiny BERT (tests)", dimension=32)
    export_model_folder(retriever, ranker, tokenizer, folder, card, quantize=quantize)
    shutil.rmtree(work, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model folder with a retriever and a ranker (tiny, random, int8)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model with different weights and no ranker (for model-change tests)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "other", with_ranker=False, seed=1)


@pytest.fixture()
def index_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private index location, so tests never touch the user's cache."""
    folder = tmp_path / "indexes"
    monkeypatch.setenv("CODESIEVE_INDEX_DIR", str(folder))
    return folder


@pytest.fixture()
def sample_workspace(tmp_path: Path) -> Path:
    """A copy of the per-language sample files, as a workspace folder tests may change."""
    root = tmp_path / "workspace"
    shutil.copytree(SAMPLES, root)
    return root


def _user_cache() -> Path:
    """The user's own CodeSieve cache (indexes, embeddings, the TCP token), as the product finds it."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("codesieve"))


def _listing(folder: Path) -> dict[str, int]:
    """Every path under `folder` with its modification time (nothing when it does not exist)."""
    return {str(path): path.lstat().st_mtime_ns for path in folder.rglob("*")} if folder.exists() else {}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # No test may touch the user's folders: the user's cache is recorded here and checked at the end
    # (pytest_sessionfinish), and every process of the run, the tests' own subprocesses included, gets
    # a cache folder of the run's instead, so a test without the index_dir fixture cannot reach it.
    config.stash[USER_CACHE] = (_user_cache(), _listing(_user_cache()))
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="codesieve-test-cache-")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    folder, before = session.config.stash[USER_CACHE]
    after = _listing(folder)
    touched = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    if touched:
        print(f"\nthe tests changed the user's cache {folder}: {', '.join(touched[:5])}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(os.environ["XDG_CACHE_HOME"], ignore_errors=True)


def build_tiny_base_model(folder: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """A tiny random BERT saved like the base weights package: config.json, model.safetensors, tokenizer.json."""
    import torch
    from transformers import BertModel

    folder.mkdir(parents=True, exist_ok=True)
    _write_tokenizer(folder / "tokenizer.json")
    torch.manual_seed(seed)
    config = _tiny_bert_config(folder / "tokenizer.json")
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Torch base weights (tiny, random) for training tests: pass as base_model / --base-model."""
    return build_tiny_base_model(tmp_path_factory.mktemp("base") / "tiny-base")
