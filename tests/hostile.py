"""Hostile inputs for the data loaders: what a stranger could upload or point a hosted server at.

``cases()`` returns named cases, each able to write its input (a file, a folder or a zip) under
a temporary folder at test time, so nothing large is committed. A case either expects a
DataError whose message contains ``expect`` (a fragment no other case expects), or, with
``expect=None``, a Dataset that ``check`` inspects (odd but valid inputs: BOMs, UTF-16, quoted
newlines, symlink loops next to real files).

``attempt(case, folder, limits)`` (``prepare`` then ``run``) runs a case the way the app would: ``load`` for paths,
``read_table`` + ``from_table(guess_columns)`` for uploaded tables. Run the bombs under
``TEST_LIMITS`` (small budgets) so that refusing them is cheap to check.

Other tests import this module: ``from tests.hostile import cases, attempt, TEST_LIMITS``.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from recsys.hosting import HOSTED_LIMITS, MB

# Hosted budgets, shrunk so that every bomb is a few MB on disk and refused within a few MB.
TEST_LIMITS = replace(
    HOSTED_LIMITS, upload_bytes=2 * MB, table_bytes=4 * MB, archive_bytes=8 * MB, compression_ratio=100.0,
    rows=100_000, columns=64, id_chars=256, title_chars=1000,
)


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    build: Callable[[Path], Path]  # writes the input under the given folder, returns what to load
    expect: str | None  # a fragment of the DataError's message; None: the input must load
    mode: str = "table"  # table | load | mapped | items
    bomb: bool = False  # peak memory while refusing it is bounded (see the tests)
    mapping: dict | None = None  # mode "mapped": the role -> column mapping a person chose
    check: Callable | None = None  # expect=None: called with the Dataset
    needs_non_root: bool = False  # permission cases mean nothing to root
    limits: dict = field(default_factory=dict)  # overrides of TEST_LIMITS for this case


# ---------------------------------------------------------------------- builders
def _file(name: str, make: Callable[[], bytes]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(make())
        return path

    return build


def _text(name: str, text: str, encoding: str = "utf-8") -> Callable[[Path], Path]:
    return _file(name, lambda: text.encode(encoding))


def _zip(name: str, members: Callable[[], dict[str, bytes]], *, method=zipfile.ZIP_DEFLATED,
         patch: Callable[[bytes], bytes] | None = None) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=method, compresslevel=9 if method else None) as archive:
            for member, data in members().items():
                archive.writestr(member, data)
        data = buffer.getvalue()
        path = folder / name
        path.write_bytes(patch(data) if patch else data)
        return path

    return build


def _patch_entries(data: bytes, *, file_size: int | None = None, flags: int | None = None,
                   method: int | None = None) -> bytes:
    """Rewrite every member's declared size / flags / method in the local and the central headers."""
    out = bytearray(data)
    for signature, size_at, flag_at, method_at in ((b"PK\x03\x04", 22, 6, 8), (b"PK\x01\x02", 24, 8, 10)):
        at = out.find(signature)
        while at >= 0:
            if file_size is not None:
                out[at + size_at:at + size_at + 4] = struct.pack("<I", file_size)
            if flags is not None:
                out[at + flag_at:at + flag_at + 2] = struct.pack("<H", flags)
            if method is not None:
                out[at + method_at:at + method_at + 2] = struct.pack("<H", method)
            at = out.find(signature, at + 4)
    return bytes(out)


def _folder(name: str, files: Callable[[Path], None]) -> Callable[[Path], Path]:
    def build(parent: Path) -> Path:
        root = parent / name
        root.mkdir()
        files(root)
        return root

    return build


def _parquet(name: str, columns: Callable[[], dict], **options) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / name
        pq.write_table(pa.table(columns()), path, **options)
        return path

    return build


def _random_ratings(rows: int, seed: int = 0, header: str = "userId,movieId,rating,timestamp\n") -> bytes:
    """Valid-looking ratings that do not compress well (so no ratio check interferes)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 100_000, rows)
    items = rng.integers(1, 100_000, rows)
    ratings = rng.integers(1, 6, rows)
    stamps = rng.integers(800_000_000, 1_600_000_000, rows)
    lines = [f"{u},{i},{r},{t}" for u, i, r, t in zip(users, items, ratings, stamps, strict=True)]
    return (header + "\n".join(lines) + "\n").encode()


def _movies(rows: int, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 10**9, rows)
    return ("movieId,title,genres\n" + "".join(f"{i},Film {w} {w * 7} ({1900 + i % 120}),Drama|Comedy\n"
                                               for i, w in enumerate(words, start=1))).encode()


def _tags(rows: int, seed: int = 2) -> bytes:
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 10**12, rows)
    return ("userId,movieId,tag,timestamp\n" + "".join(f"{i % 500},{i},tag {w} {w * 3},1500000000\n"
                                                     for i, w in enumerate(words, start=1))).encode()


OK_ROWS = "user,item,rating,timestamp\n1,10,4,978300100\n2,20,5,978300200\n3,10,3,978300300\n"


def _ml100k_files(root: Path) -> None:
    (root / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n3\t3\t1\t876893119\n")


def _symlink_loop(root: Path) -> None:
    os.symlink(root, root / "loop")  # a folder that contains itself
    os.symlink(root / "b", root / "a")  # two links that point at each other
    os.symlink(root / "a", root / "b")


def _loop_beside_data(root: Path) -> None:
    _ml100k_files(root)
    _symlink_loop(root)


def _many_files(root: Path) -> None:
    for i in range(10_001):
        (root / f"f{i:05d}.txt").touch()


def _locked_folder(root: Path) -> None:
    _ml100k_files(root)
    root.chmod(0)


def _locked_file(root: Path) -> None:
    _ml100k_files(root)
    (root / "u.data").chmod(0)


# ---------------------------------------------------------------------- checks for inputs that must load
def _three_users_7_007_70(ds) -> None:
    assert sorted(ds.user_ids.tolist()) == ["007", "7", "7.0"], ds.user_ids
    assert ds.n_interactions == 3


def _int_ids(ds) -> None:
    assert ds.user_ids.dtype == np.int64 and ds.user_ids.tolist() == [1, 2, 3]
    assert ds.item_ids.tolist() == [10, 20]
    assert ds.timestamp.tolist() == [978300100, 978300200, 978300300]


def _titles_latin1(ds) -> None:
    assert ds.n_users == 2 and sorted(ds.item_ids.tolist()) == ["Café", "Naïve"]


def _quoted_newline(ds) -> None:
    assert sorted(ds.item_ids.tolist()) == ["Line one\nline two", "plain"]


def _symlinked_folder_loads(ds) -> None:
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (4, 3, 3)


def _trailing_rows(ds) -> None:
    assert ds.user_ids.tolist() == [1, 2, 3] and ds.item_ids.tolist() == [10, 20]
    assert ds.rating.tolist() == [4.0, 5.0, 3.0]


def _long_header(ds) -> None:
    assert ds.n_interactions == 3


# ---------------------------------------------------------------------- the corpus
def cases() -> list[Case]:
    big_id = "x" * 1_048_576
    c: list[Case] = []
    add = c.append

    # --- nothing in it, or not text at all
    add(Case("empty", "empty.csv", _file("empty.csv", lambda: b""), "is empty (0 bytes)"))
    add(Case("whitespace only", "blank.csv", _text("blank.csv", "  \n\t\n   \n"), "holds only whitespace (9 bytes)"))
    add(Case("unicode whitespace only", "nbsp.csv", _text("nbsp.csv", "\u00a0\u2003\n\u3000\n"),
             "holds only whitespace (10 bytes)"))
    add(Case("header only", "header.csv", _text("header.csv", "user,item,rating\n"),
             "has a header (user, item, rating) but no data rows"))
    add(Case("png image", "photo.csv", _file("photo.csv", lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
             "looks like a PNG image"))
    add(Case("jpeg image", "photo2.csv", _file("photo2.csv", lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
             "looks like a JPEG image"))
    add(Case("pickle", "model.csv", _file("model.csv", lambda: pickle.dumps({"user": [1, 2]}, protocol=4)),
             "looks like a Python pickle"))
    add(Case("gzip named csv", "ratings.csv", _file("ratings.csv", lambda: gzip.compress(OK_ROWS.encode())),
             "looks like a gzip archive"))
    add(Case("zip named csv", "sheet.csv", _zip("sheet.csv", lambda: {"ratings.csv": OK_ROWS.encode()}),
             "looks like a zip archive or an Excel workbook"))
    add(Case("pdf", "report.csv", _file("report.csv", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(300)),
             "looks like a PDF document"))
    add(Case("sqlite", "db.csv", _file("db.csv", lambda: b"SQLite format 3\x00" + bytes(200)),
             "looks like an SQLite database"))
    add(Case("elf program", "run.csv", _file("run.csv", lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(200)),
             "looks like a program"))
    add(Case("numpy array", "arr.csv", _file("arr.csv", lambda: b"\x93NUMPY\x01\x00v\x00" + bytes(200)),
             "looks like a NumPy array"))
    add(Case("random bytes", "noise.csv",
             _file("noise.csv", lambda: np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
             "this does not look like a text table; it contains binary data"))

    # --- delimiters, quoting, shape
    add(Case("mixed comma and semicolon", "mixed.csv",
             _text("mixed.csv", "user,item,rating\n1,2,5\n2,3,4\n3;4;5\n"),
             "mixes delimiters: line 1 uses the comma (','), line 4 uses the semicolon (';')"))
    add(Case("mixed comma and tab", "mixed2.csv",
             _text("mixed2.csv", "user,item,rating\n1,2,5\n2,3,4\n4,1,2\n5\t6\t1\n"),
             "line 5 uses the tab ('\\t')"))
    add(Case("header with another delimiter", "mixed3.csv",
             _text("mixed3.csv", "user;item;rating\n1,2,5\n2,3,4\n3,4,5\n"),
             "mixes delimiters: line 1 uses the semicolon (';'), line 2 uses the comma (',')"))
    add(Case("header shorter than the rows", "short_header.csv",
             _text("short_header.csv", "user,item\n1,2,5\n2,3,4\n3,4,5\n"),
             "the header (line 1) names 2 columns but line 2 has 3 fields"))
    add(Case("trailing delimiter on data lines only", "trailing.csv",
             _text("trailing.csv", "user,item,rating\n1,10,4,\n2,20,5,\n3,10,3,\n"), None, check=_trailing_rows))
    add(Case("ragged long row", "ragged.csv", _text("ragged.csv", "user,item,rating\n1,2,5\n2,3,4\n3,4,5,oops\n"),
             "line 4 has 4 fields where the lines before it have 3"))
    add(Case("ragged row with 10000 fields", "wide_row.csv",
             _text("wide_row.csv", "user,item,rating\n1,2,5\n" + ",".join(["9"] * 10_000) + "\n"),
             "line 3 has 10000 fields"))
    add(Case("colon delimited", "colons.csv", _text("colons.csv", "user:item:rating\n1:2:5\n2:3:4\n"),
             "probably uses the colon (':')"))
    add(Case("single column", "one.csv", _text("one.csv", "user\nalice\nbob\n"), "has a single column ('user')"))
    add(Case("duplicated columns", "dupes.csv", _text("dupes.csv", "user,item,rating,rating\n1,2,5,4\n2,1,3,3\n"),
             "two columns named 'rating' (columns 3 and 4)"))
    add(Case("duplicated after trimming", "dupes2.csv",
             _text("dupes2.csv", "user,item, item\n1,2,5\n2,1,3\n"), "two columns named 'item' (columns 2 and 3)"))
    add(Case("too many columns", "wide.csv",
             _text("wide.csv", ",".join(f"c{i}" for i in range(100)) + "\n" + ",".join(["1"] * 100) + "\n"),
             "has 100 columns in its first line; the limit is 64"))
    add(Case("quote-heavy first line", "quotes.csv", _text("quotes.csv", ', "' * 21_000),
             "has 21,001 columns in its first line"))
    add(Case("unclosed quote", "quote.csv", _text("quote.csv", 'user,item,rating\n1,2,5\n2,"3,4\n3,4,5\n'),
             "is never closed"))
    add(Case("quoted newline", "quoted.csv",
             _text("quoted.csv", 'user,item\n1,"Line one\nline two"\n2,plain\n3,plain\n'), None, check=_quoted_newline))
    add(Case("too many rows", "rows.csv", _file("rows.csv", lambda: b"user,item\n" + b"1,2\n" * 100_001),
             "has 100,002 lines; the limit is 100,000 rows", bomb=True))
    add(Case("table over the byte budget", "big.csv",
             _file("big.csv", lambda: b"user,item\n" + b"1234567,7654321\n" * 300_000),
             "big.csv is too large: 4.6 MB, over the 4.0 MB limit (RECSYS_LIMIT_TABLE_BYTES)",
             bomb=True, limits={"rows": 10_000_000}))

    # --- encodings and line endings that must still load
    add(Case("bom and crlf", "bom.csv", _file("bom.csv", lambda: b"\xef\xbb\xbf" + OK_ROWS.replace("\n", "\r\n").encode()),
             None, check=_int_ids))
    add(Case("utf-16 with bom", "u16.csv", _file("u16.csv", lambda: OK_ROWS.encode("utf-16")), None, check=_int_ids))
    add(Case("utf-16 without bom", "u16le.csv", _file("u16le.csv", lambda: OK_ROWS.encode("utf-16-le")), None,
             check=_int_ids))
    add(Case("latin-1", "latin.csv", _text("latin.csv", "user;item\n1;Café\n2;Naïve\n2;Café\n", "latin-1"), None,
             check=_titles_latin1))
    add(Case("very long column name", "longname.csv",
             _text("longname.csv", "user,item," + "c" * 100_000 + "\n1,2,x\n2,3,y\n3,2,z\n"), None, check=_long_header))

    # --- ids
    add(Case("1 MB id", "bigid.csv", _text("bigid.csv", f"user,item\n1,2\n{big_id},3\n3,2\n"),
             "(user id) has a 1,048,576-character value in row 2", bomb=True))
    add(Case("1 MB item id", "bigitem.csv", _text("bigitem.csv", f"user,item\n1,2\n2,{big_id}\n3,2\n"),
             "(item id) has a 1,048,576-character value in row 2", bomb=True))
    add(Case("ids 7 007 7.0 stay three", "ids.csv", _text("ids.csv", "user,item\n7,1\n007,2\n7.0,1\n"), None,
             check=_three_users_7_007_70))
    add(Case("empty user cell", "holes.csv", _text("holes.csv", "user,item,rating\n1,2,5\n,3,4\n3,4,5\n"),
             "(user id) is empty in row 2"))
    add(Case("one user only", "solo.csv", _text("solo.csv", "user,item\n1,2\n1,3\n1,4\n"),
             "all interactions belong to a single user"))
    add(Case("one item only", "single.csv", _text("single.csv", "user,item\n1,2\n2,2\n3,2\n"),
             "all interactions are on a single item"))
    add(Case("unknown column mapping", "mapped.csv", _text("mapped.csv", OK_ROWS), "has no user column 'customer'",
             mode="mapped", mapping={"user": "customer", "item": "item"}))
    add(Case("unknown role in mapping", "roles.csv", _text("roles.csv", OK_ROWS), "Unknown role(s) 'colour'",
             mode="mapped", mapping={"user": "user", "item": "item", "colour": "rating"}))
    add(Case("one column mapped twice", "twice.csv", _text("twice.csv", OK_ROWS), "mapped to two roles",
             mode="mapped", mapping={"user": "user", "item": "user"}))

    # --- ratings
    add(Case("NaN rating", "nan.csv", _text("nan.csv", "user,item,rating\n1,2,5\n2,3,NaN\n3,2,4\n"),
             "(rating) is empty in row 2"))
    add(Case("infinite rating", "inf.csv", _text("inf.csv", "user,item,rating\n1,2,5\n2,3,inf\n3,2,4\n"),
             "infinite or too large value in row 2: 'inf'"))
    add(Case("rating beyond float32", "huge.csv", _text("huge.csv", "user,item,rating\n1,2,5\n2,3,4\n3,2,1e39\n"),
             "infinite or too large value in row 3: '1e39'"))
    add(Case("non-numeric rating", "five.csv", _text("five.csv", "user,item,rating\n1,2,five\n2,3,4\n3,2,4\n"),
             "non-number in row 1: 'five'"))
    add(Case("1 MB rating cell", "junk.csv", _text("junk.csv", f"user,item,rating\n1,2,5\n2,3,{'z' * 1_048_576}\n"),
             "non-number in row 2: 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'… (1,048,576 characters)", bomb=True))

    # --- timestamps
    add(Case("seconds mixed with milliseconds", "units.csv",
             _text("units.csv", "user,item,timestamp\n1,2,978300100\n2,3,978300150000\n3,2,978300200\n"),
             "mixes epoch units: row 1 holds '978300100' (seconds), row 2 holds '978300150000' (milliseconds)"))
    add(Case("timestamp 1e30", "e30.csv", _text("e30.csv", "user,item,timestamp\n1,2,978300100\n2,3,1e30\n3,2,978300200\n"),
             "mixes epoch units: row 1 holds '978300100' (seconds), row 2 holds '1e30' (nanoseconds)"))
    add(Case("all timestamps 1e30", "e30b.csv", _text("e30b.csv", "user,item,timestamp\n1,2,1e30\n2,3,2e30\n3,2,3e30\n"),
             "read as epoch nanoseconds, that is outside 1677 .. 2262"))
    add(Case("date before 1677", "old.csv", _text("old.csv", "user,item,date\n1,2,1998-03-14\n2,3,1500-01-01\n3,2,1999-01-01\n"),
             "date outside 1677-09-22 .. 2262-04-11 in row 2: '1500-01-01'"))
    add(Case("date after 2262", "future.csv",
             _text("future.csv", "user,item,date\n1,2,1998-03-14\n2,3,1999-01-01\n3,2,2300-01-01\n"),
             "date outside 1677-09-22 .. 2262-04-11 in row 3: '2300-01-01'"))
    add(Case("mixed date formats", "dates.csv",
             _text("dates.csv", "user,item,date\n1,2,1998-03-14\n2,3,1998-03-15\n3,2,14.03.1998\n"),
             "mixes date formats: row 1 holds '1998-03-14', row 3 holds '14.03.1998'"))
    add(Case("unparseable date after good ones", "dates2.csv",
             _text("dates2.csv", "user,item,date\n1,2,1998-03-14\n2,3,1998-03-15\n3,2,14/31/98x\n"),
             "but row 3 holds '14/31/98x', which is not a date in that format"))
    add(Case("numbers mixed with dates", "stamps.csv",
             _text("stamps.csv", "user,item,timestamp\n1,2,889000000\n2,3,1998-03-14\n3,2,889000100\n"),
             "mixes epoch numbers and dates: row 1 holds '889000000', row 2 holds '1998-03-14'"))
    add(Case("words as dates", "words.csv",
             _text("words.csv", "user,item,timestamp\n1,2,yesterday\n2,3,today\n3,2,tomorrow\n"),
             "neither epoch seconds nor a date in row 1: 'yesterday'"))
    add(Case("infinite timestamp", "inft.csv", _text("inft.csv", "user,item,timestamp\n1,2,978300100\n2,3,inf\n3,2,1\n"),
             "holds 'inf' in row 2, which is not a finite number"))

    # --- item metadata
    long_title = "T" * 5000
    add(Case("overlong title", "items.csv", _text("items.csv", f"item,title\n10,Short\n20,{long_title}\n"),
             "log.csv item metadata: Column 'title' (title) has a 5,000-character value in row 2", mode="items"))
    add(Case("overlong genres", "items2.csv", _text("items2.csv", f"item,title,genres\n10,A,Drama\n20,B,{'G' * 3000}\n"),
             "log.csv item metadata: Column 'genres' (genres) has a 3,000-character value in row 2", mode="items"))

    # --- Parquet
    add(Case("parquet with 10 M rows", "rows.parquet",
             _parquet("rows.parquet", lambda: {"user": np.zeros(10_000_000, np.int8), "item": np.ones(10_000_000, np.int8)},
                      compression="zstd"),
             "has 10,000,000 rows; the limit is 100,000", bomb=True))
    add(Case("parquet with 100 columns", "wide.parquet",
             _parquet("wide.parquet", lambda: {f"c{i}": [1, 2, 3] for i in range(100)}),
             "has 100 columns; the limit is 64 (RECSYS_LIMIT_COLUMNS)"))
    add(Case("parquet that unpacks big", "plain.parquet",
             _parquet("plain.parquet", lambda: {"user": np.arange(50_000), "item": ["i" * 200] * 50_000},
                      use_dictionary=False, compression="zstd"),
             "plain.parquet unpacks to", bomb=True))
    add(Case("parquet with a long dictionary string", "dict.parquet",
             _parquet("dict.parquet", lambda: {"user": np.arange(1000), "item": ["y" * 10_000] * 1000}),
             "column 'item' holds a 10,000-character value", bomb=True))
    add(Case("parquet with a list column", "lists.parquet",
             _parquet("lists.parquet", lambda: {"user": [1, 2], "item": [[1, 2], [3]]}),
             "column 'item' holds lists or records"))
    add(Case("truncated parquet", "cut.parquet",
             _parquet("cut.parquet", lambda: {"user": [1, 2, 3], "item": [4, 5, 6]}), "not a valid Parquet file",
             mode="truncate"))
    add(Case("csv named parquet", "fake.parquet", _text("fake.parquet", OK_ROWS),
             "does not start with Parquet's 'PAR1' marker"))

    # --- zips
    zeros_3mb = lambda: {"ml/ratings.csv": b"userId,movieId,rating\n" + b"0" * (3 * MB)}  # noqa: E731
    add(Case("zip bomb by ratio", "ratio.zip", _zip("ratio.zip", zeros_3mb), "looks like a zip bomb", mode="load",
             bomb=True))
    add(Case("zip member over the table budget", "member.zip",
             _zip("member.zip", lambda: {"ml/ratings.csv": b"0" * (50 * MB)}), "would unpack to 50 MB", mode="load",
             bomb=True))
    add(Case("zip lying small about its size", "liar.zip",
             _zip("liar.zip", lambda: {"ml/ratings.csv": b"userId,movieId,rating\n" + b"1,2,3\n" * (8 * MB)},
                  patch=lambda data: _patch_entries(data, file_size=1000)),
             "is damaged or cannot be unpacked", mode="load", bomb=True))
    add(Case("zip lying big about its size", "liar2.zip",
             _zip("liar2.zip", lambda: {"ml/ratings.csv": OK_ROWS.encode()},
                  patch=lambda data: _patch_entries(data, file_size=0xFFFFFFFF)),
             "would unpack to 4,096 MB", mode="load", bomb=True))
    add(Case("zip over the archive budget", "total.zip",
             _zip("total.zip", lambda: {"ml/ratings.csv": _random_ratings(150_000)[: 3 * MB + 100_000].rsplit(b"\n", 1)[0]
                                        + b"\n", "ml/movies.csv": _movies(60_000), "ml/tags.csv": _tags(60_000)}),
             "unpacks to more than 8 MB in all", mode="load", bomb=True, limits={"rows": 10_000_000}))
    add(Case("zip with too many rows", "rows.zip", _zip("rows.zip", lambda: {"ml/ratings.csv": _random_ratings(120_000)}),
             "has more than 100,000 rows, the limit", mode="load", bomb=True))
    add(Case("zip inside a zip", "outer.zip",
             _zip("outer.zip", lambda: {"inner.zip": _zip_bytes({"ml/u.data": b"1\t1\t5\t1\n"})}),
             "archives inside archives are not opened", mode="load"))
    add(Case("zip with path traversal", "evil.zip",
             _zip("evil.zip", lambda: {"../../etc/cron.d/x": b"* * * * * root true\n", "u.data": b"1\t1\t5\t1\n"}),
             "named '../../etc/cron.d/x', which points outside the archive", mode="load"))
    add(Case("zip with an absolute member", "abs.zip",
             _zip("abs.zip", lambda: {"u.data": b"1\t1\t5\t1\n"},
                  patch=lambda data: data.replace(b"u.data", b"/u.dat")),
             "named '/u.dat'", mode="load"))
    add(Case("zip with 10001 members", "many.zip",
             _zip("many.zip", lambda: {f"f{i}": b"" for i in range(10_001)}, method=zipfile.ZIP_STORED),
             "holds too many files (10,001", mode="load", bomb=True))
    add(Case("zip without MovieLens files", "other.zip", _zip("other.zip", lambda: {"notes.txt": b"hello"}),
             "holds no recognised MovieLens files (found: notes.txt)", mode="load"))
    add(Case("not a zip", "broken.zip", _text("broken.zip", "this is not a zip"), "is not a valid zip archive",
             mode="load"))
    add(Case("encrypted member", "locked.zip",
             _zip("locked.zip", lambda: {"u.data": b"1\t1\t5\t1\n2\t2\t4\t1\n"},
                  patch=lambda data: _patch_entries(data, flags=1)),
             "is encrypted (password-protected)", mode="load"))
    add(Case("unknown compression method", "method.zip",
             _zip("method.zip", lambda: {"u.data": b"1\t1\t5\t1\n2\t2\t4\t1\n"},
                  patch=lambda data: _patch_entries(data, method=99)),
             "uses a compression method the server cannot unpack", mode="load"))
    long_movie = "M" * 5000
    add(Case("overlong MovieLens title", "titles.zip",
             _zip("titles.zip", lambda: {"ml/ratings.csv": b"userId,movieId,rating\n1,1,4\n2,2,5\n",
                                         "ml/movies.csv": f"movieId,title,genres\n1,A,Drama\n2,{long_movie},Drama\n".encode()}),
             "titles.zip/ml/movies.csv: Column 'title' (title) has a 5,000-character value", mode="load"))

    # --- folders and paths
    add(Case("folder with 10001 files", "crowded", _folder("crowded", _many_files), "holds more than 10,000 files",
             mode="load", bomb=True))
    add(Case("symlink loops only", "loops", _folder("loops", _symlink_loop),
             "holds no recognised MovieLens files (found: nothing)", mode="load"))
    add(Case("symlink loops beside data", "looped", _folder("looped", _loop_beside_data), None, mode="load",
             check=_symlinked_folder_loads))
    add(Case("no such path", "missing", lambda folder: folder / "missing" / "ratings.csv",
             "No file or folder at 'ratings.csv'", mode="load"))
    add(Case("unsupported extension", "sheet.xlsx", _text("sheet.xlsx", "x"), "unsupported file type '.xlsx'",
             mode="load"))
    add(Case("folder without permission", "locked", _folder("locked", _locked_folder),
             "The folder locked cannot be read (permission denied)", mode="load", needs_non_root=True))
    add(Case("file without permission", "lockedfile", _folder("lockedfile", _locked_file),
             "lockedfile/u.data cannot be read (permission denied)", mode="load", needs_non_root=True))
    return c


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------------- running a case
INTERACTIONS_FOR_ITEMS = b"user,item\n1,10\n2,20\n3,10\n"


def prepare(case: Case, folder: Path) -> Path:
    """Write the case's input under ``folder``; returns what to load."""
    target = case.build(folder)
    if case.mode == "truncate":
        target.write_bytes(target.read_bytes()[:-20])
    return target


def run(case: Case, target: Path, limits=TEST_LIMITS):
    """Load a prepared input as the app would; returns the Dataset (or raises DataError)."""
    from recsys.data.loaders import from_table, guess_columns, load, read_table

    limits = replace(limits, **case.limits) if case.limits else limits
    if case.mode == "load":
        return load(target, limits=limits)
    if case.mode == "items":
        interactions = read_table(INTERACTIONS_FOR_ITEMS, "log.csv", limits=limits)
        items = read_table(target, target.name, limits=limits)
        return from_table(interactions, guess_columns(interactions), items=items, name="log.csv", limits=limits)
    table = read_table(target, target.name, limits=limits)
    mapping = case.mapping if case.mode == "mapped" else guess_columns(table)
    return from_table(table, mapping, name=target.name, limits=limits)


def attempt(case: Case, folder: Path, limits=TEST_LIMITS):
    """Build the case's input under ``folder`` and load it as the app would; returns the Dataset."""
    return run(case, prepare(case, folder), limits)
