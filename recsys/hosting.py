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
import hashlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np

from recsys.data.errors import DataError

KB = 1024
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
    bundle_members: int = 20_000  # files in one bundle (an exported run has at most five)


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
    training_bytes=4 * GB, workers=2, visitor_jobs=3, queue_length=24, bundle_members=2_000,
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
    # where uploads and the store live (RECSYS_HOME); None: read from the environment when asked
    app_home: Path | None = None

    def home(self) -> Path:
        return (self.app_home or home()).resolve()

    def uploads(self) -> Path:
        return self.home() / "uploads"


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
    # a root inside the app's own folder (uploads, the store) is never a data root; a root that
    # contains that folder stays, and resolve_server_path refuses the part of it that overlaps
    roots = tuple(root for root in roots if not _inside(root, home(env).resolve())) if hosted else roots
    limits = _limits_from_env(HOSTED_LIMITS if hosted else LOCAL_LIMITS, env)
    instructors = tuple(e.strip().lower() for e in (env.get("RECSYS_INSTRUCTORS") or "").split(",") if e.strip())
    return HostConfig(hosted=hosted, data_roots=roots, limits=limits, instructors=instructors,
                      instructor_key=(env.get("RECSYS_INSTRUCTOR_KEY") or "").strip(),
                      app_home=home(env).resolve())


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


def _overlaps(path: Path, folder: Path) -> bool:
    """Whether loading ``path`` would read ``folder`` (it lies inside it) or walk into it (it contains it)."""
    return _inside(path, folder) or _inside(folder, path)


# ---------------------------------------------------------------------- server paths
def _offered(cfg: HostConfig) -> str:
    names = available_data(cfg)
    if not names:
        return "The data folders hold nothing to load yet; upload the file instead."
    return f"Pick one of: {', '.join(names)} — or upload the file."


def resolve_server_path(text: str, cfg: HostConfig | None = None) -> Path:
    """The server path a person typed, or a DataError that names no absolute path.

    Hosted: relative paths are taken under the first data root (or under the root they name,
    as :func:`display_path` shows them); the resolved path (symlinks followed) must lie under
    one of the roots and must neither lie in nor contain the app's own folder (uploads, the
    store). Whether something exists outside the roots is never revealed: every path outside
    gets the same answer. Local: any path the server's user can read.
    """
    cfg = cfg or config()
    text = (text or "").strip()
    if not text:
        raise DataError("Type a path to a MovieLens folder or .zip, or upload a file instead.")
    if "\x00" in text or len(text) > 1024:
        raise DataError("That path is not a valid path (too long or with a NUL character). Type a folder or file name.")
    if not cfg.hosted:
        path = Path(text)
        try:
            path = path.expanduser()
            exists = path.exists()
        except (OSError, RuntimeError):  # "~nobody", a path the server's user may not look into
            exists = False
        if not exists:
            raise DataError(f"Nothing called {path.name or 'that'!r} exists on the server at that path. Check the "
                            "path (it is read on the server), or upload the file.")
        return path
    if not cfg.data_roots:
        raise DataError("This hosted server reads no files from its own disk (no data roots are configured). "
                        "Upload the file instead, or ask the host to set RECSYS_DATA_ROOTS.")
    candidate = Path(text)  # no "~" expansion: whether a user exists is not a visitor's business
    if not candidate.is_absolute():
        # "ml-100k" under the first root, or "datasets/ml-100k" as display_path shows it
        named = {root.name: root for root in cfg.data_roots}
        first, *rest = candidate.parts or ("",)
        candidate = named[first].joinpath(*rest) if first in named else cfg.data_roots[0] / candidate
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError):  # a symlink loop
        resolved = None
    if resolved is None or not any(_inside(resolved, root) for root in cfg.data_roots):
        raise DataError(f"That path is outside the data folders this server offers. {_offered(cfg)}")
    if _overlaps(resolved, cfg.home()):
        raise DataError(f"{display_path(resolved, cfg)!r} holds this server's uploads and experiment store, which "
                        f"are not data. {_offered(cfg)}")
    try:
        exists = resolved.exists()
    except OSError:
        exists = False
    if not exists:
        raise DataError(f"{display_path(resolved, cfg)!r} does not exist in the server's data folders. "
                        f"{_offered(cfg)}")
    return resolved


def display_path(path: str | PurePath, cfg: HostConfig | None = None) -> str:
    """A path as a message may show it: relative to its data root (``root-name/inside``), else just its name."""
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
    if _inside(path, cfg.uploads()) and "--" in path.name:
        return upload_name(path)
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
            try:
                hidden = entry.name.startswith(".") or _overlaps(entry.resolve(), cfg.home())
            except (OSError, RuntimeError):
                hidden = True
            if hidden:
                continue
            found.append(display_path(entry, cfg))
            if len(found) >= limit:
                return found
    return found


# ---------------------------------------------------------------------- uploads
# Each visitor's uploads live in their own folder, uploads/<owner key>/<sha>--<name>, named by a
# hash of the owner token so that a folder name never gives the token away. The quotas are checked
# before a byte is written, under one lock so that two uploads at once cannot both squeeze in.
_UPLOAD_LOCK = threading.Lock()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PART = ".part"


@dataclass(frozen=True)
class Upload:
    """One file a visitor uploaded and the server keeps."""

    path: Path
    name: str       # the name it was uploaded under (characters outside [A-Za-z0-9._-] replaced)
    size: int       # bytes
    modified: float  # seconds since the epoch


def owner_key(owner: str) -> str:
    """The folder name of one visitor's uploads."""
    return hashlib.sha256(f"recsys-uploads:{owner}".encode()).hexdigest()[:24]


def owner_uploads(owner: str, cfg: HostConfig | None = None) -> Path:
    return (cfg or config()).uploads() / owner_key(owner)


def upload_name(path: str | PurePath) -> str:
    """The name a stored upload was uploaded under."""
    name = PurePath(path).name
    return name.split("--", 1)[1] if "--" in name else name


def _safe_name(name: str) -> str:
    name = PurePath(str(name).replace("\\", "/")).name
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = _UNSAFE.sub("_", stem).strip("._")[:60] or "upload"
    suffix = _UNSAFE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KB' (binary units, as the limits are set)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def folder_bytes(folder: Path) -> int:
    """Bytes in the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for filename in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, filename)).st_size
            except OSError:
                pass
    return total


def list_uploads(owner: str, cfg: HostConfig | None = None) -> list[Upload]:
    """The visitor's kept uploads, newest first."""
    folder = owner_uploads(owner, cfg)
    found = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if entry.is_file() and not entry.name.endswith(_PART):
            found.append(Upload(entry, upload_name(entry), info.st_size, info.st_mtime))
    return sorted(found, key=lambda u: (-u.modified, u.name))


def check_upload_size(size: int, filename: str, cfg: HostConfig | None = None) -> None:
    """Refuse one upload bigger than ``limits.upload_bytes`` (before it is read)."""
    limit = (cfg or config()).limits.upload_bytes
    if size > limit:
        raise DataError(f"{_safe_name(filename)} is {human_bytes(size)}; this server takes uploads of up to "
                        f"{human_bytes(limit)}. Upload a smaller file (fewer rows, or a smaller MovieLens "
                        "variant).")


def check_quota(size: int, owner: str, cfg: HostConfig | None = None) -> None:
    """Refuse ``size`` more bytes when they would take the visitor's or the server's uploads over budget."""
    cfg = cfg or config()
    limits = cfg.limits
    mine = folder_bytes(owner_uploads(owner, cfg))
    if mine + size > limits.visitor_upload_bytes:
        raise DataError(f"This upload ({human_bytes(size)}) would bring your kept uploads to "
                        f"{human_bytes(mine + size)}, over the {human_bytes(limits.visitor_upload_bytes)} each "
                        f"visitor may keep (you keep {human_bytes(mine)}). Delete old uploads under 'Your uploads' "
                        "on the Data page, then upload again.")
    everyone = folder_bytes(cfg.uploads())
    if everyone + size > limits.server_upload_bytes:
        raise DataError(f"The server's upload space is full: all visitors keep {human_bytes(everyone)} of "
                        f"{human_bytes(limits.server_upload_bytes)}, and this upload needs {human_bytes(size)}. "
                        "Delete your old uploads under 'Your uploads' on the Data page, or ask the host to free "
                        "space.")


def sweep_uploads(cfg: HostConfig | None = None, *, stale_after: float = 3600.0, now: float | None = None) -> int:
    """Remove what no visitor can reach and what only eats the quota: half-written uploads older than
    ``stale_after`` seconds (a crash mid-write) and files lying directly in the uploads folder (the
    layout before per-visitor folders, which no descriptor may open). Returns the bytes freed."""
    cfg = cfg or config()
    now = time.time() if now is None else now
    freed = 0
    try:
        entries = list(cfg.uploads().iterdir())
    except OSError:
        return 0
    for entry in entries:
        candidates = [entry] if entry.is_file() and not entry.is_symlink() else []
        if entry.is_dir() and not entry.is_symlink():
            candidates = [f for f in entry.iterdir() if f.name.endswith(_PART)]
        for path in candidates:
            try:
                info = path.lstat()
                if path.parent == cfg.uploads() or now - info.st_mtime > stale_after:
                    path.unlink()
                    freed += info.st_size
            except OSError:
                continue
    return freed


def save_upload(name: str, payload: bytes, owner: str, cfg: HostConfig | None = None) -> tuple[Path, bool]:
    """Keep uploaded bytes in the visitor's folder (never executed or unpickled).

    Returns the path and whether this call wrote it (False: the visitor already keeps the same
    bytes under the same name). The size and both quotas are checked before writing.
    """
    cfg = cfg or config()
    check_upload_size(len(payload), name, cfg)
    digest = hashlib.sha256(payload).hexdigest()[:20]
    folder = owner_uploads(owner, cfg)
    path = folder / f"{digest}--{_safe_name(name)}"
    with _UPLOAD_LOCK:
        if path.is_file():
            return path, False
        sweep_uploads(cfg)
        check_quota(len(payload), owner, cfg)
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{_PART}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(payload)
            partial.replace(path)  # atomic: a half-written upload never looks complete
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise DataError(f"The upload could not be kept on the server ({exc.strerror or 'write failed'}); "
                            "try again later or ask the host.") from None
    return path, True


def delete_upload(owner: str, filename: str, cfg: HostConfig | None = None) -> bool:
    """Delete one of the visitor's uploads by its stored file name; True when there was such a file."""
    folder = owner_uploads(owner, cfg)
    if not filename or PurePath(filename).name != filename or filename in (".", ".."):
        return False
    path = folder / filename
    if path.is_symlink() or not path.is_file():
        return False
    path.unlink(missing_ok=True)
    return True


def check_source(descriptor: dict, owner: str, cfg: HostConfig | None = None) -> None:
    """Refuse a dataset descriptor this visitor may not open: another visitor's upload (in any mode),
    or, hosted, a file outside the data roots. The message names no path."""
    cfg = cfg or config()
    if descriptor.get("kind") not in ("path", "table"):
        return
    for key in ("path", "items_path"):
        raw = descriptor.get(key)
        if not raw:
            continue
        try:
            resolved = Path(str(raw)).expanduser().resolve(strict=False)
        except (OSError, RuntimeError):
            raise DataError("This dataset's file cannot be found any more; load the data again on the Data "
                            "page.") from None
        if _inside(resolved, cfg.uploads()):
            if not _inside(resolved, owner_uploads(owner, cfg)):
                raise DataError("This dataset is another visitor's upload (or one from a session that is over), "
                                "so it cannot be opened here. Upload the file yourself on the Data page.")
            continue
        if cfg.hosted and (_overlaps(resolved, cfg.home())
                           or not any(_inside(resolved, root) for root in cfg.data_roots)):
            raise DataError("This dataset's files are outside the data folders this server offers, so it cannot be "
                            "opened here. Pick data on the Data page.")


# ---------------------------------------------------------------------- training budget
# models offered instead of one that does not fit, in this order (the first few that fit are named)
_LEANER_MODELS = ("ials", "item_knn", "pure_svd", "bpr_mf", "pop")


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / GB:.1f} GB" if n_bytes >= GB else f"{n_bytes / MB:.0f} MB"


def _largest(fits, low: int, high: int) -> int:
    """The largest n in [low, high] with fits(n) (fits is monotone: true up to some n), or low - 1."""
    if not fits(low):
        return low - 1
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


WIDTH_PARAMS = ("embedding_size", "hidden")


def check_training_budget(model_cls, params, train, cfg: HostConfig | None = None) -> int:
    """The memory estimate of fitting and evaluating ``model_cls`` with ``params`` on ``train``, in bytes;
    raises DataError *before* the training when it exceeds ``cfg.limits.training_bytes``.

    The message gives both figures and what would fit on this server, computed for this data: a
    smaller embedding size, a catalogue (or user base) cut to a size that fits with the minimum
    number of interactions per item that gets there, and leaner models whose estimate fits.
    """
    from recsys.models.base import embedding_width, full_params

    cfg = cfg or config()
    budget = cfg.limits.training_bytes
    params = full_params(model_cls, params)
    n_users, n_items, n_interactions = int(train.n_users), int(train.n_items), int(train.n_interactions)

    def estimate(cls=model_cls, overrides=params, users=n_users, items=n_items) -> int:
        return cls.estimate_memory(overrides, users, items, n_interactions)

    needed = estimate()
    if needed <= budget:
        return needed
    options = []
    # the widths that tables of users or items are made of: the embedding size, and a first
    # layer as wide as `hidden` where a model keeps one (Mult-VAE's items x hidden)
    for name in WIDTH_PARAMS:
        width = embedding_width(params) if name == "embedding_size" else params.get(name)
        if not isinstance(width, int) or isinstance(width, bool):
            continue
        lowest = next((int(f.metadata.get("low") or 1) for f in dataclasses.fields(model_cls.Params)
                       if f.name == name), 1)
        if width <= lowest:
            continue
        smaller = _largest(lambda w, name=name: estimate(overrides={**params, name: w}) <= budget, lowest, width - 1)
        if smaller >= lowest:
            options.append(f"set {name} to {smaller} or less (estimate "
                           f"{_gb(estimate(overrides={**params, name: smaller}))})")
    items = _largest(lambda n: estimate(items=n) <= budget, 1, n_items - 1)
    if 10 <= items < n_items:
        popularity = np.sort(np.asarray(train.item_popularity))[::-1]
        # items with at least `least` interactions number at most `items`
        least = int(popularity[items]) + 1 if items < len(popularity) else 1
        options.append(f"filter the catalogue to fewer than {items:,} items (keeping only items with at least "
                       f"{least} interactions leaves {int(np.sum(popularity >= least)):,})")
    users = _largest(lambda n: estimate(users=n) <= budget, 1, n_users - 1)
    if 10 <= users < n_users and items < 10:  # only when the catalogue is not what makes it big
        options.append(f"sample fewer than {users:,} users")
    from recsys.models.registry import registry

    leaner = []
    for key in _LEANER_MODELS:
        cls = registry.get(key)
        if cls is None or cls is model_cls:
            continue
        other = estimate(cls=cls, overrides=full_params(cls, {}))
        if other <= budget:
            leaner.append(f"{cls.label} ({_gb(other)})")
        if len(leaner) == 2:
            break
    if leaner:
        options.insert(0, f"use {' or '.join(leaner)}")
    advice = "; ".join(options) if options else "no setting of this model fits; load a smaller dataset"
    raise DataError(
        f"{model_cls.label} would need about {_gb(needed)} of memory to train on this data ({n_users:,} users, "
        f"{n_items:,} items, {n_interactions:,} interactions); this server allows {_gb(budget)} per training. "
        f"To train within the budget: {advice}.")
