"""Homepage rendering: rows of HTML tiles (title, year, genres, reason), page metrics and their charts.

Posters are not available, so a tile is a coloured card; the colour follows the title's
first genre, which makes a page's genre mix visible at a glance. Every text that comes
from data (titles, genres, reasons, row names) is HTML-escaped and kept on one line before it
reaches the page (a blank line would end the HTML block and let markdown through).
"""

from __future__ import annotations

import re

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from recsys.serving.page import Homepage
from recsys.serving.rows import Catalogue
from ui.text import html_text, md_escape

# Muted, readable card colours (white text passes contrast on each); cycled over genre names.
PALETTE = ("#3b5b92", "#8a3b3b", "#2f6f4f", "#6b4a8a", "#8a6a2a", "#2a6f7f", "#7a3f6a", "#4f5f2f",
           "#5a5a5a", "#9a4f2a", "#2f4f8a", "#6a2f2f")
NO_GENRE_COLOUR = "#44475a"

CSS = """
<style>
.hp-row-title { font-weight: 600; font-size: 1.05rem; margin: 0.6rem 0 0.3rem 0; }
.hp-row-note { font-weight: 400; font-size: 0.8rem; opacity: 0.65; margin-left: 0.5rem; }
.hp-tiles { display: flex; gap: 0.5rem; overflow-x: auto; padding-bottom: 0.4rem; }
.hp-tile { flex: 0 0 140px; min-height: 124px; border-radius: 8px; padding: 0.5rem 0.6rem;
           color: #fff; display: flex; flex-direction: column; gap: 0.2rem; box-sizing: border-box; }
.hp-tile-title { font-weight: 600; font-size: 0.88rem; line-height: 1.15; }
.hp-tile-meta { font-size: 0.72rem; opacity: 0.85; }
.hp-tile-reason { font-size: 0.72rem; opacity: 0.95; margin-top: auto; font-style: italic; line-height: 1.2; }
</style>
"""

_TRAILING_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


def display_title(title: str, year: float) -> str:
    """The title without a trailing "(1995)" when the year is shown on its own line anyway."""
    match = _TRAILING_YEAR.search(title)
    if match and np.isfinite(year) and int(match.group(1)) == int(year):
        return title[: match.start()]
    return title


def genre_colour(genres: tuple[str, ...], names: list[str]) -> str:
    if not genres:
        return NO_GENRE_COLOUR
    position = names.index(genres[0]) if genres[0] in names else len(genres[0])
    return PALETTE[position % len(PALETTE)]


def tile_html(item: int, reason: str, catalogue: Catalogue) -> str:
    title = str(catalogue.titles[item])
    year = catalogue.years[item]
    genres = tuple(catalogue.genres[item])
    meta = [str(int(year))] if np.isfinite(year) else []
    if genres:
        meta.append(", ".join(genres[:3]) + ("…" if len(genres) > 3 else ""))
    colour = genre_colour(genres, catalogue.genre_names)
    return (f'<div class="hp-tile" style="background:{colour}" title="{html_text(title)}">'
            f'<div class="hp-tile-title">{html_text(display_title(title, year))}</div>'
            f'<div class="hp-tile-meta">{html_text(" · ".join(meta))}</div>'
            f'<div class="hp-tile-reason">{html_text(reason)}</div></div>')


def page_html(page: Homepage, catalogue: Catalogue) -> str:
    """The whole page as one HTML block: a heading and a horizontal strip of tiles per row."""
    parts = [CSS]
    for row in page.rows:
        tiles = "".join(tile_html(int(i), r, catalogue) for i, r in zip(row.items, row.reasons))
        parts.append(f'<div class="hp-row-title">{html_text(row.title)}'
                     f'<span class="hp-row-note">{html_text(row_note(page, row))}</span></div>'
                     f'<div class="hp-tiles">{tiles}</div>')
    return "".join(parts)


def row_note(page: Homepage, row) -> str:
    """The small print beside a row title: its relevance, and on a mixed page the model that made it."""
    note = f"relevance {row.relevance:.2f}"
    if page.mixed:
        note = f"by {row.model} · {note}" if row.model else f"no model · {note}"
    return note


def show_page(page: Homepage, catalogue: Catalogue) -> None:
    for message in page.skipped:
        st.warning(md_escape(message))  # names rows and models
    if not page.rows:
        st.info("No row has anything left to show for this person.")
        return
    st.markdown(page_html(page, catalogue), unsafe_allow_html=True)


METRIC_HELP = {
    "page coverage": "Distinct titles / slots: 100 % means no title repeats.",
    "duplicates": "Slots holding a title already shown higher up.",
    "genres": "Distinct genres on the page.",
    "genre entropy (bits)": "Spread of the genre mix: higher = more even across genres.",
    "novelty (bits)": "Mean self-information −log2(share of users who watched it): higher = less obvious.",
    "tail share": "Share of slots from the long tail (outside the 20 % most popular titles).",
}


def metric_value(name: str, value) -> str:
    if name in ("page coverage", "tail share", "catalogue share"):
        return f"{value:.0%}" if name != "catalogue share" else f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return f"{value:,}"


def show_metrics(page: Homepage) -> None:
    """Page-level metrics as a compact list of st.metric, with what each means on hover."""
    for name in ("page coverage", "duplicates", "genres", "genre entropy (bits)", "novelty (bits)", "tail share"):
        st.metric(name.capitalize(), metric_value(name, page.metrics[name]), help=METRIC_HELP[name])
    st.caption(f"{page.metrics['rows']} rows, {page.metrics['slots']} slots, "
               f"{page.metrics['distinct titles']} distinct titles.")


def metrics_table(pages: dict[str, Homepage]) -> pd.DataFrame:
    """One column per page, one row per metric (formatted for reading)."""
    names = ["rows", "slots", "distinct titles", "duplicates", "page coverage", "genres", "genre entropy (bits)",
             "novelty (bits)", "tail share"]
    return pd.DataFrame({label: [metric_value(n, page.metrics[n]) for n in names] for label, page in pages.items()},
                        index=[n.capitalize() for n in names])


def genre_mix(pages: dict[str, Homepage], catalogue: Catalogue) -> pd.DataFrame:
    """Share of each page's slots per genre (a title with k genres adds 1/k to each)."""
    frames = []
    for label, page in pages.items():
        slots = page.items
        if not catalogue.has_genres or len(slots) == 0:
            continue
        weights = catalogue.genre_weights(slots)
        frames.append(pd.DataFrame({"page": label, "genre": catalogue.genre_names, "share": weights / len(slots)}))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["page", "genre", "share"])
    return table[table["share"] > 0]


def genre_mix_chart(table: pd.DataFrame, title: str, colours: alt.Scale | None = None) -> alt.Chart:
    """Horizontal bars of genre shares; several pages side by side in colour (``colours``: a scale over the page
    labels, such as ``ui.charts.run_colours`` when each page is one model's)."""
    sort = table.groupby("genre")["share"].sum().sort_values(ascending=False).index.tolist()
    return alt.Chart(table).mark_bar().encode(
        y=alt.Y("genre:N", title="Genre", sort=sort),
        x=alt.X("share:Q", title="Share of the page's slots", axis=alt.Axis(format="%")),
        color=alt.Color("page:N", title="Page", scale=colours if colours is not None else alt.Undefined),
        yOffset="page:N",
        tooltip=[alt.Tooltip("page:N", title="page"), alt.Tooltip("genre:N", title="genre"),
                 alt.Tooltip("share:Q", title="share of slots", format=".1%")],
    ).properties(height=max(160, 18 * len(sort) * max(1, table["page"].nunique())), title=title)
