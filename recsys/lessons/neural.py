"""Neural collaborative filtering: does a taste that needs two genres at once need a non-linear model?"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.lessons.base import Context, Lesson, LessonResult
from recsys.models.base import param

GENRES = ("Romance", "Comedy", "Thriller", "Sci-Fi", "Drama", "Horror", "Animation", "Documentary")
MODELS = (("ncf_gmf", "GMF"), ("ncf_mlp", "MLP"), ("neumf", "NeuMF"))
AND_CHOICES = ("GMF", "MLP", "NeuMF", "All three about equally")
SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42}
# top-10 shares on "both genres" closer than this count as equal: about one film in twenty lists
SAME_SHARE = 0.05


@dataclass
class AndKnobs:
    users: int = param(300, help="People in the generated world.", low=50, high=3000)
    items: int = param(200, help="Films in the generated world.", low=30, high=2000)
    genres: int = param(4, help="Genres; each person wants one pair of them together.", low=3, high=len(GENRES))
    genre_share: float = param(0.5, help="Chance that a film carries each genre.", low=0.1, high=0.9, step=0.05)
    watched_share: float = param(0.5, help="Share of the films they would like that each person watched.",
                                 low=0.1, high=1.0, step=0.05)
    factors: int = param(8, help="Embedding size of GMF and predictive factors of the MLP.", low=1, high=64)
    epochs: int = param(20, help="Training epochs of each model.", low=1, high=100)
    seed: int = param(0, help="Seed of the generated world.", low=0, high=10_000)


@dataclass(frozen=True)
class AndWorld:
    """The log, and who would like what: ``likes[u, i]`` over the Dataset's codes."""

    dataset: Dataset
    likes: np.ndarray
    pairs: np.ndarray  # (n_users, 2) the genre pair each person wants together
    flags: np.ndarray  # (n_items, n_genres)


@lru_cache(maxsize=4)
def and_world(users: int, items: int, genres: int, genre_share: float, watched_share: float, seed: int) -> AndWorld:
    """People who like a film only when it has BOTH genres of their pair (rom-com fans: romance AND comedy).

    Each film carries each genre with chance ``genre_share``; each person watched a random
    ``watched_share`` of the films they would like and nothing else, so the log holds the pattern
    and no noise.
    """
    rng = np.random.default_rng(seed)
    flags = rng.random((items, genres)) < genre_share
    all_pairs = np.array(list(combinations(range(genres), 2)))
    pairs = all_pairs[rng.integers(len(all_pairs), size=users)]
    likes = flags[:, pairs[:, 0]].T & flags[:, pairs[:, 1]].T  # (users, items): the AND
    watched = likes & (rng.random(likes.shape) < watched_share)
    user, item = np.nonzero(watched)
    catalogue = pd.DataFrame({
        "item": np.arange(items),
        "title": [f"Film {i}" for i in range(items)],
        "genres": [tuple(GENRES[g] for g in np.flatnonzero(row)) for row in flags],
    })
    ds = Dataset.from_frame(pd.DataFrame({"user": user, "item": item}), rating=None, items=catalogue,
                            name=f"AND world ({users} people, {genres} genres)")
    codes_users, codes_items = ds.user_ids.astype(np.int64), ds.item_ids.astype(np.int64)
    return AndWorld(ds, likes[np.ix_(codes_users, codes_items)], pairs[codes_users], flags[codes_items])


def one_genre(world: AndWorld) -> np.ndarray:
    """likes-shaped mask of films with exactly one genre of the person's pair: the tempting near-misses."""
    first = world.flags[:, world.pairs[:, 0]].T
    second = world.flags[:, world.pairs[:, 1]].T
    return first ^ second


def and_taste(knobs: AndKnobs, context: Context) -> LessonResult:
    world = and_world(knobs.users, knobs.items, knobs.genres, knobs.genre_share, knobs.watched_share, knobs.seed)
    ds = world.dataset
    near_miss = one_genre(world)
    sizes = {"ncf_gmf": {"embedding_size": knobs.factors}, "ncf_mlp": {"mlp_factors": knobs.factors},
             "neumf": {"embedding_size": knobs.factors, "mlp_factors": knobs.factors}}
    rows = []
    for key, label in MODELS:
        _, report = context.train(ds, SPLIT, key, {**sizes[key], "epochs": knobs.epochs})
        top = report.recommended[:, :10]
        users = report.users[:, None]
        valid = top >= 0
        rows.append({"model": label, "NDCG@10": report.means["ndcg@10"],
                     "top 10 with both genres": float(world.likes[users, np.maximum(top, 0)][valid].mean()),
                     "top 10 with one genre only": float(near_miss[users, np.maximum(top, 0)][valid].mean())})
    table = pd.DataFrame(rows)
    shares = table["top 10 with both genres"].to_numpy()
    correct = 3 if shares.max() - shares.min() < SAME_SHARE else int(np.argmax(shares))
    figures = {f"{label.lower()}_both": float(s) for (_, label), s in zip(MODELS, shares)}
    figures.update({f"{label.lower()}_ndcg": float(v) for (_, label), v in zip(MODELS, table["NDCG@10"])})
    figures["chance_both"] = float(world.likes.mean())
    listing = ", ".join(f"{label} {s:.0%}" for (_, label), s in zip(MODELS, shares))
    explanation = (
        f"Share of top-10 slots on films with both genres of the person's pair: {listing} "
        f"(a random film has both {figures['chance_both']:.0%} of the time). "
        + ("All three recover the AND taste. A dot product can rank it: a film with both genres matches "
           "the person's vector twice, one with a single genre once, so 'both' sorts above 'one' without any "
           "non-linearity; GMF's free film vectors can even hold each pair's rom-coms directly. Where the "
           "models part ways (fewer people per pair, fewer epochs) it is training, not capacity: an MLP "
           "must learn even the dot product from data."
           if correct == 3 else
           f"{AND_CHOICES[correct]} recovers it best here. A dot product can rank an AND (two matches beat one), "
           "so a gap on this world comes from training (people per pair, epochs, factors): rerun with another "
           "seed or more epochs and see whether it holds.")
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"What each model puts in the top 10": table})


LESSONS = [
    Lesson(
        key="and_taste",
        chapter="Neural collaborative filtering",
        title="The rom-com taste: both genres or nothing",
        framing=(
            "Some people want a romance that is also a comedy: either genre alone leaves them cold. That is "
            "an AND of two features, and neural CF was sold on learning such non-linear tastes that a plain "
            "dot product supposedly cannot. In a generated world where every person wants one pair of "
            "genres together, train GMF (a weighted dot product), an MLP and NeuMF (both) and count how "
            "much of each top 10 carries both genres."
        ),
        question="Which model recovers the both-genres taste best?",
        choices=AND_CHOICES,
        Knobs=AndKnobs,
        compute=and_taste,
    ),
]
