"""A new visitor's homepage in a real browser: one-click model, pick five titles, see the rows.

The finished page is saved as docs/screenshots/homepage.png for the README (and under
tests/e2e/screenshots/ with the other steps).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from recsys.data import load
from recsys.data.split import make_split
from recsys.serving.rows import Catalogue
from tests.e2e.helpers import (
    DOC_SHOTS,
    TRAIN_TIMEOUT_MS,
    nav,
    no_exception_box,
    pick_in_multiselect,
    shot,
    wait_charts,
    wait_idle,
)

N_PICKS = 5


def popular_labels(n: int) -> list[str]:
    """Labels (as the picker shows them) of the n most popular training titles of the app's default split."""
    train = make_split(load("sample"), "random", test_fraction=0.2, seed=42).train
    catalogue = Catalogue(train)
    order = np.lexsort((np.arange(train.n_items), -train.item_popularity))
    return [catalogue.label(int(i)) for i in order[:n]]


@pytest.mark.e2e
def test_new_visitor_builds_a_homepage(server, browser_page):
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    # let the first page finish: navigating while it still imports the backend interrupts those imports
    wait_charts(page, 5)
    wait_idle(page)

    nav(page, "Homepage")
    page.wait_for_url(re.compile(r"/homepage$"))
    page.get_by_role("heading", name="Homepage").first.wait_for()
    page.get_by_role("button", name="Train item-item kNN now").click()
    page.locator(".hp-tiles").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    no_exception_box(page)
    shot(page, "20-homepage-user.png")

    page.locator("[data-testid=stSelectbox]", has_text="Whose page?").click()
    page.get_by_role("option", name="A new visitor (pick titles)").click()
    page.get_by_text(re.compile(r"^Pick at least 3 titles")).wait_for()
    pick_in_multiselect(page, popular_labels(N_PICKS))
    page.locator(".hp-row-title", has_text="Because you picked").first.wait_for()
    wait_charts(page, 1)
    wait_idle(page)
    no_exception_box(page)

    main = page.locator("[data-testid=stMain]").inner_text()
    assert "Top picks for you" in main and "Watch it again" not in main
    assert page.locator(".hp-tile").count() >= 4 * 10
    titles = page.locator(".hp-tile-title").all_inner_texts()
    assert len(titles) == len(set(titles)), "a title twice with dedupe on"
    for label in popular_labels(N_PICKS):
        assert label.rsplit(" (", 1)[0] not in titles, f"picked {label} shown back"
    page.locator(".hp-row-title").first.scroll_into_view_if_needed()
    shot(page, "21-homepage-new-visitor.png", DOC_SHOTS / "homepage.png")
