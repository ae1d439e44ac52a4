"""Trade-offs between runs: the metrics table, Pareto fronts, user segments and item-popularity buckets.

Everything here reads finished ``Report`` objects (plus the split they were measured on);
nothing re-scores a model. The Compare page renders these frames; notebooks can call them too.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset, popularity_order
from recsys.evaluation.evaluator import Report
from recsys.evaluation.stats import bootstrap_ci

# Ranking metrics first (accuracy), then beyond-accuracy per-user metrics, then list-level ones.
# Binary NDCG leads; graded NDCG (the held-out rating as a linear gain) follows the binary metrics.
ACCURACY_METRICS = ("ndcg", "recall", "precision", "f1", "map", "mrr", "hit", "ndcg_graded")
PER_USER_BEYOND = ("novelty", "ild", "arp")
LIST_LEVEL = ("coverage", "gini", "tail_share")

# Which way is better for each metric family: +1 higher is better, -1 lower is better.
# ARP and exposure Gini measure popularity bias / concentration, so less is better.
DIRECTION = {
    **{name: 1 for name in ACCURACY_METRICS},
    "novelty": 1, "ild": 1, "coverage": 1, "tail_share": 1,
    "arp": -1, "gini": -1, "rmse": -1, "mae": -1,
    "fit_seconds": -1, "score_seconds": -1,
}

# Mean-column name -> per-user array that carries its interval (rating errors are per-user means).
_RATING_ARRAYS = {"rmse": "squared_error", "mae": "absolute_error"}


def direction(column: str) -> int:
    """+1 when a larger value of ``column`` ("ndcg@10", "arp@20", "rmse", ...) is better, -1 when smaller is."""
    family = column.split("@", 1)[0]
    if family not in DIRECTION:
        raise ValueError(f"No known direction for {column!r}; known metric families: {sorted(DIRECTION)}.")
    return DIRECTION[family]


# ---------------------------------------------------------------------- metrics table
def metrics_table(reports: dict[str, Report], k: int, fit_seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per run: every metric at ``k`` with its 95 % bootstrap interval where one exists.

    Columns: ``run``, then for each metric a mean column (``"ndcg@10"``) and, for per-user
    metrics, ``"<metric> low"`` / ``"<metric> high"``. RMSE/MAE appear when any run predicts
    ratings (their interval is the bootstrap interval of the per-user mean squared / absolute
    error, squared-root for RMSE, so it brackets the pooled RMSE only approximately).
    List-level metrics (coverage, Gini, long-tail share) describe all lists at once and have no
    per-user values, so no interval. Timings close the row.
    """
    if not reports:
        raise ValueError("metrics_table needs at least one report.")
    missing = [name for name, rep in reports.items() if k not in rep.k]
    if missing:
        raise ValueError(f"K = {k} was not evaluated for {missing}; they were evaluated at K in "
                         f"{reports[missing[0]].k}.")
    any_ratings = any(rep.rmse is not None for rep in reports.values())
    rows = []
    for name, report in reports.items():
        row: dict = {"run": name}
        for metric in (*ACCURACY_METRICS, *PER_USER_BEYOND):
            column = f"{metric}@{k}"
            if column in report.means:
                row[column] = report.means[column]
                row[f"{column} low"], row[f"{column} high"] = report.ci.get(column, (np.nan, np.nan))
        for metric in LIST_LEVEL:
            row[f"{metric}@{k}"] = report.list_level.get(f"{metric}@{k}", np.nan)
        if any_ratings:  # every row gets the columns, NaN for ranking-only models, so the order is fixed
            row.update(_rating_columns(report) if report.rmse is not None else dict.fromkeys(_RATING_COLUMNS, np.nan))
        row["fit_seconds"] = (fit_seconds or {}).get(name, np.nan)
        row["score_seconds"] = report.score_seconds
        row["users"] = report.n_users
        rows.append(row)
    return pd.DataFrame(rows)


_RATING_COLUMNS = ("rmse", "rmse low", "rmse high", "mae", "mae low", "mae high")


def _rating_columns(report: Report) -> dict:
    out = {}
    for column, array in _RATING_ARRAYS.items():
        low, high = report.ci.get(array, (np.nan, np.nan))
        if column == "rmse":  # the interval of mean squared error, on the RMSE scale
            low, high = np.sqrt(low), np.sqrt(high)
        out[column] = report.rmse if column == "rmse" else report.mae
        out[f"{column} low"], out[f"{column} high"] = low, high
    return out


def best_per_column(table: pd.DataFrame) -> dict[str, list[int]]:
    """Row positions holding the best value of each metric column (ties all count), by direction."""
    best = {}
    for column in table.columns:
        if column == "run" or column.endswith((" low", " high")) or column == "users":
            continue
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(values).all():
            continue
        target = np.nanmax(values) if direction(column) > 0 else np.nanmin(values)
        best[column] = [int(i) for i in np.flatnonzero(values == target)]
    return best


# ---------------------------------------------------------------------- Pareto front
def pareto_front(x, y, *, x_higher: bool = True, y_higher: bool = True) -> np.ndarray:
    """Boolean mask of the points no other point dominates.

    Point j dominates point i when it is at least as good on both axes and strictly better on
    one ("good" follows each axis' direction). Equal points do not dominate each other, so
    duplicates on the front are all kept. Sort by x (best first, then y best first) and walk
    once: a point is on the front when its y beats every y seen at strictly better x.
    NaN coordinates are never on the front.
    """
    x = np.asarray(x, dtype=np.float64) * (1 if x_higher else -1)
    y = np.asarray(y, dtype=np.float64) * (1 if y_higher else -1)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be equally long 1-d arrays; got shapes {x.shape} and {y.shape}.")
    on_front = np.zeros(len(x), dtype=bool)
    finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    order = finite[np.lexsort((-y[finite], -x[finite]))]
    best_y_before = -np.inf  # best y among points with strictly larger x
    start = 0
    while start < len(order):
        # a block of points sharing the same x: only the block's top y can be undominated
        stop = start
        while stop < len(order) and x[order[stop]] == x[order[start]]:
            stop += 1
        block = order[start:stop]
        block_best = y[block[0]]
        if block_best > best_y_before:
            on_front[block[y[block] == block_best]] = True
        best_y_before = max(best_y_before, block_best)
        start = stop
    return on_front


def pareto_frame(table: pd.DataFrame, accuracy: str, other: str) -> pd.DataFrame:
    """``run``, the two metric columns and ``on_front`` for a scatter, front points ordered along ``accuracy``."""
    for column in (accuracy, other):
        if column not in table.columns:
            raise ValueError(f"{column!r} is not a column of the metrics table; it has {list(table.columns)}.")
    frame = table[["run", accuracy, other]].copy()
    frame["on_front"] = pareto_front(frame[accuracy], frame[other], x_higher=direction(accuracy) > 0,
                                     y_higher=direction(other) > 0)
    return frame.sort_values([accuracy, other]).reset_index(drop=True)


# ---------------------------------------------------------------------- user segments
SEGMENTS = ("new", "casual", "heavy")


def activity_cut_points(activity: np.ndarray, quantiles=(1 / 3, 2 / 3)) -> tuple[int, int]:
    """Training-interaction counts that close the "new" and "casual" segments.

    The thresholds adapt to the data: the lower and upper tercile of the evaluated users'
    training counts (rounded down to whole interactions). A user with ``count <= low`` is new,
    ``low < count <= high`` casual, ``count > high`` heavy. When counts are so tied that the
    terciles coincide, a segment is simply empty rather than split arbitrarily.
    """
    activity = np.asarray(activity)
    if len(activity) == 0:
        raise ValueError("No users to segment: the report evaluated nobody.")
    low, high = np.floor(np.quantile(activity, quantiles)).astype(int)
    return int(low), int(high)


def user_segments(activity: np.ndarray, cut_points: tuple[int, int]) -> np.ndarray:
    """Segment index per user (0 new, 1 casual, 2 heavy) from training-interaction counts."""
    low, high = cut_points
    return np.searchsorted(np.array([low, high]), np.asarray(activity), side="left")


def segment_label(segment: int, cut_points: tuple[int, int]) -> str:
    low, high = cut_points
    ranges = (f"≤ {low}", f"{low + 1}–{high}" if high > low + 1 else f"{high}", f"> {high}")
    return f"{SEGMENTS[segment]} ({ranges[segment]})"


def segment_metrics(reports: dict[str, Report], train: Dataset, metric: str, *, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """Mean ``metric`` per user segment and run, with a 95 % bootstrap interval and the user count.

    Segments come from the training activity of the users the first report evaluated, so every
    run is cut at the same thresholds. Columns: run, segment, label, users, low_count,
    high_count, mean, low, high. A segment with no users is left out.
    """
    if not reports:
        raise ValueError("segment_metrics needs at least one report.")
    first = next(iter(reports.values()))
    cut_points = activity_cut_points(train.user_activity[first.users])
    rows = []
    for name, report in reports.items():
        if metric not in report.per_user:
            raise ValueError(f"{metric!r} is not in the report of {name}; it has {sorted(report.per_user)}.")
        activity = train.user_activity[report.users]
        segment = user_segments(activity, cut_points)
        values = report.per_user[metric]
        for index in range(len(SEGMENTS)):
            members = segment == index
            if not members.any():
                continue
            low, high = bootstrap_ci(values[members], n_boot=n_boot, seed=seed)
            rows.append({"run": name, "segment": SEGMENTS[index], "label": segment_label(index, cut_points),
                         "users": int(members.sum()), "low_count": int(activity[members].min()),
                         "high_count": int(activity[members].max()), "mean": float(values[members].mean()),
                         "low": low, "high": high})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- popularity buckets
BUCKETS = ("head", "mid", "tail")


def popularity_buckets(item_popularity: np.ndarray, head_share: float = 0.5, mid_share: float = 0.8) -> np.ndarray:
    """Bucket per item (0 head, 1 mid, 2 tail) by cumulative share of training interactions.

    Items sorted from most to least popular (ties by item code): the head is the items whose
    interactions make up the first ``head_share`` of all interactions, the mid the next ones up
    to ``mid_share``, the tail the rest, items nobody consumed included. An item belongs to the
    bucket in which its own interactions begin, so the single most popular item is always head.
    """
    if not 0.0 < head_share < mid_share < 1.0:
        raise ValueError(f"Need 0 < head_share < mid_share < 1; got {head_share} and {mid_share}.")
    pop = np.asarray(item_popularity, dtype=np.float64)
    total = pop.sum()
    if total <= 0:
        raise ValueError("No training interactions: items cannot be bucketed by popularity.")
    order = popularity_order(pop)
    share_before = (np.cumsum(pop[order]) - pop[order]) / total
    buckets = np.empty(len(pop), dtype=np.int64)
    buckets[order] = np.searchsorted(np.array([head_share, mid_share]), share_before, side="right")
    return buckets


def bucket_exposure(reports: dict[str, Report], train: Dataset, test: Dataset, k: int, *,
                    head_share: float = 0.5, mid_share: float = 0.8) -> pd.DataFrame:
    """Per run and bucket: share of top-``k`` recommendation slots against share of test consumption.

    Consumption counts the test positives of the users each run evaluated (so both shares
    describe the same people). Columns: run, bucket, items, item_share, recommended_share,
    consumed_share. A model without popularity bias recommends each bucket about as often as
    people consume it; popularity-driven models over-expose the head.
    """
    buckets = popularity_buckets(train.item_popularity, head_share, mid_share)
    n_buckets = len(BUCKETS)
    items_per_bucket = np.bincount(buckets, minlength=n_buckets)
    rows = []
    for name, report in reports.items():
        if not 1 <= k <= report.recommended.shape[1]:
            raise ValueError(f"K = {k} lies outside the evaluated list length 1..{report.recommended.shape[1]}.")
        top = report.recommended[:, :k]
        shown = top[top >= 0].astype(np.int64)
        recommended = np.bincount(buckets[shown], minlength=n_buckets).astype(np.float64)
        consumed_items = test.positives[report.users].indices
        consumed = np.bincount(buckets[consumed_items], minlength=n_buckets).astype(np.float64)
        for index, bucket in enumerate(BUCKETS):
            rows.append({"run": name, "bucket": bucket, "items": int(items_per_bucket[index]),
                         "item_share": items_per_bucket[index] / len(buckets),
                         "recommended_share": recommended[index] / max(recommended.sum(), 1.0),
                         "consumed_share": consumed[index] / max(consumed.sum(), 1.0)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- per-user tables
def per_user_metrics(reports: dict[str, Report], train: Dataset, k: int) -> pd.DataFrame:
    """Long table for download and distributions: one row per (run, user) with that user's metrics at ``k``.

    Carries the external user id and the user's training-interaction count, so a reader can
    re-segment the users as they like.
    """
    frames = []
    for name, report in reports.items():
        columns = {c: v for c, v in report.per_user.items() if c.endswith(f"@{k}")}
        frame = pd.DataFrame(columns)
        frame.insert(0, "training_items", train.user_activity[report.users].astype(np.int64))
        frame.insert(0, "user", train.user_ids[report.users])
        frame.insert(0, "run", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def distribution_summary(per_user: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Box-plot numbers of ``metric`` per run: quartiles, Tukey whiskers (1.5 IQR), mean, share of zeros.

    Summarised here rather than in the browser so a chart of 100,000 users ships five numbers per run.
    """
    if metric not in per_user.columns:
        raise ValueError(f"{metric!r} is not a per-user column; columns are {list(per_user.columns)}.")
    rows = []
    for run, values in per_user.groupby("run", sort=False)[metric]:
        v = values.to_numpy(dtype=np.float64)
        q1, median, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        iqr = q3 - q1
        inside = v[(v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)]
        rows.append({"run": run, "q1": q1, "median": median, "q3": q3, "whisker_low": inside.min(),
                     "whisker_high": inside.max(), "mean": v.mean(), "zero_share": float(np.mean(v == 0)),
                     "users": len(v)})
    return pd.DataFrame(rows)


def metrics_records(reports: dict[str, Report], specs: dict[str, dict], fit_seconds: dict[str, float] | None = None
                    ) -> list[dict]:
    """JSON-ready description of each run: its spec (id, model, params, dataset, split) and every number
    of its report (means and 95 % intervals at every K, list-level metrics, rating errors, timings).

    Non-finite numbers become None (JSON has no NaN), so the output loads in any JSON reader.
    """
    out = []
    for name, report in reports.items():
        spec = specs.get(name, {})
        out.append(_finite({
            "name": name, "run_id": spec.get("run_id"), "model": spec.get("model"), "params": spec.get("params"),
            "dataset": spec.get("dataset"), "split": list(spec["split"]) if "split" in spec else None,
            "k": list(report.k), "users": report.n_users, "skipped_users": report.n_skipped_users,
            "fit_seconds": (fit_seconds or {}).get(name), "score_seconds": report.score_seconds,
            "means": report.means, "ci95": {m: list(v) for m, v in report.ci.items()},
            "list_level": report.list_level, "rmse": report.rmse, "mae": report.mae,
        }))
    return out


def _finite(value):
    """Recursively turn numpy scalars into Python numbers and NaN/inf into None."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
