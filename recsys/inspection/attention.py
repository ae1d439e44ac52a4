"""What a sequential model looks at: a user's ordered history, attention maps, influences."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.serving.ranking import top_k


def user_sequence(ds: Dataset, user: int) -> np.ndarray:
    """The user's item codes in time order (ties broken by item id, as the splits do)."""
    if ds.timestamp is None:
        raise DataError("This dataset has no timestamps, so there is no order of events to show.")
    return ds.histories_in_time_order().of(user).copy()


def attention_map(weights: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """One (L, L) map from (layers, heads, L, L) weights; None = the mean over that axis."""
    w = np.asarray(weights, dtype=np.float64)
    w = w.mean(axis=0) if layer is None else w[layer]
    return w.mean(axis=0) if head is None else w[head]


def attention_frame(matrix: np.ndarray, titles: np.ndarray) -> pd.DataFrame:
    """Long form of an (L, L) map for a heatmap: query position attends to key position.

    Cells a causal model can never fill (a later key, weight exactly 0 everywhere above the diagonal) are left
    out, so the heatmap draws them blank instead of in the colour of a zero weight.
    """
    n = matrix.shape[0]
    labels = [f"{i + 1}. {str(t)[:28]}" for i, t in enumerate(titles[-n:])]
    q, k = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = np.ones((n, n), dtype=bool)
    if is_causal(matrix):
        keep = k <= q
    return pd.DataFrame({"query": np.array(labels)[q[keep]], "key": np.array(labels)[k[keep]],
                         "query_pos": q[keep] + 1, "key_pos": k[keep] + 1, "weight": matrix[keep]})


def is_causal(matrix: np.ndarray) -> bool:
    """Whether the map never attends to a later position (every weight above the diagonal is 0)."""
    return bool(np.all(np.triu(np.asarray(matrix), k=1) == 0))


def next_items_with_influences(model, sequence: np.ndarray, k: int = 10, per_item: int = 2) -> pd.DataFrame:
    """The model's top-k next items after ``sequence`` and, for each, the past items that
    most influenced it.

    The model reads at most its ``max_len`` latest items; ``sequence`` should be what the page
    shows, so every cited title is one the person can see. Influence of past item j on
    candidate c = (attention the last position pays to j, averaged over the last layer's
    heads) × max(0, cosine(item vector of c, item vector of j)): attention says what the model
    looked at, the similarity says what of that points to c. Each is shown as its share of c's
    total influence: raw products are tiny (attention is spread over up to max_len positions),
    a share reads at a glance.
    """
    sequence = np.asarray(sequence, dtype=np.int64)
    if len(sequence) == 0:
        raise DataError("Pick at least one item for the sequence.")
    scores = np.asarray(model.score_history(sequence), dtype=np.float32)[None, :]
    exclude = np.zeros_like(scores, dtype=bool)
    exclude[0, sequence] = True
    items, values = top_k(scores, k, exclude=exclude)
    items, values = items[0][items[0] >= 0], values[0][items[0] >= 0]
    weights = np.asarray(model.attention(sequence))
    last = weights[-1].mean(axis=0)[-1]                       # (L,) what the final position attends to
    read = sequence[-len(last):]                              # what the model actually read
    vectors = model.item_embeddings()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = np.clip(unit[items] @ unit[read].T, 0, None)   # (k, L)
    influence = similarity * last[None, :]
    titles = model.trained_on.item_titles()
    rows = []
    totals = influence.sum(axis=1, keepdims=True)
    share = np.divide(influence, totals, out=np.zeros_like(influence), where=totals > 0)
    for rank, (item, value, row) in enumerate(zip(items, values, share), start=1):
        top = np.argsort(-row, kind="stable")[:per_item]
        because = ", ".join(f"{titles[read[j]]} ({row[j]:.0%})" for j in top if row[j] > 0)
        rows.append({"rank": rank, "title": titles[item], "score": float(value), "because of": because or "—"})
    return pd.DataFrame(rows)


def model_window(model) -> int:
    """How many of the latest items the model reads (its ``max_len``; 50, the common default, when it has none)."""
    return int(model.get_params().get("max_len", 50)) if hasattr(model, "get_params") else 50
