"""The tables and sentences of the Compare page, computed from finished reports.

The page renders; everything it shows that is not a widget comes from here: run names, the
displayed metrics table and its best cells, the frames behind each chart, one person's lists,
the sweep and full-vs-sampled tables, and the numbers in the captions. Nothing here re-scores a
model (the sweep and the sampled protocol do that in ``sweep`` and ``sampled``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.evaluation import tradeoffs
from recsys.evaluation.evaluator import Report, curve
from recsys.evaluation.sampled import FULL, sampled_label
from recsys.evaluation.sweep import numeric_params
from recsys.models import get, registry

# ---------------------------------------------------------------------- choosing runs


def run_label(spec: dict, specs: list[dict]) -> str:
    """The run's model label, plus the parameters that differ from the other runs of the same model in ``specs``."""
    same_model = [other for other in specs if other["model"] == spec["model"]]
    if len(same_model) == 1:
        return spec["label"]
    differing = {name: value for name, value in spec["params"].items()
                 if any(other["params"].get(name) != value for other in same_model)}
    return f"{spec['label']} ({', '.join(f'{name}={value}' for name, value in differing.items())})"


def selection(ids: list[str], chosen: list[str], known: list[str]) -> list[str]:
    """The runs to compare: those ``chosen`` that still exist, then every id not ``known`` at the last visit.

    So a run trained since the last visit joins the comparison, and one the person removed stays out.
    """
    kept = [run_id for run_id in chosen if run_id in ids]
    return kept + [run_id for run_id in ids if run_id not in known and run_id not in kept]


# ---------------------------------------------------------------------- metrics table
# metrics_table column -> header shown on the page
TABLE_NAMES = {"run": "model", "fit_seconds": "fit s", "score_seconds": "score s"}


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """``tradeoffs.metrics_table`` for reading: each mean with a "low – high" interval column beside it."""
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        if column.endswith((" low", " high")):
            continue
        out[TABLE_NAMES.get(column, column)] = table[column]
        if f"{column} low" in table.columns:
            low, high = table[f"{column} low"], table[f"{column} high"]
            out[f"{column} 95% CI"] = [f"{a:.4f} – {b:.4f}" if np.isfinite(a) else "" for a, b in zip(low, high)]
    return out


def best_cells(table: pd.DataFrame) -> dict[str, list[int]]:
    """Row positions of each column's best run, keyed by the column's header in ``display_table``."""
    return {TABLE_NAMES.get(column, column): rows for column, rows in tradeoffs.best_per_column(table).items()}


def metrics_json(reports: dict[str, Report], specs: dict[str, dict], fit_seconds: dict[str, float]) -> str:
    """The metrics download: every run's spec and numbers (``tradeoffs.metrics_records``) as indented JSON."""
    return json.dumps(tradeoffs.metrics_records(reports, specs, fit_seconds), indent=2)


# ---------------------------------------------------------------------- overview frames
CURVE_METRICS = ("ndcg", "recall", "precision", "f1", "hit", "ndcg_graded", "coverage")
ACCURACY_LABELS = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "f1": "F1", "map": "MAP",
                   "mrr": "MRR", "hit": "Hit rate", "ndcg_graded": "Graded NDCG"}


def accuracy_metric(metric: str, k: int) -> tuple[str, str]:
    """(report column, readable title) of an accuracy metric at ``k``: ("ndcg@10", "NDCG@10")."""
    if metric not in ACCURACY_LABELS:
        raise ValueError(f"Unknown accuracy metric {metric!r}; choose from {list(ACCURACY_LABELS)}.")
    return f"{metric}@{k}", f"{ACCURACY_LABELS[metric]}@{k}"


def curves_frame(reports: dict[str, Report], metric: str) -> pd.DataFrame:
    """``metric`` at every K for every run: columns k, metric, value, run."""
    return pd.concat([curve(report, metric).assign(run=name) for name, report in reports.items()],
                     ignore_index=True)


def interval_frame(reports: dict[str, Report], column: str) -> pd.DataFrame:
    """Each run's mean of ``column`` with its 95 % bootstrap interval: columns run, mean, low, high."""
    return pd.DataFrame([{"run": name, "mean": report.means[column], "low": report.ci[column][0],
                          "high": report.ci[column][1]} for name, report in reports.items()])


def value_frame(reports: dict[str, Report], column: str) -> pd.DataFrame:
    """Each run's value of ``column`` ("coverage@10", "novelty@10"): columns run and the metric's family name.

    A per-user metric gives its mean, a list-level one (coverage, Gini, tail share) its single value.
    """
    family = column.split("@", 1)[0]
    values = [report.means[column] if column in report.means else report.list_level[column]
              for report in reports.values()]
    return pd.DataFrame({"run": list(reports), family: values})


# ---------------------------------------------------------------------- trade-offs and users
def tradeoff_axes(k: int) -> tuple[tuple[str, str, str, str], ...]:
    """The metrics set against accuracy: (column, axis title, chart title, axis number format) each."""
    return ((f"coverage@{k}", f"Coverage@{k}", "Accuracy vs catalogue coverage", "%"),
            (f"novelty@{k}", f"Novelty@{k} (bits)", "Accuracy vs novelty", ",.2f"),
            (f"arp@{k}", f"ARP@{k} (lower = less popularity bias)", "Accuracy vs popularity bias", ",.0f"))


def bucket_sizes(exposure: pd.DataFrame) -> str:
    """"head: 12 items, mid: 40 items, tail: 948 items" from ``tradeoffs.bucket_exposure``."""
    return ", ".join(f"{row.bucket}: {row.items:,} items" for row in exposure.drop_duplicates("bucket").itertuples())


def segment_sizes(segments: pd.DataFrame) -> str:
    """"new: 310 users with 1–12 interactions; …" from ``tradeoffs.segment_metrics``."""
    return "; ".join(f"{row.segment}: {row.users:,} users with {row.low_count}–{row.high_count} interactions"
                     for row in segments.drop_duplicates("segment").itertuples())


def evaluated_users(reports: dict[str, Report], train: Dataset) -> list[str]:
    """External ids (as text) of the users the first report evaluated, in its order."""
    first = next(iter(reports.values()))
    return [str(user) for user in train.user_ids[first.users]]


def person_lists(reports: dict[str, Report], train: Dataset, user: int, k: int) -> pd.DataFrame:
    """The top-``k`` titles each run recommended to user code ``user``, one column a run, ranks 1.. as index.

    A column is headed "<run> (NDCG 0.123)" with the user's NDCG@k; a title the user consumed in the
    test set starts with "✓ ". Runs that did not evaluate the user are left out; shorter lists are padded.
    """
    lists = {}
    for name, report in reports.items():
        row = np.flatnonzero(report.users == user)
        if len(row) == 0:
            continue
        items = report.recommended[row[0], :k]
        titles = train.item_titles(items[items >= 0])
        hits = report.hits[row[0], :k][items >= 0]
        lists[f"{name} (NDCG {report.per_user[f'ndcg@{k}'][row[0]]:.3f})"] = [
            f"✓ {title}" if hit else str(title) for title, hit in zip(titles, hits)]
    if not lists:
        raise ValueError(f"No run evaluated user code {user}.")
    width = max(len(titles) for titles in lists.values())
    return pd.DataFrame({name: titles + [""] * (width - len(titles)) for name, titles in lists.items()},
                        index=pd.RangeIndex(1, width + 1, name="rank"))


# ---------------------------------------------------------------------- sweep
def sweepable_models() -> list[str]:
    """Registry keys of the models with a numeric hyperparameter to sweep, by label."""
    return sorted((key for key in registry if numeric_params(key)), key=lambda key: get(key).label)


def sweep_progress(label: str, param: str, step: int, total: int, info: dict) -> str:
    """The progress bar's text: which model of the sweep trains, at which value and epoch."""
    where = f"{param} = {info['value']}" if "value" in info else "done"
    epoch = f", epoch {info['epoch']}/{info['epochs']}" if "epoch" in info else ""
    return f"{label}: model {min(step + 1, total)} of {total} ({where}{epoch})"


def sweep_table(frame: pd.DataFrame, param: str, metric: str) -> pd.DataFrame:
    """``sweep``'s result with readable headers: the parameter's name, "valid ndcg@10", "final loss", …"""
    return frame.rename(columns={"value": param, "valid": f"valid {metric}", "test": f"test {metric}",
                                 "loss": "final loss", "fit_seconds": "fit s"})


# ---------------------------------------------------------------------- full vs sampled
SAMPLED_METRICS = {"hit": "Hit rate", "ndcg": "NDCG"}
INFLATION = "sampled ÷ full"


def sampled_table(frame: pd.DataFrame, metric: str, n_negatives: int) -> pd.DataFrame:
    """One row per run from ``full_vs_sampled``: model, its full-ranking and sampled ``metric`` and their ratio.

    The ratio is blank where the full-ranking value is 0 (sampling cannot inflate nothing by a factor).
    """
    sampled = sampled_label(n_negatives)
    values = (frame[frame["metric"] == metric].pivot(index="run", columns="protocol", values="value")
              [[FULL, sampled]])
    values[INFLATION] = values[sampled] / values[FULL].where(values[FULL] > 0)
    values.columns.name = None
    return values.reset_index().rename(columns={"run": "model"})


# ---------------------------------------------------------------------- export
def chart_filename(title: str) -> str:
    """A file name stem for a chart: its title in lower case, every other character than a letter or digit as "_", at most 60 long."""
    return "".join(ch if ch.isalnum() else "_" for ch in title.lower()).strip("_")[:60] or "chart"
