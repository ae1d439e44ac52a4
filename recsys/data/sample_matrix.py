"""A readable sample of the user x item matrix for the sparsity picture."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset, popularity_order

# Labels in the picture are cut to this many characters: ids and titles can be long (up to the
# hosting limits), and numpy's fixed-width strings would size every label like the longest.
LABEL_CHARS = 60


def _labels(values: np.ndarray) -> np.ndarray:
    """Short str labels as an object array (never a fixed-width numpy string array)."""
    text = pd.Series(values, dtype=object).map(str)
    long = text.str.len() > LABEL_CHARS
    if long.any():
        text = text.where(~long, text.str.slice(0, LABEL_CHARS - 1) + "…")
    return text.to_numpy(dtype=object)


def matrix_sample(ds: Dataset, n_users: int = 120, n_items: int = 300, seed: int = 0) -> pd.DataFrame:
    """Interactions among a random sample of users and items, ranked by activity / popularity.

    Sampling (rather than taking the top) keeps the picture honest about sparsity; ranking
    the sample makes the popularity gradient visible.
    """
    rng = np.random.default_rng(seed)
    users = np.flatnonzero(ds.user_activity > 0)
    items = np.flatnonzero(ds.item_popularity > 0)
    users = np.sort(rng.choice(users, size=min(n_users, len(users)), replace=False))
    items = np.sort(rng.choice(items, size=min(n_items, len(items)), replace=False))
    user_rank = np.full(ds.n_users, -1)
    user_rank[users[popularity_order(ds.user_activity[users])]] = np.arange(len(users))
    item_rank = np.full(ds.n_items, -1)
    item_rank[items[popularity_order(ds.item_popularity[items])]] = np.arange(len(items))
    keep = (user_rank[ds.user] >= 0) & (item_rank[ds.item] >= 0)
    return pd.DataFrame({
        "user_rank": user_rank[ds.user[keep]],
        "item_rank": item_rank[ds.item[keep]],
        "user": _labels(ds.user_ids[ds.user[keep]]),
        "item": _labels(ds.item_titles(ds.item[keep])),
        "rating": ds.rating[keep],
    })
