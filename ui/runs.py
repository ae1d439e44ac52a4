"""Training and evaluating runs for the pages, with progress; fitted models live in a process cache."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import streamlit as st

from recsys.evaluation import evaluate
from recsys.models import create, get
from ui import data, state

EVAL_K = (1, 5, 10, 20, 50)


class RunCache:
    """Fitted models and reports by run id, shared by sessions of this server process.

    The key covers (dataset, split, model, params, seed), so two people who train the same
    thing share it and nobody retrains what is already trained.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, dict] = {}

    def get(self, run_id: str) -> dict | None:
        with self._lock:
            return self._entries.get(run_id)

    def put(self, run_id: str, entry: dict) -> None:
        with self._lock:
            self._entries[run_id] = entry


@st.cache_resource
def run_cache() -> RunCache:
    return RunCache()


def run_spec(model_key: str, params: dict) -> dict:
    source = state.current_source()
    config = state.split_config()
    spec = {
        "model": model_key,
        "label": get(model_key).label,
        "params": params,
        "dataset": source["label"],
        "split": config.key(),
    }
    spec["run_id"] = hashlib.sha256(
        json.dumps([source, spec["model"], params, spec["split"]], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return spec


def fit_and_evaluate(spec: dict, split, progress=None) -> dict:
    """Fit the run's model on ``split`` and evaluate it; no Streamlit calls (runs in a worker thread)."""
    model = create(spec["model"], **spec["params"])
    start = time.perf_counter()
    model.fit(split.train, valid=split.valid, progress=progress)
    fit_seconds = time.perf_counter() - start
    report = evaluate(model, split.train, split.test, k=list(EVAL_K), bootstrap=500)
    return {"spec": spec, "model": model, "report": report, "fit_seconds": fit_seconds, "history": list(model.history_),
            "stopped_early": bool(getattr(model, "stopped_early_", False))}


def train(spec: dict, progress=None) -> dict:
    """Fit and evaluate the run in this thread (or reuse the cached one); returns the entry."""
    cached = run_cache().get(spec["run_id"])
    if cached is not None:
        return cached
    entry = fit_and_evaluate(spec, data.current_split(), progress)
    run_cache().put(spec["run_id"], entry)
    return entry


def result(spec: dict) -> dict | None:
    return run_cache().get(spec["run_id"])


def lookup(run_id: str) -> dict | None:
    """The spec of a finished run by id (e.g. from a shared link), or None when this server has no such run."""
    entry = run_cache().get(run_id)
    return entry.get("spec") if entry else None


def visible_runs() -> list[dict]:
    """Specs of the finished runs this session may see on the current dataset and split, oldest first."""
    current = state.current_source()["label"]
    split_key = state.split_config().key()
    return [spec for spec in state.runs()
            if result(spec) is not None and spec["dataset"] == current and spec["split"] == split_key]


def trained_here(capability: str | None = None) -> dict[str, dict]:
    """{display name: spec} of this session's trained runs on the current dataset and split,
    optionally only those whose model has ``capability`` (a method name such as
    "item_embeddings")."""
    current = state.current_source()["label"]
    split_key = state.split_config().key()
    found = {}
    for spec in state.runs():
        entry = result(spec)
        if entry is None or spec["dataset"] != current or spec["split"] != split_key:
            continue
        if capability and not callable(getattr(entry["model"], capability, None)):
            continue
        name = spec["label"]
        if name in found:  # the same model twice: tell the runs apart by their parameters
            name = f"{name} ({', '.join(f'{k}={v}' for k, v in spec['params'].items())})"
        found[name] = spec
    return found
