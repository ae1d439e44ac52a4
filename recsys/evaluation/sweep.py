"""Hyperparameter sweeps: one model per value of one parameter, scored on validation and test.

A sweep answers "how does the embedding size (or k, or the penalty) move accuracy?": too small
underfits, too large overfits or memorises. Choosing the value by its *test* score would tune
on the test set, so every point also gets a validation score: from ``split.valid`` when the
split has one, otherwise from a slice of each user's training interactions held out here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from recsys import experiment
from recsys.data.split import Split, random_holdout
from recsys.evaluation.metrics import RANKING_METRICS
from recsys.models.base import FitCancelled, describe_params, legacy_names
from recsys.models.registry import get

# progress(step, total, info): step counts finished models; raising FitCancelled stops the sweep.
SweepProgress = Callable[[int, int, dict], None]

NUMERIC_TYPES = ("int", "float")


def numeric_params(model_key: str) -> list[dict]:
    """The model's hyperparameters a sweep can vary: ints and floats without a fixed list of choices."""
    return [p for p in describe_params(get(model_key).Params)
            if p["type"] in NUMERIC_TYPES and not p.get("choices") and p["name"] != "seed"]


def current_name(model_key: str, name: str) -> str:
    """A hyperparameter's current name (``factors`` -> ``embedding_size``): old notebooks sweep on."""
    return legacy_names(get(model_key).Params).get(name, name)


def _param_meta(model_key: str, name: str) -> dict:
    by_name = {p["name"]: p for p in numeric_params(model_key)}
    name = current_name(model_key, name)
    if name not in by_name:
        raise ValueError(f"{get(model_key).label} has no numeric hyperparameter {name!r} to sweep; "
                         f"choose one of {sorted(by_name) or 'none (it has no numeric hyperparameters)'}.")
    return by_name[name]


def sweep_values(model_key: str, name: str, low: float, high: float, n: int, *, log: bool | None = None) -> list:
    """``n`` evenly spaced values of ``name`` from ``low`` to ``high`` (both included).

    Spacing is logarithmic when ``log`` is True, or when it is None and the parameter's
    metadata says so (sizes and penalties act multiplicatively). Integer parameters are rounded
    and de-duplicated, so fewer than ``n`` values can come back on a narrow integer range.
    Bounds outside the parameter's allowed range raise a ValueError naming the range.
    """
    meta = _param_meta(model_key, name)
    if int(n) < 2:
        raise ValueError(f"A sweep needs at least 2 points; got {n}.")
    if not low < high:
        raise ValueError(f"The range must go from a smaller to a larger value; got {low} to {high}.")
    allowed_low, allowed_high = meta.get("low"), meta.get("high")
    if (allowed_low is not None and low < allowed_low) or (allowed_high is not None and high > allowed_high):
        raise ValueError(f"{name} must lie in [{allowed_low}, {allowed_high}]; got {low} to {high}.")
    use_log = meta.get("log", False) if log is None else log
    if use_log and low <= 0:
        raise ValueError(f"A log-spaced range must start above 0; got {low}. Start at a small positive value "
                         "or use linear spacing.")
    points = np.geomspace(low, high, int(n)) if use_log else np.linspace(low, high, int(n))
    if meta["type"] == "int":
        return sorted({int(round(v)) for v in points})
    return [float(v) for v in points]


def default_range(model_key: str, name: str) -> tuple:
    """A starting range for a sweep of ``name``: a quarter to four times the default, inside the allowed
    bounds (the bounds themselves when the default is 0). Log-scaled parameters start above 0, and an
    integer range spans at least two values, so ``sweep_values`` accepts it as it is."""
    meta = _param_meta(model_key, name)
    default, low, high = meta["default"], meta.get("low"), meta.get("high")
    if default > 0:
        lo, hi = default / 4, default * 4
    else:
        lo, hi = (low if low is not None else 0.0), (high if high is not None else 1.0)
    lo = max(lo, low) if low is not None else lo
    hi = min(hi, high) if high is not None else hi
    if meta.get("log") and lo <= 0:
        lo = hi / 1000
    if meta["type"] == "int":
        lo, hi = math.ceil(lo), math.floor(hi)
        return int(lo), int(max(hi, lo + 1))
    return float(lo), float(hi)


def _validation_parts(split: Split, fraction: float, seed: int):
    """(fit_on, valid): the split's own validation part, or one carved from train per user."""
    if split.valid is not None and split.valid.n_interactions > 0:
        return split.train, split.valid
    inner_train, valid = random_holdout(split.train, test_fraction=fraction, seed=seed)
    return inner_train, valid


def _final_loss(history: list[dict]) -> float:
    losses = [h["loss"] for h in history if "loss" in h]
    return float(losses[-1]) if losses else math.nan


def sweep(model_key: str, param: str, values, split: Split, metric: str = "ndcg@10", *,
          params: dict | None = None, seed: int = 42, valid_fraction: float = 0.1,
          progress: SweepProgress | None = None) -> pd.DataFrame:
    """Train ``model_key`` once per value of ``param`` and score each on validation and test.

    ``params`` fixes the other hyperparameters; a model with a ``seed`` parameter gets ``seed``
    so the points differ only in the swept value. Each model is fitted on the training part
    that excludes the validation items (so its validation score is honest) and its test score
    ranks everything minus all training items. Returns columns value, valid (validation
    ``metric``), test (test ``metric``), loss (last training loss in ``history_``, NaN for
    models without one) and fit_seconds. ``progress`` is called before each model and on each
    of its epochs; raising ``FitCancelled`` from it abandons the sweep.
    """
    param = current_name(model_key, param)
    meta = _param_meta(model_key, param)
    values = list(values)
    if not values:
        raise ValueError("A sweep needs at least one value.")
    _, k = _metric_parts(metric)
    fit_on, valid = _validation_parts(split, valid_fraction, seed)
    fixed = dict(params or {})
    if any(p["name"] == "seed" for p in describe_params(get(model_key).Params)):
        fixed["seed"] = seed
    rows = []
    for step, value in enumerate(values):
        value = int(value) if meta["type"] == "int" else float(value)
        _report(progress, step, len(values), {"value": value})
        model, fit_seconds = experiment.fit_model(model_key, {**fixed, param: value}, fit_on, valid=valid,
                                                  progress=_per_epoch(progress, step, len(values), value))
        valid_report = experiment.evaluate_model(model, fit_on, valid, k=[k], bootstrap=0)
        test_report = experiment.evaluate_model(model, split.train, split.test, k=[k], bootstrap=0)
        rows.append({"value": value, "valid": valid_report.means[metric], "test": test_report.means[metric],
                     "loss": _final_loss(model.history_), "fit_seconds": fit_seconds})
    _report(progress, len(values), len(values), {})
    return pd.DataFrame(rows, columns=["value", "valid", "test", "loss", "fit_seconds"])


def _metric_parts(metric: str) -> tuple[str, int]:
    family, _, k = metric.partition("@")
    known = (*RANKING_METRICS, "novelty", "arp")
    if family not in known or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric must be one of {list(known)} at a list length, like 'ndcg@10'; got {metric!r}.")
    return family, int(k)


def _report(progress: SweepProgress | None, step: int, total: int, info: dict) -> None:
    if progress is not None:
        progress(step, total, info)


def _per_epoch(progress: SweepProgress | None, step: int, total: int, value):
    """A model-level progress callback that forwards each epoch (and so a cancel) to the sweep's."""
    if progress is None:
        return None

    def forward(epoch: int, epochs: int, metrics: dict) -> None:
        progress(step, total, {"value": value, "epoch": epoch, "epochs": epochs, **metrics})

    return forward


__all__ = ["FitCancelled", "default_range", "numeric_params", "sweep", "sweep_values"]
