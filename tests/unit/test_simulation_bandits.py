"""A/B test vs bandits: regret, false positives, the power calculator and the preset's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.data.errors import DataError
from recsys.data.synthetic import make_dataset
from recsys.models import create
from recsys.simulation import bandits
from recsys.simulation.world import World


def _default_experiment(runs: int = 60) -> bandits.Experiment:
    knobs = bandits.BanditKnobs()
    planned = bandits.sample_size(knobs.rate_1, knobs.planned_lift, knobs.alpha, knobs.target_power)
    return bandits.Experiment(rates=bandits.knob_rates(knobs), rounds=knobs.rounds,
                              visitors_per_round=knobs.visitors_per_round, runs=runs, planned_per_arm=planned)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thompson_regret_below_fixed_ab_split_on_default_arms(seed):
    experiment = _default_experiment()
    frame, states = bandits.simulate(experiment, ["ab_fixed", "thompson"], seed=seed)
    thompson, ab = states["thompson"].regret.mean(), states["ab_fixed"].regret.mean()
    # the split spends ~18k visitors per arm at a 0.006 gap: at least 100 clicks lost
    assert ab > 100
    assert thompson < 0.6 * ab
    last = frame[frame["round"] == experiment.rounds].set_index("series")
    assert last.loc["Thompson sampling", "traffic_share_best"] > last.loc["A/B test (fixed horizon)",
                                                                          "traffic_share_best"]


def test_regret_grows_and_traffic_moves_to_the_best_arm():
    experiment = _default_experiment(runs=50)
    frame, _ = bandits.simulate(experiment, ["thompson", "ab_fixed"], seed=3)
    thompson = frame[frame["series"] == "Thompson sampling"]
    assert np.all(np.diff(thompson["cumulative_regret"]) >= 0)
    assert thompson["traffic_share_best"].iloc[-1] > thompson["traffic_share_best"].iloc[0] + 0.2
    ab = frame[frame["series"] == "A/B test (fixed horizon)"]
    # an equal split until the planned size: half the traffic on the best arm, and no decision yet
    planned_rounds = math.ceil(experiment.planned_per_arm / (experiment.visitors_per_round / 2))
    assert ab["traffic_share_best"].iloc[: planned_rounds - 1].eq(0.5).all()
    assert ab["decided"].iloc[: planned_rounds - 1].eq(0).all()
    assert ab["decided"].iloc[-1] > 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_horizon_false_positive_rate_near_alpha_and_peeking_inflates_it(seed):
    fixed = bandits.false_positive_rate(1000, p=0.04, n_per_arm=20_000, n_peeks=20, alpha=0.05, seed=seed)
    peeking = bandits.false_positive_rate(1000, p=0.04, n_per_arm=20_000, n_peeks=20, alpha=0.05,
                                          peeking=True, seed=seed)
    assert 0.03 <= fixed <= 0.07
    assert peeking > fixed + 0.08


def test_sample_size_matches_the_textbook_value():
    # p1 = 0.10, p2 = 0.15, alpha = 0.05 two-sided, power 0.8 (Fleiss, no continuity correction):
    # (1.959964 * sqrt(2 * 0.125 * 0.875) + 0.841621 * sqrt(0.09 + 0.1275))^2 / 0.05^2 = 685.6 -> 686
    assert bandits.sample_size(0.10, 0.5, alpha=0.05, power=0.8) == 686
    assert bandits.power(0.10, 0.5, 686, alpha=0.05) == pytest.approx(0.800, abs=0.002)
    # more power or a smaller lift needs more visitors
    assert bandits.sample_size(0.10, 0.5, power=0.9) > 686
    assert bandits.sample_size(0.10, 0.25) > 2.5 * 686


@pytest.mark.parametrize("n_per_arm", [5_000, 17_943])
def test_simulated_power_agrees_with_the_formula(n_per_arm):
    formula = bandits.power(0.04, 0.15, n_per_arm)
    runs = 4000
    simulated = bandits.empirical_power(0.04, 0.15, n_per_arm, n_runs=runs, seed=11)
    standard_error = math.sqrt(formula * (1 - formula) / runs)
    assert abs(simulated - formula) < 3 * standard_error


def test_two_proportion_pvalue_by_hand_and_without_data():
    # 60/1000 vs 40/1000: pooled 0.05, se = sqrt(0.05 * 0.95 * 0.002) = 0.009747, z = 2.0520
    p = bandits.two_proportion_pvalue(60, 1000, 40, 1000)
    assert float(p) == pytest.approx(0.04016, abs=2e-4)
    assert float(bandits.two_proportion_pvalue(0, 0, 5, 100)) == 1.0


def test_ab_decision_needs_the_leader_significant_against_every_arm():
    clicks = np.array([[40, 80, 75], [40, 80, 40]])
    shown = np.full((2, 3), 1000)
    significant, leader = bandits.ab_decision(clicks, shown, alpha=0.05)
    assert leader.tolist() == [1, 1]
    assert significant.tolist() == [False, True]


def test_arm_rates_from_rankings_is_the_chance_of_any_click():
    relevance = np.array([[0.5, 0.1, 0.0], [0.2, 0.2, 0.4]])
    examine = np.array([1.0, 0.5])
    good = np.array([[0, 1], [2, 0]])
    poor = np.array([[2, 1], [1, 0]])
    rates = bandits.arm_rates_from_rankings(relevance, [good, poor], examine)
    # good: user 0: 1 - 0.5 * 0.95 = 0.525, user 1: 1 - 0.6 * 0.9 = 0.46
    assert rates[0] == pytest.approx((0.525 + 0.46) / 2)
    # poor: user 0: 1 - 1.0 * 0.95 = 0.05, user 1: 1 - 0.8 * 0.9 = 0.28
    assert rates[1] == pytest.approx((0.05 + 0.28) / 2)
    with pytest.raises(DataError, match="ranking"):
        bandits.arm_rates_from_rankings(relevance, [good, poor[:1]], examine)


def test_arm_rates_in_world_place_two_trained_models_as_arms():
    dataset = make_dataset(150, 80, seed=4)
    truth_model = create("ease").fit(dataset)
    world = World.from_model(truth_model, dataset)
    popularity = create("pop").fit(dataset)
    rates = bandits.arm_rates_in_world([truth_model, popularity], world, k=8)
    # the model the world is built from ranks by the truth itself, so it must beat popularity
    assert rates[0] > rates[1] > 0
    assert rates.max() < 1
    # a sharper examination curve lowers both arms: fewer tiles are looked at
    steep = bandits.arm_rates_in_world([truth_model, popularity], world, k=8, col_decay=0.3)
    assert (steep < rates).all()
    subset = np.arange(0, 150, 3)
    small_world = World.from_model(truth_model, dataset, users=subset)
    assert bandits.arm_rates_in_world([truth_model, popularity], small_world, k=8, users=subset)[0] > 0
    with pytest.raises(DataError, match="one dataset code per person"):
        bandits.arm_rates_in_world([truth_model, popularity], small_world, k=8, users=subset[:10])


def test_preset_is_deterministic_and_the_takeaway_quotes_its_numbers():
    preset = {p.key: p for p in bandits.PRESETS}["bandit_vs_ab"]
    small = dict(rounds=20, runs=30, null_runs=200)
    first, again = preset(seed=5, **small), preset(seed=5, **small)
    assert first.rounds.equals(again.rounds)
    assert first.summary == again.summary
    other = preset(seed=6, **small)
    assert not first.rounds.equals(other.rounds)
    summary = first.summary
    assert f"{summary['regret_thompson']:.0f}" in first.takeaway
    assert f"{summary['regret_ab_fixed']:.0f}" in first.takeaway
    assert f"{summary['fpr_peeking']:.1%}" in first.takeaway
    assert set(first.series) == set(bandits.POLICY_LABELS.values())
    assert {"cumulative_regret", "traffic_share_best", "clicks", "decided"} <= set(first.metrics)
    assert {"Power calculation", "False positives over A/A runs", "Policies"} <= set(first.tables)


def test_preset_reports_progress_every_round_and_takes_arm_rates():
    seen = []
    result = bandits.run_bandit_vs_ab(bandits.BanditKnobs(rounds=5, runs=10, null_runs=100), seed=0,
                                      progress=lambda done, total, latest: seen.append((done, total)),
                                      arm_rates=[0.05, 0.02, 0.03], arm_labels=["run A", "run B", "run C"])
    assert seen == [(r, 5) for r in range(1, 6)]
    assert result.tables["Arms"]["arm"].tolist() == ["run A", "run B", "run C"]
    assert result.tables["Arms"]["best"].tolist() == [True, False, False]


def test_equal_arms_cost_nothing_and_bad_arms_are_refused():
    experiment = bandits.Experiment(rates=np.array([0.05, 0.05]), rounds=5, visitors_per_round=1000, runs=20)
    frame, _ = bandits.simulate(experiment, seed=0)
    assert frame["cumulative_regret"].eq(0).all()
    assert frame["traffic_share_best"].eq(1).all()
    with pytest.raises(DataError, match="between 2 and"):
        bandits.Experiment(rates=np.array([0.05]), rounds=5, visitors_per_round=1000, runs=20)
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        bandits.Experiment(rates=np.array([0.05, 1.2]), rounds=5, visitors_per_round=1000, runs=20)
    with pytest.raises(DataError, match="lift"):
        bandits.sample_size(0.5, 1.5)


def test_posterior_draws_match_the_beta_at_small_and_large_counts():
    rng = np.random.default_rng(0)
    a = np.array([[2.0, 45.0], [300.0, 5.0]])
    b = np.array([[40.0, 900.0], [6000.0, 3.0]])
    draws = bandits.posterior_draws(rng, a, b, 100_000)
    mean, variance = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert draws.mean(axis=0) == pytest.approx(mean, rel=0.01)
    assert draws.var(axis=0) == pytest.approx(variance, rel=0.03)
    # 80/1500 against 60/1500: the better arm is best with chance ~0.96 (normal approximation of the gap)
    chance = bandits.probability_best(rng, np.array([[60, 80]]), np.array([[1500, 1500]]), draws=20_000)
    assert chance[0, 1] == pytest.approx(0.958, abs=0.01)
    assert chance.sum() == pytest.approx(1.0)
