"""Re-ranking functions against hand-worked cases and brute-force references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.serving.rerank import mmr, normalise, popularity_blend, tail_floor


def test_normalise_maps_finite_values_to_unit_interval_and_unscorable_to_zero():
    np.testing.assert_allclose(normalise([1.0, 3.0, -np.inf, 2.0]), [0.0, 1.0, 0.0, 0.5])
    np.testing.assert_allclose(normalise([4.0, 4.0]), [0.0, 0.0])
    np.testing.assert_allclose(normalise([-np.inf, np.nan]), [0.0, 0.0])


def test_popularity_blend_hand_worked():
    scores = np.array([2.0, 0.0, 1.0])      # norm: 1, 0, .5
    popularity = np.array([0.0, 10.0, 5.0])  # norm: 0, 1, .5
    np.testing.assert_allclose(popularity_blend(scores, popularity, 0.0), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(popularity_blend(scores, popularity, 1.0), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(popularity_blend(scores, popularity, 0.25), [0.75, 0.25, 0.5])


def test_popularity_blend_rejects_bad_alpha_and_mismatched_shapes():
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        popularity_blend([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="same items"):
        popularity_blend([1.0, 2.0], [1.0], 0.5)


def test_mmr_hand_worked_picks_the_other_genre_second():
    # A and B share a genre, C is alone in its genre; relevance A 1.0, B 0.9, C 0.5 -> norm 1, .8, 0
    items = np.array([10, 11, 12])
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # step 2 at lambda .5: B gains .5*.8 - .5*1 = -.1, C gains 0 - 0 = 0 -> C
    np.testing.assert_array_equal(mmr(items, [1.0, 0.9, 0.5], vectors, 0.5, 3), [10, 12, 11])
    np.testing.assert_array_equal(mmr(items, [1.0, 0.9, 0.5], vectors, 1.0, 3), [10, 11, 12])


def _mmr_reference(items, relevance, vectors, lam, length):
    """Textbook MMR, one candidate and one pair at a time."""
    rel = np.asarray(relevance, float)
    rel = (rel - rel.min()) / (rel.max() - rel.min())
    unit = [v / np.linalg.norm(v) if np.linalg.norm(v) else v for v in np.asarray(vectors, float)]
    chosen = []
    for _ in range(length):
        best, best_gain = None, -math.inf
        for i in range(len(items)):
            if i in chosen:
                continue
            redundancy = max((float(unit[i] @ unit[j]) for j in chosen), default=0.0)
            gain = lam * rel[i] - (1 - lam) * redundancy
            if gain > best_gain + 1e-12:
                best, best_gain = i, gain
        chosen.append(best)
    return [items[i] for i in chosen]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_mmr_equals_textbook_reference(seed, lam):
    rng = np.random.default_rng(seed)
    n = 25
    items = rng.permutation(100)[:n]
    relevance = np.sort(rng.random(n))[::-1]
    vectors = (rng.random((n, 6)) < 0.3).astype(float)
    expected = _mmr_reference(items, relevance, vectors, lam, 8)
    np.testing.assert_array_equal(mmr(items, relevance, vectors, lam, 8), expected)
    np.testing.assert_array_equal(mmr(items, relevance, sp.csr_matrix(vectors), lam, 8), expected)


def test_mmr_at_lambda_one_is_the_relevance_order():
    rng = np.random.default_rng(7)
    items = np.arange(40)
    relevance = np.sort(rng.random(40))[::-1]
    np.testing.assert_array_equal(mmr(items, relevance, rng.random((40, 5)), 1.0, 10), items[:10])


def test_mmr_checks_its_inputs():
    with pytest.raises(ValueError, match="lambda must lie"):
        mmr([1, 2], [1, 0], np.eye(2), -0.1, 1)
    with pytest.raises(ValueError, match="one vector per candidate"):
        mmr([1, 2], [1, 0], np.eye(3), 0.5, 1)


def test_tail_floor_hand_worked():
    ranked = np.array([0, 1, 2, 3, 4, 5])
    is_tail = np.array([False, False, False, False, True, True])
    # a row of 4 with 50 % tail: the two best tail items replace the two worst head items
    np.testing.assert_array_equal(tail_floor(ranked, is_tail, 0.5, 4), [0, 1, 4, 5])
    np.testing.assert_array_equal(tail_floor(ranked, is_tail, 0.0, 4), [0, 1, 2, 3])
    # 25 % of 4 = 1 tail item
    np.testing.assert_array_equal(tail_floor(ranked, is_tail, 0.25, 4), [0, 1, 2, 4])
    # more than the pool can give: every tail item, the rest head
    np.testing.assert_array_equal(tail_floor(ranked, is_tail, 1.0, 4), [0, 1, 4, 5])


@pytest.mark.parametrize("seed", range(10))
def test_tail_floor_properties(seed):
    rng = np.random.default_rng(seed)
    n_items = 60
    is_tail = rng.random(n_items) < 0.3
    ranked = rng.permutation(n_items)[:30]
    share, length = rng.choice([0.1, 0.3, 0.5, 0.8]), 10
    row = tail_floor(ranked, is_tail, share, length)
    position = {item: p for p, item in enumerate(ranked)}
    assert len(row) == length and len(set(row)) == length
    assert [position[i] for i in row] == sorted(position[i] for i in row)   # ranked order kept
    needed = math.ceil(share * length - 1e-9)
    available = int(is_tail[ranked].sum())
    assert is_tail[row].sum() >= min(needed, available)
    # nothing changes when the prefix already meets the floor
    if is_tail[ranked[:length]].sum() >= needed:
        np.testing.assert_array_equal(row, ranked[:length])
    # the head items kept are the best-ranked head items
    head_kept = [i for i in row if not is_tail[i]]
    head_ranked = [i for i in ranked if not is_tail[i]]
    assert head_kept == head_ranked[: len(head_kept)]


def test_tail_floor_rejects_a_share_outside_unit_interval():
    with pytest.raises(ValueError, match="long-tail floor"):
        tail_floor([0, 1], [True, False], 1.2, 2)
