"""Loaders: generic tables, MovieLens layouts (synthetic and real), the sample, k-core, and bad input."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import load, loaders
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.loaders import (
    from_table,
    guess_columns,
    k_core,
    load_mapped,
    read_item_metadata,
    read_table,
)

INTERACTIONS = pd.DataFrame({
    "user_id": [1, 1, 2, 2, 3, 3, 3],
    "item_id": [10, 20, 10, 30, 20, 30, 40],
    "rating": [4.0, 3.5, 5.0, 2.0, 1.0, 4.5, 3.0],
    "timestamp": [978_300_100, 978_300_200, 978_300_150, 978_300_250, 978_300_300, 978_300_310, 978_300_320],
})


def as_text(df: pd.DataFrame, sep: str = ",", header: bool = True) -> bytes:
    return df.to_csv(sep=sep, index=False, header=header).encode()


def interactions_of(ds: Dataset) -> list[tuple]:
    table = ds.to_frame()
    return sorted(zip(table["user"], table["item"], table["rating"], table.get("timestamp", [0] * len(ds)),
                      strict=True))


EXPECTED = sorted(zip(*(INTERACTIONS[c].tolist() for c in INTERACTIONS.columns), strict=True))


def assert_message(info, *words):
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


# ---------------------------------------------------------------- generic tables
@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_delimited_round_trip(sep):
    table = read_table(as_text(INTERACTIONS, sep), "upload.txt")
    assert list(table.columns) == list(INTERACTIONS.columns)
    mapping = guess_columns(table)
    assert mapping == {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}
    ds = from_table(table, mapping, name="upload.txt")
    assert interactions_of(ds) == EXPECTED
    assert ds.feedback == "explicit"


def test_whitespace_and_double_colon_tables_without_header():
    spaced = "\n".join(" ".join(map(str, row)) for row in INTERACTIONS.itertuples(index=False)).encode()
    dat = "\n".join("::".join(map(str, row)) for row in INTERACTIONS.itertuples(index=False)).encode()
    for payload in (spaced, dat):
        table = read_table(payload, "ratings.dat")
        assert list(table.columns) == ["col1", "col2", "col3", "col4"]
        mapping = guess_columns(table)
        assert mapping == {"user": "col1", "item": "col2", "rating": "col3", "timestamp": "col4"}
        assert interactions_of(from_table(table, mapping)) == EXPECTED


def test_headerless_csv_is_detected_by_its_numeric_first_row():
    table = read_table(as_text(INTERACTIONS, header=False), "u.csv")
    assert list(table.columns) == ["col1", "col2", "col3", "col4"]
    assert len(table) == len(INTERACTIONS)


def test_parquet_round_trip(tmp_path):
    payload = INTERACTIONS.to_parquet(index=False)
    table = read_table(payload, "log.parquet")
    assert interactions_of(from_table(table, guess_columns(table))) == EXPECTED
    # parquet is recognised by its magic bytes even under another name
    path = tmp_path / "log.bin.parquet"
    path.write_bytes(payload)
    assert interactions_of(load(path)) == EXPECTED


def test_load_a_csv_path_guesses_columns(tmp_path):
    path = tmp_path / "ratings_export.csv"
    path.write_bytes(as_text(INTERACTIONS))
    ds = load(path)
    assert ds.name == "ratings_export.csv"
    assert interactions_of(ds) == EXPECTED


def test_iso_dates_quotes_bom_and_trailing_delimiters():
    text = (
        "\ufeffCustomer,Product,Stars,Date,\n"
        'c1,"Widget, large",5,2021-03-01T12:00:00Z,\n'
        "c1,gadget,3,2021-03-02,\n"
        "c2,gadget,4,2021-03-03 08:30,\n"
    ).encode()
    table = read_table(text, "orders.csv")
    assert list(table.columns) == ["Customer", "Product", "Stars", "Date"]
    mapping = guess_columns(table)
    assert mapping == {"user": "Customer", "item": "Product", "rating": "Stars", "timestamp": "Date"}
    ds = from_table(table, mapping)
    assert sorted(ds.item_ids.tolist()) == ["Widget, large", "gadget"]
    stamps = dict(zip(ds.to_frame()["rating"], ds.timestamp, strict=True))
    assert stamps[5.0] == pd.Timestamp("2021-03-01T12:00:00Z").timestamp()
    assert stamps[4.0] == pd.Timestamp("2021-03-03 08:30", tz="UTC").timestamp()


def test_latin1_and_utf16_text_are_read():
    latin = "user;item;rating\nJosé;Café;4\nAnaïs;Crème;5\n".encode("latin-1")
    assert read_table(latin, "fr.csv")["item"].tolist() == ["Café", "Crème"]
    utf16 = "user\titem\nJosé\tCafé\nAnaïs\tCrème\n".encode("utf-16")
    assert read_table(utf16, "excel.txt")["user"].tolist() == ["José", "Anaïs"]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["userId", "movieId", "rating", "timestamp"], ("userId", "movieId", "rating", "timestamp")),
        (["uid", "product_id", "score", "ts"], ("uid", "product_id", "score", "ts")),
        (["Visitor ID", "Article", "datetime"], ("Visitor ID", "Article", None, "datetime")),
        (["customer_key", "sku_code", "qty"], ("customer_key", "sku_code", None, None)),
        (["a", "b"], ("a", "b", None, None)),
        (["time", "item", "user"], ("user", "item", None, "time")),
    ],
)
def test_guess_columns_by_name(columns, expected):
    df = pd.DataFrame([["x"] * len(columns)], columns=columns)
    guess = guess_columns(df)
    assert (guess["user"], guess["item"], guess["rating"], guess["timestamp"]) == expected


def test_from_table_with_item_metadata_and_catalogue_only_items():
    items = pd.DataFrame({
        "item_id": ["10", "20", "30", "40", "50"],
        "name": ["Alpha (1999)", "Beta", "Gamma (2001)", "Delta", "Never Rated (1984)"],
        "genre": ["Action|Drama", "Comedy, Romance", "Horror;Thriller", None, "Drama"],
    })
    ds = from_table(INTERACTIONS, guess_columns(INTERACTIONS), items=items, name="log.csv")
    assert ds.item_ids.tolist() == [10, 20, 30, 40, 50]  # "10" in metadata joins 10 in interactions
    assert ds.item_popularity[-1] == 0
    assert ds.item_titles().tolist()[::4] == ["Alpha (1999)", "Never Rated (1984)"]
    assert ds.item_genres()[:4] == [("Action", "Drama"), ("Comedy", "Romance"), ("Horror", "Thriller"), ()]
    assert ds.items["year"].tolist()[:2] == [1999.0, pytest.approx(np.nan, nan_ok=True)]


def test_read_item_metadata_normalises_genres_and_years():
    raw = pd.DataFrame({
        "id": [1, 2, 3, None],
        "title": ["Toy Story (1995) ", "Fargo", "Show (2006–2007)", "orphan"],
        "genres": ["Animation|Children's", "(no genres listed)", "Drama", "x"],
        "year": [None, "1996", None, None],
    })
    meta = read_item_metadata(raw, "id", "title", "genres", year_col="year")
    assert meta["item_id"].tolist() == [1, 2, 3]
    assert meta["title"].tolist() == ["Toy Story (1995)", "Fargo", "Show (2006–2007)"]
    assert meta["genres"].tolist() == [("Animation", "Children's"), (), ("Drama",)]
    assert meta["year"].tolist() == [1995.0, 1996.0, 2006.0]
    with pytest.raises(DataError, match="no genres column 'kind'"):
        read_item_metadata(raw, "id", "title", "kind")


def test_load_mapped_reads_the_descriptor_the_data_page_stores(tmp_path):
    path = tmp_path / "abc123.csv"
    path.write_bytes(as_text(INTERACTIONS.rename(columns={"user_id": "who", "item_id": "what"})))
    items_path = tmp_path / "def456.csv"
    items_path.write_bytes(b"what,title,genres\n10,Ten (2000),Drama\n40,Forty,Comedy|Drama\n")
    mapping = (("item", "what"), ("rating", None), ("timestamp", "timestamp"), ("user", "who"))  # frozen form
    ds = load_mapped({
        "kind": "table", "path": str(path), "filename": "my log.csv", "mapping": mapping, "feedback": None,
        "duplicates": "last", "items_path": str(items_path), "items_filename": "items.csv",
    })
    assert ds.name == "my log.csv" and ds.feedback == "implicit"
    assert ds.item_titles(ds.item_codes([10, 40])).tolist() == ["Ten (2000)", "Forty"]
    assert ds.items["year"].iloc[0] == 2000.0


# ---------------------------------------------------------------- bad input
def test_missing_path():
    with pytest.raises(DataError) as info:
        load("/no/such/place/ratings.csv")
    assert_message(info, "No file or folder", "'ratings.csv'")
    assert "/no/such/place" not in str(info.value)  # a server's folders are nobody's business


@pytest.mark.parametrize("payload", [b"", b"  \n\n"])
def test_empty_file(payload):
    with pytest.raises(DataError) as info:
        read_table(payload, "empty.csv")
    assert_message(info, "empty.csv", "empty")


def test_header_only_file():
    with pytest.raises(DataError) as info:
        read_table(b"user,item,rating\n", "header.csv")
    assert_message(info, "header.csv", "no data rows", "user, item, rating")


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "PNG image"),
        (np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(), ""),
        (b"\x80\x04\x95" + b"pickled" * 20, "pickle"),
        (b"PK\x03\x04" + b"x" * 100, "Excel"),
    ],
)
def test_binary_junk_is_not_a_table(payload, kind):
    with pytest.raises(DataError) as info:
        read_table(payload, "photo.csv")
    assert_message(info, "photo.csv", "does not look like a text table", kind)


def test_single_column_with_another_delimiter_names_it():
    with pytest.raises(DataError) as info:
        read_table(b"user:item:rating\n1:2:5\n2:3:4\n", "colons.csv")
    assert_message(info, "colons.csv", "delimiter", "':'", "colon")
    with pytest.raises(DataError) as info:
        read_table(as_text(INTERACTIONS, ";"), "semi.csv", sep=",")
    assert_message(info, "semi.csv", "delimiter", "';'", "semicolon")


def test_single_column_without_delimiter():
    with pytest.raises(DataError) as info:
        read_table(b"user\nalice\nbob\n", "one.csv")
    assert_message(info, "one.csv", "single column", "user")


def test_ragged_line_is_named():
    payload = b"user,item,rating\n1,2,5\n2,3,4\n3,4,5,oops\n"
    with pytest.raises(DataError) as info:
        read_table(payload, "ragged.csv")
    assert_message(info, "ragged.csv", "line 4", "delimiter")


def test_duplicate_header_names():
    with pytest.raises(DataError) as info:
        read_table(b"user,item,rating,rating\n1,2,5,4\n2,1,3,3\n", "dupes.csv")
    assert_message(info, "dupes.csv", "two columns named 'rating'", "columns 3 and 4")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "mapping", "words"),
    [
        ("u,i,r\n1,2,5\n2,1,4\n", {"user": "user", "item": "i", "rating": "r"}, ["'user'", "columns are"]),
        ("u,i,r\n1,2,5\n2,1,x\n", {"user": "u", "item": "i", "rating": "r"}, ["'r'", "row 2", "'x'"]),
        ("u,i,r\n1,2,5\n2,1,\n", {"user": "u", "item": "i", "rating": "r"}, ["'r'", "empty in row 2"]),
        ("u,i,r\n1,2,5\n,1,4\n", {"user": "u", "item": "i", "rating": "r"}, ["'u'", "row 2"]),
        ("u,i,r\n1,,5\n2,1,4\n", {"user": "u", "item": "i", "rating": "r"}, ["'i'", "row 1"]),
        ("u,i,r\n1,2,5\n1,1,4\n", {"user": "u", "item": "i", "rating": "r"}, ["single user"]),
        ("u,i,r\n1,2,5\n3,2,4\n", {"user": "u", "item": "i", "rating": "r"}, ["single item"]),
        ("u,i,r\n1,2,5\n3,1,4\n", {"user": "u", "item": "u"}, ["two roles"]),
    ],
)
def test_bad_values_name_the_file_column_and_row(tmp_path, text, mapping, words):
    path = write(tmp_path, "upload_17.csv", text)
    with pytest.raises(DataError) as info:
        load(path, mapping=mapping)
    assert_message(info, "upload_17.csv", *words)


def test_too_large_upload(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_LIMIT_UPLOAD_BYTES", "64")
    monkeypatch.setenv("RECSYS_LIMIT_TABLE_BYTES", "64")
    payload = as_text(INTERACTIONS)
    for source, setting in ((payload, "UPLOAD_BYTES"), (io.BytesIO(payload), "UPLOAD_BYTES"),
                            (write(tmp_path, "big.csv", payload.decode()), "TABLE_BYTES")):
        with pytest.raises(DataError) as info:
            read_table(source, "big.csv")
        assert_message(info, "big.csv", "too large", f"RECSYS_LIMIT_{setting}")
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml/ratings.csv", payload.decode() * 3)
    monkeypatch.setenv("RECSYS_LIMIT_ARCHIVE_BYTES", "64")
    with pytest.raises(DataError, match="big.zip is too large"):
        load(archive)


def test_folder_without_movielens_files(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as info:
        load(folder)
    assert_message(info, "downloads", "notes.txt", "u.data", "ratings.dat", "ratings.csv")


def test_unsupported_extension_and_bad_zip(tmp_path):
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load(write(tmp_path, "sheet.xlsx", "x"))
    with pytest.raises(DataError, match="not a valid zip"):
        load(write(tmp_path, "broken.zip", "not a zip"))


def test_parquet_name_without_parquet_bytes():
    with pytest.raises(DataError, match="PAR1"):
        read_table(b"user,item\n1,2\n", "fake.parquet")


def test_mapping_without_user_column():
    with pytest.raises(DataError, match="no user column is mapped"):
        from_table(INTERACTIONS, {"user": None, "item": "item_id"}, name="log.csv")


# ---------------------------------------------------------------- synthetic MovieLens layouts
def make_ml100k(folder: Path, with_genre_file: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n3\t3\t1\t876893119\n")
    flags = lambda on: "|".join("1" if j in on else "0" for j in range(19))  # noqa: E731
    (folder / "u.item").write_bytes(
        (f"1|Toy Story (1995)|01-Jan-1995||http://x|{flags({3, 4, 5})}\n"
         f"2|Café Noir|01-Jan-1994||http://y|{flags({10})}\n"
         f"3|Mystery Film|||http://z|{flags({0})}\n").encode("latin-1")
    )
    if with_genre_file:
        (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(loaders.ML100K_GENRES)) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n")
    return folder


@pytest.mark.parametrize("with_genre_file", [True, False])
def test_ml100k_layout(tmp_path, with_genre_file):
    ds = load(make_ml100k(tmp_path / "ml-100k", with_genre_file))
    assert ds.name == "MovieLens 100K"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (4, 3, 3)
    assert ds.item_titles().tolist() == ["Toy Story (1995)", "Café Noir", "Mystery Film"]
    assert ds.item_genres() == [("Animation", "Children's", "Comedy"), ("Film-Noir",), ("unknown",)]
    assert ds.items["year"].tolist()[:2] == [1995.0, 1994.0]  # title first, then release date
    assert np.isnan(ds.items["year"].iloc[2])
    assert ds.users["occupation"].tolist() == ["technician", "other", "writer"]


def zip_folder(folder: Path, archive: Path, inner: str | None = None) -> Path:
    """Zip ``folder`` with its files under ``inner/`` (default: the folder's name), like GroupLens."""
    inner = folder.name if inner is None else inner
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{inner}/{path.relative_to(folder).as_posix()}" if inner else path.name)
        zf.writestr("__MACOSX/._u.data", b"\x00\x05junk")
    return archive


def test_zip_subfolder_is_searched(tmp_path):
    folder = make_ml100k(tmp_path / "ml-100k")
    from_folder = load(folder)
    nested = load(zip_folder(folder, tmp_path / "upload.zip"))
    flat = load(zip_folder(folder, tmp_path / "ml-100k.zip", inner=""))
    assert nested.fingerprint == from_folder.fingerprint == flat.fingerprint
    assert nested.name == flat.name == "MovieLens 100K"
    assert nested.item_titles().tolist() == from_folder.item_titles().tolist()


def make_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n2::3408::4::978299000\n"
        "3::661::2::978297000\n"
    )
    (folder / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "3408::Erin Brockovich: A True Story (2000)::Drama\n"
        "9999::Les Misérables (1998)::Drama|Romance\n".encode("latin-1")
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    return folder


def test_ml1m_dat_layout(tmp_path):
    ds = load(make_ml1m(tmp_path / "ml-1m"))
    assert ds.name == "MovieLens 1M"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (5, 3, 4)  # 9999 only in movies.dat
    titles = dict(zip(ds.item_ids.tolist(), ds.item_titles().tolist(), strict=True))
    assert titles[3408] == "Erin Brockovich: A True Story (2000)"  # ':' inside a '::' file
    assert titles[9999] == "Les Misérables (1998)"  # latin-1
    assert ds.item_genres()[ds.item_codes([661])[0]] == ("Animation", "Children's", "Musical")
    assert ds.items["year"].tolist() == [1996.0, 1975.0, 2000.0, 1998.0]
    assert ds.users["occupation"].tolist() == ["K-12 student", "self-employed", "scientist"]
    assert ds.timestamp.min() == 978297000
    zipped = load(zip_folder(tmp_path / "ml-1m", tmp_path / "ml-1m.zip"))
    assert zipped.fingerprint == ds.fingerprint


def test_ml10m_dat_layout_with_tags(tmp_path):
    folder = tmp_path / "ml-10M100K"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n2::122::3::838983392\n")
    (folder / "movies.dat").write_text("122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action\n",
                                       encoding="utf-8")
    (folder / "tags.dat").write_text("15::122::dark hero::1215184630\n20::122::Dark Hero::1\n3::185::hacker::2\n")
    ds = load(folder)
    assert ds.name == "MovieLens 10M"
    assert ds.rating.tolist() == [5.0, 4.5, 3.0]
    assert ds.items["tags"].tolist() == ["dark hero", "hacker"]


def make_ml_latest(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,2.5,964982224\n"
        "2,6,5.0,964983815\n"
    )
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n"
        '3,"Grumpier Old Men, The (1995)",Comedy|Romance\n6,Heat (1995) ,(no genres listed)\n'
        "7,Sabrina (1995),Comedy\n8,Cosmos (1980–1981),Documentary\n"
    )
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,1,pixar,1\n3,1,Pixar,2\n4,1,fun,3\n5,7,remake,4\n")
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n1,114709,862\n")
    return folder


def test_ml_latest_csv_layout(tmp_path):
    ds = load(make_ml_latest(tmp_path / "ml-latest-small"))
    assert ds.name == "MovieLens latest-small"
    assert ds.item_ids.tolist() == [1, 3, 6, 7, 8]  # 7 and 8 are only in movies.csv
    assert ds.item_popularity.tolist() == [2, 1, 1, 0, 0]
    assert ds.item_genres() == [("Adventure", "Animation", "Children"), ("Comedy", "Romance"), (), ("Comedy",),
                                ("Documentary",)]
    assert ds.items["year"].tolist() == [1995.0, 1995.0, 1995.0, 1995.0, 1980.0]
    assert ds.items["tags"].tolist() == ["pixar, fun", "", "", "remake", ""]
    assert ds.item_titles().tolist()[1] == "The Grumpier Old Men (1995)"  # the article read to the front


@pytest.mark.parametrize(("label", "name"), [("ml-25m", "MovieLens 25M"), ("ml-32m", "MovieLens 32M"),
                                             ("ml-latest", "MovieLens latest"), ("my-export", "MovieLens")])
def test_movielens_names_come_from_the_folder(tmp_path, label, name):
    assert load(make_ml_latest(tmp_path / label)).name == name


def test_bundled_layout_in_any_folder(tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    INTERACTIONS.to_csv(folder / "ratings.csv", index=False)
    (folder / "items.csv").write_text("item_id,title,genres,year\n10,Ten,Drama|War,1990\n20,Twenty,,\n")
    ds = load(folder)
    assert ds.name == "shop" and interactions_of(ds) == EXPECTED
    assert ds.item_genres()[:2] == [("Drama", "War"), ()]
    assert ds.items["year"].iloc[0] == 1990.0


# ---------------------------------------------------------------- the bundled sample
SAMPLE_RATINGS = loaders.SAMPLE_DIR / "ratings.csv"
needs_sample = pytest.mark.skipif(not SAMPLE_RATINGS.exists(), reason="sample_data/ratings.csv not generated yet")


@needs_sample
def test_sample_loads_with_metadata():
    ds = load("sample")
    assert ds.name == loaders.SAMPLE_NAME
    raw = pd.read_csv(SAMPLE_RATINGS)
    assert ds.n_interactions == len(raw.drop_duplicates(["user_id", "item_id"]))
    assert ds.n_users == raw["user_id"].nunique() >= 2
    assert ds.items is not None and len(ds.items) == ds.n_items
    assert all(isinstance(g, tuple) for g in ds.item_genres())
    assert ds.genre_matrix[0].shape[1] > 1
    assert load(None).fingerprint == ds.fingerprint


def test_missing_sample_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="recsys.data.synthetic"):
        loaders.load_sample(tmp_path)


# ---------------------------------------------------------------- k-core
def test_k_core_leaves_every_user_and_item_with_k(tmp_path):
    rng = np.random.default_rng(1)
    users = rng.zipf(1.6, 3000) % 300
    items = rng.zipf(1.4, 3000) % 500
    meta = pd.DataFrame({"item": np.arange(500), "title": [f"T{i}" for i in range(500)]})
    ds = Dataset.from_frame(pd.DataFrame({"user": users, "item": items}), rating=None, items=meta)
    core = k_core(ds, 5, 4)
    assert core.n_items < ds.n_items and core.n_users < ds.n_users
    assert core.user_activity.min() >= 5 and core.item_popularity.min() >= 4
    assert core.user.max() == core.n_users - 1 and core.item.max() == core.n_items - 1  # dense codes
    assert core.item_titles().tolist() == [f"T{i}" for i in core.item_ids]  # metadata follows the ids
    # the same interactions, re-encoded: every kept (user, item) pair existed before
    before = set(zip(ds.user_ids[ds.user].tolist(), ds.item_ids[ds.item].tolist(), strict=True))
    after = set(zip(core.user_ids[core.user].tolist(), core.item_ids[core.item].tolist(), strict=True))
    assert after <= before


def test_k_core_iterates_until_stable():
    # dropping item z (1 interaction) takes user c below 2, which takes item y below 2
    rows = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "w"), ("a", "w"), ("c", "y"), ("c", "z")]
    ds = Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item"]), rating=None)
    core = k_core(ds, 2, 2)
    assert core.user_ids.tolist() == ["a", "b"]
    assert core.item_ids.tolist() == ["w", "x"]


def test_k_core_that_removes_everything():
    ds = Dataset.from_frame(pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3]}), rating=None)
    with pytest.raises(DataError, match="nothing is left.*k_user=3"):
        k_core(ds, 3, 3)


# ---------------------------------------------------------------- real MovieLens
def test_ml100k_real(ml100k):
    assert ml100k.name == "MovieLens 100K"
    assert (ml100k.n_interactions, ml100k.n_users, ml100k.n_items) == (100_000, 943, 1_682)
    assert ml100k.feedback == "explicit"
    assert len(ml100k.genre_matrix[1]) == 19
    toy = ml100k.item_codes([1])[0]
    assert ml100k.item_titles([toy])[0] == "Toy Story (1995)"
    assert ml100k.item_genres()[toy] == ("Animation", "Children's", "Comedy")
    assert ml100k.items["year"].iloc[toy] == 1995.0
    assert ml100k.items["year"].notna().sum() >= 1_680
    assert len(ml100k.users) == 943 and set(ml100k.users["gender"]) == {"M", "F"}
    assert np.unique(ml100k.rating).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_ml_latest_small_real(ml_latest_small):
    ds = ml_latest_small
    assert ds.name == "MovieLens latest-small"
    assert (ds.n_interactions, ds.n_users, ds.n_items) == (100_836, 610, 9_742)
    assert int((ds.item_popularity > 0).sum()) == 9_724
    assert ds.item_titles(ds.item_codes([1]))[0] == "Toy Story (1995)"
    assert "pixar" in ds.items["tags"].iloc[ds.item_codes([1])[0]].lower()
    assert np.unique(ds.rating).tolist() == [0.5 * k for k in range(1, 11)]


@pytest.mark.parametrize("name", ["ml-100k", "ml-latest-small"])
def test_real_zip_matches_folder(data_dir, tmp_path, name, request):
    fixture = {"ml-100k": "ml100k", "ml-latest-small": "ml_latest_small"}[name]
    from_folder = request.getfixturevalue(fixture)
    copy = tmp_path / name
    shutil.copytree(data_dir / name, copy, ignore=shutil.ignore_patterns("u[1-5a-b].*", "ua.*", "ub.*"))
    zipped = load(zip_folder(copy, tmp_path / f"{name}.zip"))
    assert zipped.fingerprint == from_folder.fingerprint
    assert zipped.name == from_folder.name
    assert zipped.item_titles().tolist() == from_folder.item_titles().tolist()


def test_real_k_core_and_splits(ml100k):
    core = k_core(ml100k, 20, 20)
    assert core.user_activity.min() >= 20 and core.item_popularity.min() >= 20
    assert core.items["title"].tolist() == ml100k.items.set_index("id").loc[core.item_ids, "title"].tolist()
