"""Streamlit glue of the Lessons page and of workshop mode.

Nothing here computes a lesson: :mod:`recsys.lessons` does, and :mod:`recsys.workshop` reads the
preset. This module caches lesson results, applies a lesson's setup to the app (dataset, split,
runs trained or reused through the store, the page to open) and holds the workshop preset the
server started with.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading

import streamlit as st

from recsys import workshop as workshop_mode
from recsys.data.errors import DataError
from ui import state

log = logging.getLogger("recsys.ui")

CHOSEN = "lesson_chosen"          # the lesson last picked (widget state is dropped on a page switch)
KNOBS = "lesson_knobs"            # {lesson key: knob values as last submitted}
SET_UP = "lesson_set_up"          # {lesson key: what "Set up the app" did, in words}
APPLIED = "_workshop_applied"     # the session took the preset's dataset and split once
PAGE_FILES = {name: f"app_pages/{name}.py" for name in workshop_mode.PAGES}


# ---------------------------------------------------------------------- workshop mode
@st.cache_resource(show_spinner=False)
def _preset(path: str) -> workshop_mode.Workshop:
    return workshop_mode.load(path)


def workshop() -> workshop_mode.Workshop | None:
    """The preset named by ``--workshop PATH`` (``streamlit run app.py -- --workshop PATH``) or RECSYS_WORKSHOP;
    None without one. A preset that cannot be read is shown as an error and ignored."""
    named = workshop_mode.named(sys.argv[1:], os.environ)
    if named is None:
        return None
    try:
        return _preset(named)
    except DataError as exc:
        st.error(f"Workshop mode is off: {exc}", icon=":material/warning:")
        return None


def start_workshop() -> workshop_mode.Workshop | None:
    """At the top of every app run: the preset, its dataset and split put in the sidebar once per session,
    and its missing runs trained once per server in the background (see :func:`preparation`)."""
    preset = workshop()
    if preset is None:
        return None
    ss = st.session_state
    if not ss.get(APPLIED):
        ss[APPLIED] = True
        choose_data(preset.dataset, preset.split)
        st.rerun()  # the sidebar is drawn from the values just chosen
    preparation(preset)
    return preset


def visible_pages(pages: list, preset: workshop_mode.Workshop | None) -> list:
    """The st.Page objects the preset shows (all without a preset), in their order."""
    if preset is None:
        return pages
    # the default page answers "" for its URL path: it is the app's Data page
    shown = [page for page in pages if (page.url_path or "data") in preset.pages]
    return shown or pages


def uploads_allowed() -> bool:
    """False when the server's workshop preset turns uploads off (pages with an uploader ask this)."""
    preset = workshop()
    return True if preset is None else preset.uploads


class Preparation:
    """The server's one background preparation of a preset: trains what is missing, once per process."""

    def __init__(self, preset: workshop_mode.Workshop, store) -> None:
        self.done: workshop_mode.Prepared | None = None
        self.error: str | None = None
        self.latest = "starting"
        self.thread = threading.Thread(target=self._run, args=(preset, store), daemon=True,
                                       name="workshop-preparation")
        self.thread.start()

    def _run(self, preset, store) -> None:
        try:
            self.done = workshop_mode.prepare(preset, store, report=self._note)
        except Exception as exc:  # the page says it; the server log keeps the traceback
            log.exception("workshop preparation failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def _note(self, text: str) -> None:
        self.latest = text

    def text(self) -> str:
        if self.error:
            return f"Preparing the workshop failed: {self.error}"
        if self.done is None:
            return f"Preparing the workshop's runs in the background (now: {self.latest})."
        failed = f"; failed: {', '.join(self.done.failed)}" if self.done.failed else ""
        return (f"Workshop prepared: {len(self.done.trained)} run(s) trained now, {self.done.reused} found "
                f"stored{failed}.")


@st.cache_resource(show_spinner=False)
def _preparation(path: str, store_root: str) -> Preparation:
    from recsys.store import ExperimentStore

    return Preparation(_preset(path), ExperimentStore(store_root))


def preparation(preset: workshop_mode.Workshop) -> Preparation | None:
    """Start (once per server) training what the preset needs into the app's store; RECSYS_WORKSHOP_PREPARE=0
    leaves it to ``python -m recsys workshop prepare``."""
    if preset.path is None or os.environ.get("RECSYS_WORKSHOP_PREPARE", "1").strip() == "0":
        return None
    from ui import data

    return _preparation(str(preset.path), str(data.data_home() / "store"))


# ---------------------------------------------------------------------- choosing data and split
def source_for(dataset: str) -> dict:
    """The sidebar's source descriptor for a preset's or lesson's dataset ("sample" or a server path)."""
    if dataset.strip().lower() == "sample":
        return state.SAMPLE
    from pathlib import Path

    path = Path(dataset).expanduser()
    return {"kind": "path", "path": str(path.resolve()), "label": path.name}


def choose_data(dataset: str, split) -> dict:
    """Make ``dataset`` and ``split`` the sidebar's choice from the next run on; returns the source."""
    from recsys.data.split import SplitConfig

    source = source_for(dataset)
    if source["label"] not in state.sources():
        state.sources()[source["label"]] = source
    config = SplitConfig.coerce(split)
    st.session_state["_apply_widgets"] = {
        "sidebar_dataset": source["label"], "sidebar_split": config.method, "sidebar_test": config.test_fraction,
        "sidebar_n": config.n, "sidebar_seed": config.seed, "sidebar_pos": config.positives,
        "sidebar_t": config.threshold, "sidebar_valid": config.validation}
    st.session_state["dataset_label"] = source["label"]
    st.session_state["split_config"] = config
    return source


# ---------------------------------------------------------------------- lessons
def shown_lessons(available: dict, preset: workshop_mode.Workshop | None) -> dict:
    """The lessons this server offers, in course order (the preset's choice and order when there is one)."""
    if preset is None:
        return available
    return {key: available[key] for key in preset.lessons if key in available}


def chapters(shown: dict) -> dict[str, list[str]]:
    """{chapter: [lesson keys]} in the order the lessons come."""
    grouped: dict[str, list[str]] = {}
    for key, lesson in shown.items():
        grouped.setdefault(lesson.chapter, []).append(key)
    return grouped


def remembered_knobs(key: str) -> dict:
    return st.session_state.setdefault(KNOBS, {}).get(key, {})


def remember_knobs(key: str, knobs: dict) -> None:
    st.session_state.setdefault(KNOBS, {})[key] = dict(knobs)


def result_id(key: str, knobs: dict, fingerprint: str) -> str:
    return f"{key}|{json.dumps(knobs, sort_keys=True, default=str)}|{fingerprint}"


@st.cache_data(show_spinner=False, max_entries=64)
def _computed(key: str, knobs_json: str, fingerprint: str, _dataset, _store, _owner: str):
    """One lesson run, shared by every visitor with the same lesson, knobs and dataset."""
    from recsys import hosting
    from recsys.lessons.base import Context, get

    context = Context(dataset=_dataset, store=_store, owner=_owner, hosted=hosting.config().hosted)
    return get(key).run(context, **json.loads(knobs_json))


def run_lesson(key: str, knobs: dict):
    """The lesson's result on the current dataset, trained runs through the app's store (reused when stored)."""
    from recsys.lessons.base import get
    from ui import data, runs

    full = all_knobs(get(key), knobs)  # the defaults spelled out: equal experiments share one cache entry
    dataset = data.current_dataset()
    owner = runs.owner_for(state.current_source())
    return _computed(key, json.dumps(full, sort_keys=True, default=str), dataset.fingerprint, dataset,
                     runs.store(), owner)


def all_knobs(lesson, knobs: dict) -> dict:
    """Every knob of ``lesson``: ``knobs`` over the defaults, checked (DataError names a bad one)."""
    import dataclasses

    return dataclasses.asdict(lesson.knobs(**knobs))


def apply_setup(lesson, knobs: dict) -> str:
    """Do what "Set up the app for this lesson" promises: its dataset and split in the sidebar, its runs
    trained (or found stored) with a progress line each, and the page it needs remembered. Returns what it
    did, in words."""
    from recsys import hosting
    from recsys.experiment import RunSpec
    from recsys.lessons.base import Context, check_budget
    from recsys.models import registry
    from ui import data, runs

    setup = lesson.setup
    source = source_for(setup.dataset)
    dataset = data.load_source(source)
    split = data.split_of(source, state.SplitConfig.coerce(setup.split))
    store = runs.store()
    store.register_dataset(dataset, source, source["label"])
    context = Context(store=store, owner=runs.owner_for(source))
    specs = [RunSpec.make(dataset, setup.split, model, params, owner=context.owner) for model, params in setup.runs]
    hosted = hosting.config().hosted
    for spec in specs:  # a run not stored yet is held to the Train page's budgets before any work
        if store.find_done(spec.run_id, spec.owner) is None:
            if hosted:
                check_budget(spec.model, spec.params, split)  # memory and fit time
            else:
                hosting.check_training_budget(registry.get(spec.model), spec.params, split.train)
    progress = st.progress(0.0, text="Setting up…")
    for done, (model, params) in enumerate(setup.runs):
        label = registry.get(model).label + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params
                                             else "")
        progress.progress(done / len(setup.runs), text=f"Training or reusing {label}: {done + 1} of {len(setup.runs)}")
        context.train(dataset, setup.split, model, params)
    progress.empty()
    choose_data(setup.dataset, setup.split)
    for spec in specs:  # the Train page lists them with their curves, the Compare page compares them
        found = runs.lookup(spec.run_id)
        if found is not None:
            state.add_run(found)
    trained = len(context.fits)
    words = [f"the {source['label']} dataset and the {state.split_text(state.SplitConfig.coerce(setup.split))} "
             "split are selected in the sidebar"]
    if setup.runs:
        words.append(f"{len(setup.runs)} run(s) ready ({trained} trained now, {len(setup.runs) - trained} found "
                     "stored)")
    simulation = _simulation_of(lesson.key)
    if simulation is not None:
        _open_simulation(simulation, all_knobs(lesson, knobs))
        words.append("the Simulate page is set to this experiment with the same knobs")
    return "Set up: " + "; ".join(words) + "."


def _simulation_of(key: str) -> str | None:
    from recsys.lessons import online

    return online.SIMULATION_OF.get(key)


def _open_simulation(preset_key: str, knobs: dict) -> None:
    """Leave the Simulate page on ``preset_key`` with the lesson's knobs (those the preset has) and seed."""
    from recsys.simulation import presets
    from ui import simulate as sim

    names = {field["name"] for field in presets.get(preset_key).describe()}
    st.session_state[sim.CHOSEN] = preset_key
    sim.remember(preset_key, {k: v for k, v in knobs.items() if k in names}, int(knobs.get("seed", 0)))


def has_setup(lesson) -> bool:
    """Whether "Set up the app" would do anything beyond the default data (a worked example needs none)."""
    return bool(lesson.setup.runs or lesson.setup.page or _simulation_of(lesson.key))


def page_file(lesson) -> str | None:
    """The page the lesson's setup opens, as st.page_link takes it."""
    return PAGE_FILES.get(lesson.setup.page) if lesson.setup.page else None


# ---------------------------------------------------------------------- showing a result
def is_rounds(table) -> bool:
    """A per-round table (round, series, metrics...) is drawn as charts, like the Simulate page's."""
    return {"round", "series"} <= set(table.columns) and len(table.columns) > 2


# an epoch table's columns -> the history keys the Train page's training curves read
EPOCH_CURVES = {"train loss": "loss", "validation NDCG@10": "val_ndcg@10"}


def is_epochs(table) -> bool:
    """A per-epoch table (epoch, train loss, validation NDCG@10) is drawn as the Train page's curves."""
    return "epoch" in table.columns and set(EPOCH_CURVES) <= set(table.columns)


def draw_epoch_curves(table) -> None:
    from ui import charts

    history = [{"step": int(row["epoch"]), **{key: float(row[column]) for column, key in EPOCH_CURVES.items()}}
               for _, row in table.iterrows()]
    for column, metric in zip(st.columns(len(EPOCH_CURVES)), EPOCH_CURVES.values()):
        column.altair_chart(charts.training_curve(history, metric), width="stretch")


def show_tables(result) -> None:
    from ui import simulate as sim

    # the per-round and per-epoch charts first: they show the effect; the wide tables behind them follow
    ordered = sorted(result.tables.items(), key=lambda item: not (is_rounds(item[1]) or is_epochs(item[1])))
    for title, table in ordered:
        st.subheader(title)
        if is_epochs(table):
            draw_epoch_curves(table)
            st.dataframe(table, hide_index=True, width="stretch")
        elif is_rounds(table):
            metrics = [c for c in table.columns if c not in ("round", "series")]
            sim.draw_charts(table, metrics, list(dict.fromkeys(table["series"])), int(table["round"].nunique()))
        else:
            st.dataframe(table, hide_index=True, width="stretch")


def figures_table(figures: dict):
    import pandas as pd

    from ui import simulate as sim

    return pd.DataFrame({"figure": list(figures), "value": [sim.summary_value(v) for v in figures.values()]})
