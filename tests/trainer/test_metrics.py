"""Retrieval metrics: ranks with ties against the gold, MRR and Recall@k on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from codesieve.trainer.metrics import (
    rank_of_gold,
    rank_of_gold_dot,
    retrieval_metrics,
)


def test_ties_with_the_gold_count_against_it() -> None:
    scores = np.array(
        [
            [0.5, 0.9, 0.5, 0.1],  # gold 0: beaten by 0.9, tied with column 2 -> rank 3
            [0.2, 0.2, 0.2, 0.2],  # all tied -> last
            [0.1, 0.3, 0.9, 0.2],  # gold 2 strictly best -> rank 1
            [0.4, 0.3, 0.2, 0.1],  # gold 3 strictly worst -> rank 4
        ]
    )
    ranks = rank_of_gold(scores, np.array([0, 1, 2, 3]))
    assert ranks.tolist() == [3, 4, 1, 4]


def test_rank_of_gold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="NaN"):
        rank_of_gold(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="gold indices"):
        rank_of_gold(np.zeros((1, 2)), np.array([2]))
    with pytest.raises(ValueError, match="shape"):
        rank_of_gold(np.zeros((2, 2)), np.array([0]))


def test_chunked_dot_product_ranks_equal_the_full_matrix() -> None:
    rng = np.random.default_rng(0)
    queries, codes = rng.normal(size=(7, 4)), rng.normal(size=(11, 4))
    codes[3] = codes[5]  # a tie in every row
    gold = rng.integers(0, 11, size=7)
    expected = rank_of_gold(queries @ codes.T, gold)
    assert rank_of_gold_dot(queries, codes, gold, chunk_size=3).tolist() == expected.tolist()


def test_mrr_and_recall_on_a_hand_made_case() -> None:
    metrics = retrieval_metrics(np.array([1, 2, 4, 200]))
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1 / 200) / 4)
    assert metrics["recall@1"] == pytest.approx(0.25)
    assert metrics["recall@5"] == pytest.approx(0.75)
    assert metrics["recall@10"] == pytest.approx(0.75)
    assert metrics["recall@100"] == pytest.approx(0.75)
    assert set(retrieval_metrics(np.array([3]), ks=(2, 3))) == {"mrr", "recall@2", "recall@3"}
    with pytest.raises(ValueError, match="1-based"):
        retrieval_metrics(np.array([0, 1]))
