"""The overfitting lesson: validation NDCG peaks before the last epoch while the loss keeps falling, early
stopping read off the curve stops where the training loop stops, and hosted lessons train within budget."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys import estimate
from recsys.data.errors import DataError
from recsys.data.split import SplitConfig, make_split
from recsys.experiment import fit_model
from recsys.lessons import Context, lessons
from recsys.lessons import overfitting as ov
from recsys.lessons.sparsity import generated_world


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the machine's cores are shared: one torch thread per test module, restored afterwards
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def default_result():
    return lessons()["overfitting_epochs"].run()


def test_validation_peaks_before_the_last_epoch_while_the_loss_keeps_falling(default_result):
    table = next(iter(default_result.tables.values()))
    f = default_result.figures
    assert len(table) == ov.OverfitKnobs().epochs
    assert table[ov.LOSS].is_monotonic_decreasing  # the training loss falls every epoch
    best = int(table[ov.VALID].idxmax())
    assert 0 < best < len(table) - 1  # rises first, then falls: the peak is in the middle
    assert f["best_epoch"] == table["epoch"].iloc[best] < f["epochs"]
    assert f["last_validation"] < (1 - ov.FALL_SHARE) * f["best_validation"]
    assert f["last_loss"] < f["loss_at_best"] < f["first_loss"]
    assert default_result.correct == 1
    assert f"epoch {f['best_epoch']:.0f} ({f['best_validation']:.3f})" in default_result.explanation
    assert f"at epoch {f['stop_epoch']:.0f}" in default_result.explanation


def test_early_stopping_read_off_the_curve_stops_where_the_training_loop_stops(default_result):
    knobs = ov.OverfitKnobs()
    split = make_split(generated_world(knobs.users, knobs.items, 7), SplitConfig.coerce(ov.SPLIT))
    stopped, _ = fit_model(ov.MODEL, {**ov.run_params(knobs), "patience": knobs.patience}, split.train,
                           valid=split.valid)
    f = default_result.figures
    assert stopped.stopped_early and stopped.epochs_run_ == f["stop_epoch"] < f["epochs"]
    assert stopped.best_epoch_ == f["best_epoch"]
    assert f["epochs_saved"] == f["epochs"] - f["stop_epoch"]


def test_stopping_epoch_and_verdict_follow_the_curve():
    assert ov.stopping_epoch([0.1, 0.3, 0.2, 0.2, 0.25], patience=3) == 5
    assert ov.stopping_epoch([0.1, 0.3, 0.2, 0.2, 0.25], patience=2) == 4
    assert ov.stopping_epoch([0.1, 0.2, 0.3], patience=1) == 3  # never worse: trains to the end

    def table(values):
        return pd.DataFrame({"epoch": range(1, len(values) + 1), ov.VALID: values, ov.LOSS: 0.0})

    assert ov.verdict(table([0.10, 0.20, 0.15, 0.12])) == 1
    assert ov.verdict(table([0.10, 0.15, 0.18, 0.20])) == 0
    assert ov.verdict(table([0.200, 0.202, 0.199, 0.201])) == 2
    assert ov.verdict(table([0.10, 0.20, 0.199])) == 0  # a dip within noise is no fall


def test_a_stored_run_gives_the_same_curve_without_training(store):
    first = Context(store=store)
    trained = lessons()["overfitting_epochs"].run(first, epochs=6)
    assert len(first.fits) == 1
    again = Context(store=store)
    reused = lessons()["overfitting_epochs"].run(again, epochs=6)
    assert again.fits == []
    pd.testing.assert_frame_equal(next(iter(reused.tables.values())), next(iter(trained.tables.values())))


def test_hosted_lessons_refuse_a_training_over_the_budget_before_it_starts(store, monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setattr(estimate, "LONG_FIT_SECONDS", 1e-3)
    context = Context(store=store, hosted=True)
    with pytest.raises(DataError, match="training may take on this shared server.*A setting that fits: epochs"):
        lessons()["overfitting_epochs"].run(context, epochs=5)
    assert context.fits == [] and store.list() == []  # nothing was trained or begun

    # the memory budget is the Train page's too
    monkeypatch.setattr(estimate, "LONG_FIT_SECONDS", 1e6)
    monkeypatch.setenv("RECSYS_LIMIT_TRAINING_BYTES", "1000")
    with pytest.raises(DataError, match="of memory to train on this data"):
        lessons()["overfitting_epochs"].run(context, epochs=5)
    assert store.list() == []


def test_hosted_lessons_reuse_stored_runs_whatever_their_cost(store, monkeypatch):
    lessons()["overfitting_epochs"].run(Context(store=store), epochs=4)
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setattr(estimate, "LONG_FIT_SECONDS", 1e-3)
    context = Context(store=store, hosted=True)
    assert lessons()["overfitting_epochs"].run(context, epochs=4).figures["epochs"] == 4
    assert context.fits == []


def test_the_setup_trains_the_run_the_lesson_reads_so_a_prepared_workshop_trains_nothing():
    lesson = lessons()["overfitting_epochs"]
    assert lesson.setup.split == ov.SPLIT and lesson.setup.split["validation"] is True
    assert lesson.setup.runs == ((ov.MODEL, ov.run_params(ov.OverfitKnobs())),)
    assert lesson.setup.page == "train"  # where the same curves are drawn for the run
    keys = list(lessons())
    assert keys.index("and_taste") < keys.index("overfitting_epochs") < keys.index("autorec_mask")


def test_a_hosted_lesson_run_is_bounded_as_a_whole(store, monkeypatch):
    """Each new training's estimate counts against one training's budget for the whole lesson run."""
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    twenty = estimate.FitEstimate(fixed=20.0, per_epoch=None, epochs=None, scoring=0.0, sample_share=1.0,
                                  probe_seconds=0.0)
    monkeypatch.setattr(estimate, "estimate_fit", lambda *args, **kwargs: twenty)
    context = Context(store=store, hosted=True)
    with pytest.raises(DataError, match=r"PureSVD for about 20 s on this data, after about 1 min of its earlier"):
        lessons()["embedding_size"].run(context, sizes="2, 4, 8, 16")
    assert len(context.fits) == 3 and context.estimated_s == 60.0  # three fit in 60 s, the fourth never started
    # the three stored ones cost nothing the next time: the same lesson with three sizes runs
    again = Context(store=store, hosted=True)
    assert lessons()["embedding_size"].run(again, sizes="2, 4, 8").figures and again.fits == []
