"""Contract every registered model must meet; a new model is tested the moment it is registered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.data.errors import DataError
from recsys.models import create, describe_params, registry
from recsys.models.base import FitCancelled, coerce_params, id_params, legacy_names, with_defaults
from recsys.models.training import TorchParams

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


# ---------------------------------------------------------------------- shared names and defaults
def test_every_legacy_name_points_at_a_field_and_builds_the_same_params(key):
    cls = registry[key]
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    for old, current in legacy_names(cls.Params).items():
        assert current in fields and old not in fields, f"{key}: {old} -> {current}"
        value = fields[current].default
        assert create(key, **{old: value}).params == create(key).params
        # a run id hashed on the old names: id_params gives them back, and coercing those undoes it
        assert old in id_params(cls.Params, create(key).get_params())


def test_embedding_size_and_reg_are_the_shared_names():
    assert create("ease", lam=123.0).params.reg == 123.0     # the name DESIGN.md and notebooks use
    assert create("ials", factors=12).params.embedding_size == 12
    assert create("sasrec", hidden=16).params.embedding_size == 16
    assert create("mult_vae", latent=40).params.embedding_size == 40
    assert create("ncf_mlp", factors=4).params.mlp_factors == 4
    assert create("mf_sgd", presence_factors=0).params.presence_embedding_size == 0
    assert create("ials", embedding_size=12).params.factors == 12               # old code reading the field
    with pytest.raises(AttributeError, match="no parameter 'nope'"):
        create("ials").params.nope  # noqa: B018
    for key in ("ials", "bpr_mf", "pure_svd", "mf_sgd", "lightgcn", "ncf_gmf", "neumf", "autorec", "cdae",
                "mult_vae", "sasrec", "gru4rec"):
        assert "embedding_size" in {f.name for f in dataclasses.fields(registry[key].Params)}, key
    for key in ("ease", "ials", "bpr_mf", "mf_sgd", "lightgcn", "ncf_gmf", "autorec"):
        assert "reg" in {f.name for f in dataclasses.fields(registry[key].Params)}, key


def test_an_old_and_a_new_name_with_different_values_are_refused():
    with pytest.raises(DataError, match="old name of 'embedding_size'"):
        create("ials", factors=8, embedding_size=16)
    assert create("ials", factors=8, embedding_size=8).params.embedding_size == 8   # the same value is fine


def test_id_params_restores_the_names_run_ids_were_hashed_with():
    params = create("ease", reg=250.0).get_params()
    assert id_params(registry["ease"].Params, params) == {"lam": 250.0}
    # iALS's full parameters exactly as stored runs hashed them before the shared names
    assert id_params(registry["ials"].Params, create("ials").get_params()) == {
        "factors": 64, "reg": 50.0, "alpha": 5.0, "iterations": 15, "solver": "cg", "cg_steps": 3, "seed": 42}
    assert coerce_params(registry["ease"].Params, id_params(registry["ease"].Params, params)).reg == 250.0


def test_with_defaults_changes_defaults_and_keeps_help_and_ranges():
    params_cls = with_defaults(TorchParams, epochs=7, lr=0.5)
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    base = {f.name: f for f in dataclasses.fields(TorchParams)}
    assert params_cls().epochs == 7 and params_cls().lr == 0.5 and params_cls().batch_size == 1024
    assert [f.name for f in dataclasses.fields(params_cls)] == list(base)      # order unchanged
    assert fields["epochs"].metadata == base["epochs"].metadata
    assert TorchParams().epochs == 20                                           # the base is untouched
    with pytest.raises(DataError, match="at most"):
        coerce_params(params_cls, {"epochs": 10**6})
    with pytest.raises(TypeError, match="no field"):
        with_defaults(TorchParams, epoch=3)
    with pytest.raises(TypeError, match="default of epochs"):
        with_defaults(TorchParams, epochs="many")
