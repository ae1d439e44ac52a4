"""Top-K lists and ranking metrics computed by Spark, for users in blocks, from factor tables.

Each executor task takes a block of users (their vectors, training items and test positives, one
row per user), multiplies the block by the broadcast item factors, removes the training items,
keeps the top K and scores the lists: the driver only ever sees the means. The ranking rule is
``recsys.serving.ranking.top_k``'s (score descending, ties by lower item code, float32 scores) and
the metrics are ``recsys.evaluation.metrics``' definitions, so on data that fits in memory the
result equals ``recsys.evaluation.evaluate``'s for the same factors.

MLlib's own ``recommendForUserSubset`` is not used: it cannot leave out a user's training items,
so it would have to fetch K + (that user's history) items per user, and it breaks ties by its own
order. The blocked product here is the same work without either problem.

The task code needs only numpy and pandas (which Spark's pandas functions need anyway), so it runs
on any cluster's executors without this package installed there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

METRICS = ("ndcg", "recall", "hit", "precision")


@dataclass(frozen=True)
class SparkEvaluation:
    """Means over the evaluated users (``"ndcg@10"`` …), how many users, and the per-user rows as a
    Spark DataFrame (user, n_relevant and one column per metric) for whoever wants more."""

    means: dict[str, float]
    n_users: int
    k: list[int]
    per_user: object  # pyspark.sql.DataFrame


def factor_frame(factors: np.ndarray, session=None):
    """An (n, d) factor table as a Spark DataFrame (id int, features array<float>), MLlib's layout."""
    from recsys.spark.session import get_session

    spark = session or get_session()
    factors = np.asarray(factors, dtype=np.float32)
    table = pd.DataFrame({"id": np.arange(len(factors), dtype=np.int32), "features": list(factors)})
    return spark.createDataFrame(table, schema="id int, features array<float>")


def evaluate_factors(user_factors, item_factors: np.ndarray, train, test, k: int | Iterable[int] = (10,), *,
                     users_per_block: int = 1024, session=None) -> SparkEvaluation:
    """Rank every item for each user who has a test positive and a training interaction (as the
    evaluator does), training items left out, and measure the lists.

    ``user_factors``: a Spark DataFrame (id, features) such as MLlib's ``userFactors``, or an array.
    ``item_factors``: (n_items, d) array; it is broadcast to the executors once.
    ``train`` / ``test``: ``SparkInteractions`` (test's positives are the relevant items) or
    DataFrames with int ``user`` and ``item`` columns (every test row relevant).
    """
    from pyspark.sql import functions as F

    from recsys.spark.session import get_session

    ks = sorted({int(x) for x in np.atleast_1d(k)})
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be one or more positive integers; got {k!r}")
    spark = session or get_session()
    if isinstance(user_factors, np.ndarray):
        user_factors = factor_frame(user_factors, spark)
    items = np.ascontiguousarray(item_factors, dtype=np.float32)
    seen = _pairs(train, positives=False).groupBy("user").agg(F.collect_list("item").alias("seen"))
    relevant = (_pairs(test, positives=True).distinct().groupBy("user")
                .agg(F.collect_list("item").alias("relevant")))
    vectors = user_factors.select(F.col("id").alias("user"), F.col("features").alias("vector"))
    # inner joins: a user with no test positive or no training history is not ranked (evaluator's rule)
    rows = relevant.join(seen, "user").join(vectors, "user", "left")
    rows = rows.repartition(max(1, spark.sparkContext.defaultParallelism), "user")
    broadcast = spark.sparkContext.broadcast(items)
    schema = ", ".join(["user int", "n_relevant int", *(f"`{m}@{x}` double" for x in ks for m in METRICS)])
    block = max(1, int(users_per_block))

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for start in range(0, len(batch), block):
                yield user_block_metrics(batch.iloc[start:start + block], broadcast.value, ks)

    per_user = rows.mapInPandas(score_partition, schema=schema).cache()
    names = [f"{m}@{x}" for x in ks for m in METRICS]
    summary = per_user.agg(F.count(F.lit(1)).alias("n"), *(F.avg(F.col(f"`{n}`")).alias(n) for n in names)).first()
    broadcast.unpersist()
    return SparkEvaluation(means={n: float(summary[n]) for n in names if summary[n] is not None},
                           n_users=int(summary["n"]), k=ks, per_user=per_user)


def top_k_frame(user_factors, item_factors: np.ndarray, k: int, *, seen=None, users=None, session=None):
    """Each user's top ``k`` items (user, rank 1.., item, score), ``seen`` (user, item) pairs left out,
    computed in blocks on the executors; ``users`` (a DataFrame with a ``user`` column) limits it."""
    from pyspark.sql import functions as F

    from recsys.spark.session import get_session

    spark = session or get_session()
    if isinstance(user_factors, np.ndarray):
        user_factors = factor_frame(user_factors, spark)
    rows = user_factors.select(F.col("id").alias("user"), F.col("features").alias("vector"))
    if users is not None:
        rows = rows.join(users.select("user").distinct(), "user")
    if seen is not None:
        history = _pairs(seen, positives=False).groupBy("user").agg(F.collect_list("item").alias("seen"))
        rows = rows.join(history, "user", "left")
    else:
        rows = rows.withColumn("seen", F.array().cast("array<int>"))
    broadcast = spark.sparkContext.broadcast(np.ascontiguousarray(item_factors, dtype=np.float32))
    width = int(k)

    def rank_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for start in range(0, len(batch), 1024):
                part = batch.iloc[start:start + 1024]
                ranked, scores = rank_block(part, broadcast.value, width)
                keep = ranked >= 0
                positions = np.nonzero(keep)
                yield pd.DataFrame({"user": part["user"].to_numpy(np.int32)[positions[0]],
                                    "rank": (positions[1] + 1).astype(np.int32),
                                    "item": ranked[keep].astype(np.int32), "score": scores[keep]})

    return rows.mapInPandas(rank_partition, schema="user int, rank int, item int, score float")


# ---------------------------------------------------------------------- one block (runs on executors)
def rank_block(block: pd.DataFrame, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(items, scores), each (users, k): the best k unseen items per user of ``block`` (columns
    ``vector`` and ``seen``), score descending and ties by lower item code; -1 where none is left."""
    n_items, d = items.shape
    vectors = np.stack([np.zeros(d, np.float32) if v is None else np.asarray(v, np.float32)
                        for v in block["vector"]]) if len(block) else np.zeros((0, d), np.float32)
    scores = vectors @ items.T                                                    # (users, items) float32
    np.nan_to_num(scores, copy=False, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    rows, cols = _cells(block["seen"])
    scores[rows, cols] = -np.inf
    k = min(k, n_items)
    # every item scoring at least the k-th best, then the exact order (score desc, item asc) among
    # them: the first k of that order are top_k's, ties at the boundary included
    kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k][:, None]
    rows, cols = np.nonzero(scores >= kth)
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < k
    ranked = np.full((len(block), k), -1, dtype=np.int64)
    top_scores = np.full((len(block), k), -np.inf, dtype=np.float32)
    ranked[rows[keep], rank[keep]] = cols[keep]
    top_scores[rows[keep], rank[keep]] = scores[rows[keep], cols[keep]]
    ranked[~np.isfinite(top_scores) & (top_scores < 0)] = -1
    return ranked, top_scores


def user_block_metrics(block: pd.DataFrame, items: np.ndarray, ks: list[int]) -> pd.DataFrame:
    """Per-user NDCG / recall / hit rate / precision at each k for one block of users (columns
    ``user``, ``vector``, ``seen``, ``relevant``), by the evaluator's binary definitions."""
    top = max(ks)
    ranked, _ = rank_block(block, items, top)
    n_items = len(items)
    rows, cols = _cells(block["relevant"])
    wanted = np.unique(rows * n_items + cols)                       # sorted (user row, item) keys
    query = np.arange(len(block))[:, None] * n_items + np.maximum(ranked, 0)
    hits = np.zeros(ranked.shape, dtype=bool)
    if len(wanted):
        position = np.minimum(np.searchsorted(wanted, query), len(wanted) - 1)
        hits = (ranked >= 0) & (wanted[position] == query)
    n_relevant = np.bincount(wanted // n_items, minlength=len(block)).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, top + 2, dtype=np.float64))
    ideal_table = np.concatenate([[0.0], np.cumsum(discounts)])
    out = {"user": block["user"].to_numpy(np.int32), "n_relevant": n_relevant.astype(np.int32)}
    for k in ks:
        found = hits[:, :k]
        ideal = ideal_table[np.minimum(n_relevant, k).astype(np.int64)]
        out[f"ndcg@{k}"] = _divide(found @ discounts[:k], ideal)
        out[f"recall@{k}"] = _divide(found.sum(axis=1), n_relevant)
        out[f"hit@{k}"] = found.any(axis=1).astype(np.float64)
        out[f"precision@{k}"] = found.sum(axis=1) / float(k)
    return pd.DataFrame(out)[["user", "n_relevant", *(f"{m}@{k}" for k in ks for m in METRICS)]]


def _cells(lists: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(row, item) of every entry of a column of item lists (None = empty), as two int64 arrays."""
    lengths = np.array([0 if v is None else len(v) for v in lists], dtype=np.int64)
    rows = np.repeat(np.arange(len(lists)), lengths)
    present = [np.asarray(v, dtype=np.int64) for v in lists if v is not None and len(v)]
    return rows, (np.concatenate(present) if present else np.zeros(0, np.int64))


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(len(num), dtype=np.float64)
    np.divide(np.asarray(num, np.float64), den, out=out, where=den > 0)
    return out


def _pairs(source, *, positives: bool):
    """(user, item) rows of a SparkInteractions (its positives when asked) or of a DataFrame."""
    if hasattr(source, "positives"):
        return source.positives() if positives else source.frame.select("user", "item")
    return source.select("user", "item")

