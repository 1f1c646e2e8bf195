"""Model folders: what the runtime loads, and the model card that describes them.

A model folder holds `retriever.onnx`, optionally `ranker.onnx`, `tokenizer.json` and
`model-card.json`. The card records the base model, the maximum lengths, the pooling, the
quantisation, how the models were trained, what they scored, the first stage's weight on the
lexical score (`first_stage.lexical_weight`, chosen on the dev splits by bench/hybrid_weight.py;
absent: dense only), what the retriever reads of a chunk besides its code (`code_context`: a first
line with its path and qualified name), and the sha256 of every file. The runtime checks those hashes
on load, and the index keys itself on the retriever's hash and on what it embeds (`model_id`), so a
changed model or embedding recipe rebuilds the index instead of mixing vectors from two.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

CARD_NAME = "model-card.json"
RETRIEVER_FILE = "retriever.onnx"
RANKER_FILE = "ranker.onnx"
TOKENIZER_FILE = "tokenizer.json"
FIRST_STAGE = "first_stage"  # card key: {"lexical_weight": w, and how w was chosen}
CODE_CONTEXT_PARTS = ("path", "name")  # what `code_context` may put on the line before a chunk's code


class ModelError(Exception):
    """A model folder is missing, incomplete or corrupt; the message says what to do."""


def default_model_dir() -> Path:
    """The model folder shipped inside the package."""
    return Path(str(resources.files("codesieve") / "models" / "default"))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SearchSettings:
    """Every setting of how a search ranks, in one place; the cascade gets them once (`ModelCard.search`).

    The two weights are chosen on the dev splits for each model and stored on its card; the other two
    are the rules' own settings, the same for every model."""

    lexical_weight: float = 0.0  # w: (1 - w) * z(cosine) + w * z(BM25) in the first stage (card: first_stage)
    fusion_weight: float = 0.0  # a reranked hit scores `ranker + fusion_weight * first-stage score`
    # How far test code moves down, in standard deviations of the fused score: a test chunk ranks ahead
    # of an implementation only when it is clearly more relevant. Set on requests 2.32.3's own tests
    # (bench/test_share.py), never on the benchmarks, which hold no tests.
    test_penalty: float = 1.0
    # BM25 scores are read for the lexical top this many (the top N of them become candidates): a dense
    # candidate below them counts as holding no query word. SQLite scores every match either way; reading
    # scores for chosen chunks costs a query each (FTS5 cannot look up a list of rows at once).
    lexical_depth: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 <= self.lexical_weight <= 1.0:
            raise ValueError(f"lexical_weight must lie in [0, 1], got {self.lexical_weight}")


@dataclass(frozen=True)
class ModelCard:
    """The parsed `model-card.json`; unknown keys are kept in `extra`."""

    name: str
    base_model: str
    dimension: int
    max_query_tokens: int = 64
    max_code_tokens: int = 256
    pooling: str = "mean"
    quantization: str = "none"
    fusion_weight: float = 0.0  # a reranked hit scores `ranker + fusion_weight * first-stage score` (dev)
    code_context: tuple[str, ...] = ()  # parts of CODE_CONTEXT_PARTS written before each chunk's code
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The card as written to disk."""
        known = {
            "name": self.name,
            "base_model": self.base_model,
            "dimension": self.dimension,
            "max_query_tokens": self.max_query_tokens,
            "max_code_tokens": self.max_code_tokens,
            "pooling": self.pooling,
            "quantization": self.quantization,
            "fusion_weight": self.fusion_weight,
            **({"code_context": list(self.code_context)} if self.code_context else {}),
            "files": self.files,
            "training": self.training,
            "scores": self.scores,
        }
        return {**self.extra, **known}

    @property
    def embedding_recipe(self) -> str:
        """What the retriever reads of a chunk, as a short key: `t128` (code cut at 128 tokens), then the
        context parts, `t256-path+name`. Part of `ModelFolder.model_id`."""
        return "-".join(
            [f"t{self.max_code_tokens}", *(["+".join(self.code_context)] if self.code_context else [])]
        )

    @property
    def lexical_weight(self) -> float:
        """The first stage's weight on the lexical score, in [0, 1]; 0 (dense only) when absent."""
        return float(self.extra.get(FIRST_STAGE, {}).get("lexical_weight", 0.0))

    @property
    def search(self) -> SearchSettings:
        """How search ranks with this model: the card's two weights, and the rules' fixed settings."""
        return SearchSettings(lexical_weight=self.lexical_weight, fusion_weight=self.fusion_weight)

    @classmethod
    def from_json(cls, data: Any) -> ModelCard:
        """Parse a card; CardError names the first field that is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise CardError(f"the card must be a JSON object, got {_shown(data)}")
        values: dict[str, Any] = {}
        for name, (kind, required) in CARD_FIELDS.items():
            if name not in data:
                if required:
                    raise CardError(f"`{name}` is missing")
                continue
            value = data[name]
            if not _fits(value, kind):
                raise CardError(f"`{name}` must be {CARD_KINDS[kind]}, got {_shown(value)}")
            values[name] = tuple(value) if kind == "context" else value
        extra = {key: value for key, value in data.items() if key not in CARD_FIELDS}
        first_stage = extra.get(FIRST_STAGE, {})
        weight = first_stage.get("lexical_weight", 0.0) if isinstance(first_stage, dict) else None
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise CardError(
                f"`{FIRST_STAGE}.lexical_weight` must be a number from 0 to 1, got {_shown(weight)}"
            )
        return cls(**values, extra=extra)


class CardError(ValueError):
    """A model card field that is missing or of the wrong type; the message names the field."""


# field -> (kind, required); kinds are checked by `_fits`
CARD_FIELDS: dict[str, tuple[str, bool]] = {
    "name": ("text", True),
    "base_model": ("text", True),
    "dimension": ("count", True),
    "max_query_tokens": ("count", False),
    "max_code_tokens": ("count", False),
    "pooling": ("text", False),
    "quantization": ("text", False),
    "fusion_weight": ("weight", False),
    "code_context": ("context", False),
    "files": ("hashes", False),
    "training": ("object", False),
    "scores": ("object", False),
}
CARD_KINDS = {
    "text": "a string",
    "count": "a positive integer",
    "weight": "a number >= 0",
    "hashes": "an object of file name -> sha256 strings",
    "context": f"a list of distinct names from {list(CODE_CONTEXT_PARTS)}",
    "object": "an object",
}


def _fits(value: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if kind == "weight":
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if kind == "context":
        return (
            isinstance(value, list)
            and len(set(value)) == len(value)
            and set(value) <= set(CODE_CONTEXT_PARTS)
        )
    if kind == "hashes":
        return isinstance(value, dict) and all(isinstance(item, str) for item in value.values())
    return isinstance(value, dict)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | list | dict | None) else repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def write_card(folder: Path, card: ModelCard) -> None:
    """Write the card atomically, with the sha256 of every model file in the folder filled in."""
    files = {
        name: sha256_file(folder / name)
        for name in (RETRIEVER_FILE, RANKER_FILE, TOKENIZER_FILE)
        if (folder / name).exists()
    }
    data = {**card.to_json(), "files": files}
    temporary = folder / (CARD_NAME + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    temporary.replace(folder / CARD_NAME)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelError(f"Cannot read {path} ({error.strerror}): check the file's permissions.") from error


def _sha256(path: Path, digests: DigestCache | None = None) -> str:
    try:
        return sha256_of(path, digests)
    except OSError as error:
        raise ModelError(f"Cannot read {path} ({error.strerror}): check the file's permissions.") from error


def stat_key(path: Path) -> list[int]:
    """What tells that a file was written since: (size, mtime, ctime, inode). Any write changes the
    ctime, which no program can set back, as git's index relies on."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def sha256_of(path: Path, digests: DigestCache | None = None) -> str:
    """The file's sha256: remembered by `digests` when given, else read now."""
    return digests.sha256(path) if digests is not None else sha256_file(path)


class DigestCache:
    """sha256 digests of model files remembered by (path, size, mtime, ctime, inode), as git's index
    remembers what it has hashed: hashing the retriever costs 35 ms of every command's start. Kept in
    a JSON file beside the indexes; a file whose stat changed (any write changes its ctime) is hashed
    again. The file is written only when it learned something, and losing it costs one hash."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            self.entries: dict[str, list[Any]] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}
        self.changed = False

    def sha256(self, path: Path) -> str:
        key = stat_key(path)
        known = self.entries.get(str(path.resolve()))
        if isinstance(known, list) and len(known) == 5 and known[:4] == key:
            return str(known[4])
        digest = sha256_file(path)
        self.entries[str(path.resolve())] = [*key, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        """Write what was learned (atomically); a folder that cannot be written keeps nothing."""
        if not self.changed:
            return
        # files gone since (a snapshot replaced by a newer one) are forgotten, so the file stays small
        self.entries = {name: entry for name, entry in self.entries.items() if Path(name).exists()}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(self.entries), encoding="utf-8")
            temporary.replace(self.file)
        except OSError:
            pass


@dataclass(frozen=True)
class ModelFolder:
    """A verified model folder: paths to its files and its card."""

    path: Path
    card: ModelCard
    retriever_sha256: str

    @property
    def retriever_path(self) -> Path:
        return self.path / RETRIEVER_FILE

    @property
    def ranker_path(self) -> Path | None:
        ranker = self.path / RANKER_FILE
        return ranker if ranker.exists() else None

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_FILE

    @property
    def model_id(self) -> str:
        """What the index keys itself on: the retriever's hash, its dimension and what it embeds."""
        return f"{self.retriever_sha256[:16]}-{self.card.dimension}-{self.card.embedding_recipe}"

    @classmethod
    def load(cls, path: Path, verify: bool = True, digests: DigestCache | None = None) -> ModelFolder:
        """Open and check a model folder; raises ModelError with a fix when it is unusable. `digests`
        remembers the files' hashes between processes (the caller saves it)."""
        path = Path(path).expanduser()
        fix = (
            "Point the `model` setting (or --model) at a folder made by `trainer export`, "
            "or leave it unset to use the shipped default model."
        )
        if not path.is_dir():
            raise ModelError(f"Model folder {path} does not exist. {fix}")
        for required in (CARD_NAME, RETRIEVER_FILE, TOKENIZER_FILE):
            if not (path / required).is_file():
                raise ModelError(f"Model folder {path} has no {required}. {fix}")
        card_path = path / CARD_NAME
        try:
            card = ModelCard.from_json(json.loads(_read(card_path).decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as error:
            raise ModelError(f"{card_path} is not a valid model card: {error}. {fix}") from error
        actual = {RETRIEVER_FILE: _sha256(path / RETRIEVER_FILE, digests)}
        for name in (RANKER_FILE, TOKENIZER_FILE):
            if (path / name).exists():
                actual[name] = _sha256(path / name, digests)
        retriever_sha = actual[RETRIEVER_FILE]
        if verify:
            for name, expected in card.files.items():
                if name in actual and actual[name] != expected:
                    raise ModelError(
                        f"{path / name} does not match the sha256 in its model card: the file is "
                        f"corrupt or was replaced. Re-export the model folder. {fix}"
                    )
        return cls(path=path, card=card, retriever_sha256=retriever_sha)


def replace_folder(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`, replacing it (the old one is moved aside first, then removed)."""
    old = target.with_name(target.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
