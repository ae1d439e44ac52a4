"""The scale harness: synthetic logs of a given size, one child process per measurement, budgets that
skip with a reason, growth exponents, and the report written from the rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys import scale
from recsys.scale import Budget, Row


def _pairs(folder, file):
    table = pq.read_table(folder / file)
    return table.column("user").to_numpy(), table.column("item").to_numpy()


@pytest.fixture(scope="module")
def log_20k(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale") / "synthetic-20000"
    return folder, scale.write_synthetic(folder, 20_000, seed=3)


def test_synthetic_log_has_the_asked_size_and_shape(log_20k):
    folder, meta = log_20k
    shape = scale.log_shape(20_000)
    assert (meta["users"], meta["items"]) == (shape.users, shape.items) == (400, 283)
    # a 283-item catalogue caps heavy users at half of it, so a small log falls a little short (at 1M: 0.04 %)
    assert 0.9 * 20_000 <= meta["interactions"] <= 20_000
    train_user, train_item = _pairs(folder, "train.parquet")
    test_user, test_item = _pairs(folder, "test.parquet")
    assert (len(train_user), len(test_user)) == (meta["train"], meta["test"])
    user = np.r_[train_user, test_user].astype(np.int64)
    item = np.r_[train_item, test_item].astype(np.int64)
    assert item.min() >= 0 and item.max() < meta["items"] and user.max() < meta["users"]
    assert len(np.unique(user * meta["items"] + item)) == len(user)  # no repeated (user, item) pair
    # the benchmarks' split: ceil(0.2 n) of each user's n rows held out
    n = np.bincount(user, minlength=meta["users"])
    held = np.bincount(test_user, minlength=meta["users"])
    assert np.array_equal(held, np.minimum(np.ceil(0.2 * n - 1e-9), n - 1).astype(int))
    assert n.min() >= scale.MIN_ACTIVITY


def test_synthetic_log_is_seeded_and_has_taste_and_popularity(log_20k, tmp_path):
    folder, meta = log_20k
    again = scale.write_synthetic(tmp_path / "again", 20_000, seed=3)
    assert again == meta
    assert np.array_equal(_pairs(folder, "train.parquet")[1], _pairs(tmp_path / "again", "train.parquet")[1])
    _, item = _pairs(folder, "train.parquet")
    popularity = np.sort(np.bincount(item, minlength=meta["items"]))[::-1]
    # a long tail: the top tenth of the catalogue holds well over a tenth of the log (28 % of this small
    # one, 47 % at 1M interactions, ML-100K's top tenth about 40 %)
    assert popularity[: meta["items"] // 10].sum() > 0.25 * popularity.sum()


def test_sizes_read_and_print():
    assert scale.parse_size("10M") == 10_000_000
    assert scale.parse_size("250k") == 250_000
    assert scale.parse_size("3000") == 3000
    assert [scale.human(n) for n in (1_000_000, 250_000, 50_000_000, 2_500_000)] == ["1M", "250k", "50M", "2.5M"]


def test_growth_exponent_recovers_a_known_power_law():
    sizes = np.array([1e5, 1e6, 1e7, 5e7])
    exponent, coefficient = scale.growth_exponent(sizes, 3e-6 * sizes ** 1.3)
    assert exponent == pytest.approx(1.3, abs=1e-9)
    assert coefficient == pytest.approx(3e-6, rel=1e-6)
    with pytest.raises(ValueError):
        scale.growth_exponent([1e6], [2.0])


def _row(model, n, fit_s, status="ok", **kw):
    shape = scale.log_shape(n)
    defaults = dict(dataset=f"synthetic {scale.human(n)}", kind="synthetic", interactions=n, size=n,
                    train_interactions=int(0.8 * n), users=shape.users, items=shape.items, model=model,
                    status=status, fit_s=fit_s, fit_cpu_s=fit_s, eval_s=1.0, ndcg_10=0.2, eval_users=100,
                    peak_mb=100.0 * (n / 1e6) ** 0.5 + 300, loaded_mb=250.0)
    defaults.update(kw)
    return Row(**defaults)


def test_projection_is_linear_from_one_size_and_follows_the_last_two():
    assert scale.projected_seconds([_row("m", 1_000_000, 10.0)], 10_000_000) == pytest.approx(100.0)
    two = [_row("m", 1_000_000, 10.0), _row("m", 4_000_000, 80.0)]  # exponent 1.5
    assert scale.projected_seconds(two, 16_000_000) == pytest.approx(640.0)
    wild = [_row("m", 1_000_000, 1.0), _row("m", 2_000_000, 1000.0)]  # exponent ~10, held at 3
    assert scale.projected_seconds(wild, 4_000_000) == pytest.approx(1000.0 * 8)
    assert scale.projected_seconds([], 1_000_000) is None


def test_skip_reasons_name_the_budget_that_stopped_a_fit():
    meta = {"interactions": 10_000_000, "users": 200_000, "items": 6325, "train": 8_000_000}
    budget = Budget(memory_gb=0.5, time_cap_s=60.0, run_minutes=30.0)
    # EASE's dense item x item matrices: 24 bytes a pair, far above half a gigabyte at 6,325 items
    assert "memory budget" in scale.skip_reason("ease", meta, [], budget, {})
    done = [_row("item_knn", 1_000_000, 10.0)]
    roomy = Budget(memory_gb=100.0, time_cap_s=60.0)
    assert scale.skip_reason("item_knn", meta, done, roomy, {}) == "projected fit 100 s > 60 s cap"
    failed = [_row("item_knn", 1_000_000, None, status="timeout", reason="stopped after 300 s")]
    assert scale.skip_reason("item_knn", meta, failed, roomy, {}).startswith("did not finish at 1M")
    assert "budget was spent" in scale.skip_reason("item_knn", meta, [], roomy, {}, spent_s=31 * 60)
    assert scale.skip_reason("item_knn", meta, [], roomy, {}) == ""


def test_measure_runs_children_records_fields_and_skips_with_reasons(tmp_path):
    budget = Budget(memory_gb=8.0, time_cap_s=1e-6, run_minutes=30.0, eval_users=50)
    lines = []
    rows = scale.measure([20_000, 50_000], ["item_knn", "no_such_model"], tmp_path, budget, quality=(),
                         log=lines.append, seed=1)
    by = {(r.interactions < 30_000, r.model): r for r in rows}
    first = by[(True, "item_knn")]
    assert first.status == "ok" and first.reason == "" and first.size == 20_000 < 1.2 * first.interactions
    assert first.fit_s > 0 and first.fit_cpu_s >= 0 and first.eval_s > 0
    assert 0 < first.ndcg_10 <= 1 and first.eval_users == 50
    assert first.peak_mb >= first.loaded_mb > 0 and first.child_cpu_s > 0
    assert first.jvm_peak_mb is None and first.params["k"] == 200
    # the smaller size measured a fit time; the cap is tiny, so the larger one is projected over it
    second = by[(False, "item_knn")]
    assert second.status == "skipped" and second.reason.startswith("projected fit") and second.fit_s is None
    assert all(by[(small, "no_such_model")].reason == "no model 'no_such_model' is registered"
               for small in (True, False))
    assert len(rows) == 4 and any("synthetic 20k" in line for line in lines)
    # the logs stay for the next run: the same folder is read, not regenerated
    assert (tmp_path / "synthetic-20000" / "meta.json").is_file()


def test_a_failing_child_reports_its_error(tmp_path):
    task = {"folder": str(tmp_path / "absent"), "model": "pop", "params": {}, "eval_users": 10}
    result, why, _ = scale.run_child(task, timeout_s=120)
    assert result is None and "meta.json" in why


def test_exponents_and_largest_sizes_from_rows():
    rows = [_row("a", n, 2e-6 * n) for n in (1_000_000, 10_000_000, 50_000_000)]
    rows += [_row("b", n, 1e-9 * n ** 1.5) for n in (1_000_000, 10_000_000)]
    rows += [_row("b", 50_000_000, None, status="skipped", reason="projected fit 999 s > 300 s cap")]
    fits = scale.exponents(rows)
    assert fits["a"]["time_exponent"] == pytest.approx(1.0)
    assert fits["b"]["time_exponent"] == pytest.approx(1.5)
    assert fits["a"]["largest"] == 50_000_000 and fits["b"]["largest_name"] == "synthetic 10M"
    assert fits["a"]["memory_exponent"] is not None and fits["a"]["cpu_exponent"] == pytest.approx(1.0)
    later = scale.exponents(rows, min_size=10_000_000)
    assert later["b"]["time_exponent"] is None and later["b"]["all_sizes_exponent"] == pytest.approx(1.5)


def test_report_shows_rows_exponents_the_end_to_end_row_and_the_projection(tmp_path):
    rows = [_row("ials", n, 2e-5 * n) for n in (1_000_000, 10_000_000)]
    rows += [_row("spark_als", n, 30 + 1e-5 * n, jvm_peak_mb=2048.0, peak_mb=420.0)
             for n in (1_000_000, 10_000_000)]
    rows += [_row("pop", 10_000_000, 0.01, ndcg_10=0.15)]
    rows += [_row("ease", 50_000_000, None, status="skipped", reason="estimated 40.0 GB > 12 GB memory budget")]
    meta = {"machine": {"machine": "x86_64", "cpu_cores": 2, "memory_gb": 23.5, "python": "3.11"},
            "budget": {"memory_gb": 12.0, "time_cap_s": 300.0, "run_minutes": 30.0, "eval_users": 10_000},
            "seed": 42, "load_average": [5.0, 7.0]}
    text = scale.report_markdown(rows, meta)
    assert "| synthetic 10M | `spark_als` | 130.0 |" in text
    assert "estimated 40.0 GB > 12 GB memory budget" in text
    assert "| `ials` | 1.00 | 1.00 |" in text
    assert "under load" in text or "shared with other work" in text
    assert "yes: 420 MB under 1024 MB" in text
    # NDCG by log and model (ials, spark_als, pop, ease); ease was skipped on the only log it has a row for
    assert "| synthetic 10M | 0.2000 | 0.2000 | 0.1500 | – |" in text
    assert "| synthetic 50M | – | – | – | – |" in text
    assert "`pop`" not in "".join(scale.exponent_table(rows, 1_000_000))  # a baseline has no growth to fit
    # CPU seconds 40 at 1M and 130 at 10M: 30 s fixed + 10 s per million interactions; at 1B the
    # 10,000 s that grow spread over 64 x 8 cores at half efficiency, the fixed 30 s not
    projection = scale.cluster_projection(rows)
    big = [p for p in projection if p["interactions"] == 1_000_000_000 and p["executors"] == 64][0]
    assert big["fit_minutes"] == pytest.approx((30 + 10_000 / (64 * 8 * 0.5)) / 60)
    assert big["cpu_hours"] == pytest.approx(10_030 / 3600)
    # both Spark runs peaked at 2048 MB: no bytes per interaction, a 2 GB fixed part per executor
    assert big["executor_gb"] == pytest.approx(2.0)
    assert "30 CPU seconds fixed + 10.0 per million interactions" in text
    assert math.isclose(scale.exponents(rows)["spark_als"]["time_exponent"], math.log(130 / 40) / math.log(10))
    target = scale.write_report(rows, meta, tmp_path)
    assert target.read_text() == text
    assert (tmp_path / "scale_time.png").read_bytes()[:4] == b"\x89PNG"


def test_rows_merge_by_dataset_and_model(tmp_path):
    path = tmp_path / "scale.json"
    scale.save([_row("ials", 1_000_000, 1.0), _row("ease", 1_000_000, 2.0)], path, {"seed": 1})
    merged = scale.save([_row("ials", 1_000_000, 5.0)], path, {"seed": 2}, merge=True)
    assert sorted((r.model, r.fit_s) for r in merged) == [("ease", 2.0), ("ials", 5.0)]
    rows, meta = scale.load_rows(path)
    assert len(rows) == 2 and meta["seed"] == 2 and json.loads(path.read_text())["rows"]
    # rows stored before the requested size was recorded read it from the log's name
    older = {k: v for k, v in json.loads(path.read_text())["rows"][0].items() if k != "size"}
    assert scale.row_from_dict(older).size == 1_000_000


def test_the_spark_benchmark_row_is_measured_whatever_its_projected_time():
    meta = {"interactions": 10_000_000, "users": 200_000, "items": 6325, "train": 8_000_000}
    budget = Budget(memory_gb=100.0, time_cap_s=60.0)
    slow = [_row("spark_als", 1_000_000, 120.0)]
    assert budget.is_required("spark_als", 10_000_000) and not budget.is_required("ials", 10_000_000)
    assert scale.skip_reason("spark_als", meta, slow, budget, {}, spent_s=3600) == ""
    assert scale.skip_reason("ials", meta, [_row("ials", 1_000_000, 120.0)], budget, {}).startswith("projected")


def test_a_later_run_projects_from_the_rows_an_earlier_run_stored(tmp_path):
    budget = Budget(memory_gb=8.0, time_cap_s=1.0, eval_users=50)
    earlier = (_row("item_knn", 1_000, 0.5),)  # 0.5 s at 1k interactions: linear from there
    rows = scale.measure([20_000], ["item_knn"], tmp_path, budget, quality=(), log=lambda _: None, earlier=earlier)
    expected = 0.5 * rows[0].interactions / 1_000
    assert rows[0].status == "skipped" and rows[0].reason == f"projected fit {expected:.0f} s > 1 s cap"


def test_jvm_memory_splits_into_a_fixed_part_and_bytes_per_interaction():
    rows = [_row("spark_als", 1_000_000, 100.0, jvm_peak_mb=1500.0),
            _row("spark_als", 10_000_000, 500.0, jvm_peak_mb=2700.0)]
    fixed, per_row = scale._jvm_memory_model(rows)
    assert per_row == pytest.approx(1200 * 2**20 / 7_200_000)
    assert fixed + per_row * 8_000_000 / 2**20 == pytest.approx(2700.0)
