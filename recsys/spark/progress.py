"""Spark's own progress, read while its jobs run, and a Spark ALS fit watched through it.

``SparkContext.statusTracker()`` is Spark's public, polled view of the scheduler: the active jobs
and stages and, per stage, how many of its tasks are done. :func:`snapshot` reads it once;
:class:`ProgressWatch` also remembers every stage it has seen, so the tasks of stages that
finished between two looks still count. :class:`WatchedFit` trains ``spark_als`` on a log Spark
holds (random holdout in Spark, ``fit_spark``, ``recsys.spark.metrics``) in a worker thread, so a
caller (the Data page) can poll :meth:`WatchedFit.progress` and draw a bar while it runs.

No Streamlit here, and pyspark is imported only by the functions that run Spark.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# share of the progress bar each phase fills: the fit is nearly all of the time (measured on
# ML-100K in local[2]: holdout 3 s, 15 sweeps 40 s, evaluation 4 s)
PHASE_SHARES = {"splitting": 0.05, "fitting": 0.85, "evaluating": 0.10}


@dataclass(frozen=True)
class StageProgress:
    """One stage as the status tracker last described it."""

    stage_id: int
    name: str
    tasks_total: int
    tasks_done: int
    tasks_active: int
    tasks_failed: int

    @property
    def finished(self) -> bool:
        return self.tasks_total > 0 and self.tasks_done >= self.tasks_total


@dataclass(frozen=True)
class SparkProgress:
    """What Spark was doing at one look: active job and stage ids, the active stages' tasks, and
    the tasks of every stage seen since the watch began (active or finished since)."""

    active_jobs: tuple[int, ...] = ()
    stages: tuple[StageProgress, ...] = ()          # the active ones, by stage id
    tasks_done: int = 0                             # over every stage seen
    tasks_total: int = 0
    stages_seen: int = 0

    @property
    def active_tasks_done(self) -> int:
        return sum(s.tasks_done for s in self.stages)

    @property
    def active_tasks_total(self) -> int:
        return sum(s.tasks_total for s in self.stages)

    @property
    def stage_fraction(self) -> float:
        """How far the active stages are, 0-1 (0 when none is running)."""
        total = self.active_tasks_total
        return min(1.0, self.active_tasks_done / total) if total else 0.0

    def text(self) -> str:
        """One line a person can read: jobs, stages, tasks."""
        if not self.active_jobs and not self.stages:
            line = "Spark is idle"
        else:
            line = (f"Spark: {_plural(len(self.active_jobs), 'active job')}, {_plural(len(self.stages), 'active stage')}"
                    f" ({self.active_tasks_done}/{self.active_tasks_total} tasks)")
        if self.tasks_total:
            line += f" · {self.tasks_done}/{self.tasks_total} tasks done in {_plural(self.stages_seen, 'stage')} seen so far"
        return line


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _stage(tracker, stage_id: int) -> StageProgress | None:
    info = tracker.getStageInfo(stage_id)
    if info is None:  # evicted from Spark's retained stages, or not yet registered
        return None
    return StageProgress(stage_id=int(info.stageId), name=str(info.name), tasks_total=int(info.numTasks),
                         tasks_done=int(info.numCompletedTasks), tasks_active=int(info.numActiveTasks),
                         tasks_failed=int(info.numFailedTasks))


def snapshot(context) -> SparkProgress:
    """Spark's active jobs and stages now (``context``: a SparkContext), with no memory of earlier looks."""
    return ProgressWatch(context).snapshot()


class ProgressWatch:
    """Looks at Spark's status tracker again and again, keeping each stage's last description, so
    tasks done counts the stages that finished between two looks as well as the running ones.
    A stage Spark skipped (its shuffle output already there) never runs and is never counted."""

    def __init__(self, context) -> None:
        self.context = context
        self._seen: dict[int, StageProgress] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> SparkProgress:
        tracker = self.context.statusTracker()
        jobs = tuple(sorted(int(j) for j in tracker.getActiveJobsIds()))
        active = [s for stage_id in sorted(tracker.getActiveStageIds()) if (s := _stage(tracker, stage_id))]
        with self._lock:
            # a stage last seen running may have finished since: ask for its final counts once
            for stage_id, last in list(self._seen.items()):
                if not last.finished and stage_id not in {s.stage_id for s in active}:
                    self._seen[stage_id] = _stage(tracker, stage_id) or last
            for stage in active:
                self._seen[stage.stage_id] = stage
            seen = list(self._seen.values())
        return SparkProgress(active_jobs=jobs, stages=tuple(active), tasks_done=sum(s.tasks_done for s in seen),
                             tasks_total=sum(s.tasks_total for s in seen), stages_seen=len(seen))


# ---------------------------------------------------------------------- a fit watched while it runs
@dataclass(frozen=True)
class FitProgress:
    """Where a WatchedFit is: its phase, the ALS sweeps done, Spark's own progress, and the share
    of the whole (never decreasing from one look to the next)."""

    phase: str                      # "splitting" | "fitting" | "evaluating" | "done" | "failed"
    sweeps_done: int
    sweeps: int
    spark: SparkProgress
    fraction: float

    def text(self) -> str:
        if self.phase == "splitting":
            head = "Holding out 20 % of each user's interactions (in Spark)"
        elif self.phase == "fitting":
            head = f"ALS sweep {min(self.sweeps_done + 1, self.sweeps)} of {self.sweeps}"
        elif self.phase == "evaluating":
            head = "Ranking every item for each test user (in Spark)"
        else:
            head = self.phase.capitalize()
        return f"{head} · {self.spark.text()}"


@dataclass(frozen=True)
class SparkFitResult:
    """A finished fit: ranking metrics on the held-out interactions and what it took."""

    metrics: dict[str, float]       # "ndcg@10", "recall@10", …
    n_users: int                    # test users evaluated
    fit_seconds: float
    evaluate_seconds: float
    train_interactions: int
    test_interactions: int
    params: dict
    tasks_done: int                 # Spark tasks run by the whole job (holdout, fit, evaluation)


@dataclass
class _State:
    phase: str = "splitting"
    sweeps_done: int = 0
    fraction: float = 0.0
    result: SparkFitResult | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class WatchedFit:
    """``spark_als`` trained on ``log`` (a ``recsys.spark.io.SparkInteractions``) and evaluated on a
    random per-user holdout, all in Spark, in a daemon worker thread started by :meth:`start`.

    Poll :meth:`progress` for a :class:`FitProgress`; when :attr:`done`, :attr:`result` holds the
    :class:`SparkFitResult` or :attr:`error` what went wrong. Only factor tables and metric means
    come back to this process."""

    def __init__(self, log, params: dict | None = None, *, k: int = 10, test_fraction: float = 0.2,
                 seed: int = 42) -> None:
        from recsys.models import create

        self.log = log
        # made now so bad settings fail in the caller's thread, before any work starts
        self.model = create("spark_als", **(params or {}))
        self.k, self.test_fraction, self.seed = int(k), float(test_fraction), int(seed)
        self.watch = ProgressWatch(log.frame.sparkSession.sparkContext)
        self._state = _State()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the caller's side
    def start(self) -> WatchedFit:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recsys-watched-spark-fit", daemon=True)
            self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._state.done.is_set()

    @property
    def result(self) -> SparkFitResult | None:
        return self._state.result

    @property
    def error(self) -> BaseException | None:
        return self._state.error

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the fit ended or ``timeout`` seconds passed; True when it ended."""
        return self._state.done.wait(timeout)

    def progress(self) -> FitProgress:
        spark = self.watch.snapshot()
        with self._lock:
            state = self._state
            share = self._phase_progress(state, spark)
            # Spark's stages appear one at a time, so a look can see less work left than the last
            # one did; the bar never goes back
            state.fraction = max(state.fraction, share)
            return FitProgress(phase=state.phase, sweeps_done=state.sweeps_done, sweeps=self.model.params.iterations,
                               spark=spark, fraction=state.fraction)

    def _phase_progress(self, state: _State, spark: SparkProgress) -> float:
        if state.phase in ("done", "failed"):
            return 1.0 if state.phase == "done" else state.fraction
        start = 0.0
        for phase, share in PHASE_SHARES.items():
            if phase == state.phase:
                if phase == "fitting":
                    within = (state.sweeps_done + spark.stage_fraction) / max(1, self.model.params.iterations)
                else:
                    within = spark.stage_fraction
                return start + share * min(1.0, within)
            start += share
        return start

    # ------------------------------------------------------------------ the worker's side
    def _set(self, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self._state, name, value)

    def _on_sweep(self, step: int, total: int, metrics: dict) -> None:
        self._set(sweeps_done=int(step))

    def _run(self) -> None:
        from recsys.spark.io import random_holdout
        from recsys.spark.metrics import evaluate_factors

        try:
            train, test = random_holdout(self.log, test_fraction=self.test_fraction, seed=self.seed)
            self._set(phase="fitting")
            self.model.fit_spark(train, progress=self._on_sweep)
            self._set(phase="evaluating")
            started = time.perf_counter()
            scored = evaluate_factors(self.model.user_factors_, self.model.item_factors_, train, test, k=self.k)
            evaluate_seconds = time.perf_counter() - started
            result = SparkFitResult(metrics=dict(scored.means), n_users=scored.n_users,
                                    fit_seconds=float(self.model.fit_seconds_), evaluate_seconds=evaluate_seconds,
                                    train_interactions=train.n_interactions, test_interactions=test.n_interactions,
                                    params=self.model.get_params(),
                                    tasks_done=self.watch.snapshot().tasks_done)
            self._set(result=result, phase="done")
        except BaseException as err:  # the caller's thread reads it; a daemon thread has nobody else to tell
            self._set(error=err, phase="failed")
        finally:
            self._state.done.set()
