"""Train page: pick models from the registry, set hyperparameters in generated forms, train."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys import hosting
from recsys.data.errors import DataError
from recsys.models import registry
from recsys.models.registry import FAMILIES
from ui import charts, data, forms, jobs, runs, state
from ui.errors import attempt, shown_errors
from ui.text import md_escape

st.title("Train")

dataset = attempt("Loading the dataset", data.current_dataset)
split = attempt("Splitting the data", data.current_split)
st.caption(
    f"**{md_escape(dataset.name)}** · {split.method} split · {split.train.n_interactions:,} training and "
    f"{split.test.n_interactions:,} test interactions · seed {state.split_config().seed}"
)

by_family = sorted(registry.values(), key=lambda cls: (FAMILIES.index(cls.family), cls.label))
labels = {cls.key: f"{cls.label}  ·  {cls.family}" for cls in by_family}
chosen = st.multiselect("Models to train", list(labels), format_func=labels.get, key="train_models",
                        default=["pop", "item_knn"],
                        help="Every registered model appears here; its form is built from its parameters.")


def train_one(key: str, params: dict) -> None:
    """Queue the training (or reuse the run when it is already trained, or join the same training
    someone else started)."""
    spec = None
    with shown_errors("Checking the parameters"):
        spec = runs.run_spec(key, params)
    if spec is None:  # the parameters were refused; the message is on the page
        return
    if runs.result(spec) is not None:
        state.add_run(spec)
        st.info(f"{spec['label']} with these settings is already trained — reusing it.")
        return
    job = None
    with shown_errors("Queueing the training"):  # over a limit or a budget: the message says what to do
        job = jobs.submit(spec, split)
    if job is not None:
        st.rerun()  # redraw with the live panel polling


def collect_finished() -> None:
    """Turn this visitor's finished jobs into runs and messages (once: the job then forgets them)."""
    for job in jobs.mine():
        if not job.finished_running:
            continue
        jobs.acknowledge(job)
        spec = job.entry["spec"] if job.entry else job.spec
        if job.status == jobs.DONE:
            state.add_run(spec)
            report = job.entry["report"]
            ndcg = report.means.get("ndcg@10", float("nan"))
            state.add_train_message("success", f"{spec['label']}: NDCG@10 = {ndcg:.4f} on {len(report.users):,} test users.")
            if job.stopped_at is not None:
                state.add_train_message("info", f"{spec['label']} stopped early, after epoch {job.stopped_at} of "
                                                f"{job.total}.")
                state.add_train_message("info", "You stopped it, so it is kept as your own run; a full training "
                                                "with these settings is stored separately when someone runs one.")
            elif job.entry.get("stopped_early"):
                state.add_train_message("info", f"{spec['label']} stopped early, after epoch {job.history[-1]['step']} "
                                                f"of {job.total}.")
        elif job.status == jobs.CANCELLED:
            state.add_train_message("warning", f"Training of {spec['label']} was cancelled; nothing was kept.")
        else:
            state.add_train_message("error", f"Training {spec['label']} failed: {md_escape(job.error)}")


def _cancel(job) -> None:
    try:
        outcome = jobs.cancel(job)
    except DataError as exc:
        state.add_train_message("warning", md_escape(exc))
        return
    label = job.spec["label"]
    if outcome == "left":
        state.add_train_message("info", f"You left the training of {label}; it goes on for the other visitor(s) who "
                                        "started it, and is stored for everyone when it ends.")
    elif outcome == "cancelled":
        state.add_train_message("warning", f"Training of {label} was cancelled; nothing was kept.")


def _stop(job) -> None:
    try:
        jobs.stop(job)
    except DataError as exc:
        state.add_train_message("warning", md_escape(exc))


def job_panel(job) -> None:
    """Queue position, or progress, live curves and stop/cancel buttons of one job."""
    spec = job.spec
    cls = registry[spec["model"]]
    others = len(job.watchers) - 1
    if job.status == jobs.QUEUED:
        text = f"{spec['label']}: {jobs.wait_text(job)}"
    elif job.phase == "evaluating":
        text = f"{spec['label']}: evaluating on the test set…"
    elif job.phase == "saving":
        text = f"{spec['label']}: saving the run to the experiment store…"
    elif job.history:
        latest = ", ".join(f"{charts.TRAINING_METRICS.get(k, k).lower()} {v:.4g}" for k, v in job.history[-1].items()
                           if k != "step")
        text = f"{spec['label']}: epoch {job.step} of {job.total} · {latest}"
    else:
        text = f"{spec['label']}: training…"
    if others:
        text += f" · {others} other visitor(s) wait for it too"
    st.progress(min(1.0, job.step / max(job.total, 1)), text=text)
    with_loss = [h for h in job.history if "loss" in h]
    if len(with_loss) >= 2:
        curves = ["loss"] + (["val_ndcg@10"] if any("val_ndcg@10" in h for h in job.history) else [])
        for column, metric in zip(st.columns(len(curves)), curves):
            column.altair_chart(charts.training_curve(job.history, metric), width="stretch")
    stop_col, cancel_col, _ = st.columns([1, 1, 3])
    if cls.iterative and job.status == jobs.RUNNING:
        if others:
            stop_help = (f"{others} other visitor(s) wait for this training too, so it cannot stop early for "
                         "you alone. Cancel leaves it to them.")
        else:
            stop_help = ("Finish after this epoch and keep the model (the best validation epoch when the split has "
                         "a validation part) as your own run.")
        stop_col.button("Stop and keep", key=f"stop_{spec['run_id']}", on_click=_stop, args=(job,),
                        disabled=job.stop_requested or others > 0, icon=":material/stop_circle:", help=stop_help)
    cancel_help = (f"Stop waiting for it; it goes on for the {others} other visitor(s)." if others
                   else "Abandon this training; nothing is kept.")
    cancel_col.button("Cancel", key=f"cancel_{spec['run_id']}", on_click=_cancel, args=(job,),
                      icon=":material/cancel:", help=cancel_help)


collect_finished()
watched = jobs.mine()


@st.fragment(run_every=1.0 if watched else None)
def live_training() -> None:
    """Redrawn every second while something trains or waits; hands over to a full rerun when a job
    ends, or one is cancelled."""
    now = jobs.mine()
    if [id(job) for job in now] != [id(job) for job in watched] or any(job.finished_running for job in now):
        st.rerun(scope="app")
    for job in now:
        job_panel(job)


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
            st.warning(md_escape(problem))
        elif submitted:
            train_one(key, params)

if watched:
    st.subheader("Training now")
    if hosting.config().hosted:
        st.caption(jobs.limits_text())
    live_training()
for kind, text in st.session_state["train_messages"][-6:]:
    getattr(st, kind)(text)

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
