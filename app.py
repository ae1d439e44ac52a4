"""Recommender Explorer: entry point. Shared sidebar (dataset, split, seed) and page navigation."""

from __future__ import annotations

import importlib
from pathlib import Path

import streamlit as st

from ui import lessons as lesson_ui
from ui import pages as ui_pages
from ui import state
from ui.text import md_escape

# Served by the app itself: a ":material/...:" favicon is fetched from a font CDN, which a room
# without internet access cannot reach.
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
# The torch-free backend every page uses. Imported after the sidebar is drawn, so the first
# screen does not wait for pandas and scipy, but before any page runs: a rerun interrupts a page
# wherever it is, and a page stopped half-way through its first import of a package leaves that
# package half-initialised in sys.modules (a "circular import" error on the next run). Model
# families, torch and faiss are imported by the registry and the pages that need them.
BACKEND = ("recsys.evaluation", "recsys.models", "recsys.serving", "recsys.store")

# characters of a dataset's name the sidebar's select box shows at 1440 px before cutting it short
DATASET_NAME_FITS = 30

st.set_page_config(page_title="Recommender Explorer", page_icon=str(ICON), layout="wide")
state.init()
# workshop mode (--workshop PATH or RECSYS_WORKSHOP): the preset's data and split, pages and lessons
workshop = lesson_ui.start_workshop()

# what the validation part is under each split (recsys.data.split.make_split carves it out)
VALIDATION_HELP = {
    "random": "a share of each user's training interactions, drawn at random",
    "temporal": "the latest share of the training interactions",
    "leave_last": "each user's n interactions just before the held-out ones",
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
        if len(dataset) > DATASET_NAME_FITS:  # the box cuts a long name short: spell it out beneath
            st.caption(md_escape(dataset))
        splits = state.SPLIT_LABELS
        method = st.selectbox("Split", list(splits), format_func=splits.get, key=key("sidebar_split"),
                              index=list(splits).index(value("sidebar_split")))
        if method == "leave_last":
            n = st.number_input("Held-out items per user (n)", 1, 20, value=int(value("sidebar_n")),
                                key=key("sidebar_n"))
            test = value("sidebar_test")
        else:
            test = st.slider("Test share", 0.05, 0.5, value=float(value("sidebar_test")), step=0.05,
                             key=key("sidebar_test"))
            n = value("sidebar_n")
        validation = st.checkbox(
            "Validation part", value=bool(value("sidebar_valid")), key=key("sidebar_valid"),
            help=f"Hold out {VALIDATION_HELP[method]} from training to watch validation NDCG@10 per epoch, "
                 "stop early (the models' patience) and keep the best epoch. The test part is unchanged.")
        valid_fraction = value("sidebar_vf")
        if validation and method != "leave_last":  # leave-last-n-out validates on the n items before the test ones
            valid_fraction = st.slider("Validation share of train", *state.VALID_FRACTION_RANGE,
                                       value=float(valid_fraction), step=0.05, key=key("sidebar_vf"),
                                       help="How much of the training part the validation part takes; the "
                                            "models train on the rest.")
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
                            "sidebar_n": n, "sidebar_seed": seed, "sidebar_pos": positives, "sidebar_t": threshold,
                            "sidebar_valid": validation, "sidebar_vf": valid_fraction})
    ss["dataset_label"] = dataset
    ss["split_config"] = state.SplitConfig(method=method, test_fraction=float(test), n=int(n), seed=int(seed),
                                           positives=positives, threshold=float(threshold),
                                           validation=bool(validation), valid_fraction=float(valid_fraction))


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
    st.Page("app_pages/lessons.py", title="Lessons", icon=":material/school:"),
]
sidebar()
page = st.navigation(ui_pages.remember_shown(lesson_ui.visible_pages(pages, workshop)))
for module in BACKEND:
    importlib.import_module(module)
page.run()
