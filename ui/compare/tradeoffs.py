"""Trade-offs & exposure: accuracy against coverage, novelty and popularity bias with Pareto fronts,
and which popularity buckets get the recommendation slots."""

from __future__ import annotations

import streamlit as st

from recsys.evaluation import compare, tradeoffs
from ui import charts
from ui.compare.context import Comparison, choose_accuracy


def render(comparison: Comparison) -> None:
    k, split = comparison.k, comparison.split
    accuracy_column, accuracy_title = choose_accuracy(k)
    st.caption("A run is on the Pareto front (filled points, joined by the dashed line) when no other run is better "
               "on both axes at once: every run off the front is beaten outright, so the real choice is among the "
               "front's runs.")
    for column, (other, other_title, title, fmt) in zip(st.columns(3), compare.tradeoff_axes(k)):
        front = tradeoffs.pareto_frame(comparison.table, accuracy_column, other)
        comparison.show(charts.tradeoff_scatter(front, accuracy_column, other, accuracy_title, other_title, title,
                                                fmt), column)
    st.subheader("Which items get exposure?")
    exposure = tradeoffs.bucket_exposure(comparison.reports, split.train, split.test, k)
    comparison.show(charts.exposure_bars(exposure, k))
    st.caption("Items sorted from most to least popular in training: the head holds the items that make up the "
               "first half of all training interactions, the mid the next 30%, the tail the last 20% and items "
               f"nobody consumed ({compare.bucket_sizes(exposure)}). A model without popularity bias recommends "
               "each bucket about as often as people consumed it.")
