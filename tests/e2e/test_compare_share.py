"""Sharing a comparison in a real browser: train two runs, copy the Compare page's link, open it in a
fresh browser context (a colleague's session) and see the same runs, table and view.

Step screenshots go to tests/e2e/screenshots/ (gitignored); the Compare views are also written to
docs/screenshots/ for the README.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.helpers import DOC_SHOTS, nav, no_exception_box, shot, train_model, wait_charts, wait_idle

LABELS = ("Most popular", "Item-item kNN")


def table_text(page) -> str:
    """The metrics table's cell text, as the grid exposes it to assistive technology (row by row)."""
    page.wait_for_function(
        "() => { const g = document.querySelector('[data-testid=stDataFrame] table');"
        " return g && g.innerText.includes('model'); }")
    return page.locator("[data-testid=stDataFrame] table").first.inner_text()


def wait_sidebar(page) -> None:
    """Wait until the sidebar's split widgets are drawn: navigating before that would race the first run."""
    page.locator("[data-testid=stSidebar] input[type=number]").first.wait_for()
    page.get_by_text("Test share").first.wait_for()


@pytest.mark.e2e
def test_a_copied_compare_link_opens_the_same_view_in_a_fresh_browser(server, browser_page):
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_sidebar(page)
    wait_idle(page)
    nav(page, "Train")
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    for label in LABELS:
        train_model(page, label)

    nav(page, "Compare")
    page.wait_for_url(re.compile(r"/compare"))
    page.get_by_role("heading", name="Metrics at K = 10").wait_for()
    wait_charts(page, 4)
    wait_idle(page)
    no_exception_box(page)
    page.get_by_role("heading", name="Share this view").wait_for()
    link = page.locator("[data-testid=stCode]").last.inner_text().strip()
    query = parse_qs(urlparse(link).query)
    assert query["k"] == ["10"] and query["view"] == ["overview"] and len(query["runs"][0].split(",")) == 2
    assert urlparse(page.url).query == urlparse(link).query  # the address bar carries the same view
    original = table_text(page)
    # the runs were trained on the default split, and the link says so
    assert query["split"] == ["random"] and query["test"] == ["0.2"] and query["seed"] == ["42"]
    for label in LABELS:
        assert label in original
    shot(page, "compare-01-overview.png", DOC_SHOTS / "compare.png")

    # downloads: the metrics table as CSV, and a chart rendered to PNG on the server
    with page.expect_download() as download:
        page.get_by_role("button", name="Metrics (CSV)", exact=True).click()
    csv = Path(download.value.path()).read_text().splitlines()
    assert csv[0].startswith("run,ndcg@10,ndcg@10 low,ndcg@10 high") and len(csv) == 3
    assert {line.split(",")[0] for line in csv[1:]} == set(LABELS)
    with page.expect_download() as download:
        page.get_by_role("button", name="PNG", exact=True).click()
    assert download.value.suggested_filename.endswith(".png")
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wait_idle(page)

    # the trade-off view, for the README
    page.get_by_role("radio", name="Trade-offs & exposure").click()
    wait_charts(page, 4)
    wait_idle(page)
    no_exception_box(page)
    page.get_by_role("heading", name="Which items get exposure?").wait_for()
    page.locator("[data-testid=stVegaLiteChart]").first.scroll_into_view_if_needed()
    shot(page, "compare-02-tradeoffs.png", DOC_SHOTS / "compare-tradeoffs.png")
    link = page.locator("[data-testid=stCode]").last.inner_text().strip()
    assert parse_qs(urlparse(link).query)["view"] == ["tradeoffs"]

    # a colleague opens the link: a new browser context shares no cookies or session with the first
    colleague = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = colleague.new_page()
        other.set_default_timeout(30_000)
        other.goto(link)
        other.get_by_role("heading", name="Metrics at K = 10").wait_for()
        wait_charts(other, 4)
        wait_idle(other)
        no_exception_box(other)
        main = other.locator("[data-testid=stMain]").inner_text()
        assert "does not have" not in main and "No trained models" not in main
        assert table_text(other) == original
        other.get_by_role("heading", name="Which items get exposure?").wait_for()
        shot(other, "compare-03-shared-link.png")
    finally:
        colleague.close()
