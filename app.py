"""Recommender Explorer: entry point. Shared sidebar (dataset, split, seed) and page navigation."""

from __future__ import annotations

import importlib
from pathlib import Path

import streamlit as st

from ui import state

# Served by the app itself: a ":material/...:" favicon is fetched from a font CDN, which a room
# without internet access cannot reach.
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
# The torch-free backend every page uses. Imported after the sidebar is drawn, so the first
# screen does not wait for pandas and scipy, but before any page runs: a rerun interrupts a page
# wherever it is, and a page stopped half-way through its first import of a package leaves that
# package half-initialised in sys.modules (a "circular import" error on the next run). Model
# families, torch and faiss are imported by the registry and the pages that need them.
BACKEND = ("recsys.evaluation", "recsys.models", "recsys.serving", "recsys.store")

st.set_page_config(page_title="Recommender Explorer", page_icon=str(ICON), layout="wide")
state.init()

SPLITS = {
    "random": "Random per-user holdout",
    "temporal": "Temporal cut-off (train on the past)",
    "leave_last": "Leave last n out per user",
}


def sidebar() -> None:
    """The data and split widgets start from the remembered values (ui.state), so they survive page
    switches, interrupted runs and programmatic changes alike."""
    ss = st.session_state
    value, key = state.sidebar_value, state.sidebar_key
    with st.sidebar:
        st.header("Data & split")
        sources = list(state.sources())
        dataset = st.selectbox("Dataset", sources, key=key("sidebar_dataset"),
                               index=sources.index(value("sidebar_dataset")) if value("sidebar_dataset") in sources
                               else 0, help="Load MovieLens or upload your own file on the Data page.")
        method = st.selectbox("Split", list(SPLITS), format_func=SPLITS.get, key=key("sidebar_split"),
                              index=list(SPLITS).index(value("sidebar_split")))
        if method == "leave_last":
            n = st.number_input("Held-out items per user (n)", 1, 20, value=int(value("sidebar_n")),
                                key=key("sidebar_n"))
            test = value("sidebar_test")
        else:
            test = st.slider("Test share", 0.05, 0.5, value=float(value("sidebar_test")), step=0.05,
                             key=key("sidebar_test"))
            n = value("sidebar_n")
        seed = st.number_input("Seed", 0, 2**31 - 1, value=int(value("sidebar_seed")), key=key("sidebar_seed"),
                               help="Same data, split, parameters and seed give the same model.")
        positives = st.radio("Positives for top-N", ["all", "threshold"], key=key("sidebar_pos"), horizontal=True,
                             index=["all", "threshold"].index(value("sidebar_pos")),
                             format_func={"all": "every interaction", "threshold": "ratings ≥ t"}.get)
        if positives == "threshold":
            threshold = st.number_input("t", 0.0, 100.0, value=float(value("sidebar_t")), step=0.5,
                                        key=key("sidebar_t"))
        else:
            threshold = value("sidebar_t")
    state.remember_sidebar({"sidebar_dataset": dataset, "sidebar_split": method, "sidebar_test": test,
                            "sidebar_n": n, "sidebar_seed": seed, "sidebar_pos": positives, "sidebar_t": threshold})
    ss["dataset_label"] = dataset
    ss["split_config"] = state.SplitConfig(method=method, test_fraction=float(test), n=int(n), seed=int(seed),
                                           positives=positives, threshold=float(threshold))


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
    st.Page("app_pages/simulate.py", title="Simulate", icon=":material/science:"),
]
sidebar()
page = st.navigation(pages)
for module in BACKEND:
    importlib.import_module(module)
page.run()
