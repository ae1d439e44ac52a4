"""Hyperparameter widgets generated from a model's Params dataclass (no per-model UI code)."""

from __future__ import annotations

import streamlit as st

from recsys.models import describe_params


def _widget(field: dict, key: str):
    name = field["name"].replace("_", " ").capitalize()
    default, helptext = field["default"], field["help"]
    if field.get("choices") is not None:
        choices = list(field["choices"])
        return st.selectbox(name, choices, index=choices.index(default), help=helptext, key=key)
    if isinstance(default, bool):
        return st.checkbox(name, value=default, help=helptext, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, value=default, step=1, min_value=field.get("low"),
                                   max_value=field.get("high"), help=helptext, key=key))
    if isinstance(default, float):
        low, high = field.get("low"), field.get("high")
        step = field.get("step") or _float_step(default, low, high)
        return float(st.number_input(name, value=default, min_value=None if low is None else float(low),
                                     max_value=None if high is None else float(high), step=float(step),
                                     format="%g", help=helptext, key=key))
    return st.text_input(name, value=str(default), help=helptext, key=key)


def _float_step(default: float, low, high) -> float:
    span = (high - low) if low is not None and high is not None else abs(default) or 1.0
    return max(span / 100.0, 1e-4)


def params_widgets(model_cls, key_prefix: str) -> dict:
    """One widget per hyperparameter; returns {name: value}. Call inside an st.form."""
    fields = describe_params(model_cls.Params)
    if not fields:
        st.caption("This model has no hyperparameters.")
        return {}
    values = {}
    cols = st.columns(min(3, len(fields)))
    for i, field in enumerate(fields):
        with cols[i % len(cols)]:
            values[field["name"]] = _widget(field, f"{key_prefix}.{field['name']}")
    return values
