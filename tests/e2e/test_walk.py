"""The walk a new user takes, in a real browser at the README's size: train two models on the sample, compare
them, build two homepages side by side, look at a transformer's attention, and serve with retrieve-then-rank.

It checks what the walk once found broken: one colour per model on every page (read from the drawn pixels of
two charts on two pages), no widget label clipped when the homepage knobs share half the page (element widths),
the side-by-side knobs above level columns, attention reasons that cite only the tiles shown, and a serving
default whose recall is below 100 % (a ranker other than the retriever). Screenshots go to the ignored
tests/e2e/screenshots/ folder.
"""

from __future__ import annotations

import io
import re

import pytest

from tests.e2e.helpers import (
    TRAIN_TIMEOUT_MS,
    add_to_train_list,
    nav,
    no_exception_box,
    shot,
    train_model,
    wait_charts,
    wait_idle,
)
from ui.charts import model_colour
from ui.forms import label

MODELS = {"ials": "iALS", "ease": "EASE"}
SASREC = "SASRec (self-attention)"

# For each block of homepage knobs (the innermost block holding every knob): the text its elements cut (an element
# that hides its overflow and whose content is wider than its box), and each label's natural text width against the
# width its box gives it.
KNOB_LABELS_JS = """() => {
    const blocks = [...document.querySelectorAll('[data-testid=stVerticalBlock]')].filter(
        b => b.innerText.includes('No title twice') && b.innerText.includes('Popularity blend'));
    const innermost = blocks.filter(b => !blocks.some(o => o !== b && b.contains(o)));
    return innermost.map(block => {
        const clipped = [...block.querySelectorAll('*')].filter(el => {
            if (!el.innerText || !el.innerText.trim() || el.children.length > 1) return false;
            const style = getComputedStyle(el);
            const hides = style.overflowX !== 'visible' || style.textOverflow === 'ellipsis';
            return hides && el.scrollWidth > el.clientWidth + 1;
        }).map(el => el.innerText.trim());
        const widths = [...block.querySelectorAll('[data-testid=stWidgetLabel] p, label p')].map(el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            return [el.innerText.trim(), range.getBoundingClientRect().width, el.getBoundingClientRect().width];
        });
        return {clipped, widths};
    });
}"""


def colours_in(locator) -> set[tuple[int, int, int]]:
    """Every colour painted on a chart's element, from a screenshot of it (bars are filled with one flat colour)."""
    from PIL import Image

    image = Image.open(io.BytesIO(locator.screenshot())).convert("RGB")
    return {colour for _, colour in image.getcolors(maxcolors=1 << 20)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def chart_titled(page, title: str, position: int):
    """The chart titled ``title``: found by vega's aria label where the renderer writes one, else the chart at
    ``position`` on the page (a canvas holds no text to search)."""
    charts = page.locator("[data-testid=stVegaLiteChart]")
    for index in range(charts.count()):
        labels = charts.nth(index).locator("[aria-label]")
        if any(title in (labels.nth(j).get_attribute("aria-label") or "") for j in range(min(labels.count(), 3))):
            return charts.nth(index)
    return charts.nth(position)


def side_heading(page, side: str):
    """The heading over one side of the side-by-side homepage ("A: iALS")."""
    return page.locator("h3").filter(has_text=re.compile(rf"^\s*{side}:")).first  # the page's text has a word
    # joiner after the colon (escaped markdown), so no space is matched there


def choose(page, select_label: str, option: str) -> None:
    page.locator("[data-testid=stSelectbox]", has_text=select_label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def train_sasrec_briefly(page) -> None:
    """SASRec with one epoch over its twelve latest items: enough to draw attention, quick on two cores."""
    add_to_train_list(page, SASREC)
    form = page.locator("[data-testid=stForm]", has=page.get_by_role("button", name=f"Train {SASREC}"))
    if not form.get_by_label(label("epochs"), exact=True).is_visible():
        page.get_by_text(f"{SASREC} — ").click()
        wait_idle(page)
    for name, value in (("epochs", "1"), ("max_len", "12")):
        field = form.get_by_label(label(name), exact=True)
        field.fill(value)
        field.press("Tab")
    train_model(page, SASREC)


@pytest.mark.e2e
def test_the_walk_from_train_to_serving(server, browser_page):
    page = browser_page
    page.goto(server)
    page.get_by_role("heading", name="Data").first.wait_for()
    wait_charts(page, 5)
    wait_idle(page)

    # 1. Train: two models with embeddings (so Serving has a retriever and a different ranker), and SASRec
    nav(page, "Train")
    page.get_by_role("heading", name="Train").first.wait_for()
    wait_idle(page)
    for model_label in MODELS.values():
        train_model(page, model_label, add=True)
    train_sasrec_briefly(page)
    no_exception_box(page)
    shot(page, "walk-01-train.png")

    # 2. Compare: each model keeps one colour from chart to chart
    nav(page, "Compare")
    page.wait_for_url(re.compile(r"/compare(\?.*)?$"))
    page.get_by_role("heading", name="Metrics at K = 10").wait_for()
    wait_charts(page, 4)
    wait_idle(page)
    no_exception_box(page)
    ndcg_bars = colours_in(chart_titled(page, "NDCG@10 (95% bootstrap interval)", 1))
    coverage_bars = colours_in(chart_titled(page, "Catalogue coverage@10", 2))
    for key in (*MODELS, "sasrec"):
        assert rgb(model_colour(key)) in ndcg_bars and rgb(model_colour(key)) in coverage_bars, key
    shot(page, "walk-02-compare.png")

    # 3. Homepage: opens on the best stored run; two knob settings side by side clip no label
    nav(page, "Homepage")
    page.wait_for_url(re.compile(r"/homepage(\?.*)?$"))
    page.locator(".hp-tiles").first.wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_idle(page)
    assert page.locator("[data-testid=stSelectbox]", has_text="Model").first.inner_text().split("\n")[-1] != \
        "Most popular"
    choose(page, "Side by side", "two knob settings")
    page.locator(".hp-tiles").nth(1).wait_for()
    wait_idle(page)
    no_exception_box(page)
    knob_blocks = page.evaluate(KNOB_LABELS_JS)
    assert len(knob_blocks) == 2, "one block of knobs per side"
    for block in knob_blocks:
        assert block["clipped"] == [], f"cut: {block['clipped']}"
        assert {text for text, _, _ in block["widths"]} >= {"No title twice", "Popularity blend α"}
        for text, natural, given in block["widths"]:
            assert natural <= given + 1, f"{text!r} needs {natural:.0f} px and gets {given:.0f}"
    shot(page, "walk-03-homepage-knobs.png")

    # two models: the second model and the knobs come first, then two columns that start level
    choose(page, "Side by side", "two models")
    shot(page, "walk-04a-homepage-two-models-asked.png")
    side_heading(page, "B").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_charts(page, 1)
    wait_idle(page)
    no_exception_box(page)
    knobs_y = page.get_by_text("Popularity blend α").first.bounding_box()["y"]
    heading_a = side_heading(page, "A").bounding_box()
    heading_b = side_heading(page, "B").bounding_box()
    first_tiles_y = page.locator(".hp-tiles").first.bounding_box()["y"]
    assert knobs_y < heading_a["y"] < first_tiles_y
    assert abs(heading_a["y"] - heading_b["y"]) < 2, "the two columns do not start level"
    shown_models = [side_heading(page, side).inner_text().replace("\u2060", "").strip()[3:] for side in ("A", "B")]
    mix = colours_in(chart_titled(page, "Genre mix of the two pages", 0))
    keys = {label: key for key, label in {**MODELS, "sasrec": SASREC}.items()}
    for name in shown_models:
        assert rgb(model_colour(keys[name])) in mix, f"{name} is not in its Compare colour on the Homepage"
    shot(page, "walk-04-homepage-two-models.png")

    # 4. Attention: the reasons read the tiles shown, and the page says so
    nav(page, "Attention")
    page.wait_for_url(re.compile(r"/attention(\?.*)?$"))
    page.get_by_role("heading", name="What it recommends next, and why").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_charts(page, 1)
    wait_idle(page)
    no_exception_box(page)
    main = page.locator("[data-testid=stMain]").inner_text()
    shown = int(re.search(r"What the model reads: the last (\d+) of", main).group(1))
    assert shown == 12 and "nothing outside them is cited" in main
    assert "blank upper triangle is the causal mask" in main
    shot(page, "walk-05-attention.png")

    # 5. Serving: by default the ranker differs from the retriever, so recall shows what retrieval costs
    nav(page, "Serving")
    page.wait_for_url(re.compile(r"/serving(\?.*)?$"))
    page.get_by_role("heading", name="Latency percentiles per request").wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_charts(page, 2)
    wait_idle(page)
    no_exception_box(page)
    ranker = page.locator("[data-testid=stSelectbox]", has_text="Ranking model").inner_text()
    assert "same as retrieval" not in ranker
    main = page.locator("[data-testid=stMain]").inner_text()
    headline = re.search(r"Recall@10 is the share .* among iALS's (\d+) candidates: ([\d.]+)% here", main)
    assert headline and int(headline.group(1)) == 20 and float(headline.group(2)) < 100.0, main
    assert "Timings are noisy" in main
    shot(page, "walk-06-serving.png")
