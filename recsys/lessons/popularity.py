"""Popularity bias: how much of every list goes to the few blockbusters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data import load
from recsys.data.dataset import Dataset
from recsys.data.split import SplitConfig, make_split
from recsys.lessons.base import Context, Lesson, LessonResult, Setup
from recsys.models.base import param

SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42}
MODELS = (("pop", "Most popular"), ("item_knn", "Item-item kNN"), ("ease", "EASE"), ("ials", "iALS"))
TRAP_CHOICES = (
    "About their share of the catalogue",
    "About their share of what people watched",
    "Well above even their share of what people watched: the lists amplify popularity",
    "Less than their share of the catalogue",
)


@dataclass
class TrapKnobs:
    blockbusters: int = param(200, help="How many of the most-watched films count as blockbusters.", low=1,
                              high=100_000)
    k: int = param(10, help="List length.", low=1, high=50)


def head_share(recommended: np.ndarray, head: np.ndarray, k: int) -> float:
    """Share of the filled top-k slots that hold a head item."""
    top = recommended[:, :k]
    filled = top >= 0
    return float(head[np.maximum(top, 0)][filled].mean())


def popularity_trap(knobs: TrapKnobs, context: Context) -> LessonResult:
    ds: Dataset = context.dataset if context.dataset is not None else load("sample")
    train = make_split(ds, SplitConfig.coerce(SPLIT)).train
    count = min(knobs.blockbusters, max(1, train.n_items - 1))
    head = np.zeros(train.n_items, dtype=bool)
    head[train.items_by_popularity()[:count]] = True
    catalogue_share = count / train.n_items
    watched_share = float(head[train.item].mean())
    rows = []
    for key, label in MODELS:
        _, report = context.train(ds, SPLIT, key, {})
        share = head_share(report.recommended, head, knobs.k)
        rows.append({"model": label, f"top-{knobs.k} slots on the blockbusters": share,
                     "times their catalogue share": share / catalogue_share,
                     f"NDCG@{knobs.k}": report.means.get(f"ndcg@{knobs.k}", float("nan"))})
    table = pd.DataFrame(rows)
    personalised = table.iloc[1:][f"top-{knobs.k} slots on the blockbusters"].to_numpy()
    typical = float(np.median(personalised))
    correct = _verdict(typical, catalogue_share, watched_share)
    figures = {"blockbusters": float(count), "catalogue_share": catalogue_share, "watched_share": watched_share,
               "personalised_median_share": typical, "popularity_share": float(table.iloc[0, 1]),
               **{f"{key}_share": float(v) for (key, _), v in zip(MODELS, table.iloc[:, 1])}}
    explanation = (
        f"The {count} most-watched films are {catalogue_share:.0%} of the catalogue and took "
        f"{watched_share:.0%} of the training interactions. The personalised models give them "
        + ", ".join(f"{label} {share:.0%}" for (_, label), share in zip(MODELS[1:], personalised))
        + f" of their top-{knobs.k} slots (the popularity list: {figures['popularity_share']:.0%}). "
        + _why(correct, typical, catalogue_share, watched_share)
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Where the lists go": table})


def _verdict(share: float, catalogue_share: float, watched_share: float) -> int:
    if share < 0.5 * catalogue_share:
        return 3
    if abs(share - catalogue_share) < abs(share - watched_share):
        return 0
    # a tenth above the data's own concentration is more than sampling noise in a list of lists
    return 2 if share > 1.1 * watched_share else 1


def _why(correct: int, share: float, catalogue_share: float, watched_share: float) -> str:
    if correct == 2:
        return (f"That is {share / catalogue_share:.1f}× their catalogue share and more than even their share "
                "of what people watched: a model learns from co-watching, and the blockbusters were co-watched "
                "with everything, so every list leans on them, and the next log, trained on what was shown, "
                "leans further. That is the popularity trap.")
    if correct == 1:
        return ("The lists mirror the log: blockbusters get the share people gave them, far above their "
                "catalogue share. Re-ranking for coverage or novelty is how a page gives the rest a chance.")
    if correct == 0:
        return "Here the lists spread like the catalogue itself: these models are not leaning on the head."
    return "The lists avoid the head almost entirely: the models were tuned away from popularity."


LESSONS = [
    Lesson(
        key="popularity_trap",
        chapter="Popularity bias",
        title="The popularity trap: 200 blockbusters",
        framing=(
            "A few films are watched by almost everyone; most are watched by few. A recommender learns from "
            "that log, and what it shows becomes the next log. Count how many slots of each model's top "
            "10 go to the 200 most-watched films, and set that against their share of the catalogue and of "
            "what people actually watched."
        ),
        question="How much of the personalised models' top-10 slots goes to the 200 most-watched films?",
        choices=TRAP_CHOICES,
        Knobs=TrapKnobs,
        compute=popularity_trap,
        setup=Setup(runs=tuple((key, {}) for key, _ in MODELS), page="compare"),
    ),
]
