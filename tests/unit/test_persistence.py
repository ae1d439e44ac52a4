"""Save/load of fitted models and of evaluation reports, over the whole registry.

A model saved and loaded must score exactly as before; artifacts are never pickles, so
a damaged or foreign file fails with a clear message instead of running code.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys.models import create, registry
from recsys.models.base import Recommender
from recsys.models.persist import ARRAYS_FILE, MODULES_FILE, STATE_FILE, ArtifactError, load_model, save_model
from tests.unit.test_model_contract import _block_data

# few epochs: the weights need not be good, only identical after the round trip
FAST = {"epochs": 2}


@pytest.fixture(scope="module")
def blocks():
    return _block_data()


def _fit(key: str, train):
    cls = registry[key]
    overrides = {k: v for k, v in FAST.items() if k in {f for f in cls.Params.__dataclass_fields__}}
    return create(key, **overrides).fit(train)


@pytest.mark.parametrize("key", sorted(registry))
def test_every_registered_model_scores_identically_after_save_and_load(key, blocks, tmp_path):
    train, _ = blocks
    model = _fit(key, train)
    users = np.arange(train.n_users)
    before = model.score(users)
    save_model(model, tmp_path / key)
    assert not list(tmp_path.glob("**/*.part")), "a temporary file was left behind"
    loaded = load_model(tmp_path / key, train)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score(users), before)
    items, _ = loaded.recommend(users[:5], k=3)
    np.testing.assert_array_equal(items, model.recommend(users[:5], k=3)[0])
    # nothing in the artifact needs pickle: the arrays load with allow_pickle=False
    with np.load(tmp_path / key / ARRAYS_FILE, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


class _Composite(Recommender):
    """A stand-in for a hybrid: fitted components kept in a list and a dict, scores blended."""

    key, label, family = "test_composite", "Composite", "hybrid"

    def _fit(self, train, *, valid, progress):
        self.components_ = [create("pop").fit(train), create("ease", reg=10.0).fit(train)]
        self.by_name_ = {"knn": create("item_knn").fit(train)}
        self.weights_ = (np.float32(0.3), 0.7)
        self.table_ = sp.coo_matrix(np.eye(3, dtype=np.float32))
        self.names_ = np.array(["a", "b"], dtype=object)

    def _score(self, users):
        blend = sum(w * m.score(users) for w, m in zip(self.weights_, self.components_))
        return blend + self.by_name_["knn"].score(users)


def test_recommender_valued_attributes_are_saved_recursively(blocks, tmp_path, monkeypatch):
    train, _ = blocks
    monkeypatch.setitem(registry, _Composite.key, _Composite)
    model = _Composite().fit(train)
    save_model(model, tmp_path / "c")
    loaded = load_model(tmp_path / "c", train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert [type(m).key for m in loaded.components_] == ["pop", "ease"]
    assert loaded.components_[1].get_params()["reg"] == 10.0
    assert isinstance(loaded.weights_, tuple) and loaded.weights_[0].dtype == np.float32
    assert loaded.table_.format == "coo" and (loaded.table_.toarray() == np.eye(3)).all()
    assert loaded.names_.tolist() == ["a", "b"]


def test_loading_with_other_training_data_is_refused(blocks, tmp_path):
    train, test = blocks
    save_model(create("pop").fit(train), tmp_path / "m")
    with pytest.raises(ArtifactError, match="same dataset and split"):
        load_model(tmp_path / "m", test)


def test_damaged_and_foreign_files_give_clear_errors(blocks, tmp_path):
    train, _ = blocks
    folder = tmp_path / "m"
    save_model(_fit("bpr_mf", train), folder)
    good_state = (folder / STATE_FILE).read_bytes()

    (folder / STATE_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_model(folder, train)
    (folder / STATE_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ArtifactError, match="does not hold a Recommender Explorer model"):
        load_model(folder, train)
    (folder / STATE_FILE).write_bytes(good_state)

    good_arrays = (folder / ARRAYS_FILE).read_bytes()
    (folder / ARRAYS_FILE).write_bytes(b"garbage" * 10)
    with pytest.raises(ArtifactError, match="not a readable numpy archive"):
        load_model(folder, train)
    # an npz holding a pickled object array is refused, never unpickled
    np.savez(folder / ARRAYS_FILE, a0=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ArtifactError):
        load_model(folder, train)
    (folder / ARRAYS_FILE).write_bytes(good_arrays)

    # a weights file that is a zip but not torch's, and one that pickles an arbitrary object
    with zipfile.ZipFile(folder / MODULES_FILE, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ArtifactError, match="not a readable weights file"):
        load_model(folder, train)
    torch.save({"model.module_": _Composite}, folder / MODULES_FILE)
    with pytest.raises(ArtifactError, match="not a readable weights file"):
        load_model(folder, train)


def test_unknown_model_key_is_refused(blocks, tmp_path):
    train, _ = blocks
    folder = tmp_path / "m"
    save_model(create("pop").fit(train), folder)
    header = json.loads((folder / STATE_FILE).read_text())
    header["model"]["key"] = "no_such_model"
    (folder / STATE_FILE).write_text(json.dumps(header))
    with pytest.raises(ArtifactError, match="'no_such_model' model"):
        load_model(folder, train)


def test_a_model_stored_under_the_old_parameter_names_still_loads(blocks, tmp_path):
    """Artifacts written before the shared names (``factors``, ``lam``) open with the same values."""
    train, _ = blocks
    folder = tmp_path / "m"
    model = create("ials", embedding_size=6, iterations=2).fit(train)
    save_model(model, folder)
    header = json.loads((folder / STATE_FILE).read_text())
    stored = header["model"]["params"]
    stored["factors"] = stored.pop("embedding_size")
    (folder / STATE_FILE).write_text(json.dumps(header))
    loaded = load_model(folder, train)
    assert loaded.params == model.params and loaded.params.embedding_size == 6
    np.testing.assert_array_equal(loaded.score([0, 1]), model.score([0, 1]))


def test_unfitted_model_is_not_saved(tmp_path):
    with pytest.raises(ArtifactError, match="not fitted"):
        save_model(create("pop"), tmp_path / "m")
