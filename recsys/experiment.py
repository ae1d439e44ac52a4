"""One run, start to store: ``RunSpec`` names what is trained, :func:`run` is the only fit -> evaluate ->
store path (the pages' training queue, the CLI, the benchmark's store figure and ``store.train_or_reuse``
all come here).

A run's id is the store's hash of (dataset fingerprint, split config, model, every parameter, seed, and
a private owner), so the same settings find the stored run instead of training again. Parameters are
normalised from the model's ``Params`` dataclass (defaults filled in, values checked) without
building a model; the one model that is built is the one that is fitted.

Lifecycle in the store: ``running`` from the start, ``done`` once its files are written, ``failed``
with the reason, and a cancelled fit (``FitCancelled``) leaves nothing. A fit stopped early on
request (``StopTraining`` from the progress callback, kept by iterative models) is stored under an
id of its own, :func:`stopped_run_id`, as the stopper's private run: the canonical id always means
"trained to the end".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.split import Split, SplitConfig, make_split
from recsys.evaluation.evaluator import Report, evaluate
from recsys.models.base import FitCancelled, full_params, id_params
from recsys.models.registry import create, get
from recsys.store import SHARED, ExperimentStore, RunRecord, StoreError, run_id_for

# list lengths every stored run is evaluated at (the pages' K choices) and its bootstrap resamples
EVAL_K: tuple[int, ...] = (1, 5, 10, 20, 50)
BOOTSTRAP = 500

# progress(step, total, metrics), the model's fit callback; phase(name) hears "fitting", "evaluating", "saving"
Progress = Callable[[int, int, dict], None]
Phase = Callable[[str], None]


def normalise_params(model_key: str, params: Mapping | None = None) -> dict:
    """Every hyperparameter of ``model_key`` for these overrides, typed and checked (DataError names a bad
    one): equal settings, equal dict, equal run id. Read from the ``Params`` dataclass; no model is built."""
    return full_params(get(model_key), dict(params or {}))


def stopped_run_id(run_id: str, owner: str) -> str:
    """The id under which a run stopped early by ``owner`` is stored: never the canonical one."""
    return hashlib.sha256(json.dumps([run_id, "stopped", owner]).encode()).hexdigest()[:len(run_id)]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What determines a run: dataset fingerprint, split, model key, every parameter, seed and owner.

    Build it with :meth:`make` (which normalises the parameters); ``params`` is excluded from the
    hash only because a dict cannot be hashed, it is compared like every other field.
    """

    fingerprint: str
    split: SplitConfig
    model: str
    params: dict = dataclasses.field(hash=False)
    seed: int = 42
    owner: str = SHARED

    @classmethod
    def make(cls, dataset: Dataset | str, split: SplitConfig | Mapping, model: str, params: Mapping | None = None,
             *, owner: str = SHARED, seed: int | None = None) -> RunSpec:
        """The spec of training ``model`` with ``params`` on ``dataset`` (or its fingerprint) under ``split``;
        the seed is the split's unless given."""
        config = SplitConfig.coerce(split)
        fingerprint = dataset if isinstance(dataset, str) else dataset.fingerprint
        return cls(fingerprint, config, model, normalise_params(model, params),
                   config.seed if seed is None else int(seed), owner)

    @property
    def run_id(self) -> str:
        # hashed under the names (and without the later switches at their defaults) that runs were
        # first stored with, so renaming a hyperparameter never orphans a stored run
        params = id_params(get(self.model).Params, self.params)
        return run_id_for(self.fingerprint, self.split.to_dict(), self.model, params, self.seed, self.owner)

    @property
    def label(self) -> str:
        return get(self.model).label


@dataclasses.dataclass
class Trained:
    """A fitted and evaluated model, not yet stored."""

    model: Any
    report: Report
    fit_seconds: float
    history: list
    stopped_early: bool


@dataclasses.dataclass
class RunResult:
    """What :func:`run` returns: the stored record, its evaluation, the model (None when not loaded or not
    stored) and whether the run was found in the store instead of trained."""

    spec: RunSpec
    record: RunRecord
    report: Report
    model: Any
    reused: bool

    @property
    def run_id(self) -> str:
        return self.record.run_id


@dataclasses.dataclass(frozen=True)
class KeepAs:
    """Where a fit stopped early on request is stored: the stopper's private run under its own name."""

    owner: str
    name: str


# ---------------------------------------------------------------------- the steps
def find_stored(spec: RunSpec, store: ExperimentStore, split: Callable[[], Split] | None = None, *,
                load: bool = True) -> RunResult | None:
    """The finished, completely stored run of ``spec`` visible to its owner, with its report (and model when
    ``load`` and ``split`` gives the run's split); None when absent or its files are damaged."""
    record = store.find_done(spec.run_id, spec.owner)
    if record is None:
        return None
    try:
        report = store.load_report(record.run_id)
        model = store.load_model(record.run_id, split().train) if load and record.has_model and split else None
    except StoreError:
        return None  # damaged files: the run is trained again and replaced
    return RunResult(spec, record, report, model, reused=True)


def begin(spec: RunSpec, store: ExperimentStore, *, run_id: str | None = None, owner: str | None = None,
          name: str | None = None) -> None:
    """Mark the run ``running`` in the store (under ``run_id`` / ``owner`` when they differ from the spec's)."""
    store.begin(run_id=run_id or spec.run_id, owner=owner or spec.owner, model=spec.model, label=spec.label,
                params=spec.params, dataset=spec.fingerprint, split=spec.split, name=name)


def fit_model(model_key: str, params: Mapping, train: Dataset, *, valid: Dataset | None = None,
              progress: Progress | None = None) -> tuple[Any, float]:
    """(the fitted model, fit seconds): the one place a model is built and fitted for a run, a benchmark
    row or a sweep point."""
    model = create(model_key, **params)
    start = time.perf_counter()
    model.fit(train, valid=valid, progress=progress)
    return model, time.perf_counter() - start


def evaluate_model(model, train: Dataset, test: Dataset, *, k: Iterable[int] = EVAL_K, bootstrap: int = BOOTSTRAP,
                   **options) -> Report:
    """The fitted model ranked for the test users (training items excluded); ``options`` go to
    :func:`recsys.evaluation.evaluate` (e.g. ``sampled_negatives``)."""
    return evaluate(model, train, test, k=list(k), bootstrap=bootstrap, **options)


def fit_and_evaluate(spec: RunSpec, split: Split, progress: Progress | None = None, phase: Phase | None = None, *,
                     k: Iterable[int] = EVAL_K, bootstrap: int = BOOTSTRAP) -> Trained:
    """Fit the spec's model on the split's train (validation part for early stopping) and evaluate it on test."""
    _tell(phase, "fitting")
    model, fit_seconds = fit_model(spec.model, spec.params, split.train, valid=split.valid, progress=progress)
    _tell(phase, "evaluating")
    report = evaluate_model(model, split.train, split.test, k=k, bootstrap=bootstrap)
    return Trained(model, report, fit_seconds, list(model.history_), model.stopped_early)


def complete(store: ExperimentStore, run_id: str, trained: Trained) -> RunRecord:
    """Write the trained run's files and mark it ``done`` (a failed write fails it and raises StoreError)."""
    return store.complete(run_id, model=trained.model, report=trained.report,
                          timings={"fit_seconds": trained.fit_seconds, "score_seconds": trained.report.score_seconds,
                                   "eval_seconds": trained.report.total_seconds},
                          extra={"history": trained.history, "stopped_early": trained.stopped_early})


def failure_text(exc: Exception) -> str:
    """What a failed run says: a DataError's own message (it says what to fix), else the exception."""
    return str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------- the run
def run(spec: RunSpec, data: Dataset | Split, *, store: ExperimentStore, source: dict | None = None,
        progress: Progress | None = None, phase: Phase | None = None, name: str | None = None,
        load: bool = True, reuse: bool = True, keep_stopped: Callable[[], KeepAs | None] | None = None,
        k: Iterable[int] = EVAL_K, bootstrap: int = BOOTSTRAP) -> RunResult:
    """The stored run of ``spec`` when it is finished and intact (``reuse``), else train, evaluate and store it.

    ``data`` is the whole dataset (split here by ``spec.split``; with ``source`` it is registered in the
    store) or the run's split already made. Raises what the fit raised: ``FitCancelled`` after removing
    the run, anything else after marking it failed. ``keep_stopped`` is asked after the fit whether it
    was stopped on request; a :class:`KeepAs` stores it under :func:`stopped_run_id` for that owner.
    """
    if isinstance(data, Dataset):
        if data.fingerprint != spec.fingerprint:
            raise DataError(f"The run's settings name dataset {spec.fingerprint}, but {data.name} "
                            f"({data.fingerprint}) was given; make the spec from this dataset.")
        if source is not None:
            store.register_dataset(data, source)
    made: list[Split] = [data] if isinstance(data, Split) else []

    def split() -> Split:
        if not made:
            made.append(make_split(data, spec.split))
        return made[0]

    if reuse:
        found = find_stored(spec, store, split, load=load)
        if found is not None:
            return found
    run_id = spec.run_id
    begin(spec, store, name=name)
    try:
        trained = fit_and_evaluate(spec, split(), progress, phase, k=k, bootstrap=bootstrap)
    except FitCancelled:
        store.discard(run_id)
        raise
    except Exception as exc:
        store.fail(run_id, failure_text(exc))
        raise
    _tell(phase, "saving")
    kept = keep_stopped() if keep_stopped is not None else None
    if kept is not None:
        store.discard(run_id)  # the canonical id means "trained to the end"
        run_id = stopped_run_id(run_id, kept.owner)
        begin(spec, store, run_id=run_id, owner=kept.owner, name=kept.name)
    record = complete(store, run_id, trained)
    return RunResult(spec, record, trained.report, trained.model, reused=False)


def _tell(phase: Phase | None, name: str) -> None:
    if phase is not None:
        phase(name)
