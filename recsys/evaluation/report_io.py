"""A run's evaluation on disk: the report as JSON (scalars, means, intervals) plus an npz of every
per-user array, and the flat metric row the experiment store keeps in its database.

Nothing is pickled: the arrays load with ``allow_pickle=False``. The store keeps reports through
these functions and computes none.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from recsys.evaluation.evaluator import Report
from recsys.models.persist import ArtifactError, atomic_write

REPORT_JSON, REPORT_NPZ = "report.json", "report.npz"


def save_report(report: Report, folder: Path) -> None:
    """The report as JSON (scalars, means, intervals) and an npz (every per-user array)."""
    arrays = {"users": report.users, "recommended": report.recommended, "hits": report.hits,
              "n_relevant": report.n_relevant, "gains": report.gains, "ideal_gains": report.ideal_gains}
    arrays.update({f"per_user/{name}": values for name, values in report.per_user.items()})
    header = {"k": list(report.k), "means": report.means, "ci": {k: list(v) for k, v in report.ci.items()},
              "list_level": report.list_level, "per_user": list(report.per_user), "n_items": report.n_items,
              "n_skipped_users": report.n_skipped_users, "score_seconds": report.score_seconds,
              "total_seconds": report.total_seconds, "rmse": report.rmse, "mae": report.mae,
              "n_rated": report.n_rated, "model": report.model, "extra": report.extra}
    atomic_write(folder / REPORT_JSON, lambda f: f.write(json.dumps(header).encode()))
    atomic_write(folder / REPORT_NPZ, lambda f: np.savez(f, **arrays))


def load_report(folder: Path) -> Report:
    """A report saved by :func:`save_report`; damaged or foreign files raise ArtifactError."""
    try:
        header = json.loads((folder / REPORT_JSON).read_text())
        with np.load(folder / REPORT_NPZ, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except FileNotFoundError as exc:
        raise ArtifactError(f"{Path(exc.filename).name} is missing; the run's evaluation is incomplete.") from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"the evaluation files are damaged or not this program's ({type(exc).__name__}).") from None
    try:
        return Report(
            k=[int(k) for k in header["k"]], users=arrays["users"],
            per_user={name: arrays[f"per_user/{name}"] for name in header["per_user"]},
            means={k: float(v) for k, v in header["means"].items()},
            ci={k: (float(v[0]), float(v[1])) for k, v in header["ci"].items()},
            list_level={k: float(v) for k, v in header["list_level"].items()},
            recommended=arrays["recommended"], hits=arrays["hits"], n_relevant=arrays["n_relevant"],
            gains=arrays["gains"], ideal_gains=arrays["ideal_gains"], n_items=int(header["n_items"]),
            n_skipped_users=int(header["n_skipped_users"]), score_seconds=float(header["score_seconds"]),
            total_seconds=float(header["total_seconds"]), rmse=header["rmse"], mae=header["mae"],
            n_rated=int(header["n_rated"]), model=str(header["model"]), extra=dict(header.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{REPORT_JSON} lacks or garbles the entry {exc}; it is not this program's file.") from None


def report_metrics(report: Report) -> dict:
    """The flat metric row kept in the database (tables and the CLI read it without the arrays)."""
    row = dict(report.means)
    row.update(report.list_level)
    row.update({f"{name} ci": list(ci) for name, ci in report.ci.items()})
    if report.rmse is not None:
        row.update({"rmse": report.rmse, "mae": report.mae})
    row["n_users"] = int(len(report.users))
    return row
