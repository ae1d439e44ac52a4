"""AppTest fixtures: a fresh app run through app.py (shared sidebar and state), isolated from other tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Uploads go to a temporary RECSYS_HOME; caches (datasets, splits, the run cache) start empty.

    The run cache is an st.cache_resource shared by the whole process, so without clearing it
    a model trained in one test would be "already trained — reusing it" in the next.
    """
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "recsys-home"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app() -> AppTest:
    """The app as a person opens it (Data page), not yet run."""
    return AppTest.from_file(str(APP), default_timeout=60)
