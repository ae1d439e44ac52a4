"""The server's training queue (recsys.jobs): a bounded pool, per-visitor and queue limits, shared jobs
whose watchers cancel only for themselves, and stop-and-keep that never truncates the canonical run.

Most tests drive the board with a runner that blocks on an event, so what runs when is decided by
the test, not by timing; the last ones train real models into a real store.
"""

from __future__ import annotations

import threading
import time

import pytest

from recsys.estimate import FitEstimate
from recsys.experiment import RunSpec
from recsys.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Board,
    Job,
    JobRefused,
    recent_seconds,
    stopped_run_id,
    train_and_store,
)
from recsys.models import create, get
from recsys.store import SHARED, ExperimentStore, split_dataset

SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}
WAIT_S = 60.0


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


class GatedRunner:
    """A runner whose jobs run until the test releases them; counts how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}

    def gate(self, run_id: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(run_id, threading.Event())

    def __call__(self, job) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.started.append(job.run_id)
        try:
            while not self.gate(job.run_id).wait(0.01):
                if job.cancel_requested:
                    job.status = CANCELLED
                    return
            job.entry, job.status = {"spec": job.spec}, DONE
        finally:
            with self.lock:
                self.running -= 1


def spec(name: str, model: str = "pop") -> dict:
    return {"run_id": name, "model": model, "label": name, "params": {}}


@pytest.fixture
def runner():
    return GatedRunner()


@pytest.fixture
def board(runner):
    made = Board(workers=2, visitor_jobs=3, queue_length=4, runner=runner)
    yield made
    for gate in list(runner.gates.values()):
        gate.set()
    made.close()


def test_never_more_jobs_run_than_there_are_workers(runner):
    board = Board(workers=2, visitor_jobs=10, queue_length=10, runner=runner)
    jobs = [board.submit(spec(f"job{i}"), None, {}, f"visitor{i}") for i in range(6)]
    for done in range(len(jobs)):
        expected = min(2, len(jobs) - done)
        wait_until(lambda n=expected: runner.running == n, "the workers to pick jobs up")
        assert board.running == runner.running == expected
        # the oldest running job ends; one waiting job takes its place, never a third at once
        runner.gate(runner.started[done]).set()
        wait_until(lambda n=done + 1: sum(j.finished_running for j in jobs) == n, "a job to finish")
    assert runner.most_at_once == 2 and board.peak_running == 2
    assert runner.started == [f"job{i}" for i in range(6)]  # first come, first served
    assert all(job.status == DONE for job in jobs)
    board.close()


def test_queue_positions_and_expected_wait(runner):
    clock = [1000.0]
    board = Board(workers=1, visitor_jobs=5, queue_length=5, runner=runner, clock=lambda: clock[0])
    first = board.submit(spec("first"), None, {}, "ann", hint_seconds=30.0)
    wait_until(lambda: first.status == RUNNING, "the first job to start")
    second = board.submit(spec("second"), None, {}, "ann", hint_seconds=50.0)
    third = board.submit(spec("third", model="ease"), None, {}, "bob")
    assert (board.position(first), board.position(second), board.position(third)) == (None, 1, 2)
    clock[0] += 10.0  # the running job is expected to take 30 s and has run 10
    assert board.expected_wait(first) == 0.0
    assert board.expected_wait(second) == 20.0
    assert board.expected_wait(third) == 70.0  # 20 s left of the first, then 50 s of the second
    # a model with no history and no hint ahead of a job leaves its wait unknown
    fourth = board.submit(spec("fourth"), None, {}, "cid")
    assert board.expected_wait(fourth) is None
    # finished runs of a model replace the hint: "first" took 40 s here
    clock[0] += 30.0
    runner.gate("first").set()
    wait_until(lambda: second.status == RUNNING, "the second job to start")
    assert board.expected_seconds(second) == 40.0  # measured pop time beats the hint
    assert board.position(third) == 1 and board.expected_wait(third) == 40.0
    for name in ("second", "third", "fourth"):
        runner.gate(name).set()
    board.close()


def guess(per_epoch: float | None, epochs: int | None, fixed: float = 2.0, scoring: float = 1.0) -> FitEstimate:
    return FitEstimate(fixed=fixed, per_epoch=per_epoch, epochs=epochs, scoring=scoring, sample_share=0.2,
                       probe_seconds=0.5)


def test_a_probed_estimate_drives_the_wait_and_measured_epochs_replace_it(runner):
    clock = [1000.0]
    board = Board(workers=1, visitor_jobs=5, queue_length=5, runner=runner, clock=lambda: clock[0])
    first = board.submit(spec("first", model="bpr_mf"), None, {}, "ann", estimate=guess(4.0, 10))  # 43 s
    wait_until(lambda: first.status == RUNNING, "the first job to start")
    second = board.submit(spec("second", model="ease"), None, {}, "bob", hint_seconds=500.0,
                          estimate=guess(None, None, fixed=8.0, scoring=2.0))
    # before any epoch ends the first job's own estimate counts, and the second's beats its hint
    assert first.seconds_per_epoch() == (4.0, False)
    clock[0] += 3.0
    assert first.remaining_seconds() == 40.0
    assert board.expected_wait(second) == 40.0
    assert board.expected_seconds(second) == 10.0
    assert second.remaining_seconds() == 10.0  # waiting: its whole estimate
    # the first epoch ends after 6 s (setup included): the measured pace replaces the estimate
    clock[0] += 3.0
    first.progress(1, 10, {"loss": 0.5})
    assert first.seconds_per_epoch() == (6.0, True)
    assert first.remaining_seconds() == 6.0 * 9 + 1.0  # nine epochs and scoring the test users
    # later epochs are timed between reports, without the setup
    for epoch in range(2, 5):
        clock[0] += 2.0
        first.progress(epoch, 10, {"loss": 0.5 / epoch})
    assert first.seconds_per_epoch() == (2.0, True)
    clock[0] += 0.5  # half an epoch since the last report
    assert first.remaining_seconds() == 2.0 * 6 - 0.5 + 1.0
    assert board.expected_wait(second) == 12.5
    runner.gate("first").set()
    runner.gate("second").set()
    board.close()


def test_a_visitor_may_have_only_so_many_jobs_and_a_full_queue_refuses(board, runner):
    for i in range(3):
        board.submit(spec(f"ann{i}"), None, {}, "ann")
    with pytest.raises(JobRefused, match=r"You already have 3 trainings running or waiting.*cancel one"):
        board.submit(spec("ann3"), None, {}, "ann")
    wait_until(lambda: runner.running == 2, "the workers to take ann0 and ann1")
    assert board.queued() == 1  # ann2 waits; filling the queue of 4:
    for i in range(3):
        board.submit(spec(f"bob{i}"), None, {}, f"bob{i}")
    assert board.queued() == 4
    with pytest.raises(JobRefused, match=r"The training queue is full \(4 trainings are waiting for 2 worker"):
        board.submit(spec("cid"), None, {}, "cid")
    # joining a job that already runs costs nothing, so it is taken even beyond the limits
    joined = board.submit(spec("ann0"), None, {}, "cid")
    assert joined.watchers == {"ann", "cid"}
    # once one of ann's jobs ends, ann may start another
    runner.gate("ann0").set()
    wait_until(lambda: joined.finished_running, "ann0 to finish")
    wait_until(lambda: board.queued() == 3, "a worker to take ann2 from the queue")
    assert board.submit(spec("ann3"), None, {}, "ann").status == QUEUED


def test_cancel_by_one_of_two_watchers_keeps_the_job_running(board, runner):
    job = board.submit(spec("vae", model="mult_vae"), None, {}, "ann")
    assert board.submit(spec("vae", model="mult_vae"), None, {}, "bob") is job  # same settings: one job
    wait_until(lambda: job.status == RUNNING, "the job to start")
    assert board.cancel(job, "bob") == "left"
    assert job.watchers == {"ann"} and not job.cancel_requested
    assert board.jobs_of("bob") == [] and board.jobs_of("ann") == [job]
    runner.gate("vae").set()
    wait_until(lambda: job.finished_running, "the job to finish")
    assert job.status == DONE
    with pytest.raises(JobRefused, match="not one of yours"):
        board.cancel(job, "bob")  # bob left: he cannot cancel it any more


def test_cancel_by_the_last_watcher_cancels(board, runner):
    running = board.submit(spec("a"), None, {}, "ann")
    board.submit(spec("b"), None, {}, "ann")
    waiting = board.submit(spec("c"), None, {}, "ann")
    wait_until(lambda: runner.running == 2, "both workers to take a job")
    assert running.status == RUNNING and waiting.status == QUEUED
    assert board.cancel(waiting, "ann") == "cancelled"
    assert waiting.status == CANCELLED and board.queued() == 0 and waiting not in board.jobs_of("ann")
    assert board.cancel(running, "ann") == "cancelled"
    wait_until(lambda: running.finished_running, "the cancelled job to end")
    assert running.status == CANCELLED and running not in board.jobs_of("ann")
    assert "c" not in runner.started  # a job cancelled while waiting never runs


def test_a_job_being_cancelled_cannot_be_joined_and_a_stranger_cannot_touch_it(board, runner):
    job = board.submit(spec("a"), None, {}, "ann")
    wait_until(lambda: job.status == RUNNING, "the job to start")
    with pytest.raises(JobRefused, match="not one of yours"):
        board.stop(job, "mallory")
    with pytest.raises(JobRefused, match="not one of yours"):
        board.cancel(job, "mallory")
    assert job.watchers == {"ann"} and not job.cancel_requested and not job.stop_requested
    board.cancel(job, "ann")
    with pytest.raises(JobRefused, match="is ending"):
        board.submit(spec("a"), None, {}, "bob")


def test_stop_is_refused_while_others_watch(board, runner):
    job = board.submit(spec("bpr", model="bpr_mf"), None, {}, "ann")
    board.submit(spec("bpr", model="bpr_mf"), None, {}, "bob")
    wait_until(lambda: job.status == RUNNING, "the job to start")
    with pytest.raises(JobRefused, match=r"1 other visitor\(s\) wait for this training too"):
        board.stop(job, "ann")
    assert not job.stop_requested
    board.cancel(job, "bob")
    board.stop(job, "ann")  # alone now: the stop is hers
    assert job.stop_requested and job.stopper == "ann"


# ---------------------------------------------------------------------- real trainings into a store
@pytest.fixture(scope="module")
def split(sample):
    return split_dataset(sample, SPLIT)


def real_spec(sample, model: str, params: dict, owner: str = SHARED) -> dict:
    params = create(model, **params).get_params()
    return {"model": model, "label": get(model).label, "params": params, "dataset": SAMPLE["label"],
            "split": tuple(SPLIT.values()), "run_id": RunSpec.make(sample, SPLIT, model, params, owner=owner).run_id}


def target(store: ExperimentStore, sample, owner: str = SHARED) -> dict:
    return {"store": store, "owner": owner, "fingerprint": store.register_dataset(sample, SAMPLE), "split": SPLIT,
            "models": None, "reports": None}


class SlowEpochs:
    """Wraps train_and_store so each epoch waits for the test's go-ahead."""

    def __init__(self) -> None:
        self.epoch_done = threading.Semaphore(0)
        self.go = threading.Semaphore(0)

    def __call__(self, job) -> None:
        report = job.progress

        def paced(step, total, metrics):
            report(step, total, metrics)
            if metrics and step < total:
                self.epoch_done.release()
                assert self.go.acquire(timeout=WAIT_S)

        job.progress = paced
        train_and_store(job)


def test_cancel_by_one_watcher_still_stores_the_shared_run(tmp_path, sample, split):
    store = ExperimentStore(tmp_path / "store")
    pacer = SlowEpochs()
    board = Board(workers=2, visitor_jobs=3, queue_length=4, runner=pacer)
    bpr = real_spec(sample, "bpr_mf", {"epochs": 3})
    job = board.submit(bpr, split, target(store, sample), "ann")
    board.submit(bpr, split, target(store, sample), "bob")
    assert pacer.epoch_done.acquire(timeout=WAIT_S)
    assert board.cancel(job, "ann") == "left"
    pacer.go.release(2)
    assert pacer.epoch_done.acquire(timeout=WAIT_S)
    wait_until(lambda: job.finished_running, "the shared job to finish")
    board.close()
    assert job.status == DONE and job.stopped_at is None
    record = store.find_done(bpr["run_id"], "bob")
    assert record is not None and record.owner == SHARED and record.extra["stopped_early"] is False
    assert [h["step"] for h in record.extra["history"]] == [1, 2, 3]  # trained to the end


def test_stop_and_keep_stores_a_private_copy_never_the_canonical_run(tmp_path, sample, split):
    store = ExperimentStore(tmp_path / "store")
    pacer = SlowEpochs()
    board = Board(workers=1, visitor_jobs=3, queue_length=4, runner=pacer)
    bpr = real_spec(sample, "bpr_mf", {"epochs": 5})
    job = board.submit(bpr, split, target(store, sample), "ann")
    assert pacer.epoch_done.acquire(timeout=WAIT_S)  # epoch 1 reported
    board.stop(job, "ann")
    pacer.go.release()
    wait_until(lambda: job.finished_running, "the stopped job to finish")
    board.close()
    assert job.status == DONE and job.stopped_at == 2  # the stop lands after the epoch that was running
    copy_id = stopped_run_id(bpr["run_id"], "ann")
    assert copy_id != bpr["run_id"] and len(copy_id) == 16
    assert job.entry["spec"]["run_id"] == copy_id
    assert store.get(bpr["run_id"]) is None  # the canonical id is left for a full training
    kept = store.find_done(copy_id, "ann")
    assert kept.owner == "ann" and kept.name == "BPR-MF (stopped after epoch 2)"
    assert kept.extra["stopped_early"] is True and [h["step"] for h in kept.extra["history"]] == [1, 2]
    assert store.find_done(copy_id, "bob") is None  # ann's copy is hers alone
    assert kept.metrics["ndcg@10"] == job.entry["report"].means["ndcg@10"]


def test_two_workers_train_real_models_and_the_fit_time_feeds_the_next_estimate(tmp_path, sample, split):
    store = ExperimentStore(tmp_path / "store")
    board = Board(workers=2, visitor_jobs=3, queue_length=4)
    pop = board.submit(real_spec(sample, "pop", {}), split, target(store, sample), "ann")
    knn = board.submit(real_spec(sample, "item_knn", {}), split, target(store, sample), "bob")
    wait_until(lambda: pop.finished_running and knn.finished_running, "both trainings")
    board.close()
    assert (pop.status, knn.status) == (DONE, DONE) and board.peak_running <= 2
    record = store.find_done(knn.run_id, "ann")
    assert record.metrics["ndcg@10"] == knn.entry["report"].means["ndcg@10"]
    seconds = recent_seconds(store, "item_knn", sample.fingerprint)
    assert seconds == record.timings["fit_seconds"] + record.timings["eval_seconds"] and seconds > 0
    assert recent_seconds(store, "ease") is None


def test_a_job_whose_id_does_not_match_its_settings_fails_without_training(tmp_path, sample, split):
    """The worker rebuilds the run's RunSpec from the job's settings: a spec naming another run id (one
    that visitors would join under) is refused instead of being stored under the wrong id."""
    store = ExperimentStore(tmp_path / "store")
    job = Job({**real_spec(sample, "pop", {}), "run_id": "0" * 16}, split, target(store, sample))
    train_and_store(job)
    assert job.status == FAILED and job.entry is None
    assert f"its settings make run {real_spec(sample, 'pop', {})['run_id']}" in job.error
    assert store.list() == []
