"""Hyperparameter sweeps on the bundled sample: values, honest validation, known behaviour, cancellation."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data import load
from recsys.data.split import make_split, random_holdout
from recsys.evaluation import evaluate
from recsys.evaluation.sweep import FitCancelled, default_range, numeric_params, sweep, sweep_values
from recsys.models import create, registry


@pytest.fixture(scope="module")
def split():
    return make_split(load("sample"), "random", test_fraction=0.2, seed=42)


# ---------------------------------------------------------------------- values
def test_values_follow_the_parameter_metadata():
    # factors is marked log-scaled: 4, 16, 64 are evenly spaced on a log axis
    assert sweep_values("pure_svd", "factors", 4, 64, 3) == [4, 16, 64]
    assert sweep_values("pure_svd", "factors", 4, 64, 3, log=False) == [4, 34, 64]
    # integer rounding collapses duplicates on a narrow range
    assert sweep_values("item_knn", "k", 1, 3, 8, log=False) == [1, 2, 3]
    floats = sweep_values("item_knn", "shrinkage", 0.0, 100.0, 5)
    assert floats == pytest.approx([0.0, 25.0, 50.0, 75.0, 100.0])
    assert all(isinstance(v, float) for v in floats)
    assert sweep_values("ials", "reg", 0.1, 1000.0, 5, log=True) == pytest.approx([0.1, 1.0, 10.0, 100.0, 1000.0])


def test_default_ranges_are_accepted_for_every_numeric_parameter_of_every_model():
    checked = 0
    for key in registry:
        for meta in numeric_params(key):
            low, high = default_range(key, meta["name"])
            assert low < high, (key, meta["name"])
            values = sweep_values(key, meta["name"], low, high, 4)
            assert len(values) >= 2 and values[0] == pytest.approx(low) and values[-1] == pytest.approx(high)
            checked += 1
    assert checked > 20
    assert default_range("pure_svd", "factors") == (5, 80)  # default 20: a quarter to four times it


def test_bad_sweeps_say_what_to_change():
    with pytest.raises(ValueError, match="no numeric hyperparameter 'similarity'"):
        sweep_values("item_knn", "similarity", 1, 2, 3)  # a choice, not a number
    with pytest.raises(ValueError, match="at least 2 points"):
        sweep_values("pure_svd", "factors", 4, 64, 1)
    with pytest.raises(ValueError, match="smaller to a larger"):
        sweep_values("pure_svd", "factors", 64, 4, 3)
    with pytest.raises(ValueError, match=r"factors must lie in \[1, 2000\]"):
        sweep_values("pure_svd", "factors", 0, 64, 3)
    with pytest.raises(ValueError, match="must start above 0"):
        sweep_values("item_knn", "shrinkage", 0.0, 10.0, 3, log=True)
    assert "seed" not in [p["name"] for p in numeric_params("pure_svd")]  # a seed is not a knob to tune


# ---------------------------------------------------------------------- the sweep itself
def test_pure_svd_sweep_underfits_then_overfits_and_matches_a_direct_fit(split):
    frame = sweep("pure_svd", "factors", [2, 16, 64], split, "ndcg@10", seed=42)
    assert list(frame.columns) == ["value", "valid", "test", "loss", "fit_seconds"]
    assert list(frame["value"]) == [2, 16, 64]
    assert frame["loss"].isna().all()  # closed form: no training loss
    valid = dict(zip(frame["value"], frame["valid"]))
    # the course's picture: too few directions underfit, too many memorise the training histories
    assert valid[16] > valid[2] and valid[16] > valid[64]

    # each row is exactly a model fitted on train minus the carved-out validation items
    inner, held = random_holdout(split.train, test_fraction=0.1, seed=42)
    model = create("pure_svd", factors=16, seed=42).fit(inner)
    row = frame[frame["value"] == 16].iloc[0]
    assert row["valid"] == pytest.approx(evaluate(model, inner, held, k=[10], bootstrap=0).means["ndcg@10"])
    assert row["test"] == pytest.approx(evaluate(model, split.train, split.test, k=[10], bootstrap=0).means["ndcg@10"])

    again = sweep("pure_svd", "factors", [2, 16, 64], split, "ndcg@10", seed=42)
    assert np.array_equal(again[["valid", "test"]].to_numpy(), frame[["valid", "test"]].to_numpy())


def test_the_splits_own_validation_part_is_used_when_present():
    with_valid = make_split(load("sample"), "random", test_fraction=0.2, seed=42, validation=True)
    frame = sweep("item_knn", "k", [5, 50], with_valid, "recall@10")
    model = create("item_knn", k=50).fit(with_valid.train)
    expected = evaluate(model, with_valid.train, with_valid.valid, k=[10], bootstrap=0).means["recall@10"]
    assert frame.iloc[1]["valid"] == pytest.approx(expected)


def test_iterative_models_report_their_final_loss(split):
    frame = sweep("ials", "factors", [4, 16], split, params={"iterations": 2})
    assert np.isfinite(frame["loss"]).all() and (frame["loss"] > 0).all()
    inner, _ = random_holdout(split.train, test_fraction=0.1, seed=42)
    model = create("ials", factors=16, iterations=2).fit(inner)
    assert frame.iloc[1]["loss"] == pytest.approx(model.history_[-1]["loss"])
    # more factors fit the training matrix more closely
    assert frame.iloc[1]["loss"] < frame.iloc[0]["loss"]


def test_progress_reports_each_model_and_a_cancel_stops_the_sweep(split):
    seen = []
    sweep("pure_svd", "factors", [2, 8], split, progress=lambda step, total, info: seen.append((step, total, info)))
    assert seen[0] == (0, 2, {"value": 2})
    assert (1, 2, {"value": 8}) in seen
    assert seen[-1] == (2, 2, {})

    started = []

    def cancel_second(step, total, info):
        if step == 1:
            raise FitCancelled("stop")
        started.append(info.get("value"))

    with pytest.raises(FitCancelled):
        sweep("pure_svd", "factors", [2, 8, 32], split, progress=cancel_second)
    assert set(started) == {2}

    # a cancel during an epoch of an iterative model stops the sweep too
    def cancel_in_epoch(step, total, info):
        if "epoch" in info:
            raise FitCancelled("stop")

    with pytest.raises(FitCancelled):
        sweep("ials", "factors", [4, 8], split, params={"iterations": 3}, progress=cancel_in_epoch)


def test_unknown_metric_is_refused(split):
    with pytest.raises(ValueError, match="like 'ndcg@10'"):
        sweep("pure_svd", "factors", [2, 4], split, "accuracy")
