"""Metrics against straightforward loop implementations, hand-worked cases, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.evaluation import beyond, metrics
from recsys.evaluation.stats import bootstrap_ci, bootstrap_cis, paired_test


# ---------------------------------------------------------------------- loop references
def loop_precision(ranked, relevant, k):
    return sum(1 for item in ranked[:k] if item in relevant) / k


def loop_recall(ranked, relevant, k):
    if not relevant:
        return 0.0
    return sum(1 for item in ranked[:k] if item in relevant) / len(relevant)


def loop_f1(ranked, relevant, k):
    p, r = loop_precision(ranked, relevant, k), loop_recall(ranked, relevant, k)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def loop_dcg(gains):
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def loop_ndcg(ranked, relevant, k):
    if not relevant:
        return 0.0
    dcg = loop_dcg([1.0 if item in relevant else 0.0 for item in ranked[:k]])
    idcg = loop_dcg([1.0] * min(len(relevant), k))
    return dcg / idcg


def loop_ndcg_graded(ranked, grades, k):
    """grades: dict item -> relevance grade (linear gain)."""
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = loop_dcg(ideal)
    if idcg == 0:
        return 0.0
    return loop_dcg([grades.get(item, 0.0) for item in ranked[:k]]) / idcg


def loop_ap(ranked, relevant, k):
    if not relevant:
        return 0.0
    total, found = 0.0, 0
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            found += 1
            total += found / rank
    return total / min(len(relevant), k)


def loop_rr(ranked, relevant, k):
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def loop_hit(ranked, relevant, k):
    return 1.0 if any(item in relevant for item in ranked[:k]) else 0.0


# ---------------------------------------------------------------------- random instances
def random_instance(seed, n_users=40, n_items=30, width=12):
    """Ranked lists (with -1 empty tails), relevant sets (some small, some empty of hits)
    and grades, plus the hits / gains / ideal matrices the library reads."""
    rng = np.random.default_rng(seed)
    ranked, relevant, grades = [], [], []
    for u in range(n_users):
        n_rel = int(rng.integers(1, 15))
        rel = set(rng.choice(n_items, size=n_rel, replace=False).tolist())
        if u % 7 == 0:  # zero hits: rank only irrelevant items
            pool = np.array([i for i in range(n_items) if i not in rel])
        else:
            pool = np.arange(n_items)
        length = min(width, len(pool)) - (int(rng.integers(0, 4)) if u % 5 == 0 else 0)
        items = rng.permutation(pool)[:length].tolist()
        items += [-1] * (width - len(items))
        ranked.append(items)
        relevant.append(rel)
        grades.append({i: float(rng.integers(1, 6)) for i in rel})
    hits = np.array([[item in rel for item in row] for row, rel in zip(ranked, relevant)])
    gains = np.array([[g.get(item, 0.0) for item in row] for row, g in zip(ranked, grades)])
    ideal = np.zeros((n_users, width))
    for u, g in enumerate(grades):
        top = sorted(g.values(), reverse=True)[:width]
        ideal[u, : len(top)] = top
    n_relevant = np.array([len(r) for r in relevant])
    return ranked, relevant, grades, hits, gains, ideal, n_relevant


LIB_VS_LOOP = [
    ("precision", lambda h, n, k: metrics.precision(h, k), loop_precision),
    ("recall", lambda h, n, k: metrics.recall(h, n, k), loop_recall),
    ("f1", lambda h, n, k: metrics.f1(h, n, k), loop_f1),
    ("ndcg", lambda h, n, k: metrics.ndcg(h, n, k), loop_ndcg),
    ("ap", lambda h, n, k: metrics.average_precision(h, n, k), loop_ap),
    ("rr", lambda h, n, k: metrics.reciprocal_rank(h, k), loop_rr),
    ("hit", lambda h, n, k: metrics.hit_rate(h, k), loop_hit),
]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name,lib,loop", LIB_VS_LOOP, ids=[x[0] for x in LIB_VS_LOOP])
def test_ranking_metric_matches_loop(seed, name, lib, loop):
    ranked, relevant, _, hits, _, _, n_relevant = random_instance(seed)
    assert (n_relevant < 12).any() and (hits.sum(axis=1) == 0).any()  # the hard cases are present
    for k in (1, 3, 5, 12):
        got = lib(hits, n_relevant, k)
        expected = [loop(r, rel, k) for r, rel in zip(ranked, relevant)]
        assert got.dtype == np.float64 and got.shape == (len(ranked),)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=f"{name}@{k}")


@pytest.mark.parametrize("seed", range(8))
def test_graded_ndcg_matches_loop(seed):
    ranked, _, grades, _, gains, ideal, _ = random_instance(seed)
    for k in (1, 4, 12):
        expected = [loop_ndcg_graded(r, g, k) for r, g in zip(ranked, grades)]
        np.testing.assert_allclose(metrics.ndcg_graded(gains, ideal, k), expected, rtol=1e-12)


def test_float_hits_are_read_as_booleans():
    _, _, _, hits, _, _, n_relevant = random_instance(3)
    np.testing.assert_allclose(metrics.ndcg(hits.astype(np.float32), n_relevant, 5), metrics.ndcg(hits, n_relevant, 5))


def test_graded_ndcg_with_unit_gains_equals_binary_ndcg():
    _, _, _, hits, _, _, n_relevant = random_instance(5)
    width = hits.shape[1]
    ideal = (np.arange(width)[None, :] < n_relevant[:, None]).astype(float)
    np.testing.assert_allclose(metrics.ndcg_graded(hits.astype(float), ideal, 7), metrics.ndcg(hits, n_relevant, 7))


def test_hand_worked_lists():
    # Two lists over the same 3 relevant items, 3 hits each in the top 5:
    #   A = [1,0,1,0,1]  DCG = 1/log2(2) + 1/log2(4) + 1/log2(6) = 1 + 0.5 + 0.386853 = 1.886853
    #   B = [0,1,0,1,1]  DCG = 1/log2(3) + 1/log2(5) + 1/log2(6) = 0.630930 + 0.430677 + 0.386853 = 1.448459
    #   ideal [1,1,1,0,0] IDCG = 1 + 0.630930 + 0.5 = 2.130930
    #   NDCG_A = 1.886853 / 2.130930 = 0.885460,  NDCG_B = 1.448459 / 2.130930 = 0.679731
    #   AP_A = (1/1 + 2/3 + 3/5) / 3 = 0.755556,  AP_B = (1/2 + 2/4 + 3/5) / 3 = 0.533333
    hits = np.array([[1, 0, 1, 0, 1], [0, 1, 0, 1, 1]], dtype=bool)
    n_rel = np.array([3, 3])
    np.testing.assert_allclose(metrics.precision(hits, 5), [0.6, 0.6])
    np.testing.assert_allclose(metrics.recall(hits, n_rel, 5), [1.0, 1.0])
    np.testing.assert_allclose(metrics.ndcg(hits, n_rel, 5), [0.885460, 0.679731], atol=1e-6)
    np.testing.assert_allclose(metrics.reciprocal_rank(hits, 5), [1.0, 0.5])
    np.testing.assert_allclose(metrics.average_precision(hits, n_rel, 5), [0.755556, 0.533333], atol=1e-6)
    np.testing.assert_allclose(metrics.f1(hits, n_rel, 5), [0.75, 0.75])
    # at k=2: A has 1 hit at rank 1, B one at rank 2
    np.testing.assert_allclose(metrics.ndcg(hits, n_rel, 2), [1 / 1.630930, 0.630930 / 1.630930], atol=1e-6)
    np.testing.assert_allclose(metrics.average_precision(hits, n_rel, 2), [0.5, 0.25])


def test_more_relevant_than_k_can_still_reach_one():
    hits = np.ones((1, 5), dtype=bool)
    n_rel = np.array([50])
    assert metrics.ndcg(hits, n_rel, 5)[0] == pytest.approx(1.0)
    assert metrics.average_precision(hits, n_rel, 5)[0] == pytest.approx(1.0)
    assert metrics.recall(hits, n_rel, 5)[0] == pytest.approx(0.1)  # standard recall: / n_relevant


def test_users_without_relevant_items_score_zero_not_nan():
    hits = np.zeros((2, 3), dtype=bool)
    n_rel = np.array([0, 2])
    for fn in (metrics.recall, metrics.ndcg, metrics.average_precision, metrics.f1):
        np.testing.assert_array_equal(fn(hits, n_rel, 3), [0.0, 0.0])


def test_k_outside_hits_width_is_refused():
    with pytest.raises(ValueError):
        metrics.precision(np.zeros((2, 3), bool), 4)
    with pytest.raises(ValueError):
        metrics.ndcg(np.zeros((2, 3), bool), [1, 1], 0)


def test_rmse_mae():
    true = np.array([4.0, 3.0, 5.0, 1.0])
    pred = np.array([3.5, 3.0, 4.0, 3.0])
    assert metrics.rmse(true, pred) == pytest.approx(math.sqrt((0.25 + 0 + 1 + 4) / 4))
    assert metrics.mae(true, pred) == pytest.approx((0.5 + 0 + 1 + 2) / 4)
    assert math.isnan(metrics.rmse([], []))
    with pytest.raises(ValueError):
        metrics.mae([1.0], [1.0, 2.0])


# ---------------------------------------------------------------------- beyond accuracy
def random_lists(seed, n_users=25, n_items=40, width=8):
    rng = np.random.default_rng(seed)
    rec = np.stack([rng.choice(n_items, size=width, replace=False) for _ in range(n_users)]).astype(np.int64)
    rec[rng.random(rec.shape) < 0.1] = -1  # scattered empty slots
    rec[0, :] = -1  # a user with an empty list
    rec[1, 1:] = -1  # a user with a single item
    popularity = rng.integers(0, 60, size=n_items)
    popularity[:3] = 0  # never consumed in training
    return rec, popularity


def valid(row, k):
    return [int(i) for i in row[:k] if i >= 0]


@pytest.mark.parametrize("seed", range(5))
def test_coverage_novelty_arp_match_loops(seed):
    rec, pop = random_lists(seed)
    n_items, n_users_train = len(pop), 70
    for k in (1, 4, 8):
        shown = {i for row in rec for i in valid(row, k)}
        assert beyond.coverage(rec, n_items, k) == pytest.approx(len(shown) / n_items)
        nov, arp = [], []
        for row in rec:
            items = valid(row, k)
            nov.append(
                sum(-math.log2(max(pop[i], 1) / n_users_train) for i in items) / len(items) if items else 0.0
            )
            arp.append(sum(pop[i] for i in items) / len(items) if items else 0.0)
        np.testing.assert_allclose(beyond.novelty(rec, pop, n_users_train, k), nov, rtol=1e-12)
        np.testing.assert_allclose(beyond.average_popularity(rec, pop, k), arp, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind", ["genres", "dense"])
def test_intra_list_diversity_matches_pairwise_loop(seed, kind):
    rec, pop = random_lists(seed)
    rng = np.random.default_rng(100 + seed)
    if kind == "genres":
        feats = (rng.random((len(pop), 6)) < 0.3).astype(float)
        feats[5] = 0  # an item without genres
        features = sp.csr_matrix(feats)
    else:
        feats = rng.normal(size=(len(pop), 5))
        features = feats
    for k in (2, 8):
        expected = []
        for row in rec:
            items = valid(row, k)
            dists = []
            for a in range(len(items)):
                for b in range(a + 1, len(items)):
                    va, vb = feats[items[a]], feats[items[b]]
                    na, nb = np.linalg.norm(va), np.linalg.norm(vb)
                    sim = 0.0 if na == 0 or nb == 0 else float(va @ vb / (na * nb))
                    dists.append(1.0 - sim)
            expected.append(sum(dists) / len(dists) if dists else 0.0)
        np.testing.assert_allclose(beyond.intra_list_diversity(rec, features, k), expected, atol=1e-10)


def loop_gini(values):
    # mean absolute difference over all ordered pairs / (2 * mean)
    n = len(values)
    total = sum(values)
    if total == 0:
        return 0.0
    mad = sum(abs(a - b) for a in values for b in values) / (n * n)
    return mad / (2 * total / n)


@pytest.mark.parametrize("seed", range(5))
def test_exposure_gini_and_tail_share_match_loops(seed):
    rec, pop = random_lists(seed)
    n_items = len(pop)
    for k in (3, 8):
        counts = [0] * n_items
        for row in rec:
            for i in valid(row, k):
                counts[i] += 1
        assert beyond.exposure_gini(rec, n_items, k) == pytest.approx(loop_gini(counts), rel=1e-12)
        n_head = math.ceil(0.2 * n_items)
        head = set(sorted(range(n_items), key=lambda i: (-pop[i], i))[:n_head])
        shown = [i for row in rec for i in valid(row, k)]
        assert beyond.long_tail_share(rec, pop, k) == pytest.approx(sum(i not in head for i in shown) / len(shown))


def test_gini_extremes():
    assert beyond.gini(np.full(10, 3.0)) == pytest.approx(0.0)
    one_item = np.zeros(10)
    one_item[4] = 7
    assert beyond.gini(one_item) == pytest.approx(0.9)  # (n-1)/n: everything on one item
    assert beyond.gini(np.zeros(5)) == 0.0


def test_all_empty_lists_are_handled():
    rec = np.full((3, 4), -1)
    pop = np.arange(10)
    assert beyond.coverage(rec, 10) == 0.0
    assert beyond.long_tail_share(rec, pop) == 0.0
    assert beyond.exposure_gini(rec, 10) == 0.0
    np.testing.assert_array_equal(beyond.novelty(rec, pop, 20), 0.0)
    np.testing.assert_array_equal(beyond.intra_list_diversity(rec, np.eye(10)), 0.0)


# ---------------------------------------------------------------------- statistics
def test_bootstrap_ci_contains_mean_and_narrows_with_more_users():
    rng = np.random.default_rng(0)
    small = rng.random(50)
    large = rng.random(5000)
    lo_s, hi_s = bootstrap_ci(small, n_boot=500, seed=1)
    lo_l, hi_l = bootstrap_ci(large, n_boot=500, seed=1)
    assert lo_s < small.mean() < hi_s
    assert lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # ~ 1/sqrt(100) of the width
    # the 95% interval of a uniform mean over 5000 users: about +-1.96 * 0.2887 / sqrt(5000)
    assert (hi_l - lo_l) == pytest.approx(2 * 1.96 * 0.2887 / math.sqrt(5000), rel=0.15)


def test_bootstrap_is_seeded_and_small_chunks_give_the_same_interval(monkeypatch):
    values = np.random.default_rng(2).random(300)
    first = bootstrap_ci(values, n_boot=2000, seed=7)
    assert bootstrap_ci(values, n_boot=2000, seed=7) == first
    assert bootstrap_ci(values, n_boot=2000, seed=8) != first
    from recsys.evaluation import stats

    # 7 resamples per chunk instead of all at once: different draws, same interval
    monkeypatch.setattr(stats, "_CHUNK_ENTRIES", 300 * 7)
    lo, hi = bootstrap_ci(values, n_boot=2000, seed=7)
    assert lo == pytest.approx(first[0], abs=0.005) and hi == pytest.approx(first[1], abs=0.005)


def test_bootstrap_cis_share_resamples_and_match_single_column():
    rng = np.random.default_rng(4)
    a, b = rng.random(400), rng.random(400)
    both = bootstrap_cis({"a": a, "b": b}, n_boot=300, seed=3)
    assert both["a"] == pytest.approx(bootstrap_ci(a, n_boot=300, seed=3))
    assert both["b"] == pytest.approx(bootstrap_ci(b, n_boot=300, seed=3))


def test_paired_test_finds_a_real_difference():
    rng = np.random.default_rng(0)
    a = rng.random(300)
    b = a + 0.05 + rng.normal(0, 0.02, size=300)
    result = paired_test(b, a, metric="NDCG@10", names=("EASE", "popularity"))
    assert result["mean_diff"] == pytest.approx(0.05, abs=0.005)
    assert result["t_pvalue"] < 0.01 and result["wilcoxon_pvalue"] < 0.01
    assert result["cohens_d"] == pytest.approx(2.5, rel=0.2)  # 0.05 / 0.02
    assert result["sentence"].startswith("EASE is better than popularity on NDCG@10 by 0.05")
    assert "unlikely to be noise" in result["sentence"]


def test_paired_test_does_not_invent_a_difference():
    rng = np.random.default_rng(0)
    values = rng.random(400)
    a = values[:200]
    b = rng.permutation(values[200:])  # same distribution, pairing meaningless
    result = paired_test(a, b, metric="recall@20")
    assert result["t_pvalue"] > 0.05 and result["wilcoxon_pvalue"] > 0.05
    assert "could well be noise" in result["sentence"]
    assert result["sentence"][0].isupper()


def test_paired_test_degenerate_inputs():
    same = paired_test(np.ones(5), np.ones(5))
    assert same["t_pvalue"] == 1.0 and same["cohens_d"] == 0.0 and "score the same" in same["sentence"]
    shifted = paired_test(np.ones(5) + 0.1, np.ones(5))
    assert shifted["t_pvalue"] == 0.0 and shifted["cohens_d"] == math.inf
    with pytest.raises(ValueError):
        paired_test(np.ones(3), np.ones(4))
