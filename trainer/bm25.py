"""Okapi BM25 over a fixed list of documents: the lexical baseline of the benchmarks.

For a query q and a document d, with N documents, df(t) the number of documents holding term t,
tf(t, d) its count in d, |d| the length of d in words and avgdl the mean length:

    idf(t)      = log(1 + (N - df(t) + 0.5) / (df(t) + 0.5))          (Lucene's variant, always > 0)
    score(q, d) = sum over the distinct words t of q of
                  idf(t) * tf(t, d) * (k1 + 1) / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))

with k1 = 1.2 and b = 0.75 by default. A word repeated in the query counts once: this reproduces
the benchmarks' published reference numbers exactly (docs/TRAINING.md, "Evaluation protocol"), where
counting each occurrence (as rank_bm25 does) gives CSN Ruby test MRR 0.475 instead of 0.489.
Documents and queries are split into words by `split_identifiers`. The index is a term-major
sparse matrix (CSR by term) of precomputed per-(term, document) weights, so a query costs one numpy
scatter-add per query word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from codesieve.server.index.lexical import split_identifiers

Tokenizer = Callable[[str], list[str]]


class BM25:
    """A BM25 index over `documents`; `scores(query)` gives one score per document, in order."""

    def __init__(
        self,
        documents: Sequence[str],
        k1: float = 1.2,
        b: float = 0.75,
        tokenize: Tokenizer = split_identifiers,
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        self.tokenize = tokenize
        self.num_documents = len(documents)
        self.vocabulary: dict[str, int] = {}
        term_ids: list[int] = []
        document_ids: list[int] = []
        term_counts: list[int] = []
        lengths = np.zeros(self.num_documents, dtype=np.float64)
        for document_id, document in enumerate(documents):
            words = tokenize(document)
            lengths[document_id] = len(words)
            for word, count in Counter(words).items():
                term_ids.append(self.vocabulary.setdefault(word, len(self.vocabulary)))
                document_ids.append(document_id)
                term_counts.append(count)
        self.document_lengths = lengths
        self.average_length = float(lengths.mean()) if self.num_documents else 0.0

        terms = np.asarray(term_ids, dtype=np.int64)
        order = np.argsort(terms, kind="stable")  # term-major, documents ascending within a term
        self.document_frequency = np.bincount(terms, minlength=len(self.vocabulary)).astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(self.document_frequency)]).astype(np.int64)
        self.posting_documents = np.asarray(document_ids, dtype=np.int64)[order]
        tf = np.asarray(term_counts, dtype=np.float64)[order]
        # Only documents with at least one word appear in postings, so average_length > 0 here.
        length_norm = 1.0 - b + b * lengths[self.posting_documents] / max(self.average_length, 1e-12)
        idf = np.log1p((self.num_documents - self.document_frequency + 0.5) / (self.document_frequency + 0.5))
        self.idf = idf
        self.posting_weights = idf[terms[order]] * tf * (k1 + 1.0) / (tf + k1 * length_norm)

    def scores(self, query: str) -> npt.NDArray[np.float64]:
        """Return the BM25 score of every document for `query`, shape (N,)."""
        scores = np.zeros(self.num_documents, dtype=np.float64)
        self._accumulate(query, scores)
        return scores

    def score_matrix(self, queries: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return BM25 scores for a batch of queries, shape (Q, N); row i equals `scores(queries[i])`.

        Holds Q x N float64 values: for large batches call it on chunks of queries.
        """
        matrix = np.zeros((len(queries), self.num_documents), dtype=np.float64)
        for row, query in zip(matrix, queries, strict=True):
            self._accumulate(query, row)
        return matrix

    def _accumulate(self, query: str, out: npt.NDArray[np.float64]) -> None:
        """Add each distinct query word's posting weights into `out` (N,), in query order."""
        for word in dict.fromkeys(self.tokenize(query)):
            term = self.vocabulary.get(word)
            if term is None:
                continue
            start, stop = self.indptr[term], self.indptr[term + 1]
            # Document ids are unique within a posting list, so a fancy-index add is exact.
            out[self.posting_documents[start:stop]] += self.posting_weights[start:stop]
