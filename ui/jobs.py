"""The server's training queue (``recsys.jobs.Board``) for the pages, so a page can draw a live loss
curve, a queue position and stop/cancel buttons.

The board belongs to the server process (``st.cache_resource``), not to a page run: switching
pages or reloading does not kill a job, and a visitor finds their jobs again by their identity
(``ui.identity``). Worker threads never call Streamlit; pages poll the jobs' state.
"""

from __future__ import annotations

import logging

import streamlit as st
import torch

from recsys import hosting
from recsys.estimate import duration_text, seconds_text
from recsys.jobs import (  # noqa: F401  (the pages read the statuses from here)
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    TORCH_THREADS,
    Board,
    Job,
    JobRefused,
    recent_seconds,
)
from recsys.models import get
from ui import runs

log = logging.getLogger("recsys.ui")

# the page threads too: a torch call made while rendering must not spin one thread per core
torch.set_num_threads(TORCH_THREADS)


@st.cache_resource
def board() -> Board:
    limits = hosting.config().limits
    return Board(workers=limits.workers, visitor_jobs=limits.visitor_jobs, queue_length=limits.queue_length)


def check_budget(spec: dict, split) -> None:
    """Refuse (DataError) a training whose memory estimate is over the host's budget, before it is queued."""
    hosting.check_training_budget(get(spec["model"]), spec["params"], split.train)


def submit(spec: dict, split, estimate=None) -> Job:
    """Queue ``spec`` for this visitor (or join the job already training it); ``estimate`` (a
    recsys.estimate.FitEstimate) feeds the live wait. Raises DataError (JobRefused, a budget refusal)
    with a message for the page."""
    check_budget(spec, split)
    target = runs.storage_target(spec)
    try:
        hint = recent_seconds(target["store"], spec["model"], target["fingerprint"])
    except Exception:  # an estimate is a nicety: a store that cannot answer must not block training
        log.exception("reading recent fit times failed")
        hint = None
    return board().submit(spec, split, target, runs.owner_token(), hint_seconds=hint, estimate=estimate)


def mine() -> list[Job]:
    """This visitor's jobs: waiting, running, or finished and not yet reported."""
    return board().jobs_of(runs.owner_token())


def cancel(job: Job) -> str:
    return board().cancel(job, runs.owner_token())


def stop(job: Job) -> None:
    board().stop(job, runs.owner_token())


def acknowledge(job: Job) -> None:
    board().acknowledge(job, runs.owner_token())


def wait_text(job: Job) -> str:
    """"Waiting: 2nd in line · about 1 min" for a queued job."""
    position = board().position(job)
    if position is None:
        return "starting…"
    wait = board().expected_wait(job)
    ahead = "next in line" if position == 1 else f"{position - 1} training(s) ahead of it"
    if wait is None:
        estimate = "no estimate yet (this model has not been trained on this server)"
    elif wait < 60:
        estimate = f"starts in about {max(1, round(wait))} s"
    else:
        estimate = f"starts in about {round(wait / 60)} min"
    if job.estimate is not None:
        estimate += f", then takes {duration_text(job.estimate.seconds).removeprefix('about ')}"
    return f"waiting in the queue: {ahead} · {estimate}"


def pace_text(job: Job) -> str:
    """"1.2 s per epoch · about 40 s left" for a running job: measured once an epoch has ended,
    marked "estimated" while it rests on the probe; "" when nothing is known."""
    per_epoch, measured = job.seconds_per_epoch()
    left = job.remaining_seconds()
    parts = []
    epochs = job.total if job.reported_at else getattr(job.estimate, "epochs", None)  # before the first report
    if per_epoch is not None and (epochs or 0) > 1:
        parts.append(f"{seconds_text(per_epoch)} per epoch" + ("" if measured else " (estimated)"))
    if left is not None:
        parts.append(f"{duration_text(left)} left" if left >= 1 else "almost done")
    return " · ".join(parts)


def limits_text() -> str:
    """The queue's limits in words, for the Train page."""
    limits = hosting.config().limits
    return (f"This server trains {limits.workers} model(s) at a time for everyone; you may have "
            f"{limits.visitor_jobs} running or waiting.")

