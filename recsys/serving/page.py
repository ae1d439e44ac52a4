"""Homepage assembly: rows ordered by expected relevance, re-ranked, de-duplicated, measured.

``HomepageBuilder(model, train)`` is built once per trained model; ``for_user(code, settings)``
and ``for_new_visitor(items, settings)`` then build one page each. A page is a list of rows
of item codes with one readable reason per tile, plus page-level metrics (how much of the
page is distinct, how many genres it spans, how novel and how long-tail it is).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.serving import coldstart
from recsys.serving.rerank import mmr, popularity_blend, tail_floor, unit_rows
from recsys.serving.rows import Catalogue, RowCandidates, Visitor, default_generators


@dataclass(frozen=True)
class PageSettings:
    """The knobs of a page. alpha: popularity blend; mmr_lambda: 1 = pure relevance, lower = more
    diverse; tail_share: least share of each row from the long tail; dedupe: no title twice."""

    row_length: int = 10
    max_rows: int = 8
    dedupe: bool = True
    alpha: float = 0.0
    mmr_lambda: float = 1.0
    tail_share: float = 0.0
    # each row draws from a pool this many times its length, so dedupe and re-ranking have room
    pool_factor: int = 5
    # True: a row that cannot fill row_length titles (after dedupe) is left out, so every
    # row on the page has the same length; False keeps short rows (tiny catalogues)
    full_rows_only: bool = True

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.row_length <= 100, f"row length must lie in [1, 100]; got {self.row_length}"),
            (1 <= self.max_rows <= 50, f"the number of rows must lie in [1, 50]; got {self.max_rows}"),
            (0.0 <= self.alpha <= 1.0, f"the popularity blend alpha must lie in [0, 1]; got {self.alpha}"),
            (0.0 <= self.mmr_lambda <= 1.0, f"the MMR lambda must lie in [0, 1]; got {self.mmr_lambda}"),
            (0.0 <= self.tail_share <= 1.0, f"the long-tail floor must lie in [0, 1]; got {self.tail_share}"),
            (self.pool_factor >= 1, f"pool_factor must be at least 1; got {self.pool_factor}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DataError(f"Page settings: {message}.")

    @property
    def pool(self) -> int:
        return self.row_length * self.pool_factor


@dataclass
class Row:
    """One finished row of a page: item codes (left to right) and why each is there."""

    key: str
    title: str
    kind: str
    items: np.ndarray
    reasons: list[str]
    relevance: float  # mean ranking score (normalised, in [0, 1]) of the row's items, times the row's weight


@dataclass
class Homepage:
    visitor: str
    model: str
    settings: PageSettings
    rows: list[Row]
    metrics: dict = field(default_factory=dict)

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def items(self) -> np.ndarray:
        """Every slot of the page, row by row."""
        return np.concatenate([r.items for r in self.rows]) if self.rows else np.empty(0, np.int64)


class HomepageBuilder:
    """Builds pages from one fitted model over its training set; per-dataset work happens once here."""

    def __init__(self, model, train: Dataset | None = None, generators: list | None = None,
                 catalogue: Catalogue | None = None):
        train = train if train is not None else getattr(model, "train_", None)
        if train is None:
            raise DataError("The model is not trained yet; train it before building a homepage.")
        self.model = model
        self.train = train
        self.catalogue = catalogue if catalogue is not None else Catalogue(train)
        self.generators = generators if generators is not None else default_generators()
        self._vectors = _dense_unit_rows(self.catalogue.similarity_vectors(model))
        self._histories = _ordered_histories(train)

    @property
    def label(self) -> str:
        return getattr(self.model, "label", type(self.model).__name__)

    # ------------------------------------------------------------------ visitors
    def user_visitor(self, user: int, settings: PageSettings) -> Visitor:
        if not 0 <= int(user) < self.train.n_users:
            raise DataError(f"User code {user} is not in this training set (it has {self.train.n_users:,} users).")
        items, ratings = self._histories(int(user))
        scores = np.asarray(self.model.score(np.array([int(user)]))[0], dtype=np.float32)
        return self._visitor(f"user {self.train.user_ids[int(user)]}", items, ratings, scores, settings, False)

    def new_visitor(self, items, settings: PageSettings) -> Visitor:
        picks = coldstart.check_picks(items, self.train.n_items)
        scores = coldstart.new_visitor_scores(self.model, picks)
        # picks arrive in the order chosen; the last one is treated as the most recent
        return self._visitor("a new visitor", picks, None, scores, settings, True)

    def _visitor(self, name, items, ratings, scores, settings: PageSettings, is_new: bool) -> Visitor:
        ranking = popularity_blend(scores, self.catalogue.popularity, settings.alpha)
        ranked_by = f"by {self.label}"
        if settings.alpha > 0:
            ranked_by += f" blended with {settings.alpha:.0%} popularity"
        reserve = settings.row_length if settings.tail_share > 0 else 0
        return Visitor(name, np.asarray(items, np.int64), ratings, scores, ranking, is_new, ranked_by,
                       self.catalogue.is_tail, reserve)

    # ------------------------------------------------------------------ pages
    def for_user(self, user: int, settings: PageSettings | None = None) -> Homepage:
        settings = settings or PageSettings()
        return self.build(self.user_visitor(user, settings), settings)

    def for_new_visitor(self, items, settings: PageSettings | None = None) -> Homepage:
        settings = settings or PageSettings()
        return self.build(self.new_visitor(items, settings), settings)

    def build(self, visitor: Visitor, settings: PageSettings) -> Homepage:
        candidates = []
        for generator in self.generators:
            candidates.extend(generator.rows(visitor, self.catalogue, self.model, settings.pool))
        ordered = order_rows(candidates, visitor.ranking_scores, settings.row_length)
        rows, used = [], np.zeros(self.train.n_items, dtype=bool)
        for row, _ in ordered:
            if len(rows) >= settings.max_rows:
                break
            finished = self._finish_row(row, visitor, settings, used if settings.dedupe else None)
            if finished is not None:
                rows.append(finished)
                used[finished.items] = True
        page = Homepage(visitor.name, self.label, settings, rows)
        page.metrics = page_metrics(page, self.catalogue)
        return page

    def _finish_row(self, row: RowCandidates, visitor: Visitor, settings: PageSettings,
                    used: np.ndarray | None) -> Row | None:
        keep = np.ones(len(row.items), dtype=bool) if used is None else ~used[row.items]
        pool, scores = row.items[keep], np.asarray(row.scores)[keep]
        reasons = dict(zip(row.items.tolist(), row.reasons))
        if len(pool) == 0 or (settings.full_rows_only and len(pool) < settings.row_length):
            return None
        if row.rerankable:
            chosen = rerank_pool(pool, scores, self._vectors, self.catalogue.is_tail, settings)
        else:
            chosen = pool[: settings.row_length]
        relevance = row.relevance_weight * float(np.mean(visitor.ranking_scores[chosen]))
        return Row(row.key, row.title, row.kind, chosen, [reasons[int(i)] for i in chosen], relevance)


# Above this many cells the diversity vectors stay sparse (memory over speed).
DENSE_VECTOR_CELLS = 20_000_000


def _dense_unit_rows(vectors):
    """Unit-length item vectors, dense when small: MMR then slices a pool's rows without sparse overhead."""
    unit = unit_rows(vectors)
    if sp.issparse(unit) and unit.shape[0] * unit.shape[1] <= DENSE_VECTOR_CELLS:
        return unit.toarray().astype(np.float32)
    return unit


def rerank_pool(pool: np.ndarray, scores: np.ndarray, vectors, is_tail: np.ndarray,
                settings: PageSettings) -> np.ndarray:
    """MMR picks the row from the ranked pool, then the tail floor swaps in long-tail items if needed."""
    length = settings.row_length
    if settings.mmr_lambda < 1.0:
        picked = mmr(pool, scores, vectors[pool], settings.mmr_lambda, length)
    else:
        picked = pool[:length]  # MMR at lambda = 1 is the pool's own order; skip the greedy loop
    if settings.tail_share <= 0.0:
        return picked
    rest = pool[~np.isin(pool, picked)]
    return tail_floor(np.concatenate([picked, rest]), is_tail, settings.tail_share, length)


def order_rows(candidates: list[RowCandidates], ranking_scores: np.ndarray, length: int):
    """Rows with their expected relevance (mean normalised score of the first ``length`` items), best first.

    Ties keep the generators' order, so "Top picks" leads when it is as good as another row.
    """
    scored = [(row, row.relevance_weight * float(np.mean(ranking_scores[row.items[:length]])))
              for row in candidates if len(row.items)]
    return sorted(scored, key=lambda pair: -pair[1])


def _ordered_histories(train: Dataset):
    """A function user -> (items oldest first, ratings), from one sort of the interactions."""
    time_key = train.timestamp if train.timestamp is not None else np.arange(train.n_interactions)
    order = np.lexsort((train.item, time_key, train.user))
    items, ratings = train.item[order].astype(np.int64), train.rating[order]
    starts = np.concatenate([[0], np.cumsum(train.user_activity)])
    explicit = train.feedback == "explicit"

    def history(user: int) -> tuple[np.ndarray, np.ndarray | None]:
        span = slice(starts[user], starts[user + 1])
        return items[span], (ratings[span] if explicit else None)

    return history


# ---------------------------------------------------------------------------- metrics


def page_metrics(page: Homepage, catalogue: Catalogue) -> dict:
    """Page-level beyond-accuracy numbers over every slot of the page."""
    slots = page.items.astype(np.int64)
    n = len(slots)
    distinct = np.unique(slots)
    metrics = {
        "rows": len(page.rows),
        "slots": n,
        "distinct titles": len(distinct),
        "duplicates": n - len(distinct),
        "page coverage": len(distinct) / n if n else 0.0,
        "catalogue share": len(distinct) / max(1, catalogue.n_items),
        "novelty (bits)": float(np.mean(catalogue.self_information[slots])) if n else 0.0,
        "tail share": float(np.mean(catalogue.is_tail[slots])) if n else 0.0,
    }
    metrics.update(genre_spread(slots, catalogue))
    return metrics


def genre_spread(slots: np.ndarray, catalogue: Catalogue) -> dict:
    """Distinct genres on the page and the entropy (bits) of the genre mix.

    Each slot spreads one unit of weight over its genres, so a three-genre title does not
    count three times as much as a one-genre title.
    """
    if not catalogue.has_genres or len(slots) == 0:
        return {"genres": 0, "genre entropy (bits)": 0.0}
    member = catalogue.genre_matrix[slots].toarray()
    per_slot = member.sum(axis=1, keepdims=True)
    weights = np.divide(member, per_slot, out=np.zeros_like(member), where=per_slot > 0).sum(axis=0)
    share = weights[weights > 0] / weights.sum() if weights.sum() > 0 else np.empty(0)
    return {"genres": int((member.sum(axis=0) > 0).sum()),
            "genre entropy (bits)": float(-(share * np.log2(share)).sum()) if len(share) else 0.0}


# ---------------------------------------------------------------------------- people and latency


def typical_users(train: Dataset) -> dict[str, int]:
    """User codes nearest the 10th ("light") and 90th ("heavy") percentile of activity, lowest code on ties."""
    activity = train.user_activity.astype(np.float64)
    active = np.flatnonzero(activity > 0)
    if len(active) == 0:
        raise DataError("The training set has no users with interactions.")
    out = {}
    for name, q in (("light", 10), ("heavy", 90)):
        target = np.percentile(activity[active], q)
        distance = np.abs(activity[active] - target)
        out[name] = int(active[np.argmin(distance)])
    return out


def measure_latency(builder: HomepageBuilder, users, settings: PageSettings | None = None) -> dict:
    """Wall-clock time to build one whole page per user: p50 / p99 / mean / max in milliseconds.

    The first page is built once beforehand and not counted, so lazy one-off work
    (caches, the first BLAS call) does not land on a person's request.
    """
    settings = settings or PageSettings()
    users = np.asarray(users, dtype=np.int64)
    if len(users) == 0:
        raise DataError("Measuring homepage latency needs at least one user.")
    builder.for_user(int(users[0]), settings)
    times = np.empty(len(users))
    for position, user in enumerate(users):
        start = time.perf_counter()
        builder.for_user(int(user), settings)
        times[position] = (time.perf_counter() - start) * 1000.0
    return {"pages": len(users), "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "mean_ms": float(times.mean()), "max_ms": float(times.max())}


def bench_homepage(model, train: Dataset, n_users: int = 200, seed: int = 42,
                   settings: PageSettings | None = None) -> dict:
    """Homepage build latency for ``n_users`` random training users of a fitted model (for the bench)."""
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(train.user_activity > 0)
    users = rng.choice(active, size=min(n_users, len(active)), replace=False)
    result = measure_latency(HomepageBuilder(model, train), users, settings)
    return {"model": getattr(model, "key", type(model).__name__), **result}

