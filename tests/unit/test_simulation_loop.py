"""The feedback loop: policies, per-round metrics, the narrowing a greedy loop causes, and the
offline-vs-online gap."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from recsys.data.errors import DataError
from recsys.simulation import loop, offline_online
from recsys.simulation.loop import (
    METRICS,
    ClickLog,
    LoopSettings,
    RoundState,
    homogenisation,
    offline_ndcg,
    run_loop,
    seed_log,
    top_share,
)
from recsys.simulation.world import World

SEEDS = (0, 1, 2, 3)
SMALL = dict(n_users=300, n_items=200, rounds=10)


@pytest.fixture(scope="module")
def world():
    return World.synthetic(150, 100, seed=7)


def _numbers_in(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)]


# ---------------------------------------------------------------------------- metrics
def test_homogenisation_is_jaccard_overlap():
    same = np.tile(np.arange(4), (5, 1))
    assert homogenisation(same, 20) == pytest.approx(1.0)
    disjoint = np.arange(20).reshape(5, 4)
    assert homogenisation(disjoint, 20) == 0.0
    # two lists sharing 2 of 6 distinct items: Jaccard 2 / 6
    assert homogenisation(np.array([[0, 1, 2, 3], [0, 1, 4, 5]]), 10) == pytest.approx(1 / 3)


def test_top_share_and_offline_ndcg():
    assert top_share(np.array([50, 30, 10, 10] + [0] * 96)) == pytest.approx(0.5)
    assert top_share(np.zeros(10)) == 0.0
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.9]])
    train = np.array([[True, False, False, False], [False, False, False, False]])
    held = np.array([[False, True, False, False], [False, True, False, False]])
    # user 0: item 1 ranks first once the training click is excluded; user 1: third of four
    expected = (1.0 + 1.0 / np.log2(4)) / 2
    assert offline_ndcg(scores, train, held, 3) == pytest.approx(expected)
    assert np.isnan(offline_ndcg(scores, train, np.zeros_like(held), 3))


# ---------------------------------------------------------------------------- policies
def _state(world, seed=0):
    rng = np.random.default_rng(seed)
    log = seed_log(world, 30, 0.2, rng)
    scores = loop.standardise_scores(loop.fit_scores("cooccurrence", log.train), log.clicks.sum(0))
    return RoundState(scores=loop.break_ties(scores, rng), excluded=log.clicks,
                      impressions=log.impressions, item_clicks=log.clicks.sum(0),
                      item_similarity=loop.content_similarity(world))


@pytest.mark.parametrize("policy", loop.POLICIES)
def test_policies_show_k_distinct_unclicked_items(world, policy):
    state = _state(world)
    shown = loop.POLICY_FUNCTIONS[policy](state, 8, LoopSettings(k=8), np.random.default_rng(1))
    assert shown.shape == (world.n_users, 8)
    assert (shown >= 0).all()
    assert all(len(set(row)) == 8 for row in shown)
    assert not np.take_along_axis(state.excluded, shown, axis=1).any()


def test_policies_reduce_to_greedy_without_exploration(world):
    state = _state(world, seed=3)
    rng = np.random.default_rng(0)
    best = loop.greedy(state, 6, LoopSettings(), rng)
    no_explore = LoopSettings(epsilon=0.0, exploration=0.0, mmr_lambda=1.0, tail_slots=0)
    for policy in ("epsilon_greedy", "thompson", "ucb", "mmr", "long_tail_floor"):
        np.testing.assert_array_equal(loop.POLICY_FUNCTIONS[policy](state, 6, no_explore, rng), best, err_msg=policy)


def test_long_tail_floor_fills_its_slots_from_the_less_clicked_half(world):
    state = _state(world, seed=2)
    shown = loop.long_tail_floor(state, 10, LoopSettings(tail_slots=4), np.random.default_rng(0))
    order = np.lexsort((state.impressions, state.item_clicks))
    tail = set(order[: world.n_items // 2].tolist())
    assert all(item in tail for item in shown[:, 6:].ravel())
    np.testing.assert_array_equal(shown[:, :6], loop.greedy(state, 6, LoopSettings(), None))


def test_epsilon_greedy_explores_about_epsilon_of_slots(world):
    state = _state(world, seed=4)
    best = loop.greedy(state, 10, LoopSettings(), None)
    shown = loop.epsilon_greedy(state, 10, LoopSettings(epsilon=0.3), np.random.default_rng(2))
    assert (shown != best).mean() == pytest.approx(0.3, abs=0.05)


def test_mmr_lists_are_less_alike_than_greedy(world):
    state = _state(world, seed=5)
    similarity = state.item_similarity
    greedy_lists = loop.greedy(state, 8, LoopSettings(), None)
    mmr_lists = loop.mmr(state, 8, LoopSettings(mmr_lambda=0.5), None)

    def mean_pair_similarity(lists):
        sims = similarity[lists[:, :, None], lists[:, None, :]]
        return (sims.sum(axis=(1, 2)) - 8).mean() / (8 * 7)

    assert mean_pair_similarity(mmr_lists) < mean_pair_similarity(greedy_lists) - 0.05


# ---------------------------------------------------------------------------- the loop
def test_seed_log_records_random_exposures(world):
    log = seed_log(world, 20, 0.25, np.random.default_rng(0))
    assert log.impressions.sum() == 20 * world.n_users
    assert not log.ever_shown.any()
    assert log.clicks.sum() > 0
    assert log.held_out.mean() == pytest.approx(0.25, abs=0.03)
    assert isinstance(log.copy(), ClickLog) and log.copy().clicks is not log.clicks


def test_run_loop_is_deterministic_and_complete(world):
    settings = LoopSettings(rounds=3, k=5)
    calls = []
    first = run_loop(world, ["greedy", "thompson"], settings, seed=4,
                     progress=lambda done, total, latest: calls.append((done, total, sorted(latest))))
    again = run_loop(world, ["greedy", "thompson"], settings, seed=4)
    pd.testing.assert_frame_equal(first, again)
    other = run_loop(world, ["greedy", "thompson"], settings, seed=5)
    assert not first.equals(other)
    assert list(first.columns) == ["round", "series", *METRICS]
    assert len(first) == 6 and first["round"].tolist() == [1, 1, 2, 2, 3, 3]
    assert calls == [(r, 3, ["Greedy", "Thompson"]) for r in (1, 2, 3)]
    metrics = first[list(METRICS)]
    shares = metrics.drop(columns=["offline_ndcg"])
    assert ((shares >= 0) & (shares <= 1)).all().all()


def test_run_loop_with_a_registered_model(world):
    rounds = run_loop(world, ["greedy"], LoopSettings(rounds=2, k=5, model="item_knn"), seed=0)
    assert rounds["true_utility"].gt(0).all()


def test_run_loop_rejects_bad_input(world):
    with pytest.raises(DataError, match="policies"):
        run_loop(world, ["greediest"], LoopSettings(rounds=1))
    with pytest.raises(DataError, match="too large"):
        run_loop(world, ["greedy"], LoopSettings(rounds=1, k=80))
    with pytest.raises(DataError):
        LoopSettings(epsilon=1.5)


def test_true_utility_is_the_world_relevance_of_what_was_shown(world):
    """A policy that shows each person the truly best items has the top utility a round can have."""
    truth = world.truth

    def oracle(state, k, settings, rng):
        return loop.top_unseen(truth, state.excluded, k)

    rounds = run_loop(world, ["greedy", "oracle"], LoopSettings(rounds=2, k=5), seed=1, custom={"oracle": oracle})
    first = rounds[rounds["round"] == 1].set_index("series")
    best_mean = np.sort(truth, axis=1)[:, -5:].mean()
    assert first.loc["oracle", "true_utility"] <= best_mean + 1e-9
    assert first.loc["oracle", "true_utility"] > 0.75 * best_mean
    assert first.loc["oracle", "true_utility"] > first.loc["Greedy", "true_utility"]


@pytest.mark.parametrize("seed", SEEDS)
def test_greedy_narrows_exposure_and_exploration_slows_it(seed):
    result = loop.PRESETS[0](seed=seed, **SMALL)
    rounds = result.rounds.set_index(["series", "round"])
    first, last = 1, SMALL["rounds"]
    greedy_gini = rounds.loc[("Greedy", last), "exposure_gini"]
    greedy_coverage = rounds.loc[("Greedy", last), "coverage"]
    assert greedy_gini > rounds.loc[("Greedy", first), "exposure_gini"]
    assert greedy_coverage < rounds.loc[("Greedy", first), "coverage"] - 0.15
    for explorer in ("ε-greedy", "Thompson"):
        assert rounds.loc[(explorer, last), "exposure_gini"] < greedy_gini - 0.02
        assert rounds.loc[(explorer, last), "coverage"] > greedy_coverage
        assert rounds.loc[(explorer, last), "cumulative_coverage"] >= rounds.loc[("Greedy", last), "cumulative_coverage"]


@pytest.mark.parametrize("key", ["popularity_trap", "exploration_tail"])
def test_takeaway_quotes_the_summary(key):
    preset = {p.key: p for p in loop.PRESETS}[key]
    result = preset(seed=1, n_users=120, n_items=80, rounds=3)
    assert result.preset == key and result.series
    quoted = _numbers_in(result.takeaway)
    for name, value in result.summary.items():
        assert any(abs(value - number) < 1e-9 for number in quoted), name
    # the figures are this run's: the summary is read back from the per-round table
    greedy = result.rounds[result.rounds["series"] == "Greedy"]
    assert result.summary[next(iter(result.summary))] == pytest.approx(
        round(float(greedy[_summary_metric(key)].iloc[0 if key == "popularity_trap" else -1]), 2))


def _summary_metric(key: str) -> str:
    return "exposure_gini" if key == "popularity_trap" else "coverage"


@pytest.mark.parametrize("seed", (1, 2))
def test_exploration_tail_floor_and_mmr_widen_the_catalogue(seed):
    result = {p.key: p for p in loop.PRESETS}["exploration_tail"](seed=seed, **SMALL)
    s = result.summary
    assert s["long_tail_floor_tail_share_last"] > s["greedy_tail_share_last"]
    assert s["long_tail_floor_coverage_last"] > s["greedy_coverage_last"]
    assert s["mmr_coverage_last"] > s["greedy_coverage_last"]


def test_preset_knobs_are_validated():
    with pytest.raises(DataError):
        loop.PRESETS[0](seed=0, epsilon=2.0)
    with pytest.raises(DataError):
        loop.PRESETS[0](seed=0, model="gpt")


# ---------------------------------------------------------------------------- offline vs online
OFFLINE_SMALL = dict(n_users=300, n_items=200, rounds=6)


@pytest.mark.parametrize("seed", SEEDS)
def test_offline_winner_loses_true_utility(seed):
    result = offline_online.PRESETS[0](seed=seed, **OFFLINE_SMALL)
    s = result.summary
    assert s["a_offline_ndcg"] > s["b_offline_ndcg"] + 0.02
    assert s["a_true_utility"] < s["b_true_utility"]
    # and round by round, not only on average
    wide = result.rounds.pivot(index="round", columns="series", values=["offline_ndcg", "true_utility"])
    assert (wide["offline_ndcg"]["Co-click counts"] > wide["offline_ndcg"]["Item-item kNN"]).all()
    assert (wide["true_utility"]["Co-click counts"] < wide["true_utility"]["Item-item kNN"]).mean() >= 0.8


def test_offline_online_takeaway_and_table():
    result = offline_online.PRESETS[0](seed=3, n_users=150, n_items=100, rounds=3, warmup_rounds=2)
    assert result.preset == "offline_vs_online"
    assert result.series == ["Co-click counts", "Item-item kNN"]
    assert list(result.rounds.columns) == ["round", "series", *offline_online.METRICS]
    quoted = _numbers_in(result.takeaway)
    for name, value in result.summary.items():
        assert any(abs(value - number) < 1e-9 for number in quoted), name
    means = result.rounds.groupby("series")["offline_ndcg"].mean()
    assert result.summary["a_offline_ndcg"] == pytest.approx(round(means["Co-click counts"], 3))
    # the sentence names the offline winner first and says whether people agreed
    winner = "Co-click counts" if means["Co-click counts"] >= means["Item-item kNN"] else "Item-item kNN"
    assert result.takeaway.startswith(f"On the logged clicks {winner}")


def test_offline_online_is_deterministic_and_validated():
    first = offline_online.PRESETS[0](seed=1, n_users=120, n_items=80, rounds=2, warmup_rounds=1)
    again = offline_online.PRESETS[0](seed=1, n_users=120, n_items=80, rounds=2, warmup_rounds=1)
    pd.testing.assert_frame_equal(first.rounds, again.rounds)
    assert first.takeaway == again.takeaway
    with pytest.raises(DataError, match="different"):
        offline_online.PRESETS[0](seed=0, candidate_a="pop", candidate_b="pop", rounds=2)


def test_loop_runs_on_a_world_built_from_a_model():
    """A trained model taken as the truth: no latent item descriptions, so MMR falls back to the
    model's own view of which items are alike."""
    from recsys.data.synthetic import make_dataset
    from recsys.models import create

    dataset = make_dataset(120, 80, seed=2)
    world = World.from_model(create("item_knn").fit(dataset), dataset)
    assert loop.content_similarity(world) is None
    rounds = run_loop(world, ["greedy", "mmr"], LoopSettings(rounds=3, k=5), seed=0)
    assert rounds["series"].unique().tolist() == ["Greedy", "MMR diversity"]
    assert rounds["true_utility"].between(0, 1).all()
    assert rounds["offline_ndcg"].notna().all()
    # MMR's lists differ from greedy's from the first round on
    first = rounds[rounds["round"] == 1].set_index("series")
    assert first.loc["MMR diversity", "homogenisation"] != first.loc["Greedy", "homogenisation"]


# ---------------------------------------------------------------------------- a trained run as the system's model
@pytest.fixture(scope="module")
def dataset_world():
    """A small generated dataset, a world whose truth is one run's scores on a subset of its people, and
    those people's dataset codes."""
    from recsys.data.synthetic import make_dataset
    from recsys.models import create

    dataset = make_dataset(160, 90, seed=4)
    users = np.arange(0, 160, 2)
    world = World.from_model(create("pure_svd").fit(dataset), dataset, users=users)
    return dataset, world, users


def test_auto_mode_refits_fast_models_and_uses_slow_ones_as_a_prior(dataset_world):
    from recsys.models import create

    dataset, _, users = dataset_world
    knn, svd = create("item_knn").fit(dataset), create("pure_svd").fit(dataset)
    assert loop.TrainedPolicy(knn, users=users).resolved_mode == "refit"
    assert loop.TrainedPolicy(svd, users=users).resolved_mode == "prior"
    assert loop.TrainedPolicy(svd).resolved_mode == "refit"  # no dataset people in the world: nothing to score
    assert loop.TrainedPolicy(svd, users=users, mode="refit").resolved_mode == "refit"
    with pytest.raises(DataError, match="Unknown mode"):
        loop.TrainedPolicy(svd, mode="sometimes")
    with pytest.raises(DataError, match="no fitted model"):
        loop.TrainedPolicy(create("pure_svd"))


def test_a_refitted_run_is_its_model_and_params_retrained_on_the_log(world):
    """Refit mode in the synthetic world: the run's key and hyperparameters, retrained every round."""
    from recsys.data.synthetic import make_dataset
    from recsys.models import create

    elsewhere = make_dataset(60, 40, seed=1)  # a run of another dataset: only its algorithm travels
    settings = LoopSettings(rounds=3, k=5)
    default = loop.TrainedPolicy(create("user_knn").fit(elsewhere), mode="refit")
    with_default = loop.run_loop_with_trained(world, default, ["greedy"], settings, seed=3)
    same = run_loop(world, ["greedy"], dataclasses.replace(settings, model="user_knn"), seed=3)
    pd.testing.assert_frame_equal(with_default, same)
    # its own hyperparameters are used: three neighbours rank differently from the default hundred
    tuned = loop.TrainedPolicy(create("user_knn", k=3).fit(elsewhere), mode="refit")
    with_tuned = loop.run_loop_with_trained(world, tuned, ["greedy"], settings, seed=3)
    assert not with_tuned["exposure_gini"].equals(with_default["exposure_gini"])


def test_a_run_as_a_prior_keeps_what_it_learned_from_the_dataset(dataset_world):
    """The world's truth is PureSVD's; with that same run as the prior, greedy's first lists are truly
    better than the co-click model's built on the random seed log alone."""
    from recsys.models import create

    dataset, world, users = dataset_world
    truth_run = create("pure_svd").fit(dataset)
    settings = LoopSettings(rounds=2, k=5)
    prior = loop.TrainedPolicy(truth_run, users=users, mode="prior", log_weight=0.0)
    np.testing.assert_allclose(prior.prior_scores(world), world.affinity, atol=1e-9)
    with_prior = loop.run_loop_with_trained(world, prior, ["greedy"], settings, seed=0)
    plain = run_loop(world, ["greedy"], settings, seed=0)
    assert with_prior["true_utility"].iloc[0] > plain["true_utility"].iloc[0] + 0.02
    # the log's part is blended in: a weighted run differs from the prior alone
    blended = loop.TrainedPolicy(truth_run, users=users, mode="prior", log_weight=1.0)
    assert not loop.run_loop_with_trained(world, blended, ["greedy"], settings, seed=0).equals(with_prior)


def test_a_prior_needs_the_datasets_people(world, dataset_world):
    from recsys.models import create

    dataset, dataset_world_, users = dataset_world
    svd = create("pure_svd").fit(dataset)
    with pytest.raises(DataError, match="world of its dataset's people"):
        loop.run_loop_with_trained(world, loop.TrainedPolicy(svd, mode="prior"), ["greedy"], LoopSettings(rounds=1))
    with pytest.raises(DataError, match="one dataset code per person"):
        loop.TrainedPolicy(svd, users=users[:10], mode="prior").prior_scores(dataset_world_)


def test_loop_presets_take_a_trained_run_and_say_so(dataset_world):
    from recsys.models import create

    dataset, world, users = dataset_world
    trained = loop.TrainedPolicy(create("pure_svd").fit(dataset), users=users)
    for key in ("popularity_trap", "exploration_tail"):
        preset = next(p for p in loop.PRESETS if p.key == key)
        result = preset.run(preset.knobs(rounds=2, k=5), seed=0, world=world, trained=trained)
        assert result.takeaway.startswith("With PureSVD (its dataset scores as a prior, plus the log) as the "
                                          "system's model: ")
        assert len(result.rounds) == 2 * 3
