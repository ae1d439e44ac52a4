"""Train page: pick models from the registry, set hyperparameters in generated forms, train."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import streamlit as st

from recsys import estimate, hosting
from recsys.data.errors import DataError
from recsys.models import registry
from recsys.models.registry import FAMILIES
from ui import charts, data, forms, jobs, pages, runs, state
from ui.errors import attempt, shown_errors
from ui.text import md_escape

log = logging.getLogger("recsys.ui")
st.title("Train")

dataset = attempt("Loading the dataset", data.current_dataset)
split = attempt("Splitting the data", data.current_split)
valid_part = (f" · {split.valid.n_interactions:,} validation interactions" if split.valid is not None
              else " · no validation part (tick it in the sidebar for early stopping)")
st.caption(
    f"**{md_escape(dataset.name)}** · {state.split_text(state.split_config())} · {split.train.n_interactions:,} "
    f"training and {split.test.n_interactions:,} test interactions{valid_part} · seed {state.split_config().seed}"
)
# the users the evaluation scores: what the estimate's scoring part is timed for
test_users = int(np.count_nonzero(np.bincount(split.test.user, minlength=1)))

by_family = sorted(registry.values(), key=lambda cls: (FAMILIES.index(cls.family), cls.label))
labels = {cls.key: f"{cls.label}  ·  {cls.family}" for cls in by_family}
# "contains" matching: the default fuzzy search matched "knn" to Markov chain too, and its
# "select all matches" entry added them all on Enter. The choice is kept for the whole session,
# so leaving the page and coming back finds it as it was.
chosen = st.multiselect("Models to train", list(labels), format_func=labels.get, key="train_models",
                        default=["pop", "item_knn"], filter_mode="contains", select_all=False,
                        persist_state="session",
                        help="Every registered model appears here; its form is built from its parameters.")


def estimate_for(cls, params: dict):
    """The probed fit time of ``cls`` with ``params`` on this training data (recsys.estimate; cached per
    data, model and setting), or None when the host's budget refuses the training or the probe fails."""
    try:
        hosting.check_training_budget(cls, params, split.train)  # a probe builds the full-size tables
    except DataError:
        return None  # the refusal is shown when the training is asked for
    try:
        with st.spinner(f"Timing {cls.label} on a sample of this data…"):
            return estimate.estimate_fit(cls, params, split.train, valid=split.valid, n_eval_users=test_users)
    except Exception:  # an estimate is a nicety: the training itself reports what is wrong
        log.exception("probing %s failed", cls.key)
        return None


def form_values(cls, key: str) -> dict:
    """The form's last submitted values (its defaults before the first submit)."""
    prefix = f"param_{key}."
    return {name[len(prefix):]: value for name, value in st.session_state.items()
            if isinstance(name, str) and name.startswith(prefix)}


def _take_quick(key: str, params: dict) -> None:
    """Button callback: fill the form with the quick setting and train it on this run."""
    st.session_state["_train_now"] = {key: params}
    for name, value in params.items():
        if f"param_{key}.{name}" in st.session_state:
            st.session_state[f"param_{key}.{name}"] = value


def long_fit_offer(cls, key: str, params: dict, guess) -> None:
    """A fit estimated over a minute says so before it starts, and offers a quick setting computed for
    this data. The form's own button still trains the setting as it is."""
    quick = None
    try:
        with st.spinner(f"Working out a quicker setting of {cls.label} for this data…"):
            quick = estimate.quick_setting(cls, params, split.train, valid=split.valid, n_eval_users=test_users)
    except Exception:  # no quick setting is no reason to hide the warning
        log.exception("no quick setting for %s", cls.key)
    text = (f"{cls.label} as set would take {guess.describe()} on this data: over a minute (timed on "
            f"{guess.sample_share:.0%} of the training interactions).")
    if quick is None:
        st.warning(text + " It has no epochs to cut; a smaller dataset trains it faster.",
                   icon=":material/hourglass_top:")
        return
    settings, quick_guess = quick
    changes = ", ".join(f"{forms.label(name).lower()} {before} → {after}"
                        for name, (before, after) in estimate.changed(estimate.full_params(cls, params),
                                                                       settings).items())
    st.warning(f"{text} A quick setting for this data: {changes}, {quick_guess.describe()}.",
               icon=":material/hourglass_top:")
    st.button(f"Train the quick setting ({quick_guess.describe().split(' (')[0]})", key=f"quick_{key}",
              icon=":material/bolt:", on_click=_take_quick, args=(key, settings))


def train_one(key: str, params: dict, guess=None) -> None:
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
        job = jobs.submit(spec, split, guess)
    if job is not None:
        st.rerun()  # redraw with the live panel polling


def collect_finished() -> None:
    """Turn this visitor's finished jobs into runs and messages (once: the job then forgets them)."""
    for job in jobs.mine():
        if not job.finished_running:
            continue
        jobs.acknowledge(job)
        spec = job.entry["spec"] if job.entry else job.spec
        context = f"{spec['dataset']} · {state.split_text(spec['split'])}"
        if job.status == jobs.DONE:
            state.add_run(spec)
            report = job.entry["report"]
            ndcg = report.means.get("ndcg@10", float("nan"))
            state.add_train_message("success", f"{spec['label']}: NDCG@10 = {ndcg:.4f} on {len(report.users):,} test "
                                               "users.", context)
            if best := best_validation(job.entry["history"]):
                state.add_train_message("info", f"{spec['label']}: best validation NDCG@10 {best[1]:.4f} at epoch "
                                                f"{best[0]} of the {best[2]} trained; {kept_epoch(spec)}.", context)
            if job.stopped_at is not None:
                state.add_train_message("info", f"{spec['label']} stopped early, after epoch {job.stopped_at} of "
                                                f"{job.total}.", context)
                state.add_train_message("info", "You stopped it, so it is kept as your own run; a full training "
                                                "with these settings is stored separately when someone runs one.",
                                        context)
            elif job.entry.get("stopped_early"):
                state.add_train_message("info", f"{spec['label']} stopped early, after epoch {job.history[-1]['step']} "
                                                f"of {job.total}: validation NDCG@10 stopped improving (patience).",
                                        context)
        elif job.status == jobs.CANCELLED:
            state.add_train_message("warning", f"Training of {spec['label']} was cancelled; nothing was kept.", context)
        else:
            state.add_train_message("error", f"Training {spec['label']} failed: {md_escape(job.error)}", context)


def training_curves(trained: list[dict]) -> None:
    """The loss and validation curves of a finished run with epochs, and its best validation epoch."""
    with_epochs = {f"{spec['label']} · {spec['dataset']} · {state.split_text(spec['split'])}": spec
                   for spec in trained if len(runs.result(spec)["history"]) >= 2}
    if not with_epochs:
        return
    st.subheader("Training curves")
    name = st.selectbox("Run", list(with_epochs), index=len(with_epochs) - 1, key="train_curves_run")
    history = runs.result(with_epochs[name])["history"]
    metrics = [m for m in charts.TRAINING_METRICS if any(m in h for h in history)]
    for column, metric in zip(st.columns(len(metrics)), metrics):
        column.altair_chart(charts.training_curve(history, metric), width="stretch")
    if best := best_validation(history):
        st.caption(f"Best validation NDCG@10 {best[1]:.4f} at epoch {best[0]} of the {best[2]} trained; "
                   f"{kept_epoch(with_epochs[name])}.")
    else:
        st.caption("No validation part in this run's split, so every epoch was trained and the last one kept. "
                   "Tick Validation part in the sidebar to see a validation curve and stop early.")


def kept_epoch(spec: dict) -> str:
    """Which epoch's model a run with a validation part kept: the shared torch loop (the models with a
    patience) restores the best one, the others keep their last."""
    if "patience" in spec["params"]:
        return "that epoch's model is the one kept and evaluated"
    return "this model keeps its last epoch, which is the one evaluated"


def best_validation(history: list[dict]) -> tuple[int, float, int] | None:
    """(best epoch, its validation NDCG@10, epochs trained) from a fit's history, None without validation."""
    scored = [(h["step"], h["val_ndcg@10"]) for h in history if "val_ndcg@10" in h]
    if not scored:
        return None
    epoch, value = max(scored, key=lambda pair: (pair[1], -pair[0]))  # the earliest of equal bests
    return int(epoch), float(value), int(scored[-1][0])


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
    if job.status == jobs.RUNNING and job.phase not in ("evaluating", "saving") and (pace := jobs.pace_text(job)):
        text += f" · {pace}"
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


def trainable_problem(cls) -> str | None:
    """Why ``cls`` cannot train on this data (e.g. it needs timestamps), or None."""
    try:
        cls()._check_trainable(split.train)
    except Exception as exc:  # the model cannot train on this data: say why, keep the page usable
        return str(exc)
    return None


for key in chosen:
    cls = registry[key]
    problem = trainable_problem(cls)
    # what the form holds now (its defaults before the first submit), timed before anything trains;
    # the title carries it, so a collapsed panel still says how long its model takes
    guess = None if problem else estimate_for(cls, form_values(cls, key))
    title = f"{cls.label} — {cls.description}"
    if guess is not None:
        title += f" · {guess.describe().split(' (')[0]}"
    long = guess is not None and guess.long
    with st.expander(title, expanded=len(chosen) <= 2 or long, icon=":material/hourglass_top:" if long else None):
        with st.form(f"form_{key}"):
            params = forms.params_widgets(cls, f"param_{key}", validation=split.valid is not None)
            submitted = st.form_submit_button(f"Train {cls.label}", type="primary", disabled=problem is not None)
        if problem:
            st.warning(md_escape(problem))
            continue
        quick = st.session_state.get("_train_now", {}).pop(key, None)
        if submitted or quick is not None:
            chosen_params = quick if quick is not None else params
            train_one(key, chosen_params, estimate_for(cls, chosen_params))
        if long:
            long_fit_offer(cls, key, form_values(cls, key), guess)
        elif guess is not None:
            st.caption(f"Expected on this data: {guess.describe()}, timed on {guess.sample_share:.0%} of the "
                       "training interactions.")

if watched:
    st.subheader("Training now")
    if hosting.config().hosted:
        st.caption(jobs.limits_text())
    live_training()
shown_context = None
for kind, text, context in state.train_messages()[-8:]:
    if context != shown_context:  # results of several datasets or splits: each group says which
        st.caption(f"On **{md_escape(context)}**" if context else "Earlier")
        shown_context = context
    getattr(st, kind)(text)

trained = [r for r in state.runs() if runs.result(r) is not None]
if trained:
    st.subheader("Trained in this session")
    rows = []
    for spec in trained:
        entry = runs.result(spec)
        best = best_validation(entry["history"])
        rows.append({
            "model": spec["label"],
            "dataset": spec["dataset"],
            "split": state.split_text(spec["split"]),
            "NDCG@10": entry["report"].means.get("ndcg@10"),
            "best epoch": best[0] if best else None,
            "fit s": entry["fit_seconds"],
            "params": ", ".join(f"{k}={v}" for k, v in spec["params"].items()),  # last: it can be long
        })
    table = pd.DataFrame(rows)
    if table["best epoch"].isna().all():  # no run had a validation part
        table = table.drop(columns="best epoch")
    st.dataframe(table, hide_index=True, column_config={
        "NDCG@10": st.column_config.NumberColumn(format="%.4f"),
        "fit s": st.column_config.NumberColumn(format="%.2f"),
    })
    pages.link("app_pages/compare.py", label="Compare them →", icon=":material/balance:")
    training_curves(trained)
