"""The sidebar keeps its split settings when a person switches page while the app is still loading.

Streamlit resets widget state when a page switch interrupts a run; the browser then showed
(and on the next click sent back) each widget's minimum, so a model could be trained on
seed 0 with a 5 % test set while the sidebar had said 42 and 20 %. Before the fix this
happened on most of these quick clicks.
"""

from __future__ import annotations

import pytest


def sidebar_settings(page) -> tuple[str, str]:
    sidebar = page.get_by_test_id("stSidebarUserContent")
    seed = sidebar.get_by_test_id("stNumberInputField").first.input_value()
    share = sidebar.get_by_test_id("stSlider").first.inner_text()
    return seed, share


@pytest.mark.e2e
def test_switching_page_during_the_first_load_keeps_the_split_settings(server, browser_page):
    page = browser_page
    for _ in range(3):
        page.goto(server)
        page.get_by_role("link", name="Train").click()  # as soon as the navigation exists
        page.wait_for_url("**/train")
        page.get_by_role("heading", name="Train").first.wait_for()
        page.get_by_test_id("stSidebarUserContent").get_by_test_id("stNumberInputField").first.wait_for()
        page.wait_for_timeout(1500)  # let any late widget-state sync land
        seed, share = sidebar_settings(page)
        assert seed == "42"
        assert "0.20" in share, share
