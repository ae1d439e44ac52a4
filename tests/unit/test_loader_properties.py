"""Properties of the table loaders over random input: a Dataset or a DataError, never anything else.

Random bytes and random CSV-like tables (delimiters, quoting, encodings, line endings, unicode,
empty cells, huge numbers, dates in and out of range) go through ``read_table`` and
``from_table(guess_columns)`` as an upload would. Whatever comes back is either a consistent
Dataset or a DataError with a short message; a KeyError, IndexError, OverflowError,
OutOfBoundsDatetime or similar escaping would be a crash on the Data page.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data.dataset import Dataset
from recsys.data.errors import MAX_MESSAGE_CHARS, DataError
from recsys.data.loaders import from_table, guess_columns, read_table
from tests.hostile import TEST_LIMITS

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ["user", "item", "rating", "timestamp", "userId", "movieId", "stars", "date", "ts", "score", "title",
         "user", "x", "", " ", "col"]
SPECIAL_CELLS = ["", " ", "NaN", "nan", "inf", "-inf", "007", "7", "7.0", "+7", "-0", "0", "1e30", "-1e30",
                 "99999999999999999999999", "1998-03-14", "14.03.1998", "03/14/1998", "1500-01-01", "2300-12-31",
                 "978300100", "978300100000", "978300100000000", "1e400", '"', "'", "\u00a0", "\ufeff", "None",
                 "=cmd|'/c calc'!A0", "ü", "𝔘", "\\", "NULL", "True"]
cells = st.one_of(
    st.sampled_from(SPECIAL_CELLS),
    st.integers(-10**25, 10**25).map(str),
    st.integers(0, 20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda d: d.isoformat()),
    st.text(max_size=12),
)


@st.composite
def csv_like(draw) -> tuple[bytes, str]:
    """A random delimited table, written with random quoting, line endings and encoding."""
    delimiter = draw(st.sampled_from([",", "\t", ";", "|", " ", ":", "::"]))
    n_columns = draw(st.integers(1, 6))
    n_rows = draw(st.integers(0, 14))
    rows = []
    if draw(st.booleans()):
        rows.append([draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=8))) for _ in range(n_columns)])
    ragged = draw(st.booleans())
    for _ in range(n_rows):
        width = draw(st.integers(max(1, n_columns - 1), n_columns + 1)) if ragged else n_columns
        rows.append([draw(cells) for _ in range(width)])
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if delimiter == "::":
        text = newline.join("::".join(row) for row in rows)
    else:
        buffer = io.StringIO()
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]))
        try:
            csv.writer(buffer, delimiter=delimiter, quoting=quoting, escapechar="\\", lineterminator=newline).writerows(rows)
        except csv.Error:  # QUOTE_NONE cannot write a lone empty field: quote minimally instead
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=delimiter, escapechar="\\", lineterminator=newline).writerows(rows)
        text = buffer.getvalue()
    if draw(st.booleans()):
        text += newline
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "utf-16-le", "cp1252"]))
    raw = text.encode(encoding, errors="replace")
    name = draw(st.sampled_from(["upload.csv", "upload.tsv", "upload.txt", "ratings.dat", "table.parquet"]))
    return raw, name


def load_or_refuse(raw: bytes, name: str) -> Dataset | None:
    """Load as an upload would; a refusal must be a short DataError, a success a consistent Dataset."""
    try:
        table = read_table(raw, name, limits=TEST_LIMITS)
        ds = from_table(table, guess_columns(table), name=name, limits=TEST_LIMITS)
    except DataError as err:
        message = str(err)
        assert 0 < len(message) <= MAX_MESSAGE_CHARS, message
        return None
    assert isinstance(ds, Dataset)
    n = ds.n_interactions
    assert n > 0 and ds.n_users >= 2 and ds.n_items >= 2
    assert ds.user.min() >= 0 and ds.user.max() < ds.n_users
    assert ds.item.min() >= 0 and ds.item.max() < ds.n_items
    assert len(set(ds.user_ids.tolist())) == ds.n_users and len(set(ds.item_ids.tolist())) == ds.n_items
    assert np.isfinite(ds.rating).all()
    if ds.timestamp is not None:
        assert ds.timestamp.dtype == np.int64 and len(ds.timestamp) == n
        assert ds.timestamp.min() >= -9_300_000_000 and ds.timestamp.max() <= 9_300_000_000
    for ids in (ds.user_ids, ds.item_ids):
        if ids.dtype == object:
            assert all(isinstance(x, str) and len(x) <= TEST_LIMITS.id_chars for x in ids)
        else:
            assert ids.dtype == np.int64
    return ds


@SETTINGS
@given(st.binary(max_size=3000), st.sampled_from(["upload.csv", "upload.parquet", "data.txt"]))
def test_random_bytes_load_or_are_refused(raw, name):
    load_or_refuse(raw, name)


@SETTINGS
@given(csv_like())
def test_random_tables_load_or_are_refused(table):
    raw, name = table
    load_or_refuse(raw, name)


@SETTINGS
@given(st.lists(st.tuples(st.integers(-10**18, 10**18), st.integers(-10**18, 10**18)), min_size=2, max_size=30,
                unique_by=lambda pair: pair))
def test_canonical_integer_ids_stay_int64_and_equal(pairs):
    users = {u for u, _ in pairs}
    items = {i for _, i in pairs}
    raw = ("user,item\n" + "".join(f"{u},{i}\n" for u, i in pairs)).encode()
    ds = load_or_refuse(raw, "ints.csv")
    if len(users) < 2 or len(items) < 2:
        assert ds is None
        return
    assert ds.user_ids.dtype == np.int64 and ds.user_ids.tolist() == sorted(users)
    assert ds.item_ids.tolist() == sorted(items)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 999), min_size=2, max_size=20, unique=True), st.sampled_from(["0", "00", ".0", "+"]))
def test_non_canonical_integer_text_keeps_every_spelling(numbers, decoration):
    """'007' and '7.0' are other ids than '7': each spelling is its own id, and none is merged."""
    spelled = [f"0{n}" if decoration == "0" else f"00{n}" if decoration == "00" else f"{n}.0" if decoration == ".0"
               else f"+{n}" for n in numbers]
    raw = ("user,item\n" + "".join(f"{s},{s}\n{n},{s}\n" for s, n in zip(spelled, numbers, strict=True))).encode()
    ds = load_or_refuse(raw, "spellings.csv")
    assert ds is not None
    assert sorted(ds.user_ids.tolist()) == sorted([*spelled, *map(str, numbers)])
    assert ds.n_interactions == 2 * len(numbers)


@pytest.mark.parametrize("text", ["user,item\n7,1\n007,2\n7.0,1\n", "user;item\n7;1\n007;2\n7.0;1\n"])
def test_seven_spellings_are_three_users(text):
    ds = load_or_refuse(text.encode(), "ids.csv")
    assert sorted(ds.user_ids.tolist()) == ["007", "7", "7.0"]
    assert ds.item_ids.tolist() == [1, 2]


parquet_columns = st.one_of(
    st.lists(st.integers(-2**63, 2**63 - 1), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=3, max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.lists(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)), min_size=3, max_size=3),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(NAMES), parquet_columns), min_size=1, max_size=5))
def test_random_parquet_tables_load_or_are_refused(columns):
    """Typed columns (huge ints, nulls, NaN/inf, text, booleans, dates from year 1 to 9999) through Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, names = [], []
    for name, values in columns:
        try:
            arrays.append(pa.array(values, type=pa.timestamp("us")) if any(isinstance(v, datetime) for v in values)
                          else pa.array(values))
        except (pa.ArrowException, OverflowError):
            continue  # a column pyarrow itself cannot type is not a Parquet file anyone could upload
        names.append(name)
    if not arrays:
        return
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), buffer)
    load_or_refuse(buffer.getvalue(), "table.parquet")


identifiers = st.one_of(st.integers(0, 10**12).map(str), st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(identifiers, identifiers, st.integers(1, 10), st.integers(800_000_000, 1_700_000_000)),
             min_size=2, max_size=25, unique_by=lambda row: (row[0], row[1])),
    st.sampled_from([",", "\t", ";", "|"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_valid_tables_load_exactly(rows, delimiter, newline):
    """A clean table comes back interaction for interaction, ids spelled as written."""
    users = {u for u, _, _, _ in rows}
    items = {i for _, i, _, _ in rows}
    text = newline.join([delimiter.join(["user_id", "item_id", "rating", "timestamp"])]
                        + [delimiter.join([u, i, f"{r / 2:g}", str(t)]) for u, i, r, t in rows]) + newline
    ds = load_or_refuse(text.encode(), "clean.csv")
    if len(users) < 2 or len(items) < 2:
        assert ds is None
        return
    def as_id(values):  # ids are int64 only when every one is canonical integer text
        return [int(v) for v in values] if all(v.isdigit() and (v == "0" or v[0] != "0") for v in values) \
            else list(values)
    user_map = dict(zip(sorted(users), as_id(sorted(users)), strict=True))
    item_map = dict(zip(sorted(items), as_id(sorted(items)), strict=True))
    expected = sorted((user_map[u], item_map[i], r / 2, t) for u, i, r, t in rows)
    table = ds.to_frame()
    got = sorted(zip(table["user"].tolist(), table["item"].tolist(), table["rating"].tolist(),
                     table["timestamp"].tolist(), strict=True))
    assert got == expected
