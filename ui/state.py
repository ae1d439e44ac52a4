"""Session state: which dataset, split and runs a person has chosen (keys and configs, never models)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import streamlit as st

SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}


@dataclass(frozen=True)
class SplitConfig:
    method: str = "random"
    test_fraction: float = 0.2
    n: int = 1
    seed: int = 42
    positives: str = "all"  # "all" | "threshold"
    threshold: float = 4.0

    def key(self) -> tuple:
        return tuple(asdict(self).values())


def init() -> None:
    """Defaults for a new session, restoring dataset choice from the URL when it names one."""
    ss = st.session_state
    ss.setdefault("sources", {SAMPLE["label"]: SAMPLE})
    ss.setdefault("runs", [])  # list of run specs (dicts), the models live in the run cache
    ss.setdefault("training", [])  # specs this session started training (jobs run in the background)
    ss.setdefault("train_messages", [])  # (kind, text) outcomes of finished trainings, newest last
    defaults = SplitConfig()
    for key, value in (("sidebar_dataset", SAMPLE["label"]), ("sidebar_split", defaults.method),
                       ("sidebar_test", defaults.test_fraction), ("sidebar_n", defaults.n),
                       ("sidebar_seed", defaults.seed), ("sidebar_pos", defaults.positives),
                       ("sidebar_t", defaults.threshold)):
        ss.setdefault(key, value)
    if "_select_dataset" in ss:  # a page loaded a dataset: select it before the widget is drawn
        ss["sidebar_dataset"] = ss.pop("_select_dataset")
    for key, value in ss.pop("_apply_widgets", {}).items():  # a shared link's sidebar settings (ui.share)
        ss[key] = value
    ss.setdefault("dataset_label", ss["sidebar_dataset"])
    ss.setdefault("split_config", defaults)


def sources() -> dict[str, dict]:
    return st.session_state["sources"]


def add_source(descriptor: dict) -> None:
    """Remember a loaded dataset for this session and make it the current one."""
    st.session_state["sources"][descriptor["label"]] = descriptor
    st.session_state["dataset_label"] = descriptor["label"]
    st.session_state["_select_dataset"] = descriptor["label"]


def current_source() -> dict:
    label = st.session_state.get("dataset_label", SAMPLE["label"])
    return sources().get(label, SAMPLE)


def split_config() -> SplitConfig:
    return st.session_state["split_config"]


def runs() -> list[dict]:
    return st.session_state["runs"]


def add_run(spec: dict) -> None:
    if spec not in st.session_state["runs"]:
        st.session_state["runs"].append(spec)


def remove_run(spec: dict) -> None:
    st.session_state["runs"] = [r for r in st.session_state["runs"] if r != spec]


def watch_training(spec: dict) -> None:
    ss = st.session_state
    if spec not in ss["training"]:
        ss["training"].append(spec)


def training() -> list[dict]:
    return st.session_state["training"]


def stop_watching(spec: dict) -> None:
    st.session_state["training"] = [s for s in st.session_state["training"] if s != spec]


def add_train_message(kind: str, text: str) -> None:
    st.session_state["train_messages"].append((kind, text))
