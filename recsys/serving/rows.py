"""Homepage row generators: top picks, because-you-watched, trending, genres, new releases, watch again.

A generator is a small class with a title template and ``rows(visitor, catalogue, model, pool)``
that returns zero or more ``RowCandidates``: a ranked pool of item codes (longer than a
row, so re-ranking and de-duplication have room) with one readable reason per item. The
page (``recsys.serving.page``) orders the rows, re-ranks, de-duplicates and cuts them.

``Catalogue`` holds what every page on one training set shares (titles, genres, years,
popularity, trending counts, the long tail), built once; ``Visitor`` holds one person's
history and the model's scores for them, built once per page and model.

Each generator says whether its row depends on a model (``uses_model``) and carries a
readable ``label``, so a page can give each kind of row its own model. On such a mixed
page (``Visitor.names_model``) every model-made reason names the model that made it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset, popularity_order
from recsys.models.capabilities import has
from recsys.serving.ranking import top_k
from recsys.serving.rerank import unit_rows

SECONDS_PER_DAY = 86_400.0
# Genre labels that describe missing metadata, not a taste: never a row of their own.
NON_GENRES = frozenset({"unknown", "(no genres listed)", ""})


# ---------------------------------------------------------------------------- shared data


@dataclass(eq=False)
class Catalogue:
    """Per-training-set facts every row needs; arrays are indexed by item code."""

    train: Dataset
    half_life_days: float = 30.0
    head_fraction: float = 0.2
    _item_vectors: sp.csr_matrix | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        train = self.train
        self.n_items = train.n_items
        self.titles = np.asarray(train.item_titles(), dtype=object)
        self.genres = train.item_genres()
        self.genre_matrix, self.genre_names = train.genre_matrix
        by_genre = self.genre_matrix.tocsc()
        self.genre_members = [by_genre.indices[by_genre.indptr[j]:by_genre.indptr[j + 1]]
                              for j in range(by_genre.shape[1])]
        self.years = _years(train)
        self.popularity = train.item_popularity.astype(np.float64)
        self.trending, self.reference_time = _trending(train, self.half_life_days)
        self.first_seen = _first_seen(train)
        self.is_tail = ~train.head_items(self.head_fraction)
        self.self_information = train.item_self_information()

    @property
    def has_genres(self) -> bool:
        return self.genre_matrix.shape[1] > 0

    def genre_weights(self, slots) -> np.ndarray:
        """Per genre (``genre_names`` order): its weight among ``slots`` (item codes). Each slot spreads
        one unit over its genres, so a three-genre title does not count three times as much as a
        one-genre title; a title without genres adds nothing."""
        member = self.genre_matrix[np.asarray(slots, dtype=np.int64)].toarray()
        per_slot = member.sum(axis=1, keepdims=True)
        return np.divide(member, per_slot, out=np.zeros_like(member), where=per_slot > 0).sum(axis=0)

    @property
    def item_vectors(self) -> sp.csr_matrix:
        """Unit-length item columns of the training matrix (item x user), computed once.

        The item-kNN cosine fallback for "because you watched" and the diversity measure of
        last resort both read it; one sparse product per seed then gives cosine neighbours.
        """
        if self._item_vectors is None:
            self._item_vectors = sp.csr_matrix(unit_rows(self.train.positives.T.tocsr()))
        return self._item_vectors

    def label(self, item: int) -> str:
        """A title as a person reads it, e.g. "Toy Story (1995)"."""
        title = str(self.titles[item])
        year = self.years[item]
        if np.isfinite(year) and f"({int(year)})" not in title:
            return f"{title} ({int(year)})"
        return title

    def similarity_vectors(self, model=None):
        """Per-item vectors for diversity: genres when known, else the model's embeddings, else co-consumption."""
        if self.has_genres:
            return self.genre_matrix
        if model is not None and has(model, "item_embeddings"):
            return model.item_embeddings()
        return self.item_vectors


def _years(train: Dataset) -> np.ndarray:
    if train.items is not None and "year" in train.items:
        import pandas as pd

        return pd.to_numeric(train.items["year"], errors="coerce").to_numpy(np.float64)
    return np.full(train.n_items, np.nan)


def _trending(train: Dataset, half_life_days: float) -> tuple[np.ndarray, int | None]:
    """Interactions per item, each weighted 2^(-age / half-life) at the newest timestamp.

    The reference time is the last event in the data, not today: MovieLens ended in 1998,
    and "now" would decay everything to zero. Without timestamps it is plain popularity.
    """
    if train.timestamp is None or train.n_interactions == 0:
        return train.item_popularity.astype(np.float64), None
    reference = int(train.timestamp.max())
    weights = np.exp2(-(reference - train.timestamp) / SECONDS_PER_DAY / half_life_days)
    return np.bincount(train.item, weights=weights, minlength=train.n_items), reference


def _first_seen(train: Dataset) -> np.ndarray:
    """Earliest interaction time per item (NaN without timestamps or interactions)."""
    first = np.full(train.n_items, np.nan)
    if train.timestamp is not None and train.n_interactions:
        earliest = np.full(train.n_items, np.iinfo(np.int64).max)
        np.minimum.at(earliest, train.item, train.timestamp)
        has = earliest < np.iinfo(np.int64).max
        first[has] = earliest[has]
    return first


def _date(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass(eq=False)
class Visitor:
    """One person for whom a page is built: a training user or a new visitor's picks.

    ``history``: item codes, oldest first. ``ratings``: their ratings (None = implicit or
    picked). ``model_scores``: the model's scores over the catalogue; ``ranking_scores``
    the same after the popularity blend, in [0, 1] — what every model-ranked row sorts by.
    """

    name: str
    history: np.ndarray
    ratings: np.ndarray | None
    model_scores: np.ndarray
    ranking_scores: np.ndarray
    is_new: bool = False
    ranked_by: str = "by the model"  # how ranking_scores were made, for reasons ("by EASE + 30% popularity")
    # With a long-tail floor, each pool also carries the best ``tail_reserve`` tail items,
    # so the floor can be met even when the top of the pool is all head.
    is_tail: np.ndarray | None = None
    tail_reserve: int = 0
    # the model behind the scores, for reasons; reasons name it only when the page mixes models
    model_label: str = ""
    names_model: bool = False

    def __post_init__(self) -> None:
        self.seen = np.zeros(len(self.model_scores), dtype=bool)
        self.seen[self.history] = True
        self._exclude = sp.csr_matrix(self.seen[None, :].astype(np.float32))

    @property
    def verb(self) -> str:
        return "picked" if self.is_new else "watched"

    def ranked_note(self) -> str:
        """", ranked by EASE" on a page that mixes models (so a person can tell rows apart), else ""."""
        return f", ranked {self.ranked_by}" if self.names_model else ""

    def liked(self) -> np.ndarray:
        """History items the person liked, most recent first: rated at or above their own mean."""
        order = self.history[::-1]
        if self.ratings is None or len(self.ratings) == 0:
            return order
        ratings = self.ratings[::-1]
        return order[ratings >= ratings.mean()]

    def rank(self, scores: np.ndarray, pool: int, candidates: np.ndarray | None = None) -> np.ndarray:
        """The ``pool`` best unseen items by ``scores`` (optionally among ``candidates``), best first,
        followed by the best tail items beyond them when a tail reserve is asked for."""
        items, _ = top_k(scores, pool, exclude=self._exclude, candidates=candidates)
        items = items[0][items[0] >= 0]
        if self.tail_reserve and self.is_tail is not None:
            if candidates is None:
                tail = np.flatnonzero(self.is_tail)
            else:
                candidates = np.asarray(candidates, dtype=np.int64)
                tail = candidates[self.is_tail[candidates]]
            extra, _ = top_k(scores, self.tail_reserve, exclude=self._exclude, candidates=tail)
            extra = extra[0][extra[0] >= 0]
            # every extra item ranks at or below the pool's last one, so appending keeps the order
            items = np.concatenate([items, extra[~np.isin(extra, items)]])
        return items

    def reserve_tail(self, items: np.ndarray, scores: np.ndarray, pool: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``pool`` of a ranked list plus its best ``tail_reserve`` tail items beyond the cut."""
        keep = np.zeros(len(items), dtype=bool)
        keep[:pool] = True
        if self.tail_reserve and self.is_tail is not None:
            beyond = np.flatnonzero(self.is_tail[items] & ~keep)[: self.tail_reserve]
            keep[beyond] = True
        return items[keep], scores[keep]


@dataclass
class RowCandidates:
    """A row before page assembly: a ranked pool of items and a reason for each."""

    key: str
    title: str
    kind: str
    items: np.ndarray
    reasons: list[str]
    scores: np.ndarray  # the row's own ranking score per item (model, similarity, trend), best first
    rerankable: bool = True  # does the diversity / tail re-ranking make sense here?
    # expected relevance = weight x mean score; below 1 for rows whose value the scores overstate
    relevance_weight: float = 1.0


# ---------------------------------------------------------------------------- generators


def first_rows(candidates: Iterable, limit: int, build: Callable[[object], RowCandidates | None]) -> list[RowCandidates]:
    """Rows built from ``candidates`` in order, skipping those that give none, stopping at ``limit``."""
    out: list[RowCandidates] = []
    for candidate in candidates:
        if len(out) >= limit:
            break
        row = build(candidate)
        if row is not None:
            out.append(row)
    return out


class TopPicks:
    """The model's best unseen items for this person."""

    kind = "top_picks"
    label = "Top picks"
    uses_model = True
    title_template = "Top picks for you"

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        items = visitor.rank(visitor.ranking_scores, pool)
        reasons = [f"#{rank} for you {visitor.ranked_by}" for rank in range(1, len(items) + 1)]
        return [RowCandidates("top_picks", self.title_template, self.kind, items, reasons,
                              visitor.ranking_scores[items])]


class BecauseYouWatched:
    """Items like one the person liked recently: the model's item neighbours, or item-kNN cosine."""

    kind = "because"
    label = "Because you watched"
    uses_model = True
    title_template = "Because you {verb} {title}"

    def __init__(self, n_seeds: int = 2):
        self.n_seeds = n_seeds

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        # a seed without neighbours (e.g. nobody else watched it) is skipped for the next one;
        # a bounded look-back keeps the page fast for people with long histories
        seeds = (int(seed) for seed in visitor.liked()[: 5 * self.n_seeds])
        return first_rows(seeds, self.n_seeds, lambda seed: self.row(seed, visitor, catalogue, model, pool))

    def row(self, seed: int, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> RowCandidates | None:
        reach = pool + len(visitor.history) + (4 * pool if visitor.tail_reserve else 0)
        items, similarity = self.neighbours(seed, catalogue, model, reach)
        keep = ~visitor.seen[items]
        items, similarity = visitor.reserve_tail(items[keep], similarity[keep], pool)
        if len(items) == 0:
            return None
        seed_label = catalogue.label(seed)
        title = self.title_template.format(verb=visitor.verb, title=seed_label)
        reasons = [f"Because you {visitor.verb} {seed_label}{self.source_note(visitor, model)}"] * len(items)
        return RowCandidates(f"because:{seed}", title, self.kind, items, reasons, similarity)

    @staticmethod
    def source_note(visitor: Visitor, model) -> str:
        """On a mixed page, where the neighbours come from: the model's own, or co-watching cosine."""
        if not visitor.names_model:
            return ""
        if has(model, "similar_items"):
            return f", similar titles by {visitor.model_label}"
        return f", similar titles by co-watching ({visitor.model_label} has no item neighbours)"

    @staticmethod
    def neighbours(seed: int, catalogue: Catalogue, model, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items to ``seed``, best first, with positive similarity only."""
        if has(model, "similar_items"):
            items, scores = model.similar_items(seed, k)
            items, scores = np.asarray(items, dtype=np.int64), np.asarray(scores, dtype=np.float32)
        else:
            vectors = catalogue.item_vectors
            column = (vectors @ vectors[seed].T).toarray().ravel().astype(np.float32)
            column[seed] = -np.inf
            found, found_scores = top_k(column, k)
            items, scores = found[0], found_scores[0]
        keep = (items >= 0) & np.isfinite(scores) & (scores > 0) & (items != seed)
        return items[keep], scores[keep]


class Trending:
    """What many people watched lately (time-decayed popularity at the newest timestamp)."""

    kind = "trending"
    label = "Trending now"
    uses_model = False

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        items = visitor.rank(catalogue.trending.astype(np.float32), pool)
        if catalogue.reference_time is None:
            title = "Popular on the service"
            reasons = [f"{int(catalogue.popularity[i]):,} people watched it" for i in items]
        else:
            title = "Trending now"
            half_life = catalogue.half_life_days
            reasons = [f"Trending: {catalogue.trending[i]:.1f} recent views (half-life {half_life:g} days) "
                       f"up to {_date(catalogue.reference_time)}" for i in items]
        return [RowCandidates("trending", title, self.kind, items, reasons, catalogue.trending[items])]


class GenreRows:
    """One row per genre the person watches most, ranked by the model."""

    kind = "genre"
    label = "Genre rows"
    uses_model = True
    title_template = "{genre} for you"

    def __init__(self, n_genres: int = 3):
        self.n_genres = n_genres

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        if not catalogue.has_genres or len(visitor.history) == 0:
            return []
        counts = np.asarray(catalogue.genre_matrix[visitor.history].sum(axis=0)).ravel()
        order = popularity_order(counts)  # the person's most-watched genres first, ties by genre order
        watched = (int(column) for column in order if counts[column] > 0)
        return first_rows(watched, self.n_genres, lambda column: self.row(column, counts, visitor, catalogue, pool))

    def row(self, column: int, counts: np.ndarray, visitor: Visitor, catalogue: Catalogue,
            pool: int) -> RowCandidates | None:
        name = catalogue.genre_names[column]
        if name.strip().lower() in NON_GENRES:
            return None
        items = visitor.rank(visitor.ranking_scores, pool, candidates=catalogue.genre_members[column])
        if len(items) == 0:
            return None
        share = counts[column] / len(visitor.history)
        reason = f"{name}: {share:.0%} of what you {visitor.verb}{visitor.ranked_note()}"
        return RowCandidates(f"genre:{name}", self.title_template.format(genre=name), self.kind, items,
                             [reason] * len(items), visitor.ranking_scores[items])


class NewReleases:
    """The newest part of the catalogue (by release year, else first interaction), ranked by the model."""

    kind = "new"
    label = "New releases"
    uses_model = True
    title_template = "New releases for you"

    def __init__(self, newest_share: float = 0.1):
        self.newest_share = newest_share

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        use_years = np.isfinite(catalogue.years).any()
        when = catalogue.years if use_years else catalogue.first_seen
        known = np.isfinite(when)
        if not known.any():
            return []
        cutoff = np.quantile(when[known], 1.0 - self.newest_share)
        members = np.flatnonzero(known & (when >= cutoff))
        items = visitor.rank(visitor.ranking_scores, pool, candidates=members)
        if len(items) == 0:
            return []
        if use_years:
            reasons = [f"New: released in {int(catalogue.years[i])}{visitor.ranked_note()}" for i in items]
        else:
            reasons = [f"New on the service since {_date(catalogue.first_seen[i])}{visitor.ranked_note()}"
                       for i in items]
        return [RowCandidates("new", self.title_template, self.kind, items, reasons, visitor.ranking_scores[items])]


class JustAdded:
    """Catalogue items nobody has interacted with yet that the model can still score (item cold start).

    Only content-aware models give such items a signal; a collaborative model scores them
    (near) zero, so the row is left out rather than filled with an arbitrary order.
    """

    kind = "just_added"
    label = "Just added"
    uses_model = True
    title_template = "Just added: nobody has watched these yet"

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        cold = np.flatnonzero(catalogue.popularity == 0)
        if len(cold) == 0:
            return []
        scores = visitor.model_scores
        finite = np.isfinite(scores)
        scale = np.abs(scores[finite]).max() if finite.any() else 0.0
        # a collaborative model scores a cold item (near) zero; only a real signal counts
        signal = cold[np.isfinite(scores[cold]) & (scores[cold] > 1e-3 * scale)]
        if scale <= 0 or len(signal) == 0:
            return []
        items = visitor.rank(scores, pool, candidates=signal)
        matched_by = f" by {visitor.model_label}" if visitor.names_model else ""
        reasons = [f"New to the catalogue: matched on its description{matched_by}, not on who watched it"] * len(items)
        return [RowCandidates("just_added", self.title_template, self.kind, items, reasons,
                              visitor.model_scores[items])]


class WatchAgain:
    """Recent favourites to watch again (training users only: a new visitor's picks are not a history).

    A model scores what you already watched as high as its best new finds (your history is
    full of their neighbours), yet people rewatch films far less often than they start new
    ones; ``rewatch_weight`` discounts the row's expected relevance so it does not lead
    every page.
    """

    kind = "watch_again"
    label = "Watch it again"
    uses_model = False
    title_template = "Watch it again"

    def __init__(self, rewatch_weight: float = 0.5):
        self.rewatch_weight = rewatch_weight

    def rows(self, visitor: Visitor, catalogue: Catalogue, model, pool: int) -> list[RowCandidates]:
        if visitor.is_new or len(visitor.history) == 0:
            return []
        items = visitor.liked()[:pool]
        explicit = visitor.ratings is not None and catalogue.train.feedback == "explicit"
        ratings = dict(zip(visitor.history.tolist(), visitor.ratings.tolist())) if explicit else {}
        reasons = [f"You rated it {ratings[int(i)]:g}★ and might enjoy it again" if explicit
                   else "You watched it recently" for i in items]
        items = np.asarray(items, np.int64)
        # most recent first: the row's order is recency, so its "score" falls with age
        recency = np.arange(len(items), 0, -1, dtype=np.float64)
        return [RowCandidates("watch_again", self.title_template, self.kind, items, reasons, recency,
                              rerankable=False, relevance_weight=self.rewatch_weight)]


def default_generators() -> list:
    """The rows a page offers, in the order they are built (the page re-orders them by relevance)."""
    return [TopPicks(), BecauseYouWatched(), Trending(), GenreRows(), NewReleases(), JustAdded(), WatchAgain()]


__all__ = [
    "BecauseYouWatched", "Catalogue", "GenreRows", "JustAdded", "NewReleases", "RowCandidates", "TopPicks",
    "Trending", "Visitor", "WatchAgain", "default_generators",
]
