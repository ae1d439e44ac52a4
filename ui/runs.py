"""Runs for the pages: specs, training with progress, and the experiment store behind them.

Finished runs live in the experiment store (``recsys.store``) under the data directory, so a
restart loses nothing and nobody retrains what the server already trained. Loaded models
and reports are kept per process (``st.cache_resource``) keyed by run id, so pages do not
read them from disk on every rerun. A spec (the dict pages pass around) is
``{"model", "label", "params", "dataset", "split", "run_id"}``: keys, never models.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from recsys.experiment import EVAL_K, RunSpec  # noqa: F401  (the pages' K choices are read from here)
from recsys.models import registry
from recsys.store import ExperimentStore, RunRecord, StoreError, owner_scope
from ui import data, identity, state
from ui.errors import attempt

MODEL_CACHE_SIZE = 16
REPORT_CACHE_SIZE = 256


class LoadedCache:
    """Models or reports by (store, run id, created-at), least recently used dropped first.

    The created-at stamp is part of the key, so a run deleted and trained again is never
    served from the copy of its predecessor. Entries are read-only once put.
    """

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._entries: OrderedDict = OrderedDict()

    def get(self, key):
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            return None

    def put(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


@st.cache_resource
def _models() -> LoadedCache:
    return LoadedCache(MODEL_CACHE_SIZE)


@st.cache_resource
def _reports() -> LoadedCache:
    return LoadedCache(REPORT_CACHE_SIZE)


@st.cache_resource(show_spinner=False)
def _open_store(root: str) -> ExperimentStore:
    return ExperimentStore(root)


def store() -> ExperimentStore:
    """The experiment store under the data directory; a page that cannot open it says why and stops."""
    return attempt("Opening the experiment store", _open_store, str(data.data_home() / "store"))


def owner_token() -> str:
    """This visitor's owner id (``ui.identity``, the same after a reload): runs and jobs on their uploads
    are visible to them alone."""
    return identity.owner_id()


def owner_for(source: dict) -> str:
    return owner_scope(source, owner_token(), data.data_home() / "uploads")


def shared_source(label: str) -> dict | None:
    """A dataset some session loaded from this server's disk under ``label`` (never an upload), or None."""
    return store().shared_source(label, data.data_home() / "uploads")


# ---------------------------------------------------------------------- specs
def run_spec(model_key: str, params: dict) -> dict:
    """The spec of training ``model_key`` with ``params`` on the current dataset and split: the page's
    dict form of a :class:`recsys.experiment.RunSpec` (every parameter typed: equal settings, equal id)."""
    source = state.current_source()
    spec = RunSpec.make(data.current_dataset(), state.split_config(), model_key, params, owner=owner_for(source))
    return {
        "model": spec.model,
        "label": spec.label,
        "params": spec.params,
        "dataset": source["label"],
        "split": spec.split.key(),
        "run_id": spec.run_id,
    }


def _spec_of(record: RunRecord, dataset_label: str) -> dict:
    """A stored run as a spec, equal to the one ``run_spec`` makes for the same settings."""
    return {
        "model": record.model,
        "label": record.label,
        "params": record.params,
        "dataset": dataset_label,
        "split": state.SplitConfig.from_dict(record.split).key(),
        "run_id": record.run_id,
    }


def storage_target(spec: dict) -> dict:
    """What a worker thread needs to store the run (captured here, in the page's thread)."""
    source = state.current_source()
    ds = data.current_dataset()
    st_store = store()
    st_store.register_dataset(ds, source, source["label"])
    return {"store": st_store, "owner": owner_for(source), "fingerprint": ds.fingerprint,
            "split": state.split_config(), "models": _models(), "reports": _reports()}


# ---------------------------------------------------------------------- finished runs
class RunEntry(dict):
    """A finished run's entry; its model is loaded from the store only when a page asks for it."""

    def __init__(self, load_model, **fields) -> None:
        super().__init__(**fields)
        self._load_model = load_model

    def __missing__(self, key):
        if key != "model":
            raise KeyError(key)
        self["model"] = self._load_model()
        return self["model"]

    def get(self, key, default=None):
        return self[key] if key == "model" or key in self else default


def _entry(spec: dict, record: RunRecord) -> RunEntry:
    st_store = store()
    key = (str(st_store.root), record.run_id, record.created_at)
    report = _reports().get(key)
    if report is None:
        report = attempt(f"Reading the results of {record.name}", st_store.load_report, record.run_id)
        _reports().put(key, report)
    return RunEntry(lambda: _model(spec, record, key), spec=spec, report=report,
                    fit_seconds=float(record.timings.get("fit_seconds", 0.0)),
                    history=list(record.extra.get("history", [])),
                    stopped_early=bool(record.extra.get("stopped_early", False)), name=record.name,
                    created_at=record.created_at)


def _model(spec: dict, record: RunRecord, key: tuple):
    """The run's fitted model: from this process's cache, else from the store (None when not stored)."""
    model = _models().get(key)
    if model is not None or not record.has_model:
        return model
    source = state.sources().get(spec["dataset"])
    if source is None:
        st.error(f"The dataset {spec['dataset']!r} of {record.name} is not loaded in this session; load it on the "
                 "Data page to use this model.")
        st.stop()
    split = attempt("Re-making the run's split", data.split_of, source, state.SplitConfig.from_dict(record.split))
    model = attempt(f"Loading the model of {record.name}", store().load_model, record.run_id, split.train)
    _models().put(key, model)
    return model


def _visible_record(run_id: str) -> RunRecord | None:
    try:
        return store().find_done(run_id, owner_token())
    except StoreError:
        return None


def result(spec: dict) -> dict | None:
    """The finished run's entry (spec, model, report, fit_seconds, history, stopped_early), or None."""
    record = _visible_record(spec["run_id"])
    return _entry(spec, record) if record is not None else None


def lookup(run_id: str) -> dict | None:
    """The spec of a finished run by id (e.g. from a shared link), or None when this session cannot see one."""
    record = _visible_record(run_id)
    if record is None:
        return None
    current = attempt("Loading the dataset", data.current_dataset).fingerprint
    if record.dataset == current:
        label = state.current_source()["label"]
    else:
        info = store().dataset_info(record.dataset)
        label = info["label"] if info else record.dataset
    return _spec_of(record, label)


def visible_records() -> list[RunRecord]:
    """Every finished run this session may see on the current dataset and split, oldest first."""
    fingerprint = attempt("Loading the dataset", data.current_dataset).fingerprint
    return store().list(owner=owner_token(), dataset=fingerprint, split=state.split_config(),
                        status="done")


def visible_runs() -> list[dict]:
    """Specs of the finished runs this session may see on the current dataset and split, oldest first
    (every stored one, not only those trained in this session: after a restart they are all here)."""
    label = state.current_source()["label"]
    return [_spec_of(record, label) for record in visible_records()]


def trained_here(capability: str | None = None) -> dict[str, dict]:
    """{display name: spec} of the finished runs with a stored model on the current dataset and split,
    optionally only those whose model has ``capability`` (a ``recsys.models.capabilities`` name such as
    "item_embeddings")."""
    from recsys.models.capabilities import has
    label = state.current_source()["label"]
    found = {}
    for record in visible_records():
        cls = registry.get(record.model)
        # a run imported without its model has numbers but nothing to inspect
        if cls is None or not record.has_model or (capability and not has(cls, capability)):
            continue
        name = record.label if record.name == record.label else record.name
        if name in found:  # the same model twice: tell the runs apart by their parameters
            name = f"{name} ({', '.join(f'{k}={v}' for k, v in record.params.items())})"
        found[name] = _spec_of(record, label)
    return found


def strongest(names: dict[str, dict]) -> str:
    """The name of the run with the highest stored NDCG@10 on this dataset and split (the first name when none
    has one): a visitor's first view should come from the strongest model, not the weakest."""
    ndcg = {record.run_id: record.metrics.get("ndcg@10") for record in visible_records()}
    scored = {name: ndcg.get(spec["run_id"]) for name, spec in names.items()}
    scored = {name: value for name, value in scored.items() if value is not None}
    return max(scored, key=scored.get) if scored else next(iter(names))
