"""Position bias: IPW recovers item quality that raw CTR confounds with position; swaps recover propensities."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.errors import DataError
from recsys.simulation import position_bias as pb
from recsys.simulation.clicks import examination
from recsys.simulation.world import World

PRESET = {p.key: p for p in pb.PRESETS}["position_bias"]


@pytest.fixture(scope="module")
def default_runs():
    return [PRESET(seed=seed) for seed in range(4)]


def test_ipw_ranks_items_closer_to_the_truth_than_naive_ctr(default_runs):
    for result in default_runs:
        summary = result.summary
        assert summary["tau_ipw"] > summary["tau_naive"] + 0.08
        assert summary["tau_ipw_estimated"] > summary["tau_naive"] + 0.05
        assert summary["tau_ipw"] > 0.85


def test_estimated_propensities_are_close_to_the_true_ones(default_runs):
    for result in default_runs:
        table = result.tables["Propensities"]
        true = table["true examination (relative to slot 1)"].to_numpy()
        estimated = table["estimated from swaps"].to_numpy()
        assert np.mean(np.abs(estimated - true)) < 0.08
        assert np.corrcoef(true, estimated)[0, 1] > 0.9
        assert result.summary["propensity_error"] == pytest.approx(np.mean(np.abs(estimated - true)[1:]))


def test_ranking_sharpens_as_the_log_grows(default_runs):
    frame = default_runs[0].rounds
    ipw = frame[frame["series"] == "IPW (true propensities)"]["kendall_tau"].to_numpy()
    assert ipw[-1] > ipw[0]
    assert frame["page_views"].max() == 20 * 5000


def test_swap_estimator_recovers_examination_from_a_hand_built_log():
    # items of relevance a = 0.4 at slot 0 and b = 0.1 at slot k, examination 1.0 and 0.5:
    # unswapped CTRs 0.4 and 0.05, swapped 0.1 and 0.2 -> (0.05 + 0.2) / (0.4 + 0.1) = 0.5
    log = pb.ImpressionLog.empty(n_items=3, n_slots=2)
    log.plain_views = 1000
    log.plain_clicks[:] = [400, 50]
    log.swap_views[:] = [0, 500]
    log.swap_clicks_top[:] = [0, 50]
    log.swap_clicks_k[:] = [0, 100]
    assert pb.estimated_propensities(log).tolist() == pytest.approx([1.0, 0.5])


def test_record_counts_impressions_clicks_and_swaps():
    log = pb.ImpressionLog.empty(n_items=4, n_slots=3)
    pages = np.array([[0, 1, 2], [3, 1, 0]])
    clicks = np.array([[True, False, True], [False, True, False]])
    partner = np.array([0, 2])
    pb.record(log, pages, clicks, partner)
    assert log.shown.sum() == 6 and log.shown[1, 1] == 2
    assert log.clicks[0, 0] == 1 and log.clicks[2, 2] == 1 and log.clicks[1, 1] == 1
    assert log.plain_views == 1 and log.plain_clicks.tolist() == [1, 0, 1]
    assert log.swap_views.tolist() == [0, 0, 1]
    assert log.swap_clicks_top.tolist() == [0, 0, 0] and log.swap_clicks_k.tolist() == [0, 0, 0]
    assert pb.item_ctr(log).tolist()[:3] == pytest.approx([0.5, 0.5, 1.0])
    assert np.isnan(pb.item_ctr(pb.ImpressionLog.empty(2, 1))).all()


def test_swaps_only_move_the_first_slot():
    rng = np.random.default_rng(0)
    pages = np.tile(np.arange(6), (2000, 1))
    partner = pb.swap_first_slot(rng, pages, swap_fraction=0.25)
    swapped = partner > 0
    assert 0.2 < swapped.mean() < 0.3
    assert (pages[swapped, 0] == partner[swapped]).all()
    assert (pages[swapped, partner[swapped]] == 0).all()
    assert (pages[~swapped] == np.arange(6)).all()
    assert np.sort(pages, axis=1).tolist() == np.tile(np.arange(6), (2000, 1)).tolist()


def test_without_position_effects_naive_and_ipw_agree():
    result = PRESET(seed=1, examination_kind="none", rounds=4)
    summary = result.summary
    assert summary["tau_naive"] == pytest.approx(summary["tau_ipw"])
    assert result.tables["Propensities"]["true examination (relative to slot 1)"].eq(1.0).all()


def test_the_logging_policy_favours_popular_items_at_the_top():
    rng = np.random.default_rng(0)
    scores = np.linspace(2, -2, 20)
    pages = pb.logging_pages(rng, scores, 3000, 6, randomisation=0.3)
    assert (pages[:, 0] == 0).mean() > 0.5
    mean_slot_of_second = np.mean(np.argmax(pages == 1, axis=1)[np.any(pages == 1, axis=1)])
    assert mean_slot_of_second < 2.5


def test_preset_is_deterministic_and_the_takeaway_quotes_its_numbers(default_runs):
    first = default_runs[1]
    again = PRESET(seed=1)
    assert first.rounds.equals(again.rounds)
    assert first.summary == again.summary
    assert not first.rounds.equals(default_runs[2].rounds)
    summary = first.summary
    for key in ("tau_naive", "tau_ipw", "tau_ipw_estimated", "propensity_error"):
        assert f"{summary[key]:.2f}" in first.takeaway
    assert f"{summary['page_views']:,.0f}" in first.takeaway
    assert set(first.series) == set(pb.ESTIMATOR_LABELS.values())
    assert {"kendall_tau", "propensity_error"} <= set(first.metrics)
    ranking = first.tables["Item ranking"]
    assert ranking["true relevance"].is_monotonic_decreasing


def test_a_world_can_be_passed_in_and_bad_grids_are_refused():
    world = World.synthetic(100, 40, seed=3, base_rate=0.05)
    knobs = PRESET.knobs(rounds=3, page_views_per_round=500, grid_rows=2, grid_cols=5)
    seen = []
    result = pb.run_position_bias(knobs, seed=0, world=world,
                                  progress=lambda done, total, latest: seen.append(done))
    assert seen == [1, 2, 3]
    assert len(result.tables["Item ranking"]) == 40
    expected = examination("grid", 2, 5).ravel()
    assert result.tables["Propensities"]["true examination (relative to slot 1)"].to_numpy() == pytest.approx(expected)
    with pytest.raises(DataError, match="tiles but the catalogue"):
        pb.run_position_bias(PRESET.knobs(grid_rows=6, grid_cols=8, rounds=2), seed=0, world=world)
