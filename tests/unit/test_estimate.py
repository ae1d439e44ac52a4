"""recsys.estimate: the probe scales a model's measured cost from a sample to the whole data.

The models here spend a fake clock's time (a known cost per interaction, per epoch and per fit),
so every estimate can be checked against the number it must come to, with no real timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recsys import estimate
from recsys.data import Dataset
from recsys.models.base import Recommender, param


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = FakeClock()
SETUP, PER_INTERACTION, FIXED, SCORE_PER_USER = 0.5, 1e-3, 3.0, 0.01


@dataclass
class EpochParams:
    epochs: int = param(50, help="passes", low=1)
    factors: int = param(64, help="size", low=1)
    patience: int = param(3, help="patience", low=0)


class EpochModel(Recommender):
    """Setup once, then an epoch costing PER_INTERACTION per interaction × factors / 64."""

    key, label, family, iterative = "fake_epochs", "Fake epochs", "baseline", True
    Params = EpochParams
    fits = 0

    def _fit(self, train, *, valid, progress):
        type(self).fits += 1
        CLOCK.now += SETUP
        for epoch in range(1, self.params.epochs + 1):
            CLOCK.now += PER_INTERACTION * train.n_interactions * self.params.factors / 64
            if valid is not None:  # validating costs as much per interaction as training, here
                CLOCK.now += PER_INTERACTION * valid.n_interactions
            progress(epoch, self.params.epochs, {"loss": 1.0 / epoch})
        self.n_items_ = train.n_items

    def _score(self, users):
        CLOCK.now += SCORE_PER_USER * len(users)
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


@dataclass
class OneShotParams:
    lam: float = param(1.0, help="penalty", low=0.0)


class OneShotModel(Recommender):
    """A fixed cost (an item-item inverse) plus PER_INTERACTION per interaction."""

    key, label, family = "fake_one_shot", "Fake one-shot", "baseline"
    Params = OneShotParams

    def _fit(self, train, *, valid, progress):
        CLOCK.now += FIXED + PER_INTERACTION * train.n_interactions
        self.n_items_ = train.n_items

    def _score(self, users):
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


@pytest.fixture(autouse=True)
def fresh_cache():
    estimate._cache.clear()
    yield
    estimate._cache.clear()


@pytest.fixture
def train() -> Dataset:
    """400 users × 50 items, 20 interactions each: 8,000 interactions."""
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(400), 20)
    items = np.concatenate([rng.choice(50, 20, replace=False) for _ in range(400)])
    frame = pd.DataFrame({"user": users, "item": items, "rating": np.ones(len(users))})
    return Dataset.from_frame(frame, user="user", item="item", rating="rating", feedback="implicit")


def probe(cls, params, train, **kw):
    return estimate.probe(cls, params, train, clock=CLOCK, **kw)


def test_the_probe_sample_keeps_every_item_and_only_the_drawn_users(train):
    sample, share, no_valid = estimate.probe_sample(train, 2_000, seed=1)
    assert no_valid is None
    assert sample.n_items == train.n_items and (sample.item_ids == train.item_ids).all()
    drawn = sample.n_users
    assert 0 < drawn < train.n_users and sample.n_interactions == 20 * drawn  # whole users
    assert share == pytest.approx(sample.n_interactions / train.n_interactions)
    assert 0.15 < share < 0.35
    assert set(sample.user_ids) <= set(train.user_ids)
    assert estimate.probe_sample(train, 10_000, seed=1) == (train, 1.0, None)  # small data: all of it


def test_an_iterative_model_is_timed_per_epoch_and_scaled_to_the_whole_data(train):
    guess = probe(EpochModel, {}, train, max_interactions=2_000, n_eval_users=400)
    # two epochs on the share: the second one's time scaled up is the epoch on all 8,000 interactions
    assert guess.per_epoch == pytest.approx(PER_INTERACTION * 8_000)
    assert guess.fixed == pytest.approx(SETUP)  # the setup counts once
    assert guess.epochs == 50
    assert guess.scoring == pytest.approx(SCORE_PER_USER * 400)
    assert guess.seconds == pytest.approx(SETUP + 50 * 8.0 + 4.0)
    assert guess.long and guess.describe() == "about 6 min 40 s (8.0 s per epoch × 50 epochs)"
    assert guess.with_epochs(5).seconds == pytest.approx(SETUP + 5 * 8.0 + 4.0)


def test_validating_each_epoch_is_part_of_the_epoch(train):
    valid = train.subset(np.tile(np.arange(20) < 5, 400), "valid")  # five of each user's interactions
    guess = probe(EpochModel, {}, train, valid=valid, max_interactions=2_000)
    assert guess.per_epoch == pytest.approx(PER_INTERACTION * (8_000 + 2_000))
    sample, share, sample_valid = estimate.probe_sample(train, 2_000, seed=0, valid=valid)
    assert sample_valid.n_users == sample.n_users and sample_valid.n_interactions == 5 * sample.n_users
    assert (sample_valid.user_ids == sample.user_ids).all()


def test_a_slow_first_epoch_ends_the_probe_there(train):
    guess = probe(EpochModel, {"factors": 640}, train, max_interactions=2_000, max_seconds=1.0)
    # the first epoch of the share took far longer than allowed: it is the measurement, setup included
    share = guess.sample_share
    assert guess.per_epoch == pytest.approx((SETUP + PER_INTERACTION * 10 * 8_000 * share) / share)
    assert guess.fixed == 0.0


def test_a_one_shot_model_separates_its_fixed_cost_from_the_growing_part(train):
    guess = probe(OneShotModel, {}, train, max_interactions=2_000)
    assert guess.per_epoch is None and guess.epochs is None
    assert guess.fixed == pytest.approx(FIXED + PER_INTERACTION * 8_000)  # not (3 + 2) / share
    assert guess.seconds == pytest.approx(11.0)


def test_estimates_are_probed_once_per_setting_whatever_the_epochs(train):
    calls = []

    def prober(cls, params, data, **kw):
        calls.append(dict(params))
        return probe(cls, params, data, max_interactions=2_000, **kw)

    first = estimate.estimate_fit(EpochModel, {"epochs": 10}, train, prober=prober)
    again = estimate.estimate_fit(EpochModel, {"epochs": 40}, train, prober=prober)
    assert len(calls) == 1
    assert (first.epochs, again.epochs) == (10, 40)
    assert again.per_epoch == first.per_epoch
    estimate.estimate_fit(EpochModel, {"factors": 32}, train, prober=prober)  # another setting: probed
    assert len(calls) == 2


def test_the_quick_setting_cuts_epochs_then_the_embedding(train):
    def estimator(cls, params, data, **kw):
        return estimate.estimate_fit(cls, params, data, prober=lambda *a, **k: probe(*a, max_interactions=2_000, **k))

    # 8 s per epoch at size 64: 30 s affords 3 epochs (setup 0.5 s)
    settings, guess = estimate.quick_setting(EpochModel, {}, train, target=30.0, estimator=estimator)
    assert estimate.changed(estimate.full_params(EpochModel, {}), settings) == {"epochs": (50, 3)}
    assert guess.seconds <= 30.0
    # a size 8x larger: even 3 epochs are too long, so the embedding is halved until they fit
    settings, guess = estimate.quick_setting(EpochModel, {"factors": 512}, train, target=30.0, estimator=estimator)
    assert settings["factors"] == 64 and settings["epochs"] == 3
    assert guess.seconds <= 30.0
    assert estimate.quick_setting(OneShotModel, {}, train, estimator=estimator) is None


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "under a second"), (12.3, "about 12 s"), (95, "about 1 min 40 s"),
                                               (600, "about 10 min"), (4000, "about 1 h 7 min")])
def test_durations_in_words(seconds, text):
    assert estimate.duration_text(seconds) == text
