"""Homepage assembly: rows ordered by expected relevance, re-ranked, de-duplicated, measured.

``HomepageBuilder(model, train)`` is built once per trained model; ``for_user(code, settings)``
and ``for_new_visitor(items, settings)`` then build one page each. A page is a list of rows
of item codes with one readable reason per tile, plus page-level metrics (how much of the
page is distinct, how many genres it spans, how novel and how long-tail it is).

A page may mix models: ``with_row_models({"top_picks": ease, "genre": ials})`` gives row
kinds their own model (all trained on the same data); the rest come from the default model.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.serving import coldstart
from recsys.serving.rerank import mmr, popularity_blend, tail_floor, unit_rows
from recsys.serving.rows import Catalogue, RowCandidates, Visitor, default_generators
from recsys.serving.timing import latency_summary


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
    # mean ranking score (normalised, in [0, 1]) of the row's items, times the row's weight;
    # on a page that mixes models, the mean percentile rank under the row's own model
    relevance: float
    model: str = ""  # the model that made the row ("" for rows no model shapes: trending, watch again)


@dataclass
class Homepage:
    visitor: str
    model: str
    settings: PageSettings
    rows: list[Row]
    metrics: dict = field(default_factory=dict)
    # readable row kind ("Top picks") -> model name, for the kinds given a model other than the default
    row_models: dict[str, str] = field(default_factory=dict)
    # rows left out because their model cannot serve this person, each with the reason
    skipped: list[str] = field(default_factory=list)

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.key == key), None)

    @property
    def mixed(self) -> bool:
        """Do the rows come from more than one model?"""
        return bool(self.row_models)

    @property
    def items(self) -> np.ndarray:
        """Every slot of the page, row by row."""
        return np.concatenate([r.items for r in self.rows]) if self.rows else np.empty(0, np.int64)


class HomepageBuilder:
    """Builds pages from fitted models over one training set; per-dataset work happens once here.

    ``model`` is the page's default model: it makes every row not given a model of its own,
    and it places the rows no model shapes (trending, watch again). ``row_models`` gives a
    row kind (``"top_picks"``, ``"because"``, ``"genre"``, ``"new"``, ``"just_added"``) its own
    model trained on the same data; ``with_row_models`` does the same on a copy that shares
    the catalogue. Each distinct model scores the person once per page.

    A new visitor needs fold-in (``score_history``): the default model must have it (the page
    cannot be placed without it, so ``for_new_visitor`` raises a DataError naming it); a row
    whose own model lacks it is left out, and ``Homepage.skipped`` says which and why.
    """

    def __init__(self, model, train: Dataset | None = None, generators: list | None = None,
                 catalogue: Catalogue | None = None, row_models: dict | None = None, *,
                 name: str | None = None, names: dict[str, str] | None = None):
        if train is None and model.is_fitted:
            train = model.trained_on
        if train is None:
            raise DataError("The model is not trained yet; train it before building a homepage.")
        self.model = model
        self.train = train
        self.name = name
        self.catalogue = catalogue if catalogue is not None else Catalogue(train)
        self.generators = generators if generators is not None else default_generators()
        self._vector_cache: dict = {}
        self._vectors = self._vectors_for(model)
        self._histories = _ordered_histories(train)
        self.row_models, self._names = self._checked_row_models(row_models or {}, names or {})

    @property
    def label(self) -> str:
        return self.name or model_label(self.model)

    # ------------------------------------------------------------------ a model per row
    def row_kinds(self) -> dict[str, str]:
        """{kind: readable name} of the rows that can be given their own model, in generator order."""
        return {g.kind: getattr(g, "label", g.kind) for g in self.generators if getattr(g, "uses_model", True)}

    def with_row_models(self, row_models: dict, names: dict[str, str] | None = None) -> HomepageBuilder:
        """A builder sharing this one's catalogue and histories whose rows of the given kinds come from
        other models; ``names`` (kind -> name) labels them in reasons, else each model's label is used."""
        clone = copy.copy(self)
        clone.row_models, clone._names = self._checked_row_models(row_models, names or {})
        return clone

    def model_for(self, kind: str):
        return self.row_models.get(kind, self.model)

    def name_of(self, model) -> str:
        return self.label if model is self.model else self._names.get(id(model), model_label(model))

    @property
    def description(self) -> str:
        """The default model, then each row kind given another model: "EASE; Genre rows by iALS"."""
        kinds = self.row_kinds()
        extra = [f"{kinds[kind]} by {self.name_of(model)}" for kind, model in self.row_models.items()]
        return "; ".join([self.label, *extra])

    def _checked_row_models(self, row_models: dict, names: dict[str, str]) -> tuple[dict, dict[int, str]]:
        """Row kind -> model, without the kinds assigned the default model itself (those rows are the
        single-model rows), each checked to be trained on this builder's training data."""
        kinds = self.row_kinds()
        checked, labels = {}, {}
        for kind, model in row_models.items():
            if kind not in kinds:
                raise DataError(f"There is no row kind {kind!r} that takes its own model; the kinds are "
                                f"{', '.join(map(repr, kinds))}. Trending and watch-again rows use no model.")
            if model is self.model or model is None:
                continue
            name = names.get(kind) or model_label(model)
            if not model.is_fitted:
                raise DataError(f"{name}, chosen for {kinds[kind]}, is not trained yet; train it on the "
                                "same data and split as the main model first.")
            trained_on = model.trained_on
            if trained_on is not self.train and (trained_on.n_items != self.train.n_items
                                                 or trained_on.fingerprint != self.train.fingerprint):
                raise DataError(f"{name}, chosen for {kinds[kind]}, was trained on different data than "
                                f"{self.label}; every row model must be trained on the same dataset and split.")
            checked[kind] = model
            labels[id(model)] = name
        return checked, labels

    def _models(self) -> list:
        """Every model the page uses, the default first, each once (by identity)."""
        distinct = {id(self.model): self.model}
        for model in self.row_models.values():
            distinct.setdefault(id(model), model)
        return list(distinct.values())

    def _vectors_for(self, model):
        """Unit item vectors for MMR: genres when known (shared by every model), else the model's own."""
        key = None if self.catalogue.has_genres else id(model)
        if key not in self._vector_cache:
            self._vector_cache[key] = _dense_unit_rows(self.catalogue.similarity_vectors(model))
        return self._vector_cache[key]

    # ------------------------------------------------------------------ visitors
    def user_visitors(self, user: int, settings: PageSettings) -> dict[int, Visitor]:
        """The user as seen by each model of the page (keyed by model identity); one score call per model."""
        user = self._check_user(user)
        items, ratings = self._histories(user)
        return {id(model): self._user_visitor(user, items, ratings, settings, model) for model in self._models()}

    def _check_user(self, user: int) -> int:
        if not 0 <= int(user) < self.train.n_users:
            raise DataError(f"User code {user} is not in this training set (it has {self.train.n_users:,} users).")
        return int(user)

    def _user_visitor(self, user: int, items, ratings, settings: PageSettings, model) -> Visitor:
        scores = np.asarray(model.score(np.array([user]))[0], dtype=np.float32)
        return self._visitor(f"user {self.train.user_ids[user]}", items, ratings, scores, settings, False, model)

    def new_visitor(self, items, settings: PageSettings, model=None) -> Visitor:
        """A new visitor from picked item codes, as seen by ``model`` (default: the page's default model)."""
        picks = coldstart.check_picks(items, self.train.n_items)
        model = model if model is not None else self.model
        scores = coldstart.new_visitor_scores(model, picks)
        # picks arrive in the order chosen; the last one is treated as the most recent
        return self._visitor("a new visitor", picks, None, scores, settings, True, model)

    def new_visitors(self, items, settings: PageSettings) -> tuple[dict[int, Visitor], dict[int, str]]:
        """The new visitor as seen by each model that can fold in, and why each other model cannot.

        The default model must fold in (it fills and places the page): without it this raises
        the DataError of ``coldstart.new_visitor_scores``, which names the model.
        """
        visitors = {id(self.model): self.new_visitor(items, settings)}
        unable = {}
        for model in self._models()[1:]:
            if coldstart.supports_fold_in(model):
                visitors[id(model)] = self.new_visitor(items, settings, model)
            else:
                unable[id(model)] = (f"{self.name_of(model)} cannot fold in a new visitor (it only knows the "
                                     "users it was trained on)")
        return visitors, unable

    def _visitor(self, name, items, ratings, scores, settings: PageSettings, is_new: bool, model=None) -> Visitor:
        model = model if model is not None else self.model
        label = self.name_of(model)
        ranking = popularity_blend(scores, self.catalogue.popularity, settings.alpha)
        ranked_by = f"by {label}"
        if settings.alpha > 0:
            ranked_by += f" blended with {settings.alpha:.0%} popularity"
        reserve = settings.row_length if settings.tail_share > 0 else 0
        return Visitor(name, np.asarray(items, np.int64), ratings, scores, ranking, is_new, ranked_by,
                       self.catalogue.is_tail, reserve, model_label=label, names_model=bool(self.row_models))

    # ------------------------------------------------------------------ pages
    def for_user(self, user: int, settings: PageSettings | None = None) -> Homepage:
        settings = settings or PageSettings()
        return self.build(self.user_visitors(user, settings), settings)

    def for_new_visitor(self, items, settings: PageSettings | None = None) -> Homepage:
        settings = settings or PageSettings()
        visitors, unable = self.new_visitors(items, settings)
        return self.build(visitors, settings, unable)

    def build(self, visitors: Visitor | dict[int, Visitor], settings: PageSettings,
              unable: dict[int, str] | None = None) -> Homepage:
        """Assemble a page from the person as seen by each model (a single Visitor: the default model's).

        ``unable`` (model identity -> why) names models that cannot serve this person: their rows
        are left out and listed in ``Homepage.skipped``.
        """
        if isinstance(visitors, Visitor):
            visitors = {id(self.model): visitors}
        unable = unable or {}
        default = visitors[id(self.model)]
        candidates, skipped = [], []
        for generator in self.generators:
            uses_model = getattr(generator, "uses_model", True)
            model = self.model_for(generator.kind) if uses_model else self.model
            visitor = visitors.get(id(model))
            if visitor is None:
                why = unable.get(id(model), f"no scores from {self.name_of(model)} were given for this person")
                skipped.append(f"{getattr(generator, 'label', generator.kind)}: left out, because {why}.")
                continue
            made_by = self.name_of(model) if uses_model else ""
            for row in generator.rows(visitor, self.catalogue, model, settings.pool):
                candidates.append((row, visitor, model, made_by))
        relevance_scores = self._relevance_scores(visitors)
        ordered = order_rows([(row, relevance_scores[id(visitor)]) for row, visitor, _, _ in candidates],
                             settings.row_length)
        rows, used = [], np.zeros(self.train.n_items, dtype=bool)
        for position, _ in ordered:
            if len(rows) >= settings.max_rows:
                break
            row, visitor, model, made_by = candidates[position]
            finished = self._finish_row(row, relevance_scores[id(visitor)], settings,
                                        used if settings.dedupe else None, self._vectors_for(model), made_by)
            if finished is not None:
                rows.append(finished)
                used[finished.items] = True
        kinds = self.row_kinds()
        row_models = {kinds[kind]: self.name_of(model) for kind, model in self.row_models.items()}
        page = Homepage(default.name, self.label, settings, rows, row_models=row_models, skipped=skipped)
        page.metrics = page_metrics(page, self.catalogue)
        return page

    def _relevance_scores(self, visitors: dict[int, Visitor]) -> dict[int, np.ndarray]:
        """Per visitor (by identity): the scores rows are ordered by.

        One model: its ranking scores, as they are. Several models: each model's ranking scores
        as percentile ranks in [0, 1], because min-max scaled scores of different models sit on
        different curves (iALS crowds its top near 1, EASE spreads it), and a row should not lead
        the page only because its model's scores are shaped that way.
        """
        if not self.row_models:
            return {id(v): v.ranking_scores for v in visitors.values()}
        return {id(v): percentile_ranks(v.ranking_scores) for v in visitors.values()}

    def _finish_row(self, row: RowCandidates, relevance_scores: np.ndarray, settings: PageSettings,
                    used: np.ndarray | None, vectors=None, made_by: str = "") -> Row | None:
        keep = np.ones(len(row.items), dtype=bool) if used is None else ~used[row.items]
        pool, scores = row.items[keep], np.asarray(row.scores)[keep]
        reasons = dict(zip(row.items.tolist(), row.reasons))
        if len(pool) == 0 or (settings.full_rows_only and len(pool) < settings.row_length):
            return None
        if row.rerankable:
            vectors = vectors if vectors is not None else self._vectors
            chosen = rerank_pool(pool, scores, vectors, self.catalogue.is_tail, settings)
        else:
            chosen = pool[: settings.row_length]
        relevance = row.relevance_weight * float(np.mean(relevance_scores[chosen]))
        return Row(row.key, row.title, row.kind, chosen, [reasons[int(i)] for i in chosen], relevance, made_by)


def model_label(model) -> str:
    return getattr(model, "label", type(model).__name__)


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Each item's share of the catalogue ranked below it, in [0, 1]; ties share their mean rank."""
    n = len(scores)
    if n < 2:
        return np.ones(n)
    from scipy.stats import rankdata  # imported here: scipy.stats takes seconds to import cold

    return (rankdata(scores, method="average") - 1.0) / (n - 1.0)


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


def order_rows(candidates: list[tuple[RowCandidates, np.ndarray]], length: int) -> list[tuple[int, float]]:
    """(position in ``candidates``, expected relevance), best first, for (row, ranking scores) pairs.

    A row's expected relevance is the mean of its ranking scores (in [0, 1]; percentile ranks
    when the page mixes models, so rows of different models compare) over its first
    ``length`` items, times the row's weight. Ties keep
    the generators' order, so "Top picks" leads when it is as good as another row.
    """
    scored = [(position, row.relevance_weight * float(np.mean(ranking_scores[row.items[:length]])))
              for position, (row, ranking_scores) in enumerate(candidates) if len(row.items)]
    return sorted(scored, key=lambda pair: -pair[1])


def _ordered_histories(train: Dataset):
    """A function user -> (items oldest first, ratings), from one sort of the interactions."""
    histories = train.histories_in_time_order()
    ratings = train.rating[histories.order]
    explicit = train.feedback == "explicit"

    def history(user: int) -> tuple[np.ndarray, np.ndarray | None]:
        span = histories.span(user)
        return histories.items[span], (ratings[span] if explicit else None)

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

    Weighted as ``Catalogue.genre_weights``: each slot spreads one unit over its genres.
    """
    if not catalogue.has_genres or len(slots) == 0:
        return {"genres": 0, "genre entropy (bits)": 0.0}
    weights = catalogue.genre_weights(slots)
    share = weights[weights > 0] / weights.sum() if weights.sum() > 0 else np.empty(0)
    return {"genres": int((weights > 0).sum()),
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
    return {"pages": len(users), **latency_summary(times)}


def bench_homepage(model, train: Dataset, n_users: int = 200, seed: int = 42,
                   settings: PageSettings | None = None) -> dict:
    """Homepage build latency for ``n_users`` random training users of a fitted model (for the bench)."""
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(train.user_activity > 0)
    users = rng.choice(active, size=min(n_users, len(active)), replace=False)
    result = measure_latency(HomepageBuilder(model, train), users, settings)
    return {"model": getattr(model, "key", type(model).__name__), **result}

