"""Session state: which dataset, split and runs a person has chosen (keys and configs, never models)."""

from __future__ import annotations

import streamlit as st

from recsys.data.split import SplitConfig  # the backend's type; pages read it as ui.state.SplitConfig
from ui import identity

SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}


def init() -> None:
    """Defaults for a new session; hands programmatic sidebar changes (a loaded dataset, a shared link)
    to the sidebar before it is drawn."""
    ss = st.session_state
    ss.setdefault("sources", {SAMPLE["label"]: SAMPLE})
    ss.setdefault("runs", [])  # list of run specs (dicts), the models live in the run cache
    ss.setdefault("train_messages", [])  # (kind, text) outcomes of finished trainings, newest last
    defaults = SplitConfig()
    ss.setdefault(SIDEBAR, {"sidebar_dataset": SAMPLE["label"], "sidebar_split": defaults.method,
                            "sidebar_test": defaults.test_fraction, "sidebar_n": defaults.n,
                            "sidebar_seed": defaults.seed, "sidebar_pos": defaults.positives,
                            "sidebar_t": defaults.threshold})
    ss.setdefault(SIDEBAR_GENERATION, 0)
    pending = ss.pop("_apply_widgets", {})  # a shared link's sidebar settings (ui.share)
    if "_select_dataset" in ss:  # a page loaded a dataset: select it
        pending["sidebar_dataset"] = ss.pop("_select_dataset")
    if pending:
        ss[SIDEBAR].update(pending)
        ss[SIDEBAR_GENERATION] += 1  # fresh widgets, whose initial values are the new ones
    ss.setdefault("dataset_label", ss[SIDEBAR]["sidebar_dataset"])
    ss.setdefault("split_config", defaults)
    with st.sidebar:  # an empty element (a script) at the top of the sidebar, where it moves nothing
        identity.remember()


# The sidebar's values live in SIDEBAR, not in the widgets' own state. Streamlit resets widget
# state when a page switch interrupts a run, and the browser then showed (and later sent back)
# the widgets' minimums, e.g. seed 0 and test share 0.05, while the server still held 42 and
# 0.2: the next model was silently trained on another split. A widget whose initial value is
# the remembered one cannot drift that way. A programmatic change starts a new generation of
# widget keys, because a drawn widget ignores a new initial value.
SIDEBAR, SIDEBAR_GENERATION = "_sidebar", "_sidebar_generation"


def sidebar_value(name: str):
    return st.session_state[SIDEBAR][name]


def sidebar_key(name: str) -> str:
    generation = st.session_state[SIDEBAR_GENERATION]
    return name if generation == 0 else f"{name}__{generation}"


def remember_sidebar(values: dict) -> None:
    st.session_state[SIDEBAR].update(values)


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


def add_train_message(kind: str, text: str) -> None:
    st.session_state["train_messages"].append((kind, text))
