"""Checks that turn a raw table into clean interaction columns, or a DataError saying why not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.errors import DataError

MAX_ROWS = 50_000_000


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1  # 1-based, like a spreadsheet without header


def interaction_frame(
    df: pd.DataFrame, *, user: str, item: str, rating: str | None, timestamp: str | None, source: str = "the table"
) -> pd.DataFrame:
    """Return a frame with columns user, item, rating (float32) and optional timestamp (int64 s)."""
    if df is None or len(df) == 0:
        raise DataError(f"{source} has no rows. Upload a file with one interaction per row.")
    if len(df) > MAX_ROWS:
        raise DataError(
            f"{source} has {len(df):,} rows; the limit is {MAX_ROWS:,}. Sample or k-core filter it first."
        )
    cols = list(df.columns)
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise DataError(f"{source} has duplicate column names {dupes}. Give every column a distinct name.")
    chosen = [("user", user), ("item", item)]
    if rating is not None:
        chosen.append(("rating", rating))
    if timestamp is not None:
        chosen.append(("timestamp", timestamp))
    for role, col in chosen:
        if col not in df.columns:
            if role == "rating":
                continue  # a missing rating column means implicit feedback
            raise DataError(
                f"{source} has no {role} column {col!r}; its columns are {cols}. "
                f"Map the {role} column to one of them."
            )
    names = [c for _, c in chosen if c in df.columns]
    if len(set(names)) != len(names):
        raise DataError(f"The same column is mapped to two roles ({names}). Map each role to its own column.")

    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for role, col in (("user", user), ("item", item)):
        values = df[col].reset_index(drop=True)
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataError(
                f"Column {col!r} ({role} id) is empty in row {_first_bad_row(missing)} "
                f"({int(missing.sum())} rows in all). Remove those rows or fill in the {role} id."
            )
        out[role] = _normalise_ids(values)

    if rating is not None and rating in df.columns:
        raw = df[rating].reset_index(drop=True)
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = numeric.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            row = _first_bad_row(bad)
            raise DataError(
                f"Column {rating!r} (rating) holds a non-number in row {row}: {raw.iloc[row - 1]!r}. "
                "Ratings must be numbers; fix that row or map a different column."
            )
        nan = numeric.isna().to_numpy()
        if nan.any():
            raise DataError(
                f"Column {rating!r} (rating) is empty in row {_first_bad_row(nan)} "
                f"({int(nan.sum())} rows in all). Fill in the ratings, or map no rating column "
                "to treat every row as an implicit interaction."
            )
        values = numeric.to_numpy(np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"Column {rating!r} (rating) holds infinite values. Use finite numbers.")
        out["rating"] = values.astype(np.float32)
    else:
        out["rating"] = np.ones(len(df), np.float32)

    if timestamp is not None:
        out["timestamp"] = parse_timestamps(df[timestamp].reset_index(drop=True), timestamp)
    return out


def _normalise_ids(values: pd.Series) -> np.ndarray:
    """Integer ids stay integers (so 7 and "7" are the same), everything else becomes str."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        arr = numeric.to_numpy(np.float64)
        if np.all(arr == np.round(arr)) and np.abs(arr).max() < 2**62:
            return arr.astype(np.int64)
    return values.astype(str).str.strip().to_numpy(dtype=object)


def parse_timestamps(values: pd.Series, column: str) -> np.ndarray:
    """Epoch seconds (or ms / µs, detected by magnitude) or ISO-like date strings -> int64 seconds."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"Column {column!r} (timestamp) is empty in row {_first_bad_row(missing)}. "
            "Fill it in or map no timestamp column."
        )
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        secs = numeric.to_numpy(np.float64)
        biggest = np.abs(secs).max()
        if biggest > 1e17:
            secs = secs / 1e9
        elif biggest > 1e14:
            secs = secs / 1e6
        elif biggest > 1e11:
            secs = secs / 1e3
        return secs.astype(np.int64)
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = _first_bad_row(bad)
        raise DataError(
            f"Column {column!r} (timestamp) has a value that is neither epoch seconds nor a date "
            f"in row {row}: {values.iloc[row - 1]!r}. Use e.g. 1998-03-14 or 889000000."
        )
    epoch = pd.Timestamp(0, tz="UTC")
    return ((parsed - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def enough_entities(ds) -> None:
    """A recommender needs at least two users and two items to mean anything."""
    if ds.n_users < 2:
        raise DataError(
            f"{ds.name}: all interactions belong to a single user. A recommender learns from "
            "many people; check that the user column is mapped correctly."
        )
    if ds.n_items < 2:
        raise DataError(
            f"{ds.name}: all interactions are on a single item. Check that the item column is mapped correctly."
        )
