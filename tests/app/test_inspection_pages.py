"""Embeddings and Graph pages through app.py: what a person sees after training a model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.app.test_pages import TRAIN, assert_clean, charts, submit, wait_for_training
from ui.text import md_escape, md_unescape

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
        assert len(own) == 10 and "item" not in near.columns
        # PureSVD's own item-to-item view is the cosine of the same vectors: instead of repeating the left table,
        # the right one shows what it recommends after this title alone, and says why
        assert own["title"].tolist() != near["title"].tolist()
        assert "Recommended after this title alone" in [h.value for h in app.subheader]
        assert any("would repeat the table on the left" in c.value for c in app.caption)
    else:
        low, high = tables
    assert len(low) == 8 and len(high) == 8
    assert low["value"].max() <= high["value"].min()
    assert app.selectbox(key="emb_method").options == ["PCA", "t-SNE"]
    app.selectbox(key="emb_method").set_value("tsne").run(timeout=120)
    assert_clean(app)
    assert charts(app) == [titles[0].replace("(PCA)", "(t-SNE)")]


def test_neighbours_are_found_again_by_item_code_when_titles_repeat():
    import pandas as pd

    from recsys.data import Dataset
    from recsys.inspection.embeddings import neighbours_table, same_items

    frame = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": ["a", "b", "c", "b", "c"], "rating": 1.0})
    items = pd.DataFrame({"item": ["a", "b", "c"], "title": ["Hamlet", "Hamlet", "Heat"]})
    ds = Dataset.from_frame(frame, items=items, item_key="item")
    vectors = np.array([[1.0, 0.0], [0.1, 1.0], [0.9, 0.2]], dtype=np.float32)
    table = neighbours_table(ds, vectors, int(ds.item_codes(["a"])[0]), k=2)
    # the nearest to the first "Hamlet" is "Heat", then the other "Hamlet": by code, not the first title match
    assert table["title"].tolist() == ["Heat", "Hamlet"]
    assert table["item"].tolist() == ds.item_codes(["c", "b"]).tolist()
    assert same_items(table["item"], ds.item_codes(["c", "b"])) and not same_items(table["item"], [2])


def graph_drawn(app) -> tuple[list[dict], list[dict]]:
    """The nodes and edges the Graph page handed to its agraph component."""
    [component] = app.get("component_instance")
    assert component.proto.component_name == "streamlit_agraph.agraph"
    data = json.loads(json.loads(component.proto.json_args)["data"])
    return data["nodes"], data["edges"]


def graph_config(app) -> dict:
    [component] = app.get("component_instance")
    return json.loads(json.loads(component.proto.json_args)["config"])


def test_graph_page_walks_the_graph_and_comes_back(app):
    app.run()
    app.switch_page(GRAPH).run()
    assert_clean(app)
    start = app.selectbox(key="graph_item").value
    title = app.selectbox(key="graph_item").format_func(start).split("  ·  ")[0]
    assert app.subheader[0].value == f"Centred on {md_escape(title)}"
    nodes, edges = graph_drawn(app)
    assert len(nodes) == 1 + 6 + 36 and len({n["id"] for n in nodes}) == len(nodes)
    assert nodes[0]["id"] == f"i{start}" and nodes[0]["title"].startswith(f"Title · {title} · ")
    assert nodes[0]["title"].endswith(" interactions · the centre")
    assert {n["shape"] for n in nodes[1:7]} == {"square"}, "hop 1 around a title: people"
    assert all(len(n["label"]) <= 24 for n in nodes)
    assert len([e for e in edges if e.get("dashes")]) == 0
    assert any(c.value.startswith("42 neighbours within 2 hops") for c in app.caption)
    assert "Train LightGCN" in app.info[0].value

    app.select_slider(key="graph_hops").set_value(3).run()
    assert_clean(app)
    assert len(graph_drawn(app)[0]) == 150
    assert graph_config(app)["physics"]["enabled"] is False, "hops on rings unless forces are asked for"
    app.toggle(key="graph_physics").set_value(True).run()
    assert graph_config(app)["physics"]["enabled"] is True
    assert graph_config(app)["edges"] == {"arrows": "none"} and graph_config(app)["width"] == "100%"

    # what a click on a hop-1 person does (the browser test clicks for real): centre there, keep the path
    person = nodes[1]["id"]
    app.session_state["graph_trail"] = [*app.session_state["graph_trail"], app.session_state["graph_centre"]]
    app.session_state["graph_centre"] = person
    app.run()
    assert_clean(app)
    assert app.subheader[0].value.startswith("Centred on user ")
    moved, _ = graph_drawn(app)
    assert moved[0]["id"] == person and f"i{start}" in {n["id"] for n in moved if n["shape"] == "dot"}
    assert any(c.value.startswith("Path: " + md_escape(title) + " → user ") for c in app.caption)
    app.button(key="graph_back").click().run()
    assert_clean(app)
    assert app.subheader[0].value == f"Centred on {md_escape(title)}"
    assert not [b for b in app.button if b.key == "graph_back"]

    app.radio(key="graph_kind").set_value("user").run()
    assert_clean(app)
    assert app.subheader[0].value.startswith("Centred on user ")
    assert graph_drawn(app)[0][0]["shape"] == "square"


def test_graph_page_highlights_lightgcn_layer_neighbours(app):
    train_models(app, {"lightgcn": "LightGCN"}, epochs=3)
    app.switch_page(GRAPH).run()
    assert_clean(app)
    layers = app.dataframe[0].value
    assert list(layers.columns) == ["after 0 layers", "after 1 layer", "after 2 layers", "after 3 layers"]
    assert len(layers) == 8
    nodes, edges = graph_drawn(app)
    stars = {n["label"] for n in nodes if n["shape"] == "star"}
    assert len([n for n in nodes if n["shape"] == "star"]) == 8
    assert {label[:20] for label in stars} == {title[:20] for title in layers["after 3 layers"]}
    assert len([e for e in edges if e.get("dashes")]) == 8
    app.select_slider(key="graph_layer").set_value(0).run()
    assert_clean(app)
    stars0 = {n["label"][:20] for n in graph_drawn(app)[0] if n["shape"] == "star"}
    assert stars0 == {title[:20] for title in app.dataframe[0].value["after 0 layers"]}
    app.select_slider(key="graph_hops").set_value(1).run()
    assert_clean(app)
    assert any(c.value.startswith("6 neighbours within 1 hop ") for c in app.caption)


def test_attention_page_draws_the_heatmap_and_next_items(app):
    train_models(app, {"sasrec": "SASRec (self-attention)"}, epochs=1, max_len=12, layers=2)
    app.switch_page("app_pages/attention.py").run()
    assert_clean(app)
    [title] = charts(app)
    assert title.startswith("SASRec (self-attention): layer average, head 1")  # two blocks, one head
    table = app.dataframe[0].value
    assert len(table) == 10 and table["score"].is_monotonic_decreasing
    app.selectbox(key="att_layer").set_value(2).run()
    assert_clean(app)
    assert "layer 2" in charts(app)[0]
    app.radio(key="att_source").set_value("type a sequence").run()
    assert_clean(app)
    assert len(app.dataframe[0].value) == 10


def test_attention_reasons_cite_only_the_items_shown(app):
    import html

    train_models(app, {"sasrec": "SASRec (self-attention)"}, epochs=1, max_len=12)
    app.switch_page("app_pages/attention.py").run()
    # the model reads 12; the page shows (and feeds it) the latest 5
    assert app.slider(key="att_window").max == 12 and app.slider(key="att_window").value == 12
    app.slider(key="att_window").set_value(5).run()
    assert_clean(app)
    # the default SASRec has one block and one head: no choice of either, the map names them
    assert not [s for s in app.selectbox if s.key in ("att_layer", "att_head")]
    assert charts(app)[0].startswith("SASRec (self-attention): layer 1, head 1")
    tiles = [html.unescape(md_unescape(m.value.split("**")[1])) for m in app.markdown
             if m.value.startswith("**") and ":gray[" in m.value]
    assert len(tiles) == 5
    assert any("nothing outside them is cited" in c.value for c in app.caption)
    cited = [part.rsplit(" (", 1)[0] for reasons in app.dataframe[0].value["because of"] if reasons != "—"
             for part in reasons.split(", ")]
    assert cited and set(cited) <= set(tiles), set(cited) - set(tiles)


def test_attention_frame_leaves_the_causal_mask_blank():
    from recsys.inspection.attention import attention_frame, is_causal

    causal = np.tril(np.full((4, 4), 0.25))
    frame = attention_frame(causal, np.array(["a", "b", "c", "d"]))
    assert len(frame) == 10 and (frame["key_pos"] <= frame["query_pos"]).all()  # 4·5/2 cells, none above
    full = np.full((3, 3), 1 / 3)
    assert not is_causal(full) and len(attention_frame(full, np.array(["a", "b", "c"]))) == 9
