"""Fixtures most backend tests share: the bundled sample (loaded once per test process; a Dataset is
immutable, so sharing it is safe), an empty experiment store per test, and the registry-wide
contract fixtures (every registered key, each model fitted on the block dataset), so a model joins
the contract and capability suites by registering."""

from __future__ import annotations

import os

import pytest

from recsys.data import load
from recsys.models import create, registry
from recsys.store import ExperimentStore


@pytest.fixture(scope="session")
def sample():
    return load("sample")


@pytest.fixture
def store(tmp_path):
    return ExperimentStore(tmp_path / "store")


@pytest.fixture(scope="module")
def blocks():
    from tests.unit.test_model_contract import _block_data

    return _block_data()


@pytest.fixture(params=sorted(registry), scope="module")
def key(request):
    # a model whose engine is not installed here (spark_als without Java 17 and pyspark) is skipped,
    # except under CI=true, which installs every engine, so its absence there is a failure
    cls = registry[request.param]
    if hasattr(cls, "available") and not cls.available():
        message = f"{request.param}: {cls.description}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return request.param


@pytest.fixture(scope="module")
def fitted(key, blocks):
    train, _ = blocks
    return create(key).fit(train)
