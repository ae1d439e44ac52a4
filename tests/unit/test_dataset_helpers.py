"""Dataset helpers every page, model and serving module shares: items by popularity, histories in time order."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.data.dataset import head_mask, popularity_order, self_information
from recsys.evaluation import beyond


def _frame(with_time: bool = True) -> Dataset:
    # user a: items z (t=5), x (t=1), y (t=5) -> x, then the t=5 tie in item-code order
    # user b: items y (t=3), w (t=2)
    df = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": ["z", "x", "y", "y", "w"],
                       "rating": [4.0, 5.0, 3.0, 2.0, 1.0], "ts": [5, 1, 5, 3, 2]})
    return Dataset.from_frame(df if with_time else df.drop(columns="ts"), timestamp="ts" if with_time else None)


def test_items_by_popularity_most_consumed_first_ties_by_item_code():
    ds = _frame()
    codes = ds.item_codes(["w", "x", "y", "z"])
    assert ds.item_popularity[codes].tolist() == [1, 1, 2, 1]
    # y twice, then the three single items in item-code order
    assert ds.items_by_popularity().tolist() == [codes[2], *sorted(codes[[0, 1, 3]])]
    # a copy: a caller that sorts it in place does not change the next caller's answer
    ds.items_by_popularity()[:] = 0
    assert ds.items_by_popularity()[0] == codes[2]


def test_popularity_order_matches_a_stable_descending_sort_and_the_head():
    pop = np.array([3, 7, 3, 0, 7, 1])
    assert popularity_order(pop).tolist() == [1, 4, 0, 2, 5, 3]
    assert popularity_order(pop).tolist() == np.argsort(-pop, kind="stable").tolist()
    assert head_mask(pop, 0.5).tolist() == [True, True, False, False, True, False]
    assert beyond.head_items is head_mask and beyond.self_information is self_information
    np.testing.assert_allclose(self_information(np.array([4, 1, 0]), 8), [1.0, 3.0, 3.0])


def test_histories_in_time_order_break_timestamp_ties_by_item_code():
    ds = _frame()
    histories = ds.histories_in_time_order()
    a, b = ds.user_codes(["a", "b"])
    titles = ds.item_ids
    assert titles[histories.of(a)].tolist() == ["x", "y", "z"]
    assert titles[histories.of(b)].tolist() == ["w", "y"]
    # order lines every interaction column up with the sorted items
    assert ds.rating[histories.order][histories.span(a)].tolist() == [5.0, 3.0, 4.0]
    assert np.array_equal(histories.users, np.sort(ds.user))
    assert np.array_equal(histories.items, ds.item[histories.order])


def test_without_timestamps_the_file_order_is_the_time_order():
    ds = _frame(with_time=False)
    a = ds.user_codes(["a"])[0]
    assert ds.item_ids[ds.histories_in_time_order().of(a)].tolist() == ["z", "x", "y"]


def test_helpers_survive_a_pickle_and_a_subset_rebuilds_them():
    ds = _frame()
    before = ds.histories_in_time_order()
    ds.items_by_popularity()
    restored = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(restored.histories_in_time_order().items, before.items)
    smaller = ds.subset(ds.user == ds.user_codes(["b"])[0])
    assert smaller.histories_in_time_order().items.tolist() == before.of(ds.user_codes(["b"])[0]).tolist()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequential_models_read_the_same_order(seed):
    from recsys.models.sequential import time_ordered

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user": rng.integers(0, 6, 60), "item": rng.integers(0, 9, 60),
                       "rating": np.ones(60), "ts": rng.integers(0, 5, 60)})
    ds = Dataset.from_frame(df.drop_duplicates(["user", "item"]), timestamp="ts")
    users, items = time_ordered(ds)
    order = np.lexsort((ds.item, ds.timestamp, ds.user))
    assert np.array_equal(users, ds.user[order]) and np.array_equal(items, ds.item[order])
