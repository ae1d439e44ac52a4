"""Online-half lessons: each teaches its effect through its Simulate preset over a couple of seeds,
and the feedback quotes this run's figures."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.lessons import Context, lessons, online
from recsys.simulation import presets

SEEDS = (0, 1)


def run(key: str, seed: int, **knobs):
    context = Context()
    result = lessons()[key].run(context, seed=seed, **knobs)
    assert context.fits == []  # a simulated world trains nothing through the store
    return result


def choice(key: str, result) -> str:
    return lessons()[key].choices[result.correct]


def test_every_online_lesson_is_listed_and_names_a_real_preset():
    found = lessons()
    available = presets.presets()
    for lesson in online.LESSONS:
        assert found[lesson.key] is lesson
        assert online.SIMULATION_OF[lesson.key] in available
        assert lesson.setup.page == "simulate" and lesson.setup.runs == ()


@pytest.mark.parametrize("seed", SEEDS)
def test_offline_winner_loses_with_people(seed):
    result = run("offline_up_clicks_flat", seed)
    f = result.figures
    assert f["offline_winner_ndcg"] > f["offline_loser_ndcg"] + 0.05
    assert f["offline_winner_utility"] < f["offline_loser_utility"]
    assert f["rounds_disagree"] >= f["rounds"] - 1
    assert choice("offline_up_clicks_flat", result) == "The model with the lower offline NDCG"
    assert f"{f['offline_winner_ndcg']:.3f}" in result.explanation
    assert f"{f['offline_loser_utility']:.3f}" in result.explanation


@pytest.mark.parametrize("seed", SEEDS)
def test_thompson_loses_fewer_clicks_than_the_ab_test(seed):
    result = run("ab_vs_bandit", seed)
    f = result.figures
    assert f["regret_thompson"] < 0.5 * f["regret_ab_fixed"]
    assert choice("ab_vs_bandit", result) == "Thompson sampling"
    assert f"{f['regret_ab_fixed']:.0f} clicks" in result.explanation
    assert f"lost {f['regret_thompson']:.0f}" in result.explanation
    assert result.feedback(result.correct).startswith("Right.")


@pytest.mark.parametrize("seed", SEEDS)
def test_peeking_inflates_false_positives(seed):
    result = run("peeking", seed)
    f = result.figures
    assert abs(f["fpr_fixed"] - 0.05) < 0.03
    assert f["fpr_peeking"] > 3 * f["alpha"]
    assert choice("peeking", result) == "Well above alpha"
    assert f"{100 * f['fpr_peeking']:.1f} %" in result.explanation


@pytest.mark.parametrize("seed", SEEDS)
def test_nearline_fold_in_beats_the_stale_model(seed):
    result = run("nearline_updates", seed)
    f = result.figures
    assert f["static_last_share"] < f["static_first_share"] - 0.1  # drift makes the static model stale
    assert f["nearline_mean_share"] > f["static_mean_share"] + 0.01
    assert f["nearline_mean_share"] > 0.95 * f["retrain_mean_share"]
    assert choice("nearline_updates", result) == "Nearline fold-in of each new session"
    assert f"{100 * f['nearline_mean_share']:.1f} %" in result.explanation


@pytest.mark.parametrize("seed", SEEDS)
def test_continue_watching_updated_nearline_holds_the_resumed_titles(seed):
    result = run("continue_watching", seed)
    f = result.figures
    assert f["continue_watching_nearline"] > 2 * f["continue_watching_stale"]
    assert choice("continue_watching", result) == "The row updated as people watch"
    assert f"{100 * f['continue_watching_stale']:.1f} %" in result.explanation


def test_continue_watching_verdict_follows_the_knobs():
    result = run("continue_watching", 0, resume_rate=0.0, rounds=3)
    assert np.isnan(result.figures["continue_watching_nearline"]) and np.isnan(result.figures["continue_watching_stale"])
    assert choice("continue_watching", result) == "Both hold the same share"
    assert "resume rate of 0" in result.explanation


@pytest.mark.parametrize("seed", SEEDS)
def test_the_feedback_loop_narrows_exposure(seed):
    result = run("feedback_loop", seed)
    f = result.figures
    assert f["greedy_gini_last"] > f["greedy_gini_first"]
    assert f["greedy_coverage_last"] < 0.7 * f["greedy_coverage_first"]
    assert f["epsilon_greedy_gini_last"] < f["greedy_gini_last"]
    assert choice("feedback_loop", result).startswith("It narrows")
    assert f"{f['greedy_gini_last']:.2f}" in result.explanation
    assert f"{f['greedy_coverage_last']:.2f}" in result.explanation


@pytest.mark.parametrize("seed", SEEDS)
def test_ipw_ranks_items_closer_to_their_quality(seed):
    result = run("position_bias", seed)
    f = result.figures
    assert f["tau_ipw"] > f["tau_naive"] + 0.03
    assert choice("position_bias", result) == "Clicks weighted by 1 / examination (IPW)"
    assert f"{f['tau_naive']:.2f}" in result.explanation and f"{f['tau_ipw']:.2f}" in result.explanation
    assert {"round", "series", "kendall_tau"} <= set(result.tables["Rounds"].columns)
