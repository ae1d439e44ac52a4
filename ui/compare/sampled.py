"""Full vs sampled: every run scored again against ~100 sampled items per test item, next to full ranking."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys.evaluation import compare
from recsys.evaluation.sampled import FULL, full_vs_sampled, rank_changes, sampled_label
from ui import charts
from ui.compare.context import Comparison
from ui.errors import attempt
from ui.text import md_escape

CACHE = "_compare_sampled"  # session key: the last comparison's frame, so reruns do not score again


def render(comparison: Comparison) -> None:
    st.caption("Many papers and libraries do not rank the whole catalogue: each test item is ranked against about 100 "
               "items drawn at random from those the person never touched. The numbers look far better and, "
               "worse, the order of the models can change (Krichene & Rendle, 2020). Every run below is scored "
               "again that way, with the same random draws, next to its full-ranking number. The effect is strongest "
               "with one test item per person (the leave-last-out split in the sidebar), the setting those papers use.")
    c1, c2 = st.columns([1, 2])
    n_negatives = int(c1.number_input("Sampled items per test item", 10, 5000, 100, step=10,
                                      key="compare_sampled_n"))
    labels = compare.SAMPLED_METRICS
    metric = c2.radio("Metric", list(labels), format_func=labels.get, horizontal=True, key="compare_sampled_metric")
    if len(comparison.reports) < 2:
        st.info("Pick at least two runs above: the point is how their order changes.")
        return
    frame = _frame(comparison, n_negatives)
    title = f"{labels[metric]}@{comparison.k}"
    comparison.show(charts.rank_slopes(frame[frame["metric"] == metric], title))
    changes = rank_changes(frame, metric)
    if changes:
        st.warning(f"Sampling changes the order of the models on {title}:\n\n"
                   + "\n".join(f"- {md_escape(line)}" for line in changes))
    else:
        st.success(f"Here sampling keeps the order of these runs on {title}, but every number is inflated, and "
                   "with other models or another K the order can change.")
    st.dataframe(compare.sampled_table(frame, metric, n_negatives), hide_index=True, width="stretch",
                 column_config={column: st.column_config.NumberColumn(format="%.4f")
                                for column in (FULL, sampled_label(n_negatives))}
                 | {compare.INFLATION: st.column_config.NumberColumn(format="%.1f×")})


def _frame(comparison: Comparison, n_negatives: int) -> pd.DataFrame:
    """Full ranking vs the sampled protocol for the chosen runs, computed once per (runs, n, K, split)."""
    cache = st.session_state.setdefault(CACHE, {})
    key = (tuple(spec["run_id"] for spec in comparison.specs.values()), n_negatives, comparison.k,
           comparison.split.key())
    if key not in cache:
        def score_again():
            models = {name: entry["model"] for name, entry in comparison.entries.items()}  # stored models load here
            return full_vs_sampled(models, comparison.reports, comparison.split.train, comparison.split.test,
                                   comparison.k, n_negatives)

        with st.spinner(f"Scoring {len(comparison.entries)} run(s) again against {n_negatives:,} sampled items per "
                        "test item…"):
            frame = attempt("Scoring the runs against sampled items", score_again)
        cache.clear()  # one comparison at a time: the frames are small, the point is not to recompute on reruns
        cache[key] = frame
    return cache[key]
