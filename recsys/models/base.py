"""The Recommender base class: checks, timing and progress live here, models write _fit/_score."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError

# progress(step, total, metrics) -> None; raising FitCancelled from it stops training.
Progress = Callable[[int, int, dict], None]


class FitCancelled(Exception):
    """Raised (by a progress callback) to abandon a fit between steps; nothing is kept."""


class StopTraining(Exception):
    """Raised (by a progress callback) to end an iterative fit early and *keep* the model.

    Iterative models (torch, iALS) catch it at the end of an epoch and finish with what they
    have learned so far (the best validation epoch when there is one). A model without
    epochs treats it like ``FitCancelled``, because it has nothing partial to keep.
    """


def param(default, *, help: str, low=None, high=None, choices=None, log: bool = False, step=None):
    """A hyperparameter field: default plus what the UI needs to build a form for it."""
    meta = {"help": help, "low": low, "high": high, "choices": choices, "log": log, "step": step}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class NoParams:
    """For models without hyperparameters."""


def describe_params(params_cls: type) -> list[dict]:
    """Field name, type, default and UI metadata for every hyperparameter (drives the forms)."""
    out = []
    for f in dataclasses.fields(params_cls):
        meta = dict(f.metadata)
        out.append({"name": f.name, "type": type(f.default).__name__, "default": f.default, **meta})
    return out


# Shared hyperparameter names: every model calls its embedding size ``embedding_size`` and its L2
# penalty ``reg``. A Params class that renamed a field lists ``legacy_names = {old: new}`` in its
# body (not a field: no annotation); the old names keep working as keyword arguments, in stored
# runs and in notebooks, and ``id_params`` gives back the names run ids were first hashed with.


def legacy_names(params_cls: type) -> dict[str, str]:
    """Old name -> current name of every renamed hyperparameter of ``params_cls`` (inherited too)."""
    names: dict[str, str] = {}
    for klass in reversed(params_cls.__mro__):
        names.update(vars(klass).get("legacy_names", {}))
    return names


def canonical_params(params_cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every legacy name replaced by the current one; an old and a new name of one
    hyperparameter given with different values is an error, not a silent choice."""
    renames = legacy_names(params_cls)
    out: dict[str, Any] = {}
    for name, value in values.items():
        current = renames.get(name, name)
        if current in out and out[current] != value:
            raise DataError(f"Parameter {name!r} is the old name of {current!r}, and both were given "
                            f"({value!r} and {out[current]!r}); pass only {current!r}.")
        out[current] = value
    return out


def id_params(params_cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` as run ids were hashed before the shared names and later switches.

    A renamed field goes back to its old name, and a field added later (listed in the Params'
    ``added_fields``) is left out while it holds its default, which is what runs trained before
    it existed did: so a stored run keeps its id, and a restarted server finds it again.
    """
    first = {current: old for old, current in legacy_names(params_cls).items()}
    added = added_fields(params_cls)
    return {first.get(name, name): value for name, value in values.items()
            if not (name in added and value == added[name])}


def added_fields(params_cls: type) -> dict[str, Any]:
    """Field -> default of every hyperparameter added after runs were first stored (inherited too)."""
    defaults = {f.name: f.default for f in dataclasses.fields(params_cls)} if dataclasses.is_dataclass(params_cls) else {}
    names: set[str] = set()
    for klass in params_cls.__mro__:
        names.update(vars(klass).get("added_fields", ()))
    return {name: defaults[name] for name in names if name in defaults}


def _read_legacy_name(params, name: str):
    """``params.factors`` on a Params whose field is now ``embedding_size``: old code keeps reading."""
    current = legacy_names(type(params)).get(name)
    if current is None:
        raise AttributeError(f"{type(params).__qualname__} has no parameter {name!r}")
    return getattr(params, current)


def with_defaults(params_cls: type, **defaults) -> type:
    """A subclass of the dataclass ``params_cls`` whose fields ``defaults`` names start at new values.

    Help text, ranges and choices stay with the base field, so a model changes how many epochs it
    trains by default without re-declaring (and re-wording) the field:

        class Params(with_defaults(TorchParams, epochs=60, lr=0.01)): ...
    """
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(defaults) - set(fields))
    if unknown:
        raise TypeError(f"{params_cls.__name__} has no field(s) {unknown} to re-default")
    annotations, namespace = {}, {"__module__": params_cls.__module__, "__qualname__": params_cls.__qualname__}
    for name, value in defaults.items():
        base = fields[name]
        if not isinstance(value, type(base.default)):
            raise TypeError(f"the default of {name} must be of type {type(base.default).__name__}; got {value!r}")
        annotations[name] = base.type
        namespace[name] = dataclasses.field(default=value, metadata=base.metadata)
    namespace["__annotations__"] = annotations
    return dataclasses.dataclass(type(params_cls.__name__, (params_cls,), namespace))


def coerce_params(params_cls: type, overrides: Mapping[str, Any]) -> Any:
    """Build a Params instance, checking names, types, ranges and choices with clear errors.

    Legacy names of renamed hyperparameters are accepted (see ``legacy_names``)."""
    overrides = canonical_params(params_cls, overrides)
    known = {f.name: f for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise DataError(f"Unknown parameter(s) {unknown}; this model takes {sorted(known)}.")
    values = {}
    for name, value in overrides.items():
        f = known[name]
        kind = type(f.default)
        try:
            if kind is bool:
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif kind in (int, float, str):
                value = kind(value)
        except (TypeError, ValueError):
            raise DataError(f"Parameter {name!r} must be a {kind.__name__}; got {value!r}.") from None
        meta = f.metadata
        if meta.get("choices") is not None and value not in meta["choices"]:
            raise DataError(f"Parameter {name!r} must be one of {list(meta['choices'])}; got {value!r}.")
        if meta.get("low") is not None and value < meta["low"]:
            raise DataError(f"Parameter {name!r} must be at least {meta['low']}; got {value!r}.")
        if meta.get("high") is not None and value > meta["high"]:
            raise DataError(f"Parameter {name!r} must be at most {meta['high']}; got {value!r}.")
        values[name] = value
    return params_cls(**values)


class Recommender:
    """Base class of every model. Subclasses set the ClassVars and write ``_fit`` and ``_score``.

    ``score(users)`` returns a (len(users), n_items) float32 array, higher = better, with
    -inf for items the model cannot score. Ranking is done by ``recsys.serving.ranking``.
    """

    key: ClassVar[str]
    label: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # Does the model need explicit ratings / timestamps / item metadata to fit?
    needs_ratings: ClassVar[bool] = False
    needs_timestamps: ClassVar[bool] = False
    needs_metadata: ClassVar[bool] = False
    # Does fit run epochs that a person can watch and stop early (keeping the model)?
    iterative: ClassVar[bool] = False
    # Can recsys.models.persist store a fitted model of this type? A type that cannot sets False:
    # its runs are then done without a model and say so, instead of failing at the save.
    storable: ClassVar[bool] = True
    # fixed working space of one fit + evaluation of this kind of model (see estimate_memory)
    memory_overhead: ClassVar[int] = 16 * 1024**2

    @classmethod
    def estimate_memory(cls, params: dict | None, n_users: int, n_items: int, n_interactions: int) -> int:
        """Bytes that fitting and evaluating this model on data of this size needs at its peak, on top
        of the loaded dataset: an upper estimate, checked against a budget *before* a training starts.

        Fixed working space, the derived copies of the interactions and what the fitted model keeps
        are alive throughout; the fit's working set and the evaluation's (the evaluator's dense score
        blocks and bootstrap, plus the model's own scoring temporaries) come one after the other, so
        the larger of the two counts. Models say their part in :meth:`memory_terms`.
        """
        p = full_params(cls, params)
        terms = cls.memory_terms(p, int(n_users), int(n_items), int(n_interactions))
        evaluation = evaluation_bytes(n_users, n_items) + terms.get("score", 0)
        return int(cls.memory_overhead + int(n_interactions) * INTERACTION_BYTES + terms.get("kept", 0)
                   + max(terms.get("fit", 0), evaluation))

    @classmethod
    def memory_terms(cls, params: dict, n_users: int, n_items: int, n_interactions: int) -> dict[str, int]:
        """This model's part of :meth:`estimate_memory`, in bytes: ``fit`` (peak working set of the fit),
        ``kept`` (what the fitted model holds) and ``score`` (temporaries of scoring one evaluation
        batch). The default: a trained user and item table when the Params have an
        ``embedding_size``; models with bigger working sets override it."""
        width = embedding_width(params)
        tables = embedding_bytes(n_users + n_items, width) if width else 0
        return {"fit": tables, "kept": (n_users + n_items) * width * FLOAT32}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # a Params that renamed fields answers to the old names too (read-only)
        if legacy_names(cls.Params) and not hasattr(cls.Params, "__getattr__"):
            cls.Params.__getattr__ = _read_legacy_name

    def __init__(self, params=None, **overrides):
        if params is not None and overrides:
            raise TypeError("pass either a Params instance or keyword overrides, not both")
        self.params = params if params is not None else coerce_params(self.Params, overrides)
        self.train_: Dataset | None = None
        self.fit_seconds_: float | None = None
        self.history_: list[dict] = []

    # ------------------------------------------------------------------ public API
    def fit(self, train: Dataset, *, valid: Dataset | None = None, progress: Progress | None = None):
        self._check_trainable(train)
        self.history_ = []
        report = self._progress_reporter(progress)
        start = time.perf_counter()
        try:
            self._fit(train, valid=valid, progress=report)
        except StopTraining:
            raise FitCancelled(f"{self.label} has no epochs to stop after; the fit was cancelled.") from None
        self.fit_seconds_ = time.perf_counter() - start
        self.train_ = train
        return self

    def score(self, users) -> np.ndarray:
        users = self._check_users(users)
        scores = np.asarray(self._score(users), dtype=np.float32)
        expected = (len(users), self.train_.n_items)
        if scores.shape != expected:
            raise RuntimeError(f"{self.key}._score returned shape {scores.shape}, expected {expected}")
        return scores

    def score_candidates(self, users, candidates) -> np.ndarray:
        """Scores of each user's own candidate items: (len(users), n) float32 for an (len(users), n)
        array of item codes; -inf where a candidate is -1 (no item).

        Equals ``score(users)`` read at the candidates. This default scores the whole row and reads
        the candidates from it, which is correct for every model but saves nothing; the family bases
        override it to touch only the candidates, which is what makes two-stage serving cheap.
        """
        users = self._check_users(users)
        candidates = self._check_candidates(users, candidates)
        safe = np.maximum(candidates, 0)
        return self._mask_missing(np.take_along_axis(self.score(users), safe, axis=1), candidates)

    def inner_product_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(user vectors, item vectors) a retrieval index searches by inner product: a model with
        ``user_embeddings`` and ``item_embeddings`` gives those (a proxy of its score); one whose
        score *is* an inner product plus extras overrides this so the product equals the score."""
        return self.user_embeddings(), self.item_embeddings()

    def recommend(self, users, k: int = 10, *, exclude_seen: bool = True, candidates=None):
        """Top-k item codes and scores per user (seen items excluded by default)."""
        from recsys.serving.ranking import top_k

        users = self._check_users(users)
        seen = self.train_.seen[users] if exclude_seen else None
        return top_k(self.score(users), k, exclude=seen, candidates=candidates)

    @property
    def is_fitted(self) -> bool:
        return self.train_ is not None

    @property
    def stopped_early(self) -> bool:
        """Did the last fit end before its last epoch (patience ran out, or a stop was requested)?
        Always False for a model without epochs."""
        return False

    @property
    def trained_on(self) -> Dataset:
        """The training set this model was fitted on (its id maps and catalogue size)."""
        self._require_fitted()
        return self.train_

    def get_params(self) -> dict:
        return dataclasses.asdict(self.params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ subclass hooks
    def _fit(self, train: Dataset, *, valid: Dataset | None, progress: Progress) -> None:
        raise NotImplementedError("abstract: each model implements _fit")

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError("abstract: each model implements _score")

    # ------------------------------------------------------------------ checks
    def _check_trainable(self, train: Dataset) -> None:
        if train.n_interactions == 0:
            raise DataError("The training set is empty; there is nothing to learn from.")
        if self.needs_ratings and train.feedback != "explicit":
            raise DataError(f"{self.label} predicts ratings and needs explicit feedback; this data is implicit.")
        if self.needs_timestamps and train.timestamp is None:
            raise DataError(f"{self.label} learns from the order of events and needs timestamps.")
        if self.needs_metadata and (train.items is None or not _has_content(train)):
            raise DataError(
                f"{self.label} needs item metadata (genres, tags or titles). Load a dataset with an "
                "item file, or map one in the upload step."
            )

    def _require_fitted(self) -> None:
        if self.train_ is None:
            raise RuntimeError(f"{self.label} is not fitted yet: call fit(train) first.")

    def _check_users(self, users) -> np.ndarray:
        self._require_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if len(users) and (users.min() < 0 or users.max() >= self.train_.n_users):
            raise IndexError(f"user codes must lie in [0, {self.train_.n_users}); got {users.min()}..{users.max()}")
        return users

    def _check_candidates(self, users: np.ndarray, candidates) -> np.ndarray:
        candidates = np.asarray(candidates, dtype=np.int64)
        if candidates.ndim == 1:
            candidates = np.broadcast_to(candidates, (len(users), len(candidates)))
        if candidates.ndim != 2 or len(candidates) != len(users):
            raise ValueError(f"candidates must be one row of item codes per user ({len(users)} rows); "
                             f"got shape {candidates.shape}")
        if candidates.size and candidates.max() >= self.train_.n_items:
            raise IndexError(f"candidate item codes must lie below {self.train_.n_items}; got {candidates.max()}")
        return candidates

    @staticmethod
    def _mask_missing(scores, candidates: np.ndarray) -> np.ndarray:
        scores = np.array(scores, dtype=np.float32)
        scores[candidates < 0] = -np.inf
        return scores

    def _history_row(self, items) -> sp.csr_matrix:
        """A one-row binary history matrix for a person who consumed ``items`` (fold-in, onboarding)."""
        return self._history_rows([items])

    def _history_rows(self, histories) -> sp.csr_matrix:
        """A binary history matrix with one row per person, row i holding the item codes ``histories[i]``."""
        rows = [np.unique(np.asarray(items, dtype=np.int64)) for items in histories]
        indptr = np.concatenate([[0], np.cumsum([len(row) for row in rows], dtype=np.int64)])
        indices = np.concatenate(rows) if rows else np.empty(0, np.int64)
        return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                             shape=(len(rows), self.train_.n_items))

    def score_histories(self, histories) -> np.ndarray:
        """(people x items) scores of several new people at once, each from a list of item codes (fold-in).

        Here one ``score_history`` per person; a model whose fold-in is a matrix product or a batched
        solve overrides this with one call for everybody and answers ``score_history`` through it.
        """
        if not callable(getattr(self, "score_history", None)):
            raise TypeError(f"{self.label} cannot score a new person's history (it has no fold-in).")
        scores = [np.asarray(self.score_history(items), np.float32).ravel() for items in histories]
        return np.vstack(scores) if scores else np.empty((0, self.train_.n_items), np.float32)

    def _progress_reporter(self, progress: Progress | None) -> Progress:
        def report(step: int, total: int, metrics: dict | None = None) -> None:
            metrics = dict(metrics or {})
            if metrics:
                self.history_.append({"step": step, **metrics})
            if progress is not None:
                progress(step, total, metrics)

        return report


# ---------------------------------------------------------------------- memory estimates
# Checked against the peak resident memory of fit + evaluate (random 80/20 split, bootstrap 500)
# above the loaded data, in a warm process (one small training of the same model first, as on a
# running server), MB measured / estimated:
#                ML-100K (943 x 1682)   ml-latest-small (610 x 9742)
#   ease            40 / 92                1120 / 2196
#   item_knn        51 / 138                474 / 541
#   user_knn        38 / 117                164 / 266
#   ials            77 / 142                165 / 186
#   mult_vae        69 / 142                381 / 437
#   sasrec         260 / 311                709 / 1304
#   pop             41 / 68                 146 / 183
# Every other registered model measured between 1.1x and 2x under its estimate on ml-latest-small
# (NCF-MLP 4.4x: its scoring tower is counted at its full chunk size); fixed costs make small data
# read up to 3.8x. Every constant errs on the high side.
FLOAT32, FLOAT64 = 4, 8
MIB = 1024**2
# derived copies of the interactions a model and the evaluator make: csr/csc, positives, seen,
# float64 casts, coo row/col arrays, per-cell sample arrays; ~12 bytes per copy
INTERACTION_BYTES = 96
# recsys.evaluation.evaluate scores this many users at a time (its batch_size default)
EVAL_BATCH_USERS = 1024
# per scored cell of an evaluation batch: the float32 scores the model returns, the evaluator's
# -inf masked copy, argpartition's negated copy and its int64 indices
EVAL_CELL_BYTES = 28
# per evaluated user: top-50 lists (int64 items, hits, gains, ideal gains) and per-user metric arrays
EVAL_USER_BYTES = 50 * 32 + 64 * FLOAT64
# recsys.evaluation.stats draws bootstrap resamples in chunks of at most this many entries; the
# index draw, the offset indices, the bincount and the float64 counts are alive together
BOOTSTRAP_ENTRIES, BOOTSTRAP_BYTES_PER_ENTRY, BOOTSTRAP_RESAMPLES = 4_000_000, 32, 500
# weights, gradient and the two Adam moments of every trainable float32 parameter
TRAINED_FLOAT_BYTES = 4 * FLOAT32


def full_params(cls: type, params: dict | None) -> dict:
    """Every hyperparameter of ``cls`` for these overrides (defaults filled in, values checked)."""
    return dataclasses.asdict(coerce_params(cls.Params, dict(params or {})))


def embedding_width(params: dict) -> int:
    """The embedding size named by a model's parameters (``embedding_size``), 0 when it has none."""
    value = params.get("embedding_size")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def embedding_bytes(rows: int, width: int) -> int:
    """A trained float32 table of ``rows`` x ``width`` with its gradient and Adam moments."""
    return int(rows) * int(width) * TRAINED_FLOAT_BYTES


def evaluation_bytes(n_users: int, n_items: int) -> int:
    """The evaluator's peak: the per-user lists, and one batch of dense scores or (afterwards) one
    bootstrap chunk."""
    batch = min(EVAL_BATCH_USERS, max(int(n_users), 1))
    bootstrap = min(BOOTSTRAP_ENTRIES, BOOTSTRAP_RESAMPLES * int(n_users)) * BOOTSTRAP_BYTES_PER_ENTRY
    return max(batch * int(n_items) * EVAL_CELL_BYTES, bootstrap) + int(n_users) * EVAL_USER_BYTES


def _has_content(ds: Dataset) -> bool:
    cols = set(ds.items.columns)
    return bool(cols & {"genres", "tags", "title"})
