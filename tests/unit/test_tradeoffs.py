"""Trade-off numbers checked against brute-force loops, hand-worked cases and scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from recsys.data import Dataset, load
from recsys.data.split import make_split
from recsys.evaluation import bootstrap_ci, evaluate, paired_test, tradeoffs
from recsys.evaluation.caveats import caveats, tiny_test_set, wide_intervals
from recsys.models import create


@pytest.fixture(scope="module")
def sample_runs():
    """Popularity and item kNN evaluated on the bundled sample's default split."""
    split = make_split(load("sample"), "random", test_fraction=0.2, seed=42)
    reports = {key: evaluate(create(key).fit(split.train), split.train, split.test, k=[5, 10], bootstrap=200)
               for key in ("pop", "item_knn")}
    return split, reports


# ---------------------------------------------------------------------- Pareto front
def brute_front(x, y, x_higher, y_higher) -> np.ndarray:
    sx, sy = (1 if x_higher else -1), (1 if y_higher else -1)
    out = []
    for i in range(len(x)):
        if np.isnan(x[i]) or np.isnan(y[i]):
            out.append(False)
            continue
        dominated = False
        for j in range(len(x)):
            if j == i or np.isnan(x[j]) or np.isnan(y[j]):
                continue
            at_least = sx * x[j] >= sx * x[i] and sy * y[j] >= sy * y[i]
            strictly = sx * x[j] > sx * x[i] or sy * y[j] > sy * y[i]
            dominated |= at_least and strictly
        out.append(not dominated)
    return np.array(out)


@pytest.mark.parametrize("x_higher,y_higher", list(itertools.product([True, False], repeat=2)))
def test_pareto_front_matches_brute_force_with_ties_and_nans(x_higher, y_higher):
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 12))
        x = rng.integers(0, 4, n).astype(float)  # few distinct values: many ties and duplicates
        y = rng.integers(0, 4, n).astype(float)
        x[rng.random(n) < 0.1] = np.nan
        got = tradeoffs.pareto_front(x, y, x_higher=x_higher, y_higher=y_higher)
        assert np.array_equal(got, brute_front(x, y, x_higher, y_higher)), (x, y)


def test_pareto_front_hand_worked_case():
    # accuracy up, popularity (ARP) down: B dominates A; C trades accuracy for less popularity bias
    accuracy = [0.30, 0.35, 0.20, 0.35]
    arp = [500.0, 400.0, 100.0, 400.0]
    front = tradeoffs.pareto_front(accuracy, arp, x_higher=True, y_higher=False)
    assert front.tolist() == [False, True, True, True]  # B and its duplicate D both stay


def test_pareto_frame_uses_each_metrics_direction(sample_runs):
    _, reports = sample_runs
    table = tradeoffs.metrics_table(reports, 10)
    frame = tradeoffs.pareto_frame(table, "ndcg@10", "arp@10")
    expected = brute_front(table["ndcg@10"].to_numpy(), table["arp@10"].to_numpy(), True, False)
    assert dict(zip(frame["run"], frame["on_front"])) == dict(zip(table["run"], expected))
    with pytest.raises(ValueError, match="'nope@10' is not a column"):
        tradeoffs.pareto_frame(table, "ndcg@10", "nope@10")


# ---------------------------------------------------------------------- metrics table
def test_metrics_table_copies_the_reports_and_marks_the_best(sample_runs):
    _, reports = sample_runs
    table = tradeoffs.metrics_table(reports, 10, {"pop": 0.5, "item_knn": 2.0})
    for _, row in table.iterrows():
        report = reports[row["run"]]
        for metric in ("ndcg", "recall", "precision", "map", "mrr", "hit", "novelty", "arp", "ild"):
            assert row[f"{metric}@10"] == report.means[f"{metric}@10"]
            assert (row[f"{metric}@10 low"], row[f"{metric}@10 high"]) == report.ci[f"{metric}@10"]
        assert row["coverage@10"] == report.list_level["coverage@10"]
        assert row["users"] == report.n_users
    knn = table[table["run"] == "item_knn"].iloc[0]
    assert knn["rmse"] == reports["item_knn"].rmse
    low, high = reports["item_knn"].ci["squared_error"]
    assert (knn["rmse low"], knn["rmse high"]) == (np.sqrt(low), np.sqrt(high))
    assert np.isnan(table[table["run"] == "pop"].iloc[0]["rmse"])  # ranking-only model: no rating error

    best = tradeoffs.best_per_column(table)
    runs = list(table["run"])
    for column, rows in best.items():
        values = table[column].to_numpy(dtype=float)
        target = np.nanmax(values) if tradeoffs.direction(column) > 0 else np.nanmin(values)
        assert [runs[i] for i in rows] == [r for r, v in zip(runs, values) if v == target]
    assert [runs[i] for i in best["fit_seconds"]] == ["pop"]  # less time is better
    assert [runs[i] for i in best["gini@10"]] == ["item_knn"]  # more even exposure is better
    with pytest.raises(ValueError, match="K = 7 was not evaluated"):
        tradeoffs.metrics_table(reports, 7)
    with pytest.raises(ValueError, match="No known direction"):
        tradeoffs.direction("loudness@10")


# ---------------------------------------------------------------------- user segments
def test_segments_match_a_brute_force_loop(sample_runs):
    split, reports = sample_runs
    frame = tradeoffs.segment_metrics(reports, split.train, "ndcg@10", n_boot=300, seed=3)
    # training counts by walking the interaction log, not through user_activity
    counts = {}
    for user in split.train.user.tolist():
        counts[user] = counts.get(user, 0) + 1
    first = reports["pop"]
    evaluated = [counts[u] for u in first.users.tolist()]
    low_cut, high_cut = (int(np.floor(np.quantile(evaluated, q))) for q in (1 / 3, 2 / 3))
    for name, report in reports.items():
        groups = {"new": [], "casual": [], "heavy": []}
        for user, value in zip(report.users.tolist(), report.per_user["ndcg@10"].tolist()):
            c = counts[user]
            groups["new" if c <= low_cut else "casual" if c <= high_cut else "heavy"].append((c, value))
        got = frame[frame["run"] == name].set_index("segment")
        assert list(got.index) == [s for s in ("new", "casual", "heavy") if groups[s]]
        for segment, members in groups.items():
            values = [v for _, v in members]
            row = got.loc[segment]
            assert row["users"] == len(members)
            assert row["mean"] == pytest.approx(sum(values) / len(values), rel=1e-12)
            assert (row["low_count"], row["high_count"]) == (min(c for c, _ in members), max(c for c, _ in members))
            assert (row["low"], row["high"]) == bootstrap_ci(np.array(values), n_boot=300, seed=3)
            assert row["low"] <= row["mean"] <= row["high"]
    # heavier users get better lists from item kNN on this catalogue (more history to go on)
    knn = frame[frame["run"] == "item_knn"].set_index("segment")["mean"]
    assert knn["new"] < knn["casual"] < knn["heavy"]


def test_segment_cut_points_on_a_hand_worked_case():
    activity = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert tradeoffs.activity_cut_points(activity) == (3, 6)
    assert tradeoffs.user_segments(activity, (3, 6)).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert tradeoffs.segment_label(1, (3, 6)) == "casual (4–6)"
    # everybody tied: one threshold, no casual users rather than an arbitrary split
    tied = np.full(10, 20)
    cuts = tradeoffs.activity_cut_points(tied)
    assert cuts == (20, 20) and set(tradeoffs.user_segments(tied, cuts).tolist()) == {0}


# ---------------------------------------------------------------------- popularity buckets
def test_popularity_buckets_hand_worked():
    # 10 interactions: item 0 has 5 (head: starts at 0%), item 1 has 3 (starts at 50%: mid),
    # item 2 has 1 (starts at 80%: tail), item 3 has 1 (90%: tail), item 4 has 0 (tail)
    buckets = tradeoffs.popularity_buckets(np.array([5, 3, 1, 1, 0]))
    assert buckets.tolist() == [0, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="head_share < mid_share"):
        tradeoffs.popularity_buckets(np.array([1, 2]), head_share=0.8, mid_share=0.5)


def test_popularity_buckets_match_a_brute_force_walk():
    rng = np.random.default_rng(1)
    pop = rng.zipf(1.6, 300).clip(max=500) * (rng.random(300) < 0.9)
    got = tradeoffs.popularity_buckets(pop, 0.5, 0.8)
    order = sorted(range(len(pop)), key=lambda i: (-pop[i], i))
    total, running, expected = pop.sum(), 0, {}
    for i in order:
        share_before = running / total
        expected[i] = 0 if share_before < 0.5 else 1 if share_before < 0.8 else 2
        running += pop[i]
    assert got.tolist() == [expected[i] for i in range(len(pop))]


def test_bucket_exposure_hand_worked():
    train_pairs = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y"), ("c", "x"), ("c", "z")]
    test_pairs = [("a", "w"), ("b", "v"), ("c", "y")]
    frame = pd.DataFrame(train_pairs + test_pairs, columns=["user", "item"])
    ds = Dataset.from_frame(frame, rating=None, name="hand")
    is_test = np.arange(len(frame)) >= len(train_pairs)
    train, test = ds.subset(~is_test), ds.subset(is_test)
    code = {name: i for i, name in enumerate(ds.item_ids.tolist())}
    # training popularity x 3, y 2, z 1 (total 6): x starts at 0% (head), y at 50% (mid), z at 83% (tail);
    # w and v were never consumed in training (tail)
    buckets = tradeoffs.popularity_buckets(train.item_popularity)
    assert [int(buckets[code[n]]) for n in "xyzwv"] == [0, 1, 2, 2, 2]
    report = evaluate(create("pop").fit(train), train, test, k=[2], bootstrap=0)
    # popularity's top-2 unseen: a and b get z then a never-consumed item (tail, tail); c gets y (mid), then tail
    got = tradeoffs.bucket_exposure({"pop": report}, train, test, 2).set_index("bucket")
    assert got["recommended_share"].to_dict() == pytest.approx({"head": 0.0, "mid": 1 / 6, "tail": 5 / 6})
    # consumed in test: a w (tail), b v (tail), c y (mid)
    assert got["consumed_share"].to_dict() == pytest.approx({"head": 0.0, "mid": 1 / 3, "tail": 2 / 3})
    assert got["items"].to_dict() == {"head": 1, "mid": 1, "tail": 3}
    assert got["item_share"].to_dict() == pytest.approx({"head": 0.2, "mid": 0.2, "tail": 0.6})


def test_bucket_exposure_matches_a_brute_force_count(sample_runs):
    split, reports = sample_runs
    frame = tradeoffs.bucket_exposure(reports, split.train, split.test, 5)
    buckets = tradeoffs.popularity_buckets(split.train.item_popularity)
    for name, report in reports.items():
        shown = [0, 0, 0]
        for row in report.recommended[:, :5].tolist():
            for item in row:
                if item >= 0:
                    shown[buckets[item]] += 1
        consumed = [0, 0, 0]
        evaluated = set(report.users.tolist())
        positive = split.test.positive_mask
        for user, item, ok in zip(split.test.user.tolist(), split.test.item.tolist(), positive.tolist()):
            if ok and user in evaluated:
                consumed[buckets[item]] += 1
        got = frame[frame["run"] == name]
        assert np.allclose(got["recommended_share"], np.array(shown) / sum(shown), atol=1e-12)
        assert np.allclose(got["consumed_share"], np.array(consumed) / sum(consumed), atol=1e-12)
    pop = frame[frame["run"] == "pop"].set_index("bucket")
    assert pop.loc["head", "recommended_share"] == 1.0  # popularity only ever shows the head


# ---------------------------------------------------------------------- per-user tables and distributions
def test_per_user_table_and_box_numbers(sample_runs):
    split, reports = sample_runs
    table = tradeoffs.per_user_metrics(reports, split.train, 10)
    assert len(table) == sum(r.n_users for r in reports.values())
    knn = table[table["run"] == "item_knn"]
    report = reports["item_knn"]
    assert np.array_equal(knn["ndcg@10"], report.per_user["ndcg@10"])
    assert list(knn["user"]) == list(split.train.user_ids[report.users])
    assert np.array_equal(knn["training_items"], split.train.user_activity[report.users])
    boxes = tradeoffs.distribution_summary(table, "ndcg@10").set_index("run")
    v = report.per_user["ndcg@10"]
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    inside = [x for x in v if q1 - 1.5 * (q3 - q1) <= x <= q3 + 1.5 * (q3 - q1)]
    row = boxes.loc["item_knn"]
    assert (row["q1"], row["median"], row["q3"]) == pytest.approx((q1, med, q3))
    assert (row["whisker_low"], row["whisker_high"]) == (min(inside), max(inside))
    assert row["zero_share"] == pytest.approx(np.mean(v == 0))


# ---------------------------------------------------------------------- intervals and paired tests vs scipy
def test_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(11)
    values = rng.exponential(0.3, 400)  # skewed, like per-user NDCG
    ours = bootstrap_ci(values, n_boot=20000, seed=5)
    theirs = sps.bootstrap((values,), np.mean, n_resamples=20000, method="percentile", confidence_level=0.95,
                           random_state=np.random.default_rng(6)).confidence_interval
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.03 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.03 * width)
    # the percentile interval of the mean of n values is close to mean ± 1.96 sd / sqrt(n)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    assert ours[1] - ours[0] == pytest.approx(2 * half, rel=0.06)


def test_paired_test_agrees_with_scipy():
    rng = np.random.default_rng(2)
    a = rng.random(300)
    b = a - 0.05 + rng.normal(0, 0.2, 300)
    result = paired_test(a, b, metric="NDCG@10", names=("A", "B"))
    assert result["t_pvalue"] == pytest.approx(sps.ttest_rel(a, b).pvalue, rel=1e-10)
    assert result["wilcoxon_pvalue"] == pytest.approx(sps.wilcoxon(a - b).pvalue, rel=1e-10)
    diff = a - b
    assert result["cohens_d"] == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-12)
    assert result["sentence"].startswith("A is better than B on NDCG@10 by")
    # hand-worked: differences 1, 2, 3 -> mean 2, sd 1, t = 2 / (1 / sqrt 3), d = 2
    known = paired_test(np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert known["cohens_d"] == pytest.approx(2.0)
    assert known["t_pvalue"] == pytest.approx(2 * sps.t.sf(2 * np.sqrt(3), df=2))


# ---------------------------------------------------------------------- caveats
def test_caveats_speak_up_only_when_they_apply(sample_runs):
    split, reports = sample_runs
    texts = caveats(split, reports)
    assert any("random split of data that has timestamps" in t for t in texts)
    assert tiny_test_set(split, reports) is None  # 2,500 users and ~26,000 test interactions
    assert wide_intervals(reports, "ndcg@10") is None
    temporal = make_split(load("sample"), "temporal", test_fraction=0.2)
    assert not any("random split" in t for t in caveats(temporal, reports))

    # a tiny test set: 30 evaluated users
    few = {name: evaluate(create(name).fit(split.train), split.train, split.test, k=[10], bootstrap=200,
                          users=np.arange(30)) for name in ("pop",)}
    message = tiny_test_set(split, few)
    assert message is not None and message.startswith("Only 30 users are evaluated")
    assert wide_intervals(few, "ndcg@10") is not None  # 30 users: the interval spans more than a quarter of the mean


def test_sampled_metrics_and_file_order_caveats():
    from dataclasses import replace

    from recsys.evaluation.caveats import order_without_timestamps, sampled_metrics, skipped_users

    split = make_split(load("sample"), "random", test_fraction=0.2, seed=42)
    report = evaluate(create("pop").fit(split.train), split.train, split.test, k=[10], bootstrap=0)
    assert sampled_metrics({"pop": report}) is None
    sampled = replace(report, extra={"sampled_negatives": 100})
    message = sampled_metrics({"pop": report, "pop sampled": sampled})
    assert message.startswith("pop sampled was scored against a sample of unseen items")
    assert skipped_users({"pop": replace(report, n_skipped_users=12)}).startswith("12 test users have no training")

    # leave-last-out on data without timestamps falls back to file order, and says so
    frame = pd.DataFrame({"user": np.repeat(np.arange(30), 6), "item": np.tile(np.arange(6), 30)})
    frame["item"] = (frame["item"] + frame["user"]) % 12
    untimed = Dataset.from_frame(frame, rating=None, name="untimed")
    leave_last = make_split(untimed, "leave_last", n=1)
    assert "row order" in order_without_timestamps(leave_last)
    assert order_without_timestamps(split) is None


def test_metrics_records_are_plain_json_with_the_reports_numbers(sample_runs):
    import json
    from dataclasses import replace

    _, reports = sample_runs
    specs = {"pop": {"run_id": "abc", "model": "pop", "params": {}, "dataset": "sample", "split": ("random", 0.2)}}
    broken = replace(reports["item_knn"], means={**reports["item_knn"].means, "odd@10": float("nan")})
    records = tradeoffs.metrics_records({"pop": reports["pop"], "item_knn": broken}, specs, {"pop": np.float64(0.5)})
    loaded = json.loads(json.dumps(records, allow_nan=False))  # no NaN sneaks into the file
    assert loaded[0]["run_id"] == "abc" and loaded[0]["split"] == ["random", 0.2]
    assert loaded[0]["fit_seconds"] == 0.5 and loaded[1]["fit_seconds"] is None
    assert loaded[0]["means"]["ndcg@10"] == reports["pop"].means["ndcg@10"]
    assert loaded[1]["ci95"]["ndcg@10"] == list(reports["item_knn"].ci["ndcg@10"])
    assert loaded[1]["means"]["odd@10"] is None
    assert loaded[1]["rmse"] == reports["item_knn"].rmse and loaded[0]["rmse"] is None
