"""The Data page's statistics of a log Spark holds, computed by Spark.

Spark reduces the interactions to two small tables, how many users have each activity count and
how many items have each popularity count (a few thousand rows even for 25M interactions), plus
the rating histogram and the time range; every figure the page shows is then exact arithmetic on
those tables, with the same definitions as ``recsys.data.stats`` (whose functions take the
per-user and per-item counts this module can hand back expanded, for the charts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# a chart of the long tail needs no more points than a screen has pixels across
LONG_TAIL_POINTS = 500


@dataclass(frozen=True)
class SparkStats:
    """What ``recsys.data.stats`` gives for a Dataset, for a log held by Spark."""

    summary: dict
    # count -> how many users (items) have exactly that many interactions, ascending by count
    activity_counts: pd.DataFrame
    popularity_counts: pd.DataFrame
    rating_histogram: dict[float, int]

    def user_activity(self) -> np.ndarray:
        """Every active user's number of interactions (ascending): what the activity chart bins."""
        return _expand(self.activity_counts)

    def item_popularity(self) -> np.ndarray:
        """Every interacted item's number of interactions (ascending): the popularity chart's input."""
        return _expand(self.popularity_counts)

    def long_tail_curve(self, points: int = LONG_TAIL_POINTS) -> tuple[np.ndarray, np.ndarray]:
        """``recsys.data.stats.long_tail_curve`` over the whole catalogue (never-consumed items last),
        at most ``points`` points: the exact curve's values at evenly spaced item ranks, the last included."""
        values, counts = _descending(self.popularity_counts)
        n_items = int(self.summary["items"])
        total = float((values * counts).sum())
        ranks = np.unique(np.linspace(1, n_items, min(points, n_items)).round().astype(np.int64))
        # interactions of the top r items, from the blocks of equal counts (past them: all of them)
        block_end = np.cumsum(counts)
        before = np.concatenate([[0.0], np.cumsum(values * counts)[:-1]])
        block = np.minimum(np.searchsorted(block_end, ranks, side="left"), len(counts) - 1)
        start = np.concatenate([[0], block_end[:-1]])[block]
        covered = np.minimum(before[block] + np.minimum(ranks - start, counts[block]) * values[block], total)
        return ranks / n_items, covered / max(total, 1.0)


def compute(interactions) -> SparkStats:
    """Statistics of a ``recsys.spark.io.SparkInteractions``: three Spark aggregations, small results."""
    from pyspark.sql import functions as F

    frame = interactions.frame
    activity = _count_of_counts(frame, "user")
    popularity = _count_of_counts(frame, "item")
    ratings = {}
    if interactions.feedback == "explicit":
        ratings = _rating_histogram(frame)
    span = {}
    if interactions.has_timestamps:
        row = frame.agg(F.min("timestamp").alias("first"), F.max("timestamp").alias("last")).first()
        span = {"first_timestamp": int(row["first"]), "last_timestamp": int(row["last"])}
    summary = _summary(interactions, activity, popularity, ratings, span)
    return SparkStats(summary=summary, activity_counts=activity, popularity_counts=popularity,
                      rating_histogram=ratings)


def _count_of_counts(frame, column: str) -> pd.DataFrame:
    from pyspark.sql import functions as F

    per_entity = frame.groupBy(column).agg(F.count(F.lit(1)).alias("count"))
    table = per_entity.groupBy("count").agg(F.count(F.lit(1)).alias("entities")).toPandas()
    return table.sort_values("count").reset_index(drop=True).astype({"count": np.int64, "entities": np.int64})


def _rating_histogram(frame) -> dict[float, int]:
    """``recsys.data.stats.rating_histogram``: each rating value's count, binned into 20 when there
    are more than 50 distinct values (the bins from Spark's min and max, as numpy draws them)."""
    from pyspark.sql import functions as F

    distinct = frame.select("rating").distinct().limit(51).count()
    if distinct <= 50:
        table = frame.groupBy("rating").agg(F.count(F.lit(1)).alias("n")).toPandas().sort_values("rating")
        # float32 like the Dataset's ratings, so 3.5 and 0.1-steps print and compare the same
        return {float(np.float32(v)): int(n) for v, n in zip(table["rating"], table["n"])}
    low, high = frame.agg(F.min("rating"), F.max("rating")).first()
    edges = np.histogram_bin_edges(np.array([low, high], dtype=np.float32), bins=20)
    bucket = F.least(F.floor((F.col("rating") - F.lit(float(edges[0])))
                             / F.lit(float(edges[1] - edges[0]))), F.lit(19)).cast("int")
    table = frame.groupBy(bucket.alias("bucket")).agg(F.count(F.lit(1)).alias("n")).toPandas()
    counts = np.zeros(20, dtype=np.int64)
    counts[table["bucket"].to_numpy()] = table["n"].to_numpy()
    centres = (edges[:-1] + edges[1:]) / 2
    return {float(c): int(n) for c, n in zip(centres, counts)}


def _summary(interactions, activity: pd.DataFrame, popularity: pd.DataFrame, ratings: dict, span: dict) -> dict:
    """``recsys.data.stats.summary``'s keys and definitions, from the count tables."""
    n_items = interactions.n_items
    out = {
        "name": interactions.name,
        "feedback": interactions.feedback,
        "users": interactions.n_users,
        "items": n_items,
        "items_with_interactions": int(popularity["entities"].sum()),
        "interactions": interactions.n_interactions,
        "density": interactions.density,
        "interactions_per_user_mean": _mean(activity),
        "interactions_per_user_median": _median(activity),
        "interactions_per_user_min": int(activity["count"].min()) if len(activity) else 0,
        "interactions_per_user_max": int(activity["count"].max()) if len(activity) else 0,
        "interactions_per_item_mean": _mean(popularity),
        "interactions_per_item_median": _median(popularity),
        "popularity_gini": _gini(popularity, n_items),
        "head_share_top20": _head_share(popularity, n_items),
        "has_timestamps": interactions.has_timestamps,
        "has_item_metadata": False,
    }
    if interactions.feedback == "explicit":
        out.update(_rating_range(interactions.frame))
    out.update(span)
    return out


def _rating_range(frame) -> dict:
    from pyspark.sql import functions as F

    row = frame.agg(F.avg("rating").alias("mean"), F.min("rating").alias("low"), F.max("rating").alias("high")).first()
    # the Dataset holds float32 ratings; Spark reads them as doubles
    return {"rating_mean": float(row["mean"]), "rating_min": float(np.float32(row["low"])),
            "rating_max": float(np.float32(row["high"]))}


# ---------------------------------------------------------------------- arithmetic on count tables
def _expand(table: pd.DataFrame) -> np.ndarray:
    return np.repeat(table["count"].to_numpy(np.int64), table["entities"].to_numpy(np.int64))


def _descending(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ordered = table.sort_values("count", ascending=False)
    return ordered["count"].to_numpy(np.float64), ordered["entities"].to_numpy(np.int64)


def _mean(table: pd.DataFrame) -> float:
    n = table["entities"].sum()
    return float((table["count"] * table["entities"]).sum() / n) if n else 0.0


def _median(table: pd.DataFrame) -> float:
    """numpy's median (the mean of the two middle values when their number is even)."""
    n = int(table["entities"].sum())
    if n == 0:
        return 0.0
    ends = np.cumsum(table["entities"].to_numpy())
    values = table["count"].to_numpy(np.float64)
    lower = values[np.searchsorted(ends, (n - 1) // 2, side="right")]
    upper = values[np.searchsorted(ends, n // 2, side="right")]
    return float((lower + upper) / 2)


def _gini(table: pd.DataFrame, n_items: int) -> float:
    """``recsys.data.stats.gini`` over all ``n_items`` items (those never consumed count as zeros):
    (n + 1 - 2 Σ_j cum_j / total) / n with the values ascending, summed block by block of equal values."""
    values = table["count"].to_numpy(np.float64)
    counts = table["entities"].to_numpy(np.float64)
    total = float((values * counts).sum())
    if n_items == 0 or total == 0:
        return 0.0
    before = np.concatenate([[0.0], np.cumsum(values * counts)[:-1]])   # zeros add nothing to cum
    # Σ over a block of c equal values v after a prefix P: c P + v c (c + 1) / 2
    cumulative = float((counts * before + values * counts * (counts + 1) / 2).sum())
    return float((n_items + 1 - 2 * cumulative / total) / n_items)


def _head_share(table: pd.DataFrame, n_items: int, head_fraction: float = 0.2) -> float:
    """``recsys.data.stats.head_share``: the most popular ceil(20 %) of all items' share of interactions."""
    values, counts = _descending(table)
    total = float((values * counts).sum())
    if total == 0:
        return 0.0
    n_head = max(1, int(np.ceil(head_fraction * n_items)))
    taken = np.minimum(counts, np.maximum(n_head - np.concatenate([[0], np.cumsum(counts)[:-1]]), 0))
    return float((values * taken).sum() / total)
