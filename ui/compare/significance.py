"""Is the difference real? A paired test of two runs on NDCG@K over the users both evaluated."""

from __future__ import annotations

import streamlit as st

from recsys.evaluation import compare_reports
from recsys.evaluation.stats import significance_details
from ui.compare.context import Comparison
from ui.text import md_escape


def render(comparison: Comparison) -> None:
    st.subheader("Is the difference real?")
    names = list(comparison.reports)
    left, right = st.columns(2)
    a = left.selectbox("Model A", names, index=0, key="compare_a")
    b = right.selectbox("Model B", names, index=1, key="compare_b")
    if a == b:
        st.caption("Pick two different runs.")
        return
    # run names come from uploaded data and parameters: escaped before the sentence reaches markdown
    test = compare_reports(comparison.reports[a], comparison.reports[b], f"ndcg@{comparison.k}",
                           names=(md_escape(a), md_escape(b)))
    st.write(test["sentence"])
    for line in significance_details(test):
        st.caption(line)
