"""The Compare page's tables, frames and sentences (recsys.evaluation.compare, stats), checked without a UI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation import compare, curve, stats, tradeoffs
from recsys.evaluation.sampled import FULL, sampled_label
from recsys.evaluation.sweep import numeric_params
from recsys.models import get
from tests.unit import test_tradeoffs

sample_runs = test_tradeoffs.sample_runs  # the same fixture: popularity and item kNN on the sample's default split


def spec(run_id: str, model: str, label: str, **params) -> dict:
    return {"run_id": run_id, "model": model, "label": label, "params": params}


# ---------------------------------------------------------------------- choosing runs
def test_run_label_names_only_the_parameters_that_tell_runs_of_one_model_apart():
    runs = [spec("a", "ease", "EASE", lam=100.0, positive=True), spec("b", "ease", "EASE", lam=500.0, positive=True),
            spec("c", "pop", "Most popular")]
    assert compare.run_label(runs[0], runs) == "EASE (lam=100.0)"
    assert compare.run_label(runs[1], runs) == "EASE (lam=500.0)"
    assert compare.run_label(runs[2], runs) == "Most popular"  # the only run of its model: the label alone


def test_selection_keeps_the_choice_adds_new_runs_and_drops_vanished_ones():
    # the person removed "b" on the last visit; "d" was trained since; "c" was deleted
    assert compare.selection(["a", "b", "d"], ["a", "c"], ["a", "b", "c"]) == ["a", "d"]
    # first visit: nothing known, so everything is chosen, in the order given
    assert compare.selection(["a", "b"], ["a", "b"], []) == ["a", "b"]
    # a new run already chosen (by a shared link) is not listed twice
    assert compare.selection(["a", "b"], ["b"], ["a"]) == ["b"]


# ---------------------------------------------------------------------- metrics table
def test_display_table_folds_intervals_into_text_beside_each_mean(sample_runs):
    _, reports = sample_runs
    table = tradeoffs.metrics_table(reports, 10, {"pop": 0.5, "item_knn": 2.0})
    shown = compare.display_table(table)
    assert not [c for c in shown.columns if c.endswith((" low", " high"))]
    assert list(shown.columns[:3]) == ["model", "ndcg@10", "ndcg@10 95% CI"]
    assert shown["fit s"].tolist() == [0.5, 2.0] and "score s" in shown.columns
    for row, name in enumerate(["pop", "item_knn"]):
        low, high = reports[name].ci["ndcg@10"]
        assert shown.at[row, "ndcg@10 95% CI"] == f"{low:.4f} – {high:.4f}"
        assert shown.at[row, "recall@10"] == reports[name].means["recall@10"]
    # a run without an interval (popularity predicts no ratings) gets a blank, not "nan – nan"
    assert shown.at[0, "rmse 95% CI"] == "" and shown.at[1, "rmse 95% CI"].count(" – ") == 1


def test_best_cells_use_the_displayed_headers_and_each_metrics_direction(sample_runs):
    _, reports = sample_runs
    table = tradeoffs.metrics_table(reports, 10, {"pop": 0.5, "item_knn": 2.0})
    best = compare.best_cells(table)
    assert set(best) <= set(compare.display_table(table).columns)
    assert best["fit s"] == [0] and "fit_seconds" not in best  # popularity fitted faster: lower is better
    ndcg = table["ndcg@10"].to_numpy()
    arp = table["arp@10"].to_numpy()
    assert best["ndcg@10"] == [int(np.argmax(ndcg))] and best["arp@10"] == [int(np.argmin(arp))]


def test_metrics_json_is_the_records_as_loadable_json(sample_runs):
    _, reports = sample_runs
    specs = {"pop": spec("r1", "pop", "Most popular"), "item_knn": spec("r2", "item_knn", "Item-item kNN", k=50)}
    loaded = json.loads(compare.metrics_json(reports, specs, {"pop": 0.5}))
    assert [r["run_id"] for r in loaded] == ["r1", "r2"] and loaded[1]["params"] == {"k": 50}
    assert loaded[0]["fit_seconds"] == 0.5 and loaded[1]["fit_seconds"] is None
    assert loaded[1]["means"]["ndcg@10"] == pytest.approx(reports["item_knn"].means["ndcg@10"])


# ---------------------------------------------------------------------- overview frames
def test_overview_frames_carry_each_reports_numbers(sample_runs):
    _, reports = sample_runs
    curves = compare.curves_frame(reports, "recall")
    assert list(curves.columns) == ["k", "metric", "value", "run"] and len(curves) == 2 * 10
    for name, report in reports.items():
        expected = curve(report, "recall")["value"].to_numpy()
        assert np.allclose(curves.loc[curves["run"] == name, "value"], expected)
    interval = compare.interval_frame(reports, "ndcg@10")
    assert interval.to_dict("records")[1] == {"run": "item_knn", "mean": reports["item_knn"].means["ndcg@10"],
                                              "low": reports["item_knn"].ci["ndcg@10"][0],
                                              "high": reports["item_knn"].ci["ndcg@10"][1]}
    coverage = compare.value_frame(reports, "coverage@10")  # list-level: one number per run, no mean
    assert coverage["coverage"].tolist() == [rep.list_level["coverage@10"] for rep in reports.values()]
    novelty = compare.value_frame(reports, "novelty@5")
    assert novelty["novelty"].tolist() == [rep.means["novelty@5"] for rep in reports.values()]


def test_accuracy_metric_and_trade_off_axes_name_real_table_columns(sample_runs):
    _, reports = sample_runs
    assert compare.accuracy_metric("hit", 20) == ("hit@20", "Hit rate@20")
    with pytest.raises(ValueError, match="Unknown accuracy metric 'auc'"):
        compare.accuracy_metric("auc", 10)
    table = tradeoffs.metrics_table(reports, 5)
    for column, *_ in compare.tradeoff_axes(5):
        assert tradeoffs.pareto_frame(table, "ndcg@5", column)["on_front"].any()
    assert [title for _, _, title, _ in compare.tradeoff_axes(5)] == [
        "Accuracy vs catalogue coverage", "Accuracy vs novelty", "Accuracy vs popularity bias"]


def test_bucket_and_segment_sizes_read_one_row_per_bucket_or_segment():
    exposure = pd.DataFrame({"run": ["A", "A", "B", "B"], "bucket": ["head", "tail", "head", "tail"],
                             "items": [12, 1988, 12, 1988]})
    assert compare.bucket_sizes(exposure) == "head: 12 items, tail: 1,988 items"
    segments = pd.DataFrame({"run": ["A", "A"], "segment": ["new", "heavy"], "users": [310, 1200],
                             "low_count": [1, 40], "high_count": [12, 700]})
    assert compare.segment_sizes(segments) == ("new: 310 users with 1–12 interactions; "
                                               "heavy: 1,200 users with 40–700 interactions")


# ---------------------------------------------------------------------- one person
def test_person_lists_show_each_runs_titles_hits_and_ndcg(sample_runs):
    split, reports = sample_runs
    users = compare.evaluated_users(reports, split.train)
    assert users == [str(u) for u in split.train.user_ids[reports["pop"].users]]
    code = int(reports["pop"].users[3])
    frame = compare.person_lists(reports, split.train, code, 5)
    assert list(frame.index) == [1, 2, 3, 4, 5] and frame.index.name == "rank"
    for name, report in reports.items():
        row = int(np.flatnonzero(report.users == code)[0])
        [column] = [c for c in frame.columns if c.startswith(f"{name} (NDCG ")]
        assert column == f"{name} (NDCG {report.per_user['ndcg@5'][row]:.3f})"
        titles = split.train.item_titles(report.recommended[row, :5])
        assert list(frame[column]) == [f"✓ {t}" if hit else str(t) for t, hit in zip(titles, report.hits[row, :5])]


def test_person_lists_pad_a_short_list_and_leave_out_runs_that_did_not_evaluate_the_user(sample_runs):
    split, reports = sample_runs
    code = int(reports["pop"].users[0])
    short = reports["pop"].recommended.copy()
    short[0, 3:] = -1  # a model that could rank only three items for this user
    others = reports["item_knn"].users != code
    clipped = dataclasses.replace(reports["item_knn"], users=reports["item_knn"].users[others])
    frame = compare.person_lists({"short": dataclasses.replace(reports["pop"], recommended=short),
                                  "full": reports["item_knn"], "elsewhere": clipped}, split.train, code, 5)
    short_column, full_column = frame.columns
    assert short_column.startswith("short (NDCG ") and full_column.startswith("full (NDCG ")
    assert len(frame) == 5 and list(frame[short_column])[3:] == ["", ""] and all(frame[full_column])
    with pytest.raises(ValueError, match=f"No run evaluated user code {code}"):
        compare.person_lists({"elsewhere": clipped}, split.train, code, 5)


# ---------------------------------------------------------------------- sweep and sampled
def test_sweepable_models_have_numeric_parameters_and_are_ordered_by_label():
    keys = compare.sweepable_models()
    assert "pure_svd" in keys and "random" not in keys  # random recommendations have nothing numeric to sweep
    assert all(numeric_params(key) for key in keys)
    labels = [get(key).label for key in keys]
    assert labels == sorted(labels)


def test_sweep_progress_and_table_say_where_the_sweep_is_and_what_was_scored():
    assert compare.sweep_progress("PureSVD", "factors", 0, 3, {"value": 4}) == "PureSVD: model 1 of 3 (factors = 4)"
    assert (compare.sweep_progress("BPR-MF", "reg", 1, 3, {"value": 0.01, "epoch": 2, "epochs": 20})
            == "BPR-MF: model 2 of 3 (reg = 0.01, epoch 2/20)")
    assert compare.sweep_progress("PureSVD", "factors", 3, 3, {}) == "PureSVD: model 3 of 3 (done)"
    frame = pd.DataFrame({"value": [4, 16], "valid": [0.1, 0.2], "test": [0.1, 0.15], "loss": [np.nan] * 2,
                          "fit_seconds": [0.1, 0.3]})
    assert list(compare.sweep_table(frame, "factors", "ndcg@10").columns) == [
        "factors", "valid ndcg@10", "test ndcg@10", "final loss", "fit s"]


def test_sampled_table_lines_up_both_protocols_and_their_ratio():
    sampled = sampled_label(100)
    frame = pd.DataFrame({"run": ["A", "A", "B", "B", "A", "B"],
                          "metric": ["hit", "hit", "hit", "hit", "ndcg", "ndcg"],
                          "protocol": [FULL, sampled, FULL, sampled, FULL, FULL],
                          "value": [0.1, 0.5, 0.0, 0.3, 0.05, 0.02]})
    table = compare.sampled_table(frame, "hit", 100)
    assert list(table.columns) == ["model", FULL, sampled, compare.INFLATION]
    assert table["model"].tolist() == ["A", "B"]
    assert table.at[0, compare.INFLATION] == pytest.approx(5.0)
    assert np.isnan(table.at[1, compare.INFLATION])  # nothing to inflate: blank, not infinity


def test_chart_filename_is_a_short_plain_stem():
    assert compare.chart_filename("NDCG@10 (95% bootstrap interval)") == "ndcg_10__95__bootstrap_interval"
    assert compare.chart_filename("¿?") == "chart"
    assert len(compare.chart_filename("x" * 100)) == 60


# ---------------------------------------------------------------------- significance
@pytest.mark.parametrize("d,label", [(0.0, "negligible"), (0.19, "negligible"), (-0.2, "small"), (0.49, "small"),
                                     (0.5, "medium"), (0.8, "large"), (-np.inf, "large")])
def test_effect_size_labels_follow_cohens_thresholds(d, label):
    assert stats.effect_size_label(d) == label


def test_significance_details_never_print_p_as_zero_and_explain_a_negligible_real_difference():
    test = {"t_pvalue": 0.0, "wilcoxon_pvalue": 2.2e-5, "cohens_d": -0.1, "n": 12345}
    first, second = stats.significance_details(test)
    assert first == ("Paired t-test p < 1e-300 · Wilcoxon signed-rank p = 2.2e-05 · effect size |d| = 0.10 "
                     "(negligible; 0.2 small, 0.5 medium, 0.8 large) over 12,345 users.")
    assert second.startswith("With this many users even a negligible difference is detectable")
    # not significant, or not negligible: the details alone
    assert len(stats.significance_details({**test, "t_pvalue": 0.3})) == 1
    assert len(stats.significance_details({**test, "cohens_d": 0.6})) == 1


def test_significance_details_describe_a_real_paired_test(sample_runs):
    _, reports = sample_runs
    from recsys.evaluation import compare_reports

    test = compare_reports(reports["item_knn"], reports["pop"], "ndcg@10")
    [first, *_] = stats.significance_details(test)
    assert f"over {test['n']:,} users." in first
    assert f"|d| = {abs(test['cohens_d']):.2f} ({stats.effect_size_label(test['cohens_d'])};" in first


# ---------------------------------------------------------------------- charts: one colour per model, clear labels
def rendered_label_boxes(chart, width: int) -> list[tuple]:
    """(text, left, top, right, bottom) of every text mark in ``chart`` rendered to SVG at ``width`` pixels."""
    import re

    import vl_convert

    from ui import charts

    spec = chart.properties(width=width).to_dict()
    spec.pop("autosize", None)
    svg = vl_convert.vegalite_to_svg(spec)
    boxes = []
    for anchor, x, y, text in re.findall(r'aria-roledescription="text mark" text-anchor="(\w+)" '
                                         r'transform="translate\(([\d.\-]+),([\d.\-]+)\)"[^>]*>([^<]*)<', svg):
        x, y, wide = float(x), float(y), charts.label_width(text) - 4
        left = {"start": x, "middle": x - wide / 2, "end": x - wide}[anchor]
        boxes.append((text, left, y - 5.5, left + wide, y + 5.5))
    return boxes


def overlapping(boxes: list[tuple]) -> list[tuple[str, str]]:
    """Pairs of boxes (text, left, top, right, bottom) that share any area."""
    return [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if min(a[3], b[3]) > max(a[1], b[1]) and min(a[4], b[4]) > max(a[2], b[2])]


CROWDED = pd.DataFrame({"run": ["Item-item kNN", "EASE", "Most popular", "User-user kNN", "iALS", "BPR-MF"],
                        "ndcg@10": [0.30, 0.301, 0.1, 0.299, 0.28, 0.302],
                        "coverage@10": [0.40, 0.41, 0.02, 0.395, 0.5, 0.405], "on_front": [True] * 6})


@pytest.mark.parametrize("width", [260, 400, 900])
def test_tradeoff_scatter_labels_of_a_tight_cluster_do_not_overlap(width):
    from ui import charts

    chart = charts.tradeoff_scatter(CROWDED, "ndcg@10", "coverage@10", "NDCG@10", "Coverage@10", "t", "%")
    boxes = rendered_label_boxes(chart, width)
    assert sorted(box[0] for box in boxes) == sorted(CROWDED["run"])
    assert not overlapping(boxes)


def test_place_labels_keeps_labels_off_each_other_and_off_the_points():
    from ui import charts

    # four points within 3 pixels of each other: one spot each, all different, none covering a point
    x, y = np.array([100.0, 101, 102, 103]), np.array([100.0, 102, 99, 101])
    names = ["EASE", "BPR-MF", "User-user kNN", "Item-item kNN"]
    spots = charts.place_labels(x, y, names, 240, 220)
    boxes = charts.label_boxes(x, y, names, spots)
    assert len(set(spots)) == 4
    for i, box in enumerate(boxes):
        for j, other in enumerate(boxes):
            if i != j:
                assert min(box[2], other[2]) <= max(box[0], other[0]) or min(box[3], other[3]) <= max(box[1], other[1])
        points = np.column_stack([x - charts.POINT_HALF, y - charts.POINT_HALF, x + charts.POINT_HALF,
                                  y + charts.POINT_HALF])
        assert charts._overlap(tuple(box), points) == 0
    # a lone point takes the first spot: above it
    assert charts.place_labels(np.array([50.0]), np.array([50.0]), ["EASE"], 240, 220) == ["above"]


def test_one_colour_per_model_whatever_else_a_chart_shows():
    import json

    from ui import charts

    assert charts.model_of("EASE (lam=100.0)") == "ease" and charts.model_of("NCF: NeuMF") == "neumf"
    assert charts.model_of("A: iALS") == "ials"
    from recsys.models import registry

    keys = list(registry)
    colours = [charts.model_colour(key) for key in keys]
    assert len(set(colours)) == min(len(keys), len(charts.MODEL_PALETTE))  # distinct while the palette lasts
    assert charts.model_colour("gone_model") == charts.model_colour("gone_model")

    def colour_of(chart, run: str) -> str:
        spec = chart.to_dict()
        for found in _scales(spec):
            if run in found["domain"]:
                return found["range"][found["domain"].index(run)]
        raise AssertionError(f"{run} has no colour in {json.dumps(spec)[:200]}")

    two = pd.DataFrame({"run": ["EASE", "Most popular"], "k": [10, 10], "value": [0.3, 0.1], "mean": [0.3, 0.1],
                        "low": [0.2, 0.0], "high": [0.4, 0.2], "coverage": [0.5, 0.1]})
    three = pd.DataFrame({"run": ["iALS", "EASE", "BPR-MF"], "k": [10] * 3, "value": [0.2, 0.3, 0.25],
                          "mean": [0.2, 0.3, 0.25], "low": [0.1] * 3, "high": [0.4] * 3, "coverage": [0.2] * 3})
    drawn = [charts.metric_curves(two, "ndcg"), charts.bars_with_ci(three, "NDCG@10"),
             charts.simple_bars(three, "coverage", "c"),
             charts.tradeoff_scatter(CROWDED, "ndcg@10", "coverage@10", "N", "C", "t", "%")]
    assert {colour_of(chart, "EASE") for chart in drawn} == {charts.model_colour("ease")}


def _scales(spec):
    """Every colour scale with an explicit domain in a Vega-Lite spec (nested layers included)."""
    if isinstance(spec, dict):
        scale = spec.get("scale")
        if isinstance(scale, dict) and "domain" in scale and "range" in scale and isinstance(scale["range"], list):
            yield scale
        for value in spec.values():
            yield from _scales(value)
    elif isinstance(spec, list):
        for value in spec:
            yield from _scales(value)
