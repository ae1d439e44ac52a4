"""Non-personalised baselines: random and popularity (all-time or time-decayed trending)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.models.base import Recommender, param
from recsys.models.registry import register

SECONDS_PER_DAY = 86_400.0


def _hash_uniform(users: np.ndarray, n_items: int, seed: int) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) per (seed, user, item), vectorised.

    A splitmix64-style mix, so the same user gets the same random list on every call
    without storing a users x items matrix.
    """
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)) ^ (
            np.arange(n_items, dtype=np.uint64)[None, :] * np.uint64(0xBF58476D1CE4E5B9)
        )
        x ^= np.uint64(seed) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(40)).astype(np.float32) / np.float32(2**24)


@register
class RandomModel(Recommender):
    key = "random"
    label = "Random"
    family = "baseline"
    description = "Uniformly random items: the floor every model must clear."

    @dataclass
    class Params:
        seed: int = param(42, help="Random seed.", low=0)

    def _fit(self, train, *, valid, progress):
        progress(1, 1)

    def _score(self, users):
        return _hash_uniform(users, self.train_.n_items, self.params.seed)


@register
class PopularityModel(Recommender):
    key = "pop"
    label = "Most popular"
    family = "baseline"
    description = "Everyone gets the same list: the most-consumed items, all-time or trending."

    @dataclass
    class Params:
        mode: str = param("all_time", help="All-time counts, or trending: counts decayed by age.",
                          choices=("all_time", "trending"))
        half_life_days: float = param(30.0, help="Trending: an interaction this old counts half.",
                                      low=0.1, high=3650.0, log=True)

    def _fit(self, train, *, valid, progress):
        weights = np.ones(train.n_interactions)
        if self.params.mode == "trending" and train.timestamp is not None:
            age_days = (train.timestamp.max() - train.timestamp) / SECONDS_PER_DAY
            weights = np.exp2(-age_days / self.params.half_life_days)
        self.popularity_ = np.bincount(train.item, weights=weights, minlength=train.n_items).astype(np.float32)
        progress(1, 1)

    def _score(self, users):
        return np.broadcast_to(self.popularity_, (len(users), len(self.popularity_))).copy()

    def score_history(self, items) -> np.ndarray:
        return self.popularity_.copy()

    def score_histories(self, histories) -> np.ndarray:
        return np.tile(self.popularity_, (len(histories), 1))
