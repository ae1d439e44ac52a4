"""Beyond-accuracy metrics: coverage, novelty, diversity, popularity bias, exposure.

Every function reads ``recommended``: a (users, K) matrix of item codes, best first,
with -1 in empty slots (the ranking ran out of items). ``k`` selects the first k
columns (None = all of them); empty slots are ignored everywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import head_mask as head_items  # noqa: F401  (re-exported: one head for serving and metrics)
from recsys.data.dataset import self_information  # noqa: F401  (re-exported)
from recsys.data.stats import gini  # noqa: F401  (re-exported: one Gini for data and exposure)


def _top(recommended: np.ndarray, k: int | None) -> np.ndarray:
    recommended = np.asarray(recommended)
    if recommended.ndim != 2:
        raise ValueError(f"recommended must be a (users, K) matrix; got shape {recommended.shape}")
    if k is None:
        return recommended
    if not 1 <= k <= recommended.shape[1]:
        raise ValueError(f"k must lie in [1, {recommended.shape[1]}]; got {k}")
    return recommended[:, :k]


def _per_user_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over the valid slots of each row (0 for a row with none)."""
    total = np.where(valid, values, 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    out = np.zeros(len(values), dtype=np.float64)
    np.divide(total, count, out=out, where=count > 0)
    return out


def recommendation_counts(recommended: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """How many lists each item appears in (length n_items, zeros included)."""
    top = _top(recommended, k)
    return np.bincount(top[top >= 0].astype(np.int64), minlength=n_items)


def coverage(recommended: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage: share of the catalogue recommended to at least one user."""
    return float(np.count_nonzero(recommendation_counts(recommended, n_items, k)) / max(1, n_items))


def novelty(recommended: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int | None = None) -> np.ndarray:
    """Per user: mean self-information of the recommended items (higher = less obvious).

    ``n_users`` is the number of users in training (those who could have consumed it).
    """
    return _item_value_mean(recommended, self_information(item_popularity, n_users), k)


def average_popularity(recommended: np.ndarray, item_popularity: np.ndarray, k: int | None = None) -> np.ndarray:
    """ARP, per user: mean training popularity of the recommended items."""
    return _item_value_mean(recommended, np.asarray(item_popularity, dtype=np.float64), k)


def _item_value_mean(recommended: np.ndarray, item_values: np.ndarray, k: int | None) -> np.ndarray:
    top = _top(recommended, k)
    valid = top >= 0
    # -1 would index the last item; point empty slots at item 0 and mask them out
    values = item_values[np.where(valid, top, 0)]
    return _per_user_mean(values, valid)


def _normalised_rows(features) -> sp.csr_matrix:
    """Rows scaled to unit length; all-zero rows stay zero (no features, no similarity)."""
    feats = sp.csr_matrix(features, dtype=np.float64)
    norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ feats)


def intra_list_diversity(recommended: np.ndarray, features, k: int | None = None) -> np.ndarray:
    """Per user: mean pairwise (1 - cosine similarity) of the item feature vectors in the list.

    ``features``: (n_items, d) genre matrix or dense embeddings. Uses the identity
    sum_{i<j} v_i.v_j = (|sum v|^2 - sum |v_i|^2) / 2 on unit vectors, so no per-pair loop.
    Items without features count as dissimilar to everything. Lists with fewer than two
    items have no pairs and get 0. Genre vectors give values in [0, 1]; signed embeddings
    can reach 2 (opposite directions).
    """
    top = _top(recommended, k)
    unit = _normalised_rows(features)
    n_users, width = top.shape
    valid = top >= 0
    rows = np.repeat(np.arange(n_users), width)[valid.ravel()]
    membership = sp.csr_matrix(
        (np.ones(len(rows)), (rows, top[valid].astype(np.int64))), shape=(n_users, unit.shape[0])
    )
    summed = membership @ unit
    sq_of_sum = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    sum_of_sq = membership @ np.asarray(unit.multiply(unit).sum(axis=1)).ravel()
    m = valid.sum(axis=1).astype(np.float64)
    pairs = m * (m - 1) / 2.0
    mean_sim = np.divide((sq_of_sum - sum_of_sq) / 2.0, pairs, out=np.zeros(n_users), where=pairs > 0)
    return np.where(pairs > 0, 1.0 - mean_sim, 0.0)


def exposure_gini(recommended: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Gini of how often each catalogue item is recommended (never-shown items count as 0)."""
    return gini(recommendation_counts(recommended, n_items, k))


def long_tail_share(
    recommended: np.ndarray, item_popularity: np.ndarray, k: int | None = None, head_fraction: float = 0.2
) -> float:
    """Share of all recommended slots that hold a long-tail (non-head) item."""
    top = _top(recommended, k)
    shown = top[top >= 0].astype(np.int64)
    if len(shown) == 0:
        return 0.0
    return float(np.mean(~head_items(item_popularity, head_fraction)[shown]))
