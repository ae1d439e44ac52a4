"""The Lessons page in a real browser: three lessons walked end to end (pick, look, answer, read the
feedback with this run's numbers), the last one set up and its Simulate page opened. Screenshots go to
the ignored tests/e2e/screenshots (docs/screenshots/lessons.png with RECSYS_REFRESH_SCREENSHOTS=1)."""

from __future__ import annotations

import re

import pytest

from recsys.lessons.base import get
from tests.e2e.helpers import DOC_SHOTS, TRAIN_TIMEOUT_MS, nav, no_exception_box, shot, wait_charts, wait_idle

# a worked example, a lesson on the sample's real raters, and a simulation with its charts
WALK = ("ndcg_by_hand", "harsh_raters", "position_bias")


def choose_lesson(page, key: str) -> None:
    lesson = get(key)
    chapter = page.locator("[data-testid=stSelectbox]", has_text="Chapter")
    chapter.click()
    page.locator("[role=option]", has_text=lesson.chapter).first.click()
    wait_idle(page)
    page.locator("[data-testid=stRadio]", has_text="Lesson").first.locator("label", has_text=lesson.title).click()
    page.get_by_role("heading", name=lesson.title).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)


def answer_right(page, key: str) -> str:
    lesson = get(key)
    result = lesson.run()  # the page's defaults: the same lesson and knobs give the same answer
    question = page.locator("[data-testid=stRadio]", has_text=lesson.question)
    question.locator("label", has_text=lesson.choices[result.correct]).click()
    feedback = page.locator("[data-testid=stAlert]", has_text="Right.")
    feedback.wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    return feedback.inner_text(), result


@pytest.mark.e2e
def test_three_lessons_end_to_end(server, browser_page):
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_idle(page)
    nav(page, "Lessons")
    page.wait_for_url(re.compile(r"/lessons$"))
    page.get_by_role("heading", name="Lessons").first.wait_for()
    wait_idle(page)

    for number, key in enumerate(WALK, start=1):
        choose_lesson(page, key)
        text, result = answer_right(page, key)
        no_exception_box(page)
        assert text.replace("\n", " ").startswith("Right.") and result.explanation[:60] in text
        assert any(f"{value:.3f}" in text or f"{value:.2f}" in text for value in result.figures.values()), text
        if key == "position_bias":
            wait_charts(page, len([t for t in result.tables if t == "Rounds"]))
        page.locator("[data-testid=stMain] h2", has_text=get(key).title).evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        shot(page, f"50-lesson-{number}-{key}.png", *((DOC_SHOTS / "lessons.png",) if key == "harsh_raters" else ()))
    # the simulation's own figures: its per-round chart and the item ranking under the question
    page.get_by_role("heading", name="What this run produced").evaluate("e => e.scrollIntoView({block: 'start'})")
    shot(page, "52-lesson-position_bias-result.png")

    page.get_by_role("button", name="Set up the app for this lesson").click()
    page.get_by_text("Simulate page is set to this experiment").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    page.get_by_role("link", name="Open the Simulate page").click()
    page.wait_for_url(re.compile(r"/simulate$"))
    wait_idle(page)
    no_exception_box(page)
    checked = page.locator("[data-testid=stMain] [data-testid=stRadio] input:checked")
    # the page can still be drawing after the rerun settles on a loaded machine: wait for the radio first
    checked.first.wait_for(timeout=30_000)
    assert checked.count() == 1
    shot(page, "53-lesson-simulate.png")
