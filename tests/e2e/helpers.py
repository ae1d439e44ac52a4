"""What every browser test does with a Streamlit page: wait for a run to settle, navigate, train a
model through the Train page, take a screenshot.

Streamlit drops a click that lands while the page is still rerunning (the element it hit is
replaced, or the interrupted run consumes the button's trigger). On a loaded CI runner that
happened often enough to fail a test, so `train_model` waits for the page to settle before each
click and clicks again when neither a training job nor its result ever showed up.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP_SHOTS = Path(__file__).resolve().parent / "screenshots"
DOC_SHOTS = REPO_ROOT / "docs" / "screenshots"
# generous: on a loaded 2-core runner training plus a 500-sample bootstrap can take over a minute
TRAIN_TIMEOUT_MS = 180_000
# a click that started nothing within this long was dropped by a rerun
CLICK_SETTLE_S = 20.0
CLICK_TIMEOUT_MS = 5_000


def outside_requests(page, server: str) -> list[str]:
    """A list that fills with every request the page makes to a host other than ``server``."""
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((server, "data:", "blob:")) else None)
    return outside


def no_exception_box(page) -> None:
    boxes = page.locator("[data-testid=stException]")
    assert boxes.count() == 0, boxes.first.inner_text()


def wait_idle(page, quiet_ms: int = 500) -> None:
    """Wait until the app has settled: no script run in progress and no element left stale from
    one, for ``quiet_ms`` in a row. A rerun starts a moment after the click or key press that
    asked for it, so a single look could fall into that gap and read the page before the rerun."""
    deadline = time.monotonic() + TRAIN_TIMEOUT_MS / 1000
    quiet_since = None
    while True:
        busy = page.evaluate(
            "() => !!document.querySelector('[data-testid=stStatusWidgetRunningIcon], [data-stale=true]')")
        now = time.monotonic()
        if busy:
            quiet_since = None
            assert now < deadline, f"the app was still running after {TRAIN_TIMEOUT_MS // 1000} s"
        elif quiet_since is None:
            quiet_since = now
        elif (now - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)


def wait_charts(page, count: int) -> None:
    """Wait until `count` Altair charts have been drawn (vega-embed renders into a canvas or svg)."""
    page.wait_for_function(
        "n => { const charts = document.querySelectorAll('[data-testid=stVegaLiteChart]');"
        " return charts.length === n && [...charts].every(c => c.querySelector('canvas, svg.marks')); }",
        arg=count,
    )


def refresh_docs() -> bool:
    """Whether this run should rewrite the README's screenshots (RECSYS_REFRESH_SCREENSHOTS=1).
    By default a test run leaves docs/ as it found it: pictures go to the ignored STEP_SHOTS only."""
    return os.environ.get("RECSYS_REFRESH_SCREENSHOTS") == "1"


def shot(page, name: str, *also: Path) -> None:
    page.wait_for_timeout(300)  # let vega finish its transitions so the picture is not half-drawn
    STEP_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=STEP_SHOTS / name)
    for path in also if refresh_docs() else ():
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=path)


def nav(page, title: str) -> None:
    page.locator("[data-testid=stSidebarNav] a", has_text=title).click()


def trained_message(page, label: str):
    """The Train page's message for a finished run of ``label``."""
    return page.get_by_text(re.compile(rf"^{re.escape(label)}: NDCG@10 = \d\.\d{{4}} on [\d,]+ test users\.$"))


def pick_in_multiselect(page, labels, *, attempts: int = 3) -> None:
    """Choose every one of ``labels`` in the page's first multiselect, checking the chosen tags
    afterwards: a choice made while the page reruns can be dropped, so missing ones are added again."""
    box = page.locator("[data-testid='stMultiSelect']").first
    field = box.locator("input")
    for _ in range(attempts):
        wait_idle(page)
        chosen = set(box.locator("[data-tag] span[title]").evaluate_all("tags => tags.map(t => t.title)"))
        missing = [label for label in labels if not any(label in tag for tag in chosen)]
        if not missing:
            page.keyboard.press("Escape")
            wait_idle(page)
            return
        for label in missing:
            field.click()
            field.type(label)
            page.keyboard.press("Enter")
            wait_idle(page)
    raise AssertionError(f"could not choose {missing} in the multiselect; it holds {sorted(chosen)}")


def add_to_train_list(page, label: str) -> None:
    """Add ``label`` to the Train page's "Models to train" list."""
    pick_in_multiselect(page, [label])


def train_model(page, label: str, *, add: bool = False) -> str:
    """Train ``label`` from the Train page (adding it to the list first when ``add``); returns the
    message the page shows when the run is done."""
    try:
        if add:
            add_to_train_list(page, label)
        return _click_train_until_done(page, label)
    except Exception as exc:  # the CI log is all there is to read afterwards: say what the page showed
        STEP_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=STEP_SHOTS / f"failed-train-{label.split()[0].lower()}.png")
        main = page.locator("[data-testid=stMain]").inner_text(timeout=5_000)
        raise AssertionError(f"training {label} failed ({exc.__class__.__name__}); the page showed:\n{main}") from exc


def _click_train_until_done(page, label: str) -> str:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # only installed with the dev extras

    done = trained_message(page, label).first
    button = page.get_by_role("button", name=f"Train {label}")
    training = page.get_by_role("heading", name="Training now")
    deadline = time.monotonic() + TRAIN_TIMEOUT_MS / 1000
    clicked_at = None
    while not done.is_visible():
        now = time.monotonic()
        assert now < deadline, f"{label} did not finish training within {TRAIN_TIMEOUT_MS // 1000} s"
        if training.is_visible():
            clicked_at = now  # a job runs: the click arrived
        elif clicked_at is None or now - clicked_at > CLICK_SETTLE_S:
            wait_idle(page)
            if done.is_visible():
                break
            try:
                if not button.is_visible():  # its form sits in an expander, collapsed when many models are chosen
                    page.get_by_text(f"{label} — ").click(timeout=CLICK_TIMEOUT_MS)
                    wait_idle(page)
                button.click(timeout=CLICK_TIMEOUT_MS)
                clicked_at = time.monotonic()
            except PlaywrightTimeout:
                # a rerun replaced the element under the pointer (on a loaded runner a rerun can also
                # redraw an expander collapsed): look at the page again and retry
                clicked_at = None
        page.wait_for_timeout(250)
    wait_idle(page)
    return done.inner_text()
