"""Data page: choose or upload a dataset, then see what it looks like."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from recsys.data import loaders, stats
from recsys.data.sample_matrix import matrix_sample
from ui import charts, data, state
from ui.errors import attempt, shown_errors

st.title("Data")


def movielens_tab() -> None:
    st.write("Point at a MovieLens folder or `.zip` on the server (100K, 1M, 10M, latest, 25M, 32M), "
             "or upload the `.zip`.")
    with st.form("movielens_form"):
        path = st.text_input("Folder or .zip path on the server", key="ml_path",
                             placeholder="/data/ml-100k or /data/ml-latest-small.zip")
        upload = st.file_uploader("…or upload a MovieLens .zip", type=["zip"], key="ml_zip")
        submitted = st.form_submit_button("Load MovieLens")
    if not submitted:
        return
    with shown_errors("Loading MovieLens"):
        if upload is not None:
            target = data.save_upload(upload.name, upload.getvalue())
            label = f"{Path(upload.name).stem} (upload)"
        elif path.strip():
            target = Path(path.strip()).expanduser()
            label = target.stem
        else:
            st.warning("Give a path or upload a .zip first.")
            return
        descriptor = {"kind": "path", "path": str(target), "label": label}
        ds = data.load_source(descriptor)
        descriptor["label"] = f"{ds.name} ({ds.n_interactions:,} interactions)"
        state.add_source(descriptor)
        st.rerun()


def _column_select(label: str, columns: list[str], guess: str | None, key: str, optional: bool) -> str | None:
    options = (["(none)"] if optional else []) + columns
    index = options.index(guess) if guess in options else 0
    choice = st.selectbox(label, options, index=index, key=key)
    return None if choice == "(none)" else choice


def upload_tab() -> None:
    st.write("Upload interactions as CSV, TSV or Parquet: one row per (user, item) with an optional "
             "rating and timestamp. Then map the columns.")
    upload = st.file_uploader("Interactions file", type=["csv", "tsv", "txt", "parquet"], key="upload_file")
    if upload is None:
        return
    payload = upload.getvalue()
    table = attempt("Reading the file", loaders.read_table, payload, upload.name)
    st.caption(f"{len(table):,} rows · columns: {', '.join(map(str, table.columns))}")
    st.dataframe(table.head(5), hide_index=True)
    guess = loaders.guess_columns(table)
    columns = [str(c) for c in table.columns]
    with st.form("mapping_form"):
        st.subheader("Column mapping")
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            user = _column_select("User column", columns, guess.get("user"), "map_user", False)
        with c2:
            item = _column_select("Item column", columns, guess.get("item"), "map_item", False)
        with c3:
            rating = _column_select("Rating column", columns, guess.get("rating"), "map_rating", True)
        with c4:
            ts = _column_select("Timestamp column", columns, guess.get("timestamp"), "map_ts", True)
        c5, c6 = st.columns(2)
        with c5:
            feedback = st.radio("Feedback", ["auto", "explicit", "implicit"], horizontal=True, key="map_feedback",
                                help="Explicit: ratings say how much someone liked it. Implicit: only that "
                                     "they interacted.")
        with c6:
            duplicates = st.selectbox("Repeated (user, item) pairs", ["last", "first", "mean", "max", "sum", "error"],
                                      key="map_dupes", help="Keep the latest, the first, average them, …")
        items_file = st.file_uploader("Optional item metadata (CSV with id, title, genres)",
                                      type=["csv", "tsv", "txt", "parquet"], key="upload_items")
        submitted = st.form_submit_button("Use this data", type="primary")
    if not submitted:
        return
    with shown_errors("Loading the upload"):
        descriptor = {
            "kind": "table",
            "path": str(data.save_upload(upload.name, payload)),
            "filename": upload.name,
            "mapping": {"user": user, "item": item, "rating": rating, "timestamp": ts},
            "feedback": None if feedback == "auto" else feedback,
            "duplicates": duplicates,
            "label": f"{upload.name} (upload)",
        }
        if items_file is not None:
            descriptor["items_path"] = str(data.save_upload(items_file.name, items_file.getvalue()))
            descriptor["items_filename"] = items_file.name
        ds = data.load_source(descriptor)
        descriptor["label"] = f"{upload.name} ({ds.n_interactions:,} interactions)"
        state.add_source(descriptor)
        st.rerun()


def overview(ds) -> None:
    summary = stats.summary(ds)
    st.subheader(ds.name)
    cols = st.columns(6)
    cols[0].metric("Users", f"{summary['users']:,}")
    cols[1].metric("Items", f"{summary['items']:,}")
    cols[2].metric("Interactions", f"{summary['interactions']:,}")
    cols[3].metric("Density", f"{summary['density']:.2%}")
    cols[4].metric("Popularity Gini", f"{summary['popularity_gini']:.2f}",
                   help="0 = every item equally popular, 1 = all interactions on one item.")
    cols[5].metric("Top-20% items' share", f"{summary['head_share_top20']:.0%}",
                   help="Share of all interactions that go to the most popular fifth of the catalogue.")
    st.caption(
        f"{summary['feedback'].capitalize()} feedback · per user: median "
        f"{summary['interactions_per_user_median']:.0f}, range {summary['interactions_per_user_min']}–"
        f"{summary['interactions_per_user_max']} · per item: median {summary['interactions_per_item_median']:.0f}"
        + (" · has timestamps" if summary["has_timestamps"] else " · no timestamps")
        + (" · has item metadata" if summary["has_item_metadata"] else "")
    )
    left, right = st.columns(2)
    with left:
        st.altair_chart(charts.long_tail(*stats.long_tail_curve(ds.item_popularity)), width="stretch")
        st.altair_chart(charts.histogram(ds.user_activity, "How active are users?", "Interactions per user",
                                         log_x=True), width="stretch")
    with right:
        if ds.feedback == "explicit":
            st.altair_chart(charts.rating_bars(stats.rating_histogram(ds)), width="stretch")
        st.altair_chart(charts.histogram(ds.item_popularity, "How popular are items?", "Interactions per item",
                                         log_x=True), width="stretch")
    st.altair_chart(charts.sparsity(matrix_sample(ds), 120, 300), width="stretch")
    split = attempt("Splitting", data.current_split)
    cold = stats.cold_start_counts(split.train, split.test)
    st.caption(
        f"Current split ({split.method}): {split.train.n_interactions:,} train / {split.test.n_interactions:,} test "
        f"interactions; {cold['cold_users']} test users and {cold['cold_items']} test items have no training "
        "interaction (cold start)."
    )
    if ds.items is not None:
        with st.expander("Item catalogue"):
            shown = ds.items.copy()
            if "genres" in shown:
                shown["genres"] = shown["genres"].map(" · ".join)
            shown.insert(1, "interactions", ds.item_popularity)
            st.dataframe(shown.sort_values("interactions", ascending=False).head(500), hide_index=True)


sample_tab, ml_tab, up_tab = st.tabs(["Bundled sample", "MovieLens", "Upload a file"])
with sample_tab:
    st.write("A synthetic movie catalogue with believable titles, genres, popularity and binge-watching "
             "sequences, made by `recsys.data.synthetic` (see `sample_data/DATA_CARD.md`).")
    if st.button("Use the sample", key="use_sample"):
        state.add_source(state.SAMPLE)
        st.rerun()
with ml_tab:
    movielens_tab()
with up_tab:
    upload_tab()

st.divider()
dataset = attempt("Loading the dataset", data.current_dataset)
overview(dataset)
