"""Contract every registered model must meet; a new model is tested the moment it is registered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.data.errors import DataError
from recsys.models import create, describe_params, registry
from recsys.models.base import FitCancelled

N_GROUPS, USERS_PER_GROUP, ITEMS_PER_GROUP, HELD_PER_USER = 3, 8, 8, 2
NON_PERSONALISED = {"random", "pop"}


def _block_data(seed: int = 0):
    """Users in group g consumed the items of group g; each user's last 2 are held out.

    Any personalised model must put exactly the held-out pair on top (the only unseen
    in-group items), popularity cannot (all items are equally popular by construction).
    """
    rng = np.random.default_rng(seed)
    rows = []
    genres = ["Western", "Horror", "Musical"]
    for g in range(N_GROUPS):
        for u in range(USERS_PER_GROUP):
            user = g * USERS_PER_GROUP + u
            items = g * ITEMS_PER_GROUP + np.arange(ITEMS_PER_GROUP)
            hidden = items[[u % ITEMS_PER_GROUP, (u + 3) % ITEMS_PER_GROUP]]
            for t, item in enumerate(rng.permutation(items)):
                rows.append((user, int(item), float(rng.integers(3, 6)), 1000 * user + t, item in hidden))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "ts", "held"])
    items = pd.DataFrame({
        "item": np.arange(N_GROUPS * ITEMS_PER_GROUP),
        "title": [f"{genres[i // ITEMS_PER_GROUP]} story {i}" for i in range(N_GROUPS * ITEMS_PER_GROUP)],
        "genres": [(genres[i // ITEMS_PER_GROUP],) for i in range(N_GROUPS * ITEMS_PER_GROUP)],
    })
    ds = Dataset.from_frame(df, timestamp="ts", items=items, name="blocks")
    held_mask = df["held"].to_numpy()
    return ds.subset(~held_mask, "blocks train"), ds.subset(held_mask, "blocks test")


def test_default_construction_and_params_round_trip(key):
    model = create(key)
    params = model.get_params()
    assert create(key, **params).get_params() == params
    for field in describe_params(model.Params):
        assert field["help"], f"{key}.{field['name']} has no help text"
    assert model.family and model.label


def test_unknown_and_out_of_range_params_are_refused(key):
    with pytest.raises(DataError, match="Unknown parameter"):
        create(key, not_a_param=1)
    for field in dataclasses.fields(registry[key].Params):
        if field.metadata.get("low") is not None:
            with pytest.raises(DataError, match=field.name):
                create(key, **{field.name: field.metadata["low"] - 1})
            break


def test_fit_returns_self_and_score_shape(key, blocks):
    train, _ = blocks
    model = create(key)
    assert model.fit(train) is model
    users = np.array([0, 5, 23])
    scores = model.score(users)
    assert scores.shape == (3, train.n_items)
    assert scores.dtype == np.float32
    assert not np.isnan(scores).any()


def test_recommend_never_returns_seen_items(fitted, blocks):
    train, _ = blocks
    users = np.arange(train.n_users)
    items, scores = fitted.recommend(users, k=5)
    seen = train.seen.toarray().astype(bool)
    valid = items >= 0
    assert not seen[np.repeat(users, 5)[valid.ravel()], items[valid]].any()
    assert (np.diff(scores, axis=1) <= 1e-6).all(), "scores must come best first"


def test_recovers_held_out_block_pattern(key, fitted, blocks):
    if key in NON_PERSONALISED:
        pytest.skip("non-personalised baseline cannot recover a per-user pattern")
    if getattr(fitted, "ranks_by_predicted_rating", False):
        pytest.skip("a rating regressor learns how people rate, not what they consume (its loss='bce' "
                    "variant is checked below)")
    train, test = blocks
    users = np.arange(train.n_users)
    items, _ = fitted.recommend(users, k=HELD_PER_USER)
    truth = test.positives.toarray().astype(bool)
    recovered = truth[users[:, None], items].mean()
    # A sequential model learns the blocks only through next-item statistics: here 5 transitions
    # per user in random order (120 in all), which a model with capacity to spare partly memorises
    # as if the order meant something. With defaults tuned on MovieLens, SASRec recovers 98-100 %
    # over seeds 42/1/2 and GRU4Rec (128 units) 90-98 % (64 units: 100 %, but 0.02 lower HR@10 on
    # MovieLens). Guessing among the 18 unseen items would recover 11 %.
    required = 0.85 if fitted.family == "sequential" else 1.0
    assert recovered >= required, f"{key} recovered {recovered:.0%} of the held-out pattern"


def test_same_seed_same_model(key, blocks):
    train, _ = blocks
    a = create(key).fit(train).score(np.arange(train.n_users))
    b = create(key).fit(train).score(np.arange(train.n_users))
    np.testing.assert_array_equal(a, b)


def test_fit_reports_progress_and_can_be_cancelled(key, blocks):
    train, _ = blocks
    calls = []
    create(key).fit(train, progress=lambda step, total, metrics: calls.append((step, total)))
    assert calls and calls[-1][0] == calls[-1][1], "the last progress call must say the fit is complete"

    def cancel(step, total, metrics):
        raise FitCancelled

    with pytest.raises(FitCancelled):
        create(key).fit(train, progress=cancel)


def test_unfitted_model_says_so(key):
    with pytest.raises(RuntimeError, match="not fitted"):
        create(key).score(np.array([0]))


def test_the_classification_loss_of_the_rating_model_recovers_the_pattern(blocks):
    train, test = blocks
    model = create("mf_sgd", loss="bce", epochs=200, init_std=0.1).fit(train)
    users = np.arange(train.n_users)
    items, _ = model.recommend(users, k=HELD_PER_USER)
    truth = test.positives.toarray().astype(bool)
    assert truth[users[:, None], items].mean() >= 0.9
