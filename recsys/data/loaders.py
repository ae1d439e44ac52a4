"""Turn files into Datasets: the bundled sample, MovieLens folders and zips, generic tables.

Every problem a person can fix surfaces as a :class:`DataError` that names the file (and
the column, row or delimiter) and says what to do. Uploads are only ever parsed as text or
Parquet: nothing is unpickled, evaluated or extracted to disk.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from contextvars import ContextVar
from dataclasses import replace
from itertools import islice
from pathlib import Path, PurePath, PurePosixPath
from typing import IO

import numpy as np
import pandas as pd

from recsys.data import validate
from recsys.data.dataset import Dataset, DuplicatePolicy, Feedback
from recsys.data.errors import MAX_MESSAGE_CHARS, DataError, excerpt, shorten

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "sample_data"
SAMPLE_NAME = "Sample catalogue (synthetic)"

# The budgets in force are ``recsys.hosting.config().limits`` (or a ``limits=`` argument), read
# at call time and checked while reading. These two names are the local defaults, kept for code
# that imports them; changing them changes nothing (set RECSYS_LIMIT_UPLOAD_BYTES etc. instead).
MAX_UPLOAD_BYTES = 500 * 1024**2
MAX_MEMBER_BYTES = 4 * 1024**3
# How much of a text file the delimiter / header / encoding guesses look at.
SNIFF_BYTES = 64 * 1024
SNIFF_LINES = 50
SNIFFER_CHARS = 4096
# Archive members and folder entries beyond these are refused: a MovieLens folder has a few dozen.
MAX_MEMBERS = 10_000
# Members smaller than this are never refused for their compression ratio: a small file of one
# repeated value compresses 1000x and is harmless.
RATIO_FLOOR = 1024**2
# Members are read (and counted) in chunks of this size, never in one call.
CHUNK = 1024**2
# A file name as messages show it is cut to this many characters.
NAME_CHARS = 80

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".dat", ".parquet", ".pq")
ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar")
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


# ====================================================================== budgets and guards
_ACTIVE_LIMITS: ContextVar = ContextVar("recsys_data_limits", default=None)


def _limits():
    """The budgets of the load in progress (set by the entry point), else the configured ones."""
    return _ACTIVE_LIMITS.get() or validate.current_limits()


def _guarded(func):
    """An entry point: fixes the budgets for the whole load (``limits=``) and turns what escapes
    into DataErrors a stranger may read: OS errors name the file, never its path, and no message
    grows past MAX_MESSAGE_CHARS."""

    @functools.wraps(func)
    def wrapper(*args, limits=None, **kw):
        token = _ACTIVE_LIMITS.set(limits if limits is not None else _limits())
        try:
            return func(*args, **kw)
        except DataError as err:
            message = str(err)
            if len(message) > MAX_MESSAGE_CHARS:
                raise DataError(shorten(message)) from None
            raise
        except OSError as err:
            raise DataError(_os_message(err)) from None
        finally:
            _ACTIVE_LIMITS.reset(token)

    return wrapper


def _os_message(err: OSError, name: str | None = None) -> str:
    name = name or (_file_label(err.filename) if err.filename else "the file")
    if isinstance(err, PermissionError):
        return (f"{name} cannot be read (permission denied). Ask the server's owner to make it readable, "
                "or upload the file instead.")
    reason = (err.strerror or type(err).__name__).lower()
    return f"{name} cannot be read ({reason}). Check the file, or upload it instead."


def _file_label(name) -> str:
    """A file name as a message may show it: never a directory path, never very long."""
    text = str(name)
    if os.path.isabs(text) or "\\" in text or ".." in text.split("/"):
        text = PurePath(text).name or "the file"
    if len(text) > NAME_CHARS:
        suffix = PurePath(text).suffix[:10]
        text = f"{text[:NAME_CHARS - 12]}…{suffix}"
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _short_error(err: BaseException, limit: int = 160) -> str:
    """A library's error text for a message: absolute paths reduced to names, at most ``limit`` chars."""
    text = re.sub(r"(?:[A-Za-z]:)?(?:[/\\][^\s'\"/\\:]+){2,}", lambda m: PurePath(m.group(0)).name, str(err))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


# ====================================================================== entry points
@_guarded
def load(path_or_name: str | Path | None = "sample", **kw) -> Dataset:
    """Load a dataset by name or path.

    ``"sample"`` / ``None``: the bundled synthetic catalogue. A folder or ``.zip``: MovieLens
    (100K, 1M, 10M, latest, 20M, 25M, 32M), told apart by its files. A ``.csv`` / ``.tsv`` /
    ``.txt`` / ``.parquet`` file: a generic interaction table with guessed columns
    (override with ``mapping={"user": ..., "item": ..., ...}``). Keyword arguments go to the
    loader: ``feedback``, ``positive_threshold``, ``name``, and for tables ``mapping``,
    ``items``, ``item_mapping``, ``duplicates``, ``max_bytes``. ``limits`` (a
    :class:`recsys.hosting.Limits`) replaces the configured budgets for this load.
    """
    if path_or_name is None or str(path_or_name).strip().lower() == "sample":
        return load_sample(**kw)
    path = Path(str(path_or_name).strip()).expanduser()
    if not _exists(path):
        raise DataError(
            f"No file or folder at {_display(path)!r}. Check the path (it is read on the server), "
            "or use 'sample' for the bundled dataset."
        )
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".zip":
        return load_movielens(path, **kw)
    if suffix in TABLE_SUFFIXES:
        return load_table_file(path, **kw)
    raise DataError(
        f"{_file_label(path.name)}: unsupported file type {excerpt(path.suffix or '(no extension)', 12)}. Load a "
        f"MovieLens folder or .zip, or a table ending in {', '.join(TABLE_SUFFIXES)} (export spreadsheets as CSV)."
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except PermissionError:
        raise DataError(_os_message(PermissionError(), _file_label(path.name))) from None
    except OSError:
        return False  # a symlink loop or a name too long: nothing loadable is there


def _display(path: Path) -> str:
    """A server path as a message shows it: relative to a data root, else its name."""
    try:
        from recsys.hosting import display_path

        return _file_label(display_path(path))
    except Exception:  # noqa: BLE001 - a message must still be made if the configuration is broken
        return _file_label(path.name)


@_guarded
def load_sample(folder: str | Path | None = None, **kw) -> Dataset:
    """The bundled synthetic catalogue (``sample_data/ratings.csv`` and ``items.csv``)."""
    folder = Path(folder) if folder is not None else SAMPLE_DIR
    if not (folder / "ratings.csv").is_file():
        raise DataError(
            f"The bundled sample is missing: expected {_file_label(folder.name)}/ratings.csv and items.csv. "
            "Regenerate it with `python -m recsys.data.synthetic --out sample_data`."
        )
    kw.setdefault("name", SAMPLE_NAME)
    if folder != SAMPLE_DIR:
        return _load_bundled_layout(_Folder(folder), "ratings.csv", **kw)
    # the app's own file, not a visitor's: a host who lowers the budgets for uploads (rows, bytes)
    # must still be able to open the default dataset
    from recsys.hosting import LOCAL_LIMITS

    token = _ACTIVE_LIMITS.set(LOCAL_LIMITS)
    try:
        return _load_bundled_layout(_Folder(folder), "ratings.csv", **kw)
    finally:
        _ACTIVE_LIMITS.reset(token)


@_guarded
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


@_guarded
def load_mapped(descriptor: Mapping) -> Dataset:
    """Load an uploaded table from the description the Data page stores.

    Keys: ``path``, ``filename``, ``mapping`` (role -> column; a dict or the (key, value)
    pairs the UI freezes it into), optional ``feedback``, ``positive_threshold``,
    ``duplicates``, ``items_path``, ``items_filename``, ``item_mapping``.
    """
    path = Path(descriptor["path"])
    filename = _file_label(descriptor.get("filename") or path.name)
    table = read_table(path, filename)
    items = None
    if descriptor.get("items_path"):
        items_path = Path(descriptor["items_path"])
        items = read_table(items_path, _file_label(descriptor.get("items_filename") or items_path.name))
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
    """Parser exceptions (pandas, csv, codecs, zip) become DataErrors that say what format was expected."""
    try:
        yield
    except DataError:
        raise
    except OSError as err:
        raise DataError(_os_message(err, source)) from None
    # zipfile raises NotImplementedError for a compression method it does not know, and
    # RuntimeError for encrypted members: both are properties of the file, not of this code
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
        raise DataError(
            f"{source} is damaged or cannot be unpacked ({_short_error(err, 80)}). Re-create or re-download it."
        ) from None
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, UnicodeError, csv.Error) as err:
        raise DataError(f"{source} could not be read as {expected}: {_short_error(err)}") from None


# ====================================================================== folders and zips
class _Budgeted(io.RawIOBase):
    """A file read in chunks that counts bytes and lines as they stream, and stops at the budget.

    Nothing is trusted up front (a zip's declared sizes can lie): the decompressed bytes of this
    member, of the whole archive (``shared``), the inflation over ``compressed`` bytes and the
    lines (rows) are counted as pandas or the caller reads, and the read stops with a DataError the
    moment one passes its limit.
    """

    def __init__(self, raw: IO[bytes], name: str, *, limits, compressed: int | None = None,
                 shared: list[int] | None = None):
        super().__init__()
        self.raw, self.name, self.limits = raw, name, limits
        self.compressed, self.shared = compressed, shared
        self.bytes = 0
        self.lines = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        data = self.raw.read(min(len(view), CHUNK))
        self._count(data)
        view[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            data = self.raw.read(min(size, CHUNK)) if size else b""
            self._count(data)
            return data
        parts = []
        while chunk := self.raw.read(CHUNK):
            self._count(chunk)
            parts.append(chunk)
        return b"".join(parts)

    def _count(self, data: bytes) -> None:
        limits = self.limits
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        if self.bytes > limits.table_bytes:
            raise DataError(
                f"{self.name} unpacks to more than {_mb(limits.table_bytes)}, the limit for one table "
                "(RECSYS_LIMIT_TABLE_BYTES). Load a smaller file, or sample it first."
            )
        if self.compressed is not None and self.bytes > RATIO_FLOOR \
                and self.bytes > limits.compression_ratio * max(self.compressed, 1):
            raise DataError(
                f"{self.name} inflates more than {limits.compression_ratio:,.0f}x ({self.compressed:,} bytes "
                f"packed, over {self.bytes:,} unpacked so far): it looks like a zip bomb and is refused."
            )
        if self.shared is not None:
            self.shared[0] += len(data)
            if self.shared[0] > limits.archive_bytes:
                raise DataError(
                    f"The archive unpacks to more than {_mb(limits.archive_bytes)} in all (reading {self.name}), "
                    "the limit for one archive (RECSYS_LIMIT_ARCHIVE_BYTES). Load a smaller archive."
                )
        if self.lines > limits.rows + 1:
            raise DataError(
                f"{self.name} has more than {limits.rows:,} rows, the limit (RECSYS_LIMIT_ROWS). "
                "Sample or k-core filter it first."
            )

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            super().close()


def _columns(table: pd.DataFrame, limit: int = 12) -> str:
    """A table's column names for a message: quoted, cut, at most ``limit`` of them."""
    names = [excerpt(str(c), 30) for c in list(table.columns)[:limit]]
    more = f" and {table.shape[1] - limit} more" if table.shape[1] > limit else ""
    return f"[{', '.join(names)}{more}]"


def _mb(size: float) -> str:
    return f"{size / 1024**2:,.0f} MB" if size >= 1024**2 else f"{size:,.0f} bytes"


class _Folder:
    """Files of a folder (and two levels below), addressed by relative posix paths."""

    max_depth = 3
    max_files = MAX_MEMBERS  # a MovieLens folder has a few dozen; this refuses a wrong pick like $HOME

    def __init__(self, root: Path):
        self.root = root
        self.label = _file_label(root.name or "the folder")
        try:
            found = list(islice(_walk(root, self.max_depth, self.max_files + 1), self.max_files + 1))
        except PermissionError:
            raise DataError(_os_message(PermissionError(), f"The folder {self.label}")) from None
        except OSError as err:
            raise DataError(_os_message(err, f"The folder {self.label}")) from None
        if len(found) > self.max_files:
            raise DataError(
                f"The folder {self.label} holds more than {self.max_files:,} files. Point at the MovieLens "
                "folder itself (the one holding u.data, ratings.dat or ratings.csv), not a folder above it."
            )
        self.members = sorted(p.relative_to(root).as_posix() for p in found)

    def open(self, member: str) -> IO[bytes]:
        limits = _limits()
        path = self.root / member
        name = self.describe(member)
        try:
            size = path.stat().st_size
            if size > limits.table_bytes:
                raise DataError(
                    f"{name} is {_mb(size)}, over the {_mb(limits.table_bytes)} limit for one table "
                    "(RECSYS_LIMIT_TABLE_BYTES). Load a smaller file, or sample it first."
                )
            return _Budgeted(path.open("rb"), name, limits=limits)
        except OSError as err:
            raise DataError(_os_message(err, name)) from None

    def describe(self, member: str) -> str:
        return f"{self.label}/{member}"

    def close(self) -> None:
        pass  # nothing held open; present so folders and zips are used alike


def _walk(root: Path, depth: int, budget: int) -> Iterator[Path]:
    # bounded, hidden-free and symlink-loop-free (linked folders are not followed), so pointing at
    # a big folder neither crawls the disk nor loops; unreadable subfolders are skipped
    with os.scandir(root) as scan:
        entries = sorted(islice(scan, budget), key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith((".", "__MACOSX")):
            continue
        try:
            if entry.is_file():
                yield Path(entry.path)
            elif entry.is_dir(follow_symlinks=False) and depth > 1:
                try:
                    yield from _walk(Path(entry.path), depth - 1, budget)
                except PermissionError:
                    continue
        except OSError:
            continue  # a dangling or looping link: nothing to read there


def _zip_directory_size(path: Path) -> tuple[int, int] | None:
    """(members, central directory bytes) from the end record, read before zipfile parses the directory."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    entries, directory_bytes = struct.unpack("<xxxxxxxxxxHI", tail[at:at + 16])
    return entries, directory_bytes


class _Zip:
    """Members of a zip archive, streamed and counted in memory (never extracted: no path traversal)."""

    def __init__(self, path: Path):
        limits = _limits()
        self.name = _file_label(path.name)
        self.label = _file_label(path.stem)
        size = path.stat().st_size
        if size > limits.archive_bytes:
            raise DataError(
                f"{self.name} is too large: {_mb(size)}, over the {_mb(limits.archive_bytes)} limit for one "
                "archive (RECSYS_LIMIT_ARCHIVE_BYTES). Load a smaller archive, or unpack it and load the folder."
            )
        directory = _zip_directory_size(path)
        if directory is not None and (directory[0] > MAX_MEMBERS or directory[0] == 0xFFFF
                                      or directory[1] > MAX_MEMBERS * 400):
            raise DataError(
                f"{self.name} holds too many files ({directory[0]:,} or more; at most {MAX_MEMBERS:,}). A MovieLens "
                "zip holds a few dozen: re-create the zip from the MovieLens folder alone."
            )
        try:
            self.archive = zipfile.ZipFile(path)
        # NotImplementedError: zipfile's answer to a compression method it does not support
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, NotImplementedError):
            raise DataError(f"{self.name} is not a valid zip archive (it may be truncated). Re-download it.") from None
        infos = self.archive.infolist()
        if len(infos) > MAX_MEMBERS:
            self.archive.close()
            raise DataError(
                f"{self.name} holds {len(infos):,} files; at most {MAX_MEMBERS:,} are opened. Re-create the zip "
                "from the MovieLens folder alone."
            )
        unsafe = next((i.filename for i in infos if _unsafe_member(i.filename)), None)
        if unsafe is not None:
            self.archive.close()
            raise DataError(
                f"{self.name} holds a file named {excerpt(unsafe)}, which points outside the archive "
                "(an absolute path or '..'). Such archives are refused; re-create the zip from the folder."
            )
        self.members = sorted(
            info.filename for info in infos
            if not info.is_dir() and not info.filename.startswith("__MACOSX/")
            and not PurePosixPath(info.filename).name.startswith(".")
        )
        self.unpacked = [0]  # bytes unpacked from all members so far, counted as they stream

    def open(self, member: str) -> IO[bytes]:
        limits = _limits()
        info = self.archive.getinfo(member)
        name = self.describe(member)
        if info.file_size > limits.table_bytes:
            raise DataError(
                f"{name} would unpack to {_mb(info.file_size)}, over the {_mb(limits.table_bytes)} limit for "
                "one table (RECSYS_LIMIT_TABLE_BYTES). Load a smaller archive."
            )
        if info.file_size > RATIO_FLOOR and info.file_size > limits.compression_ratio * max(info.compress_size, 1):
            raise DataError(
                f"{name} would inflate {info.file_size / max(info.compress_size, 1):,.0f}x ({info.compress_size:,} "
                f"bytes to {info.file_size:,}); more than {limits.compression_ratio:,.0f}x looks like a zip bomb "
                "and is refused."
            )
        try:
            raw = self.archive.open(info)
        except NotImplementedError:  # zipfile: unknown compression method (a RuntimeError subclass, so first)
            raise DataError(f"{name} uses a compression method the server cannot unpack. Re-create the zip with "
                            "ordinary (deflate) compression.") from None
        except RuntimeError as err:
            if "encrypted" in str(err):
                raise DataError(f"{name} is encrypted (password-protected); the server cannot open it. "
                                "Re-create the zip without a password.") from None
            raise DataError(f"{name} cannot be unpacked ({_short_error(err, 80)}). Re-create the zip.") from None
        except (zipfile.BadZipFile, zlib.error, ValueError, EOFError) as err:
            raise DataError(f"{name} cannot be unpacked ({_short_error(err, 80)}). Re-create the zip.") from None
        return _Budgeted(raw, name, limits=limits, compressed=info.compress_size, shared=self.unpacked)

    def describe(self, member: str) -> str:
        return f"{self.name}/{_file_label(member)}"

    def close(self) -> None:
        self.archive.close()


def _unsafe_member(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or bool(re.match(r"^[A-Za-z]:", name)) or "\x00" in name


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


@_guarded
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


@_guarded
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
            raise DataError(f"{_file_label(path.name)} has no {excerpt(fold, 12)}.test; the canonical folds are "
                            "u1…u5, ua and ub.")
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
    shown = [_file_label(m) for m in source.members[:8]]
    found = ", ".join(shown) or "nothing"
    more = f" and {len(source.members) - 8} more" if len(source.members) > 8 else ""
    nested = next((m for m in source.members if m.lower().endswith(ARCHIVE_SUFFIXES)), None)
    if nested is not None:
        raise DataError(
            f"{_file_label(path.name)} holds another archive ({_file_label(PurePosixPath(nested).name)}) but no "
            "MovieLens files; archives inside archives are not opened. Load the inner archive itself."
        )
    raise DataError(
        f"{_file_label(path.name)} holds no recognised MovieLens files (found: {found}{more}). Expected "
        f"{EXPECTED_MOVIELENS}. For another interaction table, upload the .csv/.tsv/.parquet itself."
    )


def _build(frame: pd.DataFrame, source_name: str, **kw) -> Dataset:
    with _about(source_name):
        return Dataset.from_frame(frame, duplicates="last", limits=_limits(), **kw)


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
    titles = readable_titles(raw[1].fillna("").str.strip())
    _check_cells(titles, "title", where)
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
    items = _movie_metadata(movies["item_id"], movies["title"], movies["genres"], source.describe(member))
    tags_member = _find(source, "tags.dat", near=near)
    if tags_member is not None:
        tags = _read_dat(source, tags_member, ["user_id", "item_id", "tag", "timestamp"], "tags.dat")
        _check_cells(tags["tag"].fillna(""), "tag", source.describe(tags_member))
        items = _attach_tags(items, pd.to_numeric(tags["item_id"], errors="coerce"), tags["tag"])
    return items


def _load_ml_csv(source, member: str, *, feedback, positive_threshold, name) -> Dataset:
    where = source.describe(member)
    with _parsing(where, "MovieLens ratings.csv (userId,movieId,rating,timestamp)"), source.open(member) as fh:
        ratings = pd.read_csv(fh)
    missing = [c for c in ("userId", "movieId", "rating") if c not in ratings.columns]
    if missing:
        raise DataError(
            f"{where} lacks the column(s) {missing}; its columns are {_columns(ratings)}. MovieLens "
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
        raise DataError(f"{where} needs the columns movieId and title; its columns are {_columns(movies)}.")
    genres = movies["genres"] if "genres" in movies else pd.Series("", index=movies.index)
    items = _movie_metadata(movies["movieId"], movies["title"], genres, where)
    tags_member = _find(source, "tags.csv", near=near)
    if tags_member is not None:
        with _parsing(source.describe(tags_member), "MovieLens tags.csv"), source.open(tags_member) as fh:
            tags = pd.read_csv(fh, usecols=["movieId", "tag"], dtype={"tag": str})
        _check_cells(tags["tag"].fillna(""), "tag", source.describe(tags_member))
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


# MovieLens files articles at the end ("English Patient, The (1996)"): moved back to the front on load. Only a
# comma plus one of these articles, right before the year or alternative-title brackets or the end, qualifies,
# so titles such as "Paris, Texas (1984)" or "Sex, Lies, and Videotape" stay as they are.
_SUFFIX_ARTICLE = re.compile(r"^(?P<body>.+?), (?P<article>The|An|A|La|Le|Les|L'|Il|Das|Die|Der|El|Los|Las)"
                             r"(?P<rest>(?:\s*\([^()]*\))*)\s*$")


def readable_titles(titles: pd.Series) -> pd.Series:
    """"English Patient, The (1996)" -> "The English Patient (1996)"; "Année dernière, L' (1961)" ->
    "L'Année dernière (1961)"; every other title unchanged."""
    parts = titles.astype(str).str.extract(_SUFFIX_ARTICLE)
    moved = parts["body"].notna()
    joiner = np.where(parts["article"].eq("L'"), "", " ")
    fixed = parts["article"] + pd.Series(joiner, index=titles.index) + parts["body"] + parts["rest"].fillna("")
    return titles.where(~moved, fixed)


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


def _check_cells(values: pd.Series, role: str, source: str) -> None:
    """Titles, genres and tags longer than the budget (``limits.title_chars``) are refused, naming the row."""
    limit = _limits().title_chars
    text = values.reset_index(drop=True)
    text = text if text.dtype.kind in "OUT" or pd.api.types.is_string_dtype(text) else text.astype(str)
    text = text.map(lambda v: "|".join(map(str, v)) if isinstance(v, (tuple, list)) else v).astype(str)
    with _about(source):
        validate.check_lengths(text, column=role, role=role, max_chars=limit, what=f"{role} cells")


def _movie_metadata(ids: pd.Series, titles: pd.Series, genres: pd.Series, source: str = "movies") -> pd.DataFrame:
    titles = readable_titles(titles.fillna("").astype(str).str.strip())
    _check_cells(titles, "title", source)
    _check_cells(genres.fillna(""), "genres", source)
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
            shown = ", ".join(excerpt(str(c), 30) for c in list(df.columns)[:20])
            raise DataError(
                f"{source} has no {role} column {excerpt(str(col))}; its columns are {shown}. "
                f"Pick the {role} column from those."
            )
    df = df[df[id_col].notna()].reset_index(drop=True)
    limits = _limits()
    ids = validate.normalise_ids(df[id_col], column=str(id_col), role="item id", max_chars=limits.id_chars) \
        if len(df) else np.array([], dtype=object)
    for role, col in (("title", title_col), ("genres", genres_col), ("tags", tags_col)):
        if col is not None:
            _check_cells(df[col].fillna(""), role, source)
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
@_guarded
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
    columns are then named col1..colN. Text cells stay text, except columns whose every value
    is a canonical integer ("7", "-12"), which become int64: "007" and "7.0" stay as written.

    Budgets (``limits=``, default :func:`recsys.hosting.config`'s) are checked before the work:
    bytes (``max_bytes`` overrides: ``upload_bytes`` for bytes and file objects,
    ``table_bytes`` for paths) while reading, rows by counting lines before parsing, columns from
    the header, and for Parquet rows, columns and unpacked size from its metadata before decoding.
    """
    limits = _limits()
    raw, filename = _read_bytes(file_or_bytes, filename, max_bytes, limits)
    if not raw:
        raise DataError(f"{filename} is empty (0 bytes). Upload a file with one interaction per row.")
    if not raw.strip():
        raise DataError(f"{filename} holds only whitespace ({len(raw):,} bytes). Upload a file with one "
                        "interaction per row.")
    if raw[:4] == b"PAR1" or filename.lower().endswith((".parquet", ".pq")):
        table = _read_parquet(raw, filename, limits)
    else:
        table = _read_text_table(raw, filename, sep, limits)
    if len(table) == 0:
        names = ", ".join(_file_label(c) for c in table.columns[:20])
        raise DataError(
            f"{filename} has a header ({names}) but no data rows. Upload the file with its interactions."
        )
    return table


def _read_bytes(file_or_bytes, filename: str | None, max_bytes: int | None, limits) -> tuple[bytes, str]:
    if isinstance(file_or_bytes, (bytes, bytearray, memoryview)):
        limit, setting = (max_bytes, None) if max_bytes is not None else (limits.upload_bytes, "UPLOAD_BYTES")
        filename = _file_label(filename or "the upload")
        _check_size(len(file_or_bytes), limit, filename, setting)
        return bytes(file_or_bytes), filename
    if isinstance(file_or_bytes, (str, Path)):
        limit, setting = (max_bytes, None) if max_bytes is not None else (limits.table_bytes, "TABLE_BYTES")
        path = Path(file_or_bytes)
        filename = _file_label(filename or path.name)
        try:
            if not path.is_file():
                what = "is a folder, not a table (load it as MovieLens)" if path.is_dir() else "does not exist"
                raise DataError(f"{filename} {what}. Check the path, or upload the file.")
            _check_size(path.stat().st_size, limit, filename, setting)
            with path.open("rb") as fh:
                raw = fh.read(limit + 1)
        except OSError as err:
            raise DataError(_os_message(err, filename)) from None
    elif hasattr(file_or_bytes, "read"):
        limit, setting = (max_bytes, None) if max_bytes is not None else (limits.upload_bytes, "UPLOAD_BYTES")
        filename = _file_label(filename or Path(str(getattr(file_or_bytes, "name", "the upload"))).name)
        # read one byte past the limit: enough to know it is too large without reading it all
        raw = file_or_bytes.read(limit + 1)
        if not isinstance(raw, (bytes, bytearray)):
            raise DataError(f"{filename}: open the file in binary mode ('rb') to read it as a table.")
    else:
        raise DataError(f"Cannot read a table from {type(file_or_bytes).__name__}; pass bytes, a path or a file.")
    _check_size(len(raw), limit, filename, setting)
    return bytes(raw), filename


def _check_size(size: int, limit: int, filename: str, setting: str | None) -> None:
    if size > limit:
        where = f" (RECSYS_LIMIT_{setting})" if setting else ""
        raise DataError(
            f"{filename} is too large: {size / 1024**2:,.1f} MB, over the {limit / 1024**2:,.1f} MB limit{where}. "
            "Filter or sample it first (e.g. recent interactions, or a k-core)."
        )


def _read_parquet(raw: bytes, filename: str, limits) -> pd.DataFrame:
    if raw[:4] != b"PAR1":
        raise DataError(
            f"{filename} is named like a Parquet file but does not start with Parquet's 'PAR1' marker. "
            "Re-export it as Parquet, or upload it as CSV."
        )
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parquet is a columnar data format: reading it executes nothing from the file. Its footer
    # says how many rows and columns it holds and how large they unpack: checked before decoding.
    try:
        parquet = pq.ParquetFile(io.BytesIO(raw))
        meta = parquet.metadata
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as err:
        raise DataError(
            f"{filename} is not a valid Parquet file; it may be truncated or corrupt ({_short_error(err, 80)}). "
            "Re-export it."
        ) from None
    if meta.num_columns > limits.columns:
        raise DataError(
            f"{filename} has {meta.num_columns:,} columns; the limit is {limits.columns:,} (RECSYS_LIMIT_COLUMNS). "
            "Keep only the user, item, rating and timestamp columns."
        )
    if meta.num_rows > limits.rows:
        raise DataError(
            f"{filename} has {meta.num_rows:,} rows; the limit is {limits.rows:,} (RECSYS_LIMIT_ROWS). "
            "Sample or k-core filter it first."
        )
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > limits.table_bytes:
        raise DataError(
            f"{filename} unpacks to {_mb(unpacked)}, over the {_mb(limits.table_bytes)} limit for one table "
            "(RECSYS_LIMIT_TABLE_BYTES). Sample it or drop columns first."
        )
    nested = next((f.name for f in schema if pa.types.is_nested(f.type)), None)
    if nested is not None:
        raise DataError(
            f"{filename}: column {excerpt(nested)} holds lists or records. Interaction tables need one plain "
            "value per cell; flatten that column or drop it."
        )
    # text columns are read dictionary-encoded: a million copies of one long string then cost one
    # string, and the size they would take as plain text is known before they are expanded
    text_columns = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                    or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    with _parsing(filename, "Parquet"):
        try:
            arrow = pq.ParquetFile(io.BytesIO(raw), read_dictionary=text_columns).read()
            table = arrow.to_pandas()
        except pa.ArrowException as err:
            raise DataError(
                f"{filename} is not a valid Parquet file; it may be truncated or corrupt ({_short_error(err, 80)}). "
                "Re-export it."
            ) from None
    table.columns = [str(c).strip() for c in table.columns]
    _reject_duplicate_names(list(table.columns), filename)
    return _expand_text_columns(table, filename, limits)


def _expand_text_columns(table: pd.DataFrame, filename: str, limits) -> pd.DataFrame:
    """Dictionary (categorical) text columns as plain object columns, once their size is known to fit."""
    longest_allowed = max(limits.id_chars, limits.title_chars)
    expanded = {}
    total = 0
    for column in table.columns:
        values = table[column]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            continue
        categories = values.cat.categories
        if isinstance(categories[0] if len(categories) else "", bytes):
            categories = pd.Index([c.decode("utf-8", errors="replace") for c in categories])
        lengths = np.asarray([len(str(c)) for c in categories], dtype=np.int64)
        if len(lengths) and lengths.max() > longest_allowed:
            raise DataError(
                f"{filename}: column {excerpt(column)} holds a {int(lengths.max()):,}-character value "
                f"(starting {excerpt(str(categories[int(lengths.argmax())]), 20)}); cells may be at most "
                f"{longest_allowed:,} characters."
            )
        codes = values.cat.codes.to_numpy()
        total += int(lengths[codes[codes >= 0]].sum()) if len(lengths) else 0
        if total > limits.table_bytes:
            raise DataError(
                f"{filename}'s text columns unpack to more than {_mb(limits.table_bytes)}, the limit for one table "
                "(RECSYS_LIMIT_TABLE_BYTES). Sample it or drop columns first."
            )
        as_text = np.asarray(categories, dtype=object)
        expanded[column] = pd.Series(
            np.where(codes >= 0, as_text[np.maximum(codes, 0)] if len(as_text) else None, np.nan),
            index=table.index, dtype=object,
        )
    return table.assign(**expanded) if expanded else table


_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a zip archive or an Excel workbook"),
    (b"PK\x05\x06", "an empty zip archive"), (b"\x1f\x8b", "a gzip archive"), (b"\xfd7zXZ", "an xz archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"), (b"\x80", "a Python pickle"), (b"\xd0\xcf\x11\xe0", "an old Excel/Office file"),
    (b"\x93NUMPY", "a NumPy array"),
)
# magic numbers that are also plausible starts of a text line: named only when the file is binary
_WEAK_MAGIC = (
    (b"SQLite format 3", "an SQLite database"), (b"\x7fELF", "a program"), (b"MZ", "a Windows program"),
    (b"BZh", "a bzip2 archive"), (b"Rar!", "a RAR archive"), (b"RIFF", "a media file"), (b"ARROW1", "an Arrow file"),
)


def _reject_binary(head: bytes, filename: str) -> None:
    kind = next((what for magic, what in _MAGIC if head.startswith(magic)), None)
    if kind is None and b"\x00" not in head and _control_share(head) < 0.02:
        return
    kind = kind or next((what for magic, what in _WEAK_MAGIC if head.startswith(magic)), None)
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
        # the Sniffer's regular expressions take quadratic time on quote-heavy lines: 64 KB of ', "'
        # took 25 s; it sees whole lines up to SNIFFER_CHARS (0.1 s at worst)
        sniffed = csv.Sniffer().sniff(_head_lines(lines, SNIFFER_CHARS), delimiters="".join(DELIMITERS)).delimiter
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


def _head_lines(lines: list[str], limit: int) -> str:
    kept, used = [], 0
    for line in lines:
        if kept and used + len(line) > limit:
            break
        kept.append(line[:limit])
        used += len(line) + 1
    return "\n".join(kept)


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


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' when every other byte is NUL (UTF-16 text saved without its BOM)."""
    if len(head) < 8 or len(head) % 2:
        head = head[: len(head) - len(head) % 2]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _read_text_table(raw: bytes, filename: str, sep: str | None, limits) -> pd.DataFrame:
    utf16 = "utf-16" if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else _utf16_without_bom(
        raw[:SNIFF_BYTES])
    if utf16:
        # Excel's "Unicode text" export: full of NUL bytes, yet a text table
        with _parsing(filename, "UTF-16 text"):
            raw = raw.decode(utf16).encode("utf-8")
    _reject_binary(raw[:SNIFF_BYTES], filename)
    # rows are counted before pandas parses anything: a line is at least one byte, so this bounds the work
    lines_in_file = raw.count(b"\n") + (not raw.endswith(b"\n"))
    if lines_in_file > limits.rows + 1:
        raise DataError(
            f"{filename} has {lines_in_file:,} lines; the limit is {limits.rows:,} rows (RECSYS_LIMIT_ROWS). "
            "Sample or k-core filter it first."
        )
    encoding = _guess_encoding(raw[:SNIFF_BYTES])
    lines = _sample_lines(raw, encoding)
    if not lines:
        raise DataError(f"{filename} holds only whitespace ({len(raw):,} bytes). Upload a file with one "
                        "interaction per row.")
    sep = sep or _sniff_delimiter(lines)
    if sep == "::":
        # the C parser needs a one-character delimiter; a tab never occurs inside such files
        raw, lines, sep = raw.replace(b"::", b"\t"), [line.replace("::", "\t") for line in lines], "\t"
    first = [field.strip() for field in _split_line(lines[0], sep)]
    if len(first) > limits.columns:
        raise DataError(
            f"{filename} has {len(first):,} columns in its first line; the limit is {limits.columns:,} "
            "(RECSYS_LIMIT_COLUMNS). Keep only the user, item, rating and timestamp columns."
        )
    header = _has_header(first)
    trailing = False
    if header:
        _reject_duplicate_names(first, filename)
        trailing = _header_fits_data(lines, first, filename, sep)
    table = _drop_empty_columns(_parse_csv(raw, filename, sep, header, encoding, trailing), header)
    if table.shape[1] > limits.columns:
        raise DataError(
            f"{filename} has {table.shape[1]:,} columns; the limit is {limits.columns:,} (RECSYS_LIMIT_COLUMNS). "
            "Keep only the user, item, rating and timestamp columns."
        )
    if not header:
        table.columns = [f"col{i + 1}" for i in range(table.shape[1])]
    else:
        table.columns = [str(c).strip() for c in table.columns]
        _reject_duplicate_names(list(table.columns), filename)
    if table.shape[1] == 1:
        _explain_single_column(table, lines, filename, sep)
    _refuse_mixed_delimiters(table, raw, encoding, filename, sep)
    return _integer_columns(table)


def _header_fits_data(lines: list[str], first: list[str], filename: str, sep: str) -> bool:
    """Refuse a header with fewer names than the data lines have fields (pandas would silently turn
    the extra leading fields into an index, shifting every column); True when the only extra field
    is an empty one from a trailing delimiter."""
    if sep == r"\s+" or len(lines) < 2:
        return False
    try:
        rows = [_split_line(line, sep) for line in lines[1:]]
    except csv.Error:
        return False  # the parser names the bad line
    wider = [(number, row) for number, row in enumerate(rows, start=2) if len(row) > len(first)]
    if not wider or len(wider) < len(rows):
        return False  # ragged lines further down: the parser's message names them
    if all(len(row) == len(first) + 1 and not row[-1].strip() for _, row in wider):
        return True
    number, row = wider[0]
    other = next((d for d in DELIMITERS if d != sep and d in lines[0]), None)
    if sep not in lines[0] and other is not None:
        raise DataError(
            f"{filename} mixes delimiters: line 1 uses the {DELIMITER_NAMES[other]} ({other!r}), line {number} "
            f"uses the {DELIMITER_NAMES.get(sep, repr(sep))} ({sep!r}). Save the file with one delimiter throughout."
        )
    raise DataError(
        f"{filename}: the header (line 1) names {len(first)} columns but line {number} has {len(row)} fields. "
        "Add the missing column names to the header, or remove the extra fields."
    )


def _integer_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every cell is canonical integer text ("7", "-12") become int64; the rest stay text."""
    converted = {}
    for column in table.columns:
        if not pd.api.types.is_string_dtype(table[column].dtype) or table[column].dtype.kind in "iufb":
            continue
        integers = validate.canonical_integers(table[column].astype(str))
        if integers is not None:
            converted[column] = integers
    return table.assign(**converted) if converted else table


def _refuse_mixed_delimiters(table: pd.DataFrame, raw: bytes, encoding: str, filename: str, sep: str) -> None:
    """Lines split by another delimiter land whole in the first column: name one line of each kind."""
    if table.shape[1] < 2 or sep == r"\s+":
        return
    rest_empty = table.iloc[:, 1:].isna().all(axis=1).to_numpy()
    if not rest_empty.any():
        return
    first = table.iloc[:, 0].astype(str)
    others = [d for d in DELIMITERS if d != sep]
    for other in others:
        suspect = rest_empty & first.str.contains(other, regex=False).to_numpy()
        if not suspect.any():
            continue
        line_with_sep = line_with_other = None
        for number, line in enumerate(raw.decode(encoding, errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            if line_with_sep is None and sep in line:
                line_with_sep = number
            if line_with_other is None and other in line and sep not in line:
                line_with_other = number
            if line_with_sep and line_with_other:
                break
        if line_with_sep and line_with_other:
            name_sep, name_other = DELIMITER_NAMES.get(sep, repr(sep)), DELIMITER_NAMES[other]
            raise DataError(
                f"{filename} mixes delimiters: line {line_with_sep} uses the {name_sep} ({sep!r}), line "
                f"{line_with_other} uses the {name_other} ({other!r}). Save the file with one delimiter throughout."
            )


def _parse_csv(raw: bytes, filename: str, sep: str, header: bool, encoding: str,
               trailing: bool = False) -> pd.DataFrame:
    """Parse with pandas' fast type inference, then re-read as text the columns whose numbers may
    not be written the way the file writes them (so ids keep their spelling: "007", "7.0", "+7").

    Reading every cell as text from the start is 10x slower (1.8 s against 0.1 s for 1 M rows).
    """
    options = {"sep": sep, "header": 0 if header else None, "skip_blank_lines": True}
    if trailing:
        options["index_col"] = False  # a trailing delimiter on data lines only: drop the empty field
    if sep != r"\s+":
        options["skipinitialspace"] = True
    try:
        table, encoding = _read_csv(raw, encoding, options)
        respell = _columns_to_read_as_text(table, raw, sep)
        if respell:
            positions = [table.columns.get_loc(c) for c in respell]
            text, _ = _read_csv(raw, encoding, {**options, "usecols": positions, "dtype": str})
            table = table.assign(**{str(c): text.iloc[:, i] for i, c in enumerate(respell)}) if header else \
                _replace_columns(table, respell, text)
        return table
    except pd.errors.EmptyDataError:
        raise DataError(f"{filename} is empty. Upload a file with one interaction per row.") from None
    except pd.errors.ParserError as err:
        raise DataError(_explain_parser_error(str(err), filename, sep, raw, encoding)) from None
    except (ValueError, OverflowError, csv.Error) as err:
        raise DataError(f"{filename} could not be parsed: {_short_error(err)}") from None


def _read_csv(raw: bytes, encoding: str, options: dict) -> tuple[pd.DataFrame, str]:
    try:
        return pd.read_csv(io.BytesIO(raw), encoding=encoding, **options), encoding
    except UnicodeDecodeError:
        # the sample was UTF-8 but a later byte is not: Windows exports mix like that
        return pd.read_csv(io.BytesIO(raw), encoding="latin-1", **options), "latin-1"


def _replace_columns(table: pd.DataFrame, columns: list, text: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for i, column in enumerate(columns):
        table[column] = text.iloc[:, i].to_numpy()
    return table


def _columns_to_read_as_text(table: pd.DataFrame, raw: bytes, sep: str) -> list:
    """Numeric columns whose text may differ from the number pandas read.

    Whole-number floats ("7.0", or ints beside empty cells), unsigned or huge integers, and,
    when the file holds a number written with a leading zero or a plus sign anywhere, every
    integer column. Floats with a fraction (ratings such as 4.5) stay numbers.
    """
    suspicious = None
    columns = []
    for column in table.columns:
        values = table[column]
        kind = values.dtype.kind
        if kind == "f":
            finite = values.to_numpy(np.float64)
            finite = finite[np.isfinite(finite)]
            if not len(finite) or np.all(finite == np.round(finite)):
                columns.append(column)
        elif kind == "u":
            columns.append(column)
        elif kind == "i":
            if suspicious is None:
                suspicious = _non_canonical_integers(raw, sep)
            if suspicious:
                columns.append(column)
    return columns


def _non_canonical_integers(raw: bytes, sep: str) -> bool:
    """Whether any field starts like a non-canonical integer: '+7', '007', '-0'."""
    # one character class before the field (not an alternation with ^): 0.3 s instead of 0.9 s on 30 MB
    boundary = rb"\s" if sep == r"\s+" else re.escape(sep.encode())
    pattern = rb"[" + boundary + rb"\r\n][ \t\"]*(?:\+|-?0[0-9]|-0(?![0-9.eE]))"
    return re.search(pattern, b"\n" + raw[:64]) is not None or re.search(pattern, raw) is not None


def _explain_parser_error(message: str, filename: str, sep: str, raw: bytes = b"", encoding: str = "utf-8") -> str:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    name = DELIMITER_NAMES.get(sep, repr(sep))
    if match:
        expected, line, saw = match.groups()
        first = next((t for t in raw[:SNIFF_BYTES].decode(encoding, errors="replace").splitlines() if t.strip()), "")
        other = next((d for d in DELIMITERS if d != sep and d in first), None)
        if sep != r"\s+" and sep not in first and other is not None:
            return (
                f"{filename} mixes delimiters: line 1 uses the {DELIMITER_NAMES[other]} ({other!r}), line {line} "
                f"uses the {name} ({sep!r}). Save the file with one delimiter throughout."
            )
        return (
            f"{filename}: line {line} has {saw} fields where the lines before it have {expected} "
            f"(delimiter: {name}). Quote values that contain the delimiter, or remove the stray "
            f"delimiter from line {line}."
        )
    quote = re.search(r"EOF inside string starting at row (\d+)", message)
    if quote:
        return (
            f"{filename}: a quote (\") opened in data row {int(quote.group(1)) + 1} is never closed. Close the "
            "quote, or remove the stray quote character."
        )
    return f"{filename} could not be parsed with the {name} delimiter: {_short_error(message)}"


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
        f"{filename} has a single column ({excerpt(table.columns[0])}). An interaction table needs at least a user "
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


@_guarded
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
        shown = ", ".join(excerpt(str(role), 20) for role in sorted(map(str, unknown))[:5])
        raise DataError(f"Unknown role(s) {shown} in the column mapping; use user, item, rating, timestamp.")
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
            positive_threshold=positive_threshold, duplicates=duplicates, name=name, limits=_limits(),
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
