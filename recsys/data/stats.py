"""Descriptive statistics of a Dataset: what the Data page and data cards show."""

from __future__ import annotations

import numpy as np

from recsys.data.dataset import Dataset


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = perfectly even, ->1 = all on one)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    cum = np.cumsum(x)
    return float((n + 1 - 2 * (cum / cum[-1]).sum()) / n)


def head_share(popularity: np.ndarray, head_fraction: float = 0.2) -> float:
    """Share of all interactions that fall on the most popular ``head_fraction`` of items."""
    pop = np.sort(np.asarray(popularity, dtype=np.float64))[::-1]
    total = pop.sum()
    if total == 0:
        return 0.0
    n_head = max(1, int(np.ceil(head_fraction * len(pop))))
    return float(pop[:n_head].sum() / total)


def long_tail_curve(popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = share of items (most popular first), y = cumulative share of interactions."""
    pop = np.sort(np.asarray(popularity, dtype=np.float64))[::-1]
    y = np.cumsum(pop) / max(pop.sum(), 1.0)
    x = np.arange(1, len(pop) + 1) / len(pop)
    return x, y


def rating_histogram(ds: Dataset) -> dict[float, int]:
    values, counts = np.unique(ds.rating, return_counts=True)
    if len(values) > 50:  # continuous ratings: bin them rather than list every value
        counts, edges = np.histogram(ds.rating, bins=20)
        values = (edges[:-1] + edges[1:]) / 2
    return {float(v): int(c) for v, c in zip(values, counts)}


def cold_start_counts(train: Dataset, test: Dataset) -> dict[str, int]:
    """Users / items that appear in test but have no training interaction."""
    train_users = train.user_activity > 0
    train_items = train.item_popularity > 0
    test_users = np.unique(test.user)
    test_items = np.unique(test.item)
    return {
        "cold_users": int((~train_users[test_users]).sum()),
        "cold_items": int((~train_items[test_items]).sum()),
        "test_users": int(len(test_users)),
        "test_items": int(len(test_items)),
    }


def summary(ds: Dataset) -> dict:
    """Headline numbers for a dataset (counts, density, activity, popularity concentration)."""
    activity = ds.user_activity
    popularity = ds.item_popularity
    active_users = activity[activity > 0]
    rated_items = popularity[popularity > 0]
    out = {
        "name": ds.name,
        "feedback": ds.feedback,
        "users": ds.n_users,
        "items": ds.n_items,
        "items_with_interactions": int((popularity > 0).sum()),
        "interactions": ds.n_interactions,
        "density": ds.density,
        "interactions_per_user_mean": float(active_users.mean()) if len(active_users) else 0.0,
        "interactions_per_user_median": float(np.median(active_users)) if len(active_users) else 0.0,
        "interactions_per_user_min": int(active_users.min()) if len(active_users) else 0,
        "interactions_per_user_max": int(active_users.max()) if len(active_users) else 0,
        "interactions_per_item_mean": float(rated_items.mean()) if len(rated_items) else 0.0,
        "interactions_per_item_median": float(np.median(rated_items)) if len(rated_items) else 0.0,
        "popularity_gini": gini(popularity),
        "head_share_top20": head_share(popularity),
        "has_timestamps": ds.timestamp is not None,
        "has_item_metadata": ds.items is not None,
    }
    if ds.feedback == "explicit":
        # float64: a float32 mean of many large ratings overflows to inf
        out["rating_mean"] = float(ds.rating.mean(dtype=np.float64))
        out["rating_min"] = float(ds.rating.min())
        out["rating_max"] = float(ds.rating.max())
    if ds.timestamp is not None:
        out["first_timestamp"] = int(ds.timestamp.min())
        out["last_timestamp"] = int(ds.timestamp.max())
    return out
