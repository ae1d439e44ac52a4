"""Cached loading of datasets and splits for the pages, and durable storage of uploads."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import streamlit as st

from recsys import store
from recsys.data import Dataset, loaders
from recsys.data.split import Split
from ui import state


def data_home() -> Path:
    """Where uploads and the experiment store (``store/``) are kept, so a rerun or server restart
    loses nothing (RECSYS_HOME overrides)."""
    home = Path(os.environ.get("RECSYS_HOME", Path.home() / ".recsys-explorer"))
    (home / "uploads").mkdir(parents=True, exist_ok=True)
    return home


def save_upload(name: str, payload: bytes) -> Path:
    """Store uploaded bytes under their content hash (never executed or unpickled)."""
    digest = hashlib.sha256(payload).hexdigest()[:20]
    suffix = "".join(Path(name).suffixes[-2:]) or ".csv"
    path = data_home() / "uploads" / f"{digest}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(payload)
        tmp.replace(path)  # atomic: a half-written upload never looks complete
    return path


# Datasets are immutable, so one shared copy per source is safe; st.cache_resource avoids
# re-pickling a multi-million-row Dataset on every rerun as st.cache_data would.
@st.cache_resource(show_spinner="Loading data…", max_entries=16)
def _load(descriptor_items: tuple) -> Dataset:
    descriptor = dict(descriptor_items)
    kind = descriptor["kind"]
    if kind == "sample":
        return loaders.load("sample")
    if kind == "path":
        return loaders.load(descriptor["path"])
    if kind == "table":
        return loaders.load_mapped(descriptor)
    raise ValueError(f"unknown dataset source {kind!r}")


def _freeze(descriptor: dict) -> tuple:
    return tuple(sorted((k, v if not isinstance(v, dict) else tuple(sorted(v.items())))
                        for k, v in descriptor.items()))


def load_source(descriptor: dict) -> Dataset:
    return _load(_freeze(descriptor))


def with_positives(ds: Dataset, config: state.SplitConfig) -> Dataset:
    return store.with_positives(ds, asdict(config))


@st.cache_resource(show_spinner="Splitting…", max_entries=32)
def _split(descriptor_items: tuple, config: state.SplitConfig) -> Split:
    # the same function the experiment store uses to re-make a run's split, so both agree
    return store.split_dataset(_load(descriptor_items), asdict(config))


def split_of(source: dict, config: state.SplitConfig) -> Split:
    """The split of ``source`` under ``config`` (cached like the current one)."""
    return _split(_freeze(source), config)


def current_dataset() -> Dataset:
    return load_source(state.current_source())


def current_split() -> Split:
    return _split(_freeze(state.current_source()), state.split_config())
