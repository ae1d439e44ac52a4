"""The metrics table at K with its caveats, and the CSV/JSON downloads (always shown, above the views)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys.evaluation import compare
from recsys.evaluation.caveats import caveats
from recsys.export import safe_csv
from ui.compare.context import Comparison
from ui.text import md_escape

BEST = "background-color: #c8f7c5"


def render(comparison: Comparison) -> None:
    k, table = comparison.k, comparison.table
    st.subheader(f"Metrics at K = {k}")
    for caveat in caveats(comparison.split, comparison.reports, f"ndcg@{k}"):
        st.warning(md_escape(caveat))  # plain prose that names runs
    st.caption("Green marks the best run per column (lowest for ARP, Gini, RMSE/MAE and times). Full ranking over "
               "the catalogue; training items excluded. Intervals: 95% bootstrap over users. ARP = average training "
               "popularity of recommended items; Gini = how unequally exposure is spread over items; tail_share = "
               "share of recommendations outside the most popular 20% of items. F1 = harmonic mean of precision and "
               "recall. ndcg_graded = NDCG with each held-out item's rating as its gain (linear: a 5 counts 5/4 of "
               "a 4), where ndcg counts every relevant item as 1; on implicit data the two agree. Click a header to "
               "sort.")
    st.dataframe(_marked(compare.display_table(table), compare.best_cells(table)), hide_index=True, width="stretch",
                 column_config={"model": st.column_config.TextColumn("model", pinned=True)})
    _downloads(comparison)


def _marked(shown: pd.DataFrame, best: dict[str, list[int]]):
    """Green background on each column's best rows; numbers to four places, blanks as "–"."""

    def colour(column: pd.Series) -> list[str]:
        rows = best.get(column.name, [])
        return [BEST if i in rows else "" for i in range(len(column))]

    numeric = [c for c in shown.columns if shown[c].dtype.kind == "f"]
    return shown.style.apply(colour, axis=0).format(precision=4, subset=numeric, na_rep="–")


def _downloads(comparison: Comparison) -> None:
    # downloads are built on click (deferred), not on every rerun of the page; a click must not rerun the
    # script, or the rerun replaces the deferred file before the browser fetches it. CSV text cells that a
    # spreadsheet would run as formulas (ids and names from uploaded data) are neutralised.
    def metrics_json() -> str:
        return compare.metrics_json(comparison.reports, comparison.specs, comparison.fit_seconds)

    with st.container(horizontal=True):
        st.download_button("Metrics (CSV)", lambda: safe_csv(comparison.table), "metrics.csv", "text/csv",
                           key="download_metrics", icon=":material/download:", on_click="ignore")
        st.download_button("Metrics (JSON)", metrics_json, "metrics.json", "application/json",
                           key="download_metrics_json", icon=":material/download:", on_click="ignore")
        st.download_button("Per-user metrics (CSV)", lambda: safe_csv(comparison.per_user), "per_user_metrics.csv",
                           "text/csv", key="download_per_user", icon=":material/download:", on_click="ignore")
