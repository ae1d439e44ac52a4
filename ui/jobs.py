"""Training in background threads, so a page can draw a live loss curve and a stop button.

A job belongs to the server process (``st.cache_resource``), not to a page run: switching
pages or reloading does not kill it, and two people who start the same run share one job.
The worker thread never calls Streamlit; pages poll the job's state.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import streamlit as st
import torch

from recsys.data.errors import DataError
from recsys.models.base import FitCancelled, StopTraining
from ui import runs

RUNNING, DONE, CANCELLED, FAILED = "running", "done", "cancelled", "failed"
log = logging.getLogger("recsys.ui")

# Jobs of several people run side by side with the page renders in one process: torch's
# busy-waiting worker threads, one per core each, then fight over the cores (on two shared
# cores NeuMF took 692 s instead of 48 s). One thread per job keeps every job moving.
TORCH_THREADS = 1
torch.set_num_threads(TORCH_THREADS)


@dataclass
class Job:
    """One run being trained: its progress, per-epoch metrics and outcome."""

    spec: dict
    status: str = RUNNING
    phase: str = "starting"
    step: int = 0
    total: int = 1
    history: list = field(default_factory=list)
    error: str | None = None
    entry: dict | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def finished_running(self) -> bool:
        return self.status != RUNNING

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Finish after the current epoch and keep the model (best validation epoch if any)."""
        self._stop.set()

    def request_cancel(self) -> None:
        """Abandon the fit after the current step; nothing is kept."""
        self._cancel.set()

    def progress(self, step: int, total: int, metrics: dict) -> None:
        """The model's progress callback (called from the worker thread)."""
        if self._cancel.is_set():
            raise FitCancelled
        self.phase, self.step, self.total = "training", step, total
        if metrics:
            self.history.append({"step": step, **metrics})
        if self._stop.is_set() and step < total:
            raise StopTraining


def _work(job: Job, split, target: dict) -> None:
    """Train, then store: the run is ``running`` in the store from the start, ``done`` once its
    files are written, ``failed`` with the reason; a cancelled run is removed from the store."""
    run_id = job.spec["run_id"]
    try:
        runs.begin_stored(job.spec, target)
        entry = runs.fit_and_evaluate(job.spec, split, _evaluating(job))
        job.phase = "saving"
        runs.store_finished(job.spec, entry, target)
        job.entry, job.status = entry, DONE
    except FitCancelled:
        _quietly(target["store"].discard, run_id)
        job.status = CANCELLED
    except DataError as exc:  # StoreError included: its message says what to fix
        job.error, job.status = str(exc), FAILED
        _quietly(target["store"].fail, run_id, job.error)
    except Exception as exc:  # a worker must always end in a state the page can show
        job.error, job.status = f"{type(exc).__name__}: {exc}", FAILED
        _quietly(target["store"].fail, run_id, job.error)
    finally:
        job.finished = time.time()


def _quietly(action, *args) -> None:
    """Record an outcome in the store; a store that fails here must not hide the job's own outcome."""
    try:
        action(*args)
    except Exception:
        log.exception("updating the experiment store failed")


def _evaluating(job: Job):
    """Wrap the callback so the job says "evaluating" once the last epoch has reported."""
    def report(step: int, total: int, metrics: dict) -> None:
        job.progress(step, total, metrics)
        if step >= total:
            job.phase = "evaluating"
    return report


class JobBoard:
    """Jobs by run id for this server process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self, spec: dict, split, target: dict) -> Job:
        """Start training ``spec`` on ``split`` unless the same run is already being trained;
        ``target`` (``runs.storage_target``) says where the finished run is stored."""
        with self._lock:
            job = self._jobs.get(spec["run_id"])
            if job is not None and not job.finished_running:
                return job
            job = Job(spec)
            self._jobs[spec["run_id"]] = job
        thread = threading.Thread(target=_work, args=(job, split, target), name=f"train-{spec['model']}",
                                  daemon=True)
        thread.start()
        return job

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)


@st.cache_resource
def board() -> JobBoard:
    return JobBoard()
