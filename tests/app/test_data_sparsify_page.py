"""The Data page's thinning slider: item-item vs user-user kNN as the density falls, through app.py."""

from __future__ import annotations

import pytest

from recsys import estimate
from recsys.lessons import sparsity
from tests.app.test_pages import assert_clean, charts, submit
from ui.text import md_unescape

BUTTON = "Compare item-kNN and user-kNN as density falls"


def sweep_table(app):
    return next(d.value for d in app.dataframe if "User-user kNN share of full" in d.value.columns)


def test_the_slider_thins_the_data_and_compares_both_neighbourhoods(app):
    app.run()
    assert_clean(app)
    assert not [d for d in app.dataframe if "share kept" in d.value.columns]  # nothing trains before the click
    app.select_slider(key="data_sparsify_keep").set_value(0.25)
    app.slider(key="data_sparsify_core").set_value(5)
    submit(app, BUTTON)
    assert_clean(app)
    table = sweep_table(app)
    assert list(table["share kept"]) == [1.0, 0.5, 0.25]
    assert table["density"].is_monotonic_decreasing and table["interactions"].is_monotonic_decreasing
    assert (table[["Item-item kNN", "User-user kNN"]] > 0).all().all()
    assert "Item-item vs user-user kNN as the data thins" in charts(app)
    explanation = next(text for i in app.info if "item-item NDCG@10 went" in (text := md_unescape(i.value)))
    assert f"{table['Item-item kNN'].iloc[0]:.3f}" in explanation

    # the same sweep again is the cached result: another rerun shows the same numbers
    app.run()
    assert sweep_table(app).equals(table)


def test_a_hosted_server_refuses_a_sweep_over_the_budget_before_any_training(app, monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setattr(estimate, "LONG_FIT_SECONDS", 1e-3)
    app.run()
    app.select_slider(key="data_sparsify_keep").set_value(0.5)
    submit(app, BUTTON)
    assert not app.exception
    assert any("training may take on this shared server" in e.value for e in app.error)
    assert not [d for d in app.dataframe if "share kept" in d.value.columns]


def test_halvings_run_from_the_full_data_down_to_the_lowest_share():
    assert sparsity.halvings(0.12) == "1, 0.5, 0.25, 0.12"
    assert sparsity.halvings(0.5) == "1, 0.5"
    assert sparsity.halvings(0.03) == "1, 0.5, 0.25, 0.125, 0.0625, 0.03"
    with pytest.raises(Exception, match="between 0 and 1"):
        sparsity.halvings(1.0)


def test_a_sweep_asked_for_on_one_dataset_does_not_run_on_the_next(app):
    app.run()
    app.select_slider(key="data_sparsify_keep").set_value(0.5)
    submit(app, BUTTON)
    assert_clean(app)
    assert sweep_table(app) is not None
    asked = app.session_state["data_sparsify_run"]
    app.session_state["data_sparsify_run"] = {**asked, "dataset": "another dataset's fingerprint"}
    app.run()
    assert_clean(app)
    assert not [d for d in app.dataframe if "share kept" in d.value.columns]
