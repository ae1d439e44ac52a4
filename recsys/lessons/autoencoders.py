"""Autoencoders: why AutoRec's reconstruction error counts only the ratings people gave."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from recsys.data import synthetic
from recsys.data.dataset import Dataset
from recsys.data.split import SplitConfig, make_split
from recsys.lessons.base import Context, Lesson, LessonResult
from recsys.models.base import param

MASK_CHOICES = ("About the person's usual rating, as with the mask",
                "Something near 0: it learned that an empty cell means a rating of 0",
                "Higher ratings than the masked model")
USUAL, NEAR_ZERO, HIGHER = range(3)
SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42}
# an unmasked model "collapses" when its unrated-cell predictions fall below this share of the
# mean rating: closer to 0 than to any star a person gave
COLLAPSED = 0.5


@dataclass
class MaskKnobs:
    users: int = param(300, help="People in the generated world.", low=50, high=3000)
    items: int = param(200, help="Films in the generated world.", low=20, high=2000)
    epochs: int = param(40, help="Training epochs of each AutoRec.", low=1, high=200)
    seed: int = param(3, help="Seed of the generated world and of the models' training.", low=0, high=10_000)


@lru_cache(maxsize=4)
def rating_world(users: int, items: int, seed: int) -> Dataset:
    world = synthetic.simulate(users, items, seed)
    return synthetic.to_dataset(world.interactions, world.items, name=f"ratings world ({users} people)")


def autorec_params(knobs: MaskKnobs, masked: bool) -> dict:
    # presence_weight 0: the paper's AutoRec, whose scores are its raw rating reconstructions;
    # a small code and a larger step keep the two fits to a few seconds
    return {"masked": masked, "presence_weight": 0.0, "embedding_size": 64, "lr": 0.01,
            "epochs": knobs.epochs, "seed": knobs.seed}


def unobserved_mean(model, seen) -> float:
    """Mean raw reconstruction over the cells nobody rated in training (not clipped to the stars)."""
    scores = np.asarray(model.score(np.arange(seen.shape[0])), np.float64)
    return float(scores[~seen.toarray().astype(bool)].mean())


def verdict(masked_mean: float, unmasked_mean: float, rating_mean: float) -> int:
    """Which choice the two models' unrated-cell predictions make right."""
    if unmasked_mean < COLLAPSED * rating_mean:
        return NEAR_ZERO
    return HIGHER if unmasked_mean > masked_mean else USUAL


def masked_loss(knobs: MaskKnobs, context: Context) -> LessonResult:
    ds = rating_world(knobs.users, knobs.items, knobs.seed)
    split = make_split(ds, SplitConfig.coerce(SPLIT))
    train, test = split.train, split.test
    rating_mean = float(train.rating.mean())
    rows = []
    for masked in (True, False):
        model, _ = context.train(ds, SPLIT, "autorec", autorec_params(knobs, masked))
        predicted = np.asarray(model.predict(test.user, test.item), np.float64)
        rows.append({"loss": "observed ratings only (mask on)" if masked else "every cell, empty = 0 (mask off)",
                     "mean prediction, unrated cells": unobserved_mean(model, train.seen),
                     "test RMSE": float(np.sqrt(np.mean((predicted - test.rating) ** 2)))})
    table = pd.DataFrame(rows)
    figures = {"masked_unobserved": float(table.iloc[0, 1]), "unmasked_unobserved": float(table.iloc[1, 1]),
               "masked_rmse": float(table.iloc[0, 2]), "unmasked_rmse": float(table.iloc[1, 2]),
               "rating_mean": rating_mean, "density": train.n_interactions / (ds.n_users * ds.n_items)}
    correct = verdict(figures["masked_unobserved"], figures["unmasked_unobserved"], rating_mean)
    return LessonResult(figures=figures, correct=correct, explanation=_explain(figures, correct),
                        tables={"AutoRec with and without the mask": table})


def _explain(f: dict[str, float], correct: int) -> str:
    head = (f"Only {f['density']:.0%} of the matrix's cells hold a rating (mean {f['rating_mean']:.2f}). "
            f"With the mask, AutoRec predicts {f['masked_unobserved']:.2f} on average for the cells nobody "
            f"rated and scores a test RMSE of {f['masked_rmse']:.3f}; without it, {f['unmasked_unobserved']:.2f} "
            f"and {f['unmasked_rmse']:.3f}. ")
    if correct == NEAR_ZERO:
        return head + ("Unmasked, the empty cells outnumber the ratings, so the cheapest reconstruction is 0 "
                       "almost everywhere: the model learns 'not rated' instead of 'how much would they like "
                       "it'. The mask keeps the error on the ratings people actually gave.")
    return head + ("Here the unmasked model did not collapse toward 0: the matrix is dense enough, or training "
                   "too short, for the empty cells to dominate; make the world sparser or train longer.")


LESSONS = [
    Lesson(
        key="autorec_mask",
        chapter="Autoencoders",
        title="Why the autoencoder's loss is masked",
        framing=(
            "AutoRec feeds each film's column of ratings through a narrow layer and reconstructs it. Most "
            "cells of that column are empty and enter the network as 0. The paper counts the reconstruction "
            "error on the given ratings only (a mask). Train it twice on a generated world, with the mask "
            "and counting every cell, and compare what each predicts where nobody rated."
        ),
        question="Without the mask, what does AutoRec predict for a film a person has not rated?",
        choices=MASK_CHOICES,
        Knobs=MaskKnobs,
        compute=masked_loss,
    ),
]
