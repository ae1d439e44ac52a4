"""Fixtures most backend tests share: the bundled sample (loaded once per test process; a Dataset is
immutable, so sharing it is safe) and an empty experiment store per test."""

from __future__ import annotations

import pytest

from recsys.data import load
from recsys.store import ExperimentStore


@pytest.fixture(scope="session")
def sample():
    return load("sample")


@pytest.fixture
def store(tmp_path):
    return ExperimentStore(tmp_path / "store")
