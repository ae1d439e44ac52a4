"""Cold start: pages for a new visitor from picked titles, models that cannot fold in, and cold items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset, load
from recsys.data.errors import DataError
from recsys.data.split import make_split
from recsys.models import create
from recsys.serving.coldstart import check_picks, cold_items, new_visitor_scores, supports_fold_in
from recsys.serving.page import HomepageBuilder, PageSettings


@pytest.fixture(scope="module")
def train():
    return make_split(load("sample"), "random", test_fraction=0.2, seed=42).train


@pytest.fixture(scope="module")
def item_knn(train):
    return create("item_knn").fit(train)


def test_a_new_visitors_page_comes_from_score_history(item_knn, train):
    picks = [3, 17, 256, 901]
    page = HomepageBuilder(item_knn, train).for_new_visitor(picks, PageSettings(dedupe=False))
    expected = np.argsort(-np.where(np.isin(np.arange(train.n_items), picks), -np.inf,
                                    item_knn.score_history(picks)), kind="stable")[:10]
    np.testing.assert_array_equal(page.row("top_picks").items, expected)
    shown = page.items
    assert not np.isin(shown, picks).any(), "a pick shown back to the visitor"
    assert page.row("watch_again") is None
    because = [row for row in page.rows if row.kind == "because"]
    assert because and all(row.title.startswith("Because you picked ") for row in because)
    # the newest picks with neighbours seed the rows (901 has no interactions in this split)
    assert train.item_popularity[901] == 0
    seeds = [p for p in picks[::-1] if len(item_knn.similar_items(p, 5)[0])][:2]
    assert sorted(row.key for row in because) == sorted(f"because:{p}" for p in seeds)


def test_a_model_without_fold_in_says_so(train):
    user_knn = create("user_knn").fit(train)
    assert not supports_fold_in(user_knn)
    with pytest.raises(DataError, match="cannot build a page for a new visitor"):
        HomepageBuilder(user_knn, train).for_new_visitor([1, 2, 3])
    # its pages for known users still work
    assert HomepageBuilder(user_knn, train).for_user(0).rows


def test_picks_are_checked_with_clear_messages():
    np.testing.assert_array_equal(check_picks([5, 2, 5, 9], 10), [5, 2, 9])
    with pytest.raises(DataError, match="Pick at least 3"):
        check_picks([1, 2], 10, low=3)
    with pytest.raises(DataError, match="at most 10"):
        check_picks(range(11), 20, high=10)
    with pytest.raises(DataError, match="not in this catalogue"):
        check_picks([1, 12], 10)


def test_new_visitor_scores_need_a_trained_model():
    with pytest.raises(DataError, match="not trained yet"):
        new_visitor_scores(create("item_knn"), [1, 2])


def _catalogue_with_a_cold_item() -> Dataset:
    """Two genres watched by two camps, plus a Western nobody has watched yet."""
    rows, genres = [], {}
    for item in range(12):
        genres[item] = ("Western",) if item < 6 else ("Comedy",)
    for user in range(40):
        camp = range(0, 6) if user < 20 else range(6, 12)
        rows += [(user, item, 5.0) for item in camp if (user + item) % 3]
    items = pd.DataFrame({"item": list(range(13)), "title": [f"Film {i}" for i in range(13)],
                          "genres": [genres.get(i, ("Western",)) for i in range(13)]})
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item", "rating"]), items=items)


def test_an_item_without_interactions_reaches_a_new_visitor_through_content():
    ds = _catalogue_with_a_cold_item()
    cold = int(ds.item_codes([12])[0])
    np.testing.assert_array_equal(cold_items(ds), [cold])
    content = create("content_tfidf", min_df=1, use_title=False).fit(ds)
    builder = HomepageBuilder(content, ds)
    just_added = builder.for_new_visitor([0, 1, 2], PageSettings(row_length=3, dedupe=False, full_rows_only=False)).row("just_added")
    assert just_added is not None and list(just_added.items) == [cold]
    assert "nobody has watched" in just_added.title
    assert cold in builder.for_new_visitor([0, 1, 2], PageSettings(row_length=3, full_rows_only=False)).items
    # a collaborative model has no signal for it: no "Just added" row, and it is not a top pick
    knn_page = HomepageBuilder(create("item_knn").fit(ds), ds).for_new_visitor([0, 1, 2], PageSettings(row_length=3))
    assert knn_page.row("just_added") is None
    assert cold not in knn_page.row("top_picks").items
