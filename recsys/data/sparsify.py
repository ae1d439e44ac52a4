"""Thinner copies of a dataset: a random share of its interactions, or its k-core.

Both keep the parent's id maps and metadata (``Dataset.subset``), so a model trained on the
thinner copy scores the same user and item codes; people and films left without interactions
stay in the maps with empty rows.
"""

from __future__ import annotations

import numpy as np

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError


def sparsify(ds: Dataset, keep_fraction: float, seed: int = 0, protect: np.ndarray | None = None) -> Dataset:
    """``ds`` with round(keep_fraction · n) of its interactions, drawn uniformly without replacement.

    ``protect`` (a mask over the interactions) are always kept and the fraction applies to the rest:
    an experiment that thins the training history keeps its test interactions the same.
    """
    keep_fraction = float(keep_fraction)
    if not 0.0 < keep_fraction <= 1.0:
        raise DataError(f"keep_fraction must be in (0, 1]; got {keep_fraction:g}. "
                        "Use 0.5 to keep half of the interactions.")
    protected = np.zeros(ds.n_interactions, bool) if protect is None else np.asarray(protect, bool)
    if protected.shape != (ds.n_interactions,):
        raise DataError(f"protect must mark each of the {ds.n_interactions} interactions; got shape "
                        f"{protected.shape}.")
    candidates = np.flatnonzero(~protected)
    n_keep = int(round(keep_fraction * len(candidates)))
    if n_keep < 1 and not protected.any():
        raise DataError(f"Keeping {keep_fraction:g} of {ds.n_interactions} interactions leaves none; "
                        "raise keep_fraction.")
    chosen = np.random.default_rng(seed).choice(candidates, size=n_keep, replace=False)
    mask = protected.copy()
    mask[chosen] = True
    return ds.subset(mask, name=f"{ds.name} ({keep_fraction:.0%} of interactions)")


def latest(ds: Dataset, n: int) -> np.ndarray:
    """Mask of each user's last ``n`` interactions, in the time order the leave-last split uses."""
    histories = ds.histories_in_time_order()
    rank = np.empty(ds.n_interactions, dtype=np.int64)
    rank[histories.order] = np.arange(ds.n_interactions) - histories.starts[histories.users]
    return ds.user_activity[ds.user] - rank <= n


def k_core_mask(user: np.ndarray, item: np.ndarray, k: int, n_users: int, n_items: int) -> np.ndarray:
    """Which interactions survive the iterative k-core: every kept user and item has at least k of them.

    Dropping a light user can push an item under k and the other way round, so the filter repeats
    until nothing changes; each pass is two bincounts over the interactions still kept.
    """
    keep = np.ones(len(user), dtype=bool)
    while True:
        user_counts = np.bincount(user[keep], minlength=n_users)
        item_counts = np.bincount(item[keep], minlength=n_items)
        still = keep & (user_counts[user] >= k) & (item_counts[item] >= k)
        if still.sum() == keep.sum():
            return keep
        keep = still


def k_core(ds: Dataset, k: int) -> Dataset:
    """The iterative k-core of ``ds``: only people and films with at least ``k`` interactions each."""
    if int(k) != k or k < 1:
        raise DataError(f"k must be a whole number of interactions, at least 1; got {k!r}.")
    keep = k_core_mask(ds.user, ds.item, int(k), ds.n_users, ds.n_items)
    if not keep.any():
        raise DataError(f"No interactions survive the {k}-core of {ds.name}: lower k.")
    return ds.subset(keep, name=f"{ds.name} ({k}-core)")
