"""Two-stage serving on real MovieLens-100K: retrieving 200 candidates from an approximate
index over factor embeddings (iALS, PureSVD, BPR-MF) keeps at least 95 % of the exact top-10
(per-user random 80/20, seed 42, default parameters, every user, training items never
recommended)."""

from __future__ import annotations

import pytest

from recsys.data.split import random_holdout
from recsys.models import create
from recsys.serving.retrieval import build_index, candidate_recall, exact_top, retrieve, serving_tradeoff

pytestmark = pytest.mark.quality
CANDIDATES, K, FLOOR = 200, 10, 0.95


@pytest.fixture(scope="module")
def train(ml100k):
    return random_holdout(ml100k, 0.2, 42)[0]


@pytest.fixture(scope="module")
def fitted(train):
    """Each model fitted once for the module (BPR-MF takes ~20 s on one core)."""
    cache = {}

    def get(key: str):
        if key not in cache:
            cache[key] = create(key).fit(train)
        return cache[key]

    return get


@pytest.mark.parametrize("method", ["hnsw", "hnsw_l2", "ivf"])
@pytest.mark.parametrize("key", ["ials", "pure_svd", "bpr_mf"])
def test_200_candidates_keep_the_exact_top_10(train, fitted, key, method):
    # bpr_mf adds an item bias: retrieval must search on the augmented vectors to match its scores
    index, queries = build_index(fitted(key), method)
    assert index.backend == f"faiss-{method}", "faiss-cpu is in requirements.txt; the fallback is not an ANN"
    candidates = retrieve(index, queries, CANDIDATES, train.seen)
    truth = exact_top(queries, index.item_vectors, K, train.seen)
    recall = candidate_recall(candidates, truth)
    assert len(recall) == train.n_users
    assert recall.mean() >= FLOOR, f"{key}/{method}: {recall.mean():.4f}"


def test_retrieve_with_ials_then_rank_with_ease_keeps_eases_top_10(fitted):
    result = serving_tradeoff(fitted("ials"), fitted("ease"), candidate_counts=(50, CANDIDATES), k=K, recall_users=None,
                              latency_requests=50)
    by_count = result.table.set_index("candidates")
    assert by_count.loc[CANDIDATES, "recall"] >= FLOOR
    # fewer candidates can only lose EASE favourites that iALS ranks low, never gain any
    assert by_count.loc[50, "recall"] <= by_count.loc[CANDIDATES, "recall"] + 1e-12
