"""Attention page: which past items a transformer looks at when it predicts the next one."""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys.inspection import attention as att
from ui import charts, pages, runs
from ui.errors import attempt
from ui.text import md_escape

st.title("Attention")
st.caption("A self-attention model reads a person's history in order and, at every step, decides how much each "
           "earlier item matters for what comes next. Darker cells = more attention.")

candidates = pages.require_trained(
    "attention", what="with attention",
    advice="Train {examples} on the Train page (a leave-last-out split in the sidebar is the natural setting "
           "for sequential models).")

name = st.selectbox("Model", list(candidates), key="att_model")
model = runs.result(candidates[name])["model"]
train = model.trained_on
titles = train.item_titles()
max_len = att.model_window(model)

source = st.radio("Sequence", ["a user's history", "type a sequence"], key="att_source", horizontal=True)
if source == "a user's history":
    order = np.argsort(-train.user_activity, kind="stable")
    user = st.selectbox("User (most active first)", order, key="att_user",
                        format_func=lambda u: f"user {train.user_ids[u]} · {train.user_activity[u]} interactions")
    sequence = attempt("Reading the history", att.user_sequence, train, int(user))
else:
    popular = train.items_by_popularity()
    picked = st.multiselect("Items in the order they were consumed", popular, key="att_typed", max_selections=30,
                            format_func=lambda i: str(titles[i]), default=list(popular[:3]))
    sequence = np.asarray(picked, dtype=np.int64)
if len(sequence) == 0:
    st.info("Pick at least one item.")
    st.stop()

# Everything below (the map, the recommendations, their reasons) reads exactly the tiles shown: citing a title
# outside them would point at something the person cannot see.
most = min(len(sequence), max_len)
if most > 1:
    window = st.slider("Latest items the model reads", 1, most, min(20, most), key="att_window",
                       help=f"{name} can read up to {max_len} items; fewer keep the map legible.")
else:
    window = most
shown = sequence[-window:]
st.markdown(f"**What the model reads: the last {len(shown)} of {len(sequence)} items, oldest first**")
st.caption(f"The map, the recommendations and their reasons below all come from these {len(shown)} items "
           f"(the model can read up to {max_len}); nothing outside them is cited.")
for start in range(0, len(shown), 5):
    for col, item in zip(st.columns(5), shown[start:start + 5]):
        genres = md_escape(", ".join(train.item_genres()[item][:2]))
        col.container(border=True).markdown(f"**{md_escape(titles[item])}**  \n:gray[{genres}]")

weights = attempt("Computing attention", model.attention, shown)
layers, heads = weights.shape[0], weights.shape[1]
a, b = st.columns(2)
# a choice between "average" and the only layer (or head) would show the same map twice
layer = a.selectbox("Layer", ["average", *range(1, layers + 1)], key="att_layer") if layers > 1 else 1
head = b.selectbox("Head", ["average", *range(1, heads + 1)], key="att_head") if heads > 1 else 1
matrix = att.attention_map(weights, None if layer == "average" else layer - 1, None if head == "average" else head - 1)
st.altair_chart(charts.attention_heatmap(att.attention_frame(matrix, titles[shown]),
                                         f"{name}: layer {layer}, head {head}"), width="stretch")
if att.is_causal(matrix):
    st.caption("Each row sums to 1; the blank upper triangle is the causal mask: a position never sees the future.")
else:
    st.caption("Each row sums to 1.")

st.subheader("What it recommends next, and why")
k = st.slider("How many", 5, 20, 10, key="att_k")
table = attempt("Recommending", att.next_items_with_influences, model, shown, k)
st.dataframe(table, hide_index=True, column_config={"score": st.column_config.NumberColumn(format="%.3f")})
st.caption(f"Recommended after the {len(shown)} items shown above. “Because of” = the past items with the highest attention from the last position (last layer) times "
           "their similarity to the recommended item; the percentage is that item's share of all such influence.")
