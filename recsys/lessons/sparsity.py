"""Data challenges: how item-item and user-user neighbourhoods hold up as the data thins out."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from recsys.data import synthetic
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.sparsify import k_core, latest, sparsify
from recsys.experiment import RunSpec
from recsys.lessons.base import Context, Lesson, LessonResult, Setup, parse_numbers
from recsys.models.base import param

MODELS = (("item_knn", "Item-item kNN"), ("user_knn", "User-user kNN"))
SPARSITY_CHOICES = ("Item-item kNN", "User-user kNN", "Both lose about the same share")
# retained shares closer than this are "about the same": below the spread two thinning seeds give
SAME_SHARE = 0.05


@lru_cache(maxsize=4)
def generated_world(users: int, items: int, seed: int) -> Dataset:
    """A small generated catalogue, built once per size: the lessons' default data when the app has none."""
    return synthetic.make_dataset(users, items, seed)


@dataclass
class SparsityKnobs:
    keep: str = param("1, 0.5, 0.25, 0.12", help="Shares of the training history kept, one run per share.")
    held_out: int = param(3, help="Each person's latest interactions held out as the (fixed) test.", low=1, high=10)
    core: int = param(0, help="Apply a k-core first (0 = off): only people and films with at least k interactions.",
                      low=0, high=50)
    seed: int = param(0, help="Seed of the thinning draw.", low=0, high=10_000)
    users: int = param(600, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(400, help="Films in the generated world.", low=50, high=2000)


def thinned(ds: Dataset, keep_fraction: float, held_out: int, seed: int) -> Dataset:
    """``ds`` with a share of each history dropped, the latest ``held_out`` (the test) and one more kept.

    Keeping the test interactions fixed means every density is scored on the same questions;
    keeping one training interaction per person keeps everyone rankable.
    """
    return sparsify(ds, keep_fraction, seed, protect=latest(ds, held_out + 1))


def check_shares(shares: list[float]) -> None:
    """Refuse a share list with nothing below the full data: there would be nothing to compare."""
    if min(shares) >= 1.0:
        raise DataError("List at least one share below 1 (e.g. 0.5) so the data actually thins.")


def density_row(ds: Dataset) -> dict:
    active_users = max(1, int((ds.user_activity > 0).sum()))
    active_items = max(1, int((ds.item_popularity > 0).sum()))
    return {"interactions": ds.n_interactions, "density": ds.density,
            "per user": ds.n_interactions / active_users, "per item": ds.n_interactions / active_items}


def halvings(lowest: float) -> str:
    """The share list of a sweep that halves the history down to ``lowest``: 0.12 -> "1, 0.5, 0.25, 0.12"."""
    lowest = float(lowest)
    if not 0.0 < lowest < 1.0:
        raise DataError(f"The lowest share kept must lie between 0 and 1; got {lowest:g}.")
    shares, share = [1.0], 0.5
    while share > lowest * 1.2:  # a step within a fifth of the lowest share adds nothing to see
        shares.append(share)
        share /= 2
    return ", ".join(f"{x:g}" for x in [*shares, lowest])


def check_sweep_budget(ds: Dataset, n_shares: int, split: dict, seconds: float | None = None) -> float:
    """The sweep's fitting time bound, checked *before* any work: each kNN's probed fit time on the fullest
    data (a thinner copy fits faster) times the number of shares, against ``seconds`` (the Train page's
    "over a minute" line by default) and each model's memory estimate against the host's budget.
    Returns the bound in seconds; raises DataError with what to lower when it is over."""
    from recsys import estimate, hosting
    from recsys.data.split import SplitConfig, make_split
    from recsys.models import registry

    seconds = estimate.LONG_FIT_SECONDS if seconds is None else float(seconds)
    parts = make_split(ds, SplitConfig.coerce(split))
    n_test_users = int((parts.test.user_activity > 0).sum())
    per_share = 0.0
    for key, _ in MODELS:
        cls = registry.get(key)
        hosting.check_training_budget(cls, {}, parts.train)
        per_share += estimate.estimate_fit(cls, {}, parts.train, n_eval_users=n_test_users).seconds
    bound = per_share * n_shares
    if bound > seconds:
        affordable = max(1, int(seconds // max(per_share, 1e-9)))
        raise DataError(f"Fitting both neighbourhoods at {n_shares} shares of {ds.name} would take up to "
                        f"{estimate.duration_text(bound).removeprefix('about ')} ({estimate.seconds_text(per_share)} "
                        f"per share), over the {estimate.seconds_text(seconds)} a training may take on this shared "
                        f"server. " + (f"List at most {affordable} shares, or apply a k-core to shrink the data."
                                       if affordable >= 2 else "Apply a k-core or pick a smaller dataset."))
    return bound


def item_vs_user(knobs: SparsityKnobs, context: Context) -> LessonResult:
    shares = sorted(set(parse_numbers(knobs.keep, "Shares kept", low=0.01, high=1.0, min_len=2, max_len=8)),
                    reverse=True)
    check_shares(shares)
    if shares[0] < 1.0:
        shares.insert(0, 1.0)  # the full data is the yardstick every share is compared with
    ds = context.dataset if context.dataset is not None else generated_world(knobs.users, knobs.items, 7)
    if knobs.core:
        ds = k_core(ds, knobs.core)
    split = {"method": "leave_last", "n": knobs.held_out, "seed": 42}
    if context.hosted:
        # one bound for the whole sweep before any fit; the thinner copies then need no probe each
        stored = context.store is not None and all(
            context.store.find_done(RunSpec.make(thinned(ds, share, knobs.held_out, knobs.seed), split, key,
                                                 {}, owner=context.owner).run_id, context.owner) is not None
            for share in shares for key, _ in MODELS)
        if not stored:
            check_sweep_budget(ds, len(shares), split)
        context = dataclasses.replace(context, hosted=False)
    rows = []
    for share in shares:
        data = thinned(ds, share, knobs.held_out, knobs.seed)
        row = {"share kept": share, **density_row(data)}
        for key, label in MODELS:
            _, report = context.train(data, split, key, {})
            row[label] = report.means["ndcg@10"]
        rows.append(row)
    table = pd.DataFrame(rows)
    full = table.iloc[0]
    for _, label in MODELS:
        table[f"{label} share of full"] = table[label] / max(full[label], 1e-12)
    sparsest = table.iloc[-1]
    retained = [float(sparsest[f"{label} share of full"]) for _, label in MODELS]
    if abs(retained[0] - retained[1]) < SAME_SHARE:
        correct = 2
    else:
        correct = int(np.argmax(retained))
    figures = {"sparsest_share": float(sparsest["share kept"]), "sparsest_density": float(sparsest["density"]),
               "full_density": float(full["density"]),
               "item_knn_full": float(full[MODELS[0][1]]), "user_knn_full": float(full[MODELS[1][1]]),
               "item_knn_sparsest": float(sparsest[MODELS[0][1]]),
               "user_knn_sparsest": float(sparsest[MODELS[1][1]]),
               "item_knn_retained": retained[0], "user_knn_retained": retained[1]}
    explanation = (
        f"From density {figures['full_density']:.2%} down to {figures['sparsest_density']:.2%} "
        f"({figures['sparsest_share']:.0%} of the history kept), item-item NDCG@10 went "
        f"{figures['item_knn_full']:.3f} → {figures['item_knn_sparsest']:.3f} ({retained[0]:.0%} kept) and "
        f"user-user {figures['user_knn_full']:.3f} → {figures['user_knn_sparsest']:.3f} ({retained[1]:.0%} kept). "
        + _why(correct, full, sparsest)
    )
    return LessonResult(figures=figures, correct=correct, explanation=explanation,
                        tables={"NDCG@10 as the data thins": table})


def accuracy_by_density(table: pd.DataFrame) -> pd.DataFrame:
    """The sweep's table in long form for a chart: density, share kept, model, NDCG@10, share of full."""
    frames = [pd.DataFrame({"density": table["density"], "share kept": table["share kept"], "model": label,
                            "NDCG@10": table[label], "share of full": table[f"{label} share of full"]})
              for _, label in MODELS]
    return pd.concat(frames, ignore_index=True)


def _why(correct: int, full: pd.Series, sparsest: pd.Series) -> str:
    evidence = (f"At the sparsest point a person has {sparsest['per user']:.1f} interactions on average and a "
                f"film {sparsest['per item']:.1f} (from {full['per user']:.1f} and {full['per item']:.1f}): "
                "each similarity is computed from co-occurrences, and those fall roughly with the square "
                "of the density. ")
    if correct == 0:
        return evidence + ("Item-item held up better: its similarities pool everyone who watched a film, so "
                           "they stay usable after a single person's row has thinned.")
    if correct == 1:
        return evidence + ("Here user-user held up better: each person is compared with every other person "
                           "over their whole history, and averaging many weak neighbours' votes survives "
                           "thinning better than an item's few remaining co-watchers. The textbook "
                           "answer (item-item) assumes films have many more ratings than people; check the "
                           "two columns above on your data.")
    return evidence + "Both lost about the same share: neither neighbourhood has an edge on this data."


LESSONS = [
    Lesson(
        key="sparsity_knn",
        chapter="Data challenges",
        title="Item-item or user-user when data is sparse?",
        framing=(
            "Most people rate a handful of films out of thousands, so a rating matrix is almost all "
            "holes. Neighbourhood methods compare rows (people) or columns (films) through the few "
            "entries they share. Thin the history out step by step, keep the same test questions, "
            "and watch both neighbourhoods' accuracy."
        ),
        question="As the data thins out, which neighbourhood keeps more of its accuracy?",
        choices=SPARSITY_CHOICES,
        Knobs=SparsityKnobs,
        compute=item_vs_user,
        setup=Setup(split={"method": "leave_last", "n": 3, "seed": 42},
                    runs=(("item_knn", {}), ("user_knn", {})), page="data"),
    ),
]

