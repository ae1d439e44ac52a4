"""Evaluation: NDCG built up from cumulative gain, term by term, beside the set metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.errors import DataError
from recsys.evaluation import metrics
from recsys.lessons.base import Context, Lesson, LessonResult, parse_numbers
from recsys.models.base import param

SWAP_CHOICES = ("It goes up", "It goes down", "It stays the same")


@dataclass
class NdcgKnobs:
    relevance: str = param("1, 3, 0, 2, 0, 0, 1, 0, 0, 0",
                           help="Relevance grade of each recommended item, top of the list first (0 = not relevant).")
    missed: str = param("3", help="Grades of relevant items the list did not show (they raise the ideal list).")
    k: int = param(10, help="Cut-off: only the top k positions count.", low=1, high=50)
    swap_a: int = param(1, help="First position to swap for the question.", low=1, high=50)
    swap_b: int = param(2, help="Second position to swap.", low=1, high=50)


def worked_terms(grades: np.ndarray, missed: np.ndarray, k: int) -> pd.DataFrame:
    """One row per position: gain, discount, DCG term and running DCG, and the ideal list's."""
    shown = grades[:k]
    ideal = np.sort(np.concatenate([grades, missed]))[::-1][:k]
    ideal = np.pad(ideal, (0, max(0, len(shown) - len(ideal))))[: len(shown)]
    discount = metrics.discounts(len(shown))
    return pd.DataFrame({
        "position": np.arange(1, len(shown) + 1),
        "grade (gain)": shown,
        "discount 1/log2(position+1)": discount,
        "DCG term": shown * discount,
        "DCG so far": np.cumsum(shown * discount),
        "ideal grade": ideal,
        "IDCG so far": np.cumsum(ideal * discount),
    })


def scores(grades: np.ndarray, missed: np.ndarray, k: int) -> dict[str, float]:
    """The list's metrics, computed by the evaluator's own functions."""
    k = min(k, len(grades))
    everything = np.concatenate([grades, missed])
    ideal = np.sort(everything)[::-1]
    ideal = np.pad(ideal, (0, max(0, k - len(ideal))))[None, :]
    hits = (grades[None, :k] > 0)
    n_relevant = np.array([int((everything > 0).sum())])
    return {
        "ndcg_graded": float(metrics.ndcg_graded(grades[None, :k], ideal, k)[0]),
        "ndcg_binary": float(metrics.ndcg(hits, n_relevant, k)[0]),
        "precision": float(metrics.precision(hits, k)[0]),
        "recall": float(metrics.recall(hits, n_relevant, k)[0]),
        "f1": float(metrics.f1(hits, n_relevant, k)[0]),
        "average_precision": float(metrics.average_precision(hits, n_relevant, k)[0]),
    }


def ndcg_walkthrough(knobs: NdcgKnobs, context: Context) -> LessonResult:
    grades = np.array(parse_numbers(knobs.relevance, "Relevance grades", low=0, high=10, min_len=1))
    missed = np.array(parse_numbers(knobs.missed, "Missed grades", low=0, high=10, min_len=0)) \
        if str(knobs.missed).strip() else np.zeros(0)
    k = min(knobs.k, len(grades))
    for name, position in (("swap_a", knobs.swap_a), ("swap_b", knobs.swap_b)):
        if position > len(grades):
            raise DataError(f"{name} is position {position}, but the list has {len(grades)} items.")
    before = scores(grades, missed, k)
    swapped = grades.copy()
    a, b = knobs.swap_a - 1, knobs.swap_b - 1
    swapped[[a, b]] = swapped[[b, a]]
    after = scores(swapped, missed, k)
    change = after["ndcg_graded"] - before["ndcg_graded"]
    correct = 0 if change > 1e-12 else 1 if change < -1e-12 else 2
    figures = {**before, "ndcg_graded_after_swap": after["ndcg_graded"], "change": change}
    terms = worked_terms(grades, missed, k)
    dcg, idcg = float(terms["DCG term"].sum()), float(terms["IDCG so far"].iloc[-1])
    explanation = (
        f"DCG@{k} = {dcg:.3f} (the sum of the DCG terms) and the ideal list's IDCG@{k} = {idcg:.3f}, so "
        f"NDCG@{k} = {before['ndcg_graded']:.3f}. Swapping positions {knobs.swap_a} and {knobs.swap_b} "
        f"(grades {grades[a]:g} and {grades[b]:g}) gives {after['ndcg_graded']:.3f}: "
        + _swap_reason(grades[a], grades[b], a, b, k)
    )
    comparison = pd.DataFrame({"metric": list(before), "this list": list(before.values()),
                               "after the swap": [after[m] for m in before]})
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"Term by term": terms, "Every metric on the same list": comparison})


def _swap_reason(grade_a: float, grade_b: float, a: int, b: int, k: int) -> str:
    if grade_a == grade_b:
        return "equal grades trade places, so no term changes."
    if min(a, b) >= k:
        return f"both positions lie below the cut-off k = {k}, so neither counts."
    upper, lower = (grade_a, grade_b) if a < b else (grade_b, grade_a)
    if upper > lower:
        return "the better item moves down to a smaller discount, so NDCG falls."
    return "the better item moves up to a larger discount, so NDCG rises."


LESSONS = [
    Lesson(
        key="ndcg_by_hand",
        chapter="Evaluation",
        title="NDCG from gains to the ideal list",
        framing=(
            "A ranked list earns each item's relevance grade as gain, discounted by how far down it sits; "
            "dividing by the best list that could have been shown puts every user on a 0-1 scale. "
            "Edit the grades and see every term."
        ),
        question="If you swap the two chosen positions, what happens to NDCG?",
        choices=SWAP_CHOICES,
        Knobs=NdcgKnobs,
        compute=ndcg_walkthrough,
    ),
]
