"""The store enforces who may change a run: a visitor renames and deletes only their own runs, shared
runs change only for instructors, and nobody lists or finds another visitor's private runs."""

from __future__ import annotations

import pytest

from recsys.store import SHARED, Actor, StoreError, train_or_reuse

SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
UPLOAD = {"kind": "table", "label": "ann.csv"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}
ANN, BOB = Actor("ann"), Actor("bob")
TEACHER = Actor("teacher", instructor=True)


@pytest.fixture
def runs(store, sample):
    """A shared reference run (the sample) and a private run of ann's (her upload)."""
    shared = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    private = train_or_reuse(store, sample, UPLOAD, SPLIT, "pop", owner="ann", load=False).record
    return shared, private


def test_a_visitor_cannot_rename_or_delete_another_visitors_run(store, runs):
    _, private = runs
    with pytest.raises(StoreError, match=f"There is no run {private.run_id} you can see"):
        store.rename(private.run_id, "mine now", actor=BOB)
    with pytest.raises(StoreError, match=f"There is no run {private.run_id} you can see"):
        store.delete(private.run_id, actor=BOB)
    assert store.get(private.run_id).name == "Most popular"
    assert (store.artifacts / private.run_id).is_dir()


def test_a_visitor_cannot_rename_or_delete_a_shared_run(store, runs):
    shared, _ = runs
    for actor in (ANN, BOB):
        with pytest.raises(StoreError, match="Most popular is a shared run: everyone on this server uses it, so only "
                                             "an instructor may rename it. Sign in as instructor on the Runs page"):
            store.rename(shared.run_id, "broken reference", actor=actor)
        with pytest.raises(StoreError, match="only an instructor may delete it"):
            store.delete(shared.run_id, actor=actor)
    record = store.get(shared.run_id)
    assert record.name == "Most popular" and record.status == "done" and (store.artifacts / shared.run_id).is_dir()


def test_the_owner_changes_their_own_run(store, runs):
    _, private = runs
    store.rename(private.run_id, "  my baseline  ", actor=ANN)
    assert store.get(private.run_id).name == "my baseline"
    assert store.delete(private.run_id, actor=ANN)
    assert store.get(private.run_id) is None and not (store.artifacts / private.run_id).exists()


def test_an_instructor_changes_shared_and_private_runs(store, runs):
    shared, private = runs
    store.rename(shared.run_id, "teacher reference", actor=TEACHER)
    assert store.get(shared.run_id).name == "teacher reference" and store.get(shared.run_id).owner == SHARED
    store.rename(private.run_id, "checked", actor=TEACHER)
    assert store.get(private.run_id).name == "checked"
    assert store.delete(shared.run_id, actor=TEACHER) and store.delete(private.run_id, actor=TEACHER)
    assert store.list() == []


def test_an_owner_id_of_shared_grants_nothing(store, runs):
    shared, _ = runs
    with pytest.raises(StoreError, match="only an instructor may delete it"):
        store.delete(shared.run_id, actor=Actor(SHARED))


def test_list_and_find_done_never_return_another_visitors_private_runs(store, sample, runs):
    shared, private = runs
    bobs = train_or_reuse(store, sample, {"kind": "table", "label": "bob.csv"}, SPLIT, "item_knn", owner="bob",
                          load=False).record
    assert [r.run_id for r in store.list(owner="ann")] == [shared.run_id, private.run_id]
    assert [r.run_id for r in store.list(owner="bob")] == [shared.run_id, bobs.run_id]
    assert [r.run_id for r in store.list(owner="carol", status="done")] == [shared.run_id]
    assert store.find_done(private.run_id, "bob") is None and store.find_done(bobs.run_id, "ann") is None
    assert store.find_done(private.run_id, "ann").run_id == private.run_id
    assert store.find_done(shared.run_id, "carol").run_id == shared.run_id
    # the same settings on the same data by two visitors are two runs, never one shared by accident
    annes_knn = train_or_reuse(store, sample, {"kind": "table", "label": "bob.csv"}, SPLIT, "item_knn", owner="ann",
                               load=False)
    assert not annes_knn.reused and annes_knn.record.run_id != bobs.run_id


def test_the_command_line_without_an_actor_is_not_checked(store, runs):
    shared, _ = runs
    store.rename(shared.run_id, "renamed on the server's own shell")
    assert store.get(shared.run_id).name == "renamed on the server's own shell"
