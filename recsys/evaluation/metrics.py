"""Ranking and rating metrics, vectorised over users.

Every ranking metric reads a *hits* matrix: one row per user, one column per rank
position (best first), non-zero where the item at that position is relevant. Columns
beyond ``k`` are ignored, so a single top-K list yields every metric at every k <= K.
Empty slots (the ranking ran out of items) are simply misses.

All ranking functions return one float64 value per user. Users without any relevant
item get 0 for every metric (an evaluator should not include them; the value only
keeps the arithmetic defined).
"""

from __future__ import annotations

import numpy as np


def _hits_at(hits: np.ndarray, k: int) -> np.ndarray:
    """First ``k`` columns of the hits matrix as booleans, after checking ``k``."""
    hits = np.asarray(hits)
    if hits.ndim != 2:
        raise ValueError(f"hits must be a (users, K) matrix; got shape {hits.shape}")
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"k must lie in [1, {hits.shape[1]}] for this hits matrix; got {k}")
    return hits[:, :k] != 0


def _relevant_counts(n_relevant, n_rows: int) -> np.ndarray:
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    if n_relevant.shape != (n_rows,):
        raise ValueError(f"n_relevant must hold one count per user ({n_rows}); got shape {n_relevant.shape}")
    return n_relevant


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (a user with nothing relevant scores 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def discounts(k: int) -> np.ndarray:
    """Position discounts 1 / log2(rank + 1) for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def precision(hits: np.ndarray, k: int) -> np.ndarray:
    """Precision@k = hits in the top k / k (empty slots count as misses)."""
    return _hits_at(hits, k).sum(axis=1) / float(k)


def recall(hits: np.ndarray, n_relevant, k: int) -> np.ndarray:
    """Recall@k = hits in the top k / number of relevant items.

    The standard definition: a user with more relevant items than k cannot reach 1.
    (Some papers divide by min(n_relevant, k) instead; that is not what this computes.)
    """
    h = _hits_at(hits, k)
    return _safe_divide(h.sum(axis=1), _relevant_counts(n_relevant, len(h)))


def f1(hits: np.ndarray, n_relevant, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p = precision(hits, k)
    r = recall(hits, n_relevant, k)
    return _safe_divide(2.0 * p * r, p + r)


def ndcg(hits: np.ndarray, n_relevant, k: int) -> np.ndarray:
    """Binary NDCG@k: DCG with gain 1 per hit and discount 1/log2(rank+1), divided by the
    DCG of an ideal list holding min(n_relevant, k) hits at the top."""
    h = _hits_at(hits, k)
    n_rel = _relevant_counts(n_relevant, len(h))
    disc = discounts(k)
    dcg = h @ disc
    ideal_hits = np.minimum(n_rel, k).astype(np.int64)
    # ideal DCG for m hits = sum of the first m discounts; index 0 stands for "no hits"
    ideal_table = np.concatenate([[0.0], np.cumsum(disc)])
    return _safe_divide(dcg, ideal_table[ideal_hits])


def ndcg_graded(gains: np.ndarray, ideal_gains: np.ndarray, k: int) -> np.ndarray:
    """Graded NDCG@k with *linear* gains (gain = relevance grade, e.g. the rating).

    ``gains``: (users, K) true grade of the item at each rank (0 for irrelevant / empty).
    ``ideal_gains``: (users, >= k) the user's true grades sorted descending (0-padded),
    i.e. the best list that could have been shown. Linear rather than 2^rel - 1 gains so
    a 5-star item counts 5/4 of a 4-star one, not 31/15: ratings are not that far apart.
    """
    gains = np.asarray(gains, dtype=np.float64)
    ideal_gains = np.asarray(ideal_gains, dtype=np.float64)
    _hits_at(gains, k)
    if ideal_gains.shape[0] != gains.shape[0] or ideal_gains.shape[1] < k:
        raise ValueError(f"ideal_gains must be (users={gains.shape[0]}, >= {k}); got {ideal_gains.shape}")
    disc = discounts(k)
    return _safe_divide(gains[:, :k] @ disc, ideal_gains[:, :k] @ disc)


def average_precision(hits: np.ndarray, n_relevant, k: int) -> np.ndarray:
    """AP@k = sum over hit ranks i <= k of precision@i, divided by min(n_relevant, k).

    Dividing by min(n_relevant, k) (not n_relevant) lets a perfect top-k list score 1 even
    when the user has more relevant items than fit in it. MAP@k is the mean over users.
    """
    h = _hits_at(hits, k).astype(np.float64)
    n_rel = _relevant_counts(n_relevant, len(h))
    precision_at_rank = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return _safe_divide((precision_at_rank * h).sum(axis=1), np.minimum(n_rel, k))


def reciprocal_rank(hits: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first hit within the top k (0 without a hit); MRR@k is the mean."""
    h = _hits_at(hits, k)
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def hit_rate(hits: np.ndarray, k: int) -> np.ndarray:
    """1 if at least one relevant item is in the top k, else 0."""
    return _hits_at(hits, k).any(axis=1).astype(np.float64)


def _pair(true, predicted) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(true, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if true.shape != predicted.shape:
        raise ValueError(f"true and predicted must have the same length; got {len(true)} and {len(predicted)}")
    return true, predicted


def rmse(true, predicted) -> float:
    """Root mean squared rating error (nan when there is nothing to compare)."""
    true, predicted = _pair(true, predicted)
    return float(np.sqrt(np.mean((true - predicted) ** 2))) if len(true) else float("nan")


def mae(true, predicted) -> float:
    """Mean absolute rating error (nan when there is nothing to compare)."""
    true, predicted = _pair(true, predicted)
    return float(np.mean(np.abs(true - predicted))) if len(true) else float("nan")


# name -> how to compute it from (hits, n_relevant, gains, ideal_gains, k); lets the
# evaluator and the K-curve share one table instead of two lists that drift apart.
RANKING_METRICS = {
    "precision": lambda h, n, g, ig, k: precision(h, k),
    "recall": lambda h, n, g, ig, k: recall(h, n, k),
    "f1": lambda h, n, g, ig, k: f1(h, n, k),
    "ndcg": lambda h, n, g, ig, k: ndcg(h, n, k),
    "ndcg_graded": lambda h, n, g, ig, k: ndcg_graded(g, ig, k),
    "map": lambda h, n, g, ig, k: average_precision(h, n, k),
    "mrr": lambda h, n, g, ig, k: reciprocal_rank(h, k),
    "hit": lambda h, n, g, ig, k: hit_rate(h, k),
}
