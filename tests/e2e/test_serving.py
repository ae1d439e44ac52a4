"""The Serving page in a real browser: train a retrieval model (iALS) and a ranker (EASE), then
see the retrieve-then-rank trade-off. The page is saved as docs/screenshots/serving.png."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import (
    DOC_SHOTS,
    TRAIN_TIMEOUT_MS,
    nav,
    no_exception_box,
    shot,
    train_model,
    wait_charts,
    wait_idle,
)


@pytest.mark.e2e
def test_serving_page_shows_the_tradeoff(server, browser_page):
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_charts(page, 5)
    wait_idle(page)

    nav(page, "Train")
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    for label in ("iALS", "EASE"):
        train_model(page, label, add=True)
    no_exception_box(page)

    nav(page, "Serving")
    page.wait_for_url(re.compile(r"/serving$"))
    page.get_by_role("heading", name="Latency percentiles per request").wait_for(timeout=TRAIN_TIMEOUT_MS)
    # no choice made: the page opens on a real two-stage setting, EASE re-ranking iALS's 20 candidates
    page.get_by_text("Retrieval: iALS; ranking: EASE.", exact=False).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    wait_charts(page, 2)
    no_exception_box(page)
    main = page.locator("[data-testid=stMain]").inner_text()
    # the table itself is drawn on a canvas; the metrics above it are text
    for text in ("Recall@10 with 20 candidates", "p50 per request, exact scoring",
                 "Recall@10 is the share of the 10 items EASE recommends after scoring all"):
        assert text in main, text
    recall = page.locator("[data-testid=stMetric]", has_text="Recall@10 with 20 candidates").locator(
        "[data-testid=stMetricValue]").inner_text()
    assert float(recall.rstrip("%")) < 100.0, recall
    shot(page, "30-serving.png", DOC_SHOTS / "serving.png")

    # the bigger-catalogue experiment runs in the browser too (its axis fit is asserted in the app test)
    page.get_by_role("button", name="Grow and measure").click()
    page.get_by_text("Median latency as the catalogue grows").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    wait_charts(page, 3)
    no_exception_box(page)
    page.locator("[data-testid=stVegaLiteChart]").nth(2).scroll_into_view_if_needed()
    shot(page, "31-serving-growth.png")
