"""Session state: which dataset, split and runs a person has chosen (keys and configs, never models)."""

from __future__ import annotations

from dataclasses import fields

import streamlit as st

from recsys.data.split import SPLIT_METHODS, SplitConfig  # the backend's type; pages read ui.state.SplitConfig
from ui import identity

SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
# The one set of words for the split methods: the sidebar, captions, messages and tables read it.
SPLIT_LABELS = {
    "random": "Random per-user holdout",
    "temporal": "Temporal cut-off (train on the past)",
    "leave_last": "Leave last n out per user",
}
assert set(SPLIT_LABELS) == set(SPLIT_METHODS), "every split method needs its label"
# the validation part's share of train that the sidebar and a shared link accept (the test share's range)
VALID_FRACTION_RANGE = (0.05, 0.5)


def init() -> None:
    """Defaults for a new session; hands programmatic sidebar changes (a loaded dataset, a shared link)
    to the sidebar before it is drawn."""
    ss = st.session_state
    ss.setdefault("sources", {SAMPLE["label"]: SAMPLE})
    ss.setdefault("runs", [])  # list of run specs (dicts), the models live in the run cache
    ss.setdefault("train_messages", [])  # (kind, text, dataset · split) outcomes of finished trainings, newest last
    defaults = SplitConfig()
    remembered = ss.setdefault(SIDEBAR, {})
    for name, value in {"sidebar_dataset": SAMPLE["label"], "sidebar_split": defaults.method,
                        "sidebar_test": defaults.test_fraction, "sidebar_n": defaults.n,
                        "sidebar_seed": defaults.seed, "sidebar_pos": defaults.positives,
                        "sidebar_t": defaults.threshold, "sidebar_valid": defaults.validation,
                        "sidebar_vf": defaults.valid_fraction}.items():
        remembered.setdefault(name, value)  # a value added later reaches sessions already open too
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


def add_train_message(kind: str, text: str, context: str = "") -> None:
    """A training outcome for the Train page; ``context`` names the dataset and split it belongs to."""
    st.session_state["train_messages"].append((kind, text, context))


def train_messages() -> list[tuple[str, str, str]]:
    """(kind, text, context) of the finished trainings, newest last."""
    return [message if len(message) == 3 else (*message, "") for message in st.session_state["train_messages"]]


def split_from_key(key) -> SplitConfig:
    """The SplitConfig of a spec's ``split`` (``SplitConfig.key()``: its dict's values in field order)."""
    if isinstance(key, SplitConfig):
        return key
    names = [f.name for f in fields(SplitConfig)]
    return SplitConfig(**dict(zip(names, key)))


def split_text(config) -> str:
    """A split in words: "random 80/20 holdout", "temporal cut-off (latest 20 % as test)",
    "leave last 1 out", with ", with a validation part" and ", ratings ≥ 4 as positives" when set."""
    config = split_from_key(config)
    share = round(config.test_fraction * 100)
    text = {
        "random": f"random {100 - share}/{share} holdout",
        "temporal": f"temporal cut-off (latest {share} % as test)",
        "leave_last": f"leave last {config.n} out",
    }[config.method]
    if config.uses_valid_fraction and config.valid_fraction != SplitConfig().valid_fraction:
        text += f", with a {config.valid_fraction * 100:g} % validation part"
    elif config.validation:
        text += ", with a validation part"
    if config.positives == "threshold":
        text += f", ratings ≥ {config.threshold:g} as positives"
    return text
