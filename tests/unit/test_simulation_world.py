"""The simulated truth and the click model: shapes, calibration, drift, and clicks that match their odds."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.errors import DataError
from recsys.data.synthetic import make_dataset
from recsys.models import create
from recsys.simulation.clicks import (
    EXAMINATION_KINDS,
    draw_clicks,
    examination,
    slot_examination,
)
from recsys.simulation.world import World

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def worlds():
    return {seed: World.synthetic(200, 150, seed=seed) for seed in SEEDS}


# ---------------------------------------------------------------------------- examination
@pytest.mark.parametrize("kind", EXAMINATION_KINDS)
def test_examination_shape_and_range(kind):
    grid = examination(kind, 4, 6)
    assert grid.shape == (4, 6)
    assert np.all((grid > 0) & (grid <= 1))
    assert grid[0, 0] == 1.0


def test_examination_decays_along_reading_order():
    assert np.all(examination("none", 3, 5) == 1.0)
    cascade = examination("cascade", 3, 4, row_decay=0.8).ravel()
    assert np.all(np.diff(cascade) < 0)
    np.testing.assert_allclose(cascade[1] / cascade[0], 0.8)
    grid = examination("grid", 3, 4, row_decay=0.7, col_decay=0.9)
    assert np.all(np.diff(grid, axis=0) < 0) and np.all(np.diff(grid, axis=1) < 0)
    np.testing.assert_allclose(grid[2, 3], 0.7 ** 2 * 0.9 ** 3)


def test_slot_examination_fills_rows_in_order():
    slots = slot_examination("grid", 7, n_cols=3, row_decay=0.5, col_decay=0.9)
    np.testing.assert_allclose(slots[:4], [1.0, 0.9, 0.81, 0.5])
    assert slots.shape == (7,)


@pytest.mark.parametrize("bad", [dict(kind="zigzag"), dict(n_rows=0), dict(row_decay=1.5), dict(col_decay=0.0)])
def test_examination_rejects_bad_input(bad):
    args = dict(kind="grid", n_rows=2, n_cols=2, row_decay=0.7, col_decay=0.85) | bad
    with pytest.raises(DataError):
        examination(args.pop("kind"), args.pop("n_rows"), args.pop("n_cols"), **args)


@pytest.mark.parametrize("seed", SEEDS)
def test_click_rates_match_examine_times_relevance(seed):
    rng = np.random.default_rng(seed)
    n_draws, n_slots = 40_000, 6
    relevance = np.tile(np.linspace(0.05, 0.9, n_slots), (n_draws, 1))
    examine = slot_examination("cascade", n_slots, row_decay=0.75)
    clicks = draw_clicks(rng, relevance, examine)
    expected = relevance[0] * examine
    standard_error = np.sqrt(expected * (1 - expected) / n_draws)
    assert np.all(np.abs(clicks.mean(0) - expected) < 4 * standard_error)


def test_stop_after_click_keeps_only_the_first_click():
    rng = np.random.default_rng(3)
    relevance = np.full((5_000, 5), 0.5)
    clicks = draw_clicks(rng, relevance, np.ones(5), stop_after_click=True)
    assert clicks.sum(1).max() == 1
    # the first slot is clicked half the time; the second only when the first was not
    np.testing.assert_allclose(clicks.mean(0)[:2], [0.5, 0.25], atol=0.03)


def test_draw_clicks_rejects_mismatched_slots():
    with pytest.raises(DataError, match="slot"):
        draw_clicks(np.random.default_rng(0), np.zeros((3, 4)), np.ones(5))


# ---------------------------------------------------------------------------- world
@pytest.mark.parametrize("seed", SEEDS)
def test_synthetic_world_is_calibrated_probabilities(worlds, seed):
    world = worlds[seed]
    assert world.truth.shape == (200, 150) == (world.n_users, world.n_items)
    assert world.truth.min() >= 0 and world.truth.max() <= 1
    assert world.truth.mean() == pytest.approx(0.03, abs=1e-3)
    # each person's best item is far likelier than a random one
    assert np.median(world.truth.max(1)) > 0.25
    assert len(world.item_titles) == 150


@pytest.mark.parametrize("seed", SEEDS)
def test_popular_items_are_somewhat_more_relevant(worlds, seed):
    world = worlds[seed]
    corr = np.corrcoef(world.popularity, world.truth.mean(0))[0, 1]
    assert 0.1 < corr < 0.95


def test_world_is_deterministic_for_a_seed(worlds):
    again = World.synthetic(200, 150, seed=1)
    np.testing.assert_array_equal(again.truth, worlds[1].truth)
    assert not np.allclose(worlds[0].truth, worlds[1].truth)


def test_relevance_and_expected_clicks(worlds):
    world = worlds[0]
    users = np.array([3, 7])
    shown = np.array([[1, 2, 3], [4, 5, -1]])
    rel = world.relevance(users, shown)
    np.testing.assert_allclose(rel[0], world.truth[3, [1, 2, 3]])
    assert rel[1, 2] == 0.0
    np.testing.assert_allclose(world.relevance(users, np.array([0, 9])), world.truth[np.ix_(users, [0, 9])])
    examine = np.array([1.0, 0.5, 0.25])
    np.testing.assert_allclose(world.expected_clicks(users, shown, examine), (rel * examine).sum(1))
    with pytest.raises(DataError):
        world.relevance(np.array([999]))


def test_best_items_are_the_truths_top(worlds):
    world = worlds[2]
    best = world.best_items(5)
    top = np.sort(world.truth, axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(np.take_along_axis(world.truth, best, 1), top)


@pytest.mark.parametrize("seed", SEEDS)
def test_drift_moves_tastes_by_the_requested_amount(worlds, seed):
    world = worlds[seed]
    assert np.array_equal(world.drift(0.0, seed=5).truth, world.truth)
    corr = [np.corrcoef(world.affinity.ravel(), world.drift(a, seed=5).affinity.ravel())[0, 1]
            for a in (0.2, 0.5, 0.8, 1.0)]
    assert all(a > b for a, b in zip(corr, corr[1:]))
    # the angle sets the correlation: about cos(amount * 90 degrees)
    assert corr[1] == pytest.approx(np.cos(np.pi / 4), abs=0.12)
    assert abs(corr[-1]) < 0.2
    drifted = world.drift(0.5, seed=5)
    assert drifted.truth.mean() == pytest.approx(0.03, abs=0.01)
    np.testing.assert_array_equal(drifted.truth, world.drift(0.5, seed=5).truth)
    with pytest.raises(DataError):
        world.drift(1.5)


@pytest.fixture(scope="module")
def fitted_knn():
    dataset = make_dataset(120, 80, seed=4)
    return create("item_knn").fit(dataset), dataset


def test_from_model_ranks_like_the_model(fitted_knn):
    model, dataset = fitted_knn
    world = World.from_model(model, dataset)
    assert world.truth.shape == (dataset.n_users, dataset.n_items)
    assert world.truth.mean() == pytest.approx(0.03, abs=1e-3)
    scores = model.score(np.arange(dataset.n_users))
    # without a popularity prior, each person's truth orders items exactly as the model does
    plain = World.from_model(model, dataset, popularity_weight=0.0)
    for user in (0, 17, 60):
        finite = np.isfinite(scores[user])
        order = np.argsort(scores[user][finite], kind="stable")
        assert np.all(np.diff(plain.truth[user][finite][order]) >= -1e-12)
    # with it, the ranking still mostly agrees
    corr = [np.corrcoef(scores[u], world.truth[u])[0, 1] for u in range(20)]
    assert np.mean(corr) > 0.7
    drifted = world.drift(0.5, seed=1)
    assert 0.5 < np.corrcoef(world.affinity.ravel(), drifted.affinity.ravel())[0, 1] < 0.9


def test_from_model_needs_a_fitted_model():
    with pytest.raises(DataError, match="fitted"):
        World.from_model(create("pop"), make_dataset(30, 20, seed=0))
