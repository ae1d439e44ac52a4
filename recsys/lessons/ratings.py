"""Rating prediction: the magic barrier that the noise in people's stars puts under every model."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from recsys.data import synthetic
from recsys.data.dataset import Dataset
from recsys.data.split import SplitConfig, make_split
from recsys.lessons.base import Context, Lesson, LessonResult
from recsys.models.base import param

BARRIER_CHOICES = ("Yes: a bigger, better-tuned model gets under it",
                   "No: the noise in the stars sets a floor no model passes")
SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42}
STARS = np.arange(1.0, 6.0)


@dataclass
class BarrierKnobs:
    rating_noise: float = param(0.65, help="Spread of the noise in people's stars (the generator's rating_noise).",
                                low=0.0, high=2.0, step=0.05)
    users: int = param(800, help="People in the generated world.", low=100, high=3000)
    items: int = param(500, help="Films in the generated world.", low=50, high=2000)
    seed: int = param(7, help="Seed of the generated world.", low=0, high=10_000)


def star_moments(signal: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of round(clip(signal + noise·ε)) in 1..5 stars, ε standard normal, exactly.

    Each star r collects the probability that signal + noise lands in [r - 0.5, r + 0.5), with
    the ends open at 1 and 5; the variance is what no model that sees only (user, item) removes.
    """
    signal = np.asarray(signal, np.float64)[:, None]
    if noise <= 0:
        stars = np.clip(np.round(signal[:, 0]), 1.0, 5.0)
        return stars, np.zeros_like(stars)
    upper = np.append(STARS[:-1] + 0.5, np.inf)
    lower = np.insert(STARS[1:] - 0.5, 0, -np.inf)
    prob = ndtr((upper - signal) / noise) - ndtr((lower - signal) / noise)
    mean = prob @ STARS
    variance = prob @ STARS**2 - mean**2
    return mean, np.maximum(variance, 0.0)


@lru_cache(maxsize=8)
def _world(users: int, items: int, seed: int, noise: float) -> tuple[Dataset, sp.csr_matrix]:
    world = synthetic.simulate(users, items, seed, rating_noise=noise)
    ds = synthetic.to_dataset(world.interactions, world.items, name=f"ratings world (noise {noise:g})")
    codes_u = ds.user_codes(world.interactions["user_id"].to_numpy())
    codes_i = ds.item_codes(world.interactions["item_id"].to_numpy())
    signal = sp.csr_matrix((world.rating_signal, (codes_u, codes_i)), shape=(ds.n_users, ds.n_items))
    return ds, signal


def _rmse(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(errors**2)))


def magic_barrier(knobs: BarrierKnobs, context: Context) -> LessonResult:
    ds, signal = _world(knobs.users, knobs.items, knobs.seed, knobs.rating_noise)
    split = make_split(ds, SplitConfig.coerce(SPLIT))
    test = split.test
    truth_signal = np.asarray(signal[test.user, test.item]).ravel()
    expected, variance = star_moments(truth_signal, knobs.rating_noise)
    barrier = float(np.sqrt(variance.mean()))
    rows = [("oracle: knows each rating's noiseless signal", _rmse(test.rating - expected))]
    train = split.train
    global_mean = float(train.rating.mean())
    rows.append(("global mean", _rmse(test.rating - global_mean)))
    for key, label in (("mf_sgd", "Biased MF (SGD)"), ("item_knn", "Item-item kNN")):
        params = {"similarity": "pearson"} if key == "item_knn" else {}
        model, _ = context.train(ds, SPLIT, key, params)
        predicted = np.asarray(model.predict(test.user, test.item), np.float64)
        rows.append((label, _rmse(test.rating - predicted)))
    table = pd.DataFrame(rows, columns=["predictor", "test RMSE"])
    table["above the barrier by"] = table["test RMSE"] - barrier
    best_model = table.iloc[2:]["test RMSE"].min()
    # the sampling error of an RMSE over n ratings: a model "passes" only beyond two of them
    standard_error = barrier / np.sqrt(2 * len(test.rating))
    correct = 0 if best_model < barrier - 2 * standard_error else 1
    figures = {"barrier": barrier, "best_model_rmse": float(best_model), "oracle_rmse": float(table.iloc[0, 1]),
               "global_mean_rmse": float(table.iloc[1, 1]), "noise": knobs.rating_noise,
               "test_ratings": float(len(test.rating))}
    explanation = (
        f"With noise {knobs.rating_noise:g} the stars themselves vary around their noiseless signal by "
        f"an RMSE of {barrier:.3f} on these {len(test.rating):,} test ratings: that is the barrier. Even the "
        f"oracle that knows each signal scores {figures['oracle_rmse']:.3f}; the best trained model scores "
        f"{best_model:.3f}, the global mean {figures['global_mean_rmse']:.3f}. "
        + ("A model can only close the gap above the line; the rest is noise that no model can predict."
           if correct == 1 else
           "Here a model dipped under the line by more than sampling error: the world is too small to "
           "measure the barrier exactly; raise the users or items.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Test RMSE against the barrier": table})


LESSONS = [
    Lesson(
        key="magic_barrier",
        chapter="Rating prediction",
        title="The magic barrier",
        framing=(
            "Ask someone to rate the same film twice and the stars differ. That noise is part of every "
            "rating a model learns from, so there is an RMSE no model can beat. In a generated world we "
            "know the noise exactly: the barrier is drawn under the models' errors."
        ),
        question="Can a rating model push its test RMSE below the barrier line?",
        choices=BARRIER_CHOICES,
        Knobs=BarrierKnobs,
        compute=magic_barrier,
    ),
]
