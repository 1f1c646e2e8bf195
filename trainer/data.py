"""Training data: (description, code) pairs on disk, their split, and token batches for torch.

A pairs file is JSONL, one object a line: ``{"id", "query", "code", "language", "path", "name"}``
(what `trainer mine` writes). Tokenisation goes through the runtime's ``TokenEncoder`` so that
training truncates and frames text exactly as search does (64 query tokens, 256 code tokens,
``[CLS] ... [SEP]`` and ``[CLS] q [SEP] c [SEP]``). Batches are padded to their longest member
(dynamic padding); to keep that padding small, examples are grouped by length inside large
shuffled windows and the resulting batches are shuffled again (bucketing).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from codesieve.server.model.encoders import TokenEncoder, pad, with_context

from .benchmarks import Benchmark, CodeRow, Query, load_benchmark

Sequences = list[tuple[list[int], list[int]]]  # (token ids, token types) per example

BUCKET_WINDOW = 50  # batches' worth of examples sorted by length together before cutting batches


CODE_VIEWS = ("bare", "doc")  # what `Pair.code_view` can show
# Where a source archive keeps its project's files: the corpus's paths start inside the archive (an
# sdist's or npm's top folder, a Debian package's install tree); a checkout starts below it.
GO_HOSTS_WITH_OWNER = ("github.com", "gitlab.com", "bitbucket.org", "golang.org")


def workspace_path(path: str) -> str:
    """The path a corpus file has in its project's own checkout, which is what the index sees.

    `requests-2.34.2/src/requests/api.py` -> `src/requests/api.py`; `package/lib/x.js` -> `lib/x.js`;
    Debian trees: `usr/share/gocode/src/github.com/o/r/a.go` -> `a.go`,
    `usr/share/cargo/registry/tokio-1.24.2/src/x.rs` -> `src/x.rs`,
    `usr/share/rubygems-integration/all/gems/rack-3.0/lib/x.rb` -> `lib/x.rb`,
    `usr/lib/ruby/vendor_ruby/sequel/x.rb` -> `lib/sequel/x.rb`."""
    parts = path.split("/")
    if parts[:3] == ["usr", "share", "gocode"] and len(parts) > 4:
        rest = parts[4:]  # after src/: host/owner/repo or host/repo
        return "/".join(rest[3 if rest[0] in GO_HOSTS_WITH_OWNER else 2 :])
    if parts[:4] == ["usr", "share", "cargo", "registry"]:
        return "/".join(parts[5:])
    if parts[:5] == ["usr", "share", "rubygems-integration", "all", "gems"]:
        return "/".join(parts[6:])
    if parts[:4] == ["usr", "lib", "ruby", "vendor_ruby"]:
        return "/".join(["lib", *parts[4:]])
    return "/".join(parts[1:]) if len(parts) > 1 else path


@dataclass(frozen=True)
class Pair:
    """One training or evaluation example: a description and the code it describes."""

    id: str
    query: str
    code: str
    language: str = ""
    path: str = ""
    name: str = ""
    doc_code: str = ""  # the code with the rest of its doc (all but the summary sentence); "" = unknown
    source: str = "docstring"  # where the query came from: docstring (its summary) | test-name

    def code_view(self, view: str, context: Sequence[str] = ()) -> str:
        """The code as training sees it: "bare" (no doc) or "doc" (the rest of the doc kept), after the
        line of `context` the index would put before it (`encoders.with_context`)."""
        code = (self.doc_code or self.code) if view == "doc" else self.code
        return with_context(code, context, workspace_path(self.path), self.name) if context else code


def read_pairs(path: Path) -> list[Pair]:
    """Pairs from a JSONL file; ValueError naming the line for a malformed row."""
    pairs: list[Pair] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pairs.append(
                    Pair(
                        id=str(row.get("id", number)),
                        query=str(row["query"]),
                        code=str(row["code"]),
                        language=str(row.get("language", "")),
                        path=str(row.get("path", "")),
                        name=str(row.get("name", "")),
                        doc_code=str(row.get("doc_code", "")),
                        source=str(row.get("source", "docstring")),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
                raise ValueError(
                    f"{path}:{number}: not a pair ({error}); each line needs a JSON object "
                    'with "query" and "code" (see `trainer mine`)'
                ) from error
    return pairs


def write_pairs(path: Path, pairs: Iterable[Pair]) -> None:
    """Write pairs as JSONL through a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    os.replace(temporary, path)


def split_by_file(
    pairs: Sequence[Pair], held_out: float = 0.1, seed: int = 0, at_most: float = 1.0
) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out): whole files go to one side, about `held_out` of the pairs to the second.

    Functions of one file share names, helpers and style, so a random split by pair would leak;
    splitting by file keeps the held-out score honest. Files are shuffled with `seed` and taken
    into the held-out side until it holds at least `held_out` of the pairs (at least one file,
    never all of them when there are two or more), skipping a file that would take it past
    `at_most` of them (a big file would otherwise overshoot).
    """
    files = sorted({pair.path for pair in pairs})
    random.Random(seed).shuffle(files)
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.path] = counts.get(pair.path, 0) + 1
    target, cap = held_out * len(pairs), at_most * len(pairs)
    chosen: set[str] = set()
    taken = 0
    for path in files:
        if taken >= target or len(chosen) == len(files) - 1:
            break
        if taken + counts[path] > cap:
            continue
        chosen.add(path)
        taken += counts[path]
    train = [pair for pair in pairs if pair.path not in chosen]
    evaluation = [pair for pair in pairs if pair.path in chosen]
    return train, evaluation


def tokenize(tokens: TokenEncoder, texts: Sequence[str], max_tokens: int) -> Sequences:
    """`[CLS] text [SEP]` sequences, each text cut to `max_tokens` tokens (as the runtime does)."""
    return [tokens.single(ids) for ids in tokens.ids(texts, max_tokens)]


def to_tensors(sequences: Sequence[tuple[list[int], list[int]]], device: torch.device) -> dict[str, Tensor]:
    """Right-pad to the longest member: input_ids, attention_mask, token_type_ids as int64 tensors."""
    return {name: torch.from_numpy(array).to(device) for name, array in pad(sequences).items()}


def bucketed_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Indices of one epoch cut into batches of similar length, in a random order fixed by `seed`.

    All indices are shuffled, cut into windows of ``BUCKET_WINDOW * batch_size``, each window is
    sorted by length and cut into batches, and the batches are shuffled. Only the last batch of
    the epoch may be smaller; a remainder of one example is dropped (in-batch losses need two).
    """
    generator = random.Random(seed)
    order = list(range(len(lengths)))
    generator.shuffle(order)
    window = BUCKET_WINDOW * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        part = sorted(order[start : start + window], key=lambda index: lengths[index])
        batches.extend(part[first : first + batch_size] for first in range(0, len(part), batch_size))
    generator.shuffle(batches)
    return [batch for batch in batches if len(batch) > 1]


def resolve_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def embed(
    model: torch.nn.Module,
    sequences: Sequence[tuple[list[int], list[int]]],
    device: torch.device,
    batch_size: int = 64,
) -> Tensor:
    """Outputs of a DualEncoder (or any model over one sequence) for every sequence, (N, D) on CPU.

    Runs in eval mode under no_grad, length-sorted so that padding stays small; restores the
    model's training mode afterwards.
    """
    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda index: len(sequences[index][0]))
    parts: list[Tensor] = []
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = to_tensors([sequences[index] for index in order[start : start + batch_size]], device)
            parts.append(
                model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).float().cpu()
            )
    model.train(was_training)
    if not parts:
        return torch.zeros(0)
    output = torch.cat(parts)
    result = torch.empty_like(output)
    result[torch.tensor(order)] = output
    return result


def pairs_as_benchmark(pairs: Sequence[Pair], name: str = "pairs") -> Benchmark:
    """Held-out pairs as a benchmark: each description is a query, all their codes the pool."""
    queries = [Query(id=pair.id, text=pair.query, code_id=index) for index, pair in enumerate(pairs)]
    codebase = [CodeRow(id=index, code=pair.code, language=pair.language) for index, pair in enumerate(pairs)]
    return Benchmark(queries=queries, codebase=codebase, name=name)


def load_eval_set(spec: str) -> Benchmark:
    """A benchmark named "cosqa/dev" (name/split under shared/benchmarks) or a pairs JSONL file."""
    path = Path(spec)
    if path.is_file():
        return pairs_as_benchmark(read_pairs(path), name=path.stem)
    if "/" in spec and not path.suffix:
        name, split = spec.split("/", 1)
        return load_benchmark(name, split)
    raise FileNotFoundError(
        f"{spec} is neither a pairs file nor a benchmark such as cosqa/dev or csn_ruby/valid"
    )
