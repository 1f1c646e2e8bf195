"""Negative samplers: gold codes and their duplicates never come back, windows match a full sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from codesieve.trainer.negatives import (
    code_key,
    mine_hard_negatives,
    normalise_code,
    ranked_window,
    ranking_based_negatives,
)


def corpus(queries: int, codes: int, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    query_emb = F.normalize(torch.randn(queries, dim, generator=generator), dim=-1)
    code_emb = F.normalize(torch.randn(codes, dim, generator=generator), dim=-1)
    return query_emb, code_emb


def with_duplicates(
    code_emb: torch.Tensor, groups: list[list[int]], jitter: float = 0.0
) -> tuple[torch.Tensor, list[str]]:
    """Make each group's codes duplicates (same key) of its first member, with the same embedding.

    ``jitter`` > 0 moves the copies' embeddings slightly so no two scores tie (a full sort
    and ``topk`` may order exact ties differently).
    """
    code_emb = code_emb.clone()
    keys = [f"code-{i}" for i in range(code_emb.shape[0])]
    generator = torch.Generator().manual_seed(99)
    for group in groups:
        for member in group[1:]:
            noise = jitter * torch.randn(code_emb.shape[1], generator=generator)
            code_emb[member] = code_emb[group[0]] + noise
            keys[member] = keys[group[0]]
    return code_emb, keys


def brute_force_window(
    query_emb: torch.Tensor, code_emb: torch.Tensor, gold: list[int], keys: list[str], start: int, count: int
) -> np.ndarray:
    """Full stable sort of every query's scores, gold and its duplicates dropped, then the window."""
    scores = (query_emb @ code_emb.T).numpy()
    rows = []
    for i, g in enumerate(gold):
        order = [int(j) for j in np.argsort(-scores[i], kind="stable") if keys[j] != keys[g]]
        window = order[start : start + count]
        rows.append(window + [-1] * (count - len(window)))
    return np.asarray(rows, dtype=np.int64).reshape(len(gold), count)


def test_normalise_code_and_code_key() -> None:
    assert normalise_code("def f():\n    return  1\n") == "def f(): return 1"
    assert code_key("def f():\n\treturn 1") == code_key("  def f(): return 1  ")
    assert code_key("def f(): return 1") != code_key("def f(): return 2")
    assert len(code_key("x")) == 40


def test_gold_and_duplicates_never_mined() -> None:
    query_emb, code_emb = corpus(20, 60)
    # Duplicates share the gold's embedding, so they would rank at the very top if not removed.
    code_emb, keys = with_duplicates(code_emb, [[0, 7, 33], [5, 6], [12, 40, 41, 59]])
    query_emb = code_emb[:20] + 0.01 * query_emb  # each query sits next to its gold code
    gold = torch.arange(20)
    negatives = mine_hard_negatives(query_emb, code_emb, gold, keys, k=10)
    assert negatives.shape == (20, 10)
    for i in range(20):
        row = negatives[i].tolist()
        assert -1 not in row and len(set(row)) == 10
        assert all(keys[j] != keys[i] for j in row), (i, row)


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 0.9])
def test_ranking_based_negatives_exclude_gold_and_duplicates_in_every_window(lam: float) -> None:
    query_emb, code_emb = corpus(15, 80, seed=3)
    code_emb, keys = with_duplicates(code_emb, [[1, 2, 3], [10, 70], [4, 79]])
    gold = torch.tensor([1, 2, 10, 4, 0, 5, 6, 7, 8, 9, 11, 12, 70, 79, 3])
    negatives = ranking_based_negatives(query_emb, code_emb, gold, keys, M=31, lam=lam)
    assert negatives.shape == (15, 31)
    for i, g in enumerate(gold.tolist()):
        row = [j for j in negatives[i].tolist() if j != -1]
        assert all(keys[j] != keys[g] for j in row)
        assert len(set(row)) == len(row)


def test_k_larger_than_available_pads_with_minus_one() -> None:
    query_emb, code_emb = corpus(2, 6, seed=4)
    code_emb, keys = with_duplicates(code_emb, [[0, 3]])
    negatives = mine_hard_negatives(query_emb, code_emb, torch.tensor([0, 1]), keys, k=10)
    assert negatives.shape == (2, 10)
    # Query 0 (gold 0, duplicate 3) has 4 candidates; query 1 (gold 1) has 5.
    assert sorted(negatives[0, :4].tolist()) == [1, 2, 4, 5] and negatives[0, 4:].tolist() == [-1] * 6
    assert sorted(negatives[1, :5].tolist()) == [0, 2, 3, 4, 5] and negatives[1, 5:].tolist() == [-1] * 5


def test_window_past_the_end_is_all_padding() -> None:
    query_emb, code_emb = corpus(3, 10, seed=5)
    keys = [str(i) for i in range(10)]
    negatives = ranking_based_negatives(query_emb, code_emb, torch.tensor([0, 1, 2]), keys, M=4, lam=0.8)
    # start = 8; 9 candidates per query, so rank 8 exists and ranks 9..11 do not.
    assert (negatives[:, 0] >= 0).all() and negatives[:, 1:].tolist() == [[-1, -1, -1]] * 3


@pytest.mark.parametrize(("lam", "chunk_size"), [(0.0, 5), (0.0, None), (0.01, 7), (0.25, 1), (0.97, 64)])
def test_ranking_based_negatives_match_full_sort(lam: float, chunk_size: int | None) -> None:
    query_emb, code_emb = corpus(37, 200, seed=6)
    code_emb, keys = with_duplicates(code_emb, [[3, 4, 5], [100, 150], [0, 199]], jitter=1e-3)
    gold = torch.randint(0, 200, (37,), generator=torch.Generator().manual_seed(7))
    gold[:4] = torch.tensor([3, 150, 199, 4])
    negatives = ranking_based_negatives(query_emb, code_emb, gold, keys, M=31, lam=lam, chunk_size=chunk_size)
    start = int(np.floor(lam * 200 + 1e-9))
    expected = brute_force_window(query_emb, code_emb, gold.tolist(), keys, start, 31)
    np.testing.assert_array_equal(negatives.numpy(), expected)


def test_exact_ties_keep_the_full_sort_scores() -> None:
    # Exact duplicates of non-gold codes tie; topk may order a tie differently from a
    # stable sort, but the scores along each window must be the reference's.
    query_emb, code_emb = corpus(11, 90, seed=10)
    code_emb, keys = with_duplicates(code_emb, [[3, 4, 5], [20, 21], [0, 89]])
    gold = torch.arange(11)
    negatives = ranking_based_negatives(query_emb, code_emb, gold, keys, M=31, lam=0.1, chunk_size=4)
    expected = brute_force_window(query_emb, code_emb, gold.tolist(), keys, 9, 31)
    scores = query_emb @ code_emb.T
    torch.testing.assert_close(scores.gather(1, negatives), scores.gather(1, torch.from_numpy(expected)))


def test_mine_hard_negatives_exclude_top_matches_full_sort_and_accepts_numpy() -> None:
    query_emb, code_emb = corpus(9, 50, seed=8)
    code_emb, keys = with_duplicates(code_emb, [[2, 30]], jitter=1e-3)
    gold = np.arange(9)
    negatives = mine_hard_negatives(query_emb.numpy(), code_emb.numpy(), gold, keys, k=6, exclude_top=3)
    expected = brute_force_window(query_emb, code_emb, gold.tolist(), keys, 3, 6)
    np.testing.assert_array_equal(negatives.numpy(), expected)


def test_lam_window_start_is_floor_of_lam_n() -> None:
    query_emb, code_emb = corpus(4, 100, seed=9)
    keys = [str(i) for i in range(100)]
    gold = torch.arange(4)
    window = ranking_based_negatives(query_emb, code_emb, gold, keys, M=5, lam=0.29)  # 0.29·100 = 28.999...96
    np.testing.assert_array_equal(
        window.numpy(), brute_force_window(query_emb, code_emb, [0, 1, 2, 3], keys, 29, 5)
    )


def test_bad_inputs_raise_clear_errors() -> None:
    query_emb, code_emb = corpus(2, 5)
    keys = [str(i) for i in range(5)]
    with pytest.raises(ValueError, match="gold indices"):
        mine_hard_negatives(query_emb, code_emb, torch.tensor([0, 5]), keys, k=2)
    with pytest.raises(ValueError, match="code_keys"):
        mine_hard_negatives(query_emb, code_emb, torch.tensor([0, 1]), keys[:4], k=2)
    with pytest.raises(ValueError, match="lam"):
        ranking_based_negatives(query_emb, code_emb, torch.tensor([0, 1]), keys, lam=1.0)
    with pytest.raises(ValueError, match=">= 0"):
        ranked_window(query_emb, code_emb, torch.tensor([0, 1]), keys, start=-1, count=2)
