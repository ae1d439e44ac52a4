"""Train page: pick models from the registry, set hyperparameters in generated forms, train."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys.models import registry
from recsys.models.base import FitCancelled
from recsys.models.registry import FAMILIES
from ui import data, forms, runs, state
from ui.errors import attempt, shown_errors

st.title("Train")

dataset = attempt("Loading the dataset", data.current_dataset)
split = attempt("Splitting the data", data.current_split)
st.caption(
    f"**{dataset.name}** · {split.method} split · {split.train.n_interactions:,} training and "
    f"{split.test.n_interactions:,} test interactions · seed {state.split_config().seed}"
)

by_family = sorted(registry.values(), key=lambda cls: (FAMILIES.index(cls.family), cls.label))
labels = {cls.key: f"{cls.label}  ·  {cls.family}" for cls in by_family}
chosen = st.multiselect("Models to train", list(labels), format_func=labels.get, key="train_models",
                        default=["pop", "item_knn"],
                        help="Every registered model appears here; its form is built from its parameters.")


def train_one(key: str, params: dict) -> None:
    spec = runs.run_spec(key, params)
    if runs.result(spec) is not None:
        state.add_run(spec)
        st.info(f"{spec['label']} with these settings is already trained — reusing it.")
        return
    callback, bar = runs.streamlit_progress(spec["label"])
    with shown_errors(f"Training {spec['label']}"):
        try:
            entry = runs.train(spec, progress=callback)
        except FitCancelled:
            bar.empty()
            st.warning(f"Training of {spec['label']} was stopped.")
            return
        bar.progress(1.0, text=f"{spec['label']} trained in {entry['fit_seconds']:.2f} s")
        state.add_run(spec)
        ndcg = entry["report"].means.get("ndcg@10", float("nan"))
        st.success(f"{spec['label']}: NDCG@10 = {ndcg:.4f} on {len(entry['report'].users):,} test users.")


for key in chosen:
    cls = registry[key]
    with st.expander(f"{cls.label} — {cls.description}", expanded=len(chosen) <= 2):
        problem = None
        try:
            probe = cls()
            probe._check_trainable(split.train)
        except Exception as exc:  # the model cannot train on this data: say why, keep the page usable
            problem = str(exc)
        with st.form(f"form_{key}"):
            params = forms.params_widgets(cls, f"param_{key}")
            submitted = st.form_submit_button(f"Train {cls.label}", type="primary", disabled=problem is not None)
        if problem:
            st.warning(problem)
        elif submitted:
            train_one(key, params)

trained = [r for r in state.runs() if runs.result(r) is not None]
if trained:
    st.subheader("Trained in this session")
    rows = []
    for spec in trained:
        entry = runs.result(spec)
        rows.append({
            "model": spec["label"],
            "dataset": spec["dataset"],
            "params": ", ".join(f"{k}={v}" for k, v in spec["params"].items()),
            "NDCG@10": entry["report"].means.get("ndcg@10"),
            "fit s": entry["fit_seconds"],
        })
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "NDCG@10": st.column_config.NumberColumn(format="%.4f"),
        "fit s": st.column_config.NumberColumn(format="%.2f"),
    })
    st.page_link("app_pages/compare.py", label="Compare them →", icon=":material/balance:")
