"""Re-ranking knobs as pure functions over a candidate list: popularity blend, MMR diversity, tail floor.

Each function takes plain arrays (item codes best first, their scores, per-item vectors or
flags) and returns new arrays; nothing here knows about models, rows or pages, so each can
be checked against a hand-worked case.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp


def normalise(values) -> np.ndarray:
    """Min-max scale the finite values to [0, 1]; non-finite values (unscorable items) become 0.

    An item a model cannot score is treated as its least preferred one, so a popularity
    blend can still lift it instead of leaving NaN (0 · -inf) in the ranking. All-equal
    values map to 0: they carry no preference.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.float64)
    if not finite.any():
        return out
    low, high = values[finite].min(), values[finite].max()
    if high > low:
        out[finite] = (values[finite] - low) / (high - low)
    return out


def popularity_blend(scores, popularity, alpha: float) -> np.ndarray:
    """score' = (1 - alpha) · norm(score) + alpha · norm(popularity), over the same candidates.

    alpha = 0 keeps the model's order, alpha = 1 is the popularity ranking.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"The popularity blend alpha must lie in [0, 1]; got {alpha}.")
    scores, popularity = np.asarray(scores), np.asarray(popularity)
    if scores.shape != popularity.shape:
        raise ValueError(f"scores {scores.shape} and popularity {popularity.shape} must describe the same items.")
    return ((1.0 - alpha) * normalise(scores) + alpha * normalise(popularity)).astype(np.float32)


def unit_rows(vectors) -> sp.csr_matrix | np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero: no features, similar to nothing)."""
    if sp.issparse(vectors):
        vectors = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(scale) @ vectors)
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return vectors * scale[:, None]


def mmr(items, relevance, vectors, lam: float, length: int) -> np.ndarray:
    """Maximal marginal relevance (Carbonell & Goldstein 1998): greedy picks from ``items``.

    Each step takes the candidate maximising lam · rel(i) - (1 - lam) · max_{j picked} cos(i, j),
    with rel min-max normalised over the candidates so both terms live on [0, 1].
    ``vectors``: one row per candidate (genre indicators or embeddings). lam = 1 is pure
    relevance (the first ``length`` candidates when they arrive sorted); ties go to the
    candidate listed first.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"The MMR weight lambda must lie in [0, 1]; got {lam}.")
    items = np.asarray(items, dtype=np.int64)
    if vectors.shape[0] != len(items):
        raise ValueError(f"MMR needs one vector per candidate: {vectors.shape[0]} vectors for {len(items)} items.")
    length = min(int(length), len(items))
    rel = normalise(relevance)
    unit = unit_rows(vectors)
    # all candidate pairs at once: a pool is small (tens to hundreds), so this beats a sparse
    # product per greedy step by far
    similarity = unit @ unit.T
    similarity = similarity.toarray() if sp.issparse(similarity) else np.asarray(similarity)
    max_similarity = np.zeros(len(items))
    available = np.ones(len(items), dtype=bool)
    picked = []
    for _ in range(length):
        gain = np.where(available, lam * rel - (1.0 - lam) * max_similarity, -np.inf)
        best = int(np.argmax(gain))  # argmax returns the first maximum: ties keep list order
        picked.append(best)
        available[best] = False
        np.maximum(max_similarity, similarity[best], out=max_similarity)
    return items[np.asarray(picked, dtype=np.int64)]


def tail_floor(ranked_items, is_tail, share: float, length: int) -> np.ndarray:
    """The first ``length`` of ``ranked_items``, with at least ceil(share · length) long-tail items.

    Missing tail items are the best-ranked tail items beyond the cut; they replace the
    worst-ranked head items in the list, and the result keeps the ranked order. With too
    few tail candidates, every one available is used.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"The long-tail floor must lie in [0, 1] (a share of the row); got {share}.")
    ranked_items = np.asarray(ranked_items, dtype=np.int64)
    tail = np.asarray(is_tail, dtype=bool)[ranked_items]
    length = min(int(length), len(ranked_items))
    keep = np.zeros(len(ranked_items), dtype=bool)
    keep[:length] = True
    missing = math.ceil(share * length - 1e-9) - int(tail[:length].sum())
    if missing > 0:
        extra_tail = np.flatnonzero(tail & ~keep)[:missing]
        drop_head = np.flatnonzero(~tail & keep)[::-1][: len(extra_tail)]
        keep[extra_tail] = True
        keep[drop_head] = False
    return ranked_items[keep]
