"""The training queue of one server: a bounded pool of workers that every visitor shares.

Every training goes through one :class:`Board`. It runs at most ``workers`` trainings at once
(each a thread with one torch thread, so page renders keep a core), keeps at most
``queue_length`` waiting, and lets one visitor have at most ``visitor_jobs`` running or
waiting. A page that asks again for a training already queued or running joins it instead
of starting a second one: a job has *watchers*, the visitors waiting for its result.

What one watcher does never spoils the run for the others:

* **Cancel** detaches that watcher only. The job is cancelled when no watcher is left (a
  waiting job leaves the queue, a running one stops after its current step and nothing is
  stored).
* **Stop and keep** is allowed only to a job's sole watcher, and the model it keeps is stored
  under a run id of its own (:func:`stopped_run_id`: the canonical id, "stopped" and the
  visitor), as that visitor's private run. The canonical id always means "trained to the
  end", so a truncated model is never what another visitor reuses. While several visitors
  watch a job, Stop is refused with a message: Cancel (leave) is what a watcher can do.

Nothing here imports Streamlit; ``ui.jobs`` keeps the process-wide board and the pages poll it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from statistics import fmean

from recsys import experiment
from recsys.data.errors import DataError
from recsys.experiment import stopped_run_id  # noqa: F401  (the queue's id for a kept stopped fit)
from recsys.models.base import FitCancelled, StopTraining

QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
# Jobs of several people run side by side with the page renders in one process: torch's
# busy-waiting worker threads, one per core each, then fight over the cores (on two shared
# cores NeuMF took 692 s instead of 48 s). One thread per job keeps every job moving.
TORCH_THREADS = 1
# finished jobs nobody came back for are forgotten after this long
FINISHED_KEPT_S = 3600.0
DURATIONS_KEPT = 10
log = logging.getLogger("recsys.jobs")


class JobRefused(DataError):
    """The queue cannot take or change a job; the message says why and what to do instead."""


@dataclass(eq=False)
class Job:
    """One training: its spec, where it is stored, who waits for it, its progress and outcome.

    ``target`` is what the worker needs to store the run: ``{"store", "owner", "fingerprint",
    "split", "models", "reports"}`` (``split`` a SplitConfig or its dict; ``models`` and ``reports``
    are caches with ``put``, or None).
    """

    spec: dict
    split: object
    target: dict
    watchers: set = field(default_factory=set)
    hint_seconds: float | None = None  # how long this model took here recently (from the store)
    estimate: object = None  # a recsys.estimate.FitEstimate of this model, setting and data, when probed
    status: str = QUEUED
    phase: str = "queued"
    step: int = 0
    total: int = 1
    history: list = field(default_factory=list)
    error: str | None = None
    entry: dict | None = None
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stopper: str | None = None  # the visitor who asked to stop and keep
    stopped_at: int | None = None  # the epoch after which the fit was stopped on request
    reported_at: list = field(default_factory=list)  # clock reading of each progress report
    clock: object = field(default=time.time, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def run_id(self) -> str:
        return self.spec["run_id"]

    @property
    def finished_running(self) -> bool:
        return self.status in (DONE, CANCELLED, FAILED)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def progress(self, step: int, total: int, metrics: dict) -> None:
        """The model's progress callback (called from the worker thread)."""
        if self._cancel.is_set():
            raise FitCancelled
        self.phase, self.step, self.total = "training", step, total
        if metrics:  # an epoch's report ("fit complete" after an early stop carries none)
            self.reported_at.append((step, self.clock()))
            self.history.append({"step": step, **metrics})
        if self._stop.is_set() and step < total:
            self.stopped_at = step
            raise StopTraining
        if step >= total:
            self.phase = "evaluating"


    def seconds_per_epoch(self) -> tuple[float | None, bool]:
        """Seconds per epoch and whether they were measured: between the first and the latest epoch
        once two have ended, from the start through the first epoch after one, else the probe's
        estimate (None without one)."""
        if len(self.reported_at) >= 2:
            (first_step, first), (last_step, last) = self.reported_at[0], self.reported_at[-1]
            return (last - first) / max(last_step - first_step, 1), True
        if self.reported_at and self.started is not None:
            step, at = self.reported_at[0]
            return (at - self.started) / max(step, 1), True
        per_epoch = getattr(self.estimate, "per_epoch", None)
        return per_epoch, False

    def remaining_seconds(self, now: float | None = None) -> float | None:
        """Seconds until this job should be done (fit and scoring the test users): the measured time
        per epoch times the epochs left once one epoch has ended, else the estimate minus the time
        spent; its whole estimate while it waits; None without an estimate."""
        now = self.clock() if now is None else now
        scoring = getattr(self.estimate, "scoring", 0.0)
        if self.status == QUEUED:
            return None if self.estimate is None else self.estimate.seconds
        if self.phase in ("evaluating", "saving"):
            return max(0.0, scoring - (now - (self.reported_at[-1][1] if self.reported_at else now)))
        per_epoch, measured = self.seconds_per_epoch()
        if measured:
            since_last = now - self.reported_at[-1][1]
            return max(0.0, per_epoch * (self.total - self.step) - since_last) + scoring
        if self.estimate is None:
            return None
        return max(0.0, self.estimate.seconds - (now - (self.started or now)))


# ---------------------------------------------------------------------- one training, start to store
def run_spec_of(job: Job) -> experiment.RunSpec:
    """The job's :class:`recsys.experiment.RunSpec`, rebuilt from its spec and storage target; its id must be
    the one the job was queued (and is joined) under."""
    spec, target = job.spec, job.target
    made = experiment.RunSpec.make(target["fingerprint"], target["split"], spec["model"], spec["params"],
                                   owner=target["owner"])
    if made.run_id != spec["run_id"]:
        raise DataError(f"The training of {spec['label']} names run {spec['run_id']}, but its settings make run "
                        f"{made.run_id}; queue it again from the Train page.")
    return made


def train_and_store(job: Job) -> None:
    """Train, then store, through :func:`recsys.experiment.run` (never a reuse: the page asked because the
    run is not stored). The run is ``running`` in the store from the start, ``done`` once its files are
    written, ``failed`` with the reason; a cancelled run is removed from the store. A fit stopped on
    request is stored under :func:`stopped_run_id` as the stopper's private run."""
    spec, target = job.spec, job.target

    def phase(name: str) -> None:
        if name in ("evaluating", "saving"):  # "training" is set by the fit's own progress reports
            job.phase = name

    def keep_stopped() -> experiment.KeepAs | None:
        if job.stopped_at is None or job.stopper is None:
            return None
        return experiment.KeepAs(job.stopper, f"{spec['label']} (stopped after epoch {job.stopped_at})")

    try:
        result = experiment.run(run_spec_of(job), job.split, store=target["store"], progress=job.progress,
                                phase=phase, reuse=False, keep_stopped=keep_stopped)
        kept = {**spec, "run_id": result.run_id}
        key = (str(target["store"].root), result.record.run_id, result.record.created_at)
        for cache, value in ((target.get("models"), result.model), (target.get("reports"), result.report)):
            if cache is not None:
                cache.put(key, value)
        job.entry = {"spec": kept, "model": result.model, "report": result.report,
                     "fit_seconds": float(result.record.timings["fit_seconds"]),
                     "history": list(result.record.extra["history"]),
                     "stopped_early": bool(result.record.extra["stopped_early"])}
        job.status = DONE
    except FitCancelled:
        job.status = CANCELLED  # experiment.run removed the run
    except DataError as exc:  # StoreError included: its message says what to fix
        job.error, job.status = str(exc), FAILED
    except Exception as exc:  # a worker must always end in a state the page can show
        log.exception("training %s failed", spec.get("model"))
        job.error, job.status = experiment.failure_text(exc), FAILED


def recent_seconds(store, model_key: str, dataset: str | None = None) -> float | None:
    """How long the newest finished run of ``model_key`` took to fit and evaluate (on ``dataset`` when
    one is stored there), or None when none is stored: the wait estimate of a model not yet trained
    since the server started."""
    records = [r for r in store.list(status="done") if r.model == model_key and r.timings.get("fit_seconds")]
    if dataset is not None and any(r.dataset == dataset for r in records):
        records = [r for r in records if r.dataset == dataset]
    if not records:
        return None
    newest = records[-1]
    return float(newest.timings.get("fit_seconds", 0.0)) + float(newest.timings.get("eval_seconds", 0.0))


# ---------------------------------------------------------------------- the queue
class Board:
    """The jobs of one server: a bounded queue in front of ``workers`` worker threads.

    ``runner(job)`` does the work and sets the job's outcome (default :func:`train_and_store`);
    tests pass their own. Workers start with the first job.
    """

    def __init__(self, *, workers: int, visitor_jobs: int, queue_length: int, runner=train_and_store,
                 clock=time.time) -> None:
        if min(workers, visitor_jobs, queue_length) < 1:
            raise ValueError("workers, visitor_jobs and queue_length must be at least 1")
        self.workers, self.visitor_jobs, self.queue_length = int(workers), int(visitor_jobs), int(queue_length)
        self._runner, self._clock = runner, clock
        self._lock = threading.Condition()
        self._queue: deque[Job] = deque()
        self._jobs: list[Job] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._durations: dict[str, deque] = defaultdict(lambda: deque(maxlen=DURATIONS_KEPT))
        self.running = 0  # jobs a worker is on right now
        self.peak_running = 0  # the most ever running at once

    # ------------------------------------------------------------------ visitors' actions
    def submit(self, spec: dict, split, target: dict, visitor: str, *, hint_seconds: float | None = None,
               estimate=None) -> Job:
        """Queue the training of ``spec`` for ``visitor``, or join the job already queued or running for
        it. Raises :class:`JobRefused` beyond the visitor's limit or when the queue is full."""
        with self._lock:
            if self._closed:
                raise JobRefused("The server is shutting down and takes no new trainings; reload the page in a "
                                 "minute.")
            self._forget_old()
            job = self._active(spec["run_id"])
            if job is not None:
                if job.cancel_requested or job.stop_requested:
                    raise JobRefused(f"The training of {spec['label']} with these settings is ending (it was "
                                     "cancelled or stopped); start it again in a few seconds.")
                job.watchers.add(visitor)  # joining costs the server nothing, so it is never refused
                return job
            mine = sum(1 for j in self._jobs if not j.finished_running and visitor in j.watchers)
            if mine >= self.visitor_jobs:
                raise JobRefused(f"You already have {mine} trainings running or waiting, the most one visitor may "
                                 "have on this server. Wait for one to finish, or cancel one, then start "
                                 f"{spec['label']}.")
            if len(self._queue) >= self.queue_length:
                raise JobRefused(f"The training queue is full ({len(self._queue)} trainings are waiting for "
                                 f"{self.workers} worker(s)). Try {spec['label']} again in a few minutes.")
            job = Job(spec, split, target, watchers={visitor}, hint_seconds=hint_seconds, estimate=estimate,
                      submitted=self._clock(), clock=self._clock)
            self._jobs.append(job)
            self._queue.append(job)
            self._start_workers()
            self._lock.notify()
            return job

    def cancel(self, job: Job, visitor: str) -> str:
        """``visitor`` stops waiting for ``job``. Returns ``"left"`` when others still wait for it (it goes
        on for them), ``"cancelled"`` when it was the last watcher (the job ends, nothing is stored)."""
        with self._lock:
            if visitor not in job.watchers:
                raise JobRefused("That training is not one of yours; you can cancel only your own trainings.")
            job.watchers.discard(visitor)
            if job.finished_running:
                return "finished"
            if job.watchers:
                return "left"
            if job.status == QUEUED:
                self._queue.remove(job)
                job.status, job.phase, job.finished = CANCELLED, "cancelled", self._clock()
                self._jobs.remove(job)
            else:
                job._cancel.set()
            return "cancelled"

    def stop(self, job: Job, visitor: str) -> None:
        """Finish ``job`` after its current epoch and keep the model as ``visitor``'s private run.
        Only a job's sole watcher may stop it; with others watching, Cancel (leave) is what is left."""
        with self._lock:
            if visitor not in job.watchers:
                raise JobRefused("That training is not one of yours; you can stop only your own trainings.")
            others = len(job.watchers) - 1
            if others:
                raise JobRefused(f"{others} other visitor(s) wait for this training too, so it cannot stop early: "
                                 "it would end for them as well. Cancel leaves it to them (it is stored for "
                                 "everyone when it ends).")
            if job.status != RUNNING:
                raise JobRefused("This training has not started yet, so there is nothing to keep; cancel it "
                                 "instead.")
            job.stopper = visitor
            job._stop.set()

    def acknowledge(self, job: Job, visitor: str) -> None:
        """``visitor`` has seen the outcome of a finished job; it is forgotten once everyone has."""
        with self._lock:
            job.watchers.discard(visitor)
            if job.finished_running and not job.watchers and job in self._jobs:
                self._jobs.remove(job)

    # ------------------------------------------------------------------ reading
    def jobs_of(self, visitor: str) -> list[Job]:
        """The jobs ``visitor`` waits for or has not yet seen the outcome of, oldest first."""
        with self._lock:
            return [job for job in self._jobs if visitor in job.watchers]

    def get(self, run_id: str) -> Job | None:
        """The queued or running job of ``run_id``, if any."""
        with self._lock:
            return self._active(run_id)

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after, …; None when not waiting."""
        with self._lock:
            return self._queue.index(job) + 1 if job in self._queue else None

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def expected_seconds(self, job: Job) -> float | None:
        """How long ``job`` should take: its probe's estimate (recsys.estimate), else the mean of this
        server's recent finished runs of its model, else the store's newest run of it, else the mean of
        every finished job; None with no history."""
        with self._lock:
            return self._expected(job)

    def expected_wait(self, job: Job) -> float | None:
        """Seconds until ``job`` should start: the running jobs' remaining time and the expected time
        of those ahead of it, spread over the workers (0 when it runs; None when some job ahead
        has no estimate)."""
        with self._lock:
            if job not in self._queue:
                return 0.0
            now = self._clock()
            free = []
            for running in (j for j in self._jobs if j.status == RUNNING):
                left = running.remaining_seconds(now)  # its own measured pace once an epoch has ended
                if left is None:
                    expected = self._expected(running)
                    if expected is None:
                        return None
                    left = max(0.0, expected - (now - (running.started or now)))
                free.append(left)
            free = sorted(free + [0.0] * max(0, self.workers - len(free)))
            for ahead in self._queue:
                start = free.pop(0)
                if ahead is job:
                    return start
                expected = self._expected(ahead)
                if expected is None:
                    return None
                free.append(start + expected)
                free.sort()
            return None

    def _expected(self, job: Job) -> float | None:
        if job.estimate is not None:  # probed on this data with these settings: the closest guess
            return job.estimate.seconds
        own = self._durations.get(job.spec["model"])
        if own:
            return fmean(own)
        if job.hint_seconds is not None:
            return job.hint_seconds
        every = [d for durations in self._durations.values() for d in durations]
        return fmean(every) if every else None

    def _active(self, run_id: str) -> Job | None:
        return next((j for j in self._jobs if j.run_id == run_id and not j.finished_running), None)

    def _forget_old(self) -> None:
        cutoff = self._clock() - FINISHED_KEPT_S
        self._jobs = [j for j in self._jobs if not (j.finished_running and j.finished is not None and j.finished < cutoff)]

    # ------------------------------------------------------------------ workers
    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(target=self._work, name=f"train-worker-{len(self._threads) + 1}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        import torch

        torch.set_num_threads(TORCH_THREADS)
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                job.status, job.phase, job.started = RUNNING, "starting", self._clock()
                self.running += 1
                self.peak_running = max(self.peak_running, self.running)
            try:
                self._runner(job)
            except Exception as exc:  # a runner must end every job in a state a page can show
                log.exception("a training job failed outside its runner's handling")
                job.error, job.status = f"{type(exc).__name__}: {exc}", FAILED
            finally:
                with self._lock:
                    self.running -= 1
                    job.finished, job.split = self._clock(), None  # a finished job need not hold its data
                    if job.status not in (DONE, CANCELLED, FAILED):
                        job.error, job.status = "the training ended without an outcome", FAILED
                    if job.status == DONE and job.stopped_at is None:
                        self._durations[job.spec["model"]].append(job.finished - job.started)
                    if job.finished_running and not job.watchers and job in self._jobs:
                        self._jobs.remove(job)  # cancelled by its last watcher: nobody waits for a message

    def close(self, timeout: float = 10.0) -> None:
        """Take no new jobs, let the workers finish what they run, and end them (tests, shutdown)."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout)
