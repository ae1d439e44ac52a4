"""Serving page through app.py: the retrieve-then-rank trade-off after training real models."""

from __future__ import annotations

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
    train_models(app, {"pure_svd": "PureSVD", "item_knn": "Item-item kNN"})
    app.switch_page(SERVING).run()
    assert_clean(app)
    # only PureSVD has user and item vectors; item-kNN is offered as a ranker
    assert app.selectbox(key="serving_retriever").options == ["PureSVD"]
    assert "Item-item kNN" in app.selectbox(key="serving_ranker").options
    app.multiselect(key="serving_counts").set_value([20, 100, 1000]).run()
    app.number_input(key="serving_requests").set_value(20).run()
    assert_clean(app)
    assert charts(app) == ["Trade-off: recall against latency", "Latency per request as the candidate count grows"]
    table = app.dataframe[0].value
    assert table["setting"].tolist() == ["20 candidates", "100 candidates", "1,000 candidates",
                                         "exact: all 2,000 items"]
    # re-scoring PureSVD's own candidates exactly: an HNSW index over 2,000 items misses (almost) nothing
    assert (table["recall"] >= 0.97).all() and table["recall"].iloc[-1] == 1.0
    assert (table["p50_ms"] <= table["p99_ms"]).all()

    app.selectbox(key="serving_ranker").set_value("Item-item kNN").run()
    assert_clean(app)
    reranked = app.dataframe[0].value
    recall = reranked["recall"].to_numpy()[:-1]
    # item-kNN's favourites are not all among PureSVD's 20 best, but more candidates find more of them
    assert recall[0] < 1.0 and np.all(np.diff(recall) >= -1e-9) and recall[-1] > recall[0]


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
