"""Embeddings and Graph pages through app.py: what a person sees after training a model."""

from __future__ import annotations

import pytest

from tests.app.test_pages import TRAIN, assert_clean, charts, submit, wait_for_training

EMBEDDINGS = "app_pages/embeddings.py"
GRAPH = "app_pages/graph.py"


def train_models(app, keys_labels: dict[str, str], **params) -> None:
    """Train each model from the Train page; ``params`` set form fields (e.g. epochs=3) first."""
    app.run()
    app.switch_page(TRAIN).run()
    app.multiselect(key="train_models").set_value(list(keys_labels)).run()
    for key, label in keys_labels.items():
        for name, value in params.items():
            app.number_input(key=f"param_{key}.{name}").set_value(value)
        submit(app, f"Train {label}")
        assert len(wait_for_training(app, label, timeout=300)) == 1
    assert_clean(app)


def test_embeddings_page_without_models_points_to_train(app):
    app.run()
    app.switch_page(EMBEDDINGS).run()
    assert_clean(app)
    assert "No trained model with embeddings" in app.info[0].value


@pytest.mark.parametrize("what", ["items", "users"])
def test_embeddings_page_draws_the_map_neighbours_and_dimensions(app, what):
    train_models(app, {"pure_svd": "PureSVD"})
    app.switch_page(EMBEDDINGS).run()
    assert_clean(app)
    app.radio(key="emb_what").set_value(what).run()
    assert_clean(app)
    titles = charts(app)
    assert titles == [f"PureSVD: {what[:-1]} embeddings (PCA), " + (
        f"{2000:,} items" if what == "items" else f"{2500:,} users")]
    tables = [d.value for d in app.dataframe]
    if what == "items":
        near, own, low, high = tables
        assert len(near) == 10 and near["similarity"].is_monotonic_decreasing
        assert len(own) == 10
    else:
        low, high = tables
    assert len(low) == 8 and len(high) == 8
    assert low["value"].max() <= high["value"].min()
    assert app.selectbox(key="emb_method").options == ["PCA", "t-SNE"]
    app.selectbox(key="emb_method").set_value("tsne").run(timeout=120)
    assert_clean(app)
    assert charts(app) == [titles[0].replace("(PCA)", "(t-SNE)")]


def test_graph_page_draws_a_neighbourhood_and_lightgcn_layers(app):
    train_models(app, {"lightgcn": "LightGCN"}, epochs=3)
    app.switch_page(GRAPH).run()
    assert_clean(app)
    [title] = charts(app)
    assert "neighbours within 2 hops" in title
    app.select_slider(key="graph_hops").set_value(1).run()
    assert_clean(app)
    assert "within 1 hop " in charts(app)[0]
    layers = app.dataframe[0].value
    assert list(layers.columns) == ["after 0 layers", "after 1 layer", "after 2 layers", "after 3 layers"]
    assert len(layers) == 8
    app.radio(key="graph_kind").set_value("user").run()
    assert_clean(app)
    assert charts(app)[0].startswith("user ")


def test_attention_page_draws_the_heatmap_and_next_items(app):
    train_models(app, {"sasrec": "SASRec (self-attention)"}, epochs=1, max_len=12, hidden=16)
    app.switch_page("app_pages/attention.py").run()
    assert_clean(app)
    [title] = charts(app)
    assert title.startswith("SASRec (self-attention): layer average, head average")
    table = app.dataframe[0].value
    assert len(table) == 10 and table["score"].is_monotonic_decreasing
    app.selectbox(key="att_layer").set_value(2).run()
    assert_clean(app)
    assert "layer 2" in charts(app)[0]
    app.radio(key="att_source").set_value("type a sequence").run()
    assert_clean(app)
    assert len(app.dataframe[0].value) == 10
