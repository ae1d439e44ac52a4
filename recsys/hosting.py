"""Hosted mode: what a visitor of a shared instance may read, upload and start, and how much.

The same app serves one person on a laptop and a room on one server. On a laptop the person
owns the machine: server paths are theirs to read and the limits are generous. In hosted
mode (``RECSYS_HOSTED=1``) every visitor is untrusted:

* server paths are refused unless they lie under a configured data root
  (``RECSYS_DATA_ROOTS``, separated by ``os.pathsep``), and are shown relative to it;
* every upload, archive, table, bundle and training is held to a budget checked *before*
  the work (bytes, rows, columns, id lengths, a training's memory estimate);
* visitors see and change only their own uploads, runs and jobs; shared runs change only
  with the instructor role.

Budgets are sized so that one visitor cannot take more than about a sixth of a 2-core,
24 GB machine: a 5 M-row table with its CSR matrices and id maps stays near 1 GB, and a
training's estimate is capped at 4 GB. Every figure can be overridden with an environment
variable named ``RECSYS_LIMIT_<FIELD>`` (``RECSYS_LIMIT_ROWS=2000000``).

Nothing here imports Streamlit; the UI reads :func:`config` and passes it on.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path, PurePath

from recsys.data.errors import DataError

MB = 1024**2
GB = 1024**3


@dataclass(frozen=True)
class Limits:
    """Budgets checked before any work; every field can be overridden by ``RECSYS_LIMIT_<NAME>``."""

    upload_bytes: int           # one uploaded file, as sent
    table_bytes: int            # one table read from disk or from an archive, after decompression
    archive_bytes: int          # all members of one archive together, after decompression
    compression_ratio: float    # a member may not inflate more than this (zip bombs inflate ~1000x)
    rows: int                   # interactions in one table (Parquet: from its metadata, before decoding)
    columns: int                # columns in one table
    id_chars: int               # characters in one user or item id
    title_chars: int            # characters in one title / genre / tag cell
    bundle_bytes: int           # one experiment bundle, as sent
    bundle_unpacked_bytes: int  # one bundle after decompression
    visitor_upload_bytes: int   # everything one visitor has uploaded and kept
    server_upload_bytes: int    # everything all visitors have uploaded and kept
    training_bytes: int         # the memory estimate of one training
    workers: int                # trainings running at once on the whole server
    visitor_jobs: int           # trainings one visitor may have running or queued
    queue_length: int           # trainings waiting on the whole server


LOCAL_LIMITS = Limits(
    upload_bytes=500 * MB, table_bytes=4 * GB, archive_bytes=8 * GB, compression_ratio=1000.0,
    rows=50_000_000, columns=256, id_chars=4096, title_chars=10_000, bundle_bytes=2 * GB,
    bundle_unpacked_bytes=8 * GB, visitor_upload_bytes=20 * GB, server_upload_bytes=50 * GB,
    training_bytes=16 * GB, workers=2, visitor_jobs=8, queue_length=64,
)
HOSTED_LIMITS = Limits(
    upload_bytes=50 * MB, table_bytes=400 * MB, archive_bytes=600 * MB, compression_ratio=100.0,
    rows=5_000_000, columns=64, id_chars=256, title_chars=1000, bundle_bytes=100 * MB,
    bundle_unpacked_bytes=400 * MB, visitor_upload_bytes=200 * MB, server_upload_bytes=5 * GB,
    training_bytes=4 * GB, workers=2, visitor_jobs=3, queue_length=24,
)


@dataclass(frozen=True)
class HostConfig:
    """Hosted or local, the data roots server paths must lie under, the limits, who is instructor."""

    hosted: bool = False
    data_roots: tuple[Path, ...] = ()
    limits: Limits = LOCAL_LIMITS
    # visitors who sign in (st.user) with one of these e-mails get the instructor role
    instructors: tuple[str, ...] = ()
    # a visitor who types this key on the Runs page gets the instructor role (empty: nobody can)
    instructor_key: str = ""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _limits_from_env(base: Limits, environ) -> Limits:
    changes = {}
    for f in dataclasses.fields(Limits):
        raw = environ.get(f"RECSYS_LIMIT_{f.name.upper()}")
        if raw is None or not raw.strip():
            continue
        try:
            value = float(raw) if f.type in ("float", float) else int(float(raw))
        except ValueError:
            raise DataError(f"RECSYS_LIMIT_{f.name.upper()}={raw!r} is not a number; set it to a number "
                            f"(e.g. {getattr(base, f.name)}).") from None
        if value <= 0:
            raise DataError(f"RECSYS_LIMIT_{f.name.upper()} must be positive; it is {raw!r}.")
        changes[f.name] = value
    return dataclasses.replace(base, **changes)


def config(environ=None) -> HostConfig:
    """The host configuration from the environment, read at call time (tests and servers set it)."""
    env = os.environ if environ is None else environ
    hosted = _truthy(env.get("RECSYS_HOSTED"))
    roots = tuple(
        Path(part).expanduser().resolve()
        for part in (env.get("RECSYS_DATA_ROOTS") or "").split(os.pathsep) if part.strip()
    )
    uploads = uploads_dir(env)
    roots = tuple(root for root in roots if not _inside(root, uploads) and not _inside(uploads, root)) \
        if hosted else roots
    limits = _limits_from_env(HOSTED_LIMITS if hosted else LOCAL_LIMITS, env)
    instructors = tuple(e.strip().lower() for e in (env.get("RECSYS_INSTRUCTORS") or "").split(",") if e.strip())
    return HostConfig(hosted=hosted, data_roots=roots, limits=limits, instructors=instructors,
                      instructor_key=(env.get("RECSYS_INSTRUCTOR_KEY") or "").strip())


def home(environ=None) -> Path:
    """Where uploads and the experiment store live (``RECSYS_HOME``, default ``~/.recsys-explorer``)."""
    env = os.environ if environ is None else environ
    return Path(env.get("RECSYS_HOME") or Path.home() / ".recsys-explorer").expanduser()


def uploads_dir(environ=None) -> Path:
    return (home(environ) / "uploads").resolve()


def _inside(path: Path, root: Path) -> bool:
    try:
        return path == root or path.is_relative_to(root)
    except ValueError:
        return False


# ---------------------------------------------------------------------- server paths
def resolve_server_path(text: str, cfg: HostConfig | None = None) -> Path:
    """The server path a person typed, or a DataError that names no absolute path.

    Hosted: relative paths are taken under the first data root; the resolved path (symlinks
    followed) must lie under one of the roots and never under the uploads folder, and
    whether something exists outside the roots is never revealed. Local: any path the
    server's user can read.
    """
    cfg = cfg or config()
    text = (text or "").strip()
    if not text:
        raise DataError("Type a path to a MovieLens folder or .zip, or upload a file instead.")
    if "\x00" in text or len(text) > 1024:
        raise DataError("That path is not a valid path (too long or with a NUL character). Type a folder or file name.")
    if not cfg.hosted:
        path = Path(text).expanduser()
        if not path.exists():
            raise DataError(f"Nothing called {path.name or text!r} exists on the server at that path. Check the "
                            "path (it is read on the server), or upload the file.")
        return path
    if not cfg.data_roots:
        raise DataError("This hosted server reads no files from its own disk (no data roots are configured). "
                        "Upload the file instead, or ask the host to set RECSYS_DATA_ROOTS.")
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        # "ml-100k" under the first root, or "datasets/ml-100k" as display_path shows it
        named = {root.name: root for root in cfg.data_roots}
        first, *rest = candidate.parts or ("",)
        candidate = named[first].joinpath(*rest) if first in named else cfg.data_roots[0] / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError):
        resolved = None
    uploads = uploads_dir()
    root = next((r for r in cfg.data_roots if resolved is not None and _inside(resolved, r)), None)
    if root is None or _inside(resolved, uploads):
        raise DataError(f"{text!r} is outside the data folders this server offers. Pick one of: "
                        f"{', '.join(available_data(cfg)) or '(none)'} — or upload the file.")
    if not resolved.exists():
        raise DataError(f"{display_path(resolved, cfg)!r} does not exist in the server's data folders. Pick one of: "
                        f"{', '.join(available_data(cfg)) or '(none)'}.")
    return resolved


def display_path(path: str | PurePath, cfg: HostConfig | None = None) -> str:
    """A path as a message may show it: relative to its data root, else just its name."""
    cfg = cfg or config()
    path = Path(path)
    for root in cfg.data_roots:
        try:
            resolved = path.resolve(strict=False)
        except (OSError, RuntimeError):
            break
        if _inside(resolved, root):
            relative = resolved.relative_to(root).as_posix()
            return f"{root.name}/{relative}" if relative != "." else root.name
    return path.name or "the path"


def available_data(cfg: HostConfig | None = None, limit: int = 20) -> list[str]:
    """The entries directly under the data roots (what a hosted visitor may load), by display name."""
    cfg = cfg or config()
    found: list[str] = []
    for root in cfg.data_roots:
        try:
            entries = sorted(root.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            found.append(display_path(entry, cfg))
            if len(found) >= limit:
                return found
    return found
