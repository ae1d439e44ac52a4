"""Batched fold-in: ``score_histories`` scores many new people at once and equals ``score_history`` one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.synthetic import make_dataset
from recsys.models.registry import create


@pytest.fixture(scope="module")
def train():
    return make_dataset(n_users=300, n_items=150, seed=3)


def histories(train, rng) -> list[np.ndarray]:
    """Histories of every shape a visitor brings: empty, one item, repeats, long, and a few training users'."""
    people = [np.array([], np.int64), np.array([7]), np.array([5, 5, 9, 5]), rng.choice(train.n_items, 60, replace=False)]
    return people + [train.positives[u].indices for u in (0, 11, 42)]


# the batched overrides (one product or one solve) and one model that folds in person by person (LightGCN)
@pytest.mark.parametrize("key, params", [("item_knn", {}), ("ease", {"reg": 50.0}), ("pure_svd", {}),
                                         ("ials", {"iterations": 3}), ("pop", {}), ("lightgcn", {"epochs": 1})])
def test_a_batch_of_histories_scores_as_each_one_alone(train, key, params):
    model = create(key, **params).fit(train)
    people = histories(train, np.random.default_rng(0))
    batch = model.score_histories(people)
    one_by_one = np.vstack([np.asarray(model.score_history(items), np.float32).ravel() for items in people])
    assert batch.shape == (len(people), train.n_items) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-6)
    if key != "pop":  # popularity is everyone's answer; the others differ per person, so mixed-up rows would show
        assert not np.allclose(batch[3], batch[4])
    assert model.score_histories([]).shape == (0, train.n_items)


@pytest.mark.parametrize("key", ["item_knn", "ease", "pure_svd"])
def test_folding_in_training_users_reproduces_their_scores(train, key):
    """kNN, EASE and PureSVD score a training user from the history alone, so fold-in is exact for them."""
    model = create(key).fit(train)
    users = np.array([0, 11, 42, 199])
    folded = model.score_histories([train.positives[u].indices for u in users])
    np.testing.assert_allclose(folded, model.score(users), rtol=1e-4, atol=1e-5)


def test_a_model_without_fold_in_says_so(train):
    model = create("bpr_mf", epochs=1).fit(train)
    with pytest.raises(TypeError, match="has no fold-in"):
        model.score_histories([[1, 2]])
