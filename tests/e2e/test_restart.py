"""Kill the server mid-session, start another on the same data directory: every run is still there.

Server A trains two models through the Train page in a real browser and is then killed
(SIGKILL, no clean shutdown). Server B starts on the same RECSYS_HOME; a fresh browser
opens the Runs and Compare pages and finds both runs with the NDCG@10 that A reported.
"""

from __future__ import annotations

import re
import time

import pytest

from recsys.store import ExperimentStore
from tests.e2e.conftest import fresh_browser, streamlit_server
from tests.e2e.helpers import no_exception_box, train_model, wait_idle

MODELS = ("Most popular", "Item-item kNN")


def main_text_matching(page, pattern: str, timeout_s: float = 30.0) -> str:
    """The main area's text once it contains ``pattern`` (the page draws its sections one after another)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.locator("[data-testid=stMain]").inner_text()
        if re.search(pattern, text):
            return text
        assert time.monotonic() < deadline, f"{pattern!r} never appeared in:\n{text}"
        page.wait_for_timeout(250)


def train_on_server_a(page, url: str) -> dict[str, str]:
    """Train both models through the Train page; returns {label: NDCG@10 as shown}."""
    page.goto(f"{url}/train")
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    shown = {}
    for label in MODELS:
        shown[label] = re.search(r"NDCG@10 = (\d\.\d{4})", train_model(page, label)).group(1)
        no_exception_box(page)
    return shown


@pytest.mark.e2e
def test_runs_survive_killing_the_server(chromium, tmp_path):
    home = tmp_path / "recsys-home"
    with streamlit_server(home, tmp_path / "server-a.log") as (url, process):
        with fresh_browser(chromium) as page:
            shown = train_on_server_a(page, url)
        process.kill()  # no clean shutdown: whatever survives is on disk
        process.wait(timeout=10)

    stored = {r.label: r for r in ExperimentStore(home / "store").list()}
    assert sorted(stored) == sorted(MODELS)
    assert {label: f"{r.metrics['ndcg@10']:.4f}" for label, r in stored.items()} == shown
    assert all(r.status == "done" and r.has_model for r in stored.values())

    with streamlit_server(home, tmp_path / "server-b.log") as (url, _):
        with fresh_browser(chromium) as page:
            page.goto(f"{url}/runs")
            page.get_by_role("heading", name="Runs").first.wait_for()
            wait_idle(page)
            no_exception_box(page)
            best = max(shown, key=lambda label: float(shown[label]))
            summary = page.get_by_text(re.compile(r"^2 run\(s\) stored · best NDCG@10: "))
            summary.wait_for()
            assert f"best NDCG@10: {best} = {shown[best]}" in summary.inner_text()

            page.locator("[data-testid=stSidebarNav] a", has_text="Compare").click()
            page.get_by_role("heading", name="Metrics at K = 10").wait_for()
            page.get_by_role("heading", name="Is the difference real?").wait_for()
            wait_idle(page)
            no_exception_box(page)
            main = main_text_matching(page, rf"{re.escape(best)} is better than .* on NDCG@10")
            assert "No trained models" not in main

        # a link shared before the restart opens the same runs in another fresh browser
        ids = ",".join(stored[label].run_id for label in MODELS)
        with fresh_browser(chromium) as page:
            page.goto(f"{url}/compare?runs={ids}&k=20")
            page.get_by_role("heading", name="Metrics at K = 20").wait_for()
            page.get_by_role("heading", name="Is the difference real?").wait_for()
            wait_idle(page)
            no_exception_box(page)
            main = main_text_matching(page, rf"{re.escape(best)} is better than .* on NDCG@20")
            assert "does not have" not in main and "No trained models" not in main
