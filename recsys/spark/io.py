"""Interaction files read by Spark itself: the rows go from disk to executors and never through
this Python process, which only learns counts and the (small) id maps when it asks for them.

Codes follow ``Dataset.from_frame``: external ids sorted (numbers as numbers when every id of a
column is an integer), code = position in that order, so a file read here and the same file
loaded by ``recsys.data.load`` give every user and item the same code. Repeated (user, item)
pairs keep the last one (by timestamp, then file order), as the loaders do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.errors import DataError
from recsys.spark.session import get_session

TABLE_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}

# layout file -> how to read it (separator, header, the columns in file order or by header name)
MOVIELENS_LAYOUTS = {
    "u.data": {"sep": "\t", "header": False, "columns": ("user", "item", "rating", "timestamp")},
    "ratings.dat": {"sep": "::", "header": False, "columns": ("user", "item", "rating", "timestamp")},
    "ratings.csv": {"sep": ",", "header": True, "columns": ("userId", "movieId", "rating", "timestamp")},
}


@dataclass(frozen=True)
class SparkInteractions:
    """An interaction log held by Spark: ``frame`` has int ``user`` and ``item`` codes, a double
    ``rating`` and, when the file had one, a long ``timestamp``. ``user_ids`` / ``item_ids`` map
    ``code`` -> ``id``. The counts were computed by Spark when the log was read."""

    frame: object            # pyspark.sql.DataFrame
    user_ids: object         # DataFrame(code int, id)
    item_ids: object         # DataFrame(code int, id)
    n_users: int
    n_items: int
    n_interactions: int
    feedback: str            # "explicit" | "implicit", decided like Dataset.from_frame
    name: str
    positive_threshold: float | None = None

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.frame.columns

    @property
    def density(self) -> float:
        return self.n_interactions / max(1, self.n_users * self.n_items)

    def positives(self):
        """(user, item) of the interactions that count as positives (Dataset.positive_mask's rule)."""
        from pyspark.sql import functions as F

        rows = self.frame
        if self.feedback == "explicit" and self.positive_threshold is not None:
            rows = rows.where(F.col("rating") >= F.lit(float(self.positive_threshold)))
        return rows.select("user", "item")


# ---------------------------------------------------------------------- reading
def read_table(path: str | Path, *, user: str = "user", item: str = "item", rating: str | None = "rating",
               timestamp: str | None = None, sep: str | None = None, header: bool = True,
               positive_threshold: float | None = None, name: str | None = None, session=None) -> SparkInteractions:
    """A CSV / TSV / Parquet interaction table (a file or a folder of part files), columns mapped
    by name; without a header, columns are named _c0, _c1, … by position."""
    path = Path(path)
    spark = session or get_session()
    kind = _table_format(path)
    if kind == "parquet":
        raw = spark.read.parquet(str(path))
    else:
        separator = sep or ("\t" if path.suffix.lower() in (".tsv", ".txt") else ",")
        raw = spark.read.csv(str(path), sep=separator, header=header, inferSchema=False, mode="PERMISSIVE")
    columns = {"user": user, "item": item, "rating": rating, "timestamp": timestamp}
    return _index(raw, {k: v for k, v in columns.items() if v is not None}, positive_threshold,
                  name or path.stem, source=path.name)


def read_movielens(path: str | Path, *, positive_threshold: float | None = None, name: str | None = None,
                   session=None) -> SparkInteractions:
    """A MovieLens folder (100K u.data, 1M/10M ratings.dat, 20M/25M/32M/latest ratings.csv)."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        raise DataError(f"{path.name} is a zip archive; Spark reads files, not archives. Unzip it and "
                        "point at the folder.")
    folder = path if path.is_dir() else path.parent
    for filename, layout in MOVIELENS_LAYOUTS.items():
        found = _find_file(folder, filename) if path.is_dir() else (path if path.name == filename else None)
        if found is None:
            continue
        spark = session or get_session()
        raw = spark.read.csv(str(found), sep=layout["sep"], header=layout["header"], inferSchema=False)
        names = raw.columns if layout["header"] else layout["columns"]
        if layout["header"]:
            missing = [c for c in layout["columns"][:3] if c not in names]
            if missing:
                raise DataError(f"{found.name} lacks the column(s) {missing}; its columns are {names[:12]}.")
        else:
            raw = raw.toDF(*layout["columns"][: len(raw.columns)], *raw.columns[len(layout["columns"]):])
        user, item, rating, timestamp = layout["columns"]
        columns = {"user": user, "item": item, "rating": rating}
        if timestamp in raw.columns:
            columns["timestamp"] = timestamp
        return _index(raw, columns, positive_threshold, name or folder.name, source=found.name)
    raise DataError(f"{path.name} holds no MovieLens ratings file (expected one of {', '.join(MOVIELENS_LAYOUTS)}).")


def from_dataset(ds, *, positives_only: bool = False, session=None) -> SparkInteractions:
    """A Dataset already in memory, handed to Spark with its own codes (Arrow moves whole columns).
    ``positives_only`` keeps the interactions ``ds.positives`` holds (what top-N models learn from)."""
    spark = session or get_session()
    mask = ds.positive_mask if positives_only else np.ones(ds.n_interactions, dtype=bool)
    columns = {"user": ds.user[mask].astype(np.int32), "item": ds.item[mask].astype(np.int32),
               "rating": ds.rating[mask].astype(np.float64)}
    if ds.timestamp is not None:
        columns["timestamp"] = ds.timestamp[mask]
    frame = spark.createDataFrame(pd.DataFrame(columns))
    ids = _id_frames(spark, ds.user_ids, ds.item_ids)
    return SparkInteractions(frame=frame, user_ids=ids[0], item_ids=ids[1], n_users=ds.n_users,
                             n_items=ds.n_items, n_interactions=int(mask.sum()), feedback=ds.feedback,
                             name=ds.name, positive_threshold=ds.positive_threshold)


def _id_frames(spark, user_ids: np.ndarray, item_ids: np.ndarray):
    def frame(ids):
        values = ids.tolist() if ids.dtype.kind in "iu" else [str(v) for v in ids]
        return spark.createDataFrame(pd.DataFrame({"code": np.arange(len(ids), dtype=np.int32), "id": values}))

    return frame(user_ids), frame(item_ids)


def random_holdout(interactions: SparkInteractions, test_fraction: float = 0.2,
                   seed: int = 42) -> tuple[SparkInteractions, SparkInteractions]:
    """``recsys.data.split.random_holdout``'s protocol in Spark: ceil(test_fraction x n) of each user's
    n interactions, drawn at random, go to test, at least one stays in train; both halves keep the
    codes and id maps. The draw is Spark's (seeded), so the held-out rows differ from numpy's."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be between 0 and 1 (exclusive); got {test_fraction}.")
    by_user = Window.partitionBy("user")
    ranked = (interactions.frame.withColumn("_draw", F.rand(seed))
              .withColumn("_rank", F.row_number().over(by_user.orderBy("_draw", "item")) - 1)
              .withColumn("_count", F.count(F.lit(1)).over(by_user)))
    held = F.least(F.ceil(F.lit(float(test_fraction)) * F.col("_count") - F.lit(1e-9)), F.col("_count") - 1)
    marked = ranked.withColumn("_test", F.col("_rank") < held).drop("_draw", "_rank", "_count").cache()

    def part(is_test: bool, suffix: str) -> SparkInteractions:
        frame = marked.where(F.col("_test") == F.lit(is_test)).drop("_test")
        return replace(interactions, frame=frame, n_interactions=frame.count(), name=f"{interactions.name} {suffix}")

    return part(False, "train"), part(True, "test")


# ---------------------------------------------------------------------- indexing
def _index(raw, columns: dict[str, str], positive_threshold, name: str, *, source: str) -> SparkInteractions:
    """Typed columns, duplicates collapsed, ids replaced by dense codes; counted once."""
    from pyspark.sql import functions as F

    absent = [column for column in columns.values() if column not in raw.columns]
    if absent:
        raise DataError(f"{source} has no column(s) {absent}; its columns are {raw.columns[:12]}. "
                        "Name the user, item, rating and timestamp columns that it has.")
    typed = raw.select(*(F.col(f"`{column}`").alias(role) for role, column in columns.items()))
    typed = typed.withColumn("_row", F.monotonically_increasing_id())   # file order, for "keep the last"
    typed = typed.where(F.col("user").isNotNull() & F.col("item").isNotNull())
    rating = F.col("rating").try_cast("double") if "rating" in columns else F.lit(1.0)
    typed = typed.withColumn("rating", rating).where(F.col("rating").isNotNull())
    if "timestamp" in columns:
        typed = typed.withColumn("timestamp", F.col("timestamp").try_cast("long"))
    typed = _integer_ids(typed)
    # read the file once: the id maps and the codes below each scan these rows
    typed = _keep_last(typed, "timestamp" in columns).persist()
    users, n_users = _codes(typed, "user")
    items, n_items = _codes(typed, "item")
    frame = (typed.join(F.broadcast(users), typed["user"] == users["id"]).drop("user", "id")
             .withColumnRenamed("code", "user"))
    frame = (frame.join(F.broadcast(items), frame["item"] == items["id"]).drop("item", "id")
             .withColumnRenamed("code", "item"))
    frame = frame.select("user", "item", "rating", *(["timestamp"] if "timestamp" in columns else [])).cache()
    counts = frame.agg(F.count(F.lit(1)).alias("n"), F.countDistinct("rating").alias("distinct_ratings")).first()
    typed.unpersist()
    if counts["n"] == 0:
        raise DataError(f"{source} holds no interactions with a user, an item and a numeric rating.")
    feedback = "explicit" if "rating" in columns and counts["distinct_ratings"] > 1 else "implicit"
    return SparkInteractions(frame=frame, user_ids=users, item_ids=items, n_users=n_users, n_items=n_items,
                             n_interactions=int(counts["n"]), feedback=feedback, name=name,
                             positive_threshold=positive_threshold)


def _integer_ids(frame):
    """Id columns whose every value is an integer become longs, so they sort as numbers (2 before
    10), as ``Dataset.from_frame`` keeps integer ids; any other id stays text."""
    from pyspark.sql import functions as F

    text = {column: dict(frame.dtypes)[column] == "string" for column in ("user", "item")}
    checks = [F.sum(F.when(F.col(c).try_cast("long").isNull() | (F.col(c).try_cast("long").cast("string")
                                                                  != F.trim(F.col(c))), 1).otherwise(0)).alias(c)
              for c, is_text in text.items() if is_text]
    if not checks:
        return frame
    not_integer = frame.agg(*checks).first().asDict()
    for column, bad in not_integer.items():
        if bad == 0:
            frame = frame.withColumn(column, F.col(column).try_cast("long"))
    return frame


def _keep_last(frame, has_timestamp: bool):
    """One row per (user, item): the latest by timestamp, then by file order."""
    from pyspark.sql import functions as F

    order = F.struct(*([F.col("timestamp")] if has_timestamp else []), F.col("_row"))
    kept = [F.max_by(F.col(c), order).alias(c) for c in frame.columns if c not in ("user", "item", "_row")]
    return frame.groupBy("user", "item").agg(*kept)


def _codes(frame, column: str):
    """(DataFrame(id, code), how many) with codes in sorted-id order."""
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    distinct = frame.select(F.col(column).alias("id")).distinct().orderBy("id")
    # zipWithIndex numbers the sorted ids without pulling them into one partition or to the driver
    indexed = distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], int(pair[1])))
    codes = spark.createDataFrame(indexed, schema=f"id {dict(frame.dtypes)[column]}, code int").cache()
    return codes, codes.count()


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if path.is_dir():
        parts = [p.suffix.lower() for p in path.iterdir() if not p.name.startswith(("_", "."))]
        suffix = next((s for s in parts if s in TABLE_FORMATS), suffix)
    if suffix not in TABLE_FORMATS:
        raise DataError(f"{path.name}: Spark reads .csv, .tsv and .parquet interaction tables; this is "
                        f"{suffix or 'a file without an extension'}.")
    return TABLE_FORMATS[suffix]


def _find_file(folder: Path, filename: str) -> Path | None:
    """``filename`` in ``folder`` or one level down (a MovieLens zip unpacks into ml-25m/)."""
    for candidate in (folder / filename, *sorted(folder.glob(f"*/{filename}"))):
        if candidate.is_file():
            return candidate
    return None
