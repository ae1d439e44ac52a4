"""recsys.experiment: one RunSpec, one fit -> evaluate -> store path, the same run id from every door."""

from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import pytest

from recsys import experiment
from recsys.data.errors import DataError
from recsys.data.split import SPLIT_METHODS, SplitConfig, make_split
from recsys.experiment import KeepAs, RunSpec, stopped_run_id
from recsys.models import create, registry
from recsys.models.base import FitCancelled, StopTraining, id_params
from recsys.models.baselines import PopularityModel
from recsys.models.registry import get
from recsys.store import SHARED, ExperimentStore, run_id_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
# the split dict every run stored so far carries (the sidebar's defaults)
OLD_SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}


@pytest.fixture(scope="module")
def split(sample):
    return make_split(sample, SplitConfig())


def _sources() -> dict[str, str]:
    files = [*(REPO_ROOT / "recsys").rglob("*.py"), *(REPO_ROOT / "ui").rglob("*.py"),
             *(REPO_ROOT / "app_pages").rglob("*.py"), REPO_ROOT / "app.py"]
    return {str(path.relative_to(REPO_ROOT)): path.read_text() for path in files}


# ---------------------------------------------------------------------- one path
def test_exactly_one_module_fits_evaluates_and_stores_a_run():
    sources = _sources()
    # a module that imports the evaluator's evaluate and fits a model is a run pipeline
    imports_evaluate = {name for name, text in sources.items()
                        if re.search(r"from recsys\.evaluation(\.evaluator)? import[^\n]*\bevaluate\b", text)}
    fits = {name for name, text in sources.items() if re.search(r"\.fit\(", text)}
    stores = {name for name, text in sources.items() if re.search(r"\.complete\(\s*run_id", text)}
    assert imports_evaluate & fits == {"recsys/experiment.py"}
    assert stores == {"recsys/experiment.py"}
    store_text = sources["recsys/store.py"]
    assert "evaluator" not in store_text and not re.search(r"(?<![\w.])evaluate\(", store_text)


def test_k_values_bootstrap_and_split_names_are_defined_once():
    sources = _sources()
    defines = [name for name, text in sources.items() if re.search(r"^EVAL_K\b[^=\n]*=", text, re.M)]
    assert defines == ["recsys/experiment.py"]
    assert [name for name, text in sources.items() if "(1, 5, 10, 20, 50)" in text] == ["recsys/experiment.py"]
    assert [name for name, text in sources.items() if re.search(r"bootstrap\s*=\s*500", text)] == []
    spelled = set()
    for name, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Tuple, ast.List)) and {getattr(e, "value", None) for e in node.elts} \
                    == set(SPLIT_METHODS):
                spelled.add(name)
    assert spelled == {"recsys/data/split.py"}
    assert experiment.EVAL_K == (1, 5, 10, 20, 50) and experiment.BOOTSTRAP == 500


# ---------------------------------------------------------------------- ids
@pytest.mark.parametrize(("model", "params", "split", "owner"), [
    ("pop", {}, OLD_SPLIT, SHARED),
    ("item_knn", {"k": 50}, OLD_SPLIT, SHARED),
    ("item_knn", {"k": "20"}, {**OLD_SPLIT, "method": "leave_last", "n": 2, "seed": 7}, "alice"),
    ("bpr_mf", {"epochs": 3}, {**OLD_SPLIT, "positives": "threshold", "threshold": 3.5}, "bob"),
])
def test_a_run_spec_keeps_the_run_ids_stored_before_it(sample, model, params, split, owner):
    old_params = create(model, **params).get_params()  # how the pages normalised parameters before
    # hashed under the names of that time (see STORED_BEFORE_RENAMES)
    old = run_id_for(sample.fingerprint, split, model, id_params(get(model).Params, old_params), split["seed"], owner)
    spec = RunSpec.make(sample, SplitConfig.from_dict(split), model, params, owner=owner)
    assert spec.run_id == old and len(old) == 16
    assert spec.params == old_params and spec.seed == split["seed"]
    assert RunSpec.make(sample.fingerprint, split, model, old_params, owner=owner) == spec


# ids of runs stored before the shared hyperparameter names (factors -> embedding_size, lam -> reg)
# and later switches: computed by the code of that time on the sample, random 80/20, seed 42
STORED_BEFORE_RENAMES = [
    ("ease", {}, "fe3117c50a78993b"),
    ("ease", {"lam": 250.0}, "0573c496ac46ca1a"),
    ("ease", {"reg": 250.0}, "0573c496ac46ca1a"),
    ("ials", {"factors": 32}, "676f923cf92682b2"),
    ("ials", {"embedding_size": 32}, "676f923cf92682b2"),
    # bpr_mf is not here: its defaults changed (hard negatives, 15 epochs), so its old default runs train again
    ("sasrec", {"lr": 0.003, "epochs": 30, "layers": 2, "dropout": 0.3}, "5326bdb97d51e590"),  # that time's defaults
    ("autorec", {"epochs": 60, "lr": 0.001}, "7f765f7114e193b3"),  # the defaults of that time
    ("mult_vae", {"epochs": 60, "lr": 0.002, "latent": 200}, "7bbcc295723930b9"),  # the defaults of that time
    ("mf_sgd", {}, "d23b5e39bec2133d"),
    ("neumf", {}, "e17fea728bc41bf4"),
]


@pytest.mark.parametrize(("model", "params", "stored_id"), STORED_BEFORE_RENAMES)
def test_runs_stored_before_the_renames_keep_their_ids(sample, model, params, stored_id):
    spec = RunSpec.make(sample, {"method": "random", "test_fraction": 0.2, "seed": 42}, model, params)
    assert spec.run_id == stored_id


def test_parameters_are_normalised_without_building_a_model(monkeypatch):
    built = []

    class Counted(PopularityModel):
        key = "test_counted_pop"

        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setitem(registry, Counted.key, Counted)
    assert experiment.normalise_params(Counted.key, {"mode": "trending"}) == {"mode": "trending",
                                                                               "half_life_days": 30.0}
    assert built == []
    assert create(Counted.key).get_params() == experiment.normalise_params(Counted.key) and built == [1]
    for key in sorted(registry):
        if key != Counted.key:
            assert experiment.normalise_params(key) == create(key).get_params(), key
    with pytest.raises(DataError, match="Unknown parameter"):
        experiment.normalise_params("pop", {"nonsense": 1})


def test_a_split_config_refuses_an_unknown_method():
    with pytest.raises(DataError, match="Unknown split 'weekly'; choose one of random, temporal, leave_last"):
        SplitConfig(method="weekly")
    with pytest.raises(DataError, match="unknown field"):
        SplitConfig.from_dict({**OLD_SPLIT, "folds": 5})
    assert SplitConfig.from_dict(OLD_SPLIT).to_dict() == OLD_SPLIT


# ---------------------------------------------------------------------- the run
class CountingPop(PopularityModel):
    key = "test_counting_pop"
    fits = 0

    def _fit(self, train, *, valid=None, progress=None):
        type(self).fits += 1
        return super()._fit(train, valid=valid, progress=progress)


class Exploding(PopularityModel):
    key = "test_exploding"

    def _fit(self, train, *, valid=None, progress=None):
        raise RuntimeError("out of memory")


def test_a_stored_run_is_reused_without_fitting(store, sample, monkeypatch):
    monkeypatch.setitem(registry, CountingPop.key, CountingPop)
    monkeypatch.setattr(CountingPop, "fits", 0)
    spec = RunSpec.make(sample, SplitConfig(), CountingPop.key)
    first = experiment.run(spec, sample, store=store, source=SOURCE)
    assert (first.reused, CountingPop.fits, first.record.status) == (False, 1, "done")
    again = experiment.run(spec, sample, store=store, source=SOURCE)
    assert again.reused and CountingPop.fits == 1  # found in the store: no second fit
    assert again.record.created_at == first.record.created_at and again.run_id == first.run_id == spec.run_id
    assert again.report.means["ndcg@10"] == first.report.means["ndcg@10"] == first.record.metrics["ndcg@10"]
    assert again.model is not None and again.model.score([0, 1]).shape == (2, sample.n_items)
    assert list(first.report.k) == list(experiment.EVAL_K) and "ndcg@10 ci" in first.record.metrics
    assert store.dataset_info(sample.fingerprint)["label"] == SOURCE["label"]
    # a half-stored run (its report gone) reads as absent and is trained again
    (store.artifacts / spec.run_id / "report.npz").unlink()
    third = experiment.run(spec, sample, store=store)
    assert not third.reused and CountingPop.fits == 2 and third.record.status == "done"


def test_a_failed_fit_marks_the_run_failed_and_a_cancelled_one_leaves_nothing(store, sample, split, monkeypatch):
    monkeypatch.setitem(registry, Exploding.key, Exploding)
    spec = RunSpec.make(sample, SplitConfig(), Exploding.key)
    with pytest.raises(RuntimeError, match="out of memory"):
        experiment.run(spec, split, store=store)
    failed = store.get(spec.run_id)
    assert (failed.status, failed.error) == ("failed", "RuntimeError: out of memory")
    assert store.find_done(spec.run_id) is None

    def cancel(step, total, metrics):
        raise FitCancelled

    bpr = RunSpec.make(sample, SplitConfig(), "bpr_mf", {"epochs": 2})
    with pytest.raises(FitCancelled):
        experiment.run(bpr, split, store=store, progress=cancel)
    assert store.get(bpr.run_id) is None and not (store.artifacts / bpr.run_id).exists()


def test_a_fit_stopped_on_request_is_kept_under_its_own_id(store, sample, split):
    def stop_after_first(step, total, metrics):
        if metrics and step == 1:
            raise StopTraining

    bpr = RunSpec.make(sample, SplitConfig(), "bpr_mf", {"epochs": 3})
    result = experiment.run(bpr, split, store=store, progress=stop_after_first, reuse=False,
                            keep_stopped=lambda: KeepAs("ann", "BPR-MF (stopped after epoch 1)"))
    assert result.run_id == stopped_run_id(bpr.run_id, "ann") != bpr.run_id
    assert store.get(bpr.run_id) is None  # the canonical id means "trained to the end"
    kept = store.find_done(result.run_id, "ann")
    assert kept.owner == "ann" and kept.name == "BPR-MF (stopped after epoch 1)"
    assert kept.extra["stopped_early"] is True and [h["step"] for h in kept.extra["history"]] == [1]
    assert store.find_done(result.run_id, "bob") is None


def test_a_spec_for_other_data_is_refused(store, sample):
    spec = RunSpec.make("0" * 16, SplitConfig(), "pop")
    with pytest.raises(DataError, match="make the spec from this dataset"):
        experiment.run(spec, sample, store=store)
    assert store.list() == []


# ---------------------------------------------------------------------- every door, one id
def test_the_train_page_and_the_cli_give_one_run_the_same_id(sample, tmp_path, monkeypatch, capsys):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from recsys.__main__ import main

    monkeypatch.setenv("RECSYS_HOME", str(tmp_path / "home"))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        app = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
        app.run()
        app.switch_page("app_pages/train.py").run()
        [button] = [b for b in app.button if b.label == "Train Most popular"]
        button.click().run()
        deadline = time.monotonic() + 120
        while not [s for s in app.success if s.value.startswith("Most popular: NDCG@10")]:
            assert not app.exception and not app.error, [e.value for e in [*app.exception, *app.error]]
            assert time.monotonic() < deadline, "the Train page's training did not finish"
            time.sleep(0.2)
            app.run()
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
    home_store = ExperimentStore(Path(os.environ["RECSYS_HOME"]) / "store")
    [trained] = home_store.list()
    expected = RunSpec.make(sample, SplitConfig(), "pop").run_id
    assert trained.run_id == expected and trained.owner == SHARED and trained.status == "done"

    assert main(["evaluate", "--models", "pop", "--store", str(home_store.root)]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["pop"])
    assert row[1:3] == [expected, "reused"]  # the CLI found the page's run instead of training it again
    assert float(row[4]) == pytest.approx(trained.metrics["ndcg@10"], abs=5e-5)
    assert [r.run_id for r in home_store.list()] == [expected]


def test_the_cli_carves_a_validation_part_and_reports_the_best_epoch(sample, tmp_path, capsys):
    from recsys.__main__ import main

    store = ExperimentStore(tmp_path / "store")
    assert main(["evaluate", "--models", "bpr_mf", "--valid-fraction", "0.15", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    config = SplitConfig(validation=True, valid_fraction=0.15)
    split = make_split(sample, config)
    assert f"{split.train.n_interactions} train / {split.valid.n_interactions} validation /" in out
    [record] = store.list()
    assert record.run_id == RunSpec.make(sample, config, "bpr_mf").run_id  # the Train page's id for that split
    curve = [entry["val_ndcg@10"] for entry in record.extra["history"]]
    assert len(curve) >= 2 and all(value is not None for value in curve)
    header, row = next((lines[i].split(), lines[i + 1].split()) for lines in [out.splitlines()]
                       for i in range(len(lines)) if lines[i].split()[:1] == ["model"])
    values = dict(zip(header, row))
    assert int(values["best_epoch"]) == int(max(range(len(curve)), key=curve.__getitem__)) + 1
    assert float(values["best_val_ndcg@10"]) == pytest.approx(max(curve), abs=5e-5)
    # without the flag there is no validation part and no validation columns
    assert main(["evaluate", "--models", "pop", "--store", str(store.root)]) == 0
    assert "best_epoch" not in capsys.readouterr().out
