"""Neighbourhood methods: which similarity finds the right neighbours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.lessons.base import Context, Lesson, LessonResult, Setup, parse_numbers
from recsys.models import similarity
from recsys.models.base import param

CHOICES = ("Cosine only", "Pearson only", "Both", "Neither")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the mean-centred vectors: a rater's generosity (their mean) drops out."""
    return cosine(a - a.mean(), b - b.mean())


@dataclass
class HarshRaterKnobs:
    generous: str = param("5, 5, 4, 4", help="Ratings of a generous person (you), one per film.")
    harsh_same_taste: str = param("3, 3, 1, 1", help="A harsh rater who likes and dislikes the same films.")
    generous_opposite: str = param("4, 4, 5, 5", help="A generous rater with the opposite taste.")
    neighbours: int = param(5, help="Neighbours listed for the real harsh rater of the sample.", low=1, high=20)


def _vectors(knobs: HarshRaterKnobs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    you = np.array(parse_numbers(knobs.generous, "Generous rater", low=0.5, high=10))
    same = np.array(parse_numbers(knobs.harsh_same_taste, "Harsh rater", low=0.5, high=10))
    opposite = np.array(parse_numbers(knobs.generous_opposite, "Opposite rater", low=0.5, high=10))
    if not len(you) == len(same) == len(opposite):
        raise DataError(f"Give the three raters the same number of films; got {len(you)}, {len(same)} "
                        f"and {len(opposite)} ratings.")
    return you, same, opposite


def similarity_table(you: np.ndarray, same: np.ndarray, opposite: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "compared with you": ["harsh rater, same taste", "generous rater, opposite taste"],
        "cosine": [cosine(you, same), cosine(you, opposite)],
        "pearson": [pearson(you, same), pearson(you, opposite)],
    })


def harshest_rater(ds: Dataset, min_ratings: int = 20) -> int:
    """The user with the lowest mean rating among those with enough ratings to compare."""
    means = similarity.row_means(ds.csr)
    eligible = ds.user_activity >= min(min_ratings, int(ds.user_activity.max()))
    return int(np.flatnonzero(eligible)[np.argmin(means[eligible])])


def neighbour_table(ds: Dataset, user: int, metric: str, n: int) -> pd.DataFrame:
    """A real user's n nearest neighbours under ``metric`` on the rating matrix, with overlaps."""
    vectors = similarity.prepare(ds.csr, metric)
    sim = similarity.pairwise_block(vectors, np.array([user]), metric, ds.seen, 0.0)[0]
    order = np.argsort(-sim, kind="stable")[:n]
    seen = sp.csr_matrix(ds.seen, dtype=np.float64)
    overlap = np.asarray((seen[order] @ seen[user].T).todense()).ravel()
    means = similarity.row_means(ds.csr)
    return pd.DataFrame({
        "neighbour": [str(ds.user_ids[u]) for u in order],
        "similarity": sim[order],
        "films rated by both": overlap.astype(int),
        "their mean rating": means[order],
    })


def harsh_rater(knobs: HarshRaterKnobs, context: Context) -> LessonResult:
    dataset = context.dataset
    you, same, opposite = _vectors(knobs)
    table = similarity_table(you, same, opposite)
    cos_prefers_same = table.at[0, "cosine"] > table.at[1, "cosine"]
    pea_prefers_same = table.at[0, "pearson"] > table.at[1, "pearson"]
    correct = {(True, False): 0, (False, True): 1, (True, True): 2, (False, False): 3}[
        (bool(cos_prefers_same), bool(pea_prefers_same))]
    figures = {
        "cosine_same": float(table.at[0, "cosine"]), "cosine_opposite": float(table.at[1, "cosine"]),
        "pearson_same": float(table.at[0, "pearson"]), "pearson_opposite": float(table.at[1, "pearson"]),
    }
    explanation = (
        f"With these ratings cosine gives the same-taste harsh rater {figures['cosine_same']:.3f} and the "
        f"opposite-taste generous one {figures['cosine_opposite']:.3f}; Pearson gives "
        f"{figures['pearson_same']:.3f} and {figures['pearson_opposite']:.3f}. "
        + _why(cos_prefers_same, pea_prefers_same)
    )
    tables = {"Similarity to you": table}
    if dataset is not None and dataset.feedback == "explicit":
        user = harshest_rater(dataset)
        mean = float(similarity.row_means(dataset.csr)[user])
        figures["harsh_user_mean"] = mean
        for metric in ("cosine", "pearson"):
            found = neighbour_table(dataset, user, metric, knobs.neighbours)
            figures[f"{metric}_neighbour_mean"] = float(found["their mean rating"].mean())
            tables[f"{metric.capitalize()} neighbours of user {dataset.user_ids[user]} (mean rating {mean:.2f})"] = found
    return LessonResult(figures=figures, correct=correct, explanation=explanation, tables=tables)


def _why(cos_prefers_same: bool, pea_prefers_same: bool) -> str:
    if pea_prefers_same and not cos_prefers_same:
        return ("Cosine compares raw stars, so two people who both give high stars look alike even when "
                "they like opposite films; Pearson first subtracts each person's own average, so only the "
                "pattern of likes and dislikes counts.")
    if pea_prefers_same and cos_prefers_same:
        return ("Here both agree: the raters' averages are close enough that the raw stars already "
                "follow the taste. Make the harsh rater harsher to see cosine change its mind.")
    if cos_prefers_same:
        return "Here only cosine picks the same-taste rater: the vectors barely vary around their means."
    return "Neither picks the same-taste rater with these vectors: their patterns of likes differ."


LESSONS = [
    Lesson(
        key="harsh_raters",
        chapter="Neighbourhood methods",
        title="Cosine or Pearson for a harsh rater?",
        framing=(
            "Some people give three stars to a film they love; others give four to one they merely "
            "sat through. A neighbourhood recommender must decide who is 'like you' from stars alone. "
            "Edit the three people's ratings and watch both similarities."
        ),
        question="Which similarity finds that the harsh rater with your taste is more like you than the "
                 "generous rater with the opposite taste?",
        choices=CHOICES,
        Knobs=HarshRaterKnobs,
        compute=harsh_rater,
        setup=Setup(runs=(("user_knn", {"similarity": "cosine"}), ("user_knn", {"similarity": "pearson"})),
                    page="train"),
    ),
]
