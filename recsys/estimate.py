"""How long a fit will take on this data, measured before it starts: a short timed probe.

A cost model calibrated once from benchmark rows goes stale the moment a model gets faster,
and it cannot know this machine's load or this dataset's shape (a catalogue of 9,000 items
costs EASE fifty times what 1,700 do). A probe measures the real model, here, now: it fits
on a random share of the users (at most ``PROBE_INTERACTIONS`` interactions, every item and
every user code kept, so embedding tables and item-item matrices have their full size) and
times the pieces that grow with the data separately from those that do not:

* iterative models run two epochs (each validated on the same users' validation part when
  the split has one, as the training will be); the second one's time, scaled up to the whole
  training data, is the time per epoch, and what remains (building the model, finishing it)
  counts once;
* one-shot models are fitted on the share and on half of it; the line through the two times
  separates the fixed part (e.g. EASE's item-item inverse) from the part that grows with
  the interactions.

A probe costs two epochs of a fifth of ML-100K at most, and stops after one epoch when that
already took ``PROBE_MAX_SECONDS``. Results are cached per (data fingerprint, model,
parameters other than the number of epochs), so a room sharing the bundled sample probes
each setting once.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.data.dataset import Dataset
from recsys.models.base import FitCancelled

# the most training interactions a probe fits on (a fifth of ML-100K's 80 % train part)
PROBE_INTERACTIONS = 16_000
# a probe whose first epoch took this long stops there: that epoch is already a good measurement
PROBE_MAX_SECONDS = 4.0
# interactions of the untimed warm-up fit before the probe
WARM_UP_INTERACTIONS = 500
# users' scores timed after the probe fit, to estimate scoring the test users
PROBE_SCORE_USERS = 256
# a fit estimated longer than this is announced before it starts, with a quick setting
LONG_FIT_SECONDS = 60.0
# what the quick setting aims for
QUICK_TARGET_SECONDS = 30.0
# fewer epochs than this learn too little: below it the quick setting shrinks the embedding instead
MIN_QUICK_EPOCHS = 3
SMALLEST_EMBEDDING = 8
# names of the number of passes and of the embedding size (current names first, then older ones)
EPOCH_PARAMS = ("epochs", "iterations")
SIZE_PARAMS = ("embedding_size", "factors", "hidden", "latent")
CACHE_SIZE = 128


@dataclass(frozen=True)
class FitEstimate:
    """The expected fit time of one model with one setting on one training set, in seconds.

    ``fixed`` is paid once (building, finishing), ``per_epoch`` once per epoch (None for a
    one-shot model), ``scoring`` is the time to score the test users. ``sample_share`` is the
    share of the training interactions the probe fitted on, ``probe_seconds`` what it cost.
    """

    fixed: float
    per_epoch: float | None
    epochs: int | None
    scoring: float
    sample_share: float
    probe_seconds: float

    @property
    def fit_seconds(self) -> float:
        return self.fixed + (self.per_epoch or 0.0) * (self.epochs or 0)

    @property
    def seconds(self) -> float:
        """Fit and scoring of the test users: what a person waits for."""
        return self.fit_seconds + self.scoring

    @property
    def long(self) -> bool:
        return self.seconds > LONG_FIT_SECONDS

    def with_epochs(self, epochs: int) -> FitEstimate:
        return dataclasses.replace(self, epochs=int(epochs)) if self.per_epoch is not None else self

    def describe(self) -> str:
        """"about 1 min 40 s (2.1 s per epoch × 50 epochs)" in words for a page."""
        text = duration_text(self.seconds)
        if self.per_epoch is not None and self.epochs:
            text += f" ({seconds_text(self.per_epoch)} per epoch × {self.epochs} epochs)"
        return text


def seconds_text(seconds: float) -> str:
    """A short duration: "0.4 s", "12 s", "3 min 20 s"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    return duration_text(seconds).removeprefix("about ")


def duration_text(seconds: float) -> str:
    """A rounded duration for an estimate: "about 40 s", "about 3 min 20 s", "about 1 h 5 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"about {max(1, round(seconds))} s"
    if seconds < 3600:
        minutes, rest = divmod(int(round(seconds / 10) * 10), 60)
        return f"about {minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")


def epochs_param(cls) -> str | None:
    """The name of ``cls``'s number of passes over the data, or None for a one-shot model."""
    names = {f.name for f in dataclasses.fields(cls.Params)}
    return next((n for n in EPOCH_PARAMS if n in names), None) if cls.iterative else None


def size_param(cls) -> str | None:
    """The name of ``cls``'s embedding size (an int), or None."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    return next((n for n in SIZE_PARAMS if n in fields and isinstance(fields[n].default, int)), None)


def full_params(cls, params: dict) -> dict:
    """Every hyperparameter of ``cls`` under its current name (old names and defaults resolved)."""
    return dataclasses.asdict(cls(**dict(params)).params)


def probe_sample(train: Dataset, max_interactions: int, seed: int,
                 valid: Dataset | None = None) -> tuple[Dataset, float, Dataset | None]:
    """A random share of the users with all their interactions (about ``max_interactions`` in all),
    the share of interactions it holds and the same users' part of ``valid`` (None without one).
    Only the drawn users are kept (many models run over every user code each epoch); every item is
    kept, so item tables have their full size."""
    if train.n_interactions <= max_interactions:
        return train, 1.0, valid
    rng = np.random.default_rng(seed)
    keep_user = rng.random(train.n_users) < max_interactions / train.n_interactions
    keep_user[train.user[0]] = True  # a handful of very heavy users: at least one is drawn
    sample = _users_of(train, keep_user)
    share = sample.n_interactions / train.n_interactions
    return sample, share, None if valid is None else _users_of(valid, keep_user)


def _users_of(ds: Dataset, keep_user: np.ndarray) -> Dataset:
    """The interactions of the kept users, their codes renumbered among them (items unchanged)."""
    mask = keep_user[ds.user]
    new_code = np.cumsum(keep_user) - 1  # old user code -> code among the kept users
    return dataclasses.replace(
        ds, user=new_code[ds.user[mask]], item=ds.item[mask], rating=ds.rating[mask],
        timestamp=None if ds.timestamp is None else ds.timestamp[mask], user_ids=ds.user_ids[keep_user],
        users=None if ds.users is None else ds.users.iloc[np.flatnonzero(keep_user)].reset_index(drop=True),
        name=f"{ds.name} probe", _cache={})


def _timed_fit(cls, params: dict, data: Dataset, clock: Callable[[], float],
               max_seconds: float, valid: Dataset | None = None) -> tuple[object, float, list[float]]:
    """Fit ``cls`` on ``data`` (validating on ``valid`` after each epoch, as the training will); returns the model (None when stopped after its first epoch), the
    seconds it took and the clock reading at each progress report (relative to the start)."""
    model = cls(**params)
    start = clock()
    reports: list[float] = []

    def progress(step: int, total: int, metrics: dict) -> None:
        if not metrics and step >= total and reports:  # the "fit complete" report after a stop
            return
        reports.append(clock() - start)
        if len(reports) == 1 and reports[0] > max_seconds and step < total:
            raise FitCancelled  # one epoch that long is measurement enough

    try:
        model.fit(data, valid=valid, progress=progress)
    except FitCancelled:
        model = None
    return model, clock() - start, reports


def probe(cls, params: dict, train: Dataset, *, valid: Dataset | None = None, n_eval_users: int = 0,
          seed: int = 0, max_interactions: int = PROBE_INTERACTIONS, max_seconds: float = PROBE_MAX_SECONDS,
          clock: Callable[[], float] = time.perf_counter) -> FitEstimate:
    """Time ``cls`` with ``params`` on a share of ``train`` and scale to the whole (see the module doc).
    With ``valid``, each probed epoch validates too (the same users' part), as the training will."""
    full = full_params(cls, params)
    sample, share, sample_valid = probe_sample(train, max_interactions, seed, valid=valid)
    epochs_name = epochs_param(cls)
    started = clock()
    if epochs_name is not None:
        _warm_up(cls, full, sample, epochs_name, seed)
        model, total, reports = _timed_fit(cls, {**full, epochs_name: 2}, sample, clock, max_seconds,
                                           valid=sample_valid)
        if len(reports) >= 2:
            epoch = reports[1] - reports[0]
            fixed = max(0.0, total - 2 * epoch)
        else:  # stopped after one epoch (or a model that reports once): setup counted with the epoch
            epoch, fixed = (reports[0] if reports else total), 0.0
        per_epoch, epochs = epoch / share, int(full[epochs_name])
    else:
        # the half share first: a first fit pays one-off warm-ups (allocations, BLAS threads), and
        # charged to the smaller fit they can only flatten the growth, never inflate it
        half, _, _ = probe_sample(sample, max(1, sample.n_interactions // 2), seed + 1)
        half_share = half.n_interactions / train.n_interactions
        if share < 1.0 and half_share < share:
            _, total_half, _ = _timed_fit(cls, full, half, clock, max_seconds)
        model, total, _ = _timed_fit(cls, full, sample, clock, max_seconds)
        if share < 1.0 and half_share < share:
            growth = max(0.0, (total - total_half) / (share - half_share))  # seconds per unit share
            fixed = max(0.0, total - growth * share) + growth
        else:
            fixed = total
        per_epoch, epochs = None, None
    scoring = _scoring_seconds(model, sample, n_eval_users, clock)
    return FitEstimate(fixed=fixed, per_epoch=per_epoch, epochs=epochs, scoring=scoring, sample_share=share,
                       probe_seconds=clock() - started)


def _warm_up(cls, full: dict, sample: Dataset, epochs_name: str, seed: int) -> None:
    """One untimed epoch on a sliver of the sample: a process's first fit of a kind pays one-off costs
    (torch's lazy initialisation, thread pools, allocator growth; 4 s of BPR-MF's first epoch on the
    sample) that would otherwise be read as the cost of an epoch. One-shot models skip it: for them
    it would repeat their fixed cost (EASE's inverse), and their smaller timed fit runs first."""
    sliver, _, _ = probe_sample(sample, WARM_UP_INTERACTIONS, seed + 2)
    settings = {**full, epochs_name: 1}
    try:
        cls(**settings).fit(sliver)
    except Exception:  # a sliver too small for this model: the timed fits will say what is wrong
        pass


def _scoring_seconds(model, fitted_on: Dataset, n_eval_users: int, clock) -> float:
    """Seconds to score ``n_eval_users`` users, timed on a few of those the probe fitted on (a row
    costs the same whoever it belongs to); 0 when nothing is to be scored."""
    if model is None or n_eval_users <= 0:
        return 0.0
    users = np.arange(min(PROBE_SCORE_USERS, fitted_on.n_users, n_eval_users))
    start = clock()
    model.score(users)
    return (clock() - start) * n_eval_users / max(len(users), 1)


# ---------------------------------------------------------------------- cached estimates
_cache: OrderedDict = OrderedDict()
_lock = threading.Lock()


def _cache_key(cls, full: dict, train: Dataset, valid: Dataset | None, n_eval_users: int) -> tuple:
    epochs_name = epochs_param(cls)
    # the number of epochs only multiplies; patience only ends a fit sooner (the estimate is the longest)
    settings = tuple(sorted((k, repr(v)) for k, v in full.items() if k not in (epochs_name, "patience")))
    return train.fingerprint, valid.fingerprint if valid is not None else None, cls.key, settings, int(n_eval_users)


def estimate_fit(cls, params: dict, train: Dataset, *, valid: Dataset | None = None, n_eval_users: int = 0,
                 seed: int = 0, prober: Callable[..., FitEstimate] = probe) -> FitEstimate:
    """The estimate of fitting ``cls`` with ``params`` on ``train`` (validating on ``valid``, scoring
    ``n_eval_users``), probed once per data, model and setting; another number of epochs reuses it."""
    full = full_params(cls, params)
    key = _cache_key(cls, full, train, valid, n_eval_users)
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
    if found is None:
        found = prober(cls, full, train, valid=valid, n_eval_users=n_eval_users, seed=seed)
        with _lock:
            _cache[key] = found
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    epochs_name = epochs_param(cls)
    return found.with_epochs(full[epochs_name]) if epochs_name else found


def quick_setting(cls, params: dict, train: Dataset, *, valid: Dataset | None = None, n_eval_users: int = 0,
                  target: float = QUICK_TARGET_SECONDS,
                  estimator: Callable[..., FitEstimate] = estimate_fit) -> tuple[dict, FitEstimate] | None:
    """A setting of ``cls`` that should fit ``train`` in about ``target`` seconds: fewer epochs, and
    a smaller embedding when even ``MIN_QUICK_EPOCHS`` epochs would take longer. Returns the changed
    parameters and their estimate, or None for a model without epochs (nothing to cut)."""
    epochs_name = epochs_param(cls)
    if epochs_name is None:
        return None
    settings = full_params(cls, params)
    size_name = size_param(cls)
    estimate = estimator(cls, settings, train, valid=valid, n_eval_users=n_eval_users)
    while True:
        affordable = (target - estimate.fixed - estimate.scoring) / max(estimate.per_epoch or 0.0, 1e-9)
        epochs = int(min(settings[epochs_name], max(1, math.floor(affordable))))
        size = settings.get(size_name) if size_name else None
        if epochs >= MIN_QUICK_EPOCHS or size is None or size <= SMALLEST_EMBEDDING:
            break
        settings[size_name] = max(SMALLEST_EMBEDDING, size // 2)
        estimate = estimator(cls, settings, train, valid=valid, n_eval_users=n_eval_users)
    settings[epochs_name] = epochs
    return settings, estimate.with_epochs(epochs)


def changed(before: dict, after: dict) -> dict:
    """The settings that ``after`` changes, for the page to name ("epochs 50 → 12")."""
    return {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
