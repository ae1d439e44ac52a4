"""Serving page through app.py: the retrieve-then-rank trade-off after training real models."""

from __future__ import annotations

import json

import numpy as np

from recsys.models.capabilities import example_list
from tests.app.test_inspection_pages import train_models
from tests.app.test_pages import assert_clean, charts

SERVING = "app_pages/serving.py"


def test_serving_page_without_embedding_models_points_to_train(app):
    app.run()
    app.switch_page(SERVING).run()
    assert_clean(app)
    assert "No trained model with user and item embeddings" in app.info[0].value
    # the examples come from the registry's capabilities, not from a list written into the page
    assert example_list("user_embeddings", "item_embeddings") in app.info[0].value
    assert app.info[0].value.count("Go to Train") == 0 and "Go to Train" in [link.label for link in app.get("page_link")]


def test_serving_page_draws_the_tradeoff_and_latency_table(app):
    # Most popular is trained before item-kNN: the default ranker is the stronger one, not the first one
    train_models(app, {"pure_svd": "PureSVD", "pop": "Most popular", "item_knn": "Item-item kNN"})
    app.switch_page(SERVING).run()
    assert_clean(app)
    # only PureSVD has user and item vectors; the others are offered as rankers, and the one with the best NDCG@10
    # is the default: re-scoring the retriever's own candidates would keep a flat 100 % recall that teaches nothing
    assert app.selectbox(key="serving_retriever").options == ["PureSVD"]
    assert app.selectbox(key="serving_ranker").options == ["same as retrieval", "Most popular", "Item-item kNN"]
    assert app.selectbox(key="serving_ranker").value == "Item-item kNN"
    assert app.multiselect(key="serving_counts").value[0] == 10  # the cheapest retrieval shows the loss
    # the headline describes 20 candidates, twice the list: lean enough to lose some of the ranker's favourites
    assert app.selectbox(key="serving_served").value == 20
    assert app.metric[1].label == "Recall@10 with 20 candidates"
    headline = float(app.metric[1].value.rstrip("%"))
    assert headline < 95.0
    meaning = next(c.value for c in app.caption if c.value.startswith("**Recall@10** is the share"))
    assert r"Item\-item kNN recommends after scoring all 2,000 items" in meaning and "PureSVD's 20 candidates" in meaning
    assert f"{headline:.1f}% here, so {10 * (1 - headline / 100):.1f} of every 10 favourites are lost" in meaning
    app.selectbox(key="serving_served").set_value(1000).run()
    assert app.metric[1].label == "Recall@10 with 1,000 candidates"
    assert float(app.metric[1].value.rstrip("%")) > headline
    app.multiselect(key="serving_counts").set_value([20, 100, 1000]).run()
    app.number_input(key="serving_requests").set_value(20).run()
    assert_clean(app)
    assert charts(app) == ["Trade-off: recall against latency", "Latency per request as the candidate count grows"]
    reranked = app.dataframe[0].value
    assert reranked["setting"].tolist() == ["20 candidates", "100 candidates", "1,000 candidates",
                                            "exact: all 2,000 items"]
    recall = reranked["recall"].to_numpy()[:-1]
    # item-kNN's favourites are not all among PureSVD's 20 best, but more candidates find more of them
    assert recall[0] < 1.0 and np.all(np.diff(recall) >= -1e-9) and recall[-1] > recall[0]
    # every timing is the median of three rounds, and the spread of p99 over the rounds is shown and explained
    assert (reranked["p99_low_ms"] <= reranked["p99_ms"]).all()
    assert (reranked["p99_ms"] <= reranked["p99_high_ms"]).all()
    note = next(c.value for c in app.caption if c.value.startswith("Timings are noisy"))
    assert "median of 3 rounds of 20 requests" in note and "read p99 as a range" in note

    app.selectbox(key="serving_ranker").set_value("same as retrieval").run()
    assert_clean(app)
    table = app.dataframe[0].value
    # re-scoring PureSVD's own candidates exactly: an HNSW index over 2,000 items misses (almost) nothing
    assert (table["recall"] >= 0.97).all() and table["recall"].iloc[-1] == 1.0
    assert (table["p50_ms"] <= table["p99_ms"]).all()


def test_serving_tradeoff_labels_sit_clear_of_each_other_in_the_rankers_colour():
    """The trade-off chart places each candidate count's label where it covers no other (one cluster of points at
    nearly the same latency is the common case), and draws the line in the ranking model's colour."""
    import pandas as pd

    from tests.unit.test_compare_views import overlapping, rendered_label_boxes
    from ui import charts as ui_charts

    two_stage = pd.DataFrame({"stage": "two-stage", "candidates": [50, 100, 200, 500, 1000],
                              "retrieval_recall": 0.9, "recall": [0.80, 0.86, 0.90, 0.93, 0.95],
                              "p50_ms": [0.50, 0.51, 0.52, 0.55, 0.60], "p99_ms": 1.0, "mean_ms": 0.6})
    exact = pd.Series({"stage": "exact", "candidates": 2000, "retrieval_recall": 1.0, "recall": 1.0,
                       "p50_ms": 0.53, "p99_ms": 1.0, "mean_ms": 0.6})
    chart = ui_charts.serving_tradeoff(two_stage, exact, ui_charts.model_colour("item_knn"))
    for width in (300, 500, 900):
        boxes = rendered_label_boxes(chart, width)
        assert len(boxes) == 6 and not overlapping(boxes), (width, boxes)
    spec = json.loads(chart.to_json())
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["mark"]["color"] == ui_charts.model_colour("item_knn")


def test_serving_page_grows_the_catalogue_on_request(app):
    train_models(app, {"pure_svd": "PureSVD"})
    app.switch_page(SERVING).run()
    app.multiselect(key="serving_counts").set_value([50]).run()
    app.number_input(key="serving_requests").set_value(20).run()
    app.multiselect(key="serving_scale_sizes").set_value([10_000]).run()
    app.button(key="serving_scale_run").click().run()
    assert_clean(app)
    assert "Median latency as the catalogue grows" in charts(app)
    growth = app.dataframe[1].value
    # HNSW at its default width (ef_search 128, raised to the 200 candidates asked for) and a wide one
    assert growth["items"].tolist() == [10_000, 10_000]
    assert growth["search_width"].tolist() == [200, 800]
    assert (growth["recall"] >= 0.5).all() and (growth["recall"] <= 1.0).all()
    assert growth["recall"].iloc[1] >= growth["recall"].iloc[0] - 0.02
    growth_chart = next(c for c in app.get("vega_lite_chart")
                        if "catalogue grows" in c.proto.spec)
    domain = json.loads(growth_chart.proto.spec)["encoding"]["x"]["scale"]["domain"]
    # the axis fits the measured 10,000 items, not a decade beyond them
    assert domain[0] < 10_000 < domain[1] < 20_000
