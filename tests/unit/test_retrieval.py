"""Two-stage serving: the MIPS index against brute force, seen-item filtering, candidate
recall by hand, candidate-only scoring against full scoring, and the trade-off table."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.split import random_holdout
from recsys.data.synthetic import make_dataset
from recsys.models import create
from recsys.serving import retrieval
from recsys.serving.retrieval import (
    CandidateIndex,
    build_index,
    candidate_recall,
    candidate_scores,
    embedding_pair,
    exact_top,
    rerank,
    retrieve,
    serving_tradeoff,
    two_stage_recommend,
)

BACKENDS = ["hnsw", "hnsw_l2", "ivf", "exact"]


@pytest.fixture(scope="module")
def train():
    return random_holdout(make_dataset(n_users=200, n_items=150, seed=3), 0.2, seed=0)[0]


@pytest.fixture(scope="module")
def ials(train):
    return create("ials", factors=16, iterations=5).fit(train)


def _brute_force_top(queries, items, k):
    """Argsort of every inner product: the reference an index must match."""
    scores = queries @ items.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


# ---------------------------------------------------------------------------- embeddings


@pytest.mark.parametrize("key, params", [("ials", {"factors": 8, "iterations": 3}), ("pure_svd", {}),
                                         ("bpr_mf", {"factors": 8, "epochs": 2})])
def test_embedding_inner_products_are_the_models_scores(train, key, params):
    model = create(key, **params).fit(train)
    users, items = embedding_pair(model)
    expected = model.score(np.arange(train.n_users))
    np.testing.assert_allclose(users @ items.T, expected, rtol=1e-4, atol=1e-5)
    if key == "bpr_mf":  # the item bias travels as one more dimension
        assert users.shape[1] == model.params.factors + 1


def test_models_without_dense_embeddings_are_refused_with_a_reason(train):
    with pytest.raises(ValueError, match="no user and item embeddings"):
        embedding_pair(create("ease").fit(train))


# ---------------------------------------------------------------------------- the index


@pytest.mark.parametrize("method", BACKENDS)
def test_index_answers_maximum_inner_product_not_nearest_neighbour(method):
    # the nearest item to the query in L2 is item 0, the largest inner product is item 1
    items = np.array([[1.0, 0.0], [10.0, 0.0], [0.0, 1.0]], np.float32)
    index = CandidateIndex(items, method, n_lists=1)
    found, scores = index.search(np.array([[1.0, 0.1]]), 3)
    np.testing.assert_array_equal(found[0], [1, 0, 2])
    np.testing.assert_allclose(scores[0], [10.0, 1.0, 0.1], rtol=1e-6)


@pytest.mark.parametrize("method, floor", [("hnsw", 0.97), ("ivf", 0.97), ("exact", 1.0)])
def test_index_matches_brute_force_on_random_vectors(method, floor):
    rng = np.random.default_rng(0)
    # norms that vary a lot, as real factor norms do (popular items are long)
    items = (rng.standard_normal((2000, 16)) * rng.lognormal(0, 0.5, (2000, 1))).astype(np.float32)
    queries = rng.standard_normal((100, 16)).astype(np.float32)
    index = CandidateIndex(items, method, n_probe=45)
    found, scores = index.search(queries, 10)
    truth = _brute_force_top(queries, items, 10)
    assert candidate_recall(found, truth).mean() >= floor
    # returned scores are the exact inner products, best first
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ items.T, found, axis=1), rtol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_the_l2_reduction_recovers_mips_on_clustered_vectors():
    # embeddings of real data cluster (genres, tastes); there the augmented L2 graph does well
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((20, 16)) * 2
    items = (centres[rng.integers(0, 20, 2000)] + rng.standard_normal((2000, 16)) * 0.5).astype(np.float32)
    queries = rng.standard_normal((100, 16)).astype(np.float32)
    found, _ = CandidateIndex(items, "hnsw_l2").search(queries, 10)
    assert candidate_recall(found, _brute_force_top(queries, items, 10)).mean() >= 0.95


def test_without_faiss_the_index_falls_back_to_exact_search(monkeypatch):
    monkeypatch.setattr(retrieval, "faiss_available", lambda: False)
    rng = np.random.default_rng(1)
    items = rng.standard_normal((300, 8)).astype(np.float32)
    queries = rng.standard_normal((20, 8)).astype(np.float32)
    index = CandidateIndex(items, "hnsw")
    assert index.backend == "exact"
    np.testing.assert_array_equal(index.search(queries, 7)[0], _brute_force_top(queries, items, 7))


def test_bad_index_requests_are_refused():
    with pytest.raises(ValueError, match="hnsw"):
        CandidateIndex(np.ones((3, 2)), "annoy")
    with pytest.raises(ValueError, match="non-empty"):
        CandidateIndex(np.ones((0, 2)), "exact")


# ---------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize("method", ["hnsw", "exact"])
def test_retrieval_skips_seen_items_and_fills_n(train, ials, method):
    index, queries = build_index(ials, method)
    users = np.arange(train.n_users)
    candidates = retrieve(index, queries, 40, train.seen, batch_size=64)
    seen = train.seen.toarray().astype(bool)
    assert candidates.shape == (train.n_users, 40)
    assert (candidates >= 0).all(), "150 items minus at most ~60 seen leaves 40 for everyone"
    assert not seen[users[:, None], candidates].any()
    truth = exact_top(queries, index.item_vectors, 40, train.seen)
    if method == "exact":
        np.testing.assert_array_equal(candidates, truth)
    else:
        # all 40 of 40 is a strict target for a graph walk over 150 items; nearly all are found
        assert candidate_recall(candidates, truth).mean() >= 0.9


def test_candidate_recall_by_hand():
    candidates = np.array([[1, 2, 3, -1], [4, 5, 6, 7], [8, 9, -1, -1]])
    truth = np.array([[1, 5], [4, 5], [-1, -1]])
    # row 0: 1 found, 5 missing; row 1: both; row 2: nothing to find counts as complete
    np.testing.assert_allclose(candidate_recall(candidates, truth), [0.5, 1.0, 1.0])


@pytest.mark.parametrize("key", ["ials", "ease", "item_knn", "pop"])
def test_candidate_scores_equal_full_scores_at_the_candidates(train, key):
    model = create(key).fit(train)
    users = np.array([0, 5, 77, 199])
    rng = np.random.default_rng(2)
    candidates = np.stack([rng.choice(train.n_items, 30, replace=False) for _ in users])
    candidates[1, -3:] = -1
    scores = candidate_scores(model, users, candidates)
    full = np.take_along_axis(model.score(users), np.maximum(candidates, 0), axis=1)
    np.testing.assert_allclose(scores[candidates >= 0], full[candidates >= 0], rtol=1e-4, atol=1e-6)
    assert np.isneginf(scores[1, -3:]).all()


def test_reranking_every_unseen_item_is_the_full_ranking(train, ials):
    ease = create("ease").fit(train)
    users = np.arange(0, train.n_users, 9)
    index = CandidateIndex(ials.item_embeddings(), "exact")
    everything = retrieve(index, ials.user_embeddings()[users], train.n_items, train.seen[users])
    reranked = rerank(ease, users, everything, 10)
    np.testing.assert_array_equal(reranked, ease.recommend(users, 10)[0])
    one_call = two_stage_recommend(index, ials.user_embeddings()[users], ease, users, train.n_items, 10,
                                   train.seen[users])
    np.testing.assert_array_equal(one_call, reranked)


def test_reranking_breaks_ties_by_item_code(train):
    pop = create("pop").fit(train)
    tied = np.flatnonzero(train.item_popularity == np.bincount(train.item_popularity).argmax())[:4]
    # four equally popular items offered in reverse order come back in item-code order
    assert len(tied) == 4
    np.testing.assert_array_equal(rerank(pop, np.array([0]), tied[::-1][None, :], 4)[0], np.sort(tied))


# ---------------------------------------------------------------------------- trade-off


def test_tradeoff_with_exact_retrieval_is_lossless(train, ials):
    result = serving_tradeoff(ials, candidate_counts=(5, 10, 50, 500), k=10, method="exact",
                              recall_users=None, latency_requests=20)
    table = result.table
    # 5 < k is dropped and 500 is clipped to the catalogue
    assert table["candidates"].tolist() == [10, 50, 150, 150]
    assert table["stage"].tolist() == ["two-stage"] * 3 + ["exact"]
    np.testing.assert_allclose(table["retrieval_recall"], 1.0)
    np.testing.assert_allclose(table["recall"], 1.0)
    assert (table["p50_ms"] <= table["p99_ms"]).all() and (table["p50_ms"] > 0).all()
    assert result.recall_users == train.n_users and result.latency_requests == 20


def test_tradeoff_recall_against_a_different_ranker_matches_brute_force(train, ials):
    ease = create("ease").fit(train)
    result = serving_tradeoff(ials, ease, candidate_counts=(20,), k=10, method="exact", recall_users=None,
                              latency_requests=10)
    users = np.arange(train.n_users)
    pool = exact_top(ials.user_embeddings(), ials.item_embeddings(), 20, train.seen)
    ease_top = ease.recommend(users, 10)[0]
    scores = ease.score(users)
    expected = []
    for user, full_top, pool_of_user in zip(users, ease_top, pool):
        # the two-stage answer is EASE's best 10 among iALS's 20 candidates (ties by item code)
        best_in_pool = sorted(pool_of_user, key=lambda i: (-scores[user, i], i))[:10]
        expected.append(len(set(best_in_pool) & set(full_top)) / 10)
    expected = np.mean(expected)
    assert result.table["recall"].iloc[0] == pytest.approx(expected)
    assert result.table["recall"].iloc[0] < 1.0


def test_tradeoff_times_every_setting_in_several_rounds_and_reports_the_spread(train, ials):
    from recsys.serving import retrieval

    rounds = []
    real = retrieval._time_requests

    def counted(request, users, warmup=5):
        rounds.append(len(users))
        return real(request, users, warmup)

    retrieval._time_requests = counted
    try:
        result = serving_tradeoff(ials, candidate_counts=(20, 50), k=10, method="exact", recall_users=None,
                                  latency_requests=12, repeats=3)
    finally:
        retrieval._time_requests = real
    assert rounds == [12] * 9  # three rounds of (two counts + exact)
    table = result.table
    assert result.repeats == 3
    assert (table["p99_low_ms"] <= table["p99_ms"]).all() and (table["p99_ms"] <= table["p99_high_ms"]).all()
    assert table.columns.tolist()[-2:] == ["p99_low_ms", "p99_high_ms"]


def test_median_of_rounds_takes_the_middle_round_and_the_p99_range():
    from recsys.serving.retrieval import _median_of_rounds

    rounds = [{"p50_ms": 1.0, "p99_ms": 9.0, "mean_ms": 2.0}, {"p50_ms": 3.0, "p99_ms": 4.0, "mean_ms": 2.5},
              {"p50_ms": 2.0, "p99_ms": 40.0, "mean_ms": 9.0}]
    assert _median_of_rounds(rounds) == {"p50_ms": 2.0, "p99_ms": 9.0, "mean_ms": 2.5, "p99_low_ms": 4.0,
                                         "p99_high_ms": 40.0}


def test_tradeoff_refuses_bad_requests(train, ials):
    with pytest.raises(ValueError, match="at least k"):
        serving_tradeoff(ials, candidate_counts=(3, 5), k=10)
    other = create("pop").fit(make_dataset(n_users=50, n_items=40, seed=9))
    with pytest.raises(ValueError, match="different data"):
        serving_tradeoff(ials, other)
    with pytest.raises(ValueError, match="embeddings"):
        serving_tradeoff(create("ease").fit(train))
    with pytest.raises(ValueError, match="repeats"):
        serving_tradeoff(ials, repeats=0)


def test_candidate_scores_keep_sparse_and_dense_weights_consistent(train):
    # item_knn keeps a sparse W, EASE a dense one; the candidate block must be read the same way
    knn = create("item_knn").fit(train)
    assert sp.issparse(knn.weights_)
    users = np.array([3])
    candidates = np.arange(train.n_items)[None, :]
    np.testing.assert_allclose(candidate_scores(knn, users, candidates), knn.score(users), rtol=1e-5, atol=1e-6)


def test_catalogue_scaling_grows_the_catalogue_and_wide_searches_are_exact(ials):
    from recsys.serving.retrieval import catalogue_scaling

    exact = catalogue_scaling(ials, (600,), n=50, requests=15, method="exact")
    assert exact["items"].tolist() == [600] and exact["search_width"].tolist() == [600]
    assert exact["recall"].iloc[0] == 1.0
    # IVF over ~sqrt(600) = 24 cells: visiting every cell is exhaustive, visiting one is not
    ivf = catalogue_scaling(ials, (600,), n=50, requests=15, method="ivf", search_widths=(1, 24))
    assert ivf["search_width"].tolist() == [1, 24]
    assert ivf["recall"].iloc[1] == 1.0 and ivf["recall"].iloc[0] < 1.0
    assert (ivf[["exact_p50_ms", "index_p50_ms"]] > 0).all().all()


# ---------------------------------------------------------------------------- bench section


def test_bench_serving_section_replaces_itself_and_keeps_the_rest(tmp_path):
    from recsys import bench

    target = tmp_path / "benchmarks.md"
    target.write_text("# Benchmarks\n\n## Models\n\n| a |\n\n## Notes\n\n* kept\n")
    row = {"stage": "two-stage", "candidates": 200, "retrieval_recall": 1.0, "recall": 0.99, "p50_ms": 0.5,
           "p99_ms": 2.0, "mean_ms": 0.7, "retriever": "ials", "ranker": "ease"}
    exact = {**row, "stage": "exact", "candidates": 1682, "recall": 1.0}
    figures = {"dataset": "MovieLens 100K", "seed": 42, "backend": "faiss-hnsw", "latency_requests": 500,
               "n_items": 1682, "scale_retriever": "ials", "rows": [row, exact],
               "scaling": [{"items": 100_000, "backend": "faiss-hnsw", "search_width": 800, "build_s": 9.0, "recall": 0.85,
                            "exact_p50_ms": 7.0, "exact_p99_ms": 9.0, "index_p50_ms": 0.4, "index_p99_ms": 1.0}]}
    text = bench.serving_markdown(figures)
    assert "| `ials` | `ease` | 200 | 1.0000 | 0.9900 | 0.500 | 2.000 | 0.700 |" in text
    assert "| `ials` | `ease` | all (exact) |" in text
    assert "| 100,000 | `faiss-hnsw` | 800 | 9.00 | 0.850 | 7.000 | 9.000 | 0.400 | 1.000 |" in text
    bench.write_section(target, bench.SERVING_HEADING, text)
    bench.write_section(target, bench.SERVING_HEADING, text.replace("0.9900", "0.9800"))
    written = target.read_text()
    assert written.count(bench.SERVING_HEADING) == 1 and "0.9800" in written and "0.9900" not in written
    assert written.startswith("# Benchmarks\n\n## Models\n\n| a |\n\n## Notes\n\n* kept\n")
