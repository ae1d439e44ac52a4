"""A newcomer's first visit in a real browser: see the sample, train two models, compare them.

Screenshots of every step go to tests/e2e/screenshots/ (gitignored, for looking at a failure);
the Data and Compare pages are also written to docs/screenshots/ for the README.
"""

from __future__ import annotations

import re

import pytest

from recsys.data import load
from tests.e2e.helpers import DOC_SHOTS, nav, no_exception_box, shot, train_model, wait_charts, wait_idle


@pytest.mark.e2e
def test_newcomer_sees_data_trains_two_models_and_compares_them(server, browser_page):
    page = browser_page
    sample = load("sample")

    # 1. the app opens on the Data page with the bundled sample
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    users = page.locator("[data-testid=stMetric]", has_text="Users")
    users.wait_for()
    assert f"{sample.n_users:,}" in users.inner_text()
    interactions = page.locator("[data-testid=stMetric]", has_text="Interactions")
    assert f"{sample.n_interactions:,}" in interactions.inner_text()
    page.get_by_text(sample.name).first.wait_for()
    wait_charts(page, 5)
    wait_idle(page)
    no_exception_box(page)
    shot(page, "01-data.png", DOC_SHOTS / "data.png")

    # 2. Train, through the sidebar navigation
    nav(page, "Train")
    page.wait_for_url(re.compile(r"/train$"))
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    no_exception_box(page)
    shot(page, "02-train.png")

    for number, label in ((3, "Most popular"), (4, "Item-item kNN")):
        train_model(page, label)
        no_exception_box(page)
        shot(page, f"0{number}-trained-{label.split()[0].lower()}.png")
    page.get_by_role("heading", name="Trained in this session").wait_for()

    # 3. Compare both runs
    nav(page, "Compare")
    page.wait_for_url(re.compile(r"/compare(\?.*)?$"))
    page.get_by_role("heading", name="Metrics at K = 10").wait_for()
    wait_charts(page, 4)
    page.get_by_role("heading", name="Is the difference real?").wait_for()
    wait_idle(page)
    no_exception_box(page)
    # the verdict is drawn after the two model pickers; on a loaded runner it can come a moment later
    verdict = re.compile(r"(Most popular|Item-item kNN) is better than (Most popular|Item-item kNN) on NDCG@10")
    page.get_by_text(verdict).first.wait_for()
    main = page.locator("[data-testid=stMain]").inner_text()
    for label in ("Most popular", "Item-item kNN"):
        assert label in main
    assert verdict.search(main)
    assert "No trained models" not in main
    shot(page, "05-compare.png", DOC_SHOTS / "compare.png")
    page.get_by_role("heading", name="Is the difference real?").scroll_into_view_if_needed()
    shot(page, "06-compare-paired-test.png")

    # 4. Look inside: train PureSVD, then its embedding map, then the user-item graph
    nav(page, "Train")
    page.get_by_role("heading", name="Train").first.wait_for()
    train_model(page, "PureSVD", add=True)

    nav(page, "Embeddings")
    page.get_by_role("heading", name="Nearest in the embedding space").wait_for()
    wait_charts(page, 1)
    wait_idle(page)
    no_exception_box(page)
    shot(page, "07-embeddings.png", DOC_SHOTS / "embeddings.png")

    nav(page, "Graph")
    page.get_by_role("heading", name="How LightGCN's layers pull neighbours together").wait_for()
    page.locator("iframe[title='streamlit_agraph.agraph']").wait_for()  # the interactive graph
    wait_idle(page)
    no_exception_box(page)
    shot(page, "08-graph.png", DOC_SHOTS / "graph.png")

    nav(page, "Attention")
    page.get_by_text("No trained model with attention").wait_for()
    no_exception_box(page)
