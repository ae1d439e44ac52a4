"""Freshness and serving tiers: drift makes a model stale, nearline fold-in keeps it fresher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data.errors import DataError
from recsys.simulation import freshness
from recsys.simulation.freshness import ENSEMBLE, NEARLINE, RETRAIN, STATIC, TIERS

# small enough that one run takes a fraction of a second
SMALL = dict(users=80, items=150, rounds=6, history_rounds=4, k=10, retrain_every=3)
SEEDS = (0, 1, 2, 3)
PRESET = freshness.PRESETS[0]


def run(seed: int, **overrides):
    return PRESET(seed=seed, **{**SMALL, **overrides})


def per_tier(result, metric: str) -> pd.Series:
    return result.rounds.groupby("series")[metric].mean()


def last_round(result, metric: str) -> pd.Series:
    rounds = result.rounds
    return rounds[rounds["round"] == rounds["round"].max()].set_index("series")[metric]


@pytest.mark.parametrize("seed", SEEDS)
def test_fold_in_beats_the_static_model_after_drift(seed):
    result = run(seed, drift=0.3)
    mean_share = per_tier(result, "utility_share")
    assert mean_share[NEARLINE] > mean_share[STATIC] + 0.02
    final = last_round(result, "utility_share")
    assert final[NEARLINE] > final[STATIC] + 0.05
    # the static model decays round after round while tastes move away from its log
    static = result.rounds[result.rounds["series"] == STATIC]["utility_share"].to_numpy()
    assert static[-1] < static[0] - 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_without_drift_static_and_retrain_nearly_agree_and_drift_opens_the_gap(seed):
    def relative_gap(result):
        share = per_tier(result, "utility_share")
        return (share[RETRAIN] - share[STATIC]) / share[RETRAIN]

    # with eight rounds of history before the first fit, the rounds that follow add little data
    still, drifting = run(seed, drift=0.0, history_rounds=8), run(seed, drift=0.3, history_rounds=8)
    # the only gain left to a refit without drift is that extra data: a percent or two
    assert relative_gap(still) < 0.04
    assert relative_gap(still) < 0.5 * relative_gap(drifting)
    # and the static model serves worse the faster tastes move
    assert per_tier(drifting, "utility_share")[STATIC] < per_tier(still, "utility_share")[STATIC] - 0.05
    assert last_round(drifting, "utility_share")[STATIC] < last_round(still, "utility_share")[STATIC] - 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_continue_watching_is_right_when_updated_nearline(seed):
    result = run(seed, drift=0.1)
    hits = per_tier(result, "continue_watching_hit")
    assert hits[NEARLINE] > 0.7
    assert hits[STATIC] < 0.5
    assert hits[NEARLINE] > hits[STATIC] + 0.3
    # the nightly tier's row is rebuilt at each refit: fresh on those rounds, stale between them
    nightly = result.rounds[result.rounds["series"] == RETRAIN].set_index("round")["continue_watching_hit"]
    assert nightly[4] > nightly[3]
    assert result.summary["continue_watching_nearline"] == pytest.approx(hits[NEARLINE])
    assert result.summary["continue_watching_stale"] == pytest.approx(hits[STATIC])


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    first, again, other = run(5, drift=0.2), run(5, drift=0.2), run(6, drift=0.2)
    # measured seconds are the one column that is allowed to differ
    pd.testing.assert_frame_equal(first.rounds.drop(columns="seconds"), again.rounds.drop(columns="seconds"))
    assert first.takeaway == again.takeaway
    assert first.summary == again.summary
    assert not first.rounds["utility"].equals(other.rounds["utility"])


def test_the_takeaway_quotes_this_runs_numbers():
    result = run(2, drift=0.25)
    s, text = result.summary, result.takeaway
    assert f"fell {s['static_drop_percent']:.0f} %" in text
    assert f"{100 * s['static_first_share']:.0f} % to {100 * s['static_last_share']:.0f} %" in text
    assert f"averaged {100 * s['nearline_mean_share']:.0f} % of the best" in text
    assert f"{s['nearline_kept_percent']:.0f} % of nightly retrain's {100 * s['retrain_mean_share']:.0f} %" in text
    assert f"{s['retrain_fits']:.0f} refits over {s['retrain_fit_interactions']:,.0f} logged" in text
    assert f"held {100 * s['continue_watching_nearline']:.0f} % of resumed titles" in text
    assert f"{100 * s['continue_watching_stale']:.0f} % when built once" in text
    # the summary agrees with the rounds it came from
    static = result.rounds[result.rounds["series"] == STATIC]["utility_share"].to_numpy()
    assert s["static_drop_percent"] == pytest.approx(100 * (1 - static[-1] / static[0]))
    assert run(3, drift=0.25).takeaway != text
    # a static model that improved (no drift, people's best titles still ahead) is said to rise
    improved = {**s, "static_drop_percent": -4.2}
    assert "utility rose 4 %" in freshness.takeaway(improved, PRESET.knobs(drift=0.0))
    assert "12 rounds without drift" in freshness.takeaway(improved, PRESET.knobs(drift=0.0))


def test_work_is_counted_per_tier_and_round():
    result = run(0, drift=0.1, rounds=7, retrain_every=3)
    rounds = result.rounds.set_index(["series", "round"])
    users, items, per_round, before = SMALL["users"], SMALL["items"], 3, SMALL["history_rounds"]
    refits = rounds.loc[RETRAIN, "fits"]
    # the nightly tier refits before rounds 4 and 7, on everything logged until then
    assert list(refits[refits > 0].index) == [4, 7]
    for round_number in (4, 7):
        logged = users * (before + round_number - 1) * per_round
        assert rounds.loc[(RETRAIN, round_number), "fit_interactions"] == logged
    assert rounds.loc[STATIC, "fits"].sum() == 0 and rounds.loc[STATIC, "scored_cells"].sum() == 0
    assert (rounds.loc[NEARLINE, "fold_ins"] == users).all()
    assert (rounds.loc[NEARLINE, "scored_cells"] == users * items).all()
    assert rounds.loc[NEARLINE, "fits"].sum() == 0
    # the recent blend reads the last titles against a fixed similarity: no fit, no fold-in
    assert (rounds.loc[ENSEMBLE, "fold_ins"] == 0).all() and (rounds.loc[ENSEMBLE, "fits"] == 0).all()
    assert (rounds.loc[ENSEMBLE, "scored_cells"] == users * items).all()
    assert result.summary["retrain_fits"] == 2
    assert set(result.series) == set(TIERS)
    assert {"utility", "utility_share", "next_click_recall", "continue_watching_hit", "seconds"} <= set(result.metrics)
    assert result.rounds["utility_share"].between(0, 1).all()
    assert result.rounds["next_click_recall"].between(0, 1).all()


def test_every_tier_folds_in_through_any_offered_model():
    for key in ("ease", "pure_svd"):
        result = run(1, drift=0.3, model=key, rounds=4, retrain_every=2)
        share = per_tier(result, "utility_share")
        assert share[NEARLINE] > share[STATIC]


def test_progress_reports_each_round_per_tier():
    seen = []
    run(0, drift=0.1, rounds=3, progress=lambda done, total, figures: seen.append((done, total, figures)))
    assert [(done, total) for done, total, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert set(seen[-1][2]) == set(TIERS)
    assert "utility_share" in seen[-1][2][NEARLINE] and "round" not in seen[-1][2][NEARLINE]


def test_people_start_titles_they_like_and_never_one_they_started():
    rng = np.random.default_rng(0)
    truth = np.full((50, 40), 0.01)
    truth[:, :5] = 0.9                       # five titles everybody loves
    seen = sp.csr_matrix((np.ones(50), (np.arange(50), np.zeros(50, int))), shape=(50, 40))
    started = freshness.start_titles(rng, truth, seen, 3)
    assert started.shape == (50, 3)
    assert (started != 0).all()              # title 0 was started already
    assert all(len(set(row)) == 3 for row in started)
    assert np.isin(started, np.arange(1, 5)).mean() > 0.8


def test_the_continue_watching_row_is_the_latest_titles_newest_first():
    log = freshness.Log(np.array([[1, 2, 3, 4, 5, 6]]), items_per_round=2, n_items=10)
    assert freshness.continue_watching(log, 3).tolist() == [[6, 5, 4]]
    assert log.start_age().tolist() == [3, 3, 2, 2, 1, 1]
    assert log.dataset().n_interactions == 6 and log.dataset().n_items == 10


def test_bad_knobs_say_what_to_change():
    with pytest.raises(DataError, match="raise items"):
        run(0, items=60, rounds=20)
    with pytest.raises(DataError, match="model"):
        PRESET.knobs(model="sasrec")
