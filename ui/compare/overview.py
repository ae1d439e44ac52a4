"""Overview: metric@K curves, NDCG with its interval, coverage and novelty; the paired test for two or more runs."""

from __future__ import annotations

import streamlit as st

from recsys.evaluation import compare
from ui import charts
from ui.compare import significance
from ui.compare.context import Comparison


def render(comparison: Comparison) -> None:
    reports, k = comparison.reports, comparison.k
    metric = st.radio("Curve metric", list(compare.CURVE_METRICS), horizontal=True, key="compare_curve_metric",
                      format_func=lambda name: compare.ACCURACY_LABELS.get(name, name.capitalize()))
    left, right = st.columns(2)
    # the readable name ("Graded NDCG") titles the chart; charts only knows the plain metrics' names
    comparison.show(charts.metric_curves(compare.curves_frame(reports, metric),
                                         compare.ACCURACY_LABELS.get(metric, metric)), left)
    comparison.show(charts.bars_with_ci(compare.interval_frame(reports, f"ndcg@{k}"), f"NDCG@{k}"), right)
    left, right = st.columns(2)
    comparison.show(charts.simple_bars(compare.value_frame(reports, f"coverage@{k}"), "coverage",
                                       f"Catalogue coverage@{k} (share of items ever recommended)", ".1%"), left)
    comparison.show(charts.simple_bars(compare.value_frame(reports, f"novelty@{k}"), "novelty",
                                       f"Novelty@{k} (bits of surprise per item)", ".2f"), right)
    if len(reports) >= 2:
        significance.render(comparison)
