"""The Data page's "Large log (Spark)" tab through app.py: statistics counted by Spark equal
recsys.data.stats' on the same file, Spark ALS trains with its progress and its result survives a
rerun, and a hosted server offers no path to type.

The tests that run Spark share one local session and skip where pyspark or Java 17 is missing,
except under CI=true, where that is a failure (as in tests/unit/test_spark_als.py).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from recsys.data import Dataset
from recsys.data import stats as data_stats
from recsys.spark import session as spark_session
from tests.app.conftest import APP
from tests.app.test_pages import assert_clean, charts, submit
from ui.data import SPARK_HOSTED
from ui.text import md_unescape

COUNT, TRAIN = "Count with Spark", "Train Spark ALS"



@pytest.fixture
def slow_app() -> AppTest:
    """The app with room for Spark's first jobs on a loaded machine (a page run waits for the fit)."""
    return AppTest.from_file(str(APP), default_timeout=600)


def write_log(path, n_users=50, n_items=30, per_user=10, seed=1):
    """An explicit-feedback CSV with guessable columns; one repeated pair, so the last-one-wins rule matters."""
    rng = np.random.default_rng(seed)
    rows = [(u, i, int(rng.integers(1, 6)), 1_600_000_000 + 60 * n)
            for n, (u, i) in enumerate((u, i) for u in range(1, n_users + 1)
                                       for i in rng.choice(np.arange(1, n_items + 1), per_user, replace=False))]
    rows.append((rows[0][0], rows[0][1], 5, 1_700_000_000))
    table = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    table.to_csv(path, index=False)
    return table


def count(app, path):
    app.run()
    app.text_input(key="spark_path").set_value(str(path))
    submit(app, COUNT)
    assert_clean(app)


def wait_for_fit(app, limit: float = 600.0) -> list[str]:
    """Rerun the page (as its progress panel does every second) until the fit's message shows."""
    deadline = time.monotonic() + limit
    while True:
        said = [md_unescape(s.value) for s in app.success]
        if any(s.startswith("Spark ALS: NDCG@10 = ") for s in said) or app.error or app.exception:
            return said
        assert time.monotonic() < deadline, f"Spark ALS still training after {limit:.0f} s"
        time.sleep(0.2)
        app.run()


def shown_summary(app) -> dict:
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["figure", "value"])
    return dict(zip(table["figure"], table["value"]))


def test_spark_counts_what_the_data_page_counts_in_memory(spark, slow_app, tmp_path):
    path = tmp_path / "clicks.csv"
    table = write_log(path)
    expected = data_stats.summary(Dataset.from_frame(table, user="user_id", item="item_id", rating="rating",
                                                     timestamp="timestamp", name="clicks"))
    expected["has_item_metadata"] = False     # the Spark path carries interactions only
    count(slow_app, path)
    shown = shown_summary(slow_app)
    assert shown.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert float(shown[key]) == pytest.approx(value, rel=1e-12), key
        else:
            assert shown[key] == str(value), key
    assert f"{expected['interactions']:,}" in [m.value for m in slow_app.metric]
    # the current dataset's four charts, and the Spark log's four beside them
    titles = charts(slow_app)
    assert titles.count("How active are users?") == 2 and titles.count("How popular are items?") == 2


def test_spark_als_trains_with_progress_and_its_result_outlives_a_rerun(spark, slow_app, tmp_path):
    path = tmp_path / "clicks.csv"
    write_log(path)
    count(slow_app, path)
    slow_app.number_input(key="spark_rank").set_value(4)
    slow_app.number_input(key="spark_iter").set_value(2)
    submit(slow_app, TRAIN)
    assert_clean(slow_app)
    # the bar is drawn while the fit runs in its worker thread (the page run itself does not wait)
    assert [p for p in slow_app.get("progress") if "Spark" in md_unescape(p.proto.text)]
    said = wait_for_fit(slow_app)
    assert any(s.startswith("Spark ALS: NDCG@10 = ") and "on 50 test users" in s for s in said), said
    results = next(d.value for d in slow_app.dataframe if "NDCG@10" in d.value.columns)
    row = results.iloc[0]
    assert len(results) == 1 and (row["embedding_size"], row["iterations"]) == (4, 2)
    assert 0 < row["NDCG@10"] <= 1 and row["Spark tasks"] > 0
    # 50 users with 10 interactions each: ceil(20 %) = 2 held out per user
    assert (row["train"], row["test"]) == (400, 100)
    slow_app.run()
    assert_clean(slow_app)
    again = next(d.value for d in slow_app.dataframe if "NDCG@10" in d.value.columns)
    assert again.equals(results)
    # to another page and back: the log's figures and the result are still there, nothing re-read
    slow_app.switch_page("app_pages/runs.py").run()
    slow_app.switch_page("app_pages/data.py").run()
    assert_clean(slow_app)
    assert next(d.value for d in slow_app.dataframe if "NDCG@10" in d.value.columns).equals(results)
    assert shown_summary(slow_app)["interactions"] == "500"


def test_a_hosted_server_offers_no_path_to_type(app, monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    app.run()
    assert not app.exception
    assert "spark_path" not in [t.key for t in app.text_input]
    assert any(md_unescape(i.value) == SPARK_HOSTED for i in app.info)
    assert COUNT not in [b.label for b in app.button]


def test_without_spark_the_tab_says_what_to_install(app, monkeypatch):
    monkeypatch.setattr("recsys.spark.missing", lambda: "No Java runtime was found (JAVA_HOME or java on the "
                                                        f"PATH). {spark_session.INSTALL_HINT}")
    app.run()
    assert not app.exception
    warned = [md_unescape(w.value) for w in app.warning if "Spark cannot run here" in md_unescape(w.value)]
    assert len(warned) == 1
    assert "Java 17" in warned[0] and "pip install -r requirements-spark.txt" in warned[0]
    assert "spark_path" not in [t.key for t in app.text_input]
