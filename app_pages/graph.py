"""Graph page: the user–item graph around a person or a title, and what LightGCN's layers do."""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys.inspection import graph
from ui import charts, data, runs
from ui.errors import attempt

st.title("Graph")
st.caption("Recommendation data is a bipartite graph: people on one side, titles on the other, an edge for "
           "every interaction. Graph models spread taste along these edges, hop by hop.")

dataset = attempt("Loading the dataset", data.current_dataset)
split = attempt("Splitting the data", data.current_split)
train = split.train

top = st.columns([1, 3, 1, 1])
kind = top[0].radio("Centre on", ["item", "user"], key="graph_kind", horizontal=True)
if kind == "item":
    titles = train.item_titles()
    order = np.argsort(-train.item_popularity, kind="stable")
    code = top[1].selectbox("Title (most popular first)", order, key="graph_item",
                            format_func=lambda i: f"{titles[i]}  ·  {train.item_popularity[i]} interactions")
else:
    order = np.argsort(-train.user_activity, kind="stable")
    code = top[1].selectbox("User (most active first)", order, key="graph_user",
                            format_func=lambda u: f"user {train.user_ids[u]}  ·  {train.user_activity[u]} interactions")
hops = top[2].select_slider("Hops", [1, 2, 3], value=2, key="graph_hops")
per_node = top[3].number_input("Neighbours per node", 2, 20, 6, key="graph_fanout",
                               help="Each node shows at most this many neighbours (sampled, favouring "
                                    "well-connected ones) so the drawing stays readable.")


@st.cache_data(show_spinner="Walking the graph…", max_entries=64)
def drawing(fingerprint: str, kind: str, code: int, hops: int, per_node: int):
    nodes, edges = graph.neighbourhood(train, kind, code, hops=hops, per_node=per_node, max_nodes=150)
    nodes = graph.radial_layout(nodes)
    return nodes, graph.edge_segments(nodes, edges)


nodes, segments = attempt("Drawing the neighbourhood", drawing, train.fingerprint, kind, int(code), hops,
                          int(per_node))
centre = nodes.loc[nodes["hop"] == 0, "label"].iloc[0]
st.altair_chart(charts.graph_drawing(nodes, segments, f"{centre}: {len(nodes) - 1} neighbours within {hops} "
                                                      f"hop{'s' if hops > 1 else ''} (sampled)"), width="stretch")
counts = nodes.groupby("hop").size()
st.caption("Rings are hops from the centre. " + " · ".join(
    f"hop {h}: {n} {'users' if (h % 2 == 1) == (kind == 'item') else 'items'} shown" for h, n in counts.items()
    if h > 0) + ". Hover a node for its name and degree.")

st.subheader("How LightGCN's layers pull neighbours together")
lightgcn = {name: spec for name, spec in runs.trained_here("layer_embeddings").items()}
if not lightgcn:
    st.info("Train LightGCN on the Train page to see, for this node, its nearest items after 0, 1, 2 and 3 "
            "propagation layers.")
else:
    name = st.selectbox("LightGCN run", list(lightgcn), key="graph_lightgcn")
    model = runs.result(lightgcn[name])["model"]
    table = graph.layer_neighbours(model, kind, int(code), k=8)
    st.dataframe(table, hide_index=True)
    st.caption("Layer 0 is the raw (ego) embedding; every layer averages in the neighbours' embeddings, so "
               "titles watched by the same people drift together.")
