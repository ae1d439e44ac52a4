"""LightGCN on real MovieLens-100K with DEFAULT parameters (per-user random 80/20, seed 42).

The issue's floor is 0.42 (the best library implementation measured beside it reached
0.419). The defaults (reg 1e-3 on the ego embeddings, 120 epochs) came from a small grid:
with the earlier reg 1e-5 / 80 epochs LightGCN overfitted (0.412, and 0.392 at 150 epochs).
Mini-batches of 16384 triples at lr 0.01 need a quarter of the graph propagations of 4096 at
0.005 and give NDCG@10 0.427 / 0.438 / 0.426 on split seeds 42 / 1 / 2 (0.428 / 0.434 / 0.427
with the smaller batches).
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.split import random_holdout
from recsys.evaluation import evaluate
from recsys.models import create

pytestmark = pytest.mark.quality


@pytest.fixture(scope="module")
def split(ml100k):
    return random_holdout(ml100k, 0.2, 42)


@pytest.fixture(scope="module")
def lightgcn(split):
    return create("lightgcn").fit(split[0])


def test_lightgcn_reaches_its_floor(split, lightgcn):
    train, test = split
    ndcg = evaluate(lightgcn, train, test, k=[10], bootstrap=0).means["ndcg@10"]
    assert ndcg >= 0.42, ndcg


def test_lightgcn_fold_in_agrees_with_the_trained_users(split, lightgcn):
    train, _ = split
    users = np.arange(0, train.n_users, 10)
    direct, _ = lightgcn.recommend(users, k=10)
    overlaps = []
    for row, user in enumerate(users):
        history = train.positives[user].indices
        scores = lightgcn.score_history(history)
        scores[history] = -np.inf
        overlaps.append(len(set(np.argsort(-scores)[:10]) & set(direct[row])) / 10)
    assert np.mean(overlaps) >= 0.6, np.mean(overlaps)
