"""Accuracy floors on real MovieLens-100K (issue: foundation). Per-user random 80/20, full ranking,
training items excluded, every rating an interaction, DEFAULT parameters.

Floors move about +-0.01 from split to split, so each is asserted on the mean of three split seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.split import random_holdout
from recsys.evaluation import evaluate
from recsys.models import create

pytestmark = pytest.mark.quality
SEEDS = (42, 1, 2)


@pytest.fixture(scope="module")
def splits(ml100k):
    return [random_holdout(ml100k, 0.2, seed) for seed in SEEDS]


def mean_ndcg(key: str, splits, **params) -> float:
    values = []
    for train, test in splits:
        model = create(key, **params).fit(train)
        values.append(evaluate(model, train, test, k=[10], bootstrap=0).means["ndcg@10"])
    return float(np.mean(values))


@pytest.mark.parametrize("key", ["item_knn", "user_knn"])
def test_knn_defaults_reach_the_floor(key, splits):
    assert mean_ndcg(key, splits) >= 0.40


def test_popularity_matches_the_known_figure(splits):
    assert mean_ndcg("pop", splits) == pytest.approx(0.22, abs=0.015)


def test_random_is_far_below_popularity(splits):
    assert mean_ndcg("random", splits[:1]) < 0.05


def test_content_model_uses_metadata_beyond_random(splits):
    # genres + title words of ML-100K carry a little signal: well above random, below collaborative models
    ndcg = mean_ndcg("content_tfidf", splits[:1])
    assert 0.03 < ndcg < 0.40


def test_trending_popularity_differs_from_all_time(ml100k, splits):
    train, _ = splits[0]
    all_time = create("pop").fit(train).recommend([0], k=20)[0]
    trending = create("pop", mode="trending", half_life_days=7).fit(train).recommend([0], k=20)[0]
    assert set(all_time[0]) != set(trending[0])


def test_knn_rating_prediction_beats_the_global_mean(ml100k):
    from recsys.data.split import random_holdout

    train, test = random_holdout(ml100k, 0.2, 42)
    baseline = np.sqrt(np.mean((test.rating - train.rating.mean()) ** 2))
    for key in ("item_knn", "user_knn"):
        model = create(key, similarity="pearson").fit(train)
        pred = model.predict(test.user, test.item)
        rmse = np.sqrt(np.mean((np.clip(pred, 1, 5) - test.rating) ** 2))
        assert rmse < baseline - 0.1, f"{key}: RMSE {rmse:.3f} vs global mean {baseline:.3f}"
