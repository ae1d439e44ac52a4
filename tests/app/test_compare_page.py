"""The Compare page in depth, through app.py with AppTest: table numbers, trade-off charts, sweep, shared links."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from recsys.evaluation import compare, tradeoffs
from tests.app.test_pages import assert_clean, sidebar_widget
from tests.app.test_pages import charts as chart_titles
from tests.app.test_pages import submit as click
from ui.text import md_unescape

TRAIN = "app_pages/train.py"
COMPARE = "app_pages/compare.py"
MODELS = {"pop": "Most popular", "item_knn": "Item-item kNN"}
SUCCESS = re.compile(r"^(?P<label>.+): NDCG@10 = (?P<ndcg>\d\.\d{4}) on (?P<users>[\d,]+) test users\.$")


def train(at, key: str) -> None:
    """Click the model's Train button and rerun until its background job reports success."""
    click(at, f"Train {MODELS[key]}")
    deadline = time.monotonic() + 120
    while not [m for s in at.success if (m := SUCCESS.match(s.value)) and m["label"] == MODELS[key]]:
        assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
        assert time.monotonic() < deadline, f"{key} still training"
        time.sleep(0.2)
        at.run()


def show(at, view: str) -> None:
    """Switch the page's view (Overview, Trade-offs, Users, Sweep) as the segmented control does."""
    at.button_group(key="compare_view").set_value(view).run()
    assert_clean(at)


def reports_of(at) -> dict:
    """The reports behind the session's runs, read from the server's run cache as the page does."""
    from ui import runs

    return {spec["label"]: runs.result(spec)["report"] for spec in at.session_state["runs"]}


@pytest.fixture
def compared(app):
    """Two runs (popularity, item kNN) trained through the Train page, then the Compare page opened."""
    app.run()
    app.switch_page(TRAIN).run()
    for key in MODELS:
        train(app, key)
    app.switch_page(COMPARE).run()
    assert_clean(app)
    return app


def test_table_matches_the_reports_and_marks_the_best(compared):
    app = compared
    reports = reports_of(app)
    table = app.dataframe[0].value
    assert list(table["model"]) == ["Most popular", "Item-item kNN"]
    for metric in ("ndcg", "recall", "precision", "f1", "map", "mrr", "hit", "ndcg_graded", "novelty", "arp", "ild"):
        column = f"{metric}@10"
        for name, value in zip(table["model"], table[column]):
            assert value == pytest.approx(reports[name].means[column], abs=1e-12), (name, column)
            low, high = reports[name].ci[column]
            assert table.loc[table["model"] == name, f"{column} 95% CI"].item() == f"{low:.4f} – {high:.4f}"
    for metric in ("coverage", "gini", "tail_share"):
        for name, value in zip(table["model"], table[f"{metric}@10"]):
            assert value == pytest.approx(reports[name].list_level[f"{metric}@10"], abs=1e-12)
    # the sample is explicit and item kNN predicts ratings: RMSE/MAE appear for it, blank for popularity
    knn = table[table["model"] == "Item-item kNN"].iloc[0]
    assert knn["rmse"] == pytest.approx(reports["Item-item kNN"].rmse)
    assert np.isnan(table[table["model"] == "Most popular"].iloc[0]["rmse"])
    assert (table["fit s"] > 0).all() and (table["score s"] > 0).all()

    # best marks follow each metric's direction: kNN wins NDCG and coverage, popularity has the higher ARP (worse)
    styles = app.dataframe[0].proto.arrow_data.styler.styles
    assert "#c8f7c5" in styles
    raw = tradeoffs.metrics_table(reports, 10)
    best = tradeoffs.best_per_column(raw)
    names = list(raw["run"])
    assert names[best["ndcg@10"][0]] == "Item-item kNN"
    assert names[best["arp@10"][0]] == "Item-item kNN"  # lower average popularity is better

    # every chart is drawn with data: the overview first, then each view's own charts
    assert chart_titles(app) == ["NDCG as the list grows", "NDCG@10 (95% bootstrap interval)",
                                 "Catalogue coverage@10 (share of items ever recommended)",
                                 "Novelty@10 (bits of surprise per item)"]
    # F1 and graded NDCG have their own K-curves, recomputed from the stored lists
    app.radio(key="compare_curve_metric").set_value("ndcg_graded").run()
    assert chart_titles(app)[0] == "Graded NDCG as the list grows"
    curves = compare.curves_frame(reports, "ndcg_graded")
    at_10 = curves[curves["k"] == 10].set_index("run")["value"]
    assert at_10["Item-item kNN"] == pytest.approx(reports["Item-item kNN"].means["ndcg_graded@10"])
    app.radio(key="compare_curve_metric").set_value("f1").run()
    assert chart_titles(app)[0] == "F1 as the list grows"
    show(app, "tradeoffs")
    assert chart_titles(app) == ["Accuracy vs catalogue coverage", "Accuracy vs novelty",
                                 "Accuracy vs popularity bias",
                                 "Who gets exposure: top-10 slots per bucket (grey: share consumed in the test set)"]
    show(app, "users")
    assert chart_titles(app) == ["NDCG@10 for new, casual and heavy users (95% interval)",
                                 "Per-user NDCG@10: how it spreads over users"]
    # the metric choice follows through: recall in the segment chart
    app.radio(key="compare_accuracy").set_value("recall").run()
    assert chart_titles(app)[0] == "Recall@10 for new, casual and heavy users (95% interval)"

    # the sample has timestamps and the default split is random: the page says so in plain words
    assert any("random split of data that has timestamps" in w.value for w in app.warning)
    assert [b.label for b in app.get("download_button")][:3] == ["Metrics (CSV)", "Metrics (JSON)",
                                                                 "Per-user metrics (CSV)"]


def test_full_vs_sampled_view_scores_the_runs_again_and_shows_both_orders(compared):
    from recsys.data import load
    from recsys.data.split import make_split
    from recsys.evaluation.sampled import FULL, full_vs_sampled, sampled_label
    from ui import runs

    app = compared
    show(app, "sampled")
    assert chart_titles(app) == ["Hit rate@10: the order of the models under each protocol"]
    table = app.dataframe[-1].value.set_index("model")
    split = make_split(load("sample"), "random", test_fraction=0.2, seed=42)  # the sidebar's default split
    specs = {spec["label"]: spec for spec in app.session_state["runs"]}
    models = {name: runs.result(spec)["model"] for name, spec in specs.items()}
    expected = full_vs_sampled(models, reports_of(app), split.train, split.test, 10, 100)
    hit = expected[expected.metric == "hit"].pivot(index="run", columns="protocol", values="value")
    for name in MODELS.values():
        assert table.at[name, FULL] == pytest.approx(hit.at[name, FULL])
        assert table.at[name, sampled_label(100)] == pytest.approx(hit.at[name, sampled_label(100)])
        assert table.at[name, "sampled ÷ full"] > 1
    # fewer sampled items: easier lists, higher numbers, and the chart follows the metric choice
    app.number_input(key="compare_sampled_n").set_value(20).run()
    assert_clean(app)
    smaller = app.dataframe[-1].value.set_index("model")
    assert (smaller[sampled_label(20)] >= table[sampled_label(100)]).all()
    app.radio(key="compare_sampled_metric").set_value("ndcg").run()
    assert chart_titles(app) == ["NDCG@10: the order of the models under each protocol"]


def test_pareto_points_in_the_chart_match_the_backend(compared):
    app = compared
    reports = reports_of(app)
    table = tradeoffs.metrics_table(reports, 10)
    expected = tradeoffs.pareto_frame(table, "ndcg@10", "coverage@10")
    show(app, "tradeoffs")
    [chart] = [c for c in app.get("vega_lite_chart") if json.loads(c.proto.spec).get("title") ==
               "Accuracy vs catalogue coverage"]
    rows = [json.loads(json.dumps(r)) for r in _chart_rows(chart)]
    on_front = {r["run"]: r["on_front"] for r in rows}
    assert on_front == dict(zip(expected["run"], expected["on_front"]))
    assert on_front["Item-item kNN"] is True  # more accurate and covers more: it dominates popularity
    assert on_front["Most popular"] is False


def _chart_rows(chart) -> list[dict]:
    import pyarrow as pa

    dataset = chart.proto.datasets[0].data.data
    return pa.ipc.open_stream(dataset).read_all().to_pylist()


def test_sweep_trains_three_points_and_plots_them(compared):
    app = compared
    show(app, "sweep")
    app.selectbox(key="compare_sweep_model").set_value("pure_svd").run()
    app.selectbox(key="compare_sweep_param_pure_svd").set_value("embedding_size").run()
    app.number_input(key="compare_sweep_low_pure_svd_embedding_size").set_value(4)
    app.number_input(key="compare_sweep_high_pure_svd_embedding_size").set_value(64)
    app.slider(key="compare_sweep_points").set_value(3)
    click(app, "Run sweep")
    assert_clean(app)
    result = app.session_state["compare_sweep_result"]
    frame = result["frame"]
    assert list(frame["value"]) == [4, 16, 64]  # log-spaced (embedding_size is a log parameter)
    assert frame["valid"].between(0, 1).all() and frame["test"].between(0, 1).all()
    assert frame["loss"].isna().all()  # PureSVD is closed-form: no training loss
    titles = chart_titles(app)
    assert "NDCG@10 as embedding_size changes" in titles
    assert any("reports no training loss" in i.value for i in app.info)
    shown = app.dataframe[-1].value
    assert len(shown) == 3 and list(shown["embedding_size"]) == [4, 16, 64]
    assert "final loss" not in shown.columns  # a column of "None" would say nothing


def test_the_hidden_note_counts_every_stored_run_on_other_splits(app):
    """Runs stored earlier (another session, before a restart) on another split count too, not only this
    session's."""
    import os
    from pathlib import Path

    from recsys.data import load
    from recsys.store import ExperimentStore, train_or_reuse

    store = ExperimentStore(Path(os.environ["RECSYS_HOME"]) / "store")
    source = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
    split = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}
    for model in ("pop", "item_knn"):
        train_or_reuse(store, load("sample"), source, split, model, load=False)
    app.run()
    sidebar_widget(app, "slider", "Test share").set_value(0.3).run()
    app.switch_page(COMPARE).run()
    assert_clean(app)
    assert any(c.value.startswith("2 run(s) on another dataset or split are hidden") for c in app.caption)


def test_a_shared_link_opens_the_same_runs_in_a_fresh_session(compared):
    from streamlit.testing.v1 import AppTest

    app = compared
    app.select_slider(key="compare_k").set_value(20).run()
    show(app, "users")
    users = app.selectbox(key="compare_user").options
    app.selectbox(key="compare_user").set_value(users[3]).run()
    show(app, "tradeoffs")  # the chosen user is still in the link although the Users view is closed
    params = {key: value for key, value in app.query_params.items()}
    params = {key: value[0] if isinstance(value, list) else value for key, value in params.items()}
    run_ids = [spec["run_id"] for spec in app.session_state["runs"]]
    assert params["runs"] == ",".join(run_ids) and params["k"] == "20"
    assert params["split"] == "random" and params["seed"] == "42"
    assert params["view"] == "tradeoffs" and params["user"] == users[3]
    original = app.dataframe[0].value

    fresh = AppTest.from_file(str(app._script_path), default_timeout=60)
    fresh.query_params.update({**params, "runs": params["runs"] + ",feedc0ffee123456"})
    fresh.run()
    fresh.switch_page(COMPARE).run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert [spec["run_id"] for spec in fresh.session_state["runs"]] == run_ids
    assert "Metrics at K = 20" in [h.value for h in fresh.subheader]
    shown = fresh.dataframe[0].value
    assert list(shown["model"]) == list(original["model"])
    assert np.allclose(shown["ndcg@20"], original["ndcg@20"])
    warnings = [w.value for w in fresh.warning if "does not have" in w.value]
    assert len(warnings) == 1 and "feedc0ffee123456" in warnings[0]
    assert fresh.button_group(key="compare_view").value == "tradeoffs"
    assert chart_titles(fresh)[0] == "Accuracy vs catalogue coverage"
    assert fresh.session_state["compare_user"] == users[3]


def test_a_link_with_other_split_settings_moves_the_sidebar(app):
    """A link made on another split selects that split before anything is drawn; a bad K is named."""
    app.query_params.update({"runs": "0123456789abcdef", "split": "temporal", "test": "0.3", "k": "7"})
    app.run()
    app.switch_page(COMPARE).run()
    assert not app.exception, [e.value for e in app.exception]
    assert sidebar_widget(app, "selectbox", "Split").value == "temporal"
    assert sidebar_widget(app, "slider", "Test share").value == pytest.approx(0.3)
    texts = [w.value for w in app.warning]
    assert any("'k=7' is not one of 1, 5, 10, 20, 50" in t for t in texts), texts
    assert any("0123456789abcdef" in t for t in texts), texts
    assert [i.value for i in app.info] == ["No trained models on this dataset and split yet. "
                                           "Train some on the Train page."]


def test_one_persons_lists_come_from_the_reports(compared):
    app = compared
    show(app, "users")
    reports = reports_of(app)
    user = app.selectbox(key="compare_user").value
    frame = app.dataframe[1].value
    from recsys.data import load

    sample = load("sample")
    code = int(sample.user_codes([type(sample.user_ids[0])(user)])[0])
    for name, report in reports.items():
        [column] = [c for c in frame.columns if c.startswith(f"{name} (NDCG ")]
        row = int(np.flatnonzero(report.users == code)[0])
        assert column == f"{name} (NDCG {report.per_user['ndcg@10'][row]:.3f})"
        titles = sample.item_titles(report.recommended[row, :10])
        expected = [f"✓ {t}" if hit else str(t) for t, hit in zip(titles, report.hits[row, :10])]
        assert list(frame[column]) == expected


def test_link_parameters_round_trip_and_bad_values_are_named():
    from ui import share
    from ui.state import SplitConfig

    config = SplitConfig("leave_last", 0.25, 3, 7, "threshold", 3.5)
    params = share.encode("MovieLens 100K", config, ["a1", "b2"], "196", 20, "users")
    link = share.decode(params)
    assert link.dataset == "MovieLens 100K" and link.run_ids == ["a1", "b2"] and link.user == "196"
    assert link.k == 20 and link.view == "users" and not link.problems
    assert SplitConfig(**link.split) == config
    bad = share.decode({"runs": "x", "test": "0.9", "seed": "abc", "split": "future", "view": "all"})
    assert bad.split == {} and bad.view is None
    assert bad.problems == ["'split=future' is not one of random, temporal, leave_last",
                            "'test=0.9' lies outside 0.05–0.5", "'seed=abc' is not an integer",
                            "'view=all' is not one of overview, tradeoffs, users, sweep, sampled"]


def test_charts_export_to_png_and_svg_on_the_server():
    import pandas as pd

    from ui import charts, share

    assert share.can_render()
    frame = pd.DataFrame({"run": ["A", "B"], "ndcg@10": [0.2, 0.3], "coverage@10": [0.4, 0.1],
                          "on_front": [True, True]})
    chart = charts.tradeoff_scatter(frame, "ndcg@10", "coverage@10", "NDCG@10", "Coverage@10", "t", "%")
    png = share.render(chart, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width >= 2 * share.EXPORT_WIDTH  # rendered at the fixed export width, twice the pixels
    svg = share.render(chart, "svg").decode()
    assert svg.startswith("<svg") and ">A<" in svg and ">B<" in svg
    with pytest.raises(ValueError, match="Unknown export format"):
        share.render(chart, "gif")


def test_a_link_made_on_another_split_moves_the_fresh_sessions_sidebar_and_shows_its_runs(app):
    from streamlit.testing.v1 import AppTest

    app.run()
    sidebar_widget(app, "selectbox", "Split").set_value("temporal").run()
    sidebar_widget(app, "slider", "Test share").set_value(0.3).run()
    app.switch_page(TRAIN).run()
    train(app, "pop")
    app.switch_page(COMPARE).run()
    assert_clean(app)
    params = {key: value[0] if isinstance(value, list) else value for key, value in app.query_params.items()}
    assert params["split"] == "temporal" and params["test"] == "0.3"
    original = app.dataframe[0].value

    fresh = AppTest.from_file(str(app._script_path), default_timeout=60)
    fresh.query_params.update(params)
    fresh.run()
    fresh.switch_page(COMPARE).run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert sidebar_widget(fresh, "selectbox", "Split").value == "temporal"
    assert sidebar_widget(fresh, "slider", "Test share").value == pytest.approx(0.3)
    assert not [w.value for w in fresh.warning if "link" in w.value.lower()]
    shown = fresh.dataframe[0].value
    assert list(shown["model"]) == ["Most popular"]
    assert shown["ndcg@10"].item() == pytest.approx(original["ndcg@10"].item())
    # the temporal split answers "how will it do in the future": no random-split warning here
    warnings = [w.value for w in fresh.warning]
    assert not any("random split" in w for w in warnings), warnings
    # most test users of a 30% temporal cut have no training history: the page says what that means
    assert any(w.startswith("Only ") and "users are evaluated" in w for w in warnings), warnings
    assert any("have no training history" in w for w in warnings), warnings


def test_a_link_to_an_unloaded_dataset_or_an_unknown_user_says_so(compared):
    from streamlit.testing.v1 import AppTest

    app = compared
    params = {key: value[0] if isinstance(value, list) else value for key, value in app.query_params.items()}

    elsewhere = AppTest.from_file(str(app._script_path), default_timeout=60)
    elsewhere.query_params.update({**params, "dataset": "MovieLens 100K"})
    elsewhere.run()
    elsewhere.switch_page(COMPARE).run()
    assert not elsewhere.exception, [e.value for e in elsewhere.exception]
    assert any("'MovieLens 100K', which this session has not loaded" in w.value for w in elsewhere.warning)

    stranger = AppTest.from_file(str(app._script_path), default_timeout=60)
    stranger.query_params.update({**params, "view": "users", "user": "no-such-person"})
    stranger.run()
    stranger.switch_page(COMPARE).run()
    assert not stranger.exception, [e.value for e in stranger.exception]
    # the user id comes from the link: it is escaped on its way into markdown
    assert any(md_unescape(w.value).startswith("User no-such-person is not among the") for w in stranger.warning)
    assert stranger.selectbox(key="compare_user").value == stranger.selectbox(key="compare_user").options[0]


def test_a_single_run_shows_every_view_without_a_paired_test(app):
    app.run()
    app.switch_page(TRAIN).run()
    train(app, "pop")
    app.switch_page(COMPARE).run()
    assert_clean(app)
    assert "Is the difference real?" not in [h.value for h in app.subheader]
    counts = {}
    for view in ("overview", "tradeoffs", "users", "sweep", "sampled"):
        show(app, view)
        counts[view] = len(chart_titles(app))
    assert counts == {"overview": 4, "tradeoffs": 4, "users": 2, "sweep": 0, "sampled": 0}
    assert any(i.value.startswith("Pick at least two runs above") for i in app.info)
    # one run is its own Pareto front
    show(app, "tradeoffs")
    rows = _chart_rows(app.get("vega_lite_chart")[0])
    assert [(r["run"], r["on_front"]) for r in rows] == [("Most popular", True)]


def test_a_link_to_a_dataset_loaded_from_the_servers_disk_opens_it_in_a_fresh_session(app, tmp_path):
    """Another session loaded a file from this server's disk and trained on it: the link opens it too."""
    import pandas as pd
    from streamlit.testing.v1 import AppTest

    from recsys.data import load

    sample = load("sample")
    rows = slice(0, 30_000)
    path = tmp_path / "ratings.csv"
    pd.DataFrame({"user": sample.user_ids[sample.user[rows]], "item": sample.item_ids[sample.item[rows]],
                  "rating": sample.rating[rows]}).to_csv(path, index=False)
    label = "ratings.csv (server)"
    app.session_state["sources"] = {"Sample catalogue (synthetic)": {"kind": "sample",
                                                                     "label": "Sample catalogue (synthetic)"},
                                    label: {"kind": "path", "path": str(path), "label": label}}
    app.session_state["_select_dataset"] = label
    app.run()
    app.switch_page(TRAIN).run()
    train(app, "pop")
    app.switch_page(COMPARE).run()
    assert_clean(app)
    params = {key: value[0] if isinstance(value, list) else value for key, value in app.query_params.items()}
    assert params["dataset"] == label
    original = app.dataframe[0].value

    fresh = AppTest.from_file(str(app._script_path), default_timeout=60)
    fresh.query_params.update(params)
    fresh.run()
    fresh.switch_page(COMPARE).run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert not [w.value for w in fresh.warning if "has not loaded" in w.value]
    assert sidebar_widget(fresh, "selectbox", "Dataset").value == label
    shown = fresh.dataframe[0].value
    assert list(shown["model"]) == list(original["model"])
    assert shown["ndcg@10"].tolist() == original["ndcg@10"].tolist()
