"""Cached loading of datasets and splits for the pages, and each visitor's kept uploads.

Every load goes through :func:`recsys.hosting.check_source` first, outside the caches: the
caches are shared by all sessions, so a descriptor naming another visitor's upload (or, on a
hosted server, a file outside its data roots) must be refused before a cached copy could be
handed out.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from recsys import hosting, store
from recsys.data import Dataset, loaders
from recsys.data.errors import DataError
from recsys.data.split import Split
from ui import charts, state


def data_home() -> Path:
    """Where uploads and the experiment store (``store/``) are kept, so a rerun or server restart
    loses nothing (RECSYS_HOME overrides)."""
    home = hosting.home()
    (home / "uploads").mkdir(parents=True, exist_ok=True)
    return home


def visitor() -> str:
    """This visitor's owner token (the same one that scopes their runs)."""
    from ui import runs  # ui.runs imports this module

    return runs.owner_token()


def check_size(upload) -> None:
    """Refuse an uploaded file over the upload budget before its bytes are read."""
    hosting.check_upload_size(int(upload.size), upload.name)


def save_upload(upload) -> tuple[Path, bool]:
    """Keep an uploaded file in this visitor's folder (size and quotas checked first); returns the
    path and whether this call wrote it."""
    check_size(upload)
    return hosting.save_upload(upload.name, upload.getvalue(), visitor())


def my_uploads() -> list[hosting.Upload]:
    return hosting.list_uploads(visitor())


def delete_upload(filename: str) -> bool:
    """Delete one of this visitor's uploads and forget the datasets of this session that read it."""
    path = hosting.owner_uploads(visitor()) / filename
    deleted = hosting.delete_upload(visitor(), filename)
    if deleted:
        forget_sources_using(path)
    return deleted


def forget_sources_using(path: Path) -> None:
    """Drop this session's datasets that read ``path``; the sample becomes current if one of them was."""
    target = str(path)
    gone = [label for label, source in state.sources().items()
            if target in (str(source.get("path", "")), str(source.get("items_path", "")))]
    for label in gone:
        state.sources().pop(label, None)
    if st.session_state.get("dataset_label") in gone:
        st.session_state["dataset_label"] = state.SAMPLE["label"]
        st.session_state["_select_dataset"] = state.SAMPLE["label"]


def discard_uploads(written: list[Path]) -> None:
    """Remove uploads this page run wrote and could not use."""
    for path in written:
        hosting.delete_upload(visitor(), path.name)


def load_upload(descriptor: dict, written: list[Path]) -> Dataset:
    """Load a dataset read from uploads; an upload this call wrote is removed again when it does not
    load (a DataError), so failed uploads are not kept."""
    try:
        return load_source(descriptor)
    except DataError:
        discard_uploads(written)
        raise


# Datasets are immutable, so one shared copy per source is safe; st.cache_resource avoids
# re-pickling a multi-million-row Dataset on every rerun as st.cache_data would.
@st.cache_resource(show_spinner="Loading data…", max_entries=16)
def _load(descriptor_items: tuple) -> Dataset:
    descriptor = dict(descriptor_items)
    kind = descriptor["kind"]
    if kind == "sample":
        return loaders.load("sample")
    if kind == "path":
        return loaders.load(descriptor["path"])
    if kind == "table":
        return loaders.load_mapped(descriptor)
    raise ValueError(f"unknown dataset source {kind!r}")


def _freeze(descriptor: dict) -> tuple:
    # the label is what the sidebar shows, not what is loaded: one cached copy whatever it says
    return tuple(sorted((k, v if not isinstance(v, dict) else tuple(sorted(v.items())))
                        for k, v in descriptor.items() if k != "label"))


def _checked(descriptor: dict) -> tuple:
    """The descriptor frozen for the caches, after checking this visitor may open it."""
    hosting.check_source(descriptor, visitor())
    return _freeze(descriptor)


def load_source(descriptor: dict) -> Dataset:
    return _load(_checked(descriptor))


@st.cache_resource(show_spinner="Splitting…", max_entries=32)
def _split(descriptor_items: tuple, config: state.SplitConfig) -> Split:
    # the same function the experiment store uses to re-make a run's split, so both agree
    return store.split_dataset(_load(descriptor_items), config)


def split_of(source: dict, config: state.SplitConfig) -> Split:
    """The split of ``source`` under ``config`` (cached like the current one)."""
    return _split(_checked(source), config)


# the files that make a folder a MovieLens edition, in the order the loader looks for them
MOVIELENS_KEY_FILES = ("u.data", "ratings.dat", "ratings.csv")
FOLDERS_LOOKED_AT = 200


def movielens_folders(folder: Path, depth: int = 2) -> dict[str, Path]:
    """{relative posix path: folder} of the folders at or up to ``depth`` levels under ``folder`` that hold
    a MovieLens key file, keyed by the key file's name and sorted shallowest first (as the loader picks)."""
    found: dict[str, list[Path]] = {name: [] for name in MOVIELENS_KEY_FILES}
    frontier = [folder]
    for _ in range(depth + 1):
        below = []
        for current in frontier:
            try:
                entries = sorted(current.iterdir())[:FOLDERS_LOOKED_AT]
            except OSError:  # unreadable: the loader skips it as well
                continue
            files = {e.name.lower() for e in entries if e.is_file()}
            for name in MOVIELENS_KEY_FILES:
                if name in files:
                    found[name].append(current)
            below += [e for e in entries if e.is_dir()]
        frontier = below
    return {name: sorted(paths, key=lambda p: (len(p.relative_to(folder).parts), p.as_posix()))
            for name, paths in found.items()}


def loaded_text(ds: Dataset, target: Path, label: str) -> str:
    """What loading ``target`` did, in words; for a folder of several datasets, which one it picked (the
    loader takes the shallowest u.data, else ratings.dat, else ratings.csv) and which others it holds."""
    text = f"Loaded {ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, {ds.n_interactions:,} interactions."
    if not target.is_dir():
        return text
    folders = movielens_folders(target)
    used = next((paths[0] for paths in folders.values() if paths), None)
    if used is None or used == target:
        return text
    every = {p for paths in folders.values() for p in paths}
    others = sorted(p.relative_to(target).as_posix() for p in every if p != used)
    text += (f" The folder {label} holds datasets in subfolders: this is the one in "
             f"{used.relative_to(target).as_posix()}.")
    if others:
        text += f" It also holds {', '.join(others)}; to load one of those, give its folder's path instead."
    return text


def current_dataset() -> Dataset:
    return load_source(state.current_source())


def current_split() -> Split:
    return _split(_checked(state.current_source()), state.split_config())


# ---------------------------------------------------------------------- thinning the data
def density_chart(frame: pd.DataFrame) -> alt.Chart:
    """NDCG@10 of item-item and user-user kNN against the density each thinned copy had (log scale)."""
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("density:Q", title="Density of the training data (log scale)", scale=alt.Scale(type="log"),
                axis=alt.Axis(format="%")),
        y=alt.Y("NDCG@10:Q", title="Test NDCG@10"),
        color=alt.Color("model:N", title="Model"),
        tooltip=[alt.Tooltip("share kept:Q", format=".0%"), alt.Tooltip("density:Q", format=".3%"), "model",
                 alt.Tooltip("NDCG@10:Q", format=".4f"), alt.Tooltip("share of full:Q", format=".0%")],
    ).properties(height=260, title="Item-item vs user-user kNN as the data thins")


# ---------------------------------------------------------------------- what a dataset looks like
def summary_metrics(summary: dict) -> None:
    """The six headline figures of ``recsys.data.stats.summary`` (or ``recsys.spark.stats``'), in a row."""
    cols = st.columns(6)
    cols[0].metric("Users", f"{summary['users']:,}")
    cols[1].metric("Items", f"{summary['items']:,}")
    cols[2].metric("Interactions", f"{summary['interactions']:,}")
    cols[3].metric("Density", f"{summary['density']:.2%}")
    cols[4].metric("Popularity Gini", f"{summary['popularity_gini']:.2f}",
                   help="0 = every item equally popular, 1 = all interactions on one item.")
    cols[5].metric("Top-20% items' share", f"{summary['head_share_top20']:.0%}",
                   help="Share of all interactions that go to the most popular fifth of the catalogue.")


def summary_caption(summary: dict) -> str:
    return (f"{summary['feedback'].capitalize()} feedback · per user: median "
            f"{summary['interactions_per_user_median']:.0f}, range {summary['interactions_per_user_min']}–"
            f"{summary['interactions_per_user_max']} · per item: median {summary['interactions_per_item_median']:.0f}"
            + (" · has timestamps" if summary["has_timestamps"] else " · no timestamps")
            + (" · has item metadata" if summary["has_item_metadata"] else ""))


def distribution_charts(long_tail: tuple, user_activity, item_popularity, rating_histogram: dict | None) -> None:
    """The long tail, how active users are, how popular items are and (explicit feedback) the ratings:
    the same four charts whether the counts came from a Dataset or from Spark."""
    left, right = st.columns(2)
    with left:
        st.altair_chart(charts.long_tail(*long_tail), width="stretch")
        st.altair_chart(charts.histogram(user_activity, "How active are users?", "Interactions per user",
                                         log_x=True), width="stretch")
    with right:
        if rating_histogram:
            st.altair_chart(charts.rating_bars(rating_histogram), width="stretch")
        st.altair_chart(charts.histogram(item_popularity, "How popular are items?", "Interactions per item",
                                         log_x=True), width="stretch")


# ---------------------------------------------------------------------- logs Spark holds
SPARK_HOSTED = ("A shared server's visitors name no paths on its disk, so the Spark way in is off here. It is for "
                "an instance you run yourself, next to the data (or pointed at a Spark cluster).")
# how far down a folder's files decide its modification time (a MovieLens zip unpacks one level down)
MTIME_DEPTH = 2


def path_mtime(path: Path) -> float:
    """The newest modification time of ``path`` and the files up to MTIME_DEPTH levels in it: a
    rewritten log (or a part file added to a folder) is read and counted again."""
    newest = path.stat().st_mtime
    frontier = [path] if path.is_dir() else []
    for _ in range(MTIME_DEPTH):
        below = []
        for folder in frontier:
            for entry in sorted(folder.iterdir())[:FOLDERS_LOOKED_AT]:
                newest = max(newest, entry.stat().st_mtime)
                below += [entry] if entry.is_dir() else []
        frontier = below
    return newest


def _is_movielens(path: Path, columns: dict) -> bool:
    from recsys.spark.io import MOVIELENS_LAYOUTS

    if path.is_dir():
        return any(paths for paths in movielens_folders(path, depth=1).values())
    return path.name in MOVIELENS_LAYOUTS and not any(columns.values())


def _guessed_columns(path: Path, columns: dict) -> dict:
    """The columns a person named, the others guessed (as the Upload tab does) from the first
    200 rows, which Spark reads without scanning the file."""
    from recsys.spark import get_session
    from recsys.spark.io import TABLE_FORMATS

    if columns.get("user") and columns.get("item"):
        return columns
    spark = get_session()
    # a folder of part files reads as its parts' format (Spark writes Parquet folders so)
    suffixes = [p.suffix.lower() for p in sorted(path.iterdir())] if path.is_dir() else [path.suffix.lower()]
    if any(TABLE_FORMATS.get(s) == "parquet" for s in suffixes):
        head = spark.read.parquet(str(path)).limit(200).toPandas()
    else:
        sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
        head = spark.read.csv(str(path), sep=sep, header=True).limit(200).toPandas()
    guess = loaders.guess_columns(head)
    return {role: columns.get(role) or guess.get(role) for role in ("user", "item", "rating", "timestamp")}


def read_spark_log(path: Path, columns: dict):
    """A MovieLens folder (or its ratings file) or a CSV / TSV / Parquet table, read by Spark."""
    from recsys.spark.io import read_movielens, read_table

    if _is_movielens(path, columns):
        return read_movielens(path)
    chosen = _guessed_columns(path, columns)
    return read_table(path, user=chosen["user"], item=chosen["item"], rating=chosen["rating"],
                      timestamp=chosen["timestamp"])


def spark_key(path_text: str, columns: dict) -> tuple:
    """What names one read of a log: the resolved path, its modification time, the column names,
    and the Spark application (a restarted Spark forgets the DataFrames an older one cached)."""
    from recsys.spark import get_session

    if hosting.config().hosted:
        raise DataError(SPARK_HOSTED)
    path = hosting.resolve_server_path(path_text)
    app_id = get_session().sparkContext.applicationId
    return (str(path), path_mtime(path), tuple(sorted(columns.items())), app_id)


@st.cache_resource(show_spinner="Spark is reading the log…", max_entries=4)
def _spark_log(key: tuple):
    path, _mtime, columns, _app = key
    return read_spark_log(Path(path), dict(columns))


@st.cache_data(show_spinner="Spark is counting…", max_entries=16)
def _spark_stats(key: tuple):
    from recsys.spark.stats import compute

    return compute(_spark_log(key))


def spark_log(key: tuple):
    """The log ``key`` names, held by Spark (one read per path, modification time and columns)."""
    return _spark_log(key)


def spark_stats(key: tuple):
    """``recsys.spark.stats.SparkStats`` of the log ``key`` names: small count tables, computed by Spark."""
    return _spark_stats(key)
