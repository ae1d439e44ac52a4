"""The Simulate page in a real browser: pick "Position bias", press Run, see the takeaway this run
computed and a chart per metric. The page is saved as docs/screenshots/simulate.png."""

from __future__ import annotations

import re

import pytest

from recsys.simulation import presets
from tests.e2e.helpers import DOC_SHOTS, TRAIN_TIMEOUT_MS, nav, no_exception_box, shot, wait_charts, wait_idle
from ui.simulate import charted_metrics
from ui.text import WORD_JOINER

PRESET = "position_bias"


@pytest.mark.e2e
def test_simulate_runs_a_preset_and_shows_its_takeaway(server, browser_page):
    preset = presets.get(PRESET)
    expected = preset(seed=0)  # the page's defaults: the same knobs and seed give the same rounds
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_charts(page, 5)
    wait_idle(page)

    nav(page, "Simulate")
    page.wait_for_url(re.compile(r"/simulate$"))
    page.get_by_role("heading", name="Simulate").first.wait_for()
    wait_idle(page)
    page.locator("[data-testid=stMain] [data-testid=stRadio] label", has_text=preset.label).click()
    page.get_by_text(re.compile(r"press Run", re.IGNORECASE)).wait_for()
    wait_idle(page)
    page.locator("[data-testid=stFormSubmitButton] button").click()

    takeaway = page.locator("[data-testid=stAlert]", has_text=expected.takeaway[:40])
    takeaway.wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    wait_charts(page, len(charted_metrics(expected.rounds, expected.metrics)))  # page views are everyone's
    no_exception_box(page)
    sentence = takeaway.locator("[data-testid=stMarkdownContainer]").inner_text()
    assert sentence.replace(WORD_JOINER, "").strip() == expected.takeaway
    main = page.locator("[data-testid=stMain]").inner_text()
    final = int(expected.rounds["round"].max())
    for text in (f"Round {final}", "Download the per-round table (CSV)", *expected.tables):
        assert text in main, text
    # the Run click scrolled to the button: bring the selector, the takeaway and the first charts into view
    page.locator("[data-testid=stMain] [data-testid=stRadio]").evaluate("e => e.scrollIntoView({block: 'start'})")
    shot(page, "40-simulate.png", DOC_SHOTS / "simulate.png")
