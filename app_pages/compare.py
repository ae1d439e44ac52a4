"""Compare page: every trained run on the current split, side by side: table, trade-offs, users, sweeps.

This file chooses the runs and the view; each view is a module of ui.compare with a render(comparison)
function, and every number it shows comes from recsys.evaluation (compare, tradeoffs, stats, caveats,
sweep, sampled). The view is mirrored in the URL (ui.share) so a link reproduces it.
"""

from __future__ import annotations

import streamlit as st

from recsys.data.errors import DataError
from recsys.evaluation.compare import run_label, selection
from ui import data, pages, runs, share
from ui.compare import export, metrics, overview, sampled, sweep, tradeoffs, users
from ui.compare.context import Comparison

VIEWS = {"overview": overview, "tradeoffs": tradeoffs, "users": users, "sweep": sweep, "sampled": sampled}

st.title("Compare")

for message in share.apply_link():
    st.warning(message)  # ui.share escapes what the link itself carries

visible = runs.visible_runs()
# every finished run this visitor may see in the store, not only this session's: the note counts them all
shown_ids = {spec["run_id"] for spec in visible}
hidden = [record for record in runs.store().list(owner=runs.owner_token(), status="done")
          if record.run_id not in shown_ids]
if hidden:
    st.caption(f"{len(hidden)} run(s) on another dataset or split are hidden: "
               "models are only comparable on the same test set.")
if not visible:
    st.info("No trained models on this dataset and split yet. Train some on the Train page.")
    pages.link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()


def choose_runs() -> list[dict]:
    """The runs to compare: all by default; a run trained since the last visit joins the selection."""
    ss = st.session_state
    ids = [spec["run_id"] for spec in visible]
    ss["compare_runs"] = selection(ids, ss.get("compare_runs", ids), ss.get("_compare_known", []))
    ss["_compare_known"] = ids
    by_id = {spec["run_id"]: spec for spec in visible}
    picked = st.multiselect("Runs to compare", ids, format_func=lambda r: run_label(by_id[r], visible),
                            key="compare_runs")
    return [by_id[r] for r in picked]


# Streamlit forgets a widget's value when a run does not draw it; these live in views that may be
# hidden, and the link needs them, so carry them over explicitly.
for carried in ("compare_user", "compare_accuracy"):
    if carried in st.session_state:
        st.session_state[carried] = st.session_state[carried]
selected = choose_runs()
if not selected:
    st.info("Pick at least one run above to compare.")
    st.stop()

st.session_state.setdefault("compare_k", 10)
k = st.select_slider("K (length of the recommended list)", options=list(runs.EVAL_K), key="compare_k")
try:
    split = data.current_split()
except DataError as problem:
    st.error(str(problem))
    st.stop()

names = [run_label(spec, visible) for spec in selected]
comparison = Comparison(specs=dict(zip(names, selected)),
                        entries={name: runs.result(spec) for name, spec in zip(names, selected)}, split=split, k=k)
metrics.render(comparison)

st.session_state.setdefault("compare_view", "overview")
view = st.segmented_control("Show", list(VIEWS), format_func=share.VIEWS.get, required=True, key="compare_view")
VIEWS[view or "overview"].render(comparison)
export.render(comparison, view)
