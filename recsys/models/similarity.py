"""Similarity matrices between rows of a sparse matrix, computed in blocks and pruned to k neighbours.

Shared by item-kNN, user-kNN, content models and anything else that scores by
"history @ similarity", so the metrics, shrinkage and pruning are written once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.data.errors import DataError

METRICS = ("cosine", "adjusted_cosine", "pearson", "jaccard")
# Bound each dense working block to this many cells (~100 MB per float64 array; a few live at once).
BLOCK_CELLS = 12_000_000


def center(matrix: sp.csr_matrix, axis: int) -> sp.csr_matrix:
    """Subtract each row's (axis=1) or column's (axis=0) mean over its observed entries."""
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if axis == 0:
        return center(m.T.tocsr(), 1).T.tocsr()
    counts = np.diff(m.indptr)
    sums = np.asarray(m.sum(axis=1)).ravel()
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    m.data -= np.repeat(means, counts)
    return m


def row_means(matrix: sp.csr_matrix) -> np.ndarray:
    counts = np.diff(matrix.indptr)
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    return np.divide(sums, counts, out=np.zeros_like(sums, dtype=np.float64), where=counts > 0)


def prepare(values: sp.csr_matrix, metric: str) -> sp.csr_matrix:
    """Rows are the entities to compare (items: pass X.T). Returns the vectors the metric compares."""
    if metric not in METRICS:
        raise DataError(f"Unknown similarity {metric!r}; choose one of {', '.join(METRICS)}.")
    values = sp.csr_matrix(values, dtype=np.float64)
    if metric == "jaccard":
        binary = values.copy()
        binary.data[:] = 1.0
        return binary
    if metric == "adjusted_cosine":
        # centre by the *other* entity's mean (e.g. the user's mean for item vectors)
        return center(values, 0)
    if metric == "pearson":
        return center(values, 1)
    return values


def pairwise_block(vectors: sp.csr_matrix, rows: np.ndarray, metric: str, binary: sp.csr_matrix,
                   shrinkage: float) -> np.ndarray:
    """Dense similarities between ``vectors[rows]`` and every vector: (len(rows), n)."""
    gram = (vectors[rows] @ vectors.T).toarray()
    if metric == "jaccard":
        sizes = np.asarray(binary.sum(axis=1)).ravel()
        union = sizes[rows][:, None] + sizes[None, :] - gram
        sim = np.divide(gram, union, out=np.zeros_like(gram), where=union > 0)
    else:
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        denom = norms[rows][:, None] * norms[None, :]
        sim = np.divide(gram, denom, out=np.zeros_like(gram), where=denom > 0)
    if shrinkage > 0:
        # few co-ratings make a similarity unreliable: damp it by n / (n + shrinkage)
        co = (binary[rows] @ binary.T).toarray()
        sim *= co / (co + shrinkage)
    sim[np.arange(len(rows)), rows] = 0.0  # an entity is not its own neighbour
    return sim


def keep_top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices and values of the k largest positive-magnitude similarities."""
    n = sim.shape[1]
    k = min(k, n)
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(sim), 1))
    vals = np.take_along_axis(sim, idx, axis=1)
    return idx, vals


def knn_similarity(vectors: sp.csr_matrix, metric: str, k: int, shrinkage: float,
                   binary: sp.csr_matrix, progress=None) -> sp.csr_matrix:
    """Sparse (n x n) matrix whose row r holds r's k most similar rows (positive similarities only)."""
    n = vectors.shape[0]
    block = max(1, min(n, BLOCK_CELLS // max(n, 1)))
    starts = range(0, n, block)
    parts_rows, parts_cols, parts_vals = [], [], []
    for step, start in enumerate(starts, 1):
        rows = np.arange(start, min(n, start + block))
        sim = pairwise_block(vectors, rows, metric, binary, shrinkage)
        idx, vals = keep_top_k(sim, k)
        keep = vals > 0
        parts_rows.append(np.repeat(rows, idx.shape[1])[keep.ravel()])
        parts_cols.append(idx[keep])
        parts_vals.append(vals[keep])
        if progress is not None:
            progress(step, len(starts))
    data = np.concatenate(parts_vals).astype(np.float32)
    return sp.csr_matrix((data, (np.concatenate(parts_rows), np.concatenate(parts_cols))), shape=(n, n))
