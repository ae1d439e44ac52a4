"""The Graph page in a real browser: a click on a node of the vis-network canvas re-centres the
graph (the component hands the clicked id back to the page), Back returns, and nothing is fetched
from another host. The Embeddings page offers t-SNE with the default install."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.helpers import nav, no_exception_box, outside_requests, shot, train_model, wait_idle

# The component keeps its vis-network instance in a React hook (it exposes no global), so the test
# walks React's fiber tree up from the network's container div to the hook that holds it, then asks
# vis-network where each node is drawn, in pixels of the canvas.
NODE_POSITIONS = """() => {
  const container = document.querySelector('div.vis-network').parentElement;
  const fiberKey = Object.keys(container).find(k => k.startsWith('__reactInternalInstance$'));
  for (let fiber = container[fiberKey]; fiber; fiber = fiber.return) {
    for (let hook = fiber.memoizedState; hook && typeof hook === 'object' && 'next' in hook; hook = hook.next) {
      const network = hook.memoizedState;
      if (network && typeof network.getPositions === 'function' && typeof network.canvasToDOM === 'function') {
        const canvas = container.querySelector('canvas').getBoundingClientRect();
        const out = {};
        for (const [id, p] of Object.entries(network.getPositions())) {
          const dom = network.canvasToDOM(p);
          out[id] = {x: canvas.left + dom.x, y: canvas.top + dom.y, inside: dom.x > 5 && dom.y > 5
                     && dom.x < canvas.width - 5 && dom.y < canvas.height - 5};
        }
        return out;
      }
    }
  }
  return null;
}"""


def graph_frame(page):
    iframe = page.locator("iframe[title='streamlit_agraph.agraph']")
    iframe.wait_for()
    frame = iframe.element_handle().content_frame()
    frame.wait_for_selector("div.vis-network canvas")
    return iframe, frame


def node_positions(page) -> tuple[dict, dict]:
    """{node id: page coordinates} of the drawn nodes, once the network has drawn them."""
    iframe, frame = graph_frame(page)
    frame.wait_for_function(NODE_POSITIONS.replace("return out;", "return Object.keys(out).length ? out : null;"))
    box = iframe.bounding_box()
    positions = frame.evaluate(NODE_POSITIONS)
    return {node: {"x": box["x"] + p["x"], "y": box["y"] + p["y"]} for node, p in positions.items() if p["inside"]}, box


def centre_heading(page):
    return page.locator("[data-testid=stMain] h3", has_text="Centred on").first


@pytest.mark.e2e
def test_clicking_a_node_recentres_the_graph_and_back_returns(server, browser_page):
    page = browser_page
    outside = outside_requests(page, server)
    page.goto(server)
    page.locator("[data-testid=stMain] h1", has_text="Data").first.wait_for()
    nav(page, "Graph")
    page.locator("[data-testid=stMain] h1", has_text="Graph").first.wait_for(timeout=120_000)
    wait_idle(page)
    start = centre_heading(page).inner_text()
    assert not start.startswith("Centred on user "), "the page starts from the most popular title"

    positions, box = node_positions(page)
    people = sorted(node for node in positions if node.startswith("u"))
    assert len(positions) == 43 and len(people) == 6, positions.keys()
    target = positions[people[0]]
    page.mouse.move(target["x"], target["y"])
    _, frame = graph_frame(page)
    tooltip = frame.locator(".vis-tooltip")
    tooltip.wait_for(state="visible")
    assert re.fullmatch(r"User · user \S+ · [\d,]+ interactions \(activity\) · 1 hop from the centre",
                        tooltip.inner_text()), tooltip.inner_text()
    page.mouse.click(target["x"], target["y"])
    centre_heading(page).filter(has_text=re.compile(r"^Centred on user ")).wait_for(timeout=60_000)
    wait_idle(page)
    no_exception_box(page)
    assert page.get_by_text(re.compile(r"^Path: .+ → user \S+$")).first.is_visible()
    moved, _ = node_positions(page)
    assert people[0] in moved and len(moved) > 1
    shot(page, "graph-recentred.png")

    page.get_by_role("button", name="← Back").click()
    centre_heading(page).filter(has_text=start.removeprefix("Centred on ")).wait_for(timeout=60_000)
    wait_idle(page)
    assert centre_heading(page).inner_text() == start
    no_exception_box(page)
    assert outside == [], "the graph component fetched from another host"


@pytest.mark.e2e
def test_embeddings_page_offers_tsne_with_the_default_install(server, browser_page):
    page = browser_page
    page.goto(server)
    page.locator("[data-testid=stMain] h1", has_text="Data").first.wait_for()
    nav(page, "Train")
    page.locator("[data-testid=stMain] h1", has_text="Train").first.wait_for()
    train_model(page, "PureSVD", add=True)
    nav(page, "Embeddings")
    page.locator("[data-testid=stMain] h1", has_text="Embeddings").first.wait_for()
    wait_idle(page)
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("canvas, svg.marks").first.wait_for()
    page.wait_for_timeout(500)
    pca_picture = chart.screenshot()
    projection = page.locator("[data-testid=stSelectbox]").filter(has_text="Projection")
    projection.click()
    options = page.locator("[role=option]").all_inner_texts()
    assert options == ["PCA", "t-SNE"]
    page.locator("[role=option]", has_text="t-SNE").click()
    wait_idle(page)
    no_exception_box(page)
    assert projection.locator("input").input_value() == "t-SNE"
    # vega-embed draws the map (and its title) on a canvas: a different picture is the t-SNE map
    deadline = time.monotonic() + 60
    while chart.screenshot() == pca_picture:
        assert time.monotonic() < deadline, "the map did not change after choosing t-SNE"
        page.wait_for_timeout(500)
    shot(page, "embeddings-tsne.png")
