"""Transformers for sequences: SASRec's causal mask, and what its position embeddings add."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.lessons.base import Context, Lesson, LessonResult
from recsys.models.base import param

POSITION_CHOICES = ("Much worse: without positions it cannot tell the order of the history",
                    "About the same: the causal mask and the newest item already carry the order",
                    "Better: positions only add noise")
WORSE, SAME, BETTER = range(3)
SPLIT = {"method": "leave_last", "n": 1, "seed": 42}
# HR@10 differences under this count as equal: a few users' last item in a few hundred
SAME_HR = 0.05


@dataclass
class PositionKnobs:
    users: int = param(400, help="People in the generated log.", low=50, high=3000)
    items: int = param(300, help="Films laid out in a row.", low=50, high=3000)
    length: int = param(20, help="Films each person watched, in order.", low=4, high=100)
    max_step: int = param(6, help="Each person walks the row with one step from ±1 to ±this.", low=1, high=20)
    epochs: int = param(20, help="Training epochs of each SASRec.", low=1, high=100)
    seed: int = param(0, help="Seed of the log and of the models' training.", low=0, high=10_000)


@lru_cache(maxsize=4)
def walk_log(users: int, items: int, length: int, max_step: int, seed: int) -> Dataset:
    """People walking a row of films with a fixed step each (e.g. 10, 13, 16, ...): the next film
    follows from the order of the last two, which a bag of the history does not show directly."""
    rng = np.random.default_rng(seed)
    step_sizes = np.r_[-max_step:0, 1:max_step + 1]
    steps = rng.choice(step_sizes, users)
    span = np.abs(steps) * (length - 1)
    if span.max() >= items:
        raise DataError(f"A walk of {length} films with steps up to {max_step} needs more than {span.max()} "
                        "films in the row; add films or shorten the walks.")
    start = np.where(steps > 0, rng.integers(0, items - span), rng.integers(span, items))
    walked = start[:, None] + steps[:, None] * np.arange(length)[None, :]
    frame = pd.DataFrame({"user": np.repeat(np.arange(users), length), "item": walked.ravel(),
                          "ts": np.tile(np.arange(length), users)})
    return Dataset.from_frame(frame, rating=None, timestamp="ts", name=f"walks ({users} people)")


def sasrec_params(knobs: PositionKnobs, positions: bool) -> dict:
    # two blocks at dropout 0.3 (SASRec's defaults when the lesson was written): its walks need order
    # read through two hops, and its prepared workshop runs keep their ids
    return {"positions": positions, "epochs": knobs.epochs, "embedding_size": 32, "max_len": knobs.length,
            "layers": 2, "dropout": 0.3, "seed": knobs.seed}


def verdict(hr_on: float, hr_off: float) -> int:
    if hr_on - hr_off >= SAME_HR:
        return WORSE
    return BETTER if hr_off - hr_on >= SAME_HR else SAME


def attention_table(model, history: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """Last layer's attention (first head) over ``history`` (item codes): row = the position looking,
    column = the position looked at, films named by their ids in the log."""
    weights = model.attention(history)[-1, 0]
    names = [f"{t + 1}: film {item_ids[code]}" for t, code in enumerate(history)]
    return pd.DataFrame(weights, index=names, columns=names)


def positions_lesson(knobs: PositionKnobs, context: Context) -> LessonResult:
    ds = walk_log(knobs.users, knobs.items, knobs.length, knobs.max_step, knobs.seed)
    rows, models = [], {}
    for positions in (True, False):
        model, report = context.train(ds, SPLIT, "sasrec", sasrec_params(knobs, positions))
        models[positions] = model
        rows.append({"position embeddings": "on" if positions else "off",
                     "HR@10": report.means["hit@10"], "NDCG@10": report.means["ndcg@10"]})
    table = pd.DataFrame(rows)
    # the first person's oldest films (item codes), few enough for a readable map
    history = ds.histories_in_time_order().of(0)[:min(knobs.length - 1, 8)]
    attention = attention_table(models[True], history, ds.item_ids)
    future = float(np.abs(np.triu(attention.to_numpy(), 1)).max())
    figures = {"hr_on": float(table.iloc[0, 1]), "hr_off": float(table.iloc[1, 1]),
               "ndcg_on": float(table.iloc[0, 2]), "ndcg_off": float(table.iloc[1, 2]),
               "future_attention": future}
    correct = verdict(figures["hr_on"], figures["hr_off"])
    return LessonResult(figures=figures, correct=correct, explanation=_explain(figures, correct),
                        tables={"SASRec with and without positions": table,
                                "Where each position looks (positions on)": attention})


def _explain(f: dict[str, float], correct: int) -> str:
    head = (f"Leave-last-out HR@10: {f['hr_on']:.3f} with position embeddings, {f['hr_off']:.3f} without "
            f"(NDCG@10 {f['ndcg_on']:.3f} vs {f['ndcg_off']:.3f}). In the attention map every weight above the "
            f"diagonal, on a later film, is {f['future_attention']:.0f}: the causal mask lets a position see "
            "only itself and the past, in training as in scoring. ")
    if correct == WORSE:
        return head + ("Without positions each position sees a bag of the films before it, and the bag does "
                       "not say which came last but one: the step of the walk is lost.")
    if correct == SAME:
        return head + ("The mask already carries much of the order: each position attends over its own past "
                       "and the newest film sits at the last position, so here the model recovers the step "
                       "from which films are in the bag without being told their places.")
    return head + "Here the runs without positions did better: at this size the extra table only added noise."


LESSONS = [
    Lesson(
        key="sasrec_positions",
        chapter="Transformers for sequences",
        title="Causal mask and positions in SASRec",
        framing=(
            "SASRec reads a person's films in order and predicts the next one. Two things give it the order: "
            "the causal mask (a position may look only at itself and earlier films) and a learned embedding "
            "of each position added to its film. In a generated log people walk a row of films with a fixed "
            "step; train SASRec with and without the position embeddings and look at where it attends."
        ),
        question="Without position embeddings, how well does SASRec predict each person's next film?",
        choices=POSITION_CHOICES,
        Knobs=PositionKnobs,
        compute=positions_lesson,
    ),
]
