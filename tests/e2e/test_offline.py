"""The app works in a room without internet access: no page makes the browser fetch anything from
another host (the favicon used to come from a font CDN), and markdown escaping holds in the real
renderer, where autolinks and material icons are rewrites of the parsed text that backslashes
alone do not stop."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import outside_requests

PAGES = ["Train", "Compare", "Runs", "Embeddings", "Attention", "Graph", "Homepage", "Serving", "Data"]


@pytest.mark.e2e
def test_no_page_fetches_anything_from_another_host(server, browser_page):
    page = browser_page
    outside = outside_requests(page, server)
    page.goto(server)
    page.locator("[data-testid=stMain] h1", has_text="Data").first.wait_for()
    for title in PAGES:
        page.locator("[data-testid=stSidebarNav] a", has_text=title).click()
        page.locator("[data-testid=stMain] h1", has_text=title).first.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)  # late requests (favicon, charts) land after the heading
    icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map(link => link.href)")
    assert icons and all(icon.startswith(server) for icon in icons), icons
    assert outside == []


ATTACKS = [
    "![pixel](http://tracker.invalid/p.png)",
    "[click](http://evil.invalid) <img src=http://tracker.invalid/i.png> <b>bold</b>",
    "# Heading **bold** _it_ ~~strike~~ `code`",
    "$x^2$ :red[red] :material/movie: :smile:",
    "www.evil.invalid http://evil.invalid/x a@b.invalid",
    "- list\n\n![nl](http://tracker.invalid/nl.png)",
]


def _escaping_app() -> None:
    import streamlit as st

    from tests.e2e.test_offline import ATTACKS
    from ui.text import md_escape

    for i, text in enumerate(ATTACKS):
        with st.container(key=f"case{i}"):
            st.markdown(md_escape(text))
            st.caption("by " + md_escape(text))
            st.error(md_escape(text))
            st.button(md_escape(text), key=f"button{i}")


@pytest.mark.e2e
def test_escaped_text_renders_as_its_literal_characters(tmp_path, chromium):
    """Streamlit's own renderer: no image, link, icon, formula, emphasis or heading comes out of md_escape."""
    import inspect
    import subprocess
    import sys
    import textwrap
    import time

    from tests.e2e.conftest import REPO_ROOT, _free_port, _healthy, fresh_browser

    script = tmp_path / "escaping_app.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
                      + textwrap.dedent(inspect.getsource(_escaping_app)) + "\n_escaping_app()\n")
    url = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port",
                               url.rsplit(":", 1)[1], "--server.headless", "true", "--server.address", "127.0.0.1",
                               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            assert server.poll() is None and time.monotonic() < deadline, "the escaping app did not start"
            time.sleep(0.25)
        with fresh_browser(chromium) as page:
            _check_rendering(page, url)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _check_rendering(page, url: str) -> None:
    """Each case's markdown, caption, error and button label: no element made, the literal text shown."""
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url)
    page.locator(f".st-key-case{len(ATTACKS) - 1}").wait_for()
    page.wait_for_timeout(1000)
    for i, text in enumerate(ATTACKS):
        found = page.locator(f".st-key-case{i}").evaluate("""box => ({
            made: [...box.querySelectorAll('[data-testid=stMarkdownContainer]')].flatMap(md => [
                ...md.querySelectorAll('img, a, .katex, strong, em, del, code, h1, h2, h3, ul, ol, blockquote'),
                ...md.querySelectorAll('[data-testid=stIconMaterial]')].map(el => el.outerHTML.slice(0, 80))),
            texts: [...box.querySelectorAll('[data-testid=stMarkdownContainer]')]
                .map(md => md.innerText.replaceAll('\\u2060', '').split(/\\s+/).join(' ').trim())})""")
        assert found["made"] == [], (text, found["made"])
        literal = " ".join(text.split())
        assert all(literal in shown for shown in found["texts"]), (literal, found["texts"])
    assert outside == []
