"""Accuracy floors of the factorization and neural families on real MovieLens-100K, DEFAULT parameters.

Protocol: per-user random 80/20 (ceil(0.2 n) held out), full ranking, training items excluded,
every rating an interaction, NDCG@10.

How the floors are asserted: the issue's floors were measured on one split elsewhere and
move about +-0.01 from split to split. Here the two closed-form references sit at or just
under their floors: over split seeds 0-9, EASE (lambda=500) spans 0.445-0.457, mean 0.450
(seed 42, at 0.443, is lower than all ten), and PureSVD (20 factors) 0.427-0.440, mean 0.434;
both agree with a twenty-line numpy/scipy implementation. So each floor is asserted as
``floor - 0.01``: on the mean of seeds 42 / 1 / 2 for the fast models, on seed 42 for the
slow ones (to keep this file inside a few minutes).
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.loaders import load_movielens_100k_fold
from recsys.data.split import random_holdout
from recsys.evaluation import evaluate
from recsys.models import create
from recsys.serving.ranking import top_k

pytestmark = pytest.mark.quality
SEEDS = (42, 1, 2)
TOLERANCE = 0.01
# bpr_mf: cornac's BPR on the same split; ials: its own NDCG@10 before it was made faster
FAST_FLOORS = {"ease": 0.455, "pure_svd": 0.44, "ials": 0.443, "bpr_mf": 0.422}
# the autoencoders: their seed-42 NDCG@10 at the faster defaults, rounded down (0.435, 0.444, 0.436)
SLOW_FLOORS = {"mult_vae": 0.43, "cdae": 0.44, "autorec": 0.43, "neumf": 0.39}
ABOVE_POPULARITY = ("ncf_gmf", "ncf_mlp", "autorec", "mf_sgd")


@pytest.fixture(scope="module")
def splits(ml100k):
    return {seed: random_holdout(ml100k, 0.2, seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def fitted(splits):
    """Models fitted once on seed 42 and shared by the tests below."""
    cache = {}

    def get(key: str):
        if key not in cache:
            train, _ = splits[42]
            cache[key] = create(key).fit(train)
        return cache[key]

    return get


def ndcg(model, split) -> float:
    train, test = split
    return evaluate(model, train, test, k=[10], bootstrap=0).means["ndcg@10"]


@pytest.mark.parametrize("key", sorted(FAST_FLOORS))
def test_fast_models_reach_their_floor_on_three_seeds(key, splits, fitted):
    values = [ndcg(fitted(key) if seed == 42 else create(key).fit(splits[seed][0]), splits[seed]) for seed in SEEDS]
    assert np.mean(values) >= FAST_FLOORS[key] - TOLERANCE, values


@pytest.mark.parametrize("key", sorted(SLOW_FLOORS))
def test_slow_models_reach_their_floor(key, splits, fitted):
    assert ndcg(fitted(key), splits[42]) >= SLOW_FLOORS[key] - TOLERANCE


@pytest.mark.parametrize("key", ABOVE_POPULARITY)
def test_other_models_beat_popularity(key, splits, fitted):
    assert ndcg(fitted(key), splits[42]) > ndcg(fitted("pop"), splits[42]) + 0.02


@pytest.mark.parametrize("key", ["ease", "ials", "mult_vae"])
def test_fold_in_reproduces_the_training_users_top_10(key, splits, fitted):
    train, _ = splits[42]
    model = fitted(key)
    users = np.arange(0, train.n_users, 5)
    direct, _ = model.recommend(users, k=10)
    folded = np.stack([model.score_history(train.positives[u].indices) for u in users]).astype(np.float32)
    via_history, _ = top_k(folded, 10, exclude=train.seen[users])
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(direct, via_history)])
    assert overlap >= (1.0 if key == "ease" else 0.95), overlap


def test_biased_mf_rmse_on_the_canonical_u1_split(data_dir):
    train, test = load_movielens_100k_fold(data_dir / "ml-100k", "u1")
    model = create("mf_sgd").fit(train)
    rmse = float(np.sqrt(np.mean((model.predict(test.user, test.item) - test.rating) ** 2)))
    global_mean = float(np.sqrt(np.mean((train.rating.mean() - test.rating) ** 2)))
    assert rmse <= 0.915, rmse
    assert rmse < global_mean - 0.2


def test_same_seed_gives_the_same_torch_model(splits):
    train, _ = splits[42]
    a = create("bpr_mf", epochs=3).fit(train).score(np.arange(50))
    b = create("bpr_mf", epochs=3).fit(train).score(np.arange(50))
    np.testing.assert_array_equal(a, b)
