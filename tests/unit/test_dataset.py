"""Dataset construction (id maps, duplicates, validation) and the split functions' guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import split
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError


def frame(rows, columns=("user", "item", "rating", "ts")):
    return pd.DataFrame(rows, columns=list(columns))


def random_log(n_users=120, n_items=80, seed=0) -> Dataset:
    """Users with 3..40 distinct items each, random ratings and timestamps (with ties)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        count = int(rng.integers(3, 41))
        for i in rng.choice(n_items, size=count, replace=False):
            rows.append((f"u{u:03d}", int(i) * 10, float(rng.integers(1, 6)), int(rng.integers(0, 500))))
    return Dataset.from_frame(frame(rows), timestamp="ts", name="log")


def pair_keys(ds: Dataset) -> np.ndarray:
    return ds.user.astype(np.int64) * ds.n_items + ds.item


# ---------------------------------------------------------------- id maps
def test_string_ids_round_trip_through_codes():
    ds = Dataset.from_frame(frame([("bob", "x", 4, 1), ("alice", "y", 3, 2), ("carol", "x", 5, 3)]))
    assert list(ds.user_ids) == ["alice", "bob", "carol"]  # codes follow sorted ids
    assert list(ds.item_ids) == ["x", "y"]
    codes = ds.user_codes(["carol", "alice", "nobody"])
    assert codes.tolist() == [2, 0, -1]
    assert ds.user_ids[codes[:2]].tolist() == ["carol", "alice"]
    assert ds.item_codes(["y", "zzz"]).tolist() == [1, -1]
    # each interaction's codes map back to the ids it was built from
    assert ds.user_ids[ds.user].tolist() == ["bob", "alice", "carol"]
    assert ds.item_ids[ds.item].tolist() == ["x", "y", "x"]


def test_integer_ids_accept_strings_and_unknowns():
    ds = Dataset.from_frame(frame([(7, 100, 4, 1), (3, 200, 3, 2), ("7", "200", 5, 3)]))
    assert ds.user_ids.tolist() == [3, 7]  # "7" and 7 are one user
    assert ds.user_codes(["7", 3, 99, "abc"]).tolist() == [1, 0, -1, -1]
    assert ds.item_codes([200, 100, 300]).tolist() == [1, 0, -1]


@pytest.mark.parametrize("key_type", [int, str, float])
def test_catalogue_only_items_get_codes_and_metadata(key_type):
    meta = pd.DataFrame({"item": [key_type(i) for i in (1, 2, 3, 4)], "title": ["A", "B", "C", "D"],
                         "genres": [("Drama",), ("Comedy",), (), ("Drama", "War")]})
    ds = Dataset.from_frame(frame([(1, 1, 5, 0), (2, 2, 3, 0), (2, 1, 4, 0)]), items=meta)
    assert ds.item_ids.tolist() == [1, 2, 3, 4]
    assert ds.item_popularity.tolist() == [2, 1, 0, 0]
    assert ds.item_titles().tolist() == ["A", "B", "C", "D"]
    assert ds.item_genres()[3] == ("Drama", "War")
    assert ds.csr.shape == (2, 4)


def test_interactions_without_metadata_get_fallback_titles():
    meta = pd.DataFrame({"item": [1], "title": ["Known"], "genres": [("Drama",)]})
    ds = Dataset.from_frame(frame([(1, 1, 5, 0), (2, 9, 3, 0)]), items=meta)
    assert ds.item_titles().tolist() == ["Known", "9"]
    assert ds.item_genres() == [("Drama",), ()]


# ---------------------------------------------------------------- duplicates
DUPES = [("u", "a", 1.0, 300), ("u", "a", 5.0, 100), ("u", "a", 3.0, 200), ("v", "a", 2.0, 0), ("v", "b", 4.0, 0)]


@pytest.mark.parametrize(
    ("policy", "expected"), [("last", 1.0), ("first", 5.0), ("mean", 3.0), ("max", 5.0), ("sum", 9.0)]
)
def test_duplicate_policies(policy, expected):
    ds = Dataset.from_frame(frame(DUPES), timestamp="ts", duplicates=policy)
    assert ds.n_interactions == 3
    pair = (ds.user == ds.user_codes(["u"])[0]) & (ds.item == ds.item_codes(["a"])[0])
    assert ds.rating[pair].tolist() == [expected]


def test_last_means_latest_timestamp_not_file_order():
    ds = Dataset.from_frame(frame(DUPES), timestamp="ts", duplicates="last")
    pair = (ds.user == 0) & (ds.item == 0)
    assert ds.timestamp[pair].tolist() == [300]


def test_duplicate_policy_error_names_the_row_and_pair():
    with pytest.raises(DataError, match=r"Row 1 repeats the pair user='u', item='a'"):
        Dataset.from_frame(frame(DUPES), timestamp="ts", duplicates="error")


# ---------------------------------------------------------------- feedback and values
def test_feedback_is_inferred():
    explicit = Dataset.from_frame(frame([(1, 1, 5, 0), (2, 2, 3, 0)]))
    constant = Dataset.from_frame(frame([(1, 1, 1, 0), (2, 2, 1, 0)]))
    no_rating = Dataset.from_frame(frame([(1, 1), (2, 2)], ("user", "item")))
    assert (explicit.feedback, constant.feedback, no_rating.feedback) == ("explicit", "implicit", "implicit")
    assert no_rating.rating.tolist() == [1.0, 1.0]


def test_with_feedback_sets_positives():
    ds = Dataset.from_frame(frame([(1, 1, 5, 0), (1, 2, 2, 0), (2, 2, 4, 0)])).with_feedback("explicit", 4.0)
    assert ds.positive_mask.tolist() == [True, False, True]
    assert ds.positives.sum() == 2
    assert ds.seen.sum() == 3


def test_iso_dates_and_milliseconds_become_epoch_seconds():
    iso = Dataset.from_frame(frame([(1, 1, 5, "1970-01-02"), (2, 2, 3, "1970-01-01T00:01:00Z")]), timestamp="ts")
    assert iso.timestamp.tolist() == [86400, 60]
    ms = Dataset.from_frame(frame([(1, 1, 5, 1_600_000_000_000), (2, 2, 3, 1_600_000_001_000)]), timestamp="ts")
    assert ms.timestamp.tolist() == [1_600_000_000, 1_600_000_001]


def test_csr_holds_ratings_and_fingerprint_tracks_content():
    rows = [("a", "x", 4, 0), ("a", "y", 2, 0), ("b", "y", 5, 0)]
    ds = Dataset.from_frame(frame(rows))
    assert ds.csr.toarray().tolist() == [[4.0, 2.0], [0.0, 5.0]]
    assert Dataset.from_frame(frame(rows)).fingerprint == ds.fingerprint
    changed = Dataset.from_frame(frame([*rows[:2], ("b", "y", 4, 0)]))
    assert changed.fingerprint != ds.fingerprint


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("rows", "kwargs", "words"),
    [
        ([(1, 1, 5, 0), (2, 2, 3, 0)], {"user": "customer"}, ["customer", "columns are"]),
        ([(1, 1, 5, 0), (None, 2, 3, 0), (2, 2, 3, 0)], {}, ["'user'", "row 2"]),
        ([(1, 1, 5, 0), (2, None, 3, 0), (2, 1, 3, 0)], {}, ["'item'", "row 2"]),
        ([(1, 1, 5, 0), (2, 2, 3, 0), (2, 1, "five", 0)], {}, ["'rating'", "row 3", "'five'"]),
        ([(1, 1, 5, 0), (2, 2, None, 0), (2, 1, 3, 0)], {}, ["'rating'", "empty in row 2"]),
        ([(1, 1, 5, 0), (1, 2, 3, 0)], {}, ["single user"]),
        ([(1, 1, 5, 0), (2, 1, 3, 0)], {}, ["single item"]),
        ([(1, 1, 5, "yesterday"), (2, 2, 3, "2020-01-01")], {"timestamp": "ts"}, ["'ts'", "row 1", "yesterday"]),
        ([], {}, ["no rows"]),
    ],
)
def test_bad_frames_raise_data_errors_that_say_where(rows, kwargs, words):
    with pytest.raises(DataError) as info:
        Dataset.from_frame(frame(rows), **kwargs)
    for word in words:
        assert word in str(info.value)


def test_duplicate_column_names_are_refused():
    df = pd.DataFrame([[1, 1, 5], [2, 2, 3]], columns=["user", "item", "user"])
    with pytest.raises(DataError, match="duplicate column names"):
        Dataset.from_frame(df)


# ---------------------------------------------------------------- splits
@pytest.fixture(scope="module")
def log() -> Dataset:
    return random_log()


def test_random_holdout_partitions_every_interaction(log):
    train, test = split.random_holdout(log, test_fraction=0.2, seed=7)
    assert np.intersect1d(pair_keys(train), pair_keys(test)).size == 0
    assert np.array_equal(np.sort(np.concatenate([pair_keys(train), pair_keys(test)])), np.sort(pair_keys(log)))
    assert train.n_interactions + test.n_interactions == log.n_interactions


def test_random_holdout_holds_out_about_a_fifth_per_user(log):
    train, test = split.random_holdout(log, test_fraction=0.2, seed=7)
    counts = log.user_activity
    held = np.bincount(test.user, minlength=log.n_users)
    # ceil(0.2 n) held out (the scikit-learn convention), but every user keeps one in train
    np.testing.assert_array_equal(held, np.minimum(np.ceil(0.2 * counts - 1e-9), counts - 1))
    assert np.all(np.bincount(train.user, minlength=log.n_users) >= 1)
    assert abs(test.n_interactions / log.n_interactions - 0.2) < 0.03


def test_split_parts_share_the_id_maps(log):
    train, test = split.random_holdout(log, seed=1)
    for part in (train, test):
        assert part.user_ids is log.user_ids and part.item_ids is log.item_ids
        assert part.csr.shape == log.csr.shape
    # a test user's code means the same person in train
    assert set(log.user_ids[test.user]) <= set(log.user_ids[train.user])


def test_random_holdout_is_reproducible_per_seed(log):
    first = split.random_holdout(log, seed=3)[1]
    again = split.random_holdout(log, seed=3)[1]
    other = split.random_holdout(log, seed=4)[1]
    assert np.array_equal(pair_keys(first), pair_keys(again))
    assert not np.array_equal(np.sort(pair_keys(first)), np.sort(pair_keys(other)))


def test_random_holdout_with_validation_gives_three_disjoint_parts(log):
    train, valid, test = split.random_holdout(log, test_fraction=0.2, seed=0, valid_fraction=0.1)
    parts = [pair_keys(p) for p in (train, valid, test)]
    joined = np.concatenate(parts)
    assert len(np.unique(joined)) == len(joined) == log.n_interactions
    assert valid.n_interactions > 0


def test_leave_last_out_holds_each_users_latest_item():
    rows = [
        ("a", 1, 5, 10), ("a", 2, 4, 30), ("a", 3, 3, 20),   # latest: item 2
        ("b", 5, 5, 50), ("b", 3, 4, 50), ("b", 1, 2, 5),    # tie at 50: the larger item id, 5
        ("c", 1, 4, 99),                                      # one interaction: stays in train
    ]
    ds = Dataset.from_frame(frame(rows), timestamp="ts")
    train, test = split.leave_last_out(ds, n=1)
    held = dict(zip(ds.user_ids[test.user].tolist(), ds.item_ids[test.item].tolist(), strict=True))
    assert held == {"a": 2, "b": 5}
    assert train.n_interactions == 5


def test_leave_last_out_matches_a_brute_force_reference(log):
    train, valid, test = split.leave_last_out(log, n=2, valid=True)
    ts, item, user = log.timestamp, log.item_ids[log.item], log.user
    for u in range(log.n_users):
        idx = np.flatnonzero(user == u)
        order = idx[np.lexsort((item[idx], ts[idx]))]  # by time, ties by item id
        expected_test = set(order[-2:]) if len(idx) > 2 else set()
        expected_valid = set(order[-4:-2]) if len(idx) > 4 else set()
        got_test = set(np.flatnonzero(test.user == u))
        assert {(test.item[i]) for i in got_test} == {log.item[i] for i in expected_test}
        assert {valid.item[i] for i in np.flatnonzero(valid.user == u)} == {log.item[i] for i in expected_valid}
    assert train.n_interactions + valid.n_interactions + test.n_interactions == log.n_interactions


def test_temporal_cutoff_puts_the_future_in_test(log):
    train, test = split.temporal_cutoff(log, test_fraction=0.25)
    assert train.timestamp.max() <= test.timestamp.min()
    assert test.n_interactions == round(0.25 * log.n_interactions)
    train2, valid, test2 = split.temporal_cutoff(log, test_fraction=0.25, valid_fraction=0.2)
    assert train2.timestamp.max() <= valid.timestamp.min() and valid.timestamp.max() <= test2.timestamp.min()


def test_time_based_splits_need_timestamps():
    ds = Dataset.from_frame(frame([(1, 1, 5, 0), (2, 2, 3, 0)]))
    with pytest.raises(DataError, match="needs timestamps"):
        split.temporal_cutoff(ds)
    with pytest.raises(DataError, match="between 0 and 1"):
        split.random_holdout(ds, test_fraction=1.5)


def test_make_split_reports_its_config(log):
    result = split.make_split(log, "random", test_fraction=0.2, seed=5, validation=True)
    assert result.valid is not None and result.method == "random"
    assert result.key() == split.make_split(log, "random", test_fraction=0.2, seed=5, validation=True).key()
    with pytest.raises(DataError, match="Unknown split"):
        split.make_split(log, "bogus")


def test_valid_fraction_sizes_the_validation_part_and_enters_the_id_only_when_it_changes_the_split(log):
    ten, twenty = (split.make_split(log, split.SplitConfig(seed=5, validation=True, valid_fraction=f))
                   for f in (0.1, 0.2))
    assert twenty.valid.n_interactions > ten.valid.n_interactions * 1.5
    assert twenty.test.n_interactions == ten.test.n_interactions  # the test part never moves
    assert ten.key() != twenty.key()
    # the default, or a fraction nothing reads (no validation part; leave-last takes the n before the test items),
    # leaves the dict, and so every stored run's id, as it was before the field existed
    assert split.SplitConfig(validation=True).to_dict() == {**split.SplitConfig().to_dict(), "validation": True}
    assert split.SplitConfig(valid_fraction=0.3) == split.SplitConfig()
    assert "valid_fraction" not in split.SplitConfig(method="leave_last", validation=True,
                                                     valid_fraction=0.3).to_dict()
    config = split.SplitConfig(method="temporal", validation=True, valid_fraction=0.25)
    assert config.to_dict()["valid_fraction"] == 0.25 and split.SplitConfig.from_dict(config.to_dict()) == config
    with pytest.raises(DataError, match="valid_fraction must be between 0 and 1"):
        split.SplitConfig(validation=True, valid_fraction=1.0)


# ---------------------------------------------------------------- ids and timestamps from hostile tables
def test_text_ids_stay_distinct_unless_canonical_integers():
    ds = Dataset.from_frame(frame([("7", "a", 4, 0), ("007", "a", 3, 0), ("7.0", "b", 5, 0), ("+7", "b", 1, 0)]))
    assert sorted(ds.user_ids.tolist()) == ["+7", "007", "7", "7.0"]
    canonical = Dataset.from_frame(frame([("7", "10", 4, 0), (" -12 ", "20", 3, 0), ("0", "10", 5, 0)]))
    assert canonical.user_ids.dtype == np.int64 and canonical.user_ids.tolist() == [-12, 0, 7]
    assert canonical.item_ids.tolist() == [10, 20]


def test_epoch_units_are_told_per_value_and_a_mix_is_refused():
    zero_in_ms = Dataset.from_frame(frame([(1, 1, 5, 0), (2, 2, 3, 1_600_000_001_000)]), timestamp="ts")
    assert zero_in_ms.timestamp.tolist() == [0, 1_600_000_001]  # 0 decides no unit
    micro = Dataset.from_frame(frame([(1, 1, 5, 1_600_000_000_000_000), (2, 2, 3, 1_600_000_002_000_000)]),
                               timestamp="ts")
    assert micro.timestamp.tolist() == [1_600_000_000, 1_600_000_002]
    with pytest.raises(DataError) as info:
        Dataset.from_frame(frame([(1, 1, 5, 978_300_100), (2, 2, 3, 978_300_150_000), (3, 1, 4, 978_300_200)]),
                           timestamp="ts")
    assert "row 1 holds '978300100' (seconds), row 2 holds '978300150000' (milliseconds)" in str(info.value)
    with pytest.raises(DataError, match=r"holds '2e\+30' in row 1: read as epoch nanoseconds, that is outside"):
        Dataset.from_frame(frame([(1, 1, 5, 2e30), (2, 2, 3, 1e30)]), timestamp="ts")


def test_dates_outside_pandas_range_and_datetime_columns():
    with pytest.raises(DataError, match=r"outside 1677-09-22 \.\. 2262-04-11 in row 2: '1500-01-01'"):
        Dataset.from_frame(frame([(1, 1, 5, "1998-03-14"), (2, 2, 3, "1500-01-01")]), timestamp="ts")
    stamps = [pd.Timestamp("1970-01-02"), pd.Timestamp("1970-01-01 00:01:00")]
    ds = Dataset.from_frame(frame([(1, 1, 5, stamps[0]), (2, 2, 3, stamps[1])]), timestamp="ts")
    assert ds.timestamp.tolist() == [86400, 60]
    with pytest.raises(DataError, match="mixes date formats: row 1 holds '1998-03-14', row 2 holds '15.03.1998'"):
        Dataset.from_frame(frame([(1, 1, 5, "1998-03-14"), (2, 2, 3, "15.03.1998")]), timestamp="ts")


def test_ratings_beyond_float32_are_refused():
    with pytest.raises(DataError, match=r"infinite or too large value in row 2"):
        Dataset.from_frame(frame([(1, 1, 5, 0), (2, 2, 1e39, 0)]))


def test_many_distinct_free_form_dates_are_refused_unless_one_format_reads_them(monkeypatch):
    from recsys.data import validate

    monkeypatch.setattr(validate, "MIXED_DATES_MAX", 5)
    free_form = [(u, u % 3, 4, f"March {u + 1} 1999 10:{u:02d}") for u in range(8)]
    with pytest.raises(DataError, match="holds 8 different dates that are not in ISO 8601 form"):
        Dataset.from_frame(frame(free_form), timestamp="ts")
    dotted = [(u, u % 3, 4, f"{u + 1:02d}.03.1999") for u in range(8)]
    ds = Dataset.from_frame(frame(dotted), timestamp="ts")
    assert ds.timestamp.tolist() == [920_246_400 + day * 86_400 for day in range(8)]  # 1999-03-01 ..
    few = [(u, u % 3, 4, f"March {u % 2 + 1} 1999") for u in range(8)]  # 2 distinct values: parsed one by one
    assert sorted(set(Dataset.from_frame(frame(few), timestamp="ts").timestamp.tolist())) == [920_246_400, 920_332_800]
