"""Hybrids: score normalisation, blending, the weight search and the switching rule,
each against a hand-worked case or an independent brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.errors import DataError
from recsys.data.split import random_holdout
from recsys.data.synthetic import make_dataset
from recsys.evaluation.validation import validation_ndcg
from recsys.models import create
from recsys.models.hybrid import coordinate_search, normalise_scores


@pytest.fixture(scope="module")
def data():
    ds = make_dataset(n_users=200, n_items=150, seed=3)
    return random_holdout(ds, 0.2, seed=0)


def _zscore_reference(row: np.ndarray, excluded: set[int]) -> np.ndarray:
    """Plain-Python z-score of one row, statistics over the non-excluded finite cells."""
    pool = [row[i] for i in range(len(row)) if i not in excluded and np.isfinite(row[i])]
    mean = sum(pool) / len(pool)
    std = (sum((x - mean) ** 2 for x in pool) / len(pool)) ** 0.5
    return np.array([(x - mean) / std for x in row])


# ---------------------------------------------------------------------------- normalisation


def test_zscore_uses_only_recommendable_items():
    scores = np.array([[1.0, 2.0, 3.0, 10.0], [4.0, 4.0, 0.0, 8.0]])
    seen = sp.csr_matrix(np.array([[0, 0, 0, 1], [1, 0, 0, 0]]))
    out = normalise_scores(scores, seen, "zscore")
    np.testing.assert_allclose(out[0], _zscore_reference(scores[0], {3}))
    np.testing.assert_allclose(out[1], _zscore_reference(scores[1], {0}))
    # row 0 by hand: mean 2, std sqrt(2/3) over the first three items
    np.testing.assert_allclose(out[0, :3], [-1 / np.sqrt(2 / 3), 0.0, 1 / np.sqrt(2 / 3)])


def test_minmax_constant_rows_and_unscorable_items():
    scores = np.array([[2.0, 4.0, -np.inf, 6.0], [5.0, 5.0, 5.0, 5.0]])
    out = normalise_scores(scores, None, "minmax")
    # (s - 2) / 4, and the unscorable item takes the row's lowest value rather than -inf
    np.testing.assert_allclose(out[0], [0.0, 0.5, 0.0, 1.0])
    np.testing.assert_allclose(out[1], 0.0)
    with pytest.raises(ValueError, match="zscore"):
        normalise_scores(scores, None, "softmax")


# ---------------------------------------------------------------------------- weighted hybrid


def test_weights_one_zero_give_the_first_components_ranking(data):
    train, _ = data
    users = np.arange(train.n_users)
    hybrid = create("hybrid_weighted", components="ease,item_knn", weights="1,0").fit(train)
    ease = create("ease").fit(train)
    np.testing.assert_array_equal(hybrid.recommend(users, 20)[0], ease.recommend(users, 20)[0])
    np.testing.assert_allclose(hybrid.weights_, [1.0, 0.0])


def test_explicit_weights_blend_the_per_user_zscores(data):
    train, _ = data
    users = np.array([0, 7, 42, 199])
    hybrid = create("hybrid_weighted", components="ease,pop", weights="3,1").fit(train)
    ease, pop = create("ease").fit(train), create("pop").fit(train)
    expected = []
    for u, e_row, p_row in zip(users, ease.score(users), pop.score(users)):
        seen = set(train.seen[u].indices)
        expected.append(0.75 * _zscore_reference(e_row.astype(float), seen)
                        + 0.25 * _zscore_reference(p_row.astype(float), seen))
    np.testing.assert_allclose(hybrid.score(users), np.array(expected), rtol=1e-4, atol=1e-5)


def test_auto_weights_are_never_worse_than_any_single_component_on_validation(data):
    train, _ = data
    inner, valid = random_holdout(train, 0.2, seed=5)
    hybrid = create("hybrid_weighted", components="ease,item_knn,pop").fit(inner, valid=valid)
    assert hybrid.weights_.sum() == pytest.approx(1.0) and (hybrid.weights_ >= 0).all()
    # a valid split is used as given: no carving, components fitted on the training data
    assert all(m.train_ is inner for m in hybrid.components_)
    singles = []
    for key in ("ease", "item_knn", "pop"):
        singles.append(validation_ndcg(create(key).fit(inner)._score, inner, valid))
    np.testing.assert_allclose(hybrid.component_validation_ndcg_, singles, rtol=1e-5)
    achieved = validation_ndcg(hybrid._score, inner, valid)
    assert achieved == pytest.approx(hybrid.validation_ndcg_, abs=1e-6)
    assert achieved >= max(singles) - 1e-9


def test_without_a_validation_split_the_weights_come_from_a_carved_holdout(data):
    train, _ = data
    hybrid = create("hybrid_weighted", components="ease,pop", holdout=0.2).fit(train)
    # the final components are refitted on the whole training set
    assert all(m.train_ is train for m in hybrid.components_)
    assert np.isfinite(hybrid.validation_ndcg_)
    inner, held = random_holdout(train, 0.2, seed=42)
    pop_alone = validation_ndcg(create("pop").fit(inner)._score, inner, held)
    assert hybrid.component_validation_ndcg_[1] == pytest.approx(pop_alone, rel=1e-6)


def test_coordinate_search_finds_a_grid_optimum():
    target = np.array([0.2, 0.3, 0.5])
    weights, value = coordinate_search(lambda w: -np.sum((w - target) ** 2), 3)
    # rescaling the other weights moves off the grid, so the optimum is reached to ~1e-6
    np.testing.assert_allclose(weights, target, atol=1e-4)
    assert value == pytest.approx(0.0, abs=1e-8)
    # a function best at a vertex ends at that single model
    weights, _ = coordinate_search(lambda w: w[1], 3)
    np.testing.assert_allclose(weights, [0.0, 1.0, 0.0])


@pytest.mark.parametrize("overrides, message", [
    ({"components": "ease,no_such_model"}, "Unknown component"),
    ({"components": "ease,hybrid_switching"}, "cannot contain another hybrid"),
    ({"components": "ease,ease"}, "twice"),
    ({"components": "ease,pop", "weights": "1,2,3"}, "3 weight"),
    ({"components": "ease,pop", "weights": "1,-1"}, "non-negative"),
    ({"components": "ease,pop", "weights": "lots"}, "comma-separated numbers"),
])
def test_bad_hybrid_parameters_say_what_to_fix(data, overrides, message):
    train, _ = data
    with pytest.raises(DataError, match=message):
        create("hybrid_weighted", **overrides).fit(train)


def test_score_history_blends_components_and_is_absent_when_one_cannot_fold_in(data):
    train, _ = data
    hybrid = create("hybrid_weighted", components="ease,item_knn", weights="0.5,0.5").fit(train)
    items = train.positives[3].indices
    ease, knn = hybrid.components_
    expected = 0.5 * _zscore_reference(ease.score_history(items).astype(float), set(items)) \
        + 0.5 * _zscore_reference(knn.score_history(items).astype(float), set(items))
    np.testing.assert_allclose(hybrid.score_history(items), expected, rtol=1e-4, atol=1e-5)
    with_user_knn = create("hybrid_weighted", components="ease,user_knn", weights="0.5,0.5").fit(train)
    assert getattr(with_user_knn, "score_history", None) is None
    # a component weighted 0 takes no part, so it cannot stop the others from folding in
    user_knn_unused = create("hybrid_weighted", components="ease,user_knn", weights="1,0").fit(train)
    np.testing.assert_allclose(user_knn_unused.score_history(items),
                               _zscore_reference(ease.score_history(items).astype(float), set(items)),
                               rtol=1e-4, atol=1e-5)
    assert getattr(create("hybrid_weighted"), "score_history", None) is None


# ---------------------------------------------------------------------------- switching hybrid


def test_switching_routes_users_by_history_length(data):
    train, _ = data
    threshold = int(np.median(train.user_activity))
    model = create("hybrid_switching", threshold=threshold, collaborative="item_knn").fit(train)
    content, knn = create("content_tfidf").fit(train), create("item_knn").fit(train)
    users = np.arange(train.n_users)
    cold = train.user_activity < threshold
    assert 0 < cold.sum() < len(users)
    np.testing.assert_array_equal(model.routes_to_content(users), cold)
    scores = model.score(users)
    np.testing.assert_allclose(scores[cold], content.score(users[cold]), rtol=1e-6)
    np.testing.assert_allclose(scores[~cold], knn.score(users[~cold]), rtol=1e-6)


def test_switching_thresholds_at_the_extremes(data):
    train, _ = data
    users = np.arange(train.n_users)
    everyone_content = create("hybrid_switching", threshold=1000).fit(train)
    assert everyone_content.routes_to_content(users).all()
    everyone_collaborative = create("hybrid_switching", threshold=1).fit(train)
    np.testing.assert_allclose(everyone_collaborative.score(users), create("ease").fit(train).score(users),
                               rtol=1e-6)


def test_switching_score_history_switches_by_history_length(data):
    train, _ = data
    model = create("hybrid_switching", threshold=4).fit(train)
    content, ease = model.components_
    short, long = np.array([1, 2, 3]), np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(model.score_history(short), content.score_history(short))
    np.testing.assert_array_equal(model.score_history(long), ease.score_history(long))
    no_fold_in = create("hybrid_switching", collaborative="user_knn").fit(train)
    assert getattr(no_fold_in, "score_history", None) is None
