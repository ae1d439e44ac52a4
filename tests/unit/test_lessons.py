"""Lessons: each teaches its effect on its default data, and the verdict follows the live numbers."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.data.errors import DataError
from recsys.lessons import Context, lessons, ratings
from recsys.lessons import evaluation as ev
from recsys.lessons import neighborhood as nb


def test_lessons_are_listed_in_course_order_with_unique_keys():
    found = lessons()
    keys = list(found)
    # the course runs neighbourhoods -> factorization -> neural -> graphs -> evaluation -> the online half
    assert keys[0] == "harsh_raters"
    assert keys.index("embedding_size") < keys.index("and_taste") < keys.index("layers_are_hops")
    assert keys.index("layers_are_hops") < keys.index("ndcg_by_hand") < keys.index("offline_up_clicks_flat")
    for lesson in found.values():
        assert len(lesson.choices) >= 2 and lesson.question.endswith("?")


# ------------------------------------------------------------------ cosine vs pearson
def test_pearson_ranks_the_same_taste_harsh_rater_first_and_cosine_does_not():
    result = lessons()["harsh_raters"].run()
    f = result.figures
    assert f["pearson_same"] == pytest.approx(1.0) and f["pearson_opposite"] == pytest.approx(-1.0)
    assert f["cosine_same"] == pytest.approx(38 / np.sqrt(82 * 20))
    assert f["cosine_opposite"] > f["cosine_same"]
    assert nb.CHOICES[result.correct] == "Pearson only"
    assert "0.938" in result.explanation and "0.976" in result.explanation


def test_the_verdict_follows_edited_vectors():
    # the warning: (5,5,2,2) and (3,3,1,1) are near-parallel, so cosine agrees with Pearson there
    result = lessons()["harsh_raters"].run(generous="5,5,2,2", harsh_same_taste="3,3,1,1",
                                            generous_opposite="2,2,5,5")
    assert nb.CHOICES[result.correct] == "Both"
    assert result.feedback(result.correct).startswith("Right.")
    assert result.feedback(0).startswith("Not quite.")


def test_unequal_or_bad_vectors_are_refused_with_the_fix():
    with pytest.raises(DataError, match="same number of films"):
        lessons()["harsh_raters"].run(generous="5,5,4")
    with pytest.raises(DataError, match="entry 2"):
        lessons()["harsh_raters"].run(generous="5,x,4,4")


def test_real_users_neighbours_under_both_metrics(sample):
    result = lessons()["harsh_raters"].run(Context(dataset=sample), neighbours=4)
    user = nb.harshest_rater(sample)
    means = np.asarray(sample.csr.sum(axis=1)).ravel() / np.maximum(sample.user_activity, 1)
    eligible = sample.user_activity >= 20
    assert means[user] == pytest.approx(means[eligible].min())
    tables = [t for title, t in result.tables.items() if "neighbours" in title]
    assert len(tables) == 2 and all(len(t) == 4 for t in tables)
    for table in tables:  # overlaps are real co-rated counts
        for neighbour, overlap in zip(table["neighbour"], table["films rated by both"]):
            other = sample.user_codes(np.array([neighbour], dtype=sample.user_ids.dtype))[0]
            both = sample.seen[user].multiply(sample.seen[other]).nnz
            assert overlap == both


# ------------------------------------------------------------------ NDCG by hand
def test_ndcg_terms_add_up_to_the_evaluators_figure():
    result = lessons()["ndcg_by_hand"].run()
    terms = result.tables["Term by term"]
    dcg = terms["DCG term"].sum()
    idcg = terms["IDCG so far"].iloc[-1]
    assert result.figures["ndcg_graded"] == pytest.approx(dcg / idcg)
    # brute force: grades 1,3,0,2,0,0,1 with a missed 3 -> ideal 3,3,2,1,1
    disc = 1 / np.log2(np.arange(2, 12))
    grades = np.array([1, 3, 0, 2, 0, 0, 1, 0, 0, 0])
    ideal = np.array([3, 3, 2, 1, 1, 0, 0, 0, 0, 0])
    assert result.figures["ndcg_graded"] == pytest.approx((grades @ disc) / (ideal @ disc))
    assert result.figures["precision"] == pytest.approx(0.4)
    assert result.figures["recall"] == pytest.approx(4 / 5)


@pytest.mark.parametrize("relevance, expected", [("1,3,0", "It goes up"), ("3,1,0", "It goes down"),
                                                  ("2,2,0", "It stays the same")])
def test_swap_question_is_decided_by_the_numbers(relevance, expected):
    result = lessons()["ndcg_by_hand"].run(relevance=relevance, missed="", k=3)
    assert ev.SWAP_CHOICES[result.correct] == expected


def test_swap_beyond_the_list_is_refused():
    with pytest.raises(DataError, match="has 3 items"):
        lessons()["ndcg_by_hand"].run(relevance="1,2,3", swap_b=5)


# ------------------------------------------------------------------ the magic barrier
def test_star_moments_match_sampling():
    rng = np.random.default_rng(0)
    signal = np.array([0.7, 2.2, 3.5, 4.9])
    draws = np.clip(np.round(signal[:, None] + 0.65 * rng.normal(size=(4, 200_000))), 1, 5)
    mean, variance = ratings.star_moments(signal, 0.65)
    assert np.allclose(mean, draws.mean(axis=1), atol=0.01)
    assert np.allclose(variance, draws.var(axis=1), atol=0.01)


def test_no_model_passes_the_barrier_and_the_oracle_sits_on_it():
    context = Context()
    result = lessons()["magic_barrier"].run(context, users=300, items=200)
    f = result.figures
    se = f["barrier"] / np.sqrt(2 * f["test_ratings"])
    assert abs(f["oracle_rmse"] - f["barrier"]) < 4 * se
    assert f["best_model_rmse"] > f["barrier"] - 2 * se
    assert f["global_mean_rmse"] > f["best_model_rmse"]
    assert ratings.BARRIER_CHOICES[result.correct].startswith("No")
    assert f"{f['barrier']:.3f}" in result.explanation
    assert len(context.fits) == 2


def test_less_noise_lowers_the_barrier():
    low = ratings.magic_barrier(ratings.BarrierKnobs(rating_noise=0.2, users=300, items=200), Context())
    high = ratings.magic_barrier(ratings.BarrierKnobs(rating_noise=1.0, users=300, items=200), Context())
    assert low.figures["barrier"] < 0.5 * high.figures["barrier"]


def test_a_stored_lesson_run_trains_nothing_the_second_time(store):
    first = Context(store=store)
    lessons()["magic_barrier"].run(first, users=300, items=200)
    again = Context(store=store)
    lessons()["magic_barrier"].run(again, users=300, items=200)
    assert len(first.fits) == 2 and again.fits == []
