"""The two encoders on ONNX Runtime: a dual encoder (embeddings) and a cross-encoder (pair scores).

Both read a model folder (see `folder.py`). The bundled `tokenizer.json` of the base model
has padding to 128 and truncation baked in; both are turned off here and every sequence is
truncated explicitly to the model card's limits (64 query tokens and 256 code tokens unless the
card says otherwise). Inputs are sorted by length and padded per batch to the longest member, so
short chunks do not pay for long ones.

The retriever graph outputs L2-normalised mean-pooled embeddings `(B, D)`; the ranker graph
outputs one score per pair `(B,)`. Pooling lives in the graph so that the parity check in
`export/` covers exactly what the runtime computes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ..chunk.code_unit import CodeUnit
from ..config import default_onnx_threads
from .folder import CARD_NAME, ModelError, ModelFolder

# A token covers at least one character and rarely more than a dozen in code; cutting the text
# before tokenising keeps a 50,000-line function from costing a full tokenisation.
CHARS_PER_TOKEN_BOUND = 12
DEFAULT_BATCH_TOKENS = (
    2048  # padded tokens per ONNX call: larger batches cost memory (the arena keeps the peak), not speed
)
# Lone surrogates (a query argument that is not UTF-8, decoded with surrogateescape; an editor's
# broken text) make the tokenizer raise TypeError: they become U+FFFD, as undecodable file bytes do.
_SURROGATES = re.compile("[\ud800-\udfff]")


def code_text(chunk: CodeUnit, context: Sequence[str]) -> str:
    """The text the retriever embeds for a chunk: its code, after one line of the context the card asks
    for (`code_context`: the path, the qualified name; a window has no name to give)."""
    return with_context(chunk.text, context, chunk.path, "" if chunk.kind == "window" else chunk.name)


def with_context(code: str, context: Sequence[str], path: str, name: str) -> str:
    """`code` after one line of the `context` parts ("path", "name") that are not empty; the one
    format of that line, for the index and for training alike."""
    values = {"path": path, "name": name}
    header = " ".join(value for part in context if (value := values[part]))
    return f"{header}\n{code}" if header else code


class TokenEncoder:
    """Tokenises with padding and truncation off, then truncates and frames explicitly."""

    def __init__(self, tokenizer_path: Path) -> None:
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as error:  # tokenizers raises plain Exception on a bad file
            raise ModelError(f"{tokenizer_path} is not a readable tokenizer.json ({error})") from error
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        cls_id = self.tokenizer.token_to_id("[CLS]")
        sep_id = self.tokenizer.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise ModelError(f"{tokenizer_path} has no [CLS]/[SEP] tokens: a BERT tokenizer is expected")
        self.cls_id, self.sep_id = cls_id, sep_id

    def ids(self, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
        """Token ids without special tokens, each cut to `max_tokens`."""
        clipped = [_SURROGATES.sub("\ufffd", text[: max_tokens * CHARS_PER_TOKEN_BOUND]) for text in texts]
        encodings = self.tokenizer.encode_batch(clipped, add_special_tokens=False)
        return [encoding.ids[:max_tokens] for encoding in encodings]

    def single(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """`[CLS] ids [SEP]` and its token types."""
        sequence = [self.cls_id, *ids, self.sep_id]
        return sequence, [0] * len(sequence)

    def pair(self, first: list[int], second: list[int]) -> tuple[list[int], list[int]]:
        """`[CLS] first [SEP] second [SEP]` and its token types."""
        sequence = [self.cls_id, *first, self.sep_id, *second, self.sep_id]
        return sequence, [0] * (len(first) + 2) + [1] * (len(second) + 1)


def length_sorted_batches(lengths: Sequence[int], batch_tokens: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length whose padded size stays under a token budget."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    batch: list[int] = []
    for index in order:
        longest = max(lengths[index], 1)  # sorted ascending: the newest member is the longest
        if batch and longest * (len(batch) + 1) > batch_tokens:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def pad(sequences: Sequence[tuple[list[int], list[int]]]) -> dict[str, NDArray[np.int64]]:
    """Right-pad a batch to its longest member: input_ids, attention_mask, token_type_ids."""
    width = max(len(ids) for ids, _ in sequences)
    input_ids = np.zeros((len(sequences), width), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    token_type_ids = np.zeros_like(input_ids)
    for row, (ids, types) in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        token_type_ids[row, : len(types)] = types
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def open_session(path: Path, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime CPU session with a fixed thread count; ModelError if the file is unusable."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path} could not be loaded by ONNX Runtime ({error}). Re-export it.") from error


class _Runner:
    """Runs one ONNX graph on padded batches, feeding only the inputs the graph declares."""

    def __init__(self, path: Path, threads: int) -> None:
        self.session = open_session(path, threads)
        self.input_names = {node.name for node in self.session.get_inputs()}

    def run(self, sequences: Sequence[tuple[list[int], list[int]]]) -> NDArray[np.float32]:
        feed = {name: array for name, array in pad(sequences).items() if name in self.input_names}
        output = self.session.run(None, feed)[0]
        return np.asarray(output, dtype=np.float32)

    def probe(self, sequences: Sequence[tuple[list[int], list[int]]], path: Path) -> NDArray[np.float32]:
        """Run the graph once on a tiny batch at load time, so a bad model fails here, not in a search."""
        try:
            output = self.run(sequences)
        except Exception as error:  # onnxruntime's own exception types: missing inputs, bad shapes
            raise ModelError(f"{path} fails on a test input ({error}). Re-export it.") from error
        if not np.all(np.isfinite(output)):
            raise ModelError(f"{path} outputs NaN or infinite values on a test input. Re-export it.")
        return output


class OnnxRetriever:
    """Embeds queries and code chunks: `(N, D)` float32, L2-normalised."""

    def __init__(self, folder: ModelFolder, threads: int | None = None) -> None:
        self.card = folder.card
        self.dimension = folder.card.dimension
        self.tokens = TokenEncoder(folder.tokenizer_path)
        self.runner = _Runner(folder.retriever_path, threads or default_onnx_threads())
        shape = self.runner.probe([self.tokens.single([])] * 2, folder.retriever_path).shape
        if shape != (2, self.dimension):
            raise ModelError(
                f"{folder.retriever_path} outputs vectors of shape {shape} for 2 inputs, but its model card "
                f"{folder.path / CARD_NAME} says `dimension: {self.dimension}`, so (2, {self.dimension}) "
                "was expected. Re-export the model folder."
            )

    def encode_code(
        self, texts: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> NDArray[np.float32]:
        """Embeddings of code chunks, truncated to the card's `max_code_tokens`."""
        return self._encode(texts, self.card.max_code_tokens, batch_tokens)

    def encode_chunks(self, chunks: Sequence[CodeUnit]) -> NDArray[np.float32]:
        """Embeddings of chunks as the card's recipe reads them (`code_text`)."""
        return self.encode_code([code_text(chunk, self.card.code_context) for chunk in chunks])

    def query_is_cut(self, query: str) -> bool:
        """Whether the query holds more tokens than the model reads (`max_query_tokens`)."""
        limit = self.card.max_query_tokens
        return len(self.tokens.ids([query], limit + 1)[0]) > limit

    def encode_queries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embeddings of natural-language queries, truncated to `max_query_tokens`."""
        return self._encode(texts, self.card.max_query_tokens, DEFAULT_BATCH_TOKENS)

    def _encode(self, texts: Sequence[str], max_tokens: int, batch_tokens: int) -> NDArray[np.float32]:
        output = np.zeros((len(texts), self.dimension), dtype=np.float32)
        sequences = [self.tokens.single(ids) for ids in self.tokens.ids(texts, max_tokens)]
        for batch in length_sorted_batches([len(ids) for ids, _ in sequences], batch_tokens):
            vectors = self.runner.run([sequences[index] for index in batch])
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            output[batch] = vectors / np.maximum(norms, 1e-12)
        return output


class OnnxRanker:
    """Scores (query, code) pairs jointly: one float per pair, higher is more relevant."""

    def __init__(self, folder: ModelFolder, threads: int | None = None) -> None:
        ranker = folder.ranker_path
        if ranker is None:
            raise ModelError(f"Model folder {folder.path} has no ranker.onnx")
        self.card = folder.card
        self.tokens = TokenEncoder(folder.tokenizer_path)
        self.runner = _Runner(ranker, threads or default_onnx_threads())
        shape = self.runner.probe([self.tokens.pair([], [])] * 2, ranker).shape
        if shape not in ((2,), (2, 1)):
            raise ModelError(
                f"{ranker} outputs shape {shape} for 2 (query, code) pairs; a ranker gives one score per "
                "pair, (2,) or (2, 1). Re-export the model folder, or remove ranker.onnx."
            )

    def score(
        self, query: str, codes: Sequence[str], batch_tokens: int = DEFAULT_BATCH_TOKENS
    ) -> NDArray[np.float32]:
        """Scores of `query` against each code, in the order given."""
        scores = np.zeros(len(codes), dtype=np.float32)
        if not codes:
            return scores
        query_ids = self.tokens.ids([query], self.card.max_query_tokens)[0]
        pairs = [
            self.tokens.pair(query_ids, ids) for ids in self.tokens.ids(codes, self.card.max_code_tokens)
        ]
        for batch in length_sorted_batches([len(ids) for ids, _ in pairs], batch_tokens):
            scores[batch] = self.runner.run([pairs[index] for index in batch]).reshape(-1)
        return scores
