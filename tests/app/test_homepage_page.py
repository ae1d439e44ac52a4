"""Homepage page through app.py: one-click model, users, a new visitor, knobs, side by side."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from recsys.data import load
from recsys.data.split import make_split
from recsys.models import create
from recsys.serving.page import HomepageBuilder
from recsys.serving.ranking import top_k
from tests.app.test_inspection_pages import train_models
from tests.app.test_pages import assert_clean, charts
from ui.text import md_unescape

HOMEPAGE = "app_pages/homepage.py"
ROW_TITLE = re.compile(r'class="hp-row-title">(.*?)<span')
TILE_TITLE = re.compile(r'class="hp-tile-title">(.*?)</div>')
TILE_REASON = re.compile(r'class="hp-tile-reason">(.*?)</div>')
NOTE = re.compile(r'class="hp-row-note">(.*?)</span>')


@pytest.fixture(scope="module")
def train():
    """The split the app makes by default (random 20 % holdout, seed 42) of the bundled sample."""
    return make_split(load("sample"), "random", test_fraction=0.2, seed=42).train


def page_html(at) -> str:
    blocks = [m.value for m in at.markdown if 'class="hp-tiles"' in m.value]
    assert blocks, "no tiles on the page"
    return blocks[0]


def rows_of(block: str) -> list[tuple[str, list[str], list[str]]]:
    """(row title, tile titles, reasons) per row, unescaped."""
    out = []
    for part in block.split('<div class="hp-row-title">')[1:]:
        title = html.unescape(part.split("<span")[0])
        out.append((title, [html.unescape(t) for t in TILE_TITLE.findall(part)],
                    [html.unescape(r) for r in TILE_REASON.findall(part)]))
    return out


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def open_with_quick_model(app):
    app.run()
    app.switch_page(HOMEPAGE).run()
    assert_clean(app)
    assert "No trained model" in app.info[0].value
    app.button(key="hp_quick_train").click().run()
    assert_clean(app)
    return app


def test_one_click_model_then_a_page_of_rows_with_reasons_and_metrics(app, train):
    at = open_with_quick_model(app)
    rows = rows_of(page_html(at))
    assert len(rows) == 8
    assert rows[0][0] == "Top picks for you"
    for title, tiles, reasons in rows:
        assert len(tiles) == 10 and len(reasons) == 10, title
        assert all(reasons)
    shown = [t for _, tiles, _ in rows for t in tiles]
    assert len(shown) == len(set(shown)), "dedupe is on by default: no title twice"
    m = metrics(at)
    assert m["Page coverage"] == "100%" and m["Duplicates"] == "0"
    assert charts(at) == ["Genre mix of the page (Item-item kNN)"]
    # user 1 (code 0) is the default: "Because you watched" names one of their titles
    history = {str(t) for t in train.item_titles(train.seen[0].indices)}
    because = [title for title, _, _ in rows if title.startswith("Because you watched ")]
    assert because and all(t.removeprefix("Because you watched ").rsplit(" (", 1)[0] in history for t in because)


def test_alpha_one_shows_the_most_popular_unseen_titles(app, train):
    at = open_with_quick_model(app)
    at.slider(key="hp_alpha").set_value(1.0).run()
    assert_clean(at)
    title, tiles, reasons = rows_of(page_html(at))[0]
    expected, _ = top_k(train.item_popularity.astype(np.float32), 10, exclude=train.seen[[0]])
    assert title == "Top picks for you"
    assert tiles == [str(t) for t in train.item_titles(expected[0])]
    assert reasons[0] == "#1 for you by Item-item kNN blended with 100% popularity"


def test_tail_floor_and_dedupe_move_the_metrics(app):
    at = open_with_quick_model(app)
    before = metrics(at)
    at.slider(key="hp_tail").set_value(60).run()
    assert_clean(at)
    assert int(metrics(at)["Tail share"].rstrip("%")) >= 60
    at.slider(key="hp_tail").set_value(0).run()
    at.toggle(key="hp_dedupe").set_value(False).run()
    assert_clean(at)
    after = metrics(at)
    assert int(after["Duplicates"]) > 0 and int(after["Page coverage"].rstrip("%")) < 100
    assert before["Duplicates"] == "0"


def test_an_unknown_user_id_is_explained_and_typical_users_work(app, train):
    at = open_with_quick_model(app)
    at.text_input(key="hp_user_id").set_value("no-such-user").run()
    assert not at.exception
    assert "There is no user 'no-such-user'" in md_unescape(at.error[0].value)
    at.selectbox(key="hp_who").set_value("heavy").run()
    assert_clean(at)
    assert "90th percentile" in at.caption[-1].value or any("90th percentile" in c.value for c in at.caption)
    assert len(rows_of(page_html(at))) == 8


def test_a_new_visitor_picks_titles_and_gets_a_page_at_once(app, train):
    at = open_with_quick_model(app)
    at.selectbox(key="hp_who").set_value("new").run()
    assert_clean(at)
    assert "Pick at least 3 titles" in at.info[0].value
    popular = np.lexsort((np.arange(train.n_items), -train.item_popularity))[:4].tolist()
    at.multiselect(key="hp_picks").set_value(popular).run()
    assert_clean(at)
    rows = rows_of(page_html(at))
    titles = [title for title, _, _ in rows]
    assert "Top picks for you" in titles and "Watch it again" not in titles
    assert any(t.startswith("Because you picked ") for t in titles)
    picked = {str(t) for t in train.item_titles(popular)}
    assert not picked & {t for _, tiles, _ in rows for t in tiles}, "a picked title shown back"


def test_side_by_side_two_knob_settings(app):
    at = open_with_quick_model(app)
    at.selectbox(key="hp_compare").set_value("two knob settings").run()
    assert_clean(at)
    at.slider(key="hp_lambda_b").set_value(0.2).run()
    assert_clean(at)
    blocks = [m.value for m in at.markdown if 'class="hp-tiles"' in m.value]
    assert len(blocks) == 2 and blocks[0] != blocks[1]
    table = at.dataframe[0].value
    assert list(table.columns) == ["A: knobs A", "B: knobs B"]
    assert float(table.loc["Genre entropy (bits)", "B: knobs B"]) > float(table.loc["Genre entropy (bits)",
                                                                                      "A: knobs A"])
    assert charts(at) == ["Genre mix of the two pages"]


def test_a_model_without_fold_in_says_so_for_a_new_visitor(app, train):
    train_models(app, {"user_knn": "User-user kNN"})
    app.switch_page(HOMEPAGE).run()
    assert_clean(app)
    assert len(rows_of(page_html(app))) >= 4   # known users are fine
    app.selectbox(key="hp_who").set_value("new").run()
    app.multiselect(key="hp_picks").set_value([0, 1, 2]).run()
    assert_clean(app)
    assert "cannot build a page for a new visitor" in app.warning[0].value


def test_a_model_per_row_matches_the_backends_mixed_page(app, train):
    train_models(app, {"item_knn": "Item-item kNN", "ease": "EASE"})
    app.switch_page(HOMEPAGE).run()
    assert_clean(app)
    app.selectbox(key="hp_model").set_value("Item-item kNN").run()
    app.radio(key="hp_model_mode").set_value("per row").run()
    assert_clean(app)
    # every row starts on the main model: the page is the single-model page
    kinds = ["top_picks", "because", "genre", "new", "just_added"]
    assert all(app.selectbox(key=f"hp_row_model_{kind}").value == "" for kind in kinds)
    single = rows_of(page_html(app))
    assert single[0][2][0] == "#1 for you by Item-item kNN"

    app.selectbox(key="hp_row_model_top_picks").set_value("EASE").run()
    app.selectbox(key="hp_row_model_genre").set_value("EASE").run()
    assert_clean(app)
    knn, ease = create("item_knn").fit(train), create("ease").fit(train)
    expected = HomepageBuilder(knn, train).with_row_models(
        {"top_picks": ease, "genre": ease}, names={"top_picks": "EASE", "genre": "EASE"}).for_user(0)
    shown = rows_of(page_html(app))
    assert [title for title, _, _ in shown] == [row.title for row in expected.rows]
    for (title, tiles, reasons), row in zip(shown, expected.rows):
        assert tiles == [str(t) for t in train.item_titles(row.items)], title
        assert reasons == row.reasons, title
    top = next(reasons for title, _, reasons in shown if title == "Top picks for you")
    assert top[:2] == ["#1 for you by EASE", "#2 for you by EASE"]
    notes = NOTE.findall(page_html(app))
    assert any(note.startswith("by EASE · relevance") for note in notes)
    assert any(note.startswith("by Item-item kNN · relevance") for note in notes)
    titles = [t for _, tiles, _ in shown for t in tiles]
    assert len(titles) == len(set(titles)), "dedupe holds across rows of different models"
    assert charts(app) == ["Genre mix of the page (Item-item kNN; Top picks by EASE; Genre rows by EASE)"]

    # side by side: the mixed page against EASE alone
    app.selectbox(key="hp_compare").set_value("two models").run()
    assert_clean(app)
    assert list(app.dataframe[0].value.columns) == ["A: Item-item kNN + per-row models", "B: EASE"]
    blocks = [m.value for m in app.markdown if 'class="hp-tiles"' in m.value]
    assert [title for title, _, _ in rows_of(blocks[0])] == [row.title for row in expected.rows]
    app.selectbox(key="hp_compare").set_value("off").run()

    # back to one model for all rows: the single-model page again
    app.radio(key="hp_model_mode").set_value("one").run()
    assert_clean(app)
    assert rows_of(page_html(app)) == single


def test_a_row_model_without_fold_in_is_left_out_for_a_new_visitor_with_a_warning(app, train):
    train_models(app, {"item_knn": "Item-item kNN", "user_knn": "User-user kNN"})
    app.switch_page(HOMEPAGE).run()
    app.selectbox(key="hp_model").set_value("Item-item kNN").run()
    app.radio(key="hp_model_mode").set_value("per row").run()
    app.selectbox(key="hp_row_model_because").set_value("User-user kNN").run()
    assert_clean(app)
    known_user = [title for title, _, _ in rows_of(page_html(app))]
    assert any(t.startswith("Because you watched ") for t in known_user)   # a known user is fine
    app.selectbox(key="hp_who").set_value("new").run()
    app.multiselect(key="hp_picks").set_value([0, 1, 2]).run()
    assert_clean(app)
    assert [md_unescape(w.value) for w in app.warning] == [  # escaped: the message names rows and models
        "Because you watched: left out, because User-user kNN cannot fold in a new visitor "
        "(it only knows the users it was trained on)."]
    titles = [title for title, _, _ in rows_of(page_html(app))]
    assert "Top picks for you" in titles and not any(t.startswith("Because you picked") for t in titles)


def test_the_page_opens_on_the_best_stored_run_not_the_first(app):
    # popularity is trained first and is the weakest: the page must not open on it
    train_models(app, {"pop": "Most popular", "item_knn": "Item-item kNN"})
    app.switch_page(HOMEPAGE).run()
    assert_clean(app)
    assert app.selectbox(key="hp_model").options[0] == "Most popular"
    assert app.selectbox(key="hp_model").value == "Item-item kNN"
    # a choice the person makes is kept
    app.selectbox(key="hp_model").set_value("Most popular").run()
    app.switch_page(HOMEPAGE).run()
    assert app.selectbox(key="hp_model").value == "Most popular"


def _flat(node) -> list:
    """Every element under ``node`` in page order (columns and containers opened)."""
    children = getattr(node, "children", None)
    if not children:
        return [node]
    return [leaf for child in children.values() for leaf in _flat(child)]


def test_two_models_put_every_control_above_two_level_columns(app):
    train_models(app, {"pop": "Most popular", "item_knn": "Item-item kNN"})
    app.switch_page(HOMEPAGE).run()
    app.selectbox(key="hp_compare").set_value("two models").run()
    assert_clean(app)
    order = _flat(app.main)
    keys = [getattr(element, "key", None) for element in order]
    first_tiles = next(i for i, e in enumerate(order) if 'class="hp-tiles"' in str(getattr(e, "value", "")))
    # the second model and the knobs come before the first tile, not 1,500 px down below the pages
    assert keys.index("hp_model_b") < first_tiles and keys.index("hp_alpha") < first_tiles
    headers = [md_unescape(h.value) for h in app.subheader][:2]
    assert headers == ["A: Item-item kNN", "B: Most popular"]
    assert all(keys.index(k) < first_tiles for k in ("hp_lambda", "hp_tail", "hp_dedupe"))


def test_two_knob_settings_lay_each_sides_knobs_two_by_two(app):
    at = open_with_quick_model(app)
    at.selectbox(key="hp_compare").set_value("two knob settings").run()
    assert_clean(at)
    # each side's knobs sit in two rows of two columns (four in half a page cut "No title twice" to "N")
    for suffix in ("", "_b"):
        toggle = at.toggle(key=f"hp_dedupe{suffix}")
        assert toggle.label == "No title twice"
    columns = [c for c in at.get("column")]
    halves = [c for c in columns if len([d for d in _flat(c) if getattr(d, "key", "") in
                                         ("hp_alpha", "hp_lambda", "hp_tail", "hp_dedupe",
                                          "hp_alpha_b", "hp_lambda_b", "hp_tail_b", "hp_dedupe_b")]) == 1]
    assert len(halves) == 8 and {round(c.weight, 3) for c in halves} == {0.5}
