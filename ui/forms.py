"""Hyperparameter widgets generated from a model's Params dataclass (no per-model UI code)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from recsys.models import describe_params

# Names that read badly when merely capitalised.
LABELS = {"lr": "Learning rate", "lr_decay": "Learning-rate decay", "reg": "L2 penalty",
          "bias_reg": "Bias L2 penalty", "cg_steps": "CG steps", "k": "k (neighbours)"}
# Hyperparameters of the shared training loop: drawn after the model's own, under their own caption.
TRAINING_LOOP = ("epochs", "batch_size", "lr", "lr_decay", "weight_decay", "patience", "seed", "device")


def label(name: str) -> str:
    """A hyperparameter's name as the form shows it."""
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _widget(field: dict, key: str):
    name = label(field["name"])
    default, helptext = field["default"], field["help"]
    if field.get("choices") is not None:
        choices = list(field["choices"])
        return st.selectbox(name, choices, index=choices.index(default), help=helptext, key=key,
                            format_func=_choice_text)
    if isinstance(default, bool):
        return st.checkbox(name, value=default, help=helptext, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, value=default, step=1, min_value=field.get("low"),
                                   max_value=field.get("high"), help=helptext, key=key))
    if isinstance(default, float):
        low, high = field.get("low"), field.get("high")
        step = field.get("step") or _float_step(default, low, high, field.get("log", False))
        return float(st.number_input(name, value=default, min_value=None if low is None else float(low),
                                     max_value=None if high is None else float(high), step=float(step),
                                     format="%g", help=helptext, key=key))
    return st.text_input(name, value=str(default), help=helptext, key=key)


def _choice_text(choice) -> str:
    """A choice as words ("all_time" -> "all time"); the value passed on stays the key."""
    return str(choice).replace("_", " ")


def _float_step(default: float, low, high, log: bool = False) -> float:
    if log and default > 0:  # a log-scaled value moves by its own order of magnitude
        return float(10 ** np.floor(np.log10(default)))
    span = (high - low) if low is not None and high is not None else abs(default) or 1.0
    return max(span / 100.0, 1e-4)


# Hyperparameters that act only when the split has a validation part.
NEEDS_VALIDATION = ("patience",)
NO_VALIDATION_NOTE = ("Early stopping (patience) needs a validation part: tick **Validation part** in the "
                      "sidebar to watch validation NDCG@10 per epoch, stop when it no longer improves and keep "
                      "the best epoch. Without one, every epoch is trained.")


def params_widgets(model_cls, key_prefix: str, *, validation: bool = True) -> dict:
    """One widget per hyperparameter; returns {name: value}. Call inside an st.form.

    Without a validation part (``validation=False``) the hyperparameters that need one are not
    drawn (they keep their defaults, which then do nothing) and a note says how to get them."""
    fields = describe_params(model_cls.Params)
    if not fields:
        st.caption("This model has no hyperparameters.")
        return {}
    hidden = [] if validation else [f for f in fields if f["name"] in NEEDS_VALIDATION]
    fields = [f for f in fields if f not in hidden]
    own = [f for f in fields if f["name"] not in TRAINING_LOOP]
    loop = [f for f in fields if f["name"] in TRAINING_LOOP]
    values = _grid(own, key_prefix)
    if loop and own:
        st.caption("Training loop")
    values.update(_grid(loop, key_prefix))
    if hidden:
        st.caption(NO_VALIDATION_NOTE)
    return values


def _grid(fields: list[dict], key_prefix: str) -> dict:
    values = {}
    if not fields:
        return values
    cols = st.columns(3)
    for i, field in enumerate(fields):
        with cols[i % len(cols)]:
            values[field["name"]] = _widget(field, f"{key_prefix}.{field['name']}")
    return values
