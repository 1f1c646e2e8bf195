"""Losses: hand-computed 2x2 values, reductions to InfoNCE, masking and gradients.

Most 2x2 cases share one batch: q0 = (1, 0), q1 = (0, 1), c0 = (1, 0), c1 = (0.6, 0.8), so
cos(q_i, c_j) = [[1, 0.6], [0, 0.8]]; with scale 2 the logits are s = [[2, 1.2], [0, 1.6]].
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from codesieve.trainer.losses.cosent import cosent, order_augmented_loss, teacher_labels
from codesieve.trainer.losses.info_nce import duplicate_mask, info_nce
from codesieve.trainer.losses.listwise import listwise_distillation_loss, listwise_ranking_loss
from codesieve.trainer.losses.soft_info_nce import (
    ESTIMATOR_PRESETS,
    bm25_query_similarity,
    encoder_query_similarity,
    soft_info_nce,
    soft_weights,
    trained_model_similarity,
)

Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
C = torch.tensor([[1.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
# Hard negatives (k = 1): h0 = (0, 1) for query 0, h1 = (1, 0) for query 1.
# cos(q0, h0) = 0, cos(q0, h1) = 1, cos(q1, h0) = 1, cos(q1, h1) = 0.
H = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]], dtype=torch.float64)


def random_batch(batch: int = 6, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    queries = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=-1)
    codes = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=-1)
    return queries, codes


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-12, abs=1e-12)


# ---- InfoNCE ----


def test_info_nce_hand_computed_2x2() -> None:
    # L0 = -log(e^2 / (e^2 + e^1.2)) = log(1 + e^-0.8); L1 = -log(e^1.6 / (e^0 + e^1.6)) = log(1 + e^-1.6)
    expected = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    assert info_nce(Q, C, scale=2.0).item() == approx(expected)


def test_info_nce_shared_hard_negatives_hand_computed() -> None:
    # Row 0 logits [2, 1.2 | q0·h0 = 0, q0·h1 = 2]: L0 = log(1 + e^-0.8 + e^-2 + e^0)
    # Row 1 logits [0, 1.6 | q1·h0 = 2, q1·h1 = 0]: L1 = log(1 + e^-1.6 + e^0.4 + e^-1.6)
    l0 = math.log(1 + math.exp(-0.8) + math.exp(-2) + math.exp(0))
    l1 = math.log(1 + math.exp(-1.6) + math.exp(0.4) + math.exp(-1.6))
    assert info_nce(Q, C, H, scale=2.0).item() == approx((l0 + l1) / 2)


def test_info_nce_own_hard_negatives_hand_computed() -> None:
    # Row 0 logits [2, 1.2 | own h0: 0]: L0 = log(1 + e^-0.8 + e^-2)
    # Row 1 logits [0, 1.6 | own h1: 0]: L1 = log(1 + e^-1.6 + e^-1.6)
    l0 = math.log(1 + math.exp(-0.8) + math.exp(-2))
    l1 = math.log(1 + 2 * math.exp(-1.6))
    loss = info_nce(Q, C, H, scale=2.0, share_hard_negatives=False)
    assert loss.item() == approx((l0 + l1) / 2)


@pytest.mark.parametrize("share", [True, False])
def test_info_nce_zero_hard_negatives_equals_in_batch(share: bool) -> None:
    queries, codes = random_batch()
    in_batch = info_nce(queries, codes)
    empty = torch.empty(queries.shape[0], 0, queries.shape[1], dtype=queries.dtype)
    assert info_nce(queries, codes, None, share_hard_negatives=share).item() == approx(in_batch.item())
    assert info_nce(queries, codes, empty, share_hard_negatives=share).item() == approx(in_batch.item())


def test_info_nce_equals_cross_entropy_of_scaled_cosines() -> None:
    queries, codes = random_batch()
    expected = F.cross_entropy(20.0 * queries @ codes.T, torch.arange(6))
    assert info_nce(queries, codes).item() == approx(expected.item())


def test_duplicate_mask_marks_off_diagonal_equal_keys() -> None:
    mask = duplicate_mask(["a", "b", "a", "c"])
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 2] = expected[2, 0] = True
    assert torch.equal(mask, expected)


def test_duplicate_mask_with_hard_negative_keys_uses_shared_layout() -> None:
    # Columns: codes [a, b], then hard negatives [query 0: x, b | query 1: a, y].
    mask = duplicate_mask(["a", "b"], [["x", "b"], ["a", "y"]])
    expected = torch.tensor(
        [[False, False, False, False, True, False], [False, False, False, True, False, False]]
    )
    assert torch.equal(mask, expected)


def test_duplicate_masking_removes_the_column() -> None:
    # Keys [a, b, a]: rows 0 and 2 hold the same code, so column 2 is no negative of row 0.
    queries, codes = random_batch(batch=3)
    mask = duplicate_mask(["a", "b", "a"])
    logits = 20.0 * queries @ codes.T
    kept = [[0, 1], [0, 1, 2], [1, 2]]  # columns left in each row's denominator
    per_row = [torch.logsumexp(logits[i, cols], 0) - logits[i, i] for i, cols in enumerate(kept)]
    expected = torch.stack(per_row).mean()
    assert info_nce(queries, codes, hard_neg_mask=mask).item() == approx(expected.item())
    # ...and the mask matters: without it, row 0 counts code 2 as a negative.
    assert info_nce(queries, codes, hard_neg_mask=mask).item() != approx(info_nce(queries, codes).item())


def test_duplicate_codes_2x2_leave_only_the_positive() -> None:
    # Both rows hold the same code: every row's only term is its positive, so L = 0.
    loss = info_nce(Q, C, scale=2.0, hard_neg_mask=duplicate_mask(["k", "k"]))
    assert loss.item() == approx(0.0)


def test_info_nce_rejects_masked_positive_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="diagonal"):
        info_nce(Q, C, hard_neg_mask=torch.eye(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must have shape"):
        info_nce(Q, C, hard_neg_mask=torch.zeros(2, 3, dtype=torch.bool))


def test_info_nce_full_width_mask_excludes_hard_negatives() -> None:
    # Mask q0's column for h1 (index 3): row 0 becomes log(1 + e^-0.8 + e^-2), row 1 unchanged.
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 3] = True
    l0 = math.log(1 + math.exp(-0.8) + math.exp(-2))
    l1 = math.log(1 + math.exp(-1.6) + math.exp(0.4) + math.exp(-1.6))
    assert info_nce(Q, C, H, scale=2.0, hard_neg_mask=mask).item() == approx((l0 + l1) / 2)


# ---- Soft-InfoNCE ----


def test_soft_info_nce_hand_computed_2x2() -> None:
    # w01 = 0.5, w10 = 2: L0 = -log(e^2 / (e^2 + 0.5·e^1.2)) = log(1 + 0.5·e^-0.8)
    #                     L1 = -log(e^1.6 / (e^1.6 + 2·e^0)) = log(1 + 2·e^-1.6)
    weights = torch.tensor([[1.0, 0.5], [2.0, 1.0]], dtype=torch.float64)
    expected = (math.log(1 + 0.5 * math.exp(-0.8)) + math.log(1 + 2 * math.exp(-1.6))) / 2
    assert soft_info_nce(Q, C, weights, scale=2.0).item() == approx(expected)


def test_soft_info_nce_hard_negative_weights_hand_computed() -> None:
    # Own hard negatives with v0 = 3, v1 = 0.5: L0 = log(1 + e^-0.8 + 3·e^-2), L1 = log(1 + e^-1.6 + 0.5·e^-1.6)
    ones = torch.ones(2, 2, dtype=torch.float64)
    hard_weights = torch.tensor([[3.0], [0.5]], dtype=torch.float64)
    l0 = math.log(1 + math.exp(-0.8) + 3 * math.exp(-2))
    l1 = math.log(1 + 1.5 * math.exp(-1.6))
    loss = soft_info_nce(Q, C, ones, scale=2.0, hard_neg_emb=H, hard_neg_weights=hard_weights)
    assert loss.item() == approx((l0 + l1) / 2)


def test_soft_weights_hand_computed_3x3() -> None:
    # Row 0: r01 = ln 3, r02 = 0, t = 1 -> p01 = 3/4, p02 = 1/4; N-1 = 2, α = 1.3, β = 0.7:
    # denominator 0.7 - 1.3/2 = 0.05; w01 = max(0.1, (0.7 - 0.975)/0.05 = -5.5) = 0.1; w02 = (0.7 - 0.325)/0.05 = 7.5
    r = torch.zeros(3, 3, dtype=torch.float64)
    r[0, 1] = math.log(3)
    weights = soft_weights(r, t=1.0, alpha=1.3, beta=0.7)
    assert weights[0, 0].item() == 1.0
    assert weights[0, 1].item() == approx(0.1)
    assert weights[0, 2].item() == pytest.approx((0.7 - 1.3 * 0.25) / (0.7 - 1.3 / 2), rel=1e-12)
    # Rows 1 and 2 have uniform p = 1/2: w = (0.7 - 0.65)/(0.7 - 0.65) = 1
    assert weights[1:].flatten().tolist() == pytest.approx([1.0] * 6, rel=1e-12)


def test_soft_weights_one_negative_2x2() -> None:
    # N-1 = 1, p = 1: w = (β - α)/(β - α) = 1 (α = 1.3, β = 0.7); with the BM25 preset the
    # denominator 0.5 - 1.5 < 0 is unusable and the row keeps uniform weights: also 1.
    for preset in ESTIMATOR_PRESETS.values():
        weights = soft_weights(torch.tensor([[0.0, 3.0], [1.0, 0.0]]), preset.t, preset.alpha, preset.beta)
        assert weights.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_soft_weights_rows_sum_to_n_minus_1_before_clipping() -> None:
    r = torch.randn(7, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weights = soft_weights(r, t=0.5, alpha=1.3, beta=0.7, clip=float("-inf"))
    off_diagonal = weights.sum(dim=1) - weights.diagonal()
    assert off_diagonal.tolist() == pytest.approx([6.0] * 7, rel=1e-12)
    assert bool((weights < 0.1).any())  # the test would be vacuous if nothing needed clipping
    assert bool((soft_weights(r, t=0.5, alpha=1.3, beta=0.7) >= 0.1).all())


def test_soft_weights_masked_duplicates_get_zero_and_rows_sum_to_their_negatives() -> None:
    r = torch.randn(6, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mask = duplicate_mask(["a", "b", "a", "c", "a", "d"])  # rows 0, 2, 4 lose two negatives each
    weights = soft_weights(r, t=1.0, alpha=1.3, beta=0.7, clip=float("-inf"), mask=mask)
    assert bool((weights[mask] == 0).all())
    off_diagonal = weights.sum(dim=1) - weights.diagonal()
    assert off_diagonal.tolist() == pytest.approx([3.0, 5.0, 3.0, 5.0, 3.0, 5.0], rel=1e-12)


def test_soft_info_nce_with_uniform_p_and_alpha_equal_beta_is_info_nce() -> None:
    queries, codes = random_batch(batch=8)
    weights = soft_weights(torch.zeros(8, 8), t=0.1, alpha=0.9, beta=0.9)  # uniform p
    assert torch.allclose(weights, torch.ones(8, 8), atol=1e-6)
    assert soft_info_nce(queries, codes, weights).item() == pytest.approx(
        info_nce(queries, codes).item(), rel=1e-6
    )
    hard = F.normalize(torch.randn(8, 3, 8, dtype=torch.float64), dim=-1)
    soft = soft_info_nce(queries, codes, weights, hard_neg_emb=hard)
    plain = info_nce(queries, codes, hard, share_hard_negatives=False)
    assert soft.item() == pytest.approx(plain.item(), rel=1e-6)


def test_soft_info_nce_masked_weights_equal_masked_info_nce() -> None:
    queries, codes = random_batch(batch=5)
    mask = duplicate_mask(["a", "b", "a", "c", "d"])
    weights = soft_weights(torch.zeros(5, 5), t=1.0, alpha=1.0, beta=1.0, mask=mask)
    expected = info_nce(queries, codes, hard_neg_mask=mask)
    assert soft_info_nce(queries, codes, weights).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradients_reach_embeddings_but_not_estimators() -> None:
    queries, codes = random_batch()
    queries.requires_grad_(True)
    codes.requires_grad_(True)
    # Stand-ins for a frozen copy's outputs that (wrongly) still carry a graph.
    frozen_queries = queries.detach().clone().requires_grad_(True)
    frozen_codes = codes.detach().clone().requires_grad_(True)
    estimates = [
        encoder_query_similarity(frozen_queries),
        trained_model_similarity(frozen_queries, frozen_codes),
        bm25_query_similarity(["sort a list", "quick sort", "save file", "open file", "sort", "x"]),
    ]
    for r in estimates:
        assert not r.requires_grad
        weights = soft_weights(r, t=0.1, alpha=1.3, beta=0.7)
        assert not weights.requires_grad
        queries.grad = codes.grad = None
        soft_info_nce(queries, codes, weights).backward()
        assert queries.grad is not None and bool(queries.grad.abs().sum() > 0)
        assert codes.grad is not None and bool(codes.grad.abs().sum() > 0)
    assert frozen_queries.grad is None and frozen_codes.grad is None


def test_soft_info_nce_does_not_differentiate_through_weights() -> None:
    queries, codes = random_batch(batch=3)
    queries.requires_grad_(True)
    weights = torch.full((3, 3), 0.5, dtype=torch.float64, requires_grad=True)
    soft_info_nce(queries, codes, weights).backward()
    assert weights.grad is None


def test_bm25_query_similarity_hand_computed() -> None:
    # Documents: d0 = [sort, list] (|d0| = 2), d1 = [sort] (|d1| = 1); avgdl = 1.5; B = 2.
    # idf(sort) = log(1 + 0.5/2.5) = log 1.2; idf(list) = log(1 + 1.5/1.5) = log 2.
    # r01 = query 1 [sort] against d0: log1.2 · 2.2 / (1 + 1.2·(0.25 + 0.75·2/1.5)) = log1.2 · 2.2/2.5
    # r10 = query 0 [sort, list] against d1: log1.2 · 2.2 / (1 + 1.2·(0.25 + 0.75·1/1.5)) = log1.2 · 2.2/1.9
    r = bm25_query_similarity(["sort list", "Sort"])
    assert r.shape == (2, 2)
    assert r[0, 1].item() == pytest.approx(math.log(1.2) * 2.2 / 2.5, rel=1e-6)
    assert r[1, 0].item() == pytest.approx(math.log(1.2) * 2.2 / 1.9, rel=1e-6)


def test_bm25_query_similarity_splits_identifiers() -> None:
    r = bm25_query_similarity(["parseJsonFile", "parse_json file", "save image"])
    assert r[0, 1].item() > 0 and r[1, 0].item() > 0
    assert r[0, 2].item() == 0.0 and r[2, 0].item() == 0.0


def test_encoder_and_trained_similarities_are_cosines() -> None:
    queries = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    codes = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    half = 1 / math.sqrt(2)
    assert encoder_query_similarity(queries).flatten().tolist() == pytest.approx([1.0, half, half, 1.0])
    assert trained_model_similarity(queries, codes).flatten().tolist() == pytest.approx(
        [0.0, 1.0, half, half]
    )


def test_estimator_presets() -> None:
    assert dataclasses.astuple(ESTIMATOR_PRESETS["bm25"]) == (1.0, 1.5, 0.5)
    assert dataclasses.astuple(ESTIMATOR_PRESETS["base"]) == (0.1, 1.3, 0.7)
    assert ESTIMATOR_PRESETS["simcse"] == ESTIMATOR_PRESETS["base"]
    assert dataclasses.astuple(ESTIMATOR_PRESETS["trained"]) == (0.05, 1.3, 0.7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ESTIMATOR_PRESETS["bm25"].t = 2.0  # type: ignore[misc]


# ---- CoSENT and the order-augmented loss ----


def test_cosent_hand_computed_pair() -> None:
    # One ordered pair (a=0, b=1), y_0 < y_1: log(1 + exp(20·0.2 - 20·0.5)) = log(1 + e^-6)
    loss = cosent(torch.tensor([0.2, 0.5], dtype=torch.float64), torch.tensor([0.0, 1.0]))
    assert loss.item() == approx(math.log(1 + math.exp(-6)))


def test_cosent_in_order_is_near_zero_and_reversed_is_large() -> None:
    labels = torch.tensor([0.0, 0.5, 1.0])
    assert cosent(torch.tensor([0.0, 0.5, 1.0]), labels).item() < 1e-4
    assert cosent(torch.tensor([1.0, 0.5, 0.0]), labels).item() > 10.0
    assert cosent(torch.tensor([1.0, 0.5, 0.0]), torch.ones(3)).item() == 0.0  # ties: no pair


def test_order_augmented_hand_computed_2x2() -> None:
    # Pairs a = (0,0), (0,1), (1,0), (1,1): scores [1, 0.6, 0, 0.8], labels [1, 0.3, 0.5, 1], scale 2.
    # y_a < y_b: (0,1)<(0,0): 2(0.6-1) = -0.8; (0,1)<(1,0): 2(0.6-0) = 1.2; (0,1)<(1,1): 2(0.6-0.8) = -0.4;
    #            (1,0)<(0,0): 2(0-1) = -2;     (1,0)<(1,1): 2(0-0.8) = -1.6.
    cos_term = math.log(1 + math.exp(-0.8) + math.exp(1.2) + math.exp(-0.4) + math.exp(-2) + math.exp(-1.6))
    nce_term = (math.log(1 + math.exp(-0.8)) + math.log(1 + math.exp(-1.6))) / 2
    labels = torch.tensor([[1.0, 0.3], [0.5, 1.0]])
    loss = order_augmented_loss(Q, C, labels, scale=2.0)
    assert loss.item() == approx(0.98 * nce_term + 0.02 * cos_term)


def test_order_augmented_without_cosent_is_info_nce() -> None:
    queries, codes = random_batch()
    labels = teacher_labels(torch.randn(6, 6))
    loss = order_augmented_loss(queries, codes, labels, w_ibn=1.0, w_cos=0.0)
    assert loss.item() == approx(info_nce(queries, codes).item())


def test_order_augmented_gradients_reach_both_embeddings() -> None:
    queries, codes = random_batch()
    queries.requires_grad_(True)
    codes.requires_grad_(True)
    order_augmented_loss(queries, codes, teacher_labels(torch.randn(6, 6))).backward()
    assert queries.grad is not None and codes.grad is not None


def test_order_augmented_with_hard_negatives_puts_them_in_info_nce_only() -> None:
    queries, codes = random_batch()
    hard = F.normalize(torch.randn(6, 2, queries.shape[1], dtype=torch.float64), dim=-1)
    labels = teacher_labels(torch.randn(6, 6))
    loss = order_augmented_loss(queries, codes, labels, scale=5.0, hard_emb=hard)
    expected = 0.98 * info_nce(queries, codes, hard, 5.0) + 0.02 * cosent(
        (queries @ codes.T).reshape(-1), labels.reshape(-1), 5.0
    )
    assert loss.item() == approx(expected.item())


def test_teacher_labels() -> None:
    scores = torch.tensor([[0.9, -0.5, 100.0], [0.2, 0.1, 0.3], [-3.0, 0.4, 0.0]])
    labels = teacher_labels(scores, mask=duplicate_mask(["a", "b", "b"]))
    assert labels.diagonal().tolist() == [1.0, 1.0, 1.0]
    assert labels[1, 2].item() == 1.0 and labels[2, 1].item() == 1.0  # duplicates
    off = labels[~torch.eye(3, dtype=torch.bool) & ~duplicate_mask(["a", "b", "b"])]
    assert bool((off >= 0).all()) and bool((off < 1).all())
    assert labels[0, 1].item() < labels[1, 0].item() < labels[0, 2].item()  # one order across rows


# ---- Listwise ranking loss ----


def test_listwise_hand_computed_2x2() -> None:
    # Scale 20: L0 = -log(e^10 / (e^10 + e^2)) = log(1 + e^-8); L1 = -log(e^4 / (e^4 + e^8)) = log(1 + e^4)
    scores = torch.tensor([[0.5, 0.1], [0.2, 0.4]], dtype=torch.float64)
    expected = (math.log(1 + math.exp(-8)) + math.log(1 + math.exp(4))) / 2
    assert listwise_ranking_loss(scores).item() == approx(expected)


def test_listwise_rejects_a_single_column() -> None:
    with pytest.raises(ValueError, match="1\\+M"):
        listwise_ranking_loss(torch.zeros(3, 1))


def test_listwise_distillation_hand_computed_2x2() -> None:
    # Teacher cosines [0.1, 0.0] at scale 10 -> target p = softmax([1, 0]) = (e/(e+1), 1/(e+1)).
    # Ranker scores [0.5, 0.1] at scale 20 -> logits [10, 2]: log-probs [-log(1+e^-8), -8-log(1+e^-8)].
    p0 = math.e / (math.e + 1)
    expected = p0 * math.log(1 + math.exp(-8)) + (1 - p0) * (8 + math.log(1 + math.exp(-8)))
    scores = torch.tensor([[0.5, 0.1]], dtype=torch.float64)
    teacher = torch.tensor([[0.1, 0.0]], dtype=torch.float64)
    assert listwise_distillation_loss(scores, teacher, 20.0, 10.0).item() == approx(expected)


def test_listwise_distillation_with_a_certain_teacher_is_the_listwise_loss() -> None:
    scores = torch.tensor([[0.5, 0.1, -0.2], [0.2, 0.4, 0.0]], dtype=torch.float64)
    teacher = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    distilled = listwise_distillation_loss(scores, teacher, teacher_scale=1e4)
    assert distilled.item() == pytest.approx(listwise_ranking_loss(scores).item(), rel=1e-9)


def test_listwise_distillation_gives_the_teacher_no_gradient() -> None:
    scores = torch.tensor([[0.5, 0.1]], requires_grad=True)
    teacher = torch.tensor([[0.3, 0.2]], requires_grad=True)
    listwise_distillation_loss(scores, teacher).backward()  # type: ignore[no-untyped-call]
    assert teacher.grad is None and scores.grad is not None
