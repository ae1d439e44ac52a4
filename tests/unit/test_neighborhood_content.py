"""Neighbourhood and content models against brute-force references and known properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data import Dataset
from recsys.models import create
from recsys.models.similarity import center


def _random_dataset(seed=0, n_users=30, n_items=20, density=0.3, explicit=True):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, 0] = True  # every user has something
    u, i = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(u)).astype(float) if explicit else np.ones(len(u))
    return Dataset.from_frame(pd.DataFrame({"user": u, "item": i, "rating": ratings}))


def _cosine(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_item_cosine_equals_brute_force(seed):
    ds = _random_dataset(seed)
    model = create("item_knn", k=ds.n_items, user_weight=0.0).fit(ds)
    x = ds.positives.toarray()
    expected = np.array([[0.0 if i == j else _cosine(x[:, i], x[:, j]) for i in range(ds.n_items)]
                         for j in range(ds.n_items)])
    np.testing.assert_allclose(model.weights_.toarray(), expected, atol=1e-6)


def test_item_jaccard_with_shrinkage_equals_brute_force():
    ds = _random_dataset(3)
    shrink = 5.0
    model = create("item_knn", similarity="jaccard", k=ds.n_items, shrinkage=shrink).fit(ds)
    x = ds.seen.toarray().astype(bool)
    n = ds.n_items
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                co = (x[:, i] & x[:, j]).sum()
                union = (x[:, i] | x[:, j]).sum()
                expected[j, i] = co / union * co / (co + shrink) if union else 0.0
    np.testing.assert_allclose(model.weights_.toarray(), expected, atol=1e-6)


def test_item_knn_keeps_only_k_neighbours_per_item():
    ds = _random_dataset(4)
    model = create("item_knn", k=3).fit(ds)
    per_candidate = np.diff(model.weights_.tocsc().indptr)  # column i = the neighbours of item i
    assert per_candidate.max() <= 3


def test_user_knn_neighbours_are_the_k_most_similar():
    ds = _random_dataset(5)
    model = create("user_knn", k=4, item_weight=0.0, locality=1.0).fit(ds)
    x = ds.positives.toarray()
    nb = model.neighbours(np.array([7])).toarray().ravel()
    sims = np.array([0.0 if v == 7 else _cosine(x[7], x[v]) for v in range(ds.n_users)])
    assert set(np.flatnonzero(nb)) == set(np.argsort(-sims, kind="stable")[:4])
    np.testing.assert_allclose(nb[np.flatnonzero(nb)], sims[np.flatnonzero(nb)], atol=1e-6)


def test_center_handles_empty_rows_and_columns():
    m = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
    rows = center(m, 1).toarray()
    np.testing.assert_allclose(rows, [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    cols = center(m, 0).toarray()
    np.testing.assert_allclose(cols, [[-0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, 0.0]])


def test_rating_prediction_equals_weighted_formula():
    ds = _random_dataset(6)
    model = create("user_knn", similarity="pearson", k=5, locality=1.0).fit(ds)
    r = ds.csr.toarray()
    observed = r > 0
    means = r.sum(1) / observed.sum(1)
    u, i = 3, 5
    nb = model.neighbours(np.array([u])).toarray().ravel()
    who = np.flatnonzero((nb > 0) & observed[:, i])
    expected = means[u] + (nb[who] * (r[who, i] - means[who])).sum() / np.abs(nb[who]).sum() if len(who) else means[u]
    assert model.predict([u], [i])[0] == pytest.approx(expected, abs=1e-4)


def test_pearson_on_implicit_data_is_refused_with_advice():
    from recsys.data.errors import DataError

    ds = _random_dataset(7, explicit=False)
    with pytest.raises(DataError, match="cosine or jaccard"):
        create("item_knn", similarity="pearson").fit(ds)


def _catalogue():
    genres = [("Horror",), ("Horror",), ("Horror",), ("Comedy",), ("Comedy",), ("Comedy",), ("Horror",)]
    titles = ["Night Scream", "Blood Moon", "Dark Cellar", "Happy Days", "Funny Farm", "Laugh Track", "Scream Again"]
    items = pd.DataFrame({"item": range(7), "title": titles, "genres": genres})
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2, 2], "item": [0, 1, 3, 4, 2, 5], "rating": [5.0] * 6})
    return Dataset.from_frame(df, items=items)


def test_content_model_scores_a_cold_item_by_its_metadata():
    ds = _catalogue()
    assert ds.item_popularity[6] == 0, "item 6 has no interactions at all"
    model = create("content_tfidf", min_df=1).fit(ds)
    items, _ = model.recommend([0], k=2)
    assert 6 in items[0], "a horror fan must be offered the unseen horror title"
    assert 2 in items[0]


def test_content_explain_names_the_most_similar_history_item():
    ds = _catalogue()
    model = create("content_tfidf", min_df=1).fit(ds)
    (item, sim), = model.explain(0, 6)
    assert item == 0  # "Scream Again" is explained by "Night Scream": same genre and a shared title word
    assert sim > 0.5


def test_content_model_needs_metadata():
    from recsys.data.errors import DataError

    with pytest.raises(DataError, match="metadata"):
        create("content_tfidf").fit(_random_dataset(8))
