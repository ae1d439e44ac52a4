"""Recommender Explorer: entry point. Shared sidebar (dataset, split, seed) and page navigation."""

from __future__ import annotations

import streamlit as st

# Import the backend before any page runs: a rerun interrupts a page wherever it is, and a
# page stopped half-way through its first import of a package leaves that package
# half-initialised in sys.modules (a "circular import" error on the next run).
import recsys.evaluation  # noqa: F401
import recsys.models  # noqa: F401
import recsys.serving  # noqa: F401
from ui import state

st.set_page_config(page_title="Recommender Explorer", page_icon=":material/movie:", layout="wide")
state.init()

SPLITS = {
    "random": "Random per-user holdout",
    "temporal": "Temporal cut-off (train on the past)",
    "leave_last": "Leave last n out per user",
}


def sidebar() -> None:
    """Widgets keep their own state under fixed keys, so values survive page switches."""
    ss = st.session_state
    with st.sidebar:
        st.header("Data & split")
        st.selectbox("Dataset", list(state.sources()), key="sidebar_dataset",
                     help="Load MovieLens or upload your own file on the Data page.")
        method = st.selectbox("Split", list(SPLITS), format_func=SPLITS.get, key="sidebar_split")
        if method == "leave_last":
            st.number_input("Held-out items per user (n)", 1, 20, key="sidebar_n")
        else:
            st.slider("Test share", 0.05, 0.5, step=0.05, key="sidebar_test")
        st.number_input("Seed", 0, 2**31 - 1, key="sidebar_seed",
                        help="Same data, split, parameters and seed give the same model.")
        positives = st.radio("Positives for top-N", ["all", "threshold"], key="sidebar_pos", horizontal=True,
                             format_func={"all": "every interaction", "threshold": "ratings ≥ t"}.get)
        if positives == "threshold":
            st.number_input("t", 0.0, 100.0, step=0.5, key="sidebar_t")
    ss["dataset_label"] = ss["sidebar_dataset"]
    ss["split_config"] = state.SplitConfig(
        method, float(ss["sidebar_test"]), int(ss["sidebar_n"]), int(ss["sidebar_seed"]),
        positives, float(ss["sidebar_t"]),
    )


pages = [
    st.Page("app_pages/data.py", title="Data", icon=":material/bar_chart:", default=True),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/balance:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/inventory_2:"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/attention.py", title="Attention", icon=":material/visibility:"),
    st.Page("app_pages/graph.py", title="Graph", icon=":material/hub:"),
    st.Page("app_pages/homepage.py", title="Homepage", icon=":material/home:"),
    st.Page("app_pages/serving.py", title="Serving", icon=":material/speed:"),
]
sidebar()
st.navigation(pages).run()
