"""Graph page: walk the user–item graph around a person or a title, and see what LightGCN's layers do.

Drawn with streamlit-agraph (vis-network in a component frame): nodes can be dragged, the view
zoomed and panned, hovering shows a node's details, and the component *returns the clicked
node's id*, which is what re-centring on a click needs. pyvis was the other candidate: it writes
a static HTML page that Streamlit can only show in an iframe with no value coming back, so a click
could never reach the page. The component's JavaScript ships inside its wheel: nothing is fetched
from another host. Its hover text is plain text (vis-network shows strings literally, on one
line), and a double click on a node makes the component open its hover text as a link: a
same-site path, harmless (see ``graph.describe``), but a stray tab; the component has no switch
for it.
"""

from __future__ import annotations

import html

import numpy as np
import streamlit as st
from streamlit_agraph import Config, Edge, Node, agraph

from recsys.data.errors import DataError
from recsys.inspection import graph
from recsys.models.capabilities import example_list
from ui import data, runs
from ui.errors import attempt
from ui.text import md_escape

MAX_NODES = 150
# Colour-blind-safe-ish qualitative palette (Tableau 10 + lighter companions); people are slate squares.
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#a0cbe8", "#ffbe7d", "#8cd17d", "#86bcb6", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e"]
USER_COLOUR = "#3b4252"
HIGHLIGHT_BORDER = "#d62728"

st.title("Graph")
st.caption("Recommendation data is a bipartite graph: people on one side, titles on the other, an edge for "
           "every interaction. Graph models spread taste along these edges, hop by hop. Drag nodes, scroll to "
           "zoom, hover for details, click a node to centre the graph on it.")

dataset = attempt("Loading the dataset", data.current_dataset)
split = attempt("Splitting the data", data.current_split)
train = split.train

top = st.columns([1, 3, 1, 1])
kind = top[0].radio("Start from", ["item", "user"], key="graph_kind", horizontal=True)
if kind == "item":
    titles = train.item_titles()
    order = train.items_by_popularity()
    code = top[1].selectbox("Title (most popular first)", order, key="graph_item",
                            format_func=lambda i: f"{titles[i]}  ·  {train.item_popularity[i]} interactions")
else:
    order = np.argsort(-train.user_activity, kind="stable")
    code = top[1].selectbox("User (most active first)", order, key="graph_user",
                            format_func=lambda u: f"user {train.user_ids[u]}  ·  {train.user_activity[u]} interactions")
hops = top[2].select_slider("Hops", [1, 2, 3], value=2, key="graph_hops")
per_node = top[3].number_input("Neighbours per node", 2, 20, 6, key="graph_fanout",
                               help="Each node shows at most this many neighbours (sampled, favouring "
                                    f"well-connected ones), and the whole graph at most {MAX_NODES} nodes, so the "
                                    "drawing stays readable.")

# The walk: where it started (dataset + picked node), the current centre and the way back.
start = (train.fingerprint, graph.node_id(kind, int(code)))
if st.session_state.get("graph_start") != start:  # a new pick in the boxes above starts a new walk
    st.session_state.graph_start = start
    st.session_state.graph_centre = start[1]
    st.session_state.graph_trail = []
centre = st.session_state.graph_centre
trail: list[str] = st.session_state.graph_trail
try:
    centre_kind, centre_code = graph.parse_node(train, centre)
except DataError:  # a centre left over from another dataset: start again from the pick
    centre, trail = start[1], []
    st.session_state.graph_centre, st.session_state.graph_trail = centre, trail
    centre_kind, centre_code = graph.parse_node(train, centre)


@st.cache_data(show_spinner="Walking the graph…", max_entries=64)
def walked(fingerprint: str, centre: str, hops: int, per_node: int) -> graph.Subgraph:
    return graph.subgraph(train, centre, hops=hops, per_node=per_node, max_nodes=MAX_NODES)


sub = attempt("Walking the graph", walked, train.fingerprint, centre, hops, int(per_node))

lightgcn = runs.trained_here("graph_layers")
layer_codes = None
if lightgcn:
    pick = st.columns([3, 2])
    run_name = pick[0].selectbox("LightGCN run", list(lightgcn), key="graph_lightgcn")
    model = runs.result(lightgcn[run_name])["model"]
    layer_codes = graph.layer_neighbour_codes(model, centre_kind, centre_code, k=8)
    layer = pick[1].select_slider("Highlight nearest items after layer", list(range(len(layer_codes))),
                                  value=len(layer_codes) - 1, key="graph_layer",
                                  help="Red-ringed stars: the 8 items nearest to the centre in LightGCN's embeddings "
                                       "after this many propagation layers; a dashed line joins those outside the "
                                       "sampled neighbourhood.")
    sub = graph.highlight(train, sub, layer_codes[layer])

middle = sub.node(centre)
st.subheader(f"Centred on {md_escape(middle.name)}")
if trail:
    back, path = st.columns([1, 5], vertical_alignment="center")
    previous = graph.display_name(train, trail[-1])
    if back.button("← Back", key="graph_back", help=f"Centre on {md_escape(previous)} again."):
        st.session_state.graph_centre = trail.pop()
        st.rerun()
    path.caption("Path: " + " → ".join(md_escape(graph.display_name(train, n)) for n in [*trail, centre]))

genre_names = train.genre_matrix[1]
colour_of = {g: PALETTE[j % len(PALETTE)] for j, g in enumerate(genre_names)}


def as_agraph(node: graph.GraphNode) -> Node:
    colour = USER_COLOUR if node.kind == "user" else colour_of.get(node.genre, "#bab0ac")
    # a square of size s is drawn 2s wide, like a dot of radius s; people are often far more active than a
    # title is popular, so their squares are scaled down to keep a 3-hop ring from overlapping
    size = (5 + 2 * float(np.log1p(node.degree))) * (0.7 if node.kind == "user" else 1.0) + (8 if node.hop == 0 else 0)
    return Node(id=node.id, label=node.label, title=graph.describe(node), x=node.x, y=node.y, size=size,
                shape="star" if node.highlight else "square" if node.kind == "user" else "dot",
                color={"background": colour, "border": HIGHLIGHT_BORDER if node.highlight or node.hop == 0 else colour},
                borderWidth=4 if node.hop == 0 or node.highlight else 1,
                font={"size": 16 if node.hop <= 1 else 11})


EDGE_STYLE = {"tree": {"color": "#8a8a8a", "width": 1.5},
              "interaction": {"color": "#d0d0d0", "width": 0.5},
              "similar": {"color": HIGHLIGHT_BORDER, "width": 1.5, "dashes": True}}
physics = st.toggle("Let the graph settle by forces", key="graph_physics",
                    help="Off: hops on rings around the centre. On: vis-network's force layout moves nodes.")
config = Config(height=640, width=1000, directed=False, physics=physics, hierarchical=False,
                interaction={"hover": True, "tooltipDelay": 120, "navigationButtons": False, "zoomView": True,
                             "dragView": True, "dragNodes": True, "multiselect": False})
config.width = "100%"  # the constructor writes pixels; vis-network also takes a share of the frame
clicked = agraph([as_agraph(n) for n in sub.nodes],
                 [Edge(source=e.source, target=e.target, **EDGE_STYLE[e.kind]) for e in sub.edges], config)
if clicked and clicked != centre and clicked in {n.id for n in sub.nodes}:
    trail.append(centre)
    st.session_state.graph_centre = clicked
    st.rerun()

counts = sub.per_hop()
outside = f" · {counts[-1]} highlighted items beyond them" if counts.get(-1) else ""
st.caption(f"{sum(n for h, n in counts.items() if h > 0)} neighbours within {sub.hops} hop{'s' if sub.hops > 1 else ''} (sampled, at most "
           f"{MAX_NODES} nodes): " + " · ".join(
               f"hop {h}: {n} {'users' if (h % 2 == 1) == (centre_kind == 'item') else 'items'}"
               for h, n in counts.items() if h > 0) + outside + ". Squares are people, dots are titles coloured by "
           "their first genre; size grows with the number of interactions.")
shown_genres = sorted({n.genre for n in sub.nodes if n.kind == "item"}, key=lambda g: (g not in colour_of, g))
st.html("<div style='font-size:0.85rem;line-height:1.8'>" + " ".join(
    f"<span style='white-space:nowrap;margin-right:0.8em'><span style='display:inline-block;width:0.8em;"
    f"height:0.8em;border-radius:50%;background:{colour_of.get(g, '#bab0ac')}'></span> {html.escape(g)}</span>"
    for g in shown_genres) + f" <span style='white-space:nowrap'><span style='display:inline-block;width:0.8em;"
    f"height:0.8em;background:{USER_COLOUR}'></span> user</span></div>")

st.subheader("How LightGCN's layers pull neighbours together")
if layer_codes is None:
    st.info(f"Train {example_list('graph_layers')} on the Train page to see, for this node, its nearest items "
            "after 0, 1, 2 and 3 propagation layers, highlighted on the graph.")
else:
    st.dataframe(graph.layer_neighbours(model, centre_kind, centre_code, k=8), hide_index=True)
    st.caption("Layer 0 is the raw (ego) embedding; every layer averages in the neighbours' embeddings, so "
               "titles watched by the same people drift together.")
