"""Homepage rows and page assembly on the bundled sample and on hand-built data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset, load
from recsys.data.errors import DataError
from recsys.data.split import make_split
from recsys.evaluation.beyond import intra_list_diversity
from recsys.models import create
from recsys.serving.page import (
    Homepage,
    HomepageBuilder,
    PageSettings,
    Row,
    measure_latency,
    page_metrics,
    typical_users,
)
from recsys.serving.ranking import top_k
from recsys.serving.rows import SECONDS_PER_DAY, BecauseYouWatched, Catalogue

USERS = [0, 7, 42, 123, 999, 1500, 2499]


@pytest.fixture(scope="module")
def train():
    return make_split(load("sample"), "random", test_fraction=0.2, seed=42).train


@pytest.fixture(scope="module")
def builder(train):
    return HomepageBuilder(create("item_knn").fit(train), train)


def test_every_row_has_readable_reasons_and_the_fixed_length(builder, train):
    page = builder.for_user(7, PageSettings(row_length=8, max_rows=20))
    assert page.rows, "a page without rows"
    kinds = {row.kind for row in page.rows}
    assert {"top_picks", "because", "trending", "genre"} <= kinds
    for row in page.rows:
        assert len(row.items) == 8 and len(row.reasons) == 8
        assert all(isinstance(r, str) and len(r) > 10 for r in row.reasons)
    history = {builder.catalogue.label(i) for i in train.seen[7].indices}
    for row in page.rows:
        if row.kind == "because":
            seed = row.title.removeprefix("Because you watched ")
            assert seed in history
            assert all(reason == f"Because you watched {seed}" for reason in row.reasons)


def test_rows_are_ordered_by_expected_relevance(builder):
    page = builder.for_user(42, PageSettings(dedupe=False))
    relevance = [row.relevance for row in page.rows]
    assert relevance == sorted(relevance, reverse=True)
    assert page.rows[0].key == "top_picks"


def test_recommendation_rows_never_show_seen_items(builder, train):
    for user in USERS:
        seen = set(train.seen[user].indices)
        for row in builder.for_user(user).rows:
            shown_seen = seen & set(row.items.tolist())
            assert not shown_seen if row.kind != "watch_again" else shown_seen == set(row.items.tolist())


@pytest.mark.parametrize("settings", [PageSettings(), PageSettings(alpha=0.5, mmr_lambda=0.3, tail_share=0.4),
                                      PageSettings(row_length=15, max_rows=10)])
def test_with_dedupe_on_no_title_appears_twice(builder, settings):
    for user in USERS:
        page = builder.for_user(user, settings)
        assert len(page.items) == len(np.unique(page.items))
        assert page.metrics["duplicates"] == 0 and page.metrics["page coverage"] == 1.0


def test_with_dedupe_off_rows_overlap_and_the_metrics_count_it(builder):
    duplicates = []
    for user in USERS:
        page = builder.for_user(user, PageSettings(dedupe=False))
        slots = page.items
        assert page.metrics["duplicates"] == len(slots) - len(np.unique(slots))
        duplicates.append(page.metrics["duplicates"])
    # genre rows re-rank the same scores as "Top picks": some titles must repeat
    assert max(duplicates) > 0


@pytest.mark.parametrize("dedupe", [True, False])
def test_alpha_one_top_picks_equal_popularity_ranking_minus_seen(builder, train, dedupe):
    for user in USERS:
        page = builder.for_user(user, PageSettings(alpha=1.0, dedupe=dedupe))
        expected, _ = top_k(train.item_popularity.astype(np.float32), 10, exclude=train.seen[[user]])
        np.testing.assert_array_equal(page.row("top_picks").items, expected[0])


def test_alpha_zero_top_picks_equal_the_models_ranking(builder, train):
    for user in USERS:
        page = builder.for_user(user, PageSettings(alpha=0.0))
        expected, _ = builder.model.recommend([user], 10)
        np.testing.assert_array_equal(page.row("top_picks").items, expected[0])


def test_mmr_at_lambda_one_equals_pure_relevance_and_lower_lambda_diversifies(builder, train):
    genres = train.genre_matrix[0]
    diversity = {1.0: [], 0.2: []}
    for user in USERS:
        relevance_only = builder.for_user(user, PageSettings(mmr_lambda=1.0))
        model_order, _ = builder.model.recommend([user], 10)
        np.testing.assert_array_equal(relevance_only.row("top_picks").items, model_order[0])
        for lam in diversity:
            row = builder.for_user(user, PageSettings(mmr_lambda=lam)).row("top_picks").items
            diversity[lam].append(float(intra_list_diversity(row[None, :], genres)[0]))
    assert np.mean(diversity[0.2]) > np.mean(diversity[1.0]) + 0.05


def test_tail_floor_puts_enough_long_tail_titles_in_every_reranked_row(builder):
    tail = builder.catalogue.is_tail
    for user in USERS[:4]:
        plain = builder.for_user(user, PageSettings(tail_share=0.0))
        floored = builder.for_user(user, PageSettings(tail_share=0.5))
        for row in floored.rows:
            if row.kind != "watch_again":  # your own history is not re-ranked
                assert tail[row.items].sum() >= 5, row.title
        assert floored.metrics["tail share"] >= plain.metrics["tail share"]


def test_trending_matches_the_half_life_formula_at_the_newest_timestamp(train):
    catalogue = Catalogue(train, half_life_days=10.0)
    reference = train.timestamp.max()
    expected = np.zeros(train.n_items)
    for item, ts in zip(train.item[:5000], train.timestamp[:5000]):
        expected[item] += 0.5 ** ((reference - ts) / SECONDS_PER_DAY / 10.0)
    partial = Catalogue(train.subset(np.arange(train.n_interactions) < 5000), half_life_days=10.0)
    # the subset's newest event differs; rebuild the reference to compare like with like
    shift = 0.5 ** ((reference - partial.reference_time) / SECONDS_PER_DAY / 10.0)
    np.testing.assert_allclose(partial.trending * shift, expected, rtol=1e-9)
    assert catalogue.reference_time == reference


def test_trending_prefers_recent_interest_over_old_fame():
    day = int(SECONDS_PER_DAY)
    rows = [(u, "old hit", 1 * day) for u in range(10)] + [(u, "new hit", 100 * day) for u in range(3)]
    rows += [(u, "filler", 50 * day) for u in range(10, 13)]
    ds = Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item", "ts"]), rating=None, timestamp="ts")
    catalogue = Catalogue(ds, half_life_days=7.0)
    trending = dict(zip(ds.item_ids, catalogue.trending))
    assert trending["new hit"] > trending["old hit"]
    assert catalogue.popularity[ds.item_codes(["old hit"])[0]] > catalogue.popularity[ds.item_codes(["new hit"])[0]]


def test_new_releases_hold_only_the_newest_tenth_of_the_catalogue(builder):
    years = builder.catalogue.years
    cutoff = np.quantile(years[np.isfinite(years)], 0.9)
    for user in USERS:
        row = builder.for_user(user, PageSettings(max_rows=20)).row("new")
        assert row is not None and (years[row.items] >= cutoff).all()
        assert all(r == f"New: released in {int(years[i])}" for i, r in zip(row.items, row.reasons))


def test_watch_again_is_the_liked_history_most_recent_first(builder, train):
    page = builder.for_user(123, PageSettings(max_rows=20))
    row = page.row("watch_again")
    mask = train.user == 123
    items, ratings, times = train.item[mask], train.rating[mask], train.timestamp[mask]
    liked = ratings >= ratings.mean()
    order = np.lexsort((-items[liked], -times[liked]))  # newest first; equal times: the later item code first
    np.testing.assert_array_equal(row.items, items[liked][order][:10])


def test_because_you_watched_falls_back_to_item_cosine():
    """user_knn has no item neighbours of its own: the row uses cosine over the training columns."""
    ds = make_split(load("sample"), "random", test_fraction=0.2, seed=1).train
    model = create("user_knn").fit(ds)
    assert not hasattr(model, "similar_items")
    catalogue = Catalogue(ds)
    x = ds.positives.toarray()
    seed = 5
    norms = np.linalg.norm(x, axis=0)
    cosine = (x.T @ x[:, seed]) / np.where(norms > 0, norms, 1) / norms[seed]
    cosine[seed] = -np.inf
    expected = np.argsort(-cosine, kind="stable")[:20]
    items, scores = BecauseYouWatched.neighbours(seed, catalogue, model, 20)
    np.testing.assert_allclose(scores, cosine[items], rtol=1e-5)
    np.testing.assert_allclose(np.sort(scores)[::-1], cosine[expected], rtol=1e-5)


def test_page_metrics_hand_worked():
    ds = Dataset.from_frame(pd.DataFrame({
        "user": [0, 1, 2, 3, 0, 1, 0],
        "item": [10, 10, 10, 10, 20, 20, 30],
        "rating": [1.0] * 7,
    }), items=pd.DataFrame({"item": [10, 20, 30], "title": ["A", "B", "C"],
                            "genres": [("X",), ("X", "Y"), ("Z",)]}))
    catalogue = Catalogue(ds, head_fraction=0.34)   # head: ceil(.34 * 3) = 2 items, A and B
    rows = [Row("r1", "one", "top_picks", np.array([0, 1]), ["a", "b"], 1.0),
            Row("r2", "two", "genre", np.array([1, 2]), ["b", "c"], 0.5)]
    page = Homepage("someone", "model", PageSettings(), rows)
    m = page_metrics(page, catalogue)
    assert (m["slots"], m["distinct titles"], m["duplicates"]) == (4, 3, 1)
    assert m["page coverage"] == pytest.approx(0.75)
    assert m["tail share"] == pytest.approx(0.25)
    # self-information: A seen by 4 of 4 users (0 bits), B by 2 (1 bit), C by 1 (2 bits)
    assert m["novelty (bits)"] == pytest.approx((0 + 1 + 1 + 2) / 4)
    # genre weight: A -> X 1; B (twice) -> X .5, Y .5 each; C -> Z 1  => X 2, Y 1, Z 1 of 4
    shares = np.array([0.5, 0.25, 0.25])
    assert m["genres"] == 3
    assert m["genre entropy (bits)"] == pytest.approx(float(-(shares * np.log2(shares)).sum()))


def test_a_dataset_without_genres_years_or_timestamps_still_builds_a_page():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 60, 1500), rng.integers(0, 80, 1500)
    ds = Dataset.from_frame(pd.DataFrame({"user": users, "item": items}), rating=None)
    for key in ("item_knn", "pure_svd", "pop"):
        builder = HomepageBuilder(create(key).fit(ds), ds)
        page = builder.for_user(3, PageSettings(mmr_lambda=0.5, tail_share=0.3, row_length=6))
        kinds = [row.kind for row in page.rows]
        assert "genre" not in kinds and "new" not in kinds
        assert page.row("trending").title == "Popular on the service"
        assert page.metrics["genres"] == 0
        assert len(page.items) == len(np.unique(page.items))


def test_typical_users_sit_at_the_activity_percentiles(train):
    people = typical_users(train)
    activity = train.user_activity
    assert activity[people["light"]] < activity[people["heavy"]]
    for name, q in (("light", 10), ("heavy", 90)):
        target = np.percentile(activity[activity > 0], q)
        assert abs(activity[people[name]] - target) == np.min(np.abs(activity[activity > 0] - target))


def test_latency_measurement_counts_every_page(builder):
    result = measure_latency(builder, USERS)
    assert result["pages"] == len(USERS)
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["mean_ms"] <= result["max_ms"]


def test_bad_settings_and_users_are_explained():
    with pytest.raises(DataError, match="alpha must lie in"):
        PageSettings(alpha=2.0)
    with pytest.raises(DataError, match="long-tail floor"):
        PageSettings(tail_share=-0.1)


def test_an_unknown_user_code_is_explained(builder, train):
    with pytest.raises(DataError, match="not in this training set"):
        builder.for_user(train.n_users)


def test_tail_share_in_metrics_matches_the_head_definition(builder, train):
    page = builder.for_user(0)
    head_size = math.ceil(0.2 * train.n_items)
    assert (~builder.catalogue.is_tail).sum() == head_size
    assert page.metrics["tail share"] == pytest.approx(float(builder.catalogue.is_tail[page.items].mean()))


def test_without_years_new_releases_are_the_titles_first_seen_last():
    """No release years: "new" means the newest tenth of first-interaction times."""
    day = int(SECONDS_PER_DAY)
    rng = np.random.default_rng(3)
    n = 3000
    items = rng.integers(0, 100, n)
    # item i first appears around day i, so high codes are the new arrivals
    times = (items + rng.integers(0, 30, n)) * day
    ds = Dataset.from_frame(pd.DataFrame({"user": rng.integers(0, 80, n), "item": items, "ts": times}),
                            rating=None, timestamp="ts")
    builder = HomepageBuilder(create("item_knn").fit(ds), ds)
    first_seen = builder.catalogue.first_seen
    cutoff = np.quantile(first_seen, 0.9)
    row = builder.for_user(0, PageSettings(row_length=4, max_rows=20, dedupe=False)).row("new")
    assert row is not None and (first_seen[row.items] >= cutoff).all()
    assert all(reason.startswith("New on the service since ") for reason in row.reasons)
    # brute force over the stored interactions (repeated user-item pairs keep their last time)
    expected_first = np.array([ds.timestamp[ds.item == code].min() for code in range(ds.n_items)], dtype=float)
    np.testing.assert_array_equal(first_seen, expected_first)


# ---------------------------------------------------------------------------- a model per row

MIXED_SETTINGS = [PageSettings(dedupe=False, max_rows=50),
                  PageSettings(dedupe=False, max_rows=50, alpha=0.3, mmr_lambda=0.5, tail_share=0.3)]


@pytest.fixture(scope="module")
def ease(train):
    return create("ease").fit(train)


@pytest.fixture(scope="module")
def pure_svd(train):
    return create("pure_svd").fit(train)


@pytest.fixture(scope="module")
def user_knn(train):
    return create("user_knn").fit(train)


def popular_picks(train, n=5):
    return np.lexsort((np.arange(train.n_items), -train.item_popularity))[:n]


def page_as_tuples(page: Homepage):
    """Everything a person sees on a page, comparable with ==."""
    return ([(r.key, r.title, r.kind, r.items.tolist(), r.reasons, r.relevance, r.model) for r in page.rows],
            page.metrics, page.skipped, page.row_models)


@pytest.mark.parametrize("settings", [PageSettings(), PageSettings(alpha=0.4, mmr_lambda=0.3, tail_share=0.5),
                                      PageSettings(dedupe=False, row_length=6)])
def test_every_row_given_the_default_model_equals_the_single_model_page(builder, train, settings):
    everything = {kind: builder.model for kind in builder.row_kinds()}
    assert set(everything) == {"top_picks", "because", "genre", "new", "just_added"}
    assigned = builder.with_row_models(everything)
    built = HomepageBuilder(builder.model, train, row_models=everything)
    for same in (assigned, built):
        assert not same.row_models and same.description == "Item-item kNN"
        for user in USERS:
            assert page_as_tuples(same.for_user(user, settings)) == page_as_tuples(builder.for_user(user, settings))
        picks = popular_picks(train)
        assert page_as_tuples(same.for_new_visitor(picks, settings)) == \
            page_as_tuples(builder.for_new_visitor(picks, settings))


@pytest.mark.parametrize("settings", MIXED_SETTINGS)
def test_a_row_given_model_b_holds_exactly_the_row_model_bs_page_would_show(builder, train, ease, settings):
    mixed = builder.with_row_models({"top_picks": ease, "genre": ease})
    ease_only = HomepageBuilder(ease, train)
    assert mixed.description == "Item-item kNN; Top picks by EASE; Genre rows by EASE"
    pages = [(mixed.for_user(u, settings), ease_only.for_user(u, settings), builder.for_user(u, settings))
             for u in USERS]
    picks = popular_picks(train)
    pages.append((mixed.for_new_visitor(picks, settings), ease_only.for_new_visitor(picks, settings),
                  builder.for_new_visitor(picks, settings)))
    for page, by_ease, by_knn in pages:
        assert page.mixed and page.row_models == {"Top picks": "EASE", "Genre rows": "EASE"}
        kinds = {row.kind for row in page.rows}
        assert {"top_picks", "genre", "because"} <= kinds
        for row in page.rows:
            reference = by_ease if row.kind in ("top_picks", "genre") else by_knn
            expected = reference.row(row.key)
            assert expected is not None, row.key
            np.testing.assert_array_equal(row.items, expected.items, err_msg=row.key)
            assert row.model == {"top_picks": "EASE", "genre": "EASE", "trending": "",
                                 "watch_again": ""}.get(row.kind, "Item-item kNN")
        blend = f" blended with {settings.alpha:.0%} popularity" if settings.alpha else ""
        top = page.row("top_picks")
        # the rank is the title's place in EASE's ranking; re-ranking may move it along the row
        ranks = [int(reason.split(" ")[0].lstrip("#")) for reason in top.reasons]
        assert top.reasons == [f"#{rank} for you by EASE{blend}" for rank in ranks]
        if settings.mmr_lambda == 1.0 and settings.tail_share == 0.0:
            assert ranks == list(range(1, 11))
        assert all(r.endswith(f", ranked by EASE{blend}") for row in page.rows if row.kind == "genre"
                   for r in row.reasons)
        assert all(r.endswith(", similar titles by Item-item kNN") for row in page.rows if row.kind == "because"
                   for r in row.reasons)


def test_top_picks_by_model_b_equal_model_bs_own_ranking(builder, ease):
    mixed = builder.with_row_models({"top_picks": ease})
    for user in USERS:
        expected, _ = ease.recommend([user], 10)
        row = mixed.for_user(user, PageSettings(dedupe=False)).row("top_picks")
        np.testing.assert_array_equal(row.items, expected[0])


@pytest.mark.parametrize("settings", [PageSettings(), PageSettings(alpha=0.5, mmr_lambda=0.3, tail_share=0.4),
                                      PageSettings(row_length=15, max_rows=12)])
def test_with_dedupe_on_no_title_appears_twice_across_mixed_model_rows(builder, train, ease, pure_svd, user_knn,
                                                                       settings):
    mixed = builder.with_row_models({"top_picks": ease, "new": ease, "genre": pure_svd, "because": user_knn})
    pages = [mixed.for_user(user, settings) for user in USERS]
    pages.append(mixed.for_new_visitor(popular_picks(train), settings))
    for page in pages:
        assert len(page.items) == len(np.unique(page.items))
        assert page.metrics["duplicates"] == 0 and page.metrics["page coverage"] == 1.0
    made_by = {row.model for page in pages for row in page.rows if row.model}
    # every row kind that has items here is assigned (just added needs a content model), so no default rows
    assert made_by == {"EASE", "PureSVD", "User-user kNN"}
    assert pages[-1].skipped and "User-user kNN cannot fold in" in pages[-1].skipped[0]
    # the same pages without dedupe do repeat titles: the guarantee is the dedupe's doing
    loose = PageSettings(**{**settings.__dict__, "dedupe": False})
    assert max(mixed.for_user(user, loose).metrics["duplicates"] for user in USERS) > 0


def test_rows_from_a_model_without_item_neighbours_say_where_they_come_from(builder, user_knn):
    page = builder.with_row_models({"because": user_knn}).for_user(42, PageSettings(dedupe=False, max_rows=50))
    because = [row for row in page.rows if row.kind == "because"]
    assert because and all(row.model == "User-user kNN" for row in because)
    for row in because:
        seed = row.title.removeprefix("Because you watched ")
        assert set(row.reasons) == {f"Because you watched {seed}, similar titles by co-watching "
                                    "(User-user kNN has no item neighbours)"}


class CountingModel:
    """A fitted model whose score / score_history calls are counted (everything else passes through)."""

    def __init__(self, model):
        self._model = model
        self.calls = {"score": 0, "score_history": 0}

    def __getattr__(self, name):
        attribute = getattr(self._model, name)
        if name not in self.calls:
            return attribute

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attribute(*args, **kwargs)
        return counted


def test_each_model_scores_the_person_once_per_page(train, ease):
    knn = CountingModel(create("item_knn").fit(train))
    counted_ease = CountingModel(ease)
    mixed = HomepageBuilder(knn, train, row_models={"top_picks": counted_ease, "genre": counted_ease,
                                                     "new": counted_ease})
    page = mixed.for_user(7, PageSettings(max_rows=20))
    assert {row.model for row in page.rows} >= {"EASE", "Item-item kNN"}
    assert knn.calls == {"score": 1, "score_history": 0}
    assert counted_ease.calls == {"score": 1, "score_history": 0}
    mixed.for_new_visitor(popular_picks(train))
    assert knn.calls == {"score": 1, "score_history": 1}
    assert counted_ease.calls == {"score": 1, "score_history": 1}


def test_a_row_model_without_fold_in_is_left_out_for_a_new_visitor_with_the_reason(builder, train, user_knn):
    settings = PageSettings(dedupe=False, max_rows=50)
    picks = popular_picks(train)
    page = builder.with_row_models({"because": user_knn}).for_new_visitor(picks, settings)
    assert page.skipped == ["Because you watched: left out, because User-user kNN cannot fold in a new visitor "
                            "(it only knows the users it was trained on)."]
    assert not [row for row in page.rows if row.kind == "because"]
    single = builder.for_new_visitor(picks, settings)
    # the same rows with the same titles (a mixed page orders rows by percentile ranks, so compare as sets)
    assert sorted(row.key for row in single.rows if row.kind != "because") == sorted(row.key for row in page.rows)
    for row in page.rows:
        np.testing.assert_array_equal(row.items, single.row(row.key).items)
    # a known user is fine: user-user kNN scores the people it was trained on
    assert any(row.kind == "because" for row in builder.with_row_models({"because": user_knn}).for_user(7).rows)
    # the default model places the page, so it must fold in itself; the error names it
    with pytest.raises(DataError, match="User-user kNN cannot build a page for a new visitor"):
        HomepageBuilder(user_knn, train, row_models={"top_picks": builder.model}).for_new_visitor(picks)


def test_row_models_on_other_data_unknown_kinds_and_untrained_models_are_explained(builder, train):
    other = make_split(load("sample"), "random", test_fraction=0.2, seed=1).train
    with pytest.raises(DataError, match="EASE, chosen for Genre rows, was trained on different data than Item-item kNN"):
        builder.with_row_models({"genre": create("ease").fit(other)})
    with pytest.raises(DataError, match="no row kind 'trending' that takes its own model"):
        builder.with_row_models({"trending": builder.model})
    with pytest.raises(DataError, match="iALS, chosen for Top picks, is not trained yet"):
        builder.with_row_models({"top_picks": create("ials")})


def brute_force_percentiles(scores: np.ndarray) -> np.ndarray:
    """Items ranked below, plus half the other items tied with it, over n - 1 (one loop per item)."""
    n = len(scores)
    return np.array([((scores < s).sum() + ((scores == s).sum() - 1) / 2) / (n - 1) for s in scores])


def test_mixed_rows_are_ordered_by_each_models_percentile_ranks(builder, train, ease):
    from recsys.serving.rerank import normalise

    mixed = builder.with_row_models({"top_picks": ease, "genre": ease})
    for user in USERS[:3]:
        page = mixed.for_user(user, PageSettings(dedupe=False, max_rows=50))
        percentiles = {"EASE": brute_force_percentiles(normalise(ease.score([user])[0])),
                       "Item-item kNN": brute_force_percentiles(normalise(builder.model.score([user])[0]))}
        for row in page.rows:
            weight = 0.5 if row.kind == "watch_again" else 1.0
            by = percentiles[row.model or "Item-item kNN"]   # model-free rows are placed by the default
            assert row.relevance == pytest.approx(weight * by[row.items].mean(), rel=1e-9), row.key
        relevance = [row.relevance for row in page.rows]
        assert relevance == sorted(relevance, reverse=True)
