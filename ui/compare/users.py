"""Users: accuracy for new, casual and heavy users, how it spreads over users, and one person's lists."""

from __future__ import annotations

import streamlit as st

from recsys.evaluation import compare, tradeoffs
from ui import charts
from ui.compare.context import Comparison, choose_accuracy
from ui.text import md_escape


def render(comparison: Comparison) -> None:
    accuracy_column, accuracy_title = choose_accuracy(comparison.k)
    segments = tradeoffs.segment_metrics(comparison.reports, comparison.split.train, accuracy_column, n_boot=500)
    spread = tradeoffs.distribution_summary(comparison.per_user, accuracy_column)
    left, right = st.columns(2)
    comparison.show(charts.segment_bars(segments, accuracy_title), left)
    comparison.show(charts.distribution_boxes(spread, accuracy_title), right)
    st.caption("Users are split at the terciles of their training-interaction counts (the thresholds adapt to the "
               f"data): {compare.segment_sizes(segments)}. Whiskers are 95% bootstrap intervals; a segment with few "
               "users gets a wide one. Right: the box holds the middle half of users, the white tick is the median, "
               "the diamond the mean, the line runs to the most extreme users within 1.5 box-lengths.")
    st.subheader("One person's lists")
    one_person(comparison)


def one_person(comparison: Comparison) -> None:
    """Pick a test user: their metrics and top-K list under each run, side by side."""
    train = comparison.split.train
    user_ids = compare.evaluated_users(comparison.reports, train)
    asked = st.session_state.get("compare_user")
    if asked not in user_ids:
        if asked is not None:  # e.g. a link naming a user this split does not evaluate
            st.warning(f"User {md_escape(asked)} is not among the {len(user_ids):,} evaluated test users; showing "
                       f"user {md_escape(user_ids[0])} instead.")
        st.session_state["compare_user"] = user_ids[0]
    user = st.selectbox("Test user", user_ids, key="compare_user",
                        help="Any user the runs were evaluated on; the link below remembers the choice.")
    code = int(next(iter(comparison.reports.values())).users[user_ids.index(user)])
    st.dataframe(compare.person_lists(comparison.reports, train, code, comparison.k), width="stretch")
    st.caption(f"✓ = the user consumed the item in the test set. User {md_escape(user)} has "
               f"{int(train.user_activity[code]):,} training interactions.")
