"""Embeddings page: any trained model's item or user vectors on a 2-D map, neighbours, dimensions."""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys.inspection import embeddings as emb
from recsys.models.capabilities import has
from ui import charts, pages, runs, state
from ui.errors import attempt
from ui.text import md_escape

st.title("Embeddings")
st.caption("What a model learned, drawn as a map: items (or users) the model treats alike sit close together.")

candidates = pages.require_trained("item_embeddings", what="with embeddings")

controls = st.columns([2, 1, 1, 1])
name = controls[0].selectbox("Model", list(candidates), key="emb_model")
spec = candidates[name]
model = runs.result(spec)["model"]
report = runs.result(spec)["report"]
train = model.trained_on
has_users = has(model, "user_embeddings")
what = controls[1].radio("Show", ["items", "users"] if has_users else ["items"], key="emb_what", horizontal=True)
PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
method = controls[2].selectbox("Projection", emb.available_projections(), key="emb_method",
                               format_func=PROJECTIONS.get,
                               help="PCA is exact and instant and keeps global distances; t-SNE keeps local "
                                    f"neighbourhoods (clusters) and fits at most {emb.TSNE_MAX_POINTS:,} points, "
                                    "the most active first, placing the rest beside their nearest fitted "
                                    "neighbours.")
seed = state.split_config().seed


@st.cache_data(show_spinner="Projecting…", max_entries=16)
def projected(vectors: np.ndarray, method: str, seed: int, priority: np.ndarray) -> np.ndarray:
    return emb.project(vectors, method, seed, priority=priority)


shown = model.item_embeddings() if what == "items" else model.user_embeddings()
coords = attempt("Projecting the embeddings", projected, shown, method, seed,
                 train.item_popularity if what == "items" else train.user_activity)
vectors = model.item_embeddings()

if what == "items":
    colour = controls[3].selectbox("Colour by", ["genre", "popularity"], key="emb_colour_items")
    table = emb.item_table(train, coords)
    titles = train.item_titles()
    order = train.items_by_popularity()
    picked = st.selectbox("Find an item (most popular first)", order, key="emb_item",
                          format_func=lambda i: f"{titles[i]}  ·  {train.item_popularity[i]} interactions")
    neighbours = emb.neighbours_table(train, vectors, int(picked), k=10)
    highlight = table.iloc[[int(picked), *neighbours["item"].tolist()]]  # by item code: titles can repeat
    st.altair_chart(charts.embedding_map(
        table, "genre" if colour == "genre" else "log_popularity",
        "First genre" if colour == "genre" else "log10(interactions + 1)",
        ["title", "genres", "interactions"],
        f"{name}: item embeddings ({PROJECTIONS[method]}), {len(table):,} items", highlight=highlight,
        categorical=colour == "genre"), width="stretch")
    left, right = st.columns(2)
    left.subheader("Nearest in the embedding space")
    left.dataframe(neighbours.drop(columns="item"), hide_index=True, column_config={
        "similarity": st.column_config.NumberColumn("cosine", format="%.3f")})
    own_items = None
    if has(model, "similar_items"):
        own_items, own_scores = model.similar_items(int(picked), 10)
    repeats = own_items is not None and emb.same_items(own_items, neighbours["item"])
    if own_items is not None and not repeats:
        right.subheader("Most similar by the model's own scores")
        right.dataframe({"title": titles[own_items], "score": own_scores}, hide_index=True,
                        column_config={"score": st.column_config.NumberColumn(format="%.3f")})
        right.caption("What the model itself would put next to this title (its `similar_items`).")
    elif has(model, "fold_in"):
        right.subheader("Recommended after this title alone")
        scores = model.score_history([int(picked)])
        scores[int(picked)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10]
        right.dataframe({"title": titles[top], "score": scores[top]}, hide_index=True,
                        column_config={"score": st.column_config.NumberColumn(format="%.3f")})
        right.caption(("For this model its own item-to-item view is the cosine of these same vectors, so it "
                       "would repeat the table on the left. Shown instead: w" if repeats else "W")
                      + "hat the model recommends to someone who consumed only this title (folded in), which also "
                        "weighs popularity and every other item's vector.")
    elif repeats:
        right.subheader("Most similar by the model's own scores")
        right.info("This model's own item-to-item view is the cosine of these same vectors: the same list as on "
                   "the left.")
    else:
        right.subheader("Most similar by the model's own scores")
        right.info("This model has no item-to-item view of its own.")
else:
    colour = controls[3].selectbox("Colour by", ["activity", "NDCG@10"], key="emb_colour_users")
    ndcg = np.full(train.n_users, np.nan)
    ndcg[report.users] = report.per_user["ndcg@10"]
    table = emb.user_table(train, coords, ndcg)
    st.altair_chart(charts.embedding_map(
        table, "log_activity" if colour == "activity" else "metric",
        "log10(interactions + 1)" if colour == "activity" else "NDCG@10 (test)",
        ["user_id", "interactions", "metric"], f"{name}: user embeddings ({PROJECTIONS[method]}), {len(table):,} users",
        categorical=False), width="stretch")
    st.caption("Users without test items have no NDCG and are drawn without colour.")

st.subheader("What a latent dimension learned")
dims = vectors.shape[1]
dim = st.slider("Dimension", 0, dims - 1, 0, key="emb_dim",
                help="Items at the two ends of one coordinate of the item vectors.")
low, high = emb.dimension_extremes(train, vectors, dim)
a, b = st.columns(2)
a.markdown(f"**Lowest on dimension {dim}**")
a.dataframe(low, hide_index=True, column_config={"value": st.column_config.NumberColumn(format="%.3f")})
b.markdown(f"**Highest on dimension {dim}**")
b.dataframe(high, hide_index=True, column_config={"value": st.column_config.NumberColumn(format="%.3f")})
lifts = emb.genre_share_by_dimension(train, vectors)
if len(lifts):
    st.caption("Genre most over-represented among each dimension's top 50 items (lift over the catalogue): "
               + ", ".join(f"{r.dimension}: {md_escape(r.genre)} ×{r.lift:.1f}" for r in lifts.head(12).itertuples()))
