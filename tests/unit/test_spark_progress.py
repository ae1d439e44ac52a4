"""Spark's job progress as the Data page reads it: a snapshot of a real local job (tasks counted while
they run and after they finish), the arithmetic of a watched fit's bar, and a watched Spark ALS fit.

The tests that run Spark share one local session and skip where pyspark or Java 17 is missing,
except under CI=true, where that is a failure (as in test_spark_als.py).
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.spark.progress import PHASE_SHARES, ProgressWatch, SparkProgress, StageProgress, WatchedFit, snapshot


def wait_until(condition, what: str, limit: float = 300.0):
    """Poll ``condition`` until it returns something truthy (a hung Spark fails the test, not the suite)."""
    deadline = time.monotonic() + limit
    while not (found := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {limit:.0f} s"
        time.sleep(0.05)
    return found


# ---------------------------------------------------------------------- a real Spark job
def test_a_snapshot_counts_the_tasks_of_a_running_and_a_finished_stage(spark, tmp_path):
    gate = tmp_path / "go"

    def held(_):
        # every task waits for the test's signal, so the test sees the stage with none of its tasks done
        while not gate.exists():
            time.sleep(0.02)
        return 1

    watch = ProgressWatch(spark.sparkContext)
    outcome = {}
    job = threading.Thread(target=lambda: outcome.setdefault(
        "sum", spark.sparkContext.parallelize(range(8), 4).map(held).sum()))
    job.start()
    running = wait_until(lambda: (s := watch.snapshot()).stages and s, "the job's stage starting")
    assert len(running.active_jobs) == 1 and len(running.stages) == 1
    assert running.stages[0].tasks_total == 4 and running.active_tasks_done == 0
    assert running.stage_fraction == 0.0
    assert "1 active job, 1 active stage (0/4 tasks)" in running.text()
    gate.touch()
    job.join()
    assert outcome["sum"] == 8
    after = watch.snapshot()
    # the stage finished between two looks: its tasks still count, and nothing is active
    assert (after.tasks_done, after.tasks_total, after.stages_seen) == (4, 4, 1)
    assert after.active_jobs == () and after.stages == ()
    assert "Spark is idle · 4/4 tasks done in 1 stage" in after.text()
    # a fresh look remembers nothing: only what runs now
    assert snapshot(spark.sparkContext) == SparkProgress()


@pytest.fixture(scope="module")
def small_log(spark):
    from recsys.spark.io import from_dataset

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(60), 12)
    items = np.concatenate([rng.choice(40, size=12, replace=False) for _ in range(60)])
    return from_dataset(Dataset.from_frame(pd.DataFrame({"user": users, "item": items})))


def test_a_watched_fit_reports_its_phases_and_ends_with_ranking_metrics(small_log):
    fit = WatchedFit(small_log, {"embedding_size": 4, "iterations": 2}).start()
    looks = []
    while not fit.wait(0.05):
        looks.append(fit.progress())
    looks.append(fit.progress())
    assert fit.error is None, fit.error
    fractions = [look.fraction for look in looks]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert looks[-1].phase == "done" and looks[-1].sweeps == 2
    result = fit.result
    # per user ceil(20 % of 12) = 3 held out
    assert (result.train_interactions, result.test_interactions) == (60 * 9, 60 * 3)
    assert result.n_users == 60
    assert 0.0 < result.metrics["ndcg@10"] <= 1.0 and 0.0 < result.metrics["recall@10"] <= 1.0
    assert result.params["embedding_size"] == 4 and result.fit_seconds > 0
    # the holdout, two sweeps and the evaluation each ran Spark stages
    assert result.tasks_done >= 4


def test_bad_settings_fail_before_any_spark_work(small_log):
    with pytest.raises(Exception, match="embedding_size"):
        WatchedFit(small_log, {"embedding_size": 0})


# ---------------------------------------------------------------------- arithmetic (no Spark)
class FakeTracker:
    """The status tracker's four calls over a table the test edits."""

    def __init__(self):
        self.jobs, self.active, self.stages = [], [], {}

    def getActiveJobsIds(self):
        return self.jobs

    def getActiveStageIds(self):
        return self.active

    def getStageInfo(self, stage_id):
        return self.stages.get(stage_id)


def stage_info(stage_id, total, done, active=0):
    return SimpleNamespace(stageId=stage_id, name=f"stage {stage_id}", numTasks=total, numCompletedTasks=done,
                           numActiveTasks=active, numFailedTasks=0)


def test_a_watch_keeps_finished_stages_and_a_fresh_snapshot_does_not():
    tracker = FakeTracker()
    context = SimpleNamespace(statusTracker=lambda: tracker)
    watch = ProgressWatch(context)
    tracker.jobs, tracker.active, tracker.stages = [3], [7], {7: stage_info(7, 10, 4, 2)}
    first = watch.snapshot()
    assert (first.active_tasks_done, first.active_tasks_total, first.stage_fraction) == (4, 10, 0.4)
    # stage 7 finished unseen; stage 8 of the next job started
    tracker.jobs, tracker.active = [4], [8]
    tracker.stages.update({7: stage_info(7, 10, 10), 8: stage_info(8, 6, 3, 2)})
    second = watch.snapshot()
    assert (second.tasks_done, second.tasks_total, second.stages_seen) == (13, 16, 2)
    assert second.stages == (StageProgress(8, "stage 8", 6, 3, 2, 0),)
    assert snapshot(context).tasks_total == 6


def test_the_bar_fills_by_phase_and_sweep():
    fit = WatchedFit.__new__(WatchedFit)
    fit.model = SimpleNamespace(params=SimpleNamespace(iterations=4))
    half_stage = SparkProgress(stages=(StageProgress(1, "s", 4, 2, 2, 0),))
    state = SimpleNamespace(phase="fitting", sweeps_done=1, fraction=0.0)
    # splitting done, then (1 sweep + half a stage) of 4 sweeps of the fit's share
    expected = PHASE_SHARES["splitting"] + PHASE_SHARES["fitting"] * 1.5 / 4
    assert fit._phase_progress(state, half_stage) == pytest.approx(expected)
    state.phase = "evaluating"
    assert fit._phase_progress(state, half_stage) == pytest.approx(0.9 + 0.1 * 0.5)
    state.phase = "done"
    assert fit._phase_progress(state, SparkProgress()) == 1.0
