"""The immutable interaction dataset every model, metric and page works on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.errors import DataError

Feedback = Literal["explicit", "implicit"]
DuplicatePolicy = Literal["last", "first", "mean", "max", "sum", "error"]

# Kept for code that imports it: the local (laptop) interaction budget. The budget in force is
# ``recsys.hosting.config().limits.rows``, checked by ``validate.interaction_frame``.
MAX_INTERACTIONS = 50_000_000


@dataclass(frozen=True)
class Histories:
    """Interactions sorted by user, then time (see ``Dataset.histories_in_time_order``).

    ``order`` indexes the Dataset's interaction arrays (``ds.rating[order]`` lines ratings up
    with ``items``); user u's history, oldest first, is ``items[starts[u]:starts[u + 1]]``.
    """

    order: np.ndarray
    users: np.ndarray
    items: np.ndarray
    starts: np.ndarray

    def span(self, user: int) -> slice:
        return slice(int(self.starts[user]), int(self.starts[user + 1]))

    def of(self, user: int) -> np.ndarray:
        """User ``user``'s item codes, oldest first."""
        return self.items[self.span(user)]


def popularity_order(item_popularity: np.ndarray) -> np.ndarray:
    """Item codes from most to least popular; ties broken by item code so the order is reproducible."""
    pop = np.asarray(item_popularity)
    return np.lexsort((np.arange(len(pop)), -pop))


def head_mask(item_popularity: np.ndarray, head_fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of the head: the ceil(head_fraction * n_items) most popular items (ties by item code)."""
    pop = np.asarray(item_popularity)
    mask = np.zeros(len(pop), dtype=bool)
    mask[popularity_order(pop)[: int(np.ceil(head_fraction * len(pop)))]] = True
    return mask


def self_information(item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """-log2(popularity / n_users) per item, in bits.

    Popularity is clipped at 1: an item nobody consumed in training gets the novelty of
    an item one person consumed, rather than infinity.
    """
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    return -np.log2(pop / max(1, n_users))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions as dense integer codes plus the maps back to external ids.

    ``user[i]`` / ``item[i]`` are codes into ``user_ids`` / ``item_ids``; the position of
    an id in those arrays is its code. ``items`` (optional) is a DataFrame with one row per
    item code (columns among title, genres — a tuple of strings —, year, tags).
    A split produces Datasets that share ``user_ids``, ``item_ids`` and ``items``.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    timestamp: np.ndarray | None = None
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    feedback: Feedback = "explicit"
    # With explicit feedback, ratings >= threshold are the positives top-N metrics count;
    # None means every interaction is a positive.
    positive_threshold: float | None = None
    name: str = "dataset"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.user)
        if not (len(self.item) == len(self.rating) == n):
            raise DataError("user, item and rating arrays must have the same length.")
        if self.timestamp is not None and len(self.timestamp) != n:
            raise DataError("timestamp must have one entry per interaction.")
        object.__setattr__(self, "user", np.ascontiguousarray(self.user, dtype=np.int32))
        object.__setattr__(self, "item", np.ascontiguousarray(self.item, dtype=np.int32))
        object.__setattr__(self, "rating", np.ascontiguousarray(self.rating, dtype=np.float32))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", np.ascontiguousarray(self.timestamp, dtype=np.int64))
        if self.feedback not in ("explicit", "implicit"):
            raise DataError(f"feedback must be 'explicit' or 'implicit', not {self.feedback!r}.")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        user: str = "user",
        item: str = "item",
        rating: str | None = "rating",
        timestamp: str | None = None,
        items: pd.DataFrame | None = None,
        item_key: str | None = None,
        users: pd.DataFrame | None = None,
        user_key: str | None = None,
        feedback: Feedback | None = None,
        positive_threshold: float | None = None,
        duplicates: DuplicatePolicy = "last",
        name: str = "dataset",
        limits=None,
    ) -> Dataset:
        """Build a Dataset from a long table of interactions.

        ``rating=None`` (or a missing rating column) makes implicit feedback with weight 1.
        ``timestamp`` may hold epoch seconds or date strings. ``items`` is optional item
        metadata keyed by ``item_key`` (default: the same name as ``item``); rows for items
        without interactions are kept so content models can score cold items.
        ``duplicates`` says what to do with repeated (user, item) pairs. Integer ids stay
        int64; text ids stay text unless every one is canonical integer text ("7", not "007"
        or "7.0"). ``limits`` (default: :func:`recsys.hosting.config`'s) bounds rows and id lengths.
        """
        from recsys.data import validate

        frame = validate.interaction_frame(
            df, user=user, item=item, rating=rating, timestamp=timestamp, limits=limits
        )
        if duplicates == "error":
            dup = frame.duplicated(["user", "item"], keep=False)
            if dup.any():
                row = int(np.flatnonzero(dup.to_numpy())[0])
                raise DataError(
                    f"Row {row + 1} repeats the pair user={frame['user'].iloc[row]!r}, "
                    f"item={frame['item'].iloc[row]!r}. Choose a duplicate policy "
                    "(keep last, mean, max, sum) or remove the repeats."
                )
        frame = _collapse_duplicates(frame, duplicates)

        user_ids, user_codes = np.unique(frame["user"].to_numpy(), return_inverse=True)
        item_index = _item_index(frame["item"].to_numpy(), items, item_key or item)
        item_codes = pd.Index(item_index).get_indexer(frame["item"].to_numpy())

        has_rating = rating is not None and rating in df.columns
        if feedback is None:
            feedback = "explicit" if has_rating and frame["rating"].nunique() > 1 else "implicit"
        item_meta = _align_metadata(items, item_key or item, item_index)
        user_meta = _align_metadata(users, user_key or user, user_ids)
        ts = frame["timestamp"].to_numpy(np.int64) if "timestamp" in frame else None
        ds = cls(
            user=user_codes.astype(np.int32),
            item=item_codes.astype(np.int32),
            rating=frame["rating"].to_numpy(np.float32),
            timestamp=ts,
            user_ids=user_ids,
            item_ids=np.asarray(item_index),
            items=item_meta,
            users=user_meta,
            feedback=feedback,
            positive_threshold=positive_threshold,
            name=name,
        )
        validate.enough_entities(ds)
        return ds

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.user)

    @property
    def density(self) -> float:
        return self.n_interactions / max(1, self.n_users * self.n_items)

    def __len__(self) -> int:
        return self.n_interactions

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions}, feedback={self.feedback})"
        )

    # ------------------------------------------------------------------ matrices
    @cached_property
    def csr(self) -> sp.csr_matrix:
        """User x item matrix of rating values (1.0 for implicit), built once."""
        values = self.rating if self.feedback == "explicit" else np.ones(self.n_interactions, np.float32)
        return _csr(self.user, self.item, values, (self.n_users, self.n_items))

    @cached_property
    def positive_mask(self) -> np.ndarray:
        """Which interactions count as positives for top-N training and metrics."""
        if self.positive_threshold is None or self.feedback == "implicit":
            return np.ones(self.n_interactions, dtype=bool)
        return self.rating >= self.positive_threshold

    @cached_property
    def positives(self) -> sp.csr_matrix:
        """Binary user x item matrix of positive interactions (what top-N models learn from)."""
        mask = self.positive_mask
        return _csr(
            self.user[mask], self.item[mask], np.ones(int(mask.sum()), np.float32), (self.n_users, self.n_items)
        )

    @cached_property
    def seen(self) -> sp.csr_matrix:
        """Binary matrix of every interaction, positive or not (what ranking excludes)."""
        return _csr(self.user, self.item, np.ones(self.n_interactions, np.float32), (self.n_users, self.n_items))

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Number of interactions per item code."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.int64)

    def items_by_popularity(self) -> np.ndarray:
        """Item codes from most to least interacted with; ties by item code, so every run agrees."""
        return self._popularity_order.copy()

    @cached_property
    def _popularity_order(self) -> np.ndarray:
        return popularity_order(self.item_popularity)

    def head_items(self, head_fraction: float = 0.2) -> np.ndarray:
        """Boolean mask of the head: the ceil(head_fraction * n_items) most popular items."""
        return head_mask(self.item_popularity, head_fraction)

    def item_self_information(self) -> np.ndarray:
        """-log2(popularity / n_users) per item, in bits (see ``self_information``)."""
        return self_information(self.item_popularity, self.n_users)

    def histories_in_time_order(self) -> Histories:
        """Every user's items in the order they were consumed, from one sort of the interactions.

        Ordered by user, then timestamp, then item code: two events with the same timestamp
        (a batch import, a day-granular log) come in item-code order, the rule the splits use
        to pick "the last" interaction. Without timestamps the file order is the time order.
        """
        return self._histories

    @cached_property
    def _histories(self) -> Histories:
        time_key = self.timestamp if self.timestamp is not None else np.arange(self.n_interactions)
        order = np.lexsort((self.item, time_key, self.user))
        starts = np.concatenate([[0], np.cumsum(self.user_activity)]).astype(np.int64)
        return Histories(order, self.user[order].astype(np.int64), self.item[order].astype(np.int64), starts)

    @cached_property
    def user_activity(self) -> np.ndarray:
        """Number of interactions per user code."""
        return np.bincount(self.user, minlength=self.n_users).astype(np.int64)

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of interactions and id maps: equal data -> equal fingerprint."""
        h = hashlib.sha256()
        for arr in (self.user, self.item, self.rating):
            h.update(arr.tobytes())
        if self.timestamp is not None:
            h.update(self.timestamp.tobytes())
        h.update(repr(self.user_ids.tolist()).encode())
        h.update(repr(self.item_ids.tolist()).encode())
        h.update(f"{self.feedback}|{self.positive_threshold}".encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ ids and metadata
    def user_codes(self, external_ids) -> np.ndarray:
        """Dense codes for external user ids (-1 where unknown)."""
        return _codes(self.user_ids, external_ids)

    def item_codes(self, external_ids) -> np.ndarray:
        """Dense codes for external item ids (-1 where unknown)."""
        return _codes(self.item_ids, external_ids)

    def item_titles(self, codes=None) -> np.ndarray:
        """Readable titles (the external id where no title is known)."""
        codes = np.arange(self.n_items) if codes is None else np.asarray(codes)
        if self.items is not None and "title" in self.items:
            return self.items["title"].to_numpy()[codes].astype(object)
        return np.array([str(x) for x in self.item_ids[codes]], dtype=object)

    def item_genres(self) -> list[tuple[str, ...]]:
        """Genre tuple per item code (empty tuples when there is no metadata)."""
        if self.items is not None and "genres" in self.items:
            return list(self.items["genres"])
        return [()] * self.n_items

    @cached_property
    def genre_matrix(self) -> tuple[sp.csr_matrix, list[str]]:
        """Item x genre binary matrix and the genre names (0 columns without metadata)."""
        genres = self.item_genres()
        names = sorted({g for gs in genres for g in gs})
        col = {g: j for j, g in enumerate(names)}
        rows = [i for i, gs in enumerate(genres) for g in gs]
        cols = [col[g] for gs in genres for g in gs]
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(self.n_items, len(names)))
        return m, names

    def to_frame(self) -> pd.DataFrame:
        """Interactions as a table of external ids (for display and export)."""
        out = {
            "user": self.user_ids[self.user],
            "item": self.item_ids[self.item],
            "rating": self.rating,
        }
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        return pd.DataFrame(out)

    # ------------------------------------------------------------------ derived datasets
    def subset(self, mask: np.ndarray, name: str | None = None) -> Dataset:
        """The interactions where ``mask`` is true, with the SAME id maps and metadata."""
        mask = np.asarray(mask)
        return replace(
            self,
            user=self.user[mask],
            item=self.item[mask],
            rating=self.rating[mask],
            timestamp=None if self.timestamp is None else self.timestamp[mask],
            name=name or self.name,
            _cache={},
        )

    def with_feedback(self, feedback: Feedback, positive_threshold: float | None = None) -> Dataset:
        """The same interactions read as explicit or implicit, with a positive threshold."""
        return replace(self, feedback=feedback, positive_threshold=positive_threshold, _cache={})

    def __getstate__(self):
        # cached matrices are cheap to rebuild and would bloat pickles / cache keys
        state = dict(self.__dict__)
        for key in ("csr", "positive_mask", "positives", "seen", "item_popularity", "user_activity", "genre_matrix",
                    "_popularity_order", "_histories"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def _csr(rows, cols, values, shape) -> sp.csr_matrix:
    m = sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return m


def _codes(ids: np.ndarray, external) -> np.ndarray:
    external = np.atleast_1d(np.asarray(external))
    if ids.dtype.kind in "iu" and external.dtype.kind not in "iuf":
        # string ids typed into a box for an integer-keyed catalogue
        converted = pd.to_numeric(pd.Series(external), errors="coerce")
        external = converted.fillna(-(2**62)).to_numpy(np.int64)
    return pd.Index(ids).get_indexer(external).astype(np.int64)


def _collapse_duplicates(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    if not frame.duplicated(["user", "item"]).any():
        return frame
    if policy in ("last", "first"):
        # timestamps order "last" when present, file order otherwise
        order = frame.sort_values("timestamp", kind="stable") if "timestamp" in frame else frame
        return order.drop_duplicates(["user", "item"], keep=policy).sort_index()
    agg = {"rating": policy}
    if "timestamp" in frame:
        agg["timestamp"] = "max"
    grouped = frame.groupby(["user", "item"], sort=False, as_index=False).agg(agg)
    return grouped


def _item_index(interaction_items: np.ndarray, items: pd.DataFrame | None, key: str) -> np.ndarray:
    """Item ids in code order: every id seen in interactions plus catalogue-only items."""
    ids = pd.unique(interaction_items)
    if items is not None and key in items.columns:
        _, keys = _metadata_keys(items, key)
        if len(keys) and keys.dtype == ids.dtype:  # int ids never join str ids, so no mixed-type sort
            ids = np.concatenate([np.asarray(ids), np.setdiff1d(pd.unique(keys), ids)])
    return np.sort(np.asarray(ids))


def _metadata_keys(meta: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a key and their keys normalised like interaction ids (7 and "7" join; "007" stays text)."""
    from recsys.data.validate import normalise_ids

    present = meta[key].notna().to_numpy()
    keys = meta[key][present].reset_index(drop=True)
    return present, normalise_ids(keys) if len(keys) else np.array([], dtype=object)


def _align_metadata(meta: pd.DataFrame | None, key: str, ids: np.ndarray) -> pd.DataFrame | None:
    if meta is None:
        return None
    if key not in meta.columns:
        raise DataError(
            f"The metadata file has no column {key!r} to join on; its columns are "
            f"{[str(c)[:30] for c in list(meta.columns)[:12]]}. Rename the id column or pick it in the mapping."
        )
    present, keys = _metadata_keys(meta, key)
    table = meta[present].assign(**{key: keys}).drop_duplicates(key).set_index(key)
    aligned = table.reindex(ids)
    aligned.index = pd.RangeIndex(len(ids), name="code")
    aligned.insert(0, "id", ids)
    if "title" in aligned:
        aligned["title"] = aligned["title"].astype(object).where(aligned["title"].notna(), aligned["id"].astype(str))
    if "genres" in aligned:
        aligned["genres"] = [g if isinstance(g, tuple) else () for g in aligned["genres"]]
    return aligned
