"""Checks that turn a raw table into clean interaction columns, or a DataError saying why not.

Budgets (rows, id and title lengths) come from :func:`recsys.hosting.config` at call time, or
from a ``limits=`` argument; see :func:`current_limits`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.errors import DataError, excerpt

# Kept for code that imports the old constant: the local (laptop) row budget. The budget in
# force is ``current_limits().rows``.
MAX_ROWS = 50_000_000

# Ids stay integers only when every value is written the canonical way: "7", "-12" and "0", never
# "007", "7.0", "+7" or "-0" (those are other ids in a text file, so they stay text).
CANONICAL_INT = r"0|-?[1-9][0-9]{0,18}"
# Timestamps must fit pandas' nanosecond datetimes (1677-09-22 .. 2262-04-11), so every page
# that turns them into dates can; in epoch seconds that is about +-9.22e9.
MIN_SECONDS = int(pd.Timestamp.min.ceil("s").timestamp())
MAX_SECONDS = int(pd.Timestamp.max.floor("s").timestamp())
# Epoch magnitudes per unit: seconds stay below 1e11 (year 5138), milliseconds below 1e14,
# microseconds below 1e17; anything larger is nanoseconds.
UNITS = (("seconds", 1.0, 1e11), ("milliseconds", 1e3, 1e14), ("microseconds", 1e6, 1e17),
         ("nanoseconds", 1e9, np.inf))
# Values this small are the same instant give or take a few days in any unit, so they never
# decide a column's unit (a 0 in a millisecond column is not a "seconds" value).
UNIT_NEUTRAL = 1e6
# Dates not in ISO 8601 form are parsed one distinct value at a time (~60 µs each); past this many
# distinct values only a column that one of COMMON_DATE_FORMATS parses whole is accepted.
MIXED_DATES_MAX = 100_000
# What pd.to_numeric may read as a number: decimals, exponents, inf and nan.
NUMBER_TEXT = r"[+-]?(?:\d+\.?\d*(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?|inf(?:inity)?|nan)"
COMMON_DATE_FORMATS = ("%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S",
                       "%m/%d/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%d-%b-%Y", "%b %d %Y", "%d %b %Y")


def current_limits(limits=None):
    """The budgets in force: ``limits`` if given, else the hosting configuration read now."""
    if limits is not None:
        return limits
    from recsys.hosting import config  # late: recsys.hosting imports this package

    return config().limits


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1  # 1-based, like a spreadsheet without header


def interaction_frame(
    df: pd.DataFrame, *, user: str, item: str, rating: str | None, timestamp: str | None, source: str = "the table",
    limits=None,
) -> pd.DataFrame:
    """Return a frame with columns user, item, rating (float32) and optional timestamp (int64 s)."""
    limits = current_limits(limits)
    if df is None or len(df) == 0:
        raise DataError(f"{source} has no rows. Upload a file with one interaction per row.")
    if len(df) > limits.rows:
        raise DataError(
            f"{source} has {len(df):,} rows; the limit is {limits.rows:,}. Sample or k-core filter it first."
        )
    cols = [str(c) for c in df.columns]
    dupes = sorted({c for c in cols if cols.count(c) > 1})
    if dupes:
        raise DataError(f"{source} has duplicate column names {dupes[:5]}. Give every column a distinct name.")
    chosen = [("user", user), ("item", item)]
    if rating is not None:
        chosen.append(("rating", rating))
    if timestamp is not None:
        chosen.append(("timestamp", timestamp))
    for role, col in chosen:
        if col not in df.columns:
            if role == "rating":
                continue  # a missing rating column means implicit feedback
            shown = [excerpt(c) for c in cols[:20]]
            more = f" and {len(cols) - 20} more" if len(cols) > 20 else ""
            raise DataError(
                f"{source} has no {role} column {excerpt(col)}; its columns are [{', '.join(shown)}{more}]. "
                f"Map the {role} column to one of them."
            )
    names = [c for _, c in chosen if c in df.columns]
    if len(set(names)) != len(names):
        shown = ", ".join(excerpt(str(n), 30) for n in names)
        raise DataError(f"The same column is mapped to two roles ({shown}). Map each role to its own column.")

    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for role, col in (("user", user), ("item", item)):
        values = df[col].reset_index(drop=True)
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataError(
                f"Column {col!r} ({role} id) is empty in row {_first_bad_row(missing)} "
                f"({int(missing.sum())} rows in all). Remove those rows or fill in the {role} id."
            )
        out[role] = normalise_ids(values, column=col, role=f"{role} id", max_chars=limits.id_chars)

    if rating is not None and rating in df.columns:
        out["rating"] = parse_ratings(df[rating].reset_index(drop=True), rating)
    else:
        out["rating"] = np.ones(len(df), np.float32)

    if timestamp is not None:
        out["timestamp"] = parse_timestamps(df[timestamp].reset_index(drop=True), timestamp)
    return out


# ---------------------------------------------------------------------- ids
def normalise_ids(values: pd.Series, *, column: str = "id", role: str = "id", max_chars: int | None = None) -> np.ndarray:
    """Integer ids as int64, everything else as stripped text (object array).

    Numeric columns (a DataFrame's ints, or floats that are all whole numbers) give int64.
    Text columns give int64 only when every value is canonical integer text ("7", "-12"), so
    "7", "007" and "7.0" read from a file stay three distinct ids. ``max_chars`` refuses
    longer ids, naming the row.
    """
    values = values.reset_index(drop=True)
    kind = values.dtype.kind
    if kind in "iu":
        if kind == "u" and len(values) and values.max() >= 2**63:
            return _text_ids(values.astype(str), column, role, max_chars)
        return values.to_numpy(np.int64)
    if kind == "b":
        return values.to_numpy(np.int64)
    if kind == "f":
        arr = values.to_numpy(np.float64)
        if np.isfinite(arr).all() and np.all(arr == np.round(arr)) and (len(arr) == 0 or np.abs(arr).max() < 2**62):
            return arr.astype(np.int64)
        return _text_ids(values.astype(str), column, role, max_chars)
    text = values.astype(str)
    return _text_ids(text, column, role, max_chars)


def _text_ids(text: pd.Series, column: str, role: str, max_chars: int | None) -> np.ndarray:
    if max_chars is not None:
        check_lengths(text, column=column, role=role, max_chars=max_chars, what="ids")
    text = text.str.strip()
    integers = canonical_integers(text)
    return integers if integers is not None else text.to_numpy(dtype=object)


def canonical_integers(text: pd.Series) -> np.ndarray | None:
    """int64 values when every cell is canonical integer text that fits int64, else None."""
    if not len(text) or text.isna().any() or not text.str.fullmatch(CANONICAL_INT).all():
        return None
    try:
        return text.astype(np.int64).to_numpy(np.int64)
    except (OverflowError, ValueError):
        return None  # 19 digits beyond 9,223,372,036,854,775,807: kept as text


# kept for callers of the old private name
_normalise_ids = normalise_ids


def check_lengths(text: pd.Series, *, column: str, role: str, max_chars: int, what: str) -> None:
    """Refuse a text column whose longest value exceeds ``max_chars``, naming the row."""
    if not len(text):
        return
    lengths = text.str.len().fillna(0).to_numpy()
    longest = int(lengths.max())
    if longest > max_chars:
        row = int(np.argmax(lengths)) + 1
        raise DataError(
            f"Column {excerpt(column)} ({role}) has a {longest:,}-character value in row {row} "
            f"(starting {excerpt(text.iloc[row - 1], 20)}); {what} may be at most {max_chars:,} characters. "
            f"Check that the right column is mapped, or shorten the {what}."
        )


# ---------------------------------------------------------------------- ratings
def parse_ratings(raw: pd.Series, column: str) -> np.ndarray:
    """Finite numbers as float32, or a DataError naming the first row that is not one."""
    numeric = pd.to_numeric(raw, errors="coerce")
    present = raw.notna().to_numpy()
    nan = numeric.isna().to_numpy()
    bad = nan & present
    if bad.any():
        row = _first_bad_row(bad)
        value = raw.iloc[row - 1]
        if str(value).strip().lower() in ("nan", "na", "n/a", "null", "none", "-nan"):
            raise DataError(
                f"Column {column!r} (rating) holds {excerpt(value)} (not a number) in row {row}. "
                "Fill in a number, remove the row, or map no rating column for implicit feedback."
            )
        raise DataError(
            f"Column {column!r} (rating) holds a non-number in row {row}: {excerpt(value)}. "
            "Ratings must be numbers; fix that row or map a different column."
        )
    if nan.any():
        raise DataError(
            f"Column {column!r} (rating) is empty in row {_first_bad_row(nan)} "
            f"({int(nan.sum())} rows in all). Fill in the ratings, or map no rating column "
            "to treat every row as an implicit interaction."
        )
    values = numeric.to_numpy(np.float64)
    huge = ~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max)
    if huge.any():
        row = _first_bad_row(huge)
        raise DataError(
            f"Column {column!r} (rating) holds an infinite or too large value in row {row}: "
            f"{excerpt(raw.iloc[row - 1])}. Use finite numbers (at most about 3.4e38)."
        )
    return values.astype(np.float32)


# ---------------------------------------------------------------------- timestamps
def parse_timestamps(values: pd.Series, column: str) -> np.ndarray:
    """Epoch seconds (or ms / µs / ns, detected by magnitude) or date strings -> int64 seconds.

    Every value's unit is told by its magnitude; a column that mixes units (some rows in
    seconds, some in milliseconds) is refused naming one row of each, since converting them
    silently would hide a broken export. Dates must be written in one format and fall
    between 1677 and 2262.
    """
    values = values.reset_index(drop=True)
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"Column {column!r} (timestamp) is empty in row {_first_bad_row(missing)}. "
            "Fill it in or map no timestamp column."
        )
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = values.dt.tz_localize("UTC") if getattr(values.dt, "tz", None) is None else values
        return _seconds_from_dates(parsed, values, column)
    if values.dtype.kind in "iufb":
        return _seconds_from_epochs(values.astype(np.float64).to_numpy(), values, column)
    text = values.astype(str).str.strip()
    # to_numeric over a million date strings takes a second; a (pyarrow) regex says first whether any
    # cell could be a number at all
    if text.str.fullmatch(NUMBER_TEXT, case=False).any():
        numeric = pd.to_numeric(text, errors="coerce")
        is_number = numeric.notna().to_numpy()
    else:
        numeric, is_number = None, np.zeros(len(text), dtype=bool)
    if is_number.all():
        return _seconds_from_epochs(numeric.to_numpy(np.float64), values, column)
    parsed = _parse_dates(text, column)
    bad = parsed.isna().to_numpy()
    if is_number.any() and (~is_number & ~bad).any():
        number_row, date_row = _first_bad_row(is_number), _first_bad_row(~is_number & ~bad)
        raise DataError(
            f"Column {column!r} (timestamp) mixes epoch numbers and dates: row {number_row} holds "
            f"{excerpt(values.iloc[number_row - 1])}, row {date_row} holds {excerpt(values.iloc[date_row - 1])}. "
            "Write every timestamp the same way (all epoch seconds, or all dates like 1998-03-14)."
        )
    if bad.any():
        row = _first_bad_row(bad)
        value = text.iloc[row - 1]
        good = ~bad
        if good.any() and any(ch.isdigit() for ch in value):
            other = _first_bad_row(good)
            if _date_shape(text.iloc[other - 1]) != _date_shape(value):
                raise DataError(
                    f"Column {column!r} (timestamp) mixes date formats: row {other} holds "
                    f"{excerpt(text.iloc[other - 1])} but row {row} holds {excerpt(value)}, which is not a date "
                    "in that format. Write every date in one format, e.g. 1998-03-14."
                )
        raise DataError(
            f"Column {column!r} (timestamp) has a value that is neither epoch seconds nor a date "
            f"in row {row}: {excerpt(value)}. Use e.g. 1998-03-14 or 889000000."
        )
    _refuse_mixed_date_formats(text, column)
    return _seconds_from_dates(parsed, values, column)


def _parse_dates(text: pd.Series, column: str = "timestamp") -> pd.Series:
    try:
        # ISO 8601 is what exports write, and parsing it is vectorised; anything else goes per value
        return pd.to_datetime(text, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        pass
    unique = pd.unique(text.to_numpy(dtype=object))
    if len(unique) > MIXED_DATES_MAX:
        # one by one costs ~60 µs a value (5 M dates: five minutes of a shared server's CPU):
        # only a format that parses the whole column at once is accepted
        for layout in COMMON_DATE_FORMATS:
            try:
                return pd.to_datetime(text, utc=True, format=layout)
            except (ValueError, TypeError, OverflowError):
                continue
        raise DataError(
            f"Column {column!r} (timestamp) holds {len(unique):,} different dates that are not in ISO 8601 form "
            f"(row 1: {excerpt(text.iloc[0])}); reading that many one by one is refused. Write them as "
            "1998-03-14 or 1998-03-14 10:22:00, or as epoch seconds."
        )
    try:
        parsed = pd.to_datetime(pd.Series(unique, dtype=object), errors="coerce", utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError):
        # a value pandas cannot even coerce (out of range for every resolution): parse one by one
        parsed = pd.Series([_parse_one(v) for v in unique], dtype="datetime64[us, UTC]")
    lookup = pd.Series(parsed.to_numpy(), index=pd.Index(unique, dtype=object))
    return pd.Series(lookup.reindex(text.to_numpy(dtype=object)).to_numpy(), index=text.index)


def _parse_one(value: str):
    try:
        return pd.to_datetime(value, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def _date_parts(values: pd.Series) -> pd.Series:
    """The date part of each value (before a 'T' or a space); a pyarrow regex, not a Python loop."""
    text = values.astype("str").str.strip()
    return text.str.replace(r"[T ].*$", "", regex=True).fillna("")


def _date_shapes(values: pd.Series) -> pd.Series:
    """The layout of each value's date part: '1998-03-14' -> 'Y-n-n', '14/03/1998' -> 'n/n/Y'."""
    date_part = _date_parts(values)
    shape = date_part.str.replace(r"\d{4,}", "Y", regex=True).str.replace(r"\d{1,3}", "n", regex=True)
    return shape.str.replace(r"[^\W\d_]+", "a", regex=True)


def _date_shape(value: str) -> str:
    return str(_date_shapes(pd.Series([value])).iloc[0])


def _refuse_mixed_date_formats(text: pd.Series, column: str) -> None:
    # shapes of the distinct date parts only: a million timestamps hold a few thousand days
    parts = _date_parts(text)
    unique = pd.Series(pd.unique(parts.to_numpy(dtype=object)), dtype="str")
    shape = _date_shapes(unique)
    kinds = pd.unique(shape.to_numpy(dtype=object))
    if len(kinds) <= 1:
        return
    first_shape, other_shape = kinds[0], kinds[1]
    part = {kind: unique[(shape == kind).to_numpy()].iloc[0] for kind in (first_shape, other_shape)}
    rows = {kind: int(np.flatnonzero((parts == part[kind]).to_numpy())[0]) + 1 for kind in part}
    values = {kind: text.iloc[rows[kind] - 1] for kind in part}
    raise DataError(
        f"Column {column!r} (timestamp) mixes date formats: row {rows[first_shape]} holds "
        f"{excerpt(values[first_shape])}, row {rows[other_shape]} holds {excerpt(values[other_shape])}. "
        "Dates in different formats can be read wrongly (is 03/04 March or April?); write every date "
        "in one format, e.g. 1998-03-14."
    )


def _seconds_from_dates(parsed: pd.Series, original: pd.Series, column: str) -> np.ndarray:
    low, high = pd.Timestamp(MIN_SECONDS, unit="s", tz="UTC"), pd.Timestamp(MAX_SECONDS, unit="s", tz="UTC")
    outside = ((parsed < low) | (parsed > high)).to_numpy()
    if outside.any():
        row = _first_bad_row(outside)
        raise DataError(
            f"Column {column!r} (timestamp) holds a date outside 1677-09-22 .. 2262-04-11 in row {row}: "
            f"{excerpt(original.iloc[row - 1])}. Fix that date (a typo in the year?) or map no timestamp column."
        )
    epoch = pd.Timestamp(0, tz="UTC")
    return ((parsed - epoch) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def _seconds_from_epochs(numbers: np.ndarray, original: pd.Series, column: str) -> np.ndarray:
    finite = np.isfinite(numbers)
    if not finite.all():
        row = _first_bad_row(~finite)
        raise DataError(
            f"Column {column!r} (timestamp) holds {excerpt(original.iloc[row - 1])} in row {row}, which is not a "
            "finite number. Use epoch seconds (e.g. 889000000) or dates (e.g. 1998-03-14)."
        )
    magnitude = np.abs(numbers)
    unit = np.searchsorted(np.array([limit for _, _, limit in UNITS[:-1]]), magnitude, side="right")
    deciding = magnitude >= UNIT_NEUTRAL
    present = np.unique(unit[deciding]) if deciding.any() else np.array([0])
    if len(present) > 1:
        first, second = int(present[0]), int(present[1])
        row_a = _first_bad_row(deciding & (unit == first))
        row_b = _first_bad_row(deciding & (unit == second))
        name_a, name_b = UNITS[first][0], UNITS[second][0]
        raise DataError(
            f"Column {column!r} (timestamp) mixes epoch units: row {row_a} holds "
            f"{excerpt(original.iloc[row_a - 1])} ({name_a}), row {row_b} holds "
            f"{excerpt(original.iloc[row_b - 1])} ({name_b}). Convert the column to one unit "
            f"(divide the {name_b} by {UNITS[second][1] / UNITS[first][1]:,.0f}) and upload it again."
        )
    name, factor, _ = UNITS[int(present[0])]
    seconds = numbers / factor
    outside = (seconds < MIN_SECONDS) | (seconds > MAX_SECONDS)
    if outside.any():
        row = _first_bad_row(outside)
        raise DataError(
            f"Column {column!r} (timestamp) holds {excerpt(original.iloc[row - 1])} in row {row}: read as epoch "
            f"{name}, that is outside 1677 .. 2262. Fix that value or map no timestamp column."
        )
    return seconds.astype(np.int64)


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
