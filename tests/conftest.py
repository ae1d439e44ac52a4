"""Shared fixtures: where the real MovieLens copies live, and those datasets loaded once per session.

Real data is looked for in ``RECSYS_DATA_DIR``, then in ``../shared/datasets`` beside the
repository. Without it the tests that need it skip, except under ``CI=true``, where a
missing dataset fails the run (a CI job that silently skips its real-data checks proves nothing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# One torch thread, as the app's training jobs use (ui/jobs.py) and as the quality floors were
# measured: a different thread count changes the order of float reductions, hence the last
# digits of a trained model, whichever test file happens to run first.
torch.set_num_threads(1)


def _missing(message: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true requires the real datasets)")
    pytest.skip(message)


def _candidate_dirs() -> list[Path]:
    found = []
    if os.environ.get("RECSYS_DATA_DIR"):
        found.append(Path(os.environ["RECSYS_DATA_DIR"]).expanduser())
    found.append(REPO_ROOT.parent / "shared" / "datasets")
    return found


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding ml-100k/ and ml-latest-small/."""
    candidates = _candidate_dirs()
    for folder in candidates:
        if folder.is_dir():
            return folder
    _missing(f"real datasets not found in {', '.join(map(str, candidates))}; set RECSYS_DATA_DIR")


def _dataset_folder(data_dir: Path, name: str) -> Path:
    folder = data_dir / name
    if not folder.is_dir():
        _missing(f"{folder} does not exist")
    return folder


@pytest.fixture(scope="session")
def ml100k(data_dir):
    from recsys.data import load

    return load(_dataset_folder(data_dir, "ml-100k"))


@pytest.fixture(scope="session")
def ml_latest_small(data_dir):
    from recsys.data import load

    return load(_dataset_folder(data_dir, "ml-latest-small"))


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (two cores, as the CI machine has) shared by every Spark test in a pytest
    process; skipped without Java 17 and pyspark, failing under CI=true."""
    from recsys.spark import session as spark_session
    from recsys.spark.session import SparkSettings

    reason = spark_session.missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true requires Spark)")
        pytest.skip(reason)
    return spark_session.get_session(SparkSettings(master="local[2]", driver_memory="1g"))
