"""Turn files into Datasets: the bundled sample, MovieLens folders and zips, generic tables.

Every problem a person can fix surfaces as a :class:`DataError` that names the file (and
the column, row or delimiter) and says what to do. Uploads are only ever parsed as text or
Parquet: nothing is unpickled, evaluated or extracted to disk.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import replace
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import pandas as pd

from recsys.data import validate
from recsys.data.dataset import Dataset, DuplicatePolicy, Feedback
from recsys.data.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "sample_data"
SAMPLE_NAME = "Sample catalogue (synthetic)"

# Uploads and single table files above this are refused before parsing, so one upload cannot
# exhaust the server's memory. Raise it (or pass max_bytes=None) for trusted server files.
MAX_UPLOAD_BYTES = 500 * 1024**2
# A zip member may not inflate beyond this; zipfile stops at the declared size, so checking the
# declared size is enough to defuse zip bombs. ML-32M's ratings.csv is ~0.9 GB.
MAX_MEMBER_BYTES = 4 * 1024**3
# How much of a text file the delimiter / header / encoding guesses look at.
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq")
DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", ":": "colon", "::": "double colon"}

# u.genre is normally shipped with ML-100K; this is its content, for copies that lack it.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
# ML-1M's users.dat stores occupations as codes; names from its README make them readable.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)
NO_GENRES = "(no genres listed)"
EXPECTED_MOVIELENS = (
    "u.data (+ u.item, u.genre, u.user) for MovieLens 100K; "
    "ratings.dat (+ movies.dat, users.dat) for MovieLens 1M / 10M; "
    "ratings.csv (+ movies.csv, tags.csv) for MovieLens latest / 20M / 25M / 32M"
)

# Column names people use for each role, compared after lower-casing and dropping
# everything but letters and digits ("User ID" == "user_id" == "userid").
COLUMN_NAMES = {
    "user": (
        "userid", "user", "uid", "users", "username", "customerid", "customer", "visitorid", "visitor",
        "memberid", "member", "reviewerid", "reviewer", "accountid", "account", "clientid", "client",
        "personid", "person", "buyerid", "buyer", "viewerid", "viewer", "listenerid", "sessionid", "session",
    ),
    "item": (
        "itemid", "item", "movieid", "movie", "iid", "items", "productid", "product", "asin", "articleid",
        "article", "trackid", "track", "songid", "song", "bookid", "book", "isbn", "filmid", "film",
        "contentid", "content", "sku", "videoid", "video", "artistid", "artist", "courseid", "course",
        "businessid", "business", "recipeid", "recipe", "animeid", "anime", "gameid", "game", "jokeid",
        "showid", "show", "episodeid", "postid", "newsid", "docid", "pageid", "offerid",
    ),
    "rating": (
        "rating", "ratings", "rate", "score", "stars", "star", "grade", "vote", "preference", "value",
        "weight", "playcount", "plays", "count", "clicks", "quantity", "reviewscore", "overall",
    ),
    "timestamp": (
        "timestamp", "ts", "time", "date", "datetime", "unixtime", "unixreviewtime", "epoch", "createdat",
        "created", "eventtime", "ratedat", "watchedat", "when", "day", "timestamps", "time_stamp",
    ),
}
ITEM_COLUMN_NAMES = {
    "title": ("title", "name", "movietitle", "itemname", "productname", "movie", "film", "itemtitle"),
    "genres": ("genres", "genre", "categories", "category", "tags_genres", "kind", "type"),
    "year": ("year", "releaseyear", "yearofrelease", "pubyear", "yearofpublication"),
    "tags": ("tags", "tag", "keywords", "labels"),
}


# ====================================================================== entry points
def load(path_or_name: str | Path | None = "sample", **kw) -> Dataset:
    """Load a dataset by name or path.

    ``"sample"`` / ``None``: the bundled synthetic catalogue. A folder or ``.zip``: MovieLens
    (100K, 1M, 10M, latest, 20M, 25M, 32M), told apart by its files. A ``.csv`` / ``.tsv`` /
    ``.txt`` / ``.parquet`` file: a generic interaction table with guessed columns
    (override with ``mapping={"user": ..., "item": ..., ...}``). Keyword arguments go to the
    loader: ``feedback``, ``positive_threshold``, ``name``, and for tables ``mapping``,
    ``items``, ``item_mapping``, ``duplicates``, ``max_bytes``.
    """
    if path_or_name is None or str(path_or_name).strip().lower() == "sample":
        return load_sample(**kw)
    path = Path(str(path_or_name).strip()).expanduser()
    if not path.exists():
        raise DataError(
            f"No file or folder at {str(path)!r}. Check the path (it is read on the server), "
            "or use 'sample' for the bundled dataset."
        )
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        return load_movielens(path, **kw)
    if suffix in TABLE_SUFFIXES:
        return load_table_file(path, **kw)
    raise DataError(
        f"{path.name}: unsupported file type {path.suffix or '(no extension)'!r}. Load a MovieLens "
        f"folder or .zip, or a table ending in {', '.join(TABLE_SUFFIXES)} (export spreadsheets as CSV)."
    )


def load_sample(folder: str | Path | None = None, **kw) -> Dataset:
    """The bundled synthetic catalogue (``sample_data/ratings.csv`` and ``items.csv``)."""
    folder = Path(folder) if folder is not None else SAMPLE_DIR
    if not (folder / "ratings.csv").is_file():
        raise DataError(
            f"The bundled sample is missing: expected {folder / 'ratings.csv'} and items.csv. "
            "Regenerate it with `python -m recsys.data.synthetic --out sample_data`."
        )
    kw.setdefault("name", SAMPLE_NAME)
    return _load_bundled_layout(_Folder(folder), "ratings.csv", **kw)


def load_table_file(
    path: str | Path,
    *,
    mapping: Mapping[str, str | None] | None = None,
    items: str | Path | pd.DataFrame | None = None,
    item_mapping: Mapping[str, str | None] | None = None,
    feedback: Feedback | None = None,
    positive_threshold: float | None = None,
    duplicates: DuplicatePolicy = "last",
    name: str | None = None,
    max_bytes: int | None = None,
) -> Dataset:
    """One interaction table (CSV/TSV/Parquet) with guessed or given columns."""
    path = Path(path)
    table = read_table(path, path.name, max_bytes=max_bytes)
    if isinstance(items, (str, Path)):
        items = read_table(Path(items), Path(items).name, max_bytes=max_bytes)
    return from_table(
        table,
        dict(mapping) if mapping else guess_columns(table),
        items=items,
        item_mapping=item_mapping,
        feedback=feedback,
        positive_threshold=positive_threshold,
        duplicates=duplicates,
        name=name or path.name,
    )


def load_mapped(descriptor: Mapping) -> Dataset:
    """Load an uploaded table from the description the Data page stores.

    Keys: ``path``, ``filename``, ``mapping`` (role -> column; a dict or the (key, value)
    pairs the UI freezes it into), optional ``feedback``, ``positive_threshold``,
    ``duplicates``, ``items_path``, ``items_filename``, ``item_mapping``.
    """
    path = Path(descriptor["path"])
    filename = descriptor.get("filename") or path.name
    table = read_table(path, filename)
    items = None
    if descriptor.get("items_path"):
        items_path = Path(descriptor["items_path"])
        items = read_table(items_path, descriptor.get("items_filename") or items_path.name)
    item_mapping = descriptor.get("item_mapping")
    return from_table(
        table,
        dict(descriptor["mapping"]),
        items=items,
        item_mapping=dict(item_mapping) if item_mapping else None,
        feedback=descriptor.get("feedback"),
        positive_threshold=descriptor.get("positive_threshold"),
        duplicates=descriptor.get("duplicates") or "last",
        name=filename,
    )


# ====================================================================== error context
@contextmanager
def _about(source: str) -> Iterator[None]:
    """Prefix errors from deeper layers with the file they concern, so the person knows what to fix."""
    try:
        yield
    except DataError as err:
        if source in str(err):
            raise
        raise DataError(f"{source}: {err}") from None


@contextmanager
def _parsing(source: str, expected: str) -> Iterator[None]:
    """Parser exceptions (pandas, csv, codecs) become DataErrors that say what format was expected."""
    try:
        yield
    except DataError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, UnicodeError, csv.Error, zipfile.BadZipFile) as err:
        raise DataError(f"{source} could not be read as {expected}: {err}") from None


# ====================================================================== folders and zips
class _Folder:
    """Files of a folder (and two levels below), addressed by relative posix paths."""

    max_depth = 3
    max_files = 10_000  # a MovieLens folder has a few dozen; this bounds a wrong pick like $HOME

    def __init__(self, root: Path):
        self.root = root
        self.label = root.name
        self.members = sorted(
            p.relative_to(root).as_posix() for p in islice(_walk(root, self.max_depth), self.max_files)
        )

    def open(self, member: str) -> IO[bytes]:
        return (self.root / member).open("rb")

    def describe(self, member: str) -> str:
        return str(self.root / member)

    def close(self) -> None:
        pass  # nothing held open; present so folders and zips are used alike


def _walk(root: Path, depth: int) -> Iterator[Path]:
    # bounded and hidden-free, so pointing at a big folder does not crawl the whole disk
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "__MACOSX")):
            continue
        if entry.is_file():
            yield entry
        elif entry.is_dir() and depth > 1:
            yield from _walk(entry, depth - 1)


class _Zip:
    """Members of a zip archive, read in memory (never extracted: no path traversal)."""

    def __init__(self, path: Path):
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise DataError(
                f"{path.name} is too large: {size / 1e6:,.0f} MB, over the {MAX_UPLOAD_BYTES / 1e6:,.0f} MB "
                "limit (MAX_UPLOAD_BYTES). Unpack it on the server and load the folder instead."
            )
        try:
            self.archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise DataError(f"{path.name} is not a valid zip archive (it may be truncated). Re-download it.") from None
        self.name = path.name
        self.label = path.stem
        self.members = sorted(
            info.filename for info in self.archive.infolist()
            if not info.is_dir() and not info.filename.startswith("__MACOSX/")
            and not PurePosixPath(info.filename).name.startswith(".")
        )

    def open(self, member: str) -> IO[bytes]:
        info = self.archive.getinfo(member)
        if info.file_size > MAX_MEMBER_BYTES:
            raise DataError(
                f"{self.name}: {member} would unpack to {info.file_size / 1e9:.1f} GB, over the "
                f"{MAX_MEMBER_BYTES / 1e9:.1f} GB limit. Unpack it on the server and load the folder."
            )
        return self.archive.open(info)

    def describe(self, member: str) -> str:
        return f"{self.name}/{member}"

    def close(self) -> None:
        self.archive.close()


def _find(source, filename: str, near: str | None = None) -> str | None:
    """The member called ``filename`` (any case), beside ``near`` if given, else the shallowest."""
    matches = [m for m in source.members if PurePosixPath(m).name.lower() == filename.lower()]
    if near is not None:
        folder = PurePosixPath(near).parent
        matches = [m for m in matches if PurePosixPath(m).parent == folder]
    return min(matches, key=lambda m: (m.count("/"), m)) if matches else None


def _label(source, member: str) -> str:
    """The folder a key file sits in ("ml-latest-small"), else the folder / zip's own name."""
    parent = PurePosixPath(member).parent
    return parent.name if parent.name else source.label


def _movielens_name(label: str, default: str) -> str:
    """'ml-100k' -> 'MovieLens 100K', 'ml-10M100K' -> 'MovieLens 10M', 'ml-latest-small' -> as is."""
    match = re.match(r"ml-?(.+)$", label, re.IGNORECASE)
    if not match:
        return default
    rest = match.group(1)
    size = re.match(r"(\d+)([km])", rest, re.IGNORECASE)
    return f"MovieLens {size.group(1)}{size.group(2).upper()}" if size else f"MovieLens {rest}"


def load_movielens(
    path: str | Path,
    *,
    feedback: Feedback | None = None,
    positive_threshold: float | None = None,
    name: str | None = None,
) -> Dataset:
    """A MovieLens folder or zip, its edition told apart by which files it holds."""
    path = Path(path)
    options = {"feedback": feedback, "positive_threshold": positive_threshold, "name": name}
    with closing(_Folder(path) if path.is_dir() else _Zip(path)) as source:
        return _load_movielens_source(source, path, options)


def load_movielens_100k_fold(path: str | Path, fold: str = "u1") -> tuple[Dataset, Dataset]:
    """MovieLens 100K with one of its canonical splits (u1…u5, ua, ub): (train, test) sharing ids.

    The train part is the dataset minus the pairs of ``<fold>.test``, which equals
    ``<fold>.base`` because the folds partition u.data.
    """
    from recsys.data.split import by_pairs

    path = Path(path)
    ds = load_movielens(path)
    with closing(_Folder(path) if path.is_dir() else _Zip(path)) as source:
        member = _find(source, f"{fold}.test")
        if member is None:
            raise DataError(f"{path.name} has no {fold}.test; the canonical folds are u1…u5, ua and ub.")
        with _parsing(source.describe(member), "MovieLens 100K fold (tab-separated user, item, rating, timestamp)"), \
                source.open(member) as fh:
            pairs = pd.read_csv(fh, sep="\t", header=None, usecols=[0, 1], names=["user", "item"])
    return by_pairs(ds, pairs["user"].to_numpy(), pairs["item"].to_numpy(), name=fold)


def _load_movielens_source(source, path: Path, options: dict) -> Dataset:
    if member := _find(source, "u.data"):
        return _load_ml100k(source, member, **options)
    if member := _find(source, "ratings.dat"):
        return _load_ml_dat(source, member, **options)
    if member := _find(source, "ratings.csv"):
        if _find(source, "items.csv", near=member) and not _find(source, "movies.csv", near=member):
            return _load_bundled_layout(source, member, **options)
        return _load_ml_csv(source, member, **options)
    found = ", ".join(source.members[:8]) or "nothing"
    more = f" and {len(source.members) - 8} more" if len(source.members) > 8 else ""
    raise DataError(
        f"{path.name} holds no recognised MovieLens files (found: {found}{more}). Expected "
        f"{EXPECTED_MOVIELENS}. For another interaction table, upload the .csv/.tsv/.parquet itself."
    )


def _build(frame: pd.DataFrame, source_name: str, **kw) -> Dataset:
    with _about(source_name):
        return Dataset.from_frame(frame, duplicates="last", **kw)


def _load_ml100k(source, member: str, *, feedback, positive_threshold, name) -> Dataset:
    where = source.describe(member)
    columns = ["user_id", "item_id", "rating", "timestamp"]
    with _parsing(where, "MovieLens 100K u.data (tab-separated user, item, rating, timestamp)"), source.open(member) as fh:
        ratings = pd.read_csv(fh, sep="\t", header=None, names=columns, usecols=range(4))
    if len(ratings) and ratings["item_id"].isna().all():
        raise DataError(
            f"{where}: expected 4 tab-separated columns (user, item, rating, timestamp) but found one "
            "per line. Use the original GroupLens u.data (its delimiter is a tab)."
        )
    items = _ml100k_items(source, member)
    users = _ml100k_users(source, member)
    return _build(
        ratings, where, user="user_id", item="item_id", rating="rating", timestamp="timestamp",
        items=items, item_key="item_id", users=users, user_key="user_id", feedback=feedback,
        positive_threshold=positive_threshold,
        name=name or _movielens_name(_label(source, member), "MovieLens 100K"),
    )


def _ml100k_genre_names(source, near: str) -> tuple[str, ...]:
    member = _find(source, "u.genre", near=near)
    if member is None:
        return ML100K_GENRES
    with _parsing(source.describe(member), "u.genre (genre|index lines)"), source.open(member) as fh:
        table = pd.read_csv(fh, sep="|", header=None, names=["genre", "index"], encoding="latin-1")
    table = table.dropna().sort_values("index")
    return tuple(table["genre"].astype(str))


def _ml100k_items(source, near: str) -> pd.DataFrame | None:
    member = _find(source, "u.item", near=near)
    if member is None:
        return None  # ratings alone still make a dataset; titles fall back to ids
    genres = _ml100k_genre_names(source, near)
    where = source.describe(member)
    with _parsing(where, "MovieLens 100K u.item (latin-1, '|'-separated)"), source.open(member) as fh:
        raw = pd.read_csv(fh, sep="|", header=None, encoding="latin-1", dtype={1: str, 2: str})
    if raw.shape[1] != 5 + len(genres):
        raise DataError(
            f"{where} has {raw.shape[1]} columns; MovieLens 100K's u.item has {5 + len(genres)} "
            f"(id, title, release date, video date, URL and {len(genres)} genre flags). Use the original file."
        )
    flags = raw.iloc[:, 5:].fillna(0).to_numpy(dtype=bool)
    titles = raw[1].fillna("").str.strip()
    # the year in the title is the film's; the release date is a fallback for titles without one
    year = _year_from_title(titles).fillna(_year_from_text(raw[2]))
    return pd.DataFrame({
        "item_id": raw[0],
        "title": titles,
        "genres": _flags_to_genres(flags, genres),
        "year": year,
    })


def _flags_to_genres(flags: np.ndarray, names: tuple[str, ...]) -> list[tuple[str, ...]]:
    rows, cols = np.nonzero(flags)
    starts = np.searchsorted(rows, np.arange(len(flags) + 1))
    names_arr = np.asarray(names, dtype=object)
    return [tuple(names_arr[cols[a:b]]) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def _ml100k_users(source, near: str) -> pd.DataFrame | None:
    member = _find(source, "u.user", near=near)
    if member is None:
        return None
    with _parsing(source.describe(member), "MovieLens 100K u.user"), source.open(member) as fh:
        return pd.read_csv(
            fh, sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"],
            encoding="latin-1", dtype={"zip": str},
        )


def _read_dat(source, member: str, columns: list[str], expected: str) -> pd.DataFrame:
    """A '::'-separated file with free text in the last column (titles may contain ':')."""
    where = source.describe(member)
    with _parsing(where, expected), source.open(member) as fh:
        text = _decode_utf8_or_latin1(fh.read())
        fields = pd.Series(text.splitlines()).str.split("::", n=len(columns) - 1, expand=True)
    if fields.shape[1] != len(columns):
        raise DataError(f"{where}: expected {len(columns)} '::'-separated fields per line ({', '.join(columns)}).")
    fields.columns = columns
    return fields


def _decode_utf8_or_latin1(raw: bytes) -> str:
    # ML-1M is latin-1, ML-10M is UTF-8; latin-1 decodes anything, so try UTF-8 first
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _load_ml_dat(source, member: str, *, feedback, positive_threshold, name) -> Dataset:
    where = source.describe(member)
    expected = "MovieLens 1M/10M ratings.dat (UserID::MovieID::Rating::Timestamp)"
    with _parsing(where, expected), source.open(member) as fh:
        # the C parser cannot split on '::', but splitting on ':' leaves empty columns between
        # the fields, which usecols skips: much faster than the python engine on 10M rows
        ratings = pd.read_csv(fh, sep=":", header=None, usecols=[0, 2, 4, 6])
    ratings.columns = ["user_id", "item_id", "rating", "timestamp"]
    items = _ml_dat_items(source, member)
    users_member = _find(source, "users.dat", near=member)
    users = None
    if users_member is not None:
        users = _read_dat(source, users_member, ["user_id", "gender", "age", "occupation", "zip"], "users.dat")
        users["user_id"] = pd.to_numeric(users["user_id"], errors="coerce")
        codes = pd.to_numeric(users["occupation"], errors="coerce")
        known = codes.between(0, len(ML1M_OCCUPATIONS) - 1)
        names = np.asarray(ML1M_OCCUPATIONS, dtype=object)[codes.where(known, 0).astype(int)]
        users["occupation"] = np.where(known, names, users["occupation"])
        users["age"] = pd.to_numeric(users["age"], errors="coerce")
    default = "MovieLens 1M" if users is not None else "MovieLens 10M"
    return _build(
        ratings, where, user="user_id", item="item_id", rating="rating", timestamp="timestamp",
        items=items, item_key="item_id", users=users, user_key="user_id", feedback=feedback,
        positive_threshold=positive_threshold, name=name or _movielens_name(_label(source, member), default),
    )


def _ml_dat_items(source, near: str) -> pd.DataFrame | None:
    member = _find(source, "movies.dat", near=near)
    if member is None:
        return None
    movies = _read_dat(source, member, ["item_id", "title", "genres"], "movies.dat (MovieID::Title::Genres)")
    movies["item_id"] = pd.to_numeric(movies["item_id"], errors="coerce")
    items = _movie_metadata(movies["item_id"], movies["title"], movies["genres"])
    tags_member = _find(source, "tags.dat", near=near)
    if tags_member is not None:
        tags = _read_dat(source, tags_member, ["user_id", "item_id", "tag", "timestamp"], "tags.dat")
        items = _attach_tags(items, pd.to_numeric(tags["item_id"], errors="coerce"), tags["tag"])
    return items


def _load_ml_csv(source, member: str, *, feedback, positive_threshold, name) -> Dataset:
    where = source.describe(member)
    with _parsing(where, "MovieLens ratings.csv (userId,movieId,rating,timestamp)"), source.open(member) as fh:
        ratings = pd.read_csv(fh)
    missing = [c for c in ("userId", "movieId", "rating") if c not in ratings.columns]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {missing}; its columns are {list(ratings.columns)}. MovieLens "
            "ratings.csv has the header userId,movieId,rating,timestamp. For other tables, upload the file "
            "itself and map its columns."
        )
    items = _ml_csv_items(source, member)
    return _build(
        ratings, where, user="userId", item="movieId", rating="rating",
        timestamp="timestamp" if "timestamp" in ratings.columns else None,
        items=items, item_key="item_id", feedback=feedback, positive_threshold=positive_threshold,
        name=name or _movielens_name(_label(source, member), "MovieLens"),
    )


def _ml_csv_items(source, near: str) -> pd.DataFrame | None:
    member = _find(source, "movies.csv", near=near)
    if member is None:
        return None
    where = source.describe(member)
    with _parsing(where, "MovieLens movies.csv (movieId,title,genres)"), source.open(member) as fh:
        movies = pd.read_csv(fh, dtype={"title": str, "genres": str})
    if not {"movieId", "title"} <= set(movies.columns):
        raise DataError(f"{where} needs the columns movieId and title; its columns are {list(movies.columns)}.")
    genres = movies["genres"] if "genres" in movies else pd.Series("", index=movies.index)
    items = _movie_metadata(movies["movieId"], movies["title"], genres)
    tags_member = _find(source, "tags.csv", near=near)
    if tags_member is not None:
        with _parsing(source.describe(tags_member), "MovieLens tags.csv"), source.open(tags_member) as fh:
            tags = pd.read_csv(fh, usecols=["movieId", "tag"], dtype={"tag": str})
        items = _attach_tags(items, tags["movieId"], tags["tag"])
    return items


def _load_bundled_layout(source, member: str, *, feedback=None, positive_threshold=None, name=None) -> Dataset:
    """The format of ``sample_data/``: ratings.csv (user_id,item_id,rating,timestamp) + items.csv."""
    where = source.describe(member)
    with _parsing(where, "ratings.csv (user_id,item_id,rating,timestamp)"), source.open(member) as fh:
        ratings = pd.read_csv(fh)
    items = None
    items_member = _find(source, "items.csv", near=member)
    if items_member is not None:
        with _parsing(source.describe(items_member), "items.csv (item_id,title,genres,year)"), \
                source.open(items_member) as fh:
            raw = pd.read_csv(fh, dtype={"title": str, "genres": str})
        items = read_item_metadata(
            raw, "item_id", "title", "genres", year_col="year" if "year" in raw else None,
            source=source.describe(items_member),
        )
    users = None
    users_member = _find(source, "users.csv", near=member)
    if users_member is not None:
        with _parsing(source.describe(users_member), "users.csv"), source.open(users_member) as fh:
            users = pd.read_csv(fh)
    return _build(
        ratings, where, user="user_id", item="item_id", rating="rating",
        timestamp="timestamp" if "timestamp" in ratings.columns else None,
        items=items, item_key="item_id", users=users, user_key="user_id", feedback=feedback,
        positive_threshold=positive_threshold, name=name or _label(source, member),
    )


# ====================================================================== item metadata
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")


def _year_from_title(titles: pd.Series) -> pd.Series:
    """'Toy Story (1995)' -> 1995.0, and series '(2006–2007)' -> 2006.0; NaN without a year."""
    return pd.to_numeric(titles.astype(str).str.strip().str.extract(_YEAR_IN_TITLE, expand=False), errors="coerce")


def _year_from_text(values: pd.Series) -> pd.Series:
    """The last four-digit run in a date-like text ('01-Jan-1995' -> 1995.0)."""
    found = values.astype(str).str.extract(r"(\d{4})(?!.*\d{4})", expand=False)
    return pd.to_numeric(found, errors="coerce")


def _split_genres(values: pd.Series) -> list[tuple[str, ...]]:
    """'Action|Comedy', 'Action, Comedy' or 'Action;Comedy' -> ('Action', 'Comedy')."""
    text = values.map(lambda v: "|".join(v) if isinstance(v, (tuple, list)) else v)
    parts = text.fillna("").astype(str).str.split(r"\s*[|,;]\s*", regex=True)
    return [tuple(g for g in gs if g and g != NO_GENRES) for gs in parts]


def _movie_metadata(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    titles = titles.fillna("").astype(str).str.strip()
    return pd.DataFrame({
        "item_id": ids.to_numpy(),
        "title": titles.to_numpy(dtype=object),
        "genres": _split_genres(genres.reset_index(drop=True)),
        "year": _year_from_title(titles).to_numpy(np.float64),
    })


def _attach_tags(items: pd.DataFrame, tag_items: pd.Series, tags: pd.Series) -> pd.DataFrame:
    """One readable string of distinct tags per item (first spelling wins), '' for untagged items."""
    frame = pd.DataFrame({"item": tag_items.to_numpy(), "tag": tags.astype(str).str.strip().to_numpy()})
    frame = frame[tags.notna().to_numpy() & (frame["tag"] != "").to_numpy() & frame["item"].notna().to_numpy()]
    frame = frame[~frame.assign(key=frame["tag"].str.lower()).duplicated(["item", "key"])]
    joined = frame.groupby("item", sort=False)["tag"].agg(", ".join)
    return items.assign(tags=items["item_id"].map(joined).fillna("").astype(object))


def read_item_metadata(
    df: pd.DataFrame,
    id_col: str,
    title_col: str | None = None,
    genres_col: str | None = None,
    *,
    year_col: str | None = None,
    tags_col: str | None = None,
    source: str = "the item file",
) -> pd.DataFrame:
    """Normalise an item table to columns item_id, title, genres (tuples), year (float) [, tags].

    Genres split on ``|``, ``,`` or ``;``; the year comes from ``year_col`` or, failing that,
    from a "(1995)" at the end of the title. Rows without an id are dropped (metadata is optional).
    """
    for role, col in (("id", id_col), ("title", title_col), ("genres", genres_col), ("year", year_col),
                      ("tags", tags_col)):
        if col is not None and col not in df.columns:
            raise DataError(
                f"{source} has no {role} column {col!r}; its columns are {[str(c) for c in df.columns]}. "
                f"Pick the {role} column from those."
            )
    df = df[df[id_col].notna()].reset_index(drop=True)
    ids = validate._normalise_ids(df[id_col]) if len(df) else np.array([], dtype=object)
    titles = df[title_col].fillna("").astype(str).str.strip() if title_col else pd.Series(ids).astype(str)
    year = _year_from_title(titles) if title_col else pd.Series(np.nan, index=df.index)
    if year_col is not None:
        year = pd.to_numeric(df[year_col], errors="coerce").fillna(year)
    out = pd.DataFrame({
        "item_id": ids,
        "title": titles.to_numpy(dtype=object),
        "genres": _split_genres(df[genres_col]) if genres_col else [()] * len(df),
        "year": year.to_numpy(np.float64),
    })
    if tags_col is not None:
        out["tags"] = df[tags_col].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    return out


# ====================================================================== generic tables
def read_table(
    file_or_bytes,
    filename: str | None = None,
    *,
    sep: str | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """Read an uploaded or local CSV / TSV / whitespace / Parquet table into a DataFrame.

    ``file_or_bytes`` may be bytes, a path or a binary file object. The delimiter is sniffed
    (``sep`` overrides it); a first row that holds a number is data, not a header, and the
    columns are then named col1..colN. Inputs over ``max_bytes`` (default: MAX_UPLOAD_BYTES,
    read at call time so it can be configured) are refused.
    """
    raw, filename = _read_bytes(file_or_bytes, filename, max_bytes)
    if not raw.strip():
        raise DataError(f"{filename} is empty ({len(raw)} bytes). Upload a file with one interaction per row.")
    if raw[:4] == b"PAR1" or filename.lower().endswith((".parquet", ".pq")):
        table = _read_parquet(raw, filename)
    else:
        table = _read_text_table(raw, filename, sep)
    if len(table) == 0:
        raise DataError(
            f"{filename} has a header ({', '.join(map(str, table.columns))}) but no data rows. "
            "Upload the file with its interactions."
        )
    return table


def _read_bytes(file_or_bytes, filename: str | None, max_bytes: int | None) -> tuple[bytes, str]:
    limit = max_bytes if max_bytes is not None else MAX_UPLOAD_BYTES
    if isinstance(file_or_bytes, (bytes, bytearray, memoryview)):
        raw, filename = bytes(file_or_bytes), filename or "the upload"
    elif isinstance(file_or_bytes, (str, Path)):
        path = Path(file_or_bytes)
        filename = filename or path.name
        if not path.is_file():
            what = "is a folder, not a table (load it as MovieLens)" if path.is_dir() else "does not exist"
            raise DataError(f"{filename}: {str(path)!r} {what}. Check the path.")
        _check_size(path.stat().st_size, limit, filename)
        raw = path.read_bytes()
    elif hasattr(file_or_bytes, "read"):
        filename = filename or Path(str(getattr(file_or_bytes, "name", "the upload"))).name
        # read one byte past the limit: enough to know it is too large without reading it all
        raw = file_or_bytes.read(limit + 1)
    else:
        raise DataError(f"Cannot read a table from {type(file_or_bytes).__name__}; pass bytes, a path or a file.")
    _check_size(len(raw), limit, filename)
    return raw, filename


def _check_size(size: int, limit: int, filename: str) -> None:
    if size > limit:
        raise DataError(
            f"{filename} is too large: {size / 1e6:,.1f} MB, over the {limit / 1e6:,.0f} MB upload limit "
            "(MAX_UPLOAD_BYTES). Filter or sample it first (e.g. recent interactions, or a k-core), "
            "or load it from a path on the server."
        )


def _read_parquet(raw: bytes, filename: str) -> pd.DataFrame:
    if raw[:4] != b"PAR1":
        raise DataError(
            f"{filename} is named like a Parquet file but does not start with Parquet's 'PAR1' marker. "
            "Re-export it as Parquet, or upload it as CSV."
        )
    # Parquet is a columnar data format: reading it executes nothing from the file
    with _parsing(filename, "Parquet"):
        table = pd.read_parquet(io.BytesIO(raw))
    table.columns = [str(c).strip() for c in table.columns]
    _reject_duplicate_names(list(table.columns), filename)
    return table


_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive or an Excel workbook"),
    (b"\x1f\x8b", "a gzip archive"), (b"\x80", "a Python pickle"), (b"\xd0\xcf\x11\xe0", "an old Excel/Office file"),
)


def _reject_binary(head: bytes, filename: str) -> None:
    kind = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    if kind is None and b"\x00" not in head and _control_share(head) < 0.02:
        return
    hint = f" (it looks like {kind})" if kind else ""
    raise DataError(
        f"{filename}: this does not look like a text table{hint}; it contains binary data. Upload the "
        "interactions as CSV, TSV or Parquet (from a spreadsheet: File > Save as > CSV)."
    )


def _control_share(head: bytes) -> float:
    """Share of bytes that are control characters other than tab / newline / carriage return."""
    if not head:
        return 0.0
    arr = np.frombuffer(head, dtype=np.uint8)
    control = (arr < 32) & ~np.isin(arr, (9, 10, 13)) | (arr == 127)
    return float(control.mean())


def _guess_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        # incremental: a multi-byte character cut at the end of the sample is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"  # Windows exports; decodes any byte, so it never fails


def _sample_lines(raw: bytes, encoding: str) -> list[str]:
    head = raw[:SNIFF_BYTES]
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    if len(raw) > SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut in half
    return [line for line in lines if line.strip()][:SNIFF_LINES]


def _sniff_delimiter(lines: list[str]) -> str:
    """The delimiter that splits every sampled line into the same number (> 1) of fields."""
    if all("::" in line for line in lines):
        return "::"  # MovieLens 1M/10M style
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
        if _field_count(lines, sniffed) > 1:
            return sniffed
    except csv.Error:
        pass
    # the Sniffer gives up on short or irregular samples; prefer the delimiter with the most
    # consistent fields, then the one present on the most lines (so the parser names the bad line)
    counts = {d: _field_count(lines, d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] > 1:
        return best
    widths = {len(line.split()) for line in lines}
    if len(widths) == 1 and widths.pop() > 1:
        return r"\s+"
    present = {d: sum(d in line for line in lines) for d in DELIMITERS}
    common = max(present, key=present.get)
    return common if present[common] > len(lines) / 2 else ","


def _field_count(lines: list[str], delimiter: str) -> int:
    """Fields per line when every line has the same number, else 0."""
    widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
    return widths.pop() if len(widths) == 1 else 0


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _split_line(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return line.split()
    return next(csv.reader([line], delimiter=sep))


def _has_header(first: list[str]) -> bool:
    # a column name is practically never a bare number, while interaction rows nearly always hold one
    return not any(_NUMBER.match(field.strip().strip("\"'")) for field in first)


def _reject_duplicate_names(names: list[str], filename: str) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{filename} has two columns named {name!r} (columns {seen[name]} and {position}). "
                "Rename one so that every column has a distinct name."
            )
        seen[name] = position


def _read_text_table(raw: bytes, filename: str, sep: str | None) -> pd.DataFrame:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export: full of NUL bytes, yet a text table
        with _parsing(filename, "UTF-16 text"):
            raw = raw.decode("utf-16").encode("utf-8")
    _reject_binary(raw[:SNIFF_BYTES], filename)
    encoding = _guess_encoding(raw[:SNIFF_BYTES])
    lines = _sample_lines(raw, encoding)
    sep = sep or _sniff_delimiter(lines)
    if sep == "::":
        # the C parser needs a one-character delimiter; a tab never occurs inside such files
        raw, lines, sep = raw.replace(b"::", b"\t"), [line.replace("::", "\t") for line in lines], "\t"
    first = [field.strip() for field in _split_line(lines[0], sep)]
    header = _has_header(first)
    if header:
        _reject_duplicate_names(first, filename)
    table = _drop_empty_columns(_parse_csv(raw, filename, sep, header, encoding), header)
    if not header:
        table.columns = [f"col{i + 1}" for i in range(table.shape[1])]
    else:
        table.columns = [str(c).strip() for c in table.columns]
    if table.shape[1] == 1:
        _explain_single_column(table, lines, filename, sep)
    return table


def _parse_csv(raw: bytes, filename: str, sep: str, header: bool, encoding: str) -> pd.DataFrame:
    options = {"sep": sep, "header": 0 if header else None, "skip_blank_lines": True}
    if sep != r"\s+":
        options["skipinitialspace"] = True
    try:
        try:
            return pd.read_csv(io.BytesIO(raw), encoding=encoding, **options)
        except UnicodeDecodeError:
            # the sample was UTF-8 but a later byte is not: Windows exports mix like that
            return pd.read_csv(io.BytesIO(raw), encoding="latin-1", **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{filename} is empty. Upload a file with one interaction per row.") from None
    except pd.errors.ParserError as err:
        raise DataError(_explain_parser_error(str(err), filename, sep)) from None


def _explain_parser_error(message: str, filename: str, sep: str) -> str:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    name = DELIMITER_NAMES.get(sep, repr(sep))
    if match:
        expected, line, saw = match.groups()
        return (
            f"{filename}: line {line} has {saw} fields where the lines before it have {expected} "
            f"(delimiter: {name}). Quote values that contain the delimiter, or remove the stray "
            f"delimiter from line {line}."
        )
    return f"{filename} could not be parsed with the {name} delimiter: {message}"


def _drop_empty_columns(table: pd.DataFrame, header: bool) -> pd.DataFrame:
    """A trailing delimiter on every line makes an empty, nameless last column; it carries nothing."""
    while table.shape[1] > 1:
        last = table.columns[-1]
        nameless = not header or str(last).startswith("Unnamed:")
        if not (nameless and table[last].isna().all()):
            break
        table = table.drop(columns=[last])
    return table


def _explain_single_column(table: pd.DataFrame, lines: list[str], filename: str, sep: str) -> None:
    used = DELIMITER_NAMES.get(sep, repr(sep))
    others = [d for d in (*DELIMITERS, ":") if d != sep]
    present = {d: sum(d in line for line in lines) for d in others}
    likely = max(present, key=present.get)
    if present[likely] >= max(1, len(lines) / 2):
        raise DataError(
            f"{filename} was read as a single column with the {used} delimiter, but its lines contain "
            f"{likely!r}: it probably uses the {DELIMITER_NAMES[likely]} ({likely!r}) as its delimiter. "
            "Save it with one of comma, tab, semicolon or | as the delimiter (or choose that delimiter)."
        )
    raise DataError(
        f"{filename} has a single column ({table.columns[0]}). An interaction table needs at least a user "
        "and an item column, separated by a delimiter (comma, tab, semicolon or |)."
    )


def _normalised(name) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _match_columns(columns: list[str], vocabulary: Mapping[str, tuple[str, ...]]) -> dict[str, str | None]:
    """Exact names first (in the vocabulary's order of preference), then names that contain one."""
    keys = {c: _normalised(c) for c in columns}
    chosen: dict[str, str | None] = dict.fromkeys(vocabulary)
    taken: set[str] = set()
    for exact in (True, False):
        for role, names in vocabulary.items():
            if chosen[role] is not None:
                continue
            for name in names:
                hit = next(
                    (c for c in columns if c not in taken
                     and (keys[c] == name if exact else len(name) > 2 and name in keys[c])),
                    None,
                )
                if hit is not None:
                    chosen[role] = hit
                    taken.add(hit)
                    break
    return chosen


def guess_columns(df: pd.DataFrame) -> dict[str, str | None]:
    """Guess which columns hold user, item, rating and timestamp (None where there is none).

    Names decide first (userId, customer, movieId, product, stars, ts, date, ...). Without a
    match, user and item are the first two unused columns, rating a later numeric column with
    a small range, and timestamp a later column of epoch seconds or dates.
    """
    columns = [str(c) for c in df.columns]
    chosen = _match_columns(columns, COLUMN_NAMES)
    unused = [c for c in columns if c not in chosen.values()]
    for role in ("user", "item"):
        if chosen[role] is None and unused:
            chosen[role] = unused.pop(0)
    if chosen["timestamp"] is None:
        chosen["timestamp"] = next((c for c in unused if _looks_like_time(df[c])), None)
        unused = [c for c in unused if c != chosen["timestamp"]]
    if chosen["rating"] is None:
        chosen["rating"] = next((c for c in unused if _looks_like_rating(df[c])), None)
    return chosen


def _looks_like_time(values: pd.Series) -> bool:
    sample = values.dropna().head(200)
    if sample.empty:
        return False
    numeric = pd.to_numeric(sample, errors="coerce")
    if numeric.notna().all():
        return bool(numeric.min() > 1e8)  # epoch seconds after 1973; ratings and ids stay below
    if sample.astype(str).str.fullmatch(r"[\d\s:./TZ+-]+").all():
        return bool(pd.to_datetime(sample, errors="coerce", format="mixed", utc=True).notna().all())
    return False


def _looks_like_rating(values: pd.Series) -> bool:
    numeric = pd.to_numeric(values.dropna().head(1000), errors="coerce")
    return bool(len(numeric) and numeric.notna().all() and numeric.abs().max() <= 100)


def guess_item_columns(df: pd.DataFrame) -> dict[str, str | None]:
    """Guess id, title, genres, year and tags columns of an item metadata table."""
    columns = [str(c) for c in df.columns]
    vocabulary = {"id": COLUMN_NAMES["item"], **ITEM_COLUMN_NAMES}
    chosen = _match_columns(columns, vocabulary)
    if chosen["id"] is None and columns:
        chosen["id"] = next((c for c in columns if c not in chosen.values()), None)
    return chosen


def from_table(
    df: pd.DataFrame,
    mapping: Mapping[str, str | None],
    items: pd.DataFrame | None = None,
    item_mapping: Mapping[str, str | None] | None = None,
    feedback: Feedback | None = None,
    positive_threshold: float | None = None,
    duplicates: DuplicatePolicy = "last",
    name: str = "uploaded table",
) -> Dataset:
    """Build a Dataset from a table and a role -> column mapping (user, item, rating, timestamp).

    ``items`` is an optional item table; ``item_mapping`` names its id, title, genres, year and
    tags columns (guessed when omitted). Errors name ``name`` (use the file name).
    """
    mapping = {role: (col or None) for role, col in dict(mapping).items()}
    unknown = set(mapping) - {"user", "item", "rating", "timestamp"}
    if unknown:
        raise DataError(f"Unknown role(s) {sorted(unknown)} in the column mapping; use user, item, rating, timestamp.")
    for role in ("user", "item"):
        if not mapping.get(role):
            raise DataError(f"{name}: no {role} column is mapped. Pick the column that holds the {role} id.")
    meta = None
    if items is not None:
        chosen = dict(item_mapping) if item_mapping else guess_item_columns(items)
        meta = read_item_metadata(
            items, chosen.get("id"), chosen.get("title"), chosen.get("genres"),
            year_col=chosen.get("year"), tags_col=chosen.get("tags"), source=f"{name} item metadata",
        )
    with _about(name):
        return Dataset.from_frame(
            df, user=mapping["user"], item=mapping["item"], rating=mapping.get("rating"),
            timestamp=mapping.get("timestamp"), items=meta, item_key="item_id", feedback=feedback,
            positive_threshold=positive_threshold, duplicates=duplicates, name=name,
        )


# ====================================================================== preprocessing
def k_core(ds: Dataset, k_user: int = 5, k_item: int = 5) -> Dataset:
    """Keep only users with >= ``k_user`` and items with >= ``k_item`` interactions, iteratively.

    Dropping a sparse item can push a user below ``k_user`` and vice versa, so the filter
    repeats until nothing changes. Codes are re-encoded densely and metadata rows follow.
    """
    if k_user < 0 or k_item < 0:
        raise DataError(f"k-core thresholds must be >= 0; got k_user={k_user}, k_item={k_item}.")
    keep = _k_core_mask(ds.user, ds.item, ds.n_users, ds.n_items, k_user, k_item)
    if not keep.any():
        raise DataError(
            f"{ds.name}: nothing is left after a k-core filter with k_user={k_user}, k_item={k_item} "
            f"(the most active user has {int(ds.user_activity.max(initial=0))} interactions, the most "
            f"popular item {int(ds.item_popularity.max(initial=0))}). Lower k."
        )
    users = np.unique(ds.user[keep])
    items = np.unique(ds.item[keep])
    user_code = np.full(ds.n_users, -1, np.int64)
    user_code[users] = np.arange(len(users))
    item_code = np.full(ds.n_items, -1, np.int64)
    item_code[items] = np.arange(len(items))
    core = replace(
        ds,
        user=user_code[ds.user[keep]],
        item=item_code[ds.item[keep]],
        rating=ds.rating[keep],
        timestamp=None if ds.timestamp is None else ds.timestamp[keep],
        user_ids=ds.user_ids[users],
        item_ids=ds.item_ids[items],
        items=_take_rows(ds.items, items),
        users=_take_rows(ds.users, users),
        name=f"{ds.name} ({k_user},{k_item})-core",
        _cache={},
    )
    validate.enough_entities(core)
    return core


def _k_core_mask(user, item, n_users: int, n_items: int, k_user: int, k_item: int) -> np.ndarray:
    keep = np.ones(len(user), dtype=bool)
    while True:
        user_counts = np.bincount(user[keep], minlength=n_users)
        item_counts = np.bincount(item[keep], minlength=n_items)
        still = keep & (user_counts[user] >= k_user) & (item_counts[item] >= k_item)
        if still.sum() == keep.sum():
            return still
        keep = still


def _take_rows(meta: pd.DataFrame | None, codes: np.ndarray) -> pd.DataFrame | None:
    if meta is None:
        return None
    taken = meta.iloc[codes].reset_index(drop=True)
    taken.index.name = meta.index.name
    return taken
