"""What every Compare view receives: the chosen runs, their reports, the split, K, and the charts drawn."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd
import streamlit as st

from recsys.data.split import Split
from recsys.evaluation import compare, tradeoffs
from recsys.evaluation.evaluator import Report


@dataclass
class Comparison:
    """The runs being compared, by display name, in the order the person chose them."""

    specs: dict[str, dict]  # name -> run spec (run_id, model, label, params, dataset, split)
    entries: dict[str, dict]  # name -> ui.runs.result(spec): report, fit_seconds, model (loaded on first use)
    split: Split
    k: int
    charts: dict[str, object] = field(default_factory=dict)  # chart title -> chart, for the export at the end

    @cached_property
    def reports(self) -> dict[str, Report]:
        return {name: entry["report"] for name, entry in self.entries.items()}

    @cached_property
    def fit_seconds(self) -> dict[str, float]:
        return {name: entry["fit_seconds"] for name, entry in self.entries.items()}

    @cached_property
    def table(self) -> pd.DataFrame:
        """``tradeoffs.metrics_table`` at K: the numbers behind the table, trade-offs and downloads."""
        return tradeoffs.metrics_table(self.reports, self.k, self.fit_seconds)

    @cached_property
    def per_user(self) -> pd.DataFrame:
        """One row per (run, user): built on first use (the Users view, the per-user download)."""
        return tradeoffs.per_user_metrics(self.reports, self.split.train, self.k)

    def show(self, chart, container=st) -> None:
        """Draw ``chart`` at the container's width and offer it for download under its title."""
        self.charts[chart_title(chart)] = chart
        container.altair_chart(chart, width="stretch")


def chart_title(chart) -> str:
    title = chart.title if isinstance(chart.title, str) else getattr(chart.title, "text", "chart")
    return str(title)


def choose_accuracy(k: int) -> tuple[str, str]:
    """The accuracy metric the trade-off, user and sweep views use: (report column, title)."""
    st.session_state.setdefault("compare_accuracy", "ndcg")
    labels = compare.ACCURACY_LABELS
    metric = st.radio("Accuracy metric", list(labels), horizontal=True, format_func=labels.get,
                      key="compare_accuracy")
    return compare.accuracy_metric(metric, k)
