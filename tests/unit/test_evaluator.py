"""evaluate() end to end on tiny hand-built splits, checked against brute-force loops."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.evaluation import compare_reports, curve, evaluate
from recsys.models.base import Recommender

N_ITEMS = 25
GENRES = ("Action", "Comedy", "Drama", "Horror")


def make_split(seed=0, implicit=False, threshold=None):
    """8 users x 25 items. Users 0-5: ~6 train + ~4 test ratings; user 6: test only (cold);
    user 7: train only. Returns (train, test) sharing one id map."""
    rng = np.random.default_rng(seed)
    rows, test_pairs = [], set()
    for u in range(8):
        items = rng.permutation(N_ITEMS)
        n_train = 0 if u == 6 else int(rng.integers(4, 8))
        n_test = 0 if u == 7 else int(rng.integers(2, 6))
        for i in items[:n_train]:
            rows.append((f"u{u}", int(i), float(rng.integers(1, 6))))
        for i in items[n_train : n_train + n_test]:
            rows.append((f"u{u}", int(i), float(rng.integers(1, 6))))
            test_pairs.add((f"u{u}", int(i)))
    # make sure every item code exists in the catalogue even if nobody rated it
    item_meta = pd.DataFrame(
        {
            "item": np.arange(N_ITEMS),
            "title": [f"Item {i}" for i in range(N_ITEMS)],
            "genres": [tuple(g for j, g in enumerate(GENRES) if (i >> j) & 1) for i in range(N_ITEMS)],
        }
    )
    df = pd.DataFrame(rows, columns=["user", "item", "rating"])
    ds = Dataset.from_frame(df, rating=None if implicit else "rating", items=item_meta, positive_threshold=threshold)
    is_test = np.array([(u, i) in test_pairs for u, i in zip(ds.user_ids[ds.user], ds.item_ids[ds.item])])
    return ds.subset(~is_test, name="train"), ds.subset(is_test, name="test")


class Oracle(Recommender):
    """Scores each item by its held-out grade: the best possible ranking."""

    key = "test_oracle"
    label = "Oracle"
    family = "baseline"

    def __init__(self, truth, **kw):
        super().__init__(**kw)
        self.truth = truth.tocsr()

    def _fit(self, train, *, valid, progress):
        progress(1, 1)

    def _score(self, users):
        return self.truth[users].toarray()


class Worst(Oracle):
    """Relevant items last: no hit is possible while enough other items are left."""

    label = "Worst"

    def _score(self, users):
        return -(self.truth[users].toarray() > 0).astype(np.float32)


class HistoryLover(Oracle):
    """Puts the user's own training items far on top: only exclusion keeps them out."""

    label = "History lover"

    def _score(self, users):
        return 100.0 * self.train_.seen[users].toarray() + self.truth[users].toarray()


class Hashed(Recommender):
    """Fixed pseudo-random scores, distinct within a user (13 * item mod 29 is one-to-one
    for 25 items) so the expected ranking is unambiguous."""

    key = "test_hashed"
    label = "Hashed"
    family = "baseline"

    def _fit(self, train, *, valid, progress):
        progress(1, 1)

    def _score(self, users):
        items = np.arange(self.train_.n_items)
        return (((users[:, None] * 7 + items[None, :] * 13) % 29) / 29.0).astype(np.float32)


class ConstantRater(Hashed):
    label = "Always three"

    def predict(self, users, items):
        return np.full(len(users), 3.0)


# ---------------------------------------------------------------------- brute force references
def loop_ranking(scores_row, seen_items, k):
    order = sorted((i for i in range(len(scores_row)) if i not in seen_items), key=lambda i: (-scores_row[i], i))
    return order[:k]


def loop_metrics(ranked, relevant, grades, k):
    hits = [1.0 if i in relevant else 0.0 for i in ranked[:k]]
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    gdcg = sum(grades.get(i, 0.0) / math.log2(r + 2) for r, i in enumerate(ranked[:k]))
    gidcg = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(grades.values(), reverse=True)[:k]))
    n_hits = sum(hits)
    p, rec = n_hits / k, n_hits / len(relevant)
    ap, found = 0.0, 0
    for r, h in enumerate(hits, start=1):
        if h:
            found += 1
            ap += found / r
    first = next((r for r, h in enumerate(hits, start=1) if h), None)
    return {
        "precision": p,
        "recall": rec,
        "f1": 0.0 if p + rec == 0 else 2 * p * rec / (p + rec),
        "ndcg": dcg / idcg,
        "ndcg_graded": gdcg / gidcg,
        "map": ap / min(len(relevant), k),
        "mrr": 0.0 if first is None else 1 / first,
        "hit": float(n_hits > 0),
    }


def user_sets(ds, u):
    row = ds.positives[u]
    grades_row = ds.csr[u]
    relevant = set(row.indices.tolist())
    grades = {int(i): float(v) for i, v in zip(grades_row.indices, grades_row.data) if int(i) in relevant}
    return relevant, grades


# ---------------------------------------------------------------------- tests
def test_oracle_is_perfect_and_cold_users_are_skipped():
    train, test = make_split()
    truth = test.csr.multiply(test.positives)
    report = evaluate(Oracle(truth).fit(train), train, test, k=[3, 5], bootstrap=200)
    assert report.users.tolist() == [0, 1, 2, 3, 4, 5]  # not cold user 6, not test-less user 7
    assert report.n_skipped_users == 1
    n_rel = np.diff(test.positives.indptr)[report.users]
    np.testing.assert_array_equal(report.n_relevant, n_rel)
    for k in (3, 5):
        np.testing.assert_allclose(report.per_user[f"ndcg@{k}"], 1.0)
        np.testing.assert_allclose(report.per_user[f"ndcg_graded@{k}"], 1.0)
        np.testing.assert_allclose(report.per_user[f"map@{k}"], 1.0)
        np.testing.assert_allclose(report.per_user[f"mrr@{k}"], 1.0)
        np.testing.assert_allclose(report.per_user[f"precision@{k}"], np.minimum(n_rel, k) / k)
        np.testing.assert_allclose(report.per_user[f"recall@{k}"], np.minimum(n_rel, k) / n_rel)
        assert report.means[f"ndcg@{k}"] == 1.0


def test_worst_model_never_hits():
    train, test = make_split()
    report = evaluate(Worst(test.positives).fit(train), train, test, k=[5], bootstrap=0)
    assert not report.hits.any()
    for name in ("ndcg@5", "recall@5", "precision@5", "map@5", "mrr@5", "hit@5"):
        np.testing.assert_array_equal(report.per_user[name], 0.0)
    assert report.ci == {}


def test_training_items_are_never_recommended():
    train, test = make_split(seed=3)
    truth = test.csr.multiply(test.positives)
    report = evaluate(HistoryLover(truth).fit(train), train, test, k=[10], bootstrap=0, batch_size=2)
    assert report.recommended.dtype == np.int32 and report.recommended.shape == (len(report.users), 10)
    for row, u in zip(report.recommended, report.users):
        assert not set(row.tolist()) & set(train.seen[u].indices.tolist())
    # with history removed the oracle part decides: perfect again
    np.testing.assert_allclose(report.per_user["ndcg@10"], 1.0)


@pytest.mark.parametrize("seed", range(4))
def test_every_metric_matches_brute_force(seed):
    train, test = make_split(seed=seed, threshold=3.0)
    model = Hashed().fit(train)
    ks = [1, 4, 10]
    report = evaluate(model, train, test, k=ks, bootstrap=0, batch_size=3)
    scores = model.score(report.users)
    for row_index, u in enumerate(report.users):
        seen = set(train.seen[u].indices.tolist())
        ranked = loop_ranking(scores[row_index], seen, max(ks))
        assert report.recommended[row_index].tolist() == ranked
        relevant, grades = user_sets(test, u)
        assert relevant  # evaluated users all have a positive
        for k in ks:
            expected = loop_metrics(ranked, relevant, grades, k)
            for name, value in expected.items():
                assert report.per_user[f"{name}@{k}"][row_index] == pytest.approx(value, abs=1e-12), (name, k, u)


def test_positive_threshold_defines_relevance_and_graded_gains():
    train, test = make_split(seed=1, threshold=4.0)
    report = evaluate(Hashed().fit(train), train, test, k=[10], bootstrap=0)
    for row_index, u in enumerate(report.users):
        ratings = dict(zip(test.csr[u].indices.tolist(), test.csr[u].data.tolist()))
        relevant = {i for i, r in ratings.items() if r >= 4.0}
        assert report.n_relevant[row_index] == len(relevant)
        for slot, item in enumerate(report.recommended[row_index]):
            assert report.hits[row_index, slot] == (item in relevant)
            assert report.gains[row_index, slot] == (ratings[item] if item in relevant else 0.0)
    # users whose test ratings are all below the threshold have nothing to find
    has_positive = np.diff(test.positives.indptr) > 0
    assert set(report.users.tolist()) == set(np.flatnonzero(has_positive & (train.user_activity > 0)).tolist())


def test_beyond_accuracy_wiring_uses_training_popularity():
    train, test = make_split(seed=2)
    report = evaluate(Hashed().fit(train), train, test, k=[3, 6], bootstrap=0)
    pop = train.item_popularity
    n_train_users = int((train.user_activity > 0).sum())
    for k in (3, 6):
        top = report.recommended[:, :k]
        nov = [np.mean([-math.log2(max(pop[i], 1) / n_train_users) for i in row]) for row in top]
        np.testing.assert_allclose(report.per_user[f"novelty@{k}"], nov)
        np.testing.assert_allclose(report.per_user[f"arp@{k}"], [np.mean(pop[row]) for row in top])
        assert report.list_level[f"coverage@{k}"] == pytest.approx(len(set(top.ravel().tolist())) / N_ITEMS)
        assert 0.0 <= report.list_level[f"gini@{k}"] <= 1.0
        assert 0.0 <= report.list_level[f"tail_share@{k}"] <= 1.0
        assert f"ild@{k}" in report.per_user  # genres exist, so diversity is measured


def test_no_diversity_without_item_features():
    train, test = make_split()
    bare_train = Dataset(train.user, train.item, train.rating, train.user_ids, train.item_ids)
    bare_test = Dataset(test.user, test.item, test.rating, test.user_ids, test.item_ids)
    report = evaluate(Hashed().fit(bare_train), bare_train, bare_test, k=[5], bootstrap=0)
    assert not any(name.startswith("ild@") for name in report.per_user)
    dense = np.random.default_rng(0).normal(size=(N_ITEMS, 3))
    with_embeddings = evaluate(Hashed().fit(bare_train), bare_train, bare_test, k=[5], bootstrap=0, features=dense)
    assert "ild@5" in with_embeddings.per_user


def test_batch_size_does_not_change_results():
    train, test = make_split(seed=5)
    model = Hashed().fit(train)
    one = evaluate(model, train, test, k=[5, 10], bootstrap=100, batch_size=1)
    many = evaluate(model, train, test, k=[5, 10], bootstrap=100, batch_size=1000)
    np.testing.assert_array_equal(one.recommended, many.recommended)
    for name in one.per_user:
        np.testing.assert_array_equal(one.per_user[name], many.per_user[name])
    assert one.ci == many.ci


def test_user_subset_and_intervals():
    train, test = make_split()
    report = evaluate(Hashed().fit(train), train, test, k=[5], users=[1, 3, 6, 7, 99], bootstrap=300)
    assert report.users.tolist() == [1, 3]
    assert report.n_skipped_users == 1  # user 6 asked for, cold
    for name, (lo, hi) in report.ci.items():
        assert lo <= report.means[name] + 1e-12 and report.means[name] <= hi + 1e-12, name


def test_rating_errors_for_models_that_predict():
    train, test = make_split(seed=4)
    report = evaluate(ConstantRater().fit(train), train, test, k=[5], bootstrap=0)
    warm = train.user_activity > 0
    rated = [(u, r) for u, r in zip(test.user, test.rating) if warm[u]]
    errors = np.array([r - 3.0 for _, r in rated])
    assert report.n_rated == len(rated)
    assert report.rmse == pytest.approx(math.sqrt(np.mean(errors**2)))
    assert report.mae == pytest.approx(np.mean(np.abs(errors)))
    for row_index, u in enumerate(report.users):
        mine = np.array([r - 3.0 for v, r in rated if v == u])
        assert report.per_user["squared_error"][row_index] == pytest.approx(np.mean(mine**2))
    assert report.summary()["rmse"] == report.rmse
    # ranking-only models and implicit data report no rating error
    assert evaluate(Hashed().fit(train), train, test, k=[5], bootstrap=0).rmse is None
    itrain, itest = make_split(seed=4, implicit=True)
    assert evaluate(ConstantRater().fit(itrain), itrain, itest, k=[5], bootstrap=0).rmse is None


def test_implicit_graded_ndcg_equals_binary():
    train, test = make_split(seed=6, implicit=True)
    report = evaluate(Hashed().fit(train), train, test, k=[5], bootstrap=0)
    np.testing.assert_allclose(report.per_user["ndcg_graded@5"], report.per_user["ndcg@5"])


def test_k_beyond_catalogue_pads_with_empty_slots():
    train, test = make_split()
    report = evaluate(Hashed().fit(train), train, test, k=[30], bootstrap=0)
    assert report.recommended.shape[1] == 30
    assert (report.recommended[:, N_ITEMS:] == -1).all()
    n_unseen = N_ITEMS - train.user_activity[report.users]
    assert ((report.recommended >= 0).sum(axis=1) == n_unseen).all()
    # every unseen test positive is somewhere in such a long list
    np.testing.assert_allclose(report.per_user["recall@30"], 1.0)


def test_curve_summary_and_comparison():
    train, test = make_split(seed=2)
    truth = test.csr.multiply(test.positives)
    report = evaluate(Hashed().fit(train), train, test, k=[5, 10], bootstrap=0)
    frame = curve(report, "ndcg")
    assert frame["k"].tolist() == list(range(1, 11))
    for k in (5, 10):
        assert frame.loc[frame["k"] == k, "value"].item() == pytest.approx(report.means[f"ndcg@{k}"])
    recall_curve = curve(report, "recall", ks=[1, 2, 5, 10])["value"].to_numpy()
    assert (np.diff(recall_curve) >= 0).all()
    assert curve(report, "coverage", ks=[5])["value"].item() == pytest.approx(report.list_level["coverage@5"])
    with pytest.raises(ValueError):
        curve(report, "ndcg", ks=[11])
    with pytest.raises(ValueError):
        curve(report, "nonsense")

    summary = report.summary()
    assert summary["ndcg@5"] == report.means["ndcg@5"] and "coverage@10" in summary
    assert summary["n_users"] == len(report.users) and len(report.to_frame()) == 1
    assert report.per_user_frame().shape[0] == len(report.users)

    oracle = evaluate(Oracle(truth).fit(train), train, test, k=[5, 10], bootstrap=0)
    result = compare_reports(oracle, report, "ndcg@10")
    assert result["mean_diff"] == pytest.approx(1.0 - report.means["ndcg@10"])
    assert result["sentence"].startswith("Oracle is better than Hashed on NDCG@10")


def test_refuses_unfitted_models_and_empty_evaluations():
    train, test = make_split()
    with pytest.raises(RuntimeError):
        evaluate(Hashed(), train, test)
    with pytest.raises(DataError):
        evaluate(Hashed().fit(train), train, test, users=[6, 7])
    with pytest.raises(ValueError):
        evaluate(Hashed().fit(train), train, test, k=[0])


# ---------------------------------------------------------------------- the sampled protocol
def test_sampled_candidates_are_the_positives_plus_n_unseen_items_drawn_uniformly():
    from recsys.evaluation.evaluator import NegativeCandidates

    train, test = make_split(seed=3)
    users = np.arange(6)
    seen, positives = train.seen[users], test.positives[users]
    sampler = NegativeCandidates(5, np.random.default_rng(0))
    counts = np.zeros((6, N_ITEMS))
    for _ in range(2000):
        mask = sampler.mask(seen, positives)
        assert not (mask & (seen.toarray() != 0)).any(), "a training item became a candidate"
        assert (mask[positives.toarray() != 0]).all(), "every test positive is a candidate"
        negatives = mask & (positives.toarray() == 0)
        np.testing.assert_array_equal(negatives.sum(axis=1), 5)
        counts += negatives
    free = (seen.toarray() == 0) & (positives.toarray() == 0)
    share = counts[free] / 2000
    expected = np.repeat(5 / free.sum(axis=1), free.sum(axis=1))
    np.testing.assert_allclose(share, expected, atol=0.05)  # each free item is drawn equally often


def test_sampling_every_free_item_equals_full_ranking():
    train, test = make_split(seed=4)
    model = Hashed().fit(train)
    full = evaluate(model, train, test, k=[5, 10], bootstrap=0)
    everything = evaluate(model, train, test, k=[5, 10], bootstrap=0, sampled_negatives=N_ITEMS)
    for name, values in full.per_user.items():
        np.testing.assert_allclose(everything.per_user[name], values, err_msg=name)
    assert full.extra == {} and everything.extra == {"sampled_negatives": N_ITEMS}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_accuracy_is_never_below_full_ranking_accuracy(seed):
    # a positive's rank among a subset of the unseen items can only go up
    train, test = make_split(seed=seed)
    model = Hashed().fit(train)
    full = evaluate(model, train, test, k=[3, 5], bootstrap=0)
    sampled = evaluate(model, train, test, k=[3, 5], bootstrap=0, sampled_negatives=4, seed=seed)
    for name in ("hit@3", "recall@5", "ndcg@5", "mrr@5"):
        assert (sampled.per_user[name] >= full.per_user[name] - 1e-12).all(), name
    assert sampled.means["hit@3"] > full.means["hit@3"]
    again = evaluate(model, train, test, k=[3, 5], bootstrap=0, sampled_negatives=4, seed=seed)
    np.testing.assert_array_equal(again.per_user["ndcg@5"], sampled.per_user["ndcg@5"])


def test_sampled_reports_raise_the_caveat_and_bad_sizes_are_refused():
    from recsys.evaluation.caveats import sampled_metrics

    train, test = make_split(seed=5)
    model = Hashed().fit(train)
    sampled = evaluate(model, train, test, k=10, bootstrap=0, sampled_negatives=3)
    full = evaluate(model, train, test, k=10, bootstrap=0)
    assert sampled_metrics({"full": full}) is None
    assert sampled_metrics({"full": full, "Hashed, 3 sampled": sampled}).startswith("Hashed, 3 sampled was scored")
    with pytest.raises(ValueError, match="positive number of items"):
        evaluate(model, train, test, k=10, bootstrap=0, sampled_negatives=0)


def test_a_stored_report_from_before_f1_and_graded_ndcg_loads_and_leaves_them_blank(tmp_path):
    """Reports written without the f1 / ndcg_graded columns still load; the Compare table shows them blank."""
    from recsys.evaluation import tradeoffs
    from recsys.evaluation.report_io import load_report, save_report

    train, test = make_split(seed=3)
    new = evaluate(Oracle(test.csr).fit(train), train, test, k=[5], bootstrap=20)
    old = evaluate(Worst(test.csr).fit(train), train, test, k=[5], bootstrap=20)
    for name in ("f1@5", "ndcg_graded@5"):
        del old.per_user[name], old.means[name], old.ci[name]
    save_report(old, tmp_path)
    loaded = load_report(tmp_path)
    assert "f1@5" not in loaded.means and loaded.means["ndcg@5"] == old.means["ndcg@5"]

    table = tradeoffs.metrics_table({"new": new, "old": loaded}, 5)
    assert table.loc[0, "f1@5"] == pytest.approx(new.means["f1@5"]) and table.loc[0, "ndcg_graded@5"] == 1.0
    assert np.isnan(table.loc[1, "f1@5"]) and np.isnan(table.loc[1, "ndcg_graded@5"])
    assert tradeoffs.best_per_column(table)["f1@5"] == [0]
    # the curve recomputes both from the stored lists, so the old report still draws them
    assert curve(loaded, "f1", [5])["value"].item() == pytest.approx(0.0)
    assert curve(loaded, "ndcg_graded", [5])["value"].item() == pytest.approx(0.0)
