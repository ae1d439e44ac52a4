"""Train/valid/test splits. Every part shares the parent's id maps and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal

import numpy as np

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError

SplitMethod = Literal["random", "temporal", "leave_last"]
# the one list of split method names: the sidebar, the CLI and the config's check read it
SPLIT_METHODS: tuple[str, ...] = ("random", "temporal", "leave_last")
POSITIVES = ("all", "threshold")
# each method in the words of a message (the pages have their own longer labels)
SPLIT_WORDS = {"random": "random", "temporal": "temporal", "leave_last": "leave-last-n-out"}
# the validation part's share of train when a split has one: enough to rank users' next items on, little
# taken from training (ML-100K random 80/20 keeps 72 % of the interactions for training)
VALID_FRACTION = 0.1


@dataclass(frozen=True)
class SplitConfig:
    """How a run's data is split and which interactions count as positives.

    ``validation`` carves a validation part out of train: ``valid_fraction`` of each user's training
    interactions (random) or the latest ``valid_fraction`` of them (temporal); leave-last-n-out takes the
    n before the held-out ones instead. Both are written into :meth:`to_dict` only when they change the
    split (validation on; a fraction other than the default, under a method that reads it), so the dict
    (and so the id) of every run stored before the fields existed stays the same.
    """

    method: str = "random"
    test_fraction: float = 0.2
    n: int = 1
    seed: int = 42
    positives: str = "all"  # "all" | "threshold": explicit ratings at or above ``threshold`` only
    threshold: float = 4.0
    validation: bool = False
    valid_fraction: float = VALID_FRACTION

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise DataError(f"Unknown split {self.method!r}; choose one of {', '.join(SPLIT_METHODS)}.")
        if self.positives not in POSITIVES:
            raise DataError(f"Unknown positives {self.positives!r}; choose one of {', '.join(POSITIVES)}.")
        for name, kind in (("test_fraction", float), ("n", int), ("seed", int), ("threshold", float),
                           ("validation", bool), ("valid_fraction", float)):
            object.__setattr__(self, name, kind(getattr(self, name)))
        # a slider's 0.05 steps give 0.15000000000000002; the id should hash the fraction a person chose
        object.__setattr__(self, "valid_fraction", round(self.valid_fraction, 6))
        _check_fraction("valid_fraction", self.valid_fraction)
        if not self.uses_valid_fraction:  # a setting nothing reads: equal splits make equal configs (and ids)
            object.__setattr__(self, "valid_fraction", VALID_FRACTION)

    @property
    def uses_valid_fraction(self) -> bool:
        """Whether ``valid_fraction`` shapes the split: a validation part under a method with a fraction."""
        return self.validation and self.method != "leave_last"

    def key(self) -> tuple:
        """The config as a hashable tuple (what the pages keep in their specs)."""
        return tuple(self.to_dict().values())

    def to_dict(self) -> dict:
        """The form stored with a run and hashed into its id."""
        values = asdict(self)
        if not values["validation"]:
            del values["validation"]
        if values["valid_fraction"] == VALID_FRACTION:
            del values["valid_fraction"]
        return values

    @classmethod
    def from_dict(cls, values: Mapping) -> SplitConfig:
        """A config from a stored run's dict (missing fields take their defaults; unknown ones are refused)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"A split config has unknown field(s) {unknown}; it takes {sorted(known)}.")
        return cls(**dict(values))

    @classmethod
    def coerce(cls, config: SplitConfig | Mapping) -> SplitConfig:
        return config if isinstance(config, cls) else cls.from_dict(config)

    def with_positives(self, ds: Dataset) -> Dataset:
        """``ds`` with explicit ratings at or above the threshold read as the positives, when the config says so."""
        if self.positives == "threshold" and ds.feedback == "explicit":
            return ds.with_feedback("explicit", self.threshold)
        return ds


@dataclass(frozen=True)
class Split:
    """A named split: ``valid`` is None unless a validation part was carved out."""

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    method: str = "random"
    config: tuple = ()

    def key(self) -> str:
        return f"{self.train.fingerprint}:{self.method}:{self.config}"


def _rank_within_user(user: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each interaction within its user's ordering by ``order_key`` and the user's count."""
    order = np.lexsort((order_key, user))
    counts = np.bincount(user)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(user), dtype=np.int64)
    rank[order] = np.arange(len(user)) - np.repeat(starts, counts)
    return rank, counts[user]


def _per_user_random_mask(ds: Dataset, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """True for ceil(``fraction`` × n) of each user's n interactions, leaving at least one in train.

    Rounding up is the convention of scikit-learn's ``train_test_split`` (and so of most
    course notebooks and published per-user 80/20 numbers); with round-half-up instead,
    a user with 22 ratings would hold out 4 rather than 5 and NDCG shifts by ~0.005.
    """
    rank, count = _rank_within_user(ds.user, rng.random(ds.n_interactions))
    n_held = np.ceil(fraction * count - 1e-9).astype(np.int64)
    n_held = np.minimum(n_held, count - 1)
    return rank < n_held


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise DataError(f"{name} must be between 0 and 1 (exclusive); got {value}.")


def random_holdout(ds: Dataset, test_fraction: float = 0.2, seed: int = 42, valid_fraction: float = 0.0):
    """Per-user random holdout: each user keeps ~(1 - test_fraction) of their items in train.

    Returns ``(train, test)``, or ``(train, valid, test)`` when ``valid_fraction`` > 0
    (the validation part is carved out of train the same way).
    """
    _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    held = _per_user_random_mask(ds, test_fraction, rng)
    train, test = ds.subset(~held, f"{ds.name} train"), ds.subset(held, f"{ds.name} test")
    if valid_fraction <= 0:
        return train, test
    _check_fraction("valid_fraction", valid_fraction)
    inner = _per_user_random_mask(train, valid_fraction, rng)
    return train.subset(~inner, f"{ds.name} train"), train.subset(inner, f"{ds.name} valid"), test


def _require_timestamps(ds: Dataset, what: str) -> np.ndarray:
    if ds.timestamp is None:
        raise DataError(
            f"A {what} split needs timestamps, and {ds.name} has none. Map a timestamp column "
            "when loading, or use the random split."
        )
    return ds.timestamp


def temporal_cutoff(ds: Dataset, test_fraction: float = 0.2, valid_fraction: float = 0.0):
    """Global time cut-off: the latest ``test_fraction`` of interactions are the test set.

    Models see only the past, as in production; users who only appear after the cut-off
    are cold at test time (evaluation skips what it cannot score and says so).
    """
    _check_fraction("test_fraction", test_fraction)
    ts = _require_timestamps(ds, "temporal")
    order = np.lexsort((ds.item, ts))
    n_test = int(round(test_fraction * len(ts)))
    held = np.zeros(len(ts), dtype=bool)
    held[order[len(ts) - n_test :]] = True
    train, test = ds.subset(~held, f"{ds.name} train"), ds.subset(held, f"{ds.name} test")
    if valid_fraction <= 0:
        return train, test
    inner_train, valid = temporal_cutoff(train, valid_fraction)
    return inner_train, valid, test


def leave_last_out(ds: Dataset, n: int = 1, valid: bool = False):
    """Per user, the last ``n`` interactions by time (ties broken by item id) are the test set.

    Users with ``n`` or fewer interactions keep everything in train. With ``valid=True`` the
    ``n`` before those form a validation set. Without timestamps, file order is used.
    """
    if n < 1:
        raise DataError(f"leave-last-n-out needs n >= 1; got {n}.")
    # "last" means last in the Dataset's one time order (ties by item code), the order every
    # sequence model and history view reads, so the held-out item is the one they'd predict next
    histories = ds.histories_in_time_order()
    count = ds.user_activity[ds.user]
    rank = np.empty(ds.n_interactions, dtype=np.int64)
    rank[histories.order] = np.arange(ds.n_interactions) - histories.starts[histories.users]
    from_end = count - 1 - rank
    held = (from_end < n) & (count > n)
    train, test = ds.subset(~held, f"{ds.name} train"), ds.subset(held, f"{ds.name} test")
    if not valid:
        return train, test
    inner_held = (from_end >= n) & (from_end < 2 * n) & (count > 2 * n)
    return (
        ds.subset(~held & ~inner_held, f"{ds.name} train"),
        ds.subset(inner_held, f"{ds.name} valid"),
        test,
    )


def make_split(
    ds: Dataset,
    method: SplitMethod | SplitConfig = "random",
    *,
    test_fraction: float = 0.2,
    seed: int = 42,
    n: int = 1,
    validation: bool = False,
    valid_fraction: float = VALID_FRACTION,
) -> Split:
    """One entry point for the UI and CLI: returns a :class:`Split` with an optional valid part.

    Given a :class:`SplitConfig`, the whole config applies (its positives included) and the
    keyword arguments are not used: the split a run was trained on, re-made from its config.
    ``valid_fraction`` sizes the validation part of the random and temporal splits."""
    if isinstance(method, SplitConfig):
        config = method
        return make_split(config.with_positives(ds), config.method, test_fraction=config.test_fraction,
                          seed=config.seed, n=config.n, validation=config.validation,
                          valid_fraction=config.valid_fraction)
    if method == "random":
        parts = random_holdout(ds, test_fraction, seed, valid_fraction=valid_fraction if validation else 0.0)
        config = (test_fraction, seed, validation, *([valid_fraction] if validation else []))
    elif method == "temporal":
        parts = temporal_cutoff(ds, test_fraction, valid_fraction=valid_fraction if validation else 0.0)
        config = (test_fraction, validation, *([valid_fraction] if validation else []))
    elif method == "leave_last":
        parts = leave_last_out(ds, n, valid=validation)
        config = (n, validation)
    else:
        raise DataError(f"Unknown split {method!r}; choose one of {', '.join(SPLIT_METHODS)}.")
    if len(parts) == 3:
        train, valid, test = parts
    else:
        (train, test), valid = parts, None
    if test.n_interactions == 0:
        raise DataError(
            f"The {SPLIT_WORDS[method]} split left no test interactions: every user has too few interactions. "
            "Use a dataset with more interactions per user or a different split."
        )
    return Split(train=train, test=test, valid=valid, method=method, config=config)


def by_pairs(ds: Dataset, test_users, test_items, name: str = "fold") -> tuple[Dataset, Dataset]:
    """A predefined split: the interactions whose (external user id, external item id) pair is
    listed form the test set, all others the training set (e.g. MovieLens' u1.base/u1.test)."""
    users = ds.user_codes(np.asarray(test_users))
    items = ds.item_codes(np.asarray(test_items))
    unknown = int(np.sum((users < 0) | (items < 0)))
    if unknown:
        raise DataError(f"{unknown} test pair(s) name a user or item that is not in {ds.name}; "
                        "the test file must come from the same dataset.")
    wanted = np.unique(users.astype(np.int64) * ds.n_items + items)
    keys = ds.user.astype(np.int64) * ds.n_items + ds.item
    held = np.isin(keys, wanted)
    return ds.subset(~held, f"{ds.name} {name} train"), ds.subset(held, f"{ds.name} {name} test")
