"""A run is done only when it is stored: a model that fails to save fails the run, and a done run
whose files are missing or incomplete is trained again instead of being "reused" without a model."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from recsys import store as store_module
from recsys.models import registry
from recsys.models.baselines import PopularityModel
from recsys.store import SHARED, ExperimentStore, StoreError, run_id_for, split_dataset, train_or_reuse

SOURCE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}


@pytest.fixture(scope="module")
def parts(sample):
    return split_dataset(sample, SPLIT)


def _run_id(sample, model_key, params=None):
    from recsys.models import create

    return run_id_for(sample.fingerprint, SPLIT, model_key, create(model_key, **(params or {})).get_params(),
                      SPLIT["seed"], SHARED)


class WithSampler(PopularityModel):
    """Popularity with an attribute no safe format can hold, and no declaration that it cannot be stored."""

    key = "test_with_sampler"

    def _fit(self, train, *, valid, progress):
        super()._fit(train, valid=valid, progress=progress)
        self.helper_ = object()


class DeclaredUnstorable(WithSampler):
    """The same model, declaring that it cannot be stored."""

    key = "test_declared_unstorable"
    label = "Popularity with a sampler"
    storable = False


# ---------------------------------------------------------------------- a save that fails
def test_a_model_that_fails_to_save_fails_the_run_and_a_retrain_replaces_it(store, sample, parts, monkeypatch):
    def reloaded_module_save(model, folder):  # what a module reloaded under a file watcher looks like
        raise TypeError("isinstance() arg 2 must be a type, a tuple of types, or a union")

    monkeypatch.setattr(store_module, "save_model", reloaded_module_save)
    with pytest.raises(StoreError, match="could not be stored, so it is marked failed") as raised:
        train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn", {"k": 20})
    assert "saving the Item-item kNN model failed (TypeError: isinstance() arg 2" in str(raised.value)
    run_id = _run_id(sample, "item_knn", {"k": 20})
    failed = store.get(run_id)
    assert failed.status == "failed" and not failed.has_model
    assert "TypeError: isinstance() arg 2 must be a type" in failed.error
    assert store.find_done(run_id) is None
    assert not (store.artifacts / run_id).exists()  # nothing half-written was installed
    assert list(store.tmp.iterdir()) == []

    monkeypatch.undo()
    retrained = train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn", {"k": 20})
    assert not retrained.reused and retrained.record.run_id == run_id
    assert retrained.record.status == "done" and retrained.record.has_model and retrained.record.error is None
    assert [r.run_id for r in store.list()] == [run_id]  # replaced, not added
    again = train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn", {"k": 20})
    assert again.reused
    users = np.arange(10)
    np.testing.assert_array_equal(again.model.score(users), retrained.model.score(users))


def test_a_model_type_without_a_safe_encoding_fails_with_the_reason(store, sample, monkeypatch):
    monkeypatch.setitem(registry, WithSampler.key, WithSampler)
    with pytest.raises(StoreError, match="helper_ is a object, which has no safe"):
        train_or_reuse(store, sample, SOURCE, SPLIT, WithSampler.key, load=False)
    run = store.get(_run_id(sample, WithSampler.key))
    assert run.status == "failed" and "helper_ is a object, which has no safe (non-pickle) encoding" in run.error
    assert store.find_done(run.run_id) is None


def test_a_declared_unstorable_model_is_done_and_says_so_once(store, sample, parts, monkeypatch):
    monkeypatch.setitem(registry, DeclaredUnstorable.key, DeclaredUnstorable)
    with pytest.warns(UserWarning, match="Popularity with a sampler models are not stored"):
        first = train_or_reuse(store, sample, SOURCE, SPLIT, DeclaredUnstorable.key)
    run = first.record
    assert run.status == "done" and not run.has_model and run.error is None
    assert run.extra["model_not_stored"] == store_module.unstorable_note(DeclaredUnstorable)
    assert "train it again to inspect or serve the model" in run.extra["model_not_stored"]
    assert sorted(p.name for p in (store.artifacts / run.run_id).iterdir()) == ["report.json", "report.npz"]
    assert store.half_stored(run) is None
    again = train_or_reuse(store, sample, SOURCE, SPLIT, DeclaredUnstorable.key)
    assert again.reused and again.model is None
    assert again.report.means["ndcg@10"] == run.metrics["ndcg@10"]
    with pytest.raises(StoreError, match="stored without its model"):
        store.load_model(run.run_id, parts.train)


# ---------------------------------------------------------------------- half-stored runs
def test_a_done_run_whose_files_were_deleted_is_trained_again(store, sample):
    first = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    shutil.rmtree(store.artifacts / first.run_id)
    assert store.get(first.run_id).status == "done"  # the row alone still says done ...
    assert store.half_stored(first) == "its files are missing"
    assert store.find_done(first.run_id) is None  # ... but it is not reused
    again = train_or_reuse(store, sample, SOURCE, SPLIT, "pop")
    assert not again.reused and again.record.has_model and again.model is not None
    assert sorted(p.name for p in (store.artifacts / first.run_id).iterdir()) == [
        "arrays.npz", "model.json", "report.json", "report.npz"]
    assert train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).reused


@pytest.mark.parametrize(("model_key", "params", "removed"), [
    ("pop", {}, "arrays.npz"), ("pop", {}, "model.json"), ("pop", {}, "report.npz"),
    ("bpr_mf", {"epochs": 1}, "modules.pt"),  # the torch weights: only the run's own file list knows them
])
def test_a_done_run_missing_one_file_is_not_reused(store, sample, model_key, params, removed):
    record = train_or_reuse(store, sample, SOURCE, SPLIT, model_key, params, load=False).record
    assert removed in record.extra["stored_files"]
    (store.artifacts / record.run_id / removed).unlink()
    assert store.half_stored(record) == f"{removed} is missing or empty"
    assert store.find_done(record.run_id) is None
    again = train_or_reuse(store, sample, SOURCE, SPLIT, model_key, params)
    assert not again.reused and (store.artifacts / record.run_id / removed).is_file()
    assert again.record.metrics["ndcg@10"] == pytest.approx(record.metrics["ndcg@10"])  # same seed, same model


def test_a_done_run_with_a_damaged_report_is_trained_again(store, sample):
    record = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    (store.artifacts / record.run_id / "report.npz").write_bytes(b"not a numpy archive")
    assert store.find_done(record.run_id) == record  # the files are there; reading them finds the damage
    again = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False)
    assert not again.reused
    assert store.load_report(record.run_id).means["ndcg@10"] == record.metrics["ndcg@10"]


def test_a_done_row_without_the_model_of_a_storable_type_is_trained_again(store, sample):
    """The state the old bug left behind: done, has_model 0, the save error in extra, no model files."""
    record = train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn", load=False).record
    for name in ("model.json", "arrays.npz"):
        (store.artifacts / record.run_id / name).unlink()
    with sqlite3.connect(store.root / store_module.DB_FILE) as db:
        db.execute("UPDATE runs SET has_model = 0, extra = ? WHERE run_id = ?",
                   ('{"model_not_stored": "model.x is a module, which has no safe (non-pickle) encoding."}',
                    record.run_id))
    broken = store.get(record.run_id)
    assert broken.status == "done" and not broken.has_model
    assert store.half_stored(broken) == "its model was not stored, though its model type can be"
    assert store.find_done(record.run_id) is None
    again = train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn")
    assert not again.reused and again.record.has_model and "model_not_stored" not in again.record.extra
    assert store.find_done(record.run_id) == again.record


def test_a_run_imported_without_its_model_keeps_its_evaluation(store, sample, tmp_path):
    """A bundle exported without models is an evaluation by choice, not a half-stored run."""
    record = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    other = ExperimentStore(tmp_path / "other")
    assert other.import_bundle(store.export_bundle([record.run_id]), owner="alice")["imported"] == [record.run_id]
    imported = other.find_done(record.run_id, "alice")
    assert imported is not None and not imported.has_model and imported.metrics == record.metrics
    assert other.half_stored(imported, trained_here=False) is None
    assert other.load_report(record.run_id).means["ndcg@10"] == record.metrics["ndcg@10"]
