"""The end of the Compare page: the link to this view, and the drawn charts as PNG or SVG files."""

from __future__ import annotations

import streamlit as st

from recsys.evaluation.compare import chart_filename
from ui import share, state
from ui.compare.context import Comparison


def render(comparison: Comparison, view: str) -> None:
    st.subheader("Share this view")
    url = share.write(state.current_source()["label"], [spec["run_id"] for spec in comparison.specs.values()],
                      st.session_state.get("compare_user"), comparison.k, view)
    st.code(url, language=None)
    st.caption("Copy the link (button at the right of the box): it opens this dataset, split, these runs, view, user "
               "and K. Runs are looked up on this server by id; the link holds no data.")
    if not share.can_render():
        st.caption("Each chart's ⋯ menu saves it as PNG or SVG.")
    elif comparison.charts:
        _chart_downloads(comparison.charts)


def _chart_downloads(drawn: dict[str, object]) -> None:
    if st.session_state.get("compare_export_chart") not in drawn:  # the view changed: its charts did too
        st.session_state.pop("compare_export_chart", None)
    c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="bottom")
    title = c1.selectbox("Chart to download", list(drawn), key="compare_export_chart")
    chart, filename = drawn[title], chart_filename(title)
    c2.download_button("PNG", lambda: share.render(chart, "png"), f"{filename}.png", "image/png",
                       key="compare_export_png", width="stretch", on_click="ignore")
    c3.download_button("SVG", lambda: share.render(chart, "svg"), f"{filename}.svg", "image/svg+xml",
                       key="compare_export_svg", width="stretch", on_click="ignore")
