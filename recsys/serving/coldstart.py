"""Cold start: scores for a new visitor from a few picked items, and items nobody has consumed yet.

User cold start goes through a model's optional ``score_history(items)`` (fold-in: kNN and
EASE multiply the picks by their item-item matrix, iALS solves for a user vector, PureSVD
projects, Mult-VAE encodes, sequential models read the picks as a session). A model
without it cannot serve a new visitor; it says so in words instead of failing.
"""

from __future__ import annotations

import numpy as np

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.models.capabilities import example_list, has

MIN_PICKS = 1


def supports_fold_in(model) -> bool:
    """Can the model recommend for someone who is not in its training data?"""
    return has(model, "fold_in")


def fold_in_models(models: dict) -> dict:
    """The entries of ``{name: model}`` that can build a page for a new visitor."""
    return {name: model for name, model in models.items() if supports_fold_in(model)}


def check_picks(items, n_items: int, *, low: int = MIN_PICKS, high: int | None = None) -> np.ndarray:
    """The picked item codes as an int64 array, in the order picked, repeats removed; clear errors otherwise."""
    picks = [int(i) for i in np.atleast_1d(np.asarray(items, dtype=np.int64))]
    picks = list(dict.fromkeys(picks))  # keep the first occurrence: the order is the visitor's recency
    if len(picks) < low:
        raise DataError(f"Pick at least {low} title(s) to build a page for a new visitor; {len(picks)} picked.")
    if high is not None and len(picks) > high:
        raise DataError(f"Pick at most {high} titles for a new visitor; {len(picks)} picked. Remove a few.")
    bad = [i for i in picks if not 0 <= i < n_items]
    if bad:
        raise DataError(f"Picked item code(s) {bad[:5]} are not in this catalogue of {n_items:,} items.")
    return np.asarray(picks, dtype=np.int64)


def new_visitor_scores(model, items) -> np.ndarray:
    """The model's scores over the catalogue for a person whose whole history is ``items`` (codes)."""
    if not supports_fold_in(model):
        raise DataError(
            f"{model.label} cannot build a page for a new visitor: it only knows the users it was trained on "
            f"(it has no fold-in). Pick a model that can, such as {example_list('fold_in')}."
        )
    if not model.is_fitted:
        raise DataError(f"{model.label} is not trained yet; train it before building pages with it.")
    n_items = model.trained_on.n_items
    picks = check_picks(items, n_items)
    scores = np.asarray(model.score_history(picks), dtype=np.float32).ravel()
    if scores.shape != (n_items,):
        raise RuntimeError(f"{model.label}.score_history returned shape {scores.shape}, expected ({n_items},)")
    return scores


def cold_items(train: Dataset) -> np.ndarray:
    """Codes of catalogue items with metadata but no interaction in ``train`` (item cold start)."""
    if train.items is None:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(train.item_popularity == 0).astype(np.int64)
