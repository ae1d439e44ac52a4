"""Real-browser fixtures: the app served by `streamlit run` on a free port, and headless Chromium.

Without Chromium the e2e tests skip, except under ``CI=true``, where a missing browser fails
the run (a CI job that silently skips its browser check proves nothing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 60


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        message = "Chromium not found at /usr/bin/chromium or on PATH (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires the browser tests to run")
        pytest.skip(message)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed; CI=true requires the browser tests to run")
        pytest.skip("playwright is not installed (pip install playwright)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


@contextlib.contextmanager
def streamlit_server(home: Path, log_path: Path):
    """`streamlit run app.py` with RECSYS_HOME=home on a free port; yields (url, process).

    Stopped at exit if still running (a test may kill it itself, as the restart test does);
    a traceback in its log fails the test, since the page may have caught and logged it.
    """
    port = _free_port()
    env = {**os.environ, "RECSYS_HOME": str(home), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.headless", "true", "--server.address", "127.0.0.1",
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy after {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}")
            time.sleep(0.25)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    server_log = log_path.read_text(errors="replace")
    assert "Traceback" not in server_log, server_log


@contextlib.contextmanager
def fresh_browser(chromium: str):
    """A new headless Chromium page at 1400x1000 (the size of the README screenshots): no cookies,
    no session shared with an earlier one."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium) -> str:
    """Base URL of a fresh `streamlit run app.py` with its own RECSYS_HOME; stopped at teardown."""
    home = tmp_path_factory.mktemp("recsys-home")
    with streamlit_server(home, home / "server.log") as (url, _):
        yield url


@pytest.fixture
def browser_page(chromium):
    with fresh_browser(chromium) as page:
        yield page
