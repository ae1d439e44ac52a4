"""Sweep: train one model per value of a hyperparameter on this split and plot validation and test accuracy."""

from __future__ import annotations

import streamlit as st

from recsys.data.errors import DataError
from recsys.evaluation import compare
from recsys.evaluation.sweep import FitCancelled, default_range, numeric_params, sweep, sweep_values
from recsys.models import get
from ui import charts, state
from ui.compare.context import Comparison, choose_accuracy

RESULT = "compare_sweep_result"  # session key: the last sweep's table (never its models)


def render(comparison: Comparison) -> None:
    accuracy_column, accuracy_title = choose_accuracy(comparison.k)
    st.caption("Trains one model per value on this split (seeded, so the values are the only difference) and "
               f"plots validation and test {accuracy_title}. Clicking anything else on the page stops a running "
               "sweep.")
    request = _inputs()
    if request is not None:
        _run(comparison, request, accuracy_column, accuracy_title)
    if RESULT in st.session_state:
        _show(comparison, st.session_state[RESULT])


def _inputs() -> dict | None:
    """Model and parameter outside the form (the parameter list follows the model), the range inside it."""
    sweepable = compare.sweepable_models()
    c1, c2 = st.columns(2)
    st.session_state.setdefault("compare_sweep_model", "pure_svd" if "pure_svd" in sweepable else sweepable[0])
    model_key = c1.selectbox("Model", sweepable, format_func=lambda key: get(key).label, key="compare_sweep_model")
    params = {p["name"]: p for p in numeric_params(model_key)}
    name = c2.selectbox("Hyperparameter", list(params), key=f"compare_sweep_param_{model_key}",
                        help="Numeric hyperparameters only; the others keep their defaults.")
    low_default, high_default = default_range(model_key, name)
    number_format = {"step": 1} if params[name]["type"] == "int" else {"format": "%.4g"}
    with st.form("compare_sweep_form"):
        c1, c2, c3, c4 = st.columns(4)
        low = c1.number_input("From", value=low_default, key=f"compare_sweep_low_{model_key}_{name}", **number_format)
        high = c2.number_input("To", value=high_default, key=f"compare_sweep_high_{model_key}_{name}", **number_format)
        points = c3.slider("Points", 2, 8, 4, key="compare_sweep_points")
        log = c4.checkbox("Log spacing", value=bool(params[name].get("log")),
                          key=f"compare_sweep_log_{model_key}_{name}")
        submitted = st.form_submit_button("Run sweep", type="primary")
    if not submitted:
        return None
    return {"model": model_key, "param": name, "low": low, "high": high, "points": points, "log": log}


def _run(comparison: Comparison, request: dict, metric: str, metric_title: str) -> None:
    """Train the points with a progress bar; keep only the result table (never models) in the session."""
    label = get(request["model"]).label
    try:
        values = sweep_values(request["model"], request["param"], request["low"], request["high"],
                              request["points"], log=request["log"])
    except ValueError as problem:
        st.error(f"{problem}")
        return
    bar = st.progress(0.0, text=f"{label}: starting the sweep…")

    def progress(step: int, total: int, info: dict) -> None:
        bar.progress(min(1.0, step / max(total, 1)),
                     text=compare.sweep_progress(label, request["param"], step, total, info))

    try:
        frame = sweep(request["model"], request["param"], values, comparison.split, metric,
                      seed=state.split_config().seed, progress=progress)
    except FitCancelled:
        bar.empty()
        st.warning("The sweep was cancelled; nothing was kept.")
        return
    except (DataError, ValueError) as problem:
        bar.empty()
        st.error(str(problem))
        return
    bar.empty()
    st.session_state[RESULT] = {**request, "metric": metric, "metric_title": metric_title, "frame": frame}


def _show(comparison: Comparison, result: dict) -> None:
    frame, param = result["frame"], result["param"]
    label = get(result["model"]).label
    st.caption(f"{label}, {len(frame)} values of {param}. Validation: the split's validation part, or 10% of each "
               "user's training interactions held out for it (the sweep's models train on the other 90%). Pick a "
               "value by the validation curve: choosing by test would tune on the test set.")
    left, right = st.columns(2)
    comparison.show(charts.sweep_metric(frame, param, result["metric_title"], result["log"]), left)
    if frame["loss"].notna().any():
        comparison.show(charts.sweep_loss(frame, param, result["log"]), right)
    else:
        right.info(f"{label} reports no training loss (it is fitted in closed form), so only the metric is shown.")
    shown = compare.sweep_table(frame, param, result["metric"])
    if frame["loss"].isna().all():  # a model fitted in closed form has no loss: a column of "None" says nothing
        shown = shown.drop(columns="final loss")
    st.dataframe(shown, hide_index=True, width="stretch")
