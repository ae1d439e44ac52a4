"""Data page: choose or upload a dataset, then see what it looks like."""

from __future__ import annotations

import math
import time

import pandas as pd
import streamlit as st

from recsys import hosting
from recsys.data import loaders, stats
from recsys.data.errors import DataError
from recsys.data.sample_matrix import matrix_sample
from recsys.spark import progress
from ui import charts, data, lessons, state
from ui.errors import attempt, shown_errors
from ui.text import md_escape

UPLOADS_OFF = ("This workshop's server takes no uploads: its preset turns them off. Use the data it offers, "
               "or ask the instructor.")

st.title("Data")


def _upload_mb(cfg: hosting.HostConfig) -> int:
    """The file uploaders' own limit (MB), so the browser refuses an oversized file before sending it."""
    return max(1, math.ceil(cfg.limits.upload_bytes / hosting.MB))


def movielens_tab() -> None:
    cfg = hosting.config()
    offered: list[str] = []
    if not cfg.hosted:
        st.write("Point at a MovieLens folder or `.zip` on the server (100K, 1M, 10M, latest, 25M, 32M), "
                 "or upload the `.zip`.")
    elif cfg.data_roots:
        offered = hosting.available_data(cfg)
        st.write("Pick a MovieLens folder or `.zip` from this server's data folders (100K, 1M, 10M, latest, 25M, "
                 "32M), or upload the `.zip`.")
    else:
        st.info("This server reads no files from its own disk: uploads are the way in. Upload a MovieLens "
                "`.zip` here, or a table on the 'Upload a file' tab.", icon=":material/upload:")
    with st.form("movielens_form"):
        chosen, typed = None, ""
        if not cfg.hosted:
            typed = st.text_input("Folder or .zip path on the server", key="ml_path",
                                  placeholder="/data/ml-100k or /data/ml-latest-small.zip")
        elif cfg.data_roots:
            if offered:
                chosen = st.selectbox("Data on this server", offered, index=None, key="ml_choice",
                                      placeholder="Choose a folder or .zip")
            typed = st.text_input("…or a folder or .zip path inside the server's data folders", key="ml_path",
                                  placeholder=offered[0] if offered else "ml-100k")
        upload = None
        if lessons.uploads_allowed():
            upload = st.file_uploader("…or upload a MovieLens .zip" if not cfg.hosted or cfg.data_roots
                                      else "Upload a MovieLens .zip", type=["zip"], key="ml_zip",
                                      max_upload_size=_upload_mb(cfg))
        submitted = st.form_submit_button("Load MovieLens")
    if not submitted:
        return
    with shown_errors("Loading MovieLens"):
        written = []
        if upload is not None:
            target, created = data.save_upload(upload)
            written = [target] if created else []
            label = f"{hosting.upload_name(target).removesuffix('.zip')} (upload)"
        elif typed.strip() or chosen:
            # hosted: confined to the data roots; messages show paths relative to their root
            target = hosting.resolve_server_path(typed.strip() or chosen, cfg)
            label = hosting.display_path(target, cfg)
        else:
            st.warning("Choose data on the server, give a path or upload a .zip first.")
            return
        descriptor = {"kind": "path", "path": str(target), "label": label}
        ds = data.load_upload(descriptor, written)
        descriptor["label"] = f"{ds.name} ({ds.n_interactions:,} interactions)"
        state.add_source(descriptor)
        st.session_state["data_message"] = ("success", md_escape(data.loaded_text(ds, target, label)))
        st.rerun()


def _column_select(label: str, columns: list[str], guess: str | None, key: str, optional: bool) -> str | None:
    options = (["(none)"] if optional else []) + columns
    index = options.index(guess) if guess in options else 0
    choice = st.selectbox(label, options, index=index, key=key)
    return None if choice == "(none)" else choice


def upload_tab() -> None:
    cfg = hosting.config()
    if not lessons.uploads_allowed():
        st.info(UPLOADS_OFF, icon=":material/block:")
        return
    st.write("Upload interactions as CSV, TSV or Parquet: one row per (user, item) with an optional "
             "rating and timestamp. Then map the columns.")
    upload = st.file_uploader("Interactions file", type=["csv", "tsv", "txt", "parquet"], key="upload_file",
                              max_upload_size=_upload_mb(cfg))
    if upload is None:
        return
    table = None
    with shown_errors("Reading the file"):
        data.check_size(upload)  # before its bytes are read
        table = loaders.read_table(upload.getvalue(), upload.name)
    if table is None:
        return
    st.caption(f"{len(table):,} rows · columns: {md_escape(', '.join(map(str, table.columns)))}")
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
                                      type=["csv", "tsv", "txt", "parquet"], key="upload_items",
                                      max_upload_size=_upload_mb(cfg))
        submitted = st.form_submit_button("Use this data", type="primary")
    if not submitted:
        return
    with shown_errors("Loading the upload"):
        written = []
        try:
            path, created = data.save_upload(upload)
            written += [path] if created else []
            descriptor = {
                "kind": "table",
                "path": str(path),
                "filename": upload.name,
                "mapping": {"user": user, "item": item, "rating": rating, "timestamp": ts},
                "feedback": None if feedback == "auto" else feedback,
                "duplicates": duplicates,
                "label": f"{upload.name} (upload)",
            }
            if items_file is not None:
                items_path, created = data.save_upload(items_file)
                written += [items_path] if created else []
                descriptor["items_path"] = str(items_path)
                descriptor["items_filename"] = items_file.name
        except DataError:
            data.discard_uploads(written)  # e.g. the item file is over the quota: keep neither
            raise
        ds = data.load_upload(descriptor, written)
        descriptor["label"] = f"{upload.name} ({ds.n_interactions:,} interactions)"
        state.add_source(descriptor)
        st.session_state["data_message"] = ("success", f"Loaded {md_escape(upload.name)}: {ds.n_users:,} users, "
                                                       f"{ds.n_items:,} items, {ds.n_interactions:,} interactions.")
        st.rerun()


def uploads_tab() -> None:
    """This visitor's kept uploads with their sizes, and a way to delete them."""
    cfg = hosting.config()
    if message := st.session_state.pop("uploads_message", None):
        st.success(message)
    kept = data.my_uploads()
    used = sum(u.size for u in kept)
    st.caption(f"You keep {hosting.human_bytes(used)} of the {hosting.human_bytes(cfg.limits.visitor_upload_bytes)} "
               "each visitor may keep. Only you see your uploads; a file that does not load is not kept.")
    if not kept:
        st.info("You have no uploads on this server.")
        return
    st.dataframe(pd.DataFrame({
        "file": [u.name for u in kept],
        "size": [hosting.human_bytes(u.size) for u in kept],
        "uploaded": [time.strftime("%Y-%m-%d %H:%M", time.localtime(u.modified)) for u in kept],
    }), hide_index=True, key="uploads_table")
    names = {u.path.name: f"{u.name} ({hosting.human_bytes(u.size)})" for u in kept}
    pick = st.selectbox("Upload to delete", list(names), format_func=names.get, key="uploads_pick")
    if st.button("Delete upload", key="uploads_delete", icon=":material/delete:"):
        if data.delete_upload(pick):
            st.session_state["uploads_message"] = f"Deleted {md_escape(names[pick])}."
        st.rerun()


def overview(ds) -> None:
    summary = stats.summary(ds)
    st.subheader(md_escape(ds.name))
    data.summary_metrics(summary)
    st.caption(data.summary_caption(summary))
    data.distribution_charts(stats.long_tail_curve(ds.item_popularity), ds.user_activity, ds.item_popularity,
                             stats.rating_histogram(ds) if ds.feedback == "explicit" else None)
    st.altair_chart(charts.sparsity(matrix_sample(ds), 120, 300), width="stretch")
    split = attempt("Splitting", data.current_split)
    cold = stats.cold_start_counts(split.train, split.test)
    st.caption(
        f"Current split ({state.split_text(state.split_config())}): {split.train.n_interactions:,} train / "
        f"{split.test.n_interactions:,} test "
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


SPARK_INTRO = (
    "For an interaction log too large for this app's memory (MovieLens 25M/32M, a production click log): "
    "Spark reads the file on the server, computes the statistics below and trains, and only small "
    "summaries (count tables, factor tables, metric means) come back to this app; the log itself never does. "
    "The model that trains on this path is **Spark ALS** (`spark_als`); every other model needs the data in "
    "memory (the other tabs). Spark runs here, or on the cluster RECSYS_SPARK_MASTER names.")
SPARK_ROLES = ("user", "item", "rating", "timestamp")
SPARK_SOURCE = "spark_source"      # the log last asked for: {"path", "columns"}
SPARK_FIT = "spark_fit"            # the Spark ALS fit running now: {"key", "fit"}
SPARK_RESULTS = "spark_results"    # finished fits: rows of the results table, newest last
POLL_SECONDS = 1.0                 # as the Train page's live panel


def spark_tab() -> None:
    """A log on the server read, counted and trained on by Spark (never loaded into this process)."""
    from recsys.spark import missing

    st.markdown(SPARK_INTRO)
    if hosting.config().hosted:
        st.info(data.SPARK_HOSTED, icon=":material/block:")
        return
    if (reason := missing()) is not None:
        st.warning(f"Spark cannot run here. {md_escape(reason)}", icon=":material/warning:")
        return
    with st.form("spark_form"):
        typed = st.text_input("File or folder path on the server", key="spark_path",
                              placeholder="/data/ml-25m or /data/clicks.parquet")
        st.caption("Columns of a CSV, TSV or Parquet table (with a header row); left blank, they are guessed from "
                   "its first rows. A MovieLens folder needs none.")
        boxes = st.columns(len(SPARK_ROLES))
        names = {role: box.text_input(f"{role.capitalize()} column", key=f"spark_col_{role}")
                 for box, role in zip(boxes, SPARK_ROLES)}
        if st.form_submit_button("Count with Spark", icon=":material/bolt:"):
            st.session_state[SPARK_SOURCE] = {"path": typed.strip(),
                                              "columns": {r: v.strip() or None for r, v in names.items()}}
    asked = st.session_state.get(SPARK_SOURCE)
    if not asked:
        return
    key = counted = None
    with shown_errors("Reading the log with Spark"):
        key = data.spark_key(asked["path"], asked["columns"])
        counted = data.spark_stats(key)
    if counted is None:
        return
    spark_overview(counted, asked["path"])
    spark_training(key)


def spark_overview(counted, path: str) -> None:
    summary = counted.summary
    st.subheader(md_escape(f"{summary['name']} (counted by Spark)"))
    data.summary_metrics(summary)
    st.caption(data.summary_caption(summary) + f" · read from {md_escape(path)}")
    data.distribution_charts(counted.long_tail_curve(), counted.user_activity(), counted.item_popularity(),
                             counted.rating_histogram or None)
    with st.expander("Every figure"):
        st.dataframe(pd.DataFrame({"figure": list(summary), "value": [str(v) for v in summary.values()]}),
                     hide_index=True, key="spark_summary_table")


def spark_training(key: tuple) -> None:
    """Spark ALS on the log: a random 80/20 holdout made in Spark, the fit, and NDCG@10 / recall@10
    computed in Spark, with Spark's job progress shown while it runs."""
    from recsys.models import registry

    st.subheader("Train Spark ALS on this log")
    defaults = registry["spark_als"].Params()
    with st.form("spark_train_form"):
        cols = st.columns(4)
        params = {
            "embedding_size": cols[0].number_input("Rank (embedding size)", 1, 1024, defaults.embedding_size,
                                                   key="spark_rank"),
            "iterations": cols[1].number_input("Sweeps (maxIter)", 1, 200, defaults.iterations, key="spark_iter"),
            "reg": cols[2].number_input("regParam", 0.0, 1000.0, defaults.reg, key="spark_reg"),
            "alpha": cols[3].number_input("alpha", 0.0, 10000.0, defaults.alpha, key="spark_alpha"),
        }
        clicked = st.form_submit_button("Train Spark ALS", type="primary", icon=":material/play_arrow:")
    running = st.session_state.get(SPARK_FIT)
    if clicked and running is None:
        with shown_errors("Starting Spark ALS"):
            fit = progress.WatchedFit(data.spark_log(key), {k: (int(v) if k in ("embedding_size", "iterations")
                                                                else float(v)) for k, v in params.items()})
            st.session_state[SPARK_FIT] = {"key": key, "fit": fit.start()}
    elif clicked:
        st.info("A Spark ALS fit is already running; its progress is below.")
    collect_finished_fit()
    if st.session_state.get(SPARK_FIT) is not None:
        live_fit()
    results_table()


def collect_finished_fit() -> None:
    """Keep a finished fit's result (or show why it failed) and forget the fit; a rerun or a page
    switch while it ran left it running, so this happens on whichever run of the page comes next."""
    running = st.session_state.get(SPARK_FIT)
    if running is None or not running["fit"].done:
        return
    st.session_state.pop(SPARK_FIT)
    fit = running["fit"]
    if fit.error is not None:
        with shown_errors("Training Spark ALS"):
            raise fit.error
        return
    st.session_state.setdefault(SPARK_RESULTS, []).append(result_row(running["key"], fit))
    # numbers and fixed words only: nothing to escape
    st.success(f"Spark ALS: NDCG@10 = {fit.result.metrics['ndcg@10']:.4f} on {fit.result.n_users:,} test users.")


@st.fragment(run_every=POLL_SECONDS)
def live_fit() -> None:
    """Spark's progress, redrawn every POLL_SECONDS while the fit runs (the rest of the page stays as
    it is and usable); a full rerun collects the result when it ends."""
    running = st.session_state.get(SPARK_FIT)
    if running is None or running["fit"].done:
        st.rerun(scope="app")
    now = running["fit"].progress()
    st.progress(now.fraction, text=now.text())   # counts and fixed words (no stage names): nothing to escape


def result_row(key: tuple, fit) -> dict:
    result = fit.result
    return {"log": hosting.display_path(key[0]), **{k: v for k, v in result.params.items() if k != "seed"},
            "NDCG@10": result.metrics["ndcg@10"], "recall@10": result.metrics["recall@10"],
            "fit s": round(result.fit_seconds, 1), "evaluate s": round(result.evaluate_seconds, 1),
            "train": result.train_interactions, "test": result.test_interactions,
            "Spark tasks": result.tasks_done}


def results_table() -> None:
    rows = st.session_state.get(SPARK_RESULTS)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="spark_results_table",
                     column_config={"NDCG@10": st.column_config.NumberColumn(format="%.4f"),
                                    "recall@10": st.column_config.NumberColumn(format="%.4f")})


if said := st.session_state.pop("data_message", None):  # what the last button did, said once
    kind, text = said
    getattr(st, kind)(text)
sample_tab, ml_tab, up_tab, mine_tab, spark_tab_ = st.tabs(["Bundled sample", "MovieLens", "Upload a file",
                                                            "Your uploads", "Large log (Spark)"])
with sample_tab:
    st.write("A synthetic movie catalogue with believable titles, genres, popularity and binge-watching "
             "sequences, made by `recsys.data.synthetic` (see `sample_data/DATA_CARD.md`).")
    if st.button("Use the sample", key="use_sample"):
        if state.current_source()["label"] == state.SAMPLE["label"]:
            st.session_state["data_message"] = ("info", "The bundled sample is already the current dataset; "
                                                        "nothing changed.")
        else:
            st.session_state["data_message"] = ("success", "Switched to the bundled sample: it is the current "
                                                           "dataset for every page.")
        state.add_source(state.SAMPLE)
        st.rerun()
with ml_tab:
    movielens_tab()
with up_tab:
    upload_tab()
with mine_tab:
    uploads_tab()
with spark_tab_:
    spark_tab()

SPARSIFY_RUN = "data_sparsify_run"  # the thinning sweep last asked for: its knobs, kept across reruns


def sparsity_section(ds) -> None:
    """Thin the current data (a share of each history, after an optional k-core) and compare item-item with
    user-user kNN as the density falls: the sparsity lesson's experiment, cached and stored like it."""
    from recsys.lessons import sparsity

    st.subheader("Thin the data: item-item or user-user kNN?")
    st.caption("Each person's latest 3 interactions stay as the test; a share of the rest is kept, halving down "
               "to the share you pick, and both neighbourhood models are trained at each density. Runs go to "
               "the store, so a second visit trains nothing. On a shared server the whole sweep is checked "
               "against the training budget before it starts.")
    with st.form("data_sparsify_form"):
        left, right = st.columns(2)
        lowest = left.select_slider("Thin down to this share of each history", options=[0.5, 0.25, 0.12, 0.06, 0.03],
                                    value=0.12, key="data_sparsify_keep", format_func=lambda x: f"{x:.0%}")
        core = right.slider("k-core first: keep only people and films with at least k interactions (0 = off)",
                            min_value=0, max_value=20, value=0, key="data_sparsify_core")
        if st.form_submit_button("Compare item-kNN and user-kNN as density falls", icon=":material/compare_arrows:"):
            st.session_state[SPARSIFY_RUN] = {"knobs": {"keep": sparsity.halvings(lowest), "core": int(core)},
                                              "dataset": ds.fingerprint}
    asked = st.session_state.get(SPARSIFY_RUN)
    # a sweep asked for on another dataset is not run on this one unasked: it may cost far more here
    if not asked or asked["dataset"] != ds.fingerprint:
        return
    result = None
    with shown_errors("Thinning the data"), st.spinner("Training both neighbourhoods at each density…"):
        result = lessons.run_lesson("sparsity_knn", asked["knobs"])
    if result is None:
        return
    table = next(iter(result.tables.values()))
    st.altair_chart(data.density_chart(sparsity.accuracy_by_density(table)), width="stretch")
    st.info(md_escape(result.explanation), icon=":material/insights:")
    st.dataframe(table, hide_index=True, width="stretch", key="data_sparsify_table")


st.divider()
dataset = attempt("Loading the dataset", data.current_dataset)
overview(dataset)
st.divider()
sparsity_section(dataset)
