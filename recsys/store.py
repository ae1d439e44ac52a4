"""Experiment store: runs, their metrics and their fitted models on disk, so nothing is retrained twice.

Layout under the store folder (default ``$RECSYS_HOME/store``, ``~/.recsys-explorer/store``)::

    store.sqlite            datasets and runs (SQLite in WAL mode; one transaction per change)
    artifacts/<run_id>/     model.json + arrays.npz [+ modules.pt] (recsys.models.persist),
                            report.json + report.npz (the evaluation, per-user arrays included)
    tmp/                    artifacts being written; renamed into artifacts/ when complete

A run's id is a hash of (dataset fingerprint, split config, model key, params, seed), so the
same configuration finds the stored run instead of training again. A run row says ``done``
only after its artifacts are completely on disk; a row left ``running`` by a process that
has died reads as ``interrupted``. Nothing is pickled: arrays load with
``allow_pickle=False`` and torch weights with ``weights_only=True``.

Runs are trained and evaluated by :func:`recsys.experiment.run`; the store keeps them (reports through
``recsys.evaluation.report_io``) and computes nothing.

Owner scopes: runs on an upload belong to the session that uploaded it (its owner token);
runs on the bundled sample or on a dataset from the server's own disk are ``shared``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import threading
import time
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.split import Split, SplitConfig, make_split
from recsys.evaluation.report_io import REPORT_JSON, REPORT_NPZ, Report, load_report, report_metrics, save_report
from recsys.models.persist import ArtifactError, atomic_write, load_model, read_header, save_model

SCHEMA_VERSION = 1
BUNDLE_FORMAT = "recsys-explorer-bundle"
BUNDLE_SCHEMA_VERSION = 1
SHARED = "shared"
STATUSES = ("running", "done", "failed", "interrupted")
DB_FILE = "store.sqlite"
MODEL_FILES = ("model.json", "arrays.npz", "modules.pt")
_RUN_ID_LENGTH = 16
# identifies this process in "running" rows: a row whose process is gone reads as interrupted
_PROCESS_TOKEN = uuid.uuid4().hex
_HOST = socket.gethostname()
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (
    fingerprint TEXT PRIMARY KEY, label TEXT NOT NULL, source TEXT NOT NULL, card TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL,
    label TEXT NOT NULL, params TEXT NOT NULL, seed INTEGER NOT NULL, dataset TEXT NOT NULL,
    split TEXT NOT NULL, metrics TEXT NOT NULL DEFAULT '{}', timings TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}', has_model INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, status TEXT NOT NULL, error TEXT,
    pid INTEGER, host TEXT, token TEXT);
CREATE INDEX IF NOT EXISTS runs_by_dataset ON runs (dataset, split);
"""
_RUN_COLUMNS = ("run_id", "owner", "name", "model", "label", "params", "seed", "dataset", "split", "metrics",
                "timings", "extra", "has_model", "created_at", "status", "error", "pid", "host", "token")


class StoreError(DataError):
    """The store cannot do what was asked; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who asks to change a run: their owner id and whether they hold the instructor role.

    Shared runs (the sample, server-side data) change only for instructors; a private run only
    for its owner or an instructor. Calls without an actor (the CLI, run by whoever owns the
    server's files) are not checked.
    """

    owner: str
    instructor: bool = False

    def may_change(self, record_owner: str) -> bool:
        return self.instructor or (record_owner != SHARED and record_owner == self.owner)


def default_root() -> Path:
    """``$RECSYS_HOME/store`` (``~/.recsys-explorer/store`` when RECSYS_HOME is not set)."""
    home = Path(os.environ.get("RECSYS_HOME", Path.home() / ".recsys-explorer")).expanduser()
    return home / "store"


# ---------------------------------------------------------------------- identities
def canonical_split(config: SplitConfig | dict) -> str:
    """The split config as canonical JSON (the form stored and compared)."""
    return json.dumps(config.to_dict() if isinstance(config, SplitConfig) else config, sort_keys=True)


def run_id_for(fingerprint: str, split: SplitConfig | dict, model: str, params: dict, seed: int, owner: str = SHARED) -> str:
    """Hash of what determines a run; a private owner is part of it so scopes never collide."""
    key = [fingerprint, json.loads(canonical_split(split)), model, params, int(seed)]
    if owner != SHARED:
        key.append(owner)
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:_RUN_ID_LENGTH]


def owner_scope(source: dict, session_owner: str, uploads_dir: str | Path | None = None) -> str:
    """``session_owner`` for a dataset someone uploaded, ``SHARED`` for the sample and server-side files."""
    if source.get("kind") == "table":
        return session_owner
    if source.get("kind") == "path" and uploads_dir is not None:
        path = Path(str(source.get("path", ""))).expanduser().resolve()
        if path.is_relative_to(Path(uploads_dir).expanduser().resolve()):
            return session_owner
    return SHARED


def with_positives(ds: Dataset, config: SplitConfig | dict) -> Dataset:
    """Read explicit ratings at or above the threshold as the positives when the config says so."""
    return SplitConfig.coerce(config).with_positives(ds)


def split_dataset(ds: Dataset, config: SplitConfig | dict) -> Split:
    """The split a run was trained on, re-made deterministically from the dataset and its config (a
    stored run's dict is read through :meth:`SplitConfig.from_dict`)."""
    return make_split(ds, SplitConfig.coerce(config))


def data_card(ds: Dataset, source: dict) -> dict:
    """What a bundle says about the data a run used (never the data itself)."""
    return {"name": ds.name, "fingerprint": ds.fingerprint, "source_kind": source.get("kind", "unknown"),
            "n_users": int(ds.n_users), "n_items": int(ds.n_items), "n_interactions": int(ds.n_interactions),
            "feedback": ds.feedback, "has_timestamps": ds.timestamp is not None}


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One stored run as the pages and the CLI see it."""

    run_id: str
    owner: str
    name: str
    model: str
    label: str
    params: dict
    seed: int
    dataset: str
    split: dict
    metrics: dict
    timings: dict
    extra: dict
    has_model: bool
    created_at: float
    status: str
    error: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------- the store
class ExperimentStore:
    """Runs and artifacts under ``root``; safe to share between threads and processes."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.artifacts = self.root / "artifacts"
        self.tmp = self.root / "tmp"
        self._prepare_folders()
        self._db_path = self.root / DB_FILE
        self._init_schema()

    # ------------------------------------------------------------------ setup
    def _prepare_folders(self) -> None:
        fix = "Set RECSYS_HOME (or --store) to a folder this user can write, or fix the folder's permissions."
        try:
            for folder in (self.root, self.artifacts, self.tmp):
                folder.mkdir(parents=True, exist_ok=True)
            probe = self.tmp / f".probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StoreError(f"The experiment store folder {self.root} cannot be written ({exc.strerror or exc}). "
                             f"{fix}") from None
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        """Remove artifacts half-written by processes that are gone (their names carry the pid)."""
        for entry in self.tmp.iterdir():
            pid = entry.name.split(".")[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)

    def _init_schema(self) -> None:
        """Create the tables in a new store; an existing database is checked read-only first, so a
        foreign or newer file is refused without a single byte of it changed."""
        fix = "Move the file away (the store then starts empty) or point RECSYS_HOME to another folder."
        if self._db_path.exists() and self._db_path.stat().st_size > 0:
            try:
                db = sqlite3.connect(f"file:{self._db_path}?mode=ro", uri=True)
                try:
                    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                    found = (db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                             if "meta" in tables else None)
                    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
                finally:
                    db.close()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self._db_path} is not an experiment store database ({exc}). {fix}") from None
            if tables and found is None:
                raise StoreError(f"{self._db_path} is an SQLite database of another program (tables "
                                 f"{sorted(tables)}). {fix}")
            if found is not None and (found[0] != str(SCHEMA_VERSION) or not set(_RUN_COLUMNS) <= columns):
                raise StoreError(f"The experiment store at {self.root} has schema version {found[0]}, and this "
                                 f"program uses version {SCHEMA_VERSION}. Export its runs with the version that wrote "
                                 "it, or move the folder away to start an empty store.")
        with self._connect() as db:
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextlib.contextmanager
    def _connect(self):
        """One connection per operation (sqlite connections are not shared between threads);
        ``with`` makes the block one transaction, committed on success and rolled back on error."""
        try:
            db = sqlite3.connect(self._db_path, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open {self._db_path} ({exc}). Check the folder's permissions.") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                yield db
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc):
                raise StoreError(f"The experiment store {self._db_path} cannot be written ({exc}). Set RECSYS_HOME "
                                 "to a writable folder or fix its permissions.") from None
            raise
        finally:
            db.close()

    # ------------------------------------------------------------------ datasets
    def register_dataset(self, ds: Dataset, source: dict, label: str | None = None) -> str:
        """Remember the dataset by fingerprint (label, source descriptor, data card); returns the fingerprint."""
        card = data_card(ds, source)
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO datasets VALUES (?, ?, ?, ?, ?)",
                       (ds.fingerprint, label or source.get("label") or ds.name,
                        json.dumps(source, sort_keys=True, default=str), json.dumps(card), time.time()))
        return ds.fingerprint

    def dataset_info(self, fingerprint: str) -> dict | None:
        with self._connect() as db:
            row = db.execute("SELECT label, source, card FROM datasets WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if row is None:
            return None
        return {"fingerprint": fingerprint, "label": row[0], "source": json.loads(row[1]), "card": json.loads(row[2])}

    def shared_source(self, label: str, uploads_dir: str | Path | None = None) -> dict | None:
        """The source descriptor of a dataset stored under ``label`` that anyone may open here (the sample, a
        file on this server's disk that still exists), newest first; None for uploads and unknown labels, so a
        shared link never opens somebody else's upload."""
        with self._connect() as db:
            rows = db.execute("SELECT source FROM datasets WHERE label = ? ORDER BY created_at DESC",
                              (label,)).fetchall()
        for (raw,) in rows:
            source = json.loads(raw)
            if owner_scope(source, "", uploads_dir) != SHARED or source.get("kind") not in ("sample", "path"):
                continue
            if source.get("kind") == "sample" or Path(str(source.get("path", ""))).expanduser().exists():
                return source
        return None

    # ------------------------------------------------------------------ run lifecycle
    def begin(self, *, run_id: str, owner: str, model: str, label: str, params: dict, dataset: str,
              split: SplitConfig | dict, name: str | None = None) -> None:
        """Record a run as ``running`` by this process (replacing a failed or interrupted row of the same id)."""
        if isinstance(split, SplitConfig):
            split = split.to_dict()
        with _ACTIVE_LOCK:
            _ACTIVE.add(run_id)
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs (run_id, owner, name, model, label, params, seed, dataset, split, "
                "created_at, status, pid, host, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (run_id, owner, name or label, model, label, json.dumps(params, sort_keys=True),
                 int(split.get("seed", 0)), dataset, canonical_split(split), time.time(), os.getpid(), _HOST,
                 _PROCESS_TOKEN))

    def complete(self, run_id: str, *, model, report: Report, timings: dict, extra: dict | None = None) -> RunRecord:
        """Write the run's artifacts completely, then (one transaction) mark it ``done`` with its metrics.

        A run is done only with its model stored, or when the model's type declares ``storable =
        False`` (the run's extra then says so, once, as does a warning). A model that fails to save
        fails the run with the reason and raises StoreError: a done run without its model would be
        "reused" by every later visitor with nothing to inspect.
        """
        staging = self.tmp / f"{run_id}.{uuid.uuid4().hex[:8]}.{os.getpid()}"
        extra = dict(extra or {})
        model_stored = False
        try:
            staging.mkdir(parents=True)
            if model is None:
                raise ArtifactError("no fitted model was handed over to store")
            if not getattr(type(model), "storable", True):
                extra["model_not_stored"] = unstorable_note(type(model))
                warnings.warn(extra["model_not_stored"], stacklevel=2)
            else:
                try:
                    save_model(model, staging)
                except Exception as exc:  # any failure (a module reloaded under a file watcher, a full disk)
                    if isinstance(exc, OSError):
                        raise
                    reason = str(exc) if isinstance(exc, ArtifactError) else f"{type(exc).__name__}: {exc}"
                    raise ArtifactError(f"saving the {model.label} model failed ({reason})") from None
                model_stored = True
            save_report(report, staging)
            extra["stored_files"] = sorted(entry.name for entry in staging.iterdir())
            self._install(staging, self.artifacts / run_id)
        except ArtifactError as exc:
            self.fail(run_id, f"the run could not be stored: {exc}")
            raise StoreError(f"The run could not be stored, so it is marked failed: {exc}. Train it again; if it "
                             "fails the same way, this model type cannot be stored by this version.") from None
        except OSError as exc:
            self.fail(run_id, f"writing the artifacts failed: {exc}")
            raise StoreError(f"Writing the run's files under {self.artifacts} failed ({exc.strerror or exc}). "
                             "Free some disk space or fix the folder's permissions.") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            with _ACTIVE_LOCK:
                _ACTIVE.discard(run_id)
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'done', metrics = ?, timings = ?, extra = ?, has_model = ?, "
                       "error = NULL WHERE run_id = ?",
                       (json.dumps(report_metrics(report)), json.dumps(timings, default=_plain),
                        json.dumps(extra, default=_plain), int(model_stored), run_id))
        return self.get(run_id)

    def fail(self, run_id: str, error: str) -> None:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(run_id)
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'failed', error = ? WHERE run_id = ?", (error, run_id))

    def discard(self, run_id: str) -> None:
        """Forget a cancelled run entirely (row and any files)."""
        with _ACTIVE_LOCK:
            _ACTIVE.discard(run_id)
        self.delete(run_id)

    def _install(self, staging: Path, target: Path) -> None:
        """Move a complete artifact folder into place; an older folder of the same run is replaced.

        Each file was fsynced by ``atomic_write``; the folder's entry is synced after the rename, so a
        crash right after a run reads ``done`` cannot leave it without its files."""
        old = None
        if target.exists():
            old = self.tmp / f"{target.name}.old.{uuid.uuid4().hex[:8]}.{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
        _fsync_folder(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ reading
    def get(self, run_id: str) -> RunRecord | None:
        with self._connect() as db:
            row = db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def list(self, *, owner: str | None = None, dataset: str | None = None, split: dict | None = None,
             status: str | Iterable[str] | None = None) -> list[RunRecord]:
        """Runs oldest first; ``owner`` = runs that session may see (its own and the shared ones)."""
        where, args = [], []
        if owner is not None:
            where.append("owner IN (?, ?)")
            args += [SHARED, owner]
        if dataset is not None:
            where.append("dataset = ?")
            args.append(dataset)
        if split is not None:
            where.append("split = ?")
            args.append(canonical_split(split))
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._connect() as db:
            rows = db.execute(sql + " ORDER BY created_at, run_id", args).fetchall()
        records = [self._record(row) for row in rows]
        if status is not None:
            wanted = {status} if isinstance(status, str) else set(status)
            records = [r for r in records if r.status in wanted]
        return records

    def _record(self, row) -> RunRecord:
        values = dict(zip(_RUN_COLUMNS, row))
        status = values["status"]
        if status == "running" and not _still_running(values):
            status = "interrupted"
        return RunRecord(
            run_id=values["run_id"], owner=values["owner"], name=values["name"], model=values["model"],
            label=values["label"], params=json.loads(values["params"]), seed=int(values["seed"]),
            dataset=values["dataset"], split=json.loads(values["split"]), metrics=json.loads(values["metrics"]),
            timings=json.loads(values["timings"]), extra=json.loads(values["extra"]),
            has_model=bool(values["has_model"]), created_at=float(values["created_at"]), status=status,
            error=values["error"])

    def find_done(self, run_id: str, owner: str | None = None) -> RunRecord | None:
        """The run when it is finished, completely stored and visible to ``owner`` (None = any owner).

        A ``done`` row that is only half stored (see :meth:`half_stored`) reads as absent, so asking
        for the same configuration again trains it again and replaces it.
        """
        with self._connect() as db:
            row = db.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        record = self._record(row)
        if record.status != "done":
            return None
        if owner is not None and record.owner not in (SHARED, owner):
            return None
        trained_here = dict(zip(_RUN_COLUMNS, row))["token"] is not None  # imported rows have no process
        if self.half_stored(record, trained_here=trained_here) is not None:
            return None
        return record

    def half_stored(self, record: RunRecord, *, trained_here: bool = True) -> str | None:
        """Why a ``done`` run is not completely stored (None when it is): its folder or one of its files is
        missing or empty, or it was trained here and stored without the model of a type that can be
        stored. (A run imported from a bundle without models keeps only its evaluation, by choice.)"""
        folder = self.artifacts / record.run_id
        if not _valid_run_id(record.run_id) or not folder.is_dir():
            return "its files are missing"
        needed = {REPORT_JSON, REPORT_NPZ}
        if record.has_model:
            needed |= {"model.json", "arrays.npz"}
        elif trained_here and _storable(record.model):
            return "its model was not stored, though its model type can be"
        if trained_here:
            needed |= {str(name) for name in record.extra.get("stored_files") or ()}
        missing = sorted(name for name in needed if not _non_empty_file(folder / name))
        if missing:
            return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing or empty"
        return None

    def load_report(self, run_id: str) -> Report:
        try:
            return load_report(self._artifact_dir(run_id))
        except ArtifactError as exc:
            raise StoreError(f"The evaluation of run {run_id} cannot be read: {exc} Delete the run and train it "
                             "again.") from None

    def load_model(self, run_id: str, train: Dataset):
        """The run's fitted model, re-attached to ``train`` (the run's training set, re-made from its split)."""
        record = self.get(run_id)
        if record is not None and not record.has_model:
            raise StoreError(f"Run {run_id} ({record.name}) was stored without its model (e.g. imported from a "
                             "bundle without models); train it again to inspect the model.")
        try:
            return load_model(self._artifact_dir(run_id), train)
        except ArtifactError as exc:
            raise StoreError(f"The model of run {run_id} cannot be loaded: {exc} Delete the run and train it "
                             "again.") from None

    def _artifact_dir(self, run_id: str) -> Path:
        if not _valid_run_id(run_id):
            raise StoreError(f"{run_id!r} is not a run id (expected {_RUN_ID_LENGTH} hex digits).")
        folder = self.artifacts / run_id
        if not folder.is_dir():
            raise StoreError(f"The files of run {run_id} are missing from {self.artifacts}; delete the run and "
                             "train it again.")
        return folder

    # ------------------------------------------------------------------ managing
    def _check_actor(self, run_id: str, actor: Actor | None, verb: str) -> None:
        """Refuse ``actor`` changing a run it may not change; a run it cannot see reads as missing."""
        if actor is None:
            return
        record = self.get(run_id)
        if record is None or (record.owner not in (SHARED, actor.owner) and not actor.instructor):
            raise StoreError(f"There is no run {run_id} you can see in the store; list the runs to see their ids.")
        if not actor.may_change(record.owner):  # a shared run, and no instructor
            raise StoreError(f"{record.name} is a shared run: everyone on this server uses it, so only an instructor "
                             f"may {verb} it. Sign in as instructor on the Runs page, or train your own copy on an "
                             "upload.")

    def rename(self, run_id: str, name: str, *, actor: Actor | None = None) -> None:
        """Rename a run; with an ``actor``, only a run that actor may change (see :class:`Actor`)."""
        name = name.strip()
        if not name:
            raise StoreError("A run name cannot be empty; type a name.")
        self._check_actor(run_id, actor, "rename")
        with self._connect() as db:
            changed = db.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id)).rowcount
        if not changed:
            raise StoreError(f"There is no run {run_id} in the store; list the runs to see their ids.")

    def delete(self, run_id: str, *, actor: Actor | None = None) -> bool:
        """Remove the run's row and its files; True when there was such a run. With an ``actor``, only a
        run that actor may change (see :class:`Actor`)."""
        self._check_actor(run_id, actor, "delete")
        with self._connect() as db:
            deleted = db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        if _valid_run_id(run_id) and (self.artifacts / run_id).exists():
            trash = self.tmp / f"{run_id}.deleted.{uuid.uuid4().hex[:8]}.{os.getpid()}"
            os.replace(self.artifacts / run_id, trash)  # the rename is atomic; the slow removal is not
            shutil.rmtree(trash, ignore_errors=True)
        return bool(deleted)

    # ------------------------------------------------------------------ bundles
    def export_bundle(self, run_ids: Iterable[str], *, include_models: bool = False) -> bytes:
        """A zip: manifest.json (schema, params, metrics, data cards) + each run's evaluation [+ model]."""
        manifest = {"format": BUNDLE_FORMAT, "schema_version": BUNDLE_SCHEMA_VERSION, "exported_at": time.time(),
                    "runs": [], "datasets": {}}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for run_id in run_ids:
                record = self.get(run_id)
                if record is None or record.status != "done":
                    raise StoreError(f"Run {run_id} is not a finished run in this store; only finished runs export.")
                folder = self._artifact_dir(run_id)
                with_model = include_models and record.has_model
                entry = {k: v for k, v in record.to_dict().items() if k not in ("owner", "status", "error")}
                entry["has_model"] = with_model
                manifest["runs"].append(entry)
                info = self.dataset_info(record.dataset)
                if info is not None:
                    manifest["datasets"][record.dataset] = {"label": info["label"], "card": info["card"]}
                names = [REPORT_JSON, REPORT_NPZ] + (list(MODEL_FILES) if with_model else [])
                for name in names:
                    if (folder / name).exists():
                        zf.write(folder / name, f"runs/{run_id}/{name}")
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
        return buffer.getvalue()

    def import_bundle(self, payload: bytes, owner: str, *, limits=None) -> dict:
        """Add a bundle's runs (owned by ``owner``); all are checked before anything is written.

        Returns {"imported": [run ids], "skipped": [run ids already in the store]}. A damaged,
        foreign or oversized bundle raises StoreError and leaves the store as it was. The budgets
        (``limits``, default :func:`recsys.hosting.config`'s) are checked before any member is
        read: the payload's size, the number of members, each member's name and declared size,
        its compression ratio and the manifest's size; members are then unpacked in chunks to a
        staging folder, counted against the declared sizes and the unpacked budget as they come.
        """
        from recsys import hosting

        limits = limits or hosting.config().limits
        if len(payload) > limits.bundle_bytes:
            raise StoreError(f"The bundle is {hosting.human_bytes(len(payload))}; this server imports bundles of up "
                             f"to {hosting.human_bytes(limits.bundle_bytes)}. Export fewer runs, or export them "
                             "without their models.")
        members = _zip_entry_count(payload)
        if members is not None and members > limits.bundle_members:
            raise StoreError(f"The zip holds {members:,} files; an experiment bundle holds at most "
                             f"{limits.bundle_members:,} (five per run), so this is not one. Nothing was imported.")
        try:
            zf = zipfile.ZipFile(io.BytesIO(payload))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise StoreError("The file is not a zip archive, so it is not an experiment bundle. Export a bundle "
                             "from the Runs page and upload that file.") from None
        with zf:
            infos = _check_bundle_members(zf, limits)
            manifest = _read_manifest(zf, infos, limits)
            runs = [_check_bundle_run(entry, infos) for entry in manifest["runs"]]
            if len({entry["run_id"] for entry in runs}) < len(runs):
                raise StoreError("The bundle's manifest names the same run twice; the manifest is damaged.")
            datasets = manifest.get("datasets") if isinstance(manifest.get("datasets"), dict) else {}
            existing = {r.run_id for r in self.list()}
            new = [entry for entry in runs if entry["run_id"] not in existing]
            staged: dict[str, Path] = {}
            installed = []
            try:
                # every run is unpacked and checked (a damaged bundle is refused whole), the new ones installed
                budget = _Budget(limits.bundle_unpacked_bytes)
                for entry in runs:
                    run_id = entry["run_id"]
                    staging = self.tmp / f"{run_id}.import.{uuid.uuid4().hex[:8]}.{os.getpid()}"
                    staging.mkdir(parents=True)
                    staged[run_id] = staging
                    for name in entry["_files"]:
                        info = infos[f"runs/{run_id}/{name}"]
                        atomic_write(staging / name, lambda f, i=info: _unpack_member(zf, i, f, budget))
                    _check_run_files(run_id, staging, entry["has_model"], limits, budget)
                for entry in new:
                    self._install(staged.pop(entry["run_id"]), self.artifacts / entry["run_id"])
                    installed.append(entry["run_id"])
                with self._connect() as db:
                    for entry in new:
                        self._insert_imported(db, entry, owner, datasets.get(entry["dataset"]))
            except Exception:
                for run_id in installed:  # the rows were rolled back: take the files back out too
                    shutil.rmtree(self.artifacts / run_id, ignore_errors=True)
                raise
            finally:
                for staging in staged.values():
                    shutil.rmtree(staging, ignore_errors=True)
        return {"imported": [e["run_id"] for e in new], "skipped": [e["run_id"] for e in runs if e not in new]}

    def _insert_imported(self, db, entry: dict, owner: str, dataset: dict | None) -> None:
        if isinstance(dataset, dict) and isinstance(dataset.get("card"), dict):
            db.execute("INSERT OR IGNORE INTO datasets VALUES (?, ?, ?, ?, ?)",
                       (entry["dataset"], str(dataset.get("label", entry["dataset"])),
                        json.dumps({"kind": "imported"}), json.dumps(dataset["card"]), time.time()))
        db.execute(
            "INSERT INTO runs (run_id, owner, name, model, label, params, seed, dataset, split, metrics, timings, "
            "extra, has_model, created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'done')",
            (entry["run_id"], owner, entry["name"], entry["model"], entry["label"],
             json.dumps(entry["params"], sort_keys=True), int(entry["seed"]), entry["dataset"],
             canonical_split(entry["split"]), json.dumps(entry["metrics"]), json.dumps(entry["timings"]),
             json.dumps(entry["extra"]), int(entry["has_model"]), float(entry["created_at"])))


# ---------------------------------------------------------------------- bundle checks
# What an exported bundle holds: manifest.json and, per run, these files (nothing else, no folders
# but runs/ and runs/<id>/). A bundle is refused before any member is read when it breaks a rule.
_BUNDLE_FILES = "|".join(re.escape(n) for n in (REPORT_JSON, REPORT_NPZ) + MODEL_FILES)
_BUNDLE_MEMBER = re.compile(rf"runs/([0-9a-f]{{{_RUN_ID_LENGTH}}})/({_BUNDLE_FILES})")
_BUNDLE_FOLDER = re.compile(rf"runs/(?:[0-9a-f]{{{_RUN_ID_LENGTH}}}/)?")
MANIFEST_MAX_BYTES = 16 * 1024**2  # a run's entry is ~2 KB: room for thousands of runs
_CHUNK = 1024**2
_RATIO_FLOOR = 1024**2  # smaller members may compress well (a report of zeros) without harm


class _Budget:
    """Bytes a bundle may still unpack to; every member and every array inside a member takes from it."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, size: int, what: str) -> None:
        from recsys.hosting import human_bytes

        self.used += size
        if self.used > self.limit:
            raise StoreError(f"The bundle unpacks to more than the {human_bytes(self.limit)} this server unpacks "
                             f"(reached at {what}). Export fewer runs, or without their models.")


def _zip_entry_count(payload: bytes) -> int | None:
    """The member count a zip's end record declares (zip64 too), read before the central directory is
    parsed; None when there is no end record (then zipfile refuses the file anyway)."""
    tail_start = max(0, len(payload) - (65535 + 22))
    at = payload.rfind(b"PK\x05\x06", tail_start)
    if at < 0 or at + 22 > len(payload):
        return None
    count = int.from_bytes(payload[at + 10:at + 12], "little")
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and payload[locator:locator + 4] == b"PK\x06\x07":
        offset = int.from_bytes(payload[locator + 8:locator + 16], "little")
        if payload[offset:offset + 4] == b"PK\x06\x06":
            count = int.from_bytes(payload[offset + 32:offset + 40], "little")
    return count


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _check_bundle_members(zf: zipfile.ZipFile, limits) -> dict[str, zipfile.ZipInfo]:
    """Every member's name, method and declared size, from the central directory alone."""
    from recsys.hosting import human_bytes

    infos = zf.infolist()
    if len(infos) > limits.bundle_members:
        raise StoreError(f"The zip holds {len(infos):,} files; an experiment bundle holds at most "
                         f"{limits.bundle_members:,} (five per run), so this is not one. Nothing was imported.")
    found: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or ":" in name or "\x00" in name:
            raise StoreError(f"The bundle holds a file with an unsafe path, {_shown(name)} (absolute, with '..' or "
                             "a drive). A bundle exported by this program never does; nothing was imported.")
        if info.is_dir() and _BUNDLE_FOLDER.fullmatch(name):
            continue
        if name != "manifest.json" and not _BUNDLE_MEMBER.fullmatch(name):
            raise StoreError(f"The bundle holds {_shown(name)}, which is not part of an experiment bundle "
                             "(manifest.json and runs/<run id>/ with a run's report and model files). Export "
                             "the bundle again from the Runs page.")
        if name in found:
            raise StoreError(f"The bundle holds {_shown(name)} twice; it is damaged or crafted. Export it again.")
        if info.flag_bits & 0x1:
            raise StoreError(f"{_shown(name)} in the bundle is encrypted; bundles are never encrypted.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise StoreError(f"{_shown(name)} in the bundle is compressed with a method bundles do not use "
                             f"(zip method {info.compress_type}); export the bundle again.")
        if info.file_size > limits.bundle_unpacked_bytes:
            raise StoreError(f"{_shown(name)} in the bundle would unpack to {human_bytes(info.file_size)}, over the "
                             f"{human_bytes(limits.bundle_unpacked_bytes)} this server unpacks. Export fewer runs, "
                             "or without their models.")
        if info.file_size > _RATIO_FLOOR and info.file_size > limits.compression_ratio * max(info.compress_size, 1):
            raise StoreError(f"{_shown(name)} in the bundle would inflate "
                             f"{info.file_size / max(info.compress_size, 1):,.0f}-fold "
                             f"({human_bytes(info.compress_size)} to {human_bytes(info.file_size)}), more than the "
                             f"{limits.compression_ratio:,.0f}-fold this server allows: a zip bomb, not an exported "
                             "bundle. Nothing was imported.")
        total += info.file_size
        found[name] = info
    if total > limits.bundle_unpacked_bytes:
        raise StoreError(f"The bundle would unpack to {human_bytes(total)}, over the "
                         f"{human_bytes(limits.bundle_unpacked_bytes)} this server unpacks. Export fewer runs, or "
                         "without their models.")
    return found


def _unpack_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out, budget: _Budget) -> None:
    """Copy one member to ``out`` in chunks, never past its declared size or the bundle's budget."""
    written = 0
    try:
        with zf.open(info) as member:
            while chunk := member.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise StoreError(f"{_shown(info.filename)} in the bundle unpacks to more than the "
                                     f"{info.file_size:,} bytes it declares; the bundle is crafted or damaged.")
                budget.take(len(chunk), _shown(info.filename))
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise StoreError(f"{_shown(info.filename)} in the bundle is damaged: its contents do not match its declared "
                         f"size or checksum ({exc}). Export the bundle again.") from None
    if written != info.file_size:
        raise StoreError(f"{_shown(info.filename)} in the bundle unpacks to {written:,} bytes, not the "
                         f"{info.file_size:,} it declares; export the bundle again.")


def _read_manifest(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], limits) -> dict:
    from recsys.hosting import human_bytes

    info = infos.get("manifest.json")
    if info is None:
        raise StoreError("The zip has no manifest.json, so it is not an experiment bundle.")
    limit = min(MANIFEST_MAX_BYTES, limits.bundle_unpacked_bytes)
    if info.file_size > limit:
        raise StoreError(f"The bundle's manifest.json is {human_bytes(info.file_size)}; a manifest is at most "
                         f"{human_bytes(limit)} (a run's entry takes about 2 KB). It was not read; export the "
                         "bundle again.")
    buffer = io.BytesIO()
    _unpack_member(zf, info, buffer, _Budget(limit))
    try:
        manifest = json.loads(buffer.getvalue())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise StoreError("The bundle's manifest.json is damaged (not readable JSON); export the bundle again.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise StoreError("The zip's manifest.json is not an experiment bundle manifest (wrong 'format').")
    if manifest.get("schema_version") != BUNDLE_SCHEMA_VERSION:
        raise StoreError(f"The bundle has schema version {manifest.get('schema_version')!r}; this program reads "
                         f"version {BUNDLE_SCHEMA_VERSION}. Export it again with a matching version.")
    if not isinstance(manifest.get("runs"), list):
        raise StoreError("The bundle's manifest has no list of runs.")
    return manifest


_BUNDLE_FIELDS = {"run_id": str, "name": str, "model": str, "label": str, "params": dict, "seed": int,
                  "dataset": str, "split": dict, "metrics": dict, "timings": dict, "extra": dict, "has_model": bool,
                  "created_at": (int, float)}


def _check_bundle_run(entry, infos: dict[str, zipfile.ZipInfo]) -> dict:
    """One manifest run, type-checked, with the files it needs present (their contents are checked
    once unpacked, by ``_check_run_files``)."""
    if not isinstance(entry, dict):
        raise StoreError("A run in the bundle's manifest is not an object; the manifest is damaged.")
    for key, kind in _BUNDLE_FIELDS.items():
        value = entry.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise StoreError(f"A run in the bundle lacks {key!r} or has the wrong type for it "
                             f"(expected {getattr(kind, '__name__', 'a number')}); the manifest is damaged or from "
                             "another program.")
    run_id = entry["run_id"]
    if not _valid_run_id(run_id):
        raise StoreError(f"The bundle names a run {_shown(run_id)}, which is not a run id.")
    required = [REPORT_JSON, REPORT_NPZ] + (["model.json", "arrays.npz"] if entry["has_model"] else [])
    missing = [name for name in required if f"runs/{run_id}/{name}" not in infos]
    # the weights file exists only for torch models
    files = required + [name for name in ("modules.pt",) if entry["has_model"] and f"runs/{run_id}/{name}" in infos]
    if missing:
        raise StoreError(f"The bundle lacks {missing} of run {run_id}; export the bundle again.")
    return {**entry, "_files": files}


def _check_inner_zip(path: Path, run_id: str, limits, budget: _Budget) -> None:
    """An npz (or torch) file is a zip too: its members' declared sizes, ratios and (npz) array headers
    are checked before numpy or torch would unpack them."""
    where = f"{path.name} of run {run_id}"
    try:
        with zipfile.ZipFile(path) as inner:
            infos = inner.infolist()
            if len(infos) > limits.bundle_members:
                raise StoreError(f"{where} holds {len(infos):,} arrays; that is no stored run. Nothing was imported.")
            # what the arrays take beyond the file itself (np.savez stores them as they are: nothing)
            budget.take(max(0, sum(info.file_size for info in infos) - path.stat().st_size), where)
            for info in infos:
                if info.file_size > _RATIO_FLOOR and \
                        info.file_size > limits.compression_ratio * max(info.compress_size, 1):
                    raise StoreError(f"{where} would inflate {info.file_size / max(info.compress_size, 1):,.0f}-fold "
                                     f"inside; more than the {limits.compression_ratio:,.0f}-fold this server "
                                     "allows: a zip bomb, not a stored run. Nothing was imported.")
                if path.suffix == ".npz" and info.filename.endswith(".npy"):
                    with inner.open(info) as member:
                        version = np.lib.format.read_magic(member)
                        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                  else np.lib.format.read_array_header_2_0)
                        shape, _, dtype = header(member, max_header_size=10_000)
                    if dtype.hasobject:
                        raise StoreError(f"{where} holds Python objects ({info.filename[:-4]!r} is an object "
                                         "array), which this program never loads: they would be unpickled. "
                                         "Nothing was imported.")
                    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
                        raise StoreError(f"{where} declares an array ({info.filename[:-4]!r}, shape {shape}) larger "
                                         "than the data it holds; the file is damaged or crafted.")
    except zipfile.BadZipFile:
        if path.suffix == ".npz":
            raise StoreError(f"{where} is damaged (not an npz archive); export the bundle again.") from None


def _check_run_files(run_id: str, folder: Path, has_model: bool, limits, budget: _Budget) -> None:
    """A run's unpacked files, readable without pickle and within the budget."""
    try:
        for name in (REPORT_NPZ, "arrays.npz", "modules.pt"):
            if (folder / name).exists():
                _check_inner_zip(folder / name, run_id, limits, budget)
        json.loads((folder / REPORT_JSON).read_bytes())
        with np.load(folder / REPORT_NPZ, allow_pickle=False) as npz:
            for name in npz.files:
                npz[name]
        if has_model:
            read_header(folder)
    except StoreError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, RecursionError,
            ArtifactError) as exc:
        raise StoreError(f"The files of run {run_id} in the bundle are damaged ({exc}); export the bundle "
                         "again.") from None


def _plain(value):
    """JSON for numpy scalars (losses in a training history are often float32)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def unstorable_note(cls: type) -> str:
    """What a run of a model type that declares ``storable = False`` says about its missing model."""
    return (f"{cls.label} models are not stored (the model type cannot be saved safely): the run keeps its "
            "evaluation; train it again to inspect or serve the model.")


def _storable(model_key: str) -> bool:
    from recsys.models.registry import registry

    cls = registry.get(model_key)
    return cls is not None and bool(getattr(cls, "storable", True))


def _non_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _valid_run_id(run_id) -> bool:
    return isinstance(run_id, str) and len(run_id) == _RUN_ID_LENGTH and all(c in "0123456789abcdef" for c in run_id)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _still_running(values: dict) -> bool:
    """Whether the process that wrote a ``running`` row is still training it."""
    if values["token"] == _PROCESS_TOKEN:
        with _ACTIVE_LOCK:
            return values["run_id"] in _ACTIVE
    if values["host"] != _HOST:
        return True  # another machine's process: nothing here can tell, so trust the row
    pid = values["pid"]
    return pid is not None and int(pid) != os.getpid() and _pid_alive(int(pid))


# ---------------------------------------------------------------------- training through the store
def train_or_reuse(store: ExperimentStore, dataset: Dataset, source: dict, split: SplitConfig | dict, model_key: str,
                   params: dict | None = None, *, owner: str = SHARED, name: str | None = None,
                   progress: Callable | None = None, load: bool = True):
    """The finished run of this configuration from the store, or train, evaluate and store it now:
    :func:`recsys.experiment.run` for callers that hold the pieces rather than a RunSpec."""
    from recsys import experiment  # experiment builds on this module

    spec = experiment.RunSpec.make(dataset, split, model_key, params, owner=owner)
    return experiment.run(spec, dataset, store=store, source=source, name=name, progress=progress, load=load)


# ---------------------------------------------------------------------- listing for people
def split_text(split: dict) -> str:
    """A split config in words: "random 20% · seed 42"."""
    method = split.get("method", "?")
    if method == "leave_last":
        text = f"leave last {split.get('n', 1)} out"
    else:
        text = f"{method} {float(split.get('test_fraction', 0.2)):.0%}"
    if method == "random":
        text += f" · seed {split.get('seed')}"
    if split.get("positives") == "threshold":
        text += f" · ratings ≥ {split.get('threshold')}"
    return text


def run_rows(store: ExperimentStore, records: Iterable[RunRecord], owner: str | None = None) -> list[dict]:
    """One row per run for a table: name, model, dataset, split, NDCG@10, status, created, scope."""
    labels: dict[str, str] = {}
    rows = []
    for record in records:
        if record.dataset not in labels:
            info = store.dataset_info(record.dataset)
            labels[record.dataset] = info["label"] if info else record.dataset
        rows.append({
            "run_id": record.run_id, "name": record.name, "model": record.label, "dataset": labels[record.dataset],
            "split": split_text(record.split), "ndcg@10": record.metrics.get("ndcg@10"), "status": record.status,
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at)),
            "scope": "shared" if record.owner == SHARED else ("yours" if record.owner == owner else record.owner),
            "model stored": record.has_model,
        })
    return rows
