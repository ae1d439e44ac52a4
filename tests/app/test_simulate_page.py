"""Simulate page through app.py: a preset's knobs as widgets, Run, the computed takeaway, a chart per
metric, stepping back through the rounds, results that survive a page switch, and bad knobs as messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import load
from recsys.simulation import presets
from tests.app.test_inspection_pages import train_models
from tests.app.test_pages import assert_clean, charts
from ui import simulate as ui_simulate
from ui.simulate import HEADLINE, charted_metrics, figure_rows, knob_label, summary_value
from ui.text import md_unescape

SIMULATE = "app_pages/simulate.py"
# the bandit preset, made small: six rounds, 20 repeated runs, 100 A/A runs (about a second)
SMALL = {"rounds": 6, "runs": 20, "null_runs": 100}
# every preset, a few rounds
COURSE_SMALL = {"popularity_trap": {"rounds": 3}, "exploration_tail": {"rounds": 3}, "offline_vs_online": {"rounds": 3},
                "bandit_vs_ab": {"rounds": 5, "runs": 20, "null_runs": 100}, "position_bias": {"rounds": 3},
                "stale_model": {"rounds": 3}}


def open_page(app):
    app.run()
    app.switch_page(SIMULATE).run()
    assert_clean(app)
    return app


def knob(app, preset: str, name: str):
    """The widget of one knob (a slider or a number box, whichever its metadata made)."""
    key = f"simulate_knob.{preset}.{name}"
    found = [w for w in (*app.slider, *app.number_input, *app.selectbox, *app.checkbox) if w.key == key]
    assert found, f"no widget for {key}"
    return found[0]


def run_bandits(app, **knobs):
    app.radio(key="simulate_preset").set_value("bandit_vs_ab").run()
    for name, value in {**SMALL, **knobs}.items():
        knob(app, "bandit_vs_ab", name).set_value(value)
    return next(b for b in app.button if b.label == "Run").click().run()


def takeaways(app) -> list[str]:
    return [md_unescape(box.value) for box in app.info if box.icon == ":material/lightbulb:"]


def table_with(app, column: str) -> pd.DataFrame:
    """The first table on the page that has ``column``."""
    found = [t.value for t in app.dataframe if column in t.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def test_page_lists_every_preset_with_a_widget_per_knob(app):
    open_page(app)
    available = presets.presets()
    selector = app.radio(key="simulate_preset")
    assert selector.options == [p.label for p in available.values()]
    assert "Press **Run**" in app.info[0].value or "press **Run**" in app.info[0].value
    assert charts(app) == []
    for key, preset in available.items():
        app.radio(key="simulate_preset").set_value(key).run()
        assert_clean(app)
        for field in preset.describe():  # every knob has its widget, starting at its default
            assert knob(app, key, field["name"]).value == field["default"], (key, field["name"])


def test_run_shows_the_computed_takeaway_charts_and_the_round_table(app):
    run_bandits(open_page(app))
    assert_clean(app)
    result = presets.get("bandit_vs_ab")(seed=0, **SMALL)
    # no trained runs yet: the arms are the knobs' click rates, and the page says how to use runs instead
    assert any("Train two or more models" in c.value for c in app.caption)

    # the sentence is this run's: it quotes the summary's figures
    assert takeaways(app) == [result.takeaway]
    assert f"{result.summary['fpr_peeking']:.1%}" in result.takeaway
    assert f"{result.summary['regret_thompson']:.0f}" in result.takeaway
    figures = table_with(app, "figure")
    assert figures["figure"].tolist() == list(result.summary)
    assert figures.set_index("figure")["value"]["regret_thompson"] == summary_value(result.summary["regret_thompson"])

    # one chart per metric, titled with its name, but for the visitors so far (the same for every policy)
    assert charts(app) == charted_metrics(result.rounds, result.metrics) == [m for m in result.metrics
                                                                            if m != "visitors"]
    last = result.rounds[result.rounds["round"] == 6].drop(columns="round").reset_index(drop=True)
    pd.testing.assert_frame_equal(table_with(app, "series").reset_index(drop=True), last)
    assert [t.value for t in app.subheader][:1] == ["Round 6"]
    # the extra tables follow under their titles
    assert [md_unescape(t.value) for t in app.subheader][1:] == list(result.tables)
    assert app.get("download_button")[0].label == "Download the per-round table (CSV)"

    # step back: the table (and the charts) stop at round 2
    app.select_slider[0].set_value(2).run()
    assert_clean(app)
    second = result.rounds[result.rounds["round"] == 2].drop(columns="round").reset_index(drop=True)
    pd.testing.assert_frame_equal(table_with(app, "series").reset_index(drop=True), second)
    assert [t.value for t in app.subheader][0] == "Round 2"


def test_the_result_and_its_knobs_survive_a_page_switch(app):
    run_bandits(open_page(app), rate_2=0.06)
    first = takeaways(app)
    assert len(first) == 1
    app.switch_page("app_pages/data.py").run()
    app.switch_page(SIMULATE).run()
    assert_clean(app)
    assert app.radio(key="simulate_preset").value == "bandit_vs_ab"
    assert takeaways(app) == first
    assert knob(app, "bandit_vs_ab", "rate_2").value == 0.06
    assert knob(app, "bandit_vs_ab", "rounds").value == 6


def test_a_knob_combination_the_simulation_refuses_is_a_message(app):
    # a control at 50 % with a planned +200 % lift asks for a 150 % click rate
    run_bandits(open_page(app), rate_1=0.5, planned_lift=2.0)
    assert not app.exception
    assert len(app.error) == 1 and "lift must be a non-zero relative change" in md_unescape(app.error[0].value)
    assert takeaways(app) == [] and charts(app) == []


def test_trained_runs_can_be_the_bandits_arms(app):
    train_models(app, {"pop": "Most popular", "item_knn": "Item-item kNN", "pure_svd": "PureSVD"})
    app.switch_page(SIMULATE).run()
    app.radio(key="simulate_preset").set_value("bandit_vs_ab").run()
    assert_clean(app)
    assert app.multiselect(key="simulate_arms_runs").options == ["Most popular", "Item-item kNN", "PureSVD"]
    app.checkbox(key="simulate_arms_use").check()
    app.multiselect(key="simulate_arms_runs").set_value(["Most popular", "Item-item kNN"])
    app.selectbox(key="simulate_arms_truth").set_value("PureSVD")
    for name, value in SMALL.items():
        knob(app, "bandit_vs_ab", name).set_value(value)
    next(b for b in app.button if b.label == "Run").click().run()
    assert_clean(app)

    arms = table_with(app, "true click rate")
    assert arms["arm"].tolist() == ["Most popular", "Item-item kNN"]
    rates = arms["true click rate"].to_numpy()
    # not the knobs' 4.0 % and 4.6 %: what a PureSVD world clicks on each run's top 10 (cascade reading)
    assert ((rates > 0) & (rates < 1)).all() and not np.allclose(rates, [0.04, 0.046])
    # personal neighbours are closer to a personal truth than one list for everybody
    assert rates[1] > rates[0]
    assert arms["best"].tolist() == [False, True]
    assert len(takeaways(app)) == 1
    # the choice is remembered with the knobs
    assert app.checkbox(key="simulate_arms_use").value is True
    assert app.multiselect(key="simulate_arms_runs").value == ["Most popular", "Item-item kNN"]


@pytest.mark.parametrize("key", list(COURSE_SMALL))
def test_live_rows_follow_the_final_table(key):
    """What the live charts draw while a preset runs is the final table's rows, round by round."""
    preset = presets.get(key)
    rows = []
    result = preset(seed=1, progress=lambda done, total, figures: rows.extend(figure_rows(done, figures)),
                    **COURSE_SMALL[key])
    live = pd.DataFrame(rows)
    final = result.rounds
    assert live[["round", "series"]].values.tolist() == final[["round", "series"]].values.tolist()
    shared = [m for m in result.metrics if m in live.columns]
    # every preset reports its rows: all the metrics, so the live charts are the final ones
    assert shared == result.metrics and HEADLINE not in live.columns
    timings = [m for m in shared if m.endswith("seconds")]  # wall-clock figures differ run to run
    pd.testing.assert_frame_equal(live[shared].drop(columns=timings), final[shared].drop(columns=timings),
                                  check_dtype=False)


@pytest.mark.parametrize(("key", "small"), [("bandit_vs_ab", SMALL), ("position_bias", {"rounds": 3})])
def test_the_live_view_draws_the_final_charts(app, monkeypatch, key, small):
    """While a preset runs the page draws a chart per metric of its own (not one headline figure); kept on
    the page here by leaving the live view in place when the run ends."""
    monkeypatch.setattr(ui_simulate.LiveView, "clear", lambda self: None)
    open_page(app).radio(key="simulate_preset").set_value(key).run()
    for name, value in small.items():
        knob(app, key, name).set_value(value)
    next(b for b in app.button if b.label == "Run").click().run()
    assert_clean(app)
    result = presets.get(key)(seed=0, **small)
    metrics = charted_metrics(result.rounds, result.metrics)
    # the live charts (drawn at the last round), then the finished run's: the same titles twice
    assert charts(app) == metrics + metrics
    assert HEADLINE not in charts(app)


def test_figure_rows_reads_both_shapes_and_ignores_the_rest():
    assert figure_rows(2, {"greedy": {"gini": 0.5, "label": "x"}, "mmr": {"gini": 0.25}}) == [
        {"round": 2, "series": "greedy", "gini": 0.5}, {"round": 2, "series": "mmr", "gini": 0.25}]
    assert figure_rows(3, {"A/B": 12.0, "Thompson": 4}) == [
        {"round": 3, "series": "A/B", HEADLINE: 12.0}, {"round": 3, "series": "Thompson", HEADLINE: 4.0}]
    assert figure_rows(1, {}) == [] and figure_rows(1, None) == []


def test_knob_labels_read_as_words():
    assert [knob_label(n) for n in ("n_items", "mmr_lambda", "epsilon", "row_decay", "rate_1")] == [
        "Number of items", "MMR λ", "ε", "Row decay", "Rate 1"]


def test_a_hosted_run_past_its_budget_stops_with_a_message(app, monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setattr(ui_simulate, "HOSTED_BUDGET_S", 0.0)  # every round is past it
    run_bandits(open_page(app))
    assert not app.exception
    assert len(app.error) == 1
    assert "still running after 0 s, the limit on this shared server, at round 1 of 6" in md_unescape(app.error[0].value)
    assert takeaways(app) == [] and charts(app) == []
    # on a laptop the same run has no limit
    monkeypatch.delenv("RECSYS_HOSTED")
    next(b for b in app.button if b.label == "Run").click().run()
    assert_clean(app)
    assert len(takeaways(app)) == 1


def test_a_trained_run_can_be_the_world(app):
    train_models(app, {"pure_svd": "PureSVD"})
    app.switch_page(SIMULATE).run()
    app.radio(key="simulate_preset").set_value("position_bias").run()
    assert_clean(app)
    assert app.selectbox(key="simulate_world_run").options == ["PureSVD"]
    app.checkbox(key="simulate_world_use").check()
    knob(app, "position_bias", "rounds").set_value(3)
    knob(app, "position_bias", "page_views_per_round").set_value(2000)
    next(b for b in app.button if b.label == "Run").click().run()
    assert_clean(app)

    # the world is the dataset's catalogue under PureSVD's tastes, not the 30-item synthetic one
    items = table_with(app, "true relevance")
    sample = load("sample")
    assert len(items) == sample.n_items
    assert set(items["item"]) == {str(t) for t in sample.item_titles()}
    assert len(takeaways(app)) == 1
    assert app.checkbox(key="simulate_world_use").value is True


def test_a_trained_run_can_be_the_loops_model(app):
    train_models(app, {"item_knn": "Item-item kNN", "pure_svd": "PureSVD"})
    app.switch_page(SIMULATE).run()
    app.radio(key="simulate_preset").set_value("popularity_trap").run()
    assert_clean(app)
    assert app.selectbox(key="simulate_policy_run").options == ["Item-item kNN", "PureSVD"]
    # a run's scores as a prior need the dataset's people: in the synthetic world that is a message
    app.checkbox(key="simulate_policy_use").check()
    app.selectbox(key="simulate_policy_mode").set_value("prior")
    knob(app, "popularity_trap", "rounds").set_value(2)
    next(b for b in app.button if b.label == "Run").click().run()
    assert not app.exception
    assert len(app.error) == 1 and "world of its dataset's people" in md_unescape(app.error[0].value)

    # in a world whose truth is PureSVD's, item-item kNN refitted on the loop's clicks drives every policy
    app.checkbox(key="simulate_world_use").check()
    app.selectbox(key="simulate_world_run").set_value("PureSVD")
    app.selectbox(key="simulate_policy_run").set_value("Item-item kNN")
    app.selectbox(key="simulate_policy_mode").set_value("auto")
    next(b for b in app.button if b.label == "Run").click().run()
    assert_clean(app)
    [takeaway] = takeaways(app)
    assert takeaway.startswith("With Item-item kNN (refitted on the log each round) as the system's model: "
                               "Greedy's exposure Gini")
    table = table_with(app, "exposure_gini")
    assert table["series"].tolist() == ["Greedy", "ε-greedy", "Thompson"]
    assert {"exposure_gini", "coverage", "true_utility"} <= set(charts(app)) <= set(table.columns)
    # the choice is remembered with the knobs
    assert app.checkbox(key="simulate_policy_use").value is True
    assert app.selectbox(key="simulate_policy_run").value == "Item-item kNN"


def test_only_metrics_that_differ_between_series_are_charted():
    rounds = pd.DataFrame({"round": [1, 1, 2, 2], "series": ["a", "b", "a", "b"], "seen": [10, 10, 20, 20],
                           "gini": [0.5, 0.5, 0.6, 0.7], "tau": [0.1, np.nan, 0.2, np.nan]})
    # the visitors seen so far are everyone's; a metric only one series has is that series' story
    assert charted_metrics(rounds, ["seen", "gini", "tau"]) == ["gini", "tau"]
    # one series: every metric is its own story
    assert charted_metrics(rounds[rounds["series"] == "a"], ["seen", "gini"]) == ["seen", "gini"]
