"""Accuracy floors of the sequential family on real MovieLens-100K, DEFAULT parameters.

Protocol: leave-last-out (each user's newest interaction by time, ties broken by item id,
is the test item), full ranking over all 1682 items, training items excluded, HR@10 and
NDCG@10. There is one split (it has no seed) and each torch model is fitted once with its
default seed, so every number here is deterministic on a given machine. Measured with the
defaults (one torch thread): markov HR@10 0.177 / NDCG@10 0.098, sasrec 0.200 / 0.104
(30 epochs at lr 0.01; 0.189 / 0.098 at the earlier lr 0.003), gru4rec 0.200 / 0.107 (10 epochs;
0.190 / 0.102 at the earlier 12, before the blocked cross-entropy and byte dropout changed its
random stream), pop 0.050 / 0.025. The floors are the issue's. `markov` by default
mixes the transition rows of the last five items, a stronger baseline than the plain
first-order chain (``window=1``: HR@10 0.149, as the issue measured); both neural models
must beat that plain chain by a clear margin, and the default chain too.
Popularity is checked too: it anchors how much the order of events adds.
"""

from __future__ import annotations

import pytest

from recsys.data.split import leave_last_out
from recsys.evaluation import evaluate
from recsys.models import create

pytestmark = pytest.mark.quality

FLOORS = {
    "markov": {"hit@10": 0.14},
    "gru4rec": {"hit@10": 0.15},
    "sasrec": {"hit@10": 0.18, "ndcg@10": 0.095},
}


@pytest.fixture(scope="module")
def split(ml100k):
    return leave_last_out(ml100k, n=1)


@pytest.fixture(scope="module")
def means(split):
    train, test = split
    cache = {}

    def get(key: str) -> dict:
        if key not in cache:
            model = create(key).fit(train)
            cache[key] = evaluate(model, train, test, k=[10], bootstrap=0).means
        return cache[key]

    return get


def test_popularity_is_the_weak_anchor(means):
    assert 0.035 <= means("pop")["hit@10"] <= 0.065


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_sequential_models_reach_their_floor(key, means):
    got = means(key)
    for metric, floor in FLOORS[key].items():
        assert got[metric] >= floor, f"{key} {metric} = {got[metric]:.4f} < {floor}"
    assert got["hit@10"] >= 2.5 * means("pop")["hit@10"]


@pytest.mark.parametrize("key", ["sasrec", "gru4rec"])
def test_neural_sequence_models_beat_the_plain_first_order_chain(key, split, means):
    train, test = split
    plain = evaluate(create("markov", window=1).fit(train), train, test, k=[10], bootstrap=0).means
    assert 0.14 <= plain["hit@10"] <= 0.16, plain  # the textbook chain, as measured in the issue (0.149)
    assert means(key)["hit@10"] > plain["hit@10"] + 0.01


@pytest.mark.parametrize("key", ["sasrec", "gru4rec"])
def test_neural_sequence_models_beat_the_default_markov_baseline(key, means):
    # "a sequential model that does not beat markov is not done": measured +0.023 (sasrec), +0.023 (gru4rec)
    assert means(key)["hit@10"] > means("markov")["hit@10"] + 0.005
    assert means(key)["ndcg@10"] >= means("markov")["ndcg@10"] - 0.002
