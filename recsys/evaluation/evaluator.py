"""Full-catalogue evaluation of a fitted model: per-user metrics, intervals, list-level metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.evaluation import beyond, metrics
from recsys.evaluation.stats import bootstrap_cis, paired_test
from recsys.models.capabilities import has
from recsys.serving.ranking import top_k


@dataclass
class Report:
    """What ``evaluate`` measured. Every per-user array is aligned with ``users``.

    ``per_user`` keys are ``"<metric>@<k>"`` for metric in precision, recall, f1, ndcg,
    ndcg_graded, map, mrr, hit, novelty, arp, ild (ild only with item features), plus
    ``squared_error`` / ``absolute_error`` (each user's mean over their test ratings) for
    rating models. ``list_level`` holds coverage@k, gini@k and tail_share@k, which
    describe all lists together and have no per-user value.
    ``hits`` / ``n_relevant`` / ``gains`` / ``ideal_gains`` keep the raw material so
    ``curve`` can recompute any ranking metric at any k <= max(k) without re-scoring.
    """

    k: list[int]
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    means: dict[str, float]
    ci: dict[str, tuple[float, float]]
    list_level: dict[str, float]
    recommended: np.ndarray
    hits: np.ndarray
    n_relevant: np.ndarray
    gains: np.ndarray
    ideal_gains: np.ndarray
    n_items: int
    n_skipped_users: int
    score_seconds: float
    total_seconds: float
    rmse: float | None = None
    mae: float | None = None
    n_rated: int = 0
    model: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    def summary(self) -> dict:
        """One flat row: every mean, every list-level metric, rating errors and counts."""
        row: dict = {"model": self.model, "n_users": self.n_users, "n_skipped_users": self.n_skipped_users}
        row.update(self.means)
        row.update(self.list_level)
        if self.rmse is not None:
            row.update({"rmse": self.rmse, "mae": self.mae, "n_rated": self.n_rated})
        row["score_seconds"] = self.score_seconds
        return row

    def to_frame(self) -> pd.DataFrame:
        """``summary()`` as a one-row DataFrame (concatenate several to compare models)."""
        return pd.DataFrame([self.summary()])

    def per_user_frame(self) -> pd.DataFrame:
        """Per-user metrics as a table indexed by user code (for segment breakdowns)."""
        return pd.DataFrame(self.per_user, index=pd.Index(self.users, name="user"))


ProgressFn = Callable[[int, int, dict], None]


def evaluate(
    model,
    train: Dataset,
    test: Dataset,
    k: int | Iterable[int] = (10, 20),
    *,
    users=None,
    batch_size: int = 1024,
    bootstrap: int = 1000,
    seed: int = 0,
    features=None,
    head_fraction: float = 0.2,
    progress: ProgressFn | None = None,
    sampled_negatives: int | None = None,
) -> Report:
    """Rank the whole catalogue for each test user and measure the lists.

    Training items (``train.seen``) are never recommended. Relevant items are the user's
    test positives. A user is evaluated when they have at least one test positive and at
    least one training interaction; users with test positives but no training history
    cannot be ranked and are counted in ``n_skipped_users``. ``users`` restricts the
    evaluation to those codes. Scores are computed ``batch_size`` users at a time, the
    top max(k) list once per batch, then every metric at every k from that list.
    ``bootstrap`` resamples give 95% intervals (0 = none). ``features`` (n_items x d,
    sparse or dense) drives intra-list diversity; it defaults to the genre matrix.

    ``sampled_negatives = n`` reproduces the *sampled* protocol of many papers instead: each
    user's test positives are ranked only against n items drawn uniformly (seeded by ``seed``)
    from those the user never interacted with. It exists to show how that protocol misleads
    (Krichene & Rendle, 2020): the report records n in ``extra["sampled_negatives"]`` and the
    Compare page's caveats name it. Beyond-accuracy metrics of such lists mean little.
    """
    start = time.perf_counter()
    ks = _check_ks(k)
    _check_compatible(model, train, test)
    eval_users, n_skipped = _evaluable_users(train, test, users)
    if len(eval_users) == 0:
        raise DataError(
            "No test user has both a training history and a positive test interaction, so "
            "there is nothing to rank. Check the split (test fraction, positive threshold)."
        )
    if sampled_negatives is not None and int(sampled_negatives) < 1:
        raise ValueError(f"sampled_negatives must be a positive number of items; got {sampled_negatives!r}")
    sampler = None
    if sampled_negatives is not None:
        # its own stream, so sampling does not shift the bootstrap's resamples
        sampler = NegativeCandidates(int(sampled_negatives), np.random.default_rng([seed, 1]))
    ranked = _rank_in_batches(model, train, test, eval_users, max(ks), batch_size, progress, sampler)
    per_user, list_level = _all_metrics(ranked, train, ks, _default_features(train, features), head_fraction)
    rmse = mae = None
    n_rated = 0
    # implicit "ratings" are all 1.0: an error against them measures nothing
    if test.feedback == "explicit" and has(model, "predicts_ratings"):
        rmse, mae, n_rated, per_user_errors = _rating_errors(model, train, test, eval_users, users, batch_size)
        per_user.update(per_user_errors)
    means = {name: float(np.mean(values)) for name, values in per_user.items()}
    ci = bootstrap_cis(per_user, n_boot=bootstrap, seed=seed) if bootstrap > 0 else {}
    return Report(
        k=ks,
        users=eval_users,
        per_user=per_user,
        means=means,
        ci=ci,
        list_level=list_level,
        recommended=ranked["recommended"],
        hits=ranked["hits"],
        n_relevant=ranked["n_relevant"],
        gains=ranked["gains"],
        ideal_gains=ranked["ideal_gains"],
        n_items=train.n_items,
        n_skipped_users=n_skipped,
        score_seconds=ranked["score_seconds"],
        total_seconds=time.perf_counter() - start,
        rmse=rmse,
        mae=mae,
        n_rated=n_rated,
        model=getattr(model, "label", type(model).__name__),
        extra={"sampled_negatives": sampler.n} if sampler is not None else {},
    )


# ---------------------------------------------------------------------- checks and users
def _check_ks(k) -> list[int]:
    ks = sorted({int(x) for x in np.atleast_1d(k)})
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be one or more positive integers; got {k!r}")
    return ks


def _check_compatible(model, train: Dataset, test: Dataset) -> None:
    if not model.is_fitted:
        raise RuntimeError("The model is not fitted yet: call fit(train) before evaluating.")
    if test.n_items != train.n_items or test.n_users != train.n_users:
        raise DataError(
            "Train and test do not share the same user/item codes. Evaluate on the two "
            "halves of one split (recsys.data.split), not on separately loaded files."
        )


def _evaluable_users(train: Dataset, test: Dataset, users) -> tuple[np.ndarray, int]:
    has_positive = np.diff(test.positives.indptr) > 0
    has_history = np.diff(train.seen.indptr) > 0
    allowed = np.ones(train.n_users, dtype=bool)
    if users is not None:
        allowed[:] = False
        codes = np.asarray(users, dtype=np.int64)
        allowed[codes[(codes >= 0) & (codes < train.n_users)]] = True
    evaluable = np.flatnonzero(allowed & has_positive & has_history).astype(np.int64)
    n_skipped = int(np.count_nonzero(allowed & has_positive & ~has_history))
    return evaluable, n_skipped


def _default_features(train: Dataset, features):
    if features is not None:
        if features.shape[0] != train.n_items:
            raise ValueError(f"features must have one row per item ({train.n_items}); got {features.shape[0]}")
        return features
    genres, _ = train.genre_matrix
    return genres if genres.shape[1] > 0 else None


# ---------------------------------------------------------------------- ranking
def _graded_relevance(test: Dataset) -> sp.csr_matrix:
    """Gain per relevant (user, item): the rating with explicit feedback, 1 otherwise."""
    if test.feedback == "explicit":
        graded = test.csr.multiply(test.positives).tocsr()
    else:
        graded = test.positives.copy()
    graded.sort_indices()
    return graded


def _lookup(matrix: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """matrix[r, items[r, j]] for every cell (0 where absent or where the slot is -1).

    Binary search over linearised (row, item) keys: CSR with sorted indices already
    stores them in ascending order, so no per-user loop and no dense user x item matrix.
    """
    n_rows, n_cols = matrix.shape
    entry_rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr))
    keys = entry_rows * n_cols + matrix.indices.astype(np.int64)
    query = np.arange(n_rows, dtype=np.int64)[:, None] * n_cols + np.maximum(items, 0)
    pos = np.minimum(np.searchsorted(keys, query), max(len(keys) - 1, 0))
    found = (items >= 0) & (len(keys) > 0)
    if len(keys):
        found &= keys[pos] == query
    values = np.zeros(items.shape, dtype=np.float64)
    values[found] = matrix.data[pos[found]]
    return values


def _row_top_values(matrix: sp.csr_matrix, width: int) -> np.ndarray:
    """Each row's stored values sorted descending, cut or zero-padded to ``width``."""
    n_rows = matrix.shape[0]
    counts = np.diff(matrix.indptr)
    entry_rows = np.repeat(np.arange(n_rows), counts)
    order = np.lexsort((-matrix.data, entry_rows))
    # sorting by row first keeps each row's block where CSR had it, so rank = offset in block
    rank = np.arange(len(order)) - matrix.indptr[entry_rows]
    keep = rank < width
    out = np.zeros((n_rows, width), dtype=np.float64)
    out[entry_rows[keep], rank[keep]] = matrix.data[order][keep]
    return out


def _pad(items: np.ndarray, width: int) -> np.ndarray:
    """top_k caps k at the catalogue size; pad with empty slots so every k is defined."""
    if items.shape[1] >= width:
        return items
    return np.pad(items, ((0, 0), (0, width - items.shape[1])), constant_values=-1)


@dataclass
class NegativeCandidates:
    """The sampled protocol's candidate sets: a user's test positives plus ``n`` items drawn
    uniformly, without replacement, from the items the user has neither trained nor tested on."""

    n: int
    rng: np.random.Generator

    def mask(self, seen_rows: sp.csr_matrix, positive_rows: sp.csr_matrix) -> np.ndarray:
        """(users x items) boolean: True where the item may be ranked for that user."""
        positives = positive_rows.toarray() != 0
        blocked = positives | (seen_rows.toarray() != 0)
        # n uniform draws without replacement = the n smallest of i.i.d. uniform keys over the allowed items
        keys = self.rng.random(blocked.shape)
        keys[blocked] = np.inf
        m = min(self.n, blocked.shape[1])
        drawn = np.argpartition(keys, m - 1, axis=1)[:, :m]
        allowed = np.isfinite(np.take_along_axis(keys, drawn, axis=1))  # a user with fewer free items gets them all
        rows = np.broadcast_to(np.arange(blocked.shape[0])[:, None], drawn.shape)
        candidates = positives
        candidates[rows[allowed], drawn[allowed]] = True
        return candidates


def _rank_in_batches(model, train, test, eval_users, max_k, batch_size, progress,
                     sampler: NegativeCandidates | None = None) -> dict:
    graded = _graded_relevance(test)
    positives = test.positives
    n = len(eval_users)
    recommended = np.empty((n, max_k), dtype=np.int32)
    hits = np.empty((n, max_k), dtype=bool)
    gains = np.empty((n, max_k), dtype=np.float32)
    ideal_gains = np.empty((n, max_k), dtype=np.float32)
    score_seconds = 0.0
    batch_size = max(1, int(batch_size))
    n_batches = -(-n // batch_size)
    for b, lo in enumerate(range(0, n, batch_size)):
        batch = eval_users[lo : lo + batch_size]
        t0 = time.perf_counter()
        scores = model.score(batch)
        score_seconds += time.perf_counter() - t0
        seen_rows = train.seen[batch]
        positive_rows = positives[batch]
        positive_rows.sort_indices()
        if sampler is not None:
            scores = np.where(sampler.mask(seen_rows, positive_rows), scores, -np.inf)
        items, _ = top_k(scores, max_k, exclude=seen_rows)
        items = _pad(items, max_k)
        graded_rows = graded[batch]
        graded_rows.sort_indices()
        recommended[lo : lo + len(batch)] = items
        # hits come from the positives, not from gains > 0: a positive rated 0 is still a hit
        hits[lo : lo + len(batch)] = _lookup(positive_rows, items) > 0
        gains[lo : lo + len(batch)] = _lookup(graded_rows, items)
        ideal_gains[lo : lo + len(batch)] = _row_top_values(graded_rows, max_k)
        if progress is not None:
            progress(b + 1, n_batches, {})
    return {
        "recommended": recommended,
        "hits": hits,
        "gains": gains,
        "ideal_gains": ideal_gains,
        "n_relevant": np.diff(test.positives.indptr)[eval_users].astype(np.int64),
        "score_seconds": score_seconds,
    }


# ---------------------------------------------------------------------- metrics
def _all_metrics(ranked: dict, train: Dataset, ks: list[int], features, head_fraction: float):
    per_user: dict[str, np.ndarray] = {}
    list_level: dict[str, float] = {}
    rec = ranked["recommended"]
    popularity = train.item_popularity
    # self-information is relative to the people who could have consumed an item
    n_train_users = int(np.count_nonzero(train.user_activity))
    for k in ks:
        for name, fn in metrics.RANKING_METRICS.items():
            per_user[f"{name}@{k}"] = fn(
                ranked["hits"], ranked["n_relevant"], ranked["gains"], ranked["ideal_gains"], k
            )
        per_user[f"novelty@{k}"] = beyond.novelty(rec, popularity, n_train_users, k)
        per_user[f"arp@{k}"] = beyond.average_popularity(rec, popularity, k)
        if features is not None:
            per_user[f"ild@{k}"] = beyond.intra_list_diversity(rec, features, k)
        list_level[f"coverage@{k}"] = beyond.coverage(rec, train.n_items, k)
        list_level[f"gini@{k}"] = beyond.exposure_gini(rec, train.n_items, k)
        list_level[f"tail_share@{k}"] = beyond.long_tail_share(rec, popularity, k, head_fraction)
    return per_user, list_level


# ---------------------------------------------------------------------- rating errors
def _rating_errors(model, train, test, eval_users, users, batch_size):
    """RMSE/MAE over every test rating of users with a training history.

    Also each evaluated user's mean squared / absolute error, for intervals and paired
    tests. Non-finite predictions (a model that cannot predict a cell) are left out.
    """
    has_history = np.diff(train.seen.indptr) > 0
    has_ratings = np.diff(test.csr.indptr) > 0
    allowed = has_history & has_ratings
    if users is not None:
        chosen = np.zeros(train.n_users, dtype=bool)
        codes = np.asarray(users, dtype=np.int64)
        chosen[codes[(codes >= 0) & (codes < train.n_users)]] = True
        allowed &= chosen
    rated_users = np.flatnonzero(allowed)
    sq_sum = np.zeros(train.n_users)
    abs_sum = np.zeros(train.n_users)
    count = np.zeros(train.n_users)
    # a batch of users' ratings at a time bounds what predict() has to hold
    for lo in range(0, len(rated_users), max(1, int(batch_size))):
        batch = rated_users[lo : lo + batch_size]
        block = test.csr[batch].tocoo()
        row_users = batch[block.row]
        predicted = np.asarray(model.predict(row_users, block.col), dtype=np.float64)
        err = predicted - block.data
        ok = np.isfinite(err)
        sq_sum += np.bincount(row_users[ok], weights=err[ok] ** 2, minlength=train.n_users)
        abs_sum += np.bincount(row_users[ok], weights=np.abs(err[ok]), minlength=train.n_users)
        count += np.bincount(row_users[ok], minlength=train.n_users)
    n_rated = int(count.sum())
    if n_rated == 0:
        return float("nan"), float("nan"), 0, {}
    rmse = float(np.sqrt(sq_sum.sum() / n_rated))
    mae = float(abs_sum.sum() / n_rated)
    c = count[eval_users]
    per_user = {
        "squared_error": np.divide(sq_sum[eval_users], c, out=np.zeros(len(c)), where=c > 0),
        "absolute_error": np.divide(abs_sum[eval_users], c, out=np.zeros(len(c)), where=c > 0),
    }
    return rmse, mae, n_rated, per_user


# ---------------------------------------------------------------------- curves and comparisons
CURVE_METRICS = (*metrics.RANKING_METRICS, "coverage")


def curve(report: Report, metric: str, ks: Iterable[int] | None = None) -> pd.DataFrame:
    """Mean ``metric`` at each k, recomputed from the stored top-max(k) lists (no re-scoring).

    ``metric``: one of CURVE_METRICS ("ndcg", "recall", ..., "coverage"). ``ks`` defaults
    to 1..max(report.k); every k must be <= max(report.k). Returns columns k, metric, value.
    """
    if metric not in CURVE_METRICS:
        raise ValueError(f"Unknown curve metric {metric!r}; choose from {list(CURVE_METRICS)}.")
    max_k = report.hits.shape[1]
    ks = list(range(1, max_k + 1)) if ks is None else [int(x) for x in ks]
    too_far = [x for x in ks if not 1 <= x <= max_k]
    if too_far:
        raise ValueError(f"k values {too_far} lie outside 1..{max_k}; evaluate with a larger k to plot them.")
    values = []
    for k in ks:
        if metric == "coverage":
            values.append(beyond.coverage(report.recommended, report.n_items, k))
        else:
            fn = metrics.RANKING_METRICS[metric]
            values.append(float(np.mean(fn(report.hits, report.n_relevant, report.gains, report.ideal_gains, k))))
    return pd.DataFrame({"k": ks, "metric": metric, "value": values})


def compare_reports(
    report_a: Report, report_b: Report, metric: str, *, names: tuple[str, str] | None = None, alpha: float = 0.05
) -> dict:
    """Paired test of two reports on ``metric`` (e.g. "ndcg@10") over the users both evaluated."""
    for r in (report_a, report_b):
        if metric not in r.per_user:
            raise KeyError(f"{metric!r} is not in the report for {r.model or 'a model'}; it has {sorted(r.per_user)}.")
    common, ia, ib = np.intersect1d(report_a.users, report_b.users, return_indices=True)
    if len(common) == 0:
        raise ValueError("The two reports share no evaluated users; evaluate both on the same split.")
    names = names or (report_a.model or "model A", report_b.model or "model B")
    label = metric.replace("ndcg", "NDCG").replace("map", "MAP").replace("mrr", "MRR")
    return paired_test(report_a.per_user[metric][ia], report_b.per_user[metric][ib], metric=label, names=names, alpha=alpha)
