"""Top-k ranking, written once for every model: seen-item exclusion and candidate sets."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def mask_items(scores: np.ndarray, exclude: sp.spmatrix | None) -> np.ndarray:
    """Set excluded (user, item) cells to -inf in place; ``exclude`` has one row per score row."""
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    return scores


def top_k(
    scores: np.ndarray,
    k: int,
    *,
    exclude: sp.spmatrix | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` items per row, best first.

    ``exclude``: sparse (rows x items) matrix whose non-zeros are never returned (seen items).
    ``candidates``: optional item codes the ranking is restricted to.
    Returns (items int64, scores float32), both (rows, k); slots that have no rankable
    item left (all -inf) hold item -1 and score -inf.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    if scores.ndim == 1:
        scores = scores[None, :]
    mask_items(scores, exclude)
    if candidates is not None:
        keep = np.zeros(scores.shape[1], dtype=bool)
        keep[np.asarray(candidates, dtype=np.int64)] = True
        scores[:, ~keep] = -np.inf
    n_rows, n_items = scores.shape
    k = int(min(k, n_items))
    if k <= 0:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32)
    # NaN would sort unpredictably; it is never a valid recommendation
    np.nan_to_num(scores, copy=False, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    if k < n_items:
        part = _top_k_set(scores, k)
    else:
        part = np.tile(np.arange(n_items), (n_rows, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    # ties broken by item code so rankings are reproducible across platforms
    order = np.lexsort((part, -part_scores), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    items[~np.isfinite(top_scores) & (top_scores < 0)] = -1
    return items, top_scores.astype(np.float32)


def _top_k_set(scores: np.ndarray, k: int) -> np.ndarray:
    """The k best items per row as a set, ties at the k-th score resolved by lower item code.

    argpartition alone picks an arbitrary subset of items tied at the boundary, which would
    make rankings (and metrics) depend on memory layout.
    """
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    return np.nonzero(chosen)[1].reshape(len(scores), k)
