"""Two visitors on one hosted server, in two browser contexts (two people, two cookie jars).

What a review found before hosted mode kept visitors apart: any visitor could rename or delete
any shared run, one visitor's Cancel killed another's training of the same settings, and a
reload lost a visitor's own runs. Here ann and bob work side by side:

* bob starts the same training as ann: they share one job; bob cannot stop it early for ann,
  and his Cancel only lets go of it: ann's training goes on and is stored;
* ann uploads a small CSV and trains on it: bob's dataset list, uploads and Runs page never
  show it, a link naming ann's run finds nothing for bob, and bob has no rename or delete
  controls for the shared runs;
* ann reloads the page: the cookie brings her identity back, with her runs and her upload.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from recsys.store import SHARED, ExperimentStore
from tests.e2e.conftest import streamlit_server
from tests.e2e.helpers import (
    STEP_SHOTS,
    TRAIN_TIMEOUT_MS,
    add_to_train_list,
    nav,
    no_exception_box,
    train_model,
    trained_message,
    wait_idle,
)

COOKIE = "recsys_visitor"
UPLOAD_NAME = "ann-ratings.csv"
# 40 people, 6 ratings each over 15 films: small enough to train in a moment, big enough to split
ROWS = ["user,item,rating"] + [f"u{u},film{(u * 7 + k * 2) % 15},{1 + (u + k) % 5}" for u in range(40)
                               for k in range(6)]


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, chromium):
    """A hosted server (RECSYS_HOSTED=1) with its own RECSYS_HOME; yields (url, home)."""
    home = tmp_path_factory.mktemp("recsys-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECSYS_HOSTED", "1")
        patch.delenv("RECSYS_INSTRUCTOR_KEY", raising=False)
        patch.delenv("RECSYS_INSTRUCTORS", raising=False)
        with streamlit_server(home, home / "server.log") as (url, _):
            yield url, home


@contextlib.contextmanager
def two_visitors(chromium: str):
    """Two pages in two browser contexts of one headless Chromium: nothing shared but the server."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            pages = []
            for _ in range(2):
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.set_default_timeout(30_000)
                pages.append(page)
            yield pages
        finally:
            browser.close()


def open_app(page, url: str) -> None:
    page.goto(url)
    page.locator("[data-testid=stMain]").get_by_role("heading", name="Data", exact=True).first.wait_for()
    page.locator("[data-testid=stSidebar] input[type=number]").first.wait_for()
    wait_idle(page)


def visitor_cookie(page) -> str:
    """The identity cookie the app asked this browser to keep (it is written by the first page run)."""
    deadline = time.monotonic() + 20
    while True:
        found = [c for c in page.context.cookies() if c["name"] == COOKIE]
        if found:
            [cookie] = found
            assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert cookie["expires"] - time.time() > 360 * 24 * 3600  # kept for a year, not for the session
            return cookie["value"]
        assert time.monotonic() < deadline, "the app never set its visitor cookie"
        page.wait_for_timeout(200)


def go(page, title: str) -> None:
    """Open a page from the sidebar and wait for its title; a click that a rerun swallowed is repeated."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        wait_idle(page)
        nav(page, title)
        try:
            page.locator("[data-testid=stMain]").get_by_role("heading", name=title, exact=True).first.wait_for(
                timeout=15_000)
        except PlaywrightTimeout:
            continue
        wait_idle(page)
        return
    raise AssertionError(f"the {title} page did not open; the page showed:\n{main_text(page)}")


def main_text(page) -> str:
    return page.locator("[data-testid=stMain]").inner_text()


def start_training(page, label: str) -> None:
    """Click "Train <label>" once and wait for the live panel."""
    button = page.get_by_role("button", name=f"Train {label}")
    if not button.is_visible():  # its form sits in an expander, collapsed when several models are chosen
        page.get_by_text(f"{label} — ").click()
        wait_idle(page)
    button.click()
    page.get_by_role("heading", name="Training now").wait_for()


def sidebar_datasets(page) -> list[str]:
    """The options of the sidebar's dataset list, as the open dropdown shows them."""
    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    options = page.locator("[role=option]")
    options.first.wait_for()
    names = options.all_inner_texts()
    page.keyboard.press("Escape")
    wait_idle(page)
    return names


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    wait_idle(page)


@pytest.mark.e2e
def test_two_visitors_never_touch_each_others_work(hosted, chromium):
    url, home = hosted
    store = ExperimentStore(home / "store")
    with two_visitors(chromium) as (ann, bob):
        try:
            _visit(url, store, ann, bob)
        except Exception:
            STEP_SHOTS.mkdir(parents=True, exist_ok=True)
            ann.screenshot(path=STEP_SHOTS / "two-visitors-ann.png")
            bob.screenshot(path=STEP_SHOTS / "two-visitors-bob.png")
            raise


def _visit(url: str, store: ExperimentStore, ann, bob) -> None:
    open_app(ann, url)
    open_app(bob, url)
    ann_token, bob_token = visitor_cookie(ann), visitor_cookie(bob)
    assert ann_token != bob_token

    # ---- one training, two watchers: bob's Cancel lets go of it, ann's goes on
    # (LightGCN trains for tens of seconds on the sample, so bob can leave it while it runs; BPR-MF
    # now finishes in about a second, before anyone could press Cancel)
    for page in (ann, bob):
        go(page, "Train")
        add_to_train_list(page, "LightGCN")
    start_training(ann, "LightGCN")
    start_training(bob, "LightGCN")
    bob.get_by_text("1 other visitor(s) wait for it too").wait_for()
    stop = bob.get_by_role("button", name="Stop and keep")
    stop.wait_for()
    assert stop.is_disabled()  # stopping early would cut ann's training short too
    ann.get_by_text("1 other visitor(s) wait for it too").wait_for()
    bob.get_by_role("button", name="Cancel").click()
    bob.get_by_text("You left the training of LightGCN; it goes on for the other visitor(s)").wait_for()
    wait_idle(bob)
    assert bob.get_by_role("heading", name="Training now").count() == 0
    trained_message(ann, "LightGCN").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    [shared] = [r for r in store.list() if r.model == "lightgcn"]
    assert (shared.owner, shared.status, shared.name) == (SHARED, "done", "LightGCN")  # the shared run, trained to its end
    no_exception_box(ann)
    no_exception_box(bob)

    # ---- ann uploads a table and trains on it
    go(ann, "Data")
    open_tab(ann, "Upload a file")
    uploader = ann.locator("[data-testid=stFileUploader]").filter(has_text="Interactions file")
    uploader.locator("input[type=file]").set_input_files(
        {"name": UPLOAD_NAME, "mimeType": "text/csv", "buffer": "\n".join(ROWS).encode()})
    ann.get_by_role("heading", name="Column mapping").wait_for()
    wait_idle(ann)
    ann.get_by_role("button", name="Use this data").click()
    wait_idle(ann)
    upload_label = f"{UPLOAD_NAME} ({len(ROWS) - 1:,} interactions)"
    assert upload_label in sidebar_datasets(ann)
    go(ann, "Train")
    train_model(ann, "Most popular")
    [private] = [r for r in store.list() if r.owner != SHARED]
    assert private.model == "pop" and private.status == "done"

    # ---- bob sees none of it
    go(bob, "Data")
    assert not [name for name in sidebar_datasets(bob) if UPLOAD_NAME in name]
    open_tab(bob, "Your uploads")
    bob.get_by_text("You have no uploads on this server.").wait_for()
    assert UPLOAD_NAME not in main_text(bob)

    go(bob, "Runs")
    bob.get_by_role("heading", name="Rename or delete").wait_for()
    wait_idle(bob)
    bob.get_by_text("You have no runs of your own to rename or delete.").wait_for()
    bob.get_by_text("1 shared run(s) are read-only for you").wait_for()
    for label in ("Rename", "Delete…"):
        assert bob.get_by_role("button", name=label).count() == 0
    assert UPLOAD_NAME not in main_text(bob) and private.run_id not in main_text(bob)
    bob.wait_for_function("() => { const t = document.querySelector('[data-testid=stDataFrame] table');"
                          " return t && t.textContent.includes('LightGCN'); }")
    table = bob.locator("[data-testid=stDataFrame] table").first.text_content()
    assert "shared" in table and "yours" not in table and UPLOAD_NAME not in table, table

    # a link that names ann's run finds nothing for bob
    bob.goto(f"{url}/compare?runs={private.run_id}")
    bob.get_by_text("The link names run(s) this server does not have").wait_for()
    wait_idle(bob)
    assert UPLOAD_NAME not in main_text(bob)

    # nothing of ann's is running, waiting or cancellable on bob's Train page
    go(bob, "Train")
    assert bob.get_by_role("heading", name="Training now").count() == 0
    assert bob.get_by_role("button", name="Cancel").count() == 0

    # ---- ann reloads: the cookie brings back her identity, her run and her upload
    ann.reload()  # on the Train page, where she was
    ann.locator("[data-testid=stMain]").get_by_role("heading", name="Train", exact=True).first.wait_for()
    wait_idle(ann)
    assert visitor_cookie(ann) == ann_token
    go(ann, "Data")
    open_tab(ann, "Your uploads")
    # the uploads table lists it (the grid keeps its cells in a table for assistive technology)
    ann.locator("[data-testid=stDataFrame] td", has_text=UPLOAD_NAME).first.wait_for(state="attached")
    go(ann, "Runs")
    ann.get_by_role("heading", name="Rename or delete").wait_for()
    wait_idle(ann)
    ann.wait_for_function("() => { const t = document.querySelector('[data-testid=stDataFrame] table');"
                          " return t && t.textContent.includes('yours'); }")
    rows = ann.locator("[data-testid=stDataFrame] table tr").all_text_contents()
    assert [row for row in rows if upload_label in row and "Most popular" in row and "yours" in row], rows
    assert [row for row in rows if "LightGCN" in row and "shared" in row], rows
    assert ann.get_by_role("button", name="Rename").count() == 1  # her own run is hers to change
    no_exception_box(ann)
    no_exception_box(bob)

    # the store agrees: ann's run is hers, the shared run untouched
    assert store.get(private.run_id).owner == private.owner and store.get(shared.run_id).name == shared.name
