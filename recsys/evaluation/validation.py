"""A cheap ranking metric for use *during* training (early stopping, live curves).

Kept apart from ``evaluator`` so models can import it without pulling in bootstrap,
beyond-accuracy metrics or the report machinery.
"""

from __future__ import annotations

import numpy as np

from recsys.data.dataset import Dataset
from recsys.evaluation.metrics import ndcg
from recsys.serving.ranking import top_k


def validation_ndcg(score_users, train: Dataset, valid: Dataset, k: int = 10,
                    batch_size: int = 2048) -> float:
    """Mean NDCG@k over users with validation items, ranking all items minus train items.

    ``score_users(users) -> (len(users), n_items)`` is the model's raw scorer, so this can
    run mid-fit, before the base class considers the model fitted.
    """
    truth = valid.positives
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if len(users) == 0:
        return float("nan")
    values = []
    for start in range(0, len(users), batch_size):
        batch = users[start:start + batch_size]
        items, _ = top_k(np.asarray(score_users(batch), dtype=np.float32), k, exclude=train.seen[batch])
        rows = truth[batch]
        hits = _hit_matrix(rows, items)
        values.append(ndcg(hits, np.diff(rows.indptr), k))
    return float(np.concatenate(values).mean())


def _hit_matrix(rows, items: np.ndarray) -> np.ndarray:
    """hits[u, r] = the item at rank r of user u is in that user's row of ``rows``."""
    safe = np.maximum(items, 0)
    hit = rows[np.arange(len(items))[:, None], safe].toarray().astype(bool)
    return hit & (items >= 0)
