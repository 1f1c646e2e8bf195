"""Shared fixtures: a tiny random-weight BERT with its own tokenizer, exported to a real model folder.

No test downloads anything or uses the shipped weights: the tokenizer is trained here on the test
data, the BERT is random (seeded), and `export/` turns both into the same kind of model folder
the runtime loads in production (ONNX, int8, model card with hashes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "chunking"


def _train_tokenizer(target: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=2000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(SAMPLES.iterdir())]
    tokenizer.train_from_iterator(texts * 3, trainer=trainer)
    tokenizer.save(str(target))


def build_tiny_model(folder: Path, with_ranker: bool = True, seed: int = 0, quantize: bool = True) -> Path:
    """A tiny random BERT retriever (and ranker) exported as a runtime model folder."""
    import torch
    from transformers import BertConfig, BertModel

    from codesieve.export.onnx_export import export_model_folder
    from codesieve.server.model_folder import ModelCard
    from codesieve.trainer.models import CrossEncoder, DualEncoder

    work = folder.parent / f".{folder.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    tokenizer = work / "tokenizer.json"
    _train_tokenizer(tokenizer)
    from tokenizers import Tokenizer

    config = BertConfig(
        vocab_size=Tokenizer.from_file(str(tokenizer)).get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    torch.manual_seed(seed)
    retriever = DualEncoder(BertModel(config, add_pooling_layer=False))
    ranker = CrossEncoder(BertModel(config, add_pooling_layer=False)) if with_ranker else None
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


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
