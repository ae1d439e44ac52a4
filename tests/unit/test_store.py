"""The experiment store: runs survive a restart, reuse, scopes, damage and bundles."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recsys import store as store_module
from recsys.data import load
from recsys.evaluation import evaluate
from recsys.evaluation.evaluator import Report
from recsys.store import SHARED, ExperimentStore, StoreError, owner_scope, run_id_for, split_dataset, train_or_reuse

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}


@pytest.fixture(scope="module")
def parts(sample):
    return split_dataset(sample, SPLIT)


def _assert_same_report(a, b) -> None:
    """Every field of the Report dataclass equal (a field added later is compared too)."""
    for field in dataclasses.fields(Report):
        left, right = getattr(a, field.name), getattr(b, field.name)
        if isinstance(left, np.ndarray):
            assert left.dtype == right.dtype, field.name
            np.testing.assert_array_equal(left, right, err_msg=field.name)
        elif field.name == "per_user":
            assert list(left) == list(right)
            for name in left:
                np.testing.assert_array_equal(left[name], right[name], err_msg=name)
        else:
            assert left == right, field.name


# ---------------------------------------------------------------------- round trip and reuse
def test_a_run_round_trips_and_is_reused_after_a_restart(store, sample, parts):
    first = train_or_reuse(store, sample, SOURCE, SPLIT, "item_knn", {"k": 50})
    assert not first.reused and first.record.status == "done" and first.record.has_model
    # the report stored is the report a direct evaluation gives (rmse/mae included: explicit data)
    assert first.record.metrics["ndcg@10"] == pytest.approx(first.report.means["ndcg@10"])
    assert first.record.metrics["ndcg@10 ci"] == list(first.report.ci["ndcg@10"])
    assert first.record.run_id == run_id_for(sample.fingerprint, SPLIT, "item_knn",
                                             first.model.get_params(), 42)
    assert first.record.timings["fit_seconds"] > 0

    restarted = ExperimentStore(store.root)  # a new process would open the folder the same way
    again = train_or_reuse(restarted, sample, SOURCE, SPLIT, "item_knn", {"k": 50})
    assert again.reused and again.record.run_id == first.record.run_id
    _assert_same_report(again.report, first.report)
    users = np.arange(0, sample.n_users, 7)
    np.testing.assert_array_equal(again.model.score(users), first.model.score(users))
    # the reloaded model evaluates to the same numbers on the re-made split
    assert evaluate(again.model, parts.train, parts.test, k=[10], bootstrap=0).means["ndcg@10"] == pytest.approx(
        first.report.means["ndcg@10"])
    # other parameters are another run
    other = train_or_reuse(restarted, sample, SOURCE, SPLIT, "item_knn", {"k": 20}, load=False)
    assert not other.reused and other.record.run_id != first.record.run_id
    assert [r.run_id for r in restarted.list()] == [first.record.run_id, other.record.run_id]
    assert store.dataset_info(sample.fingerprint)["card"]["n_interactions"] == sample.n_interactions


def test_rating_report_round_trips_rmse_and_mae(store, sample, parts):
    from recsys.evaluation.report_io import load_report, save_report

    model = __import__("recsys.models", fromlist=["create"]).create("mf_sgd", epochs=2).fit(parts.train)
    report = evaluate(model, parts.train, parts.test, k=[5, 10], bootstrap=50)
    assert report.rmse is not None and "squared_error" in report.per_user
    folder = store.root / "r"
    folder.mkdir()
    save_report(report, folder)
    _assert_same_report(load_report(folder), report)


def test_rename_and_delete(store, sample):
    run = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    store.rename(run.run_id, "  baseline  ")
    assert store.get(run.run_id).name == "baseline"
    with pytest.raises(StoreError, match="cannot be empty"):
        store.rename(run.run_id, "   ")
    with pytest.raises(StoreError, match="no run 0000000000000000"):
        store.rename("0000000000000000", "x")
    assert (store.artifacts / run.run_id).is_dir()
    assert store.delete(run.run_id)
    assert store.get(run.run_id) is None and not (store.artifacts / run.run_id).exists()
    assert not store.delete(run.run_id)
    assert not any(store.tmp.iterdir())


# ---------------------------------------------------------------------- owner scopes
def test_uploads_are_private_and_server_data_is_shared(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    assert owner_scope({"kind": "sample"}, "alice", uploads) == SHARED
    assert owner_scope({"kind": "path", "path": "/data/ml-100k"}, "alice", uploads) == SHARED
    assert owner_scope({"kind": "path", "path": str(uploads / "abc.zip")}, "alice", uploads) == "alice"
    assert owner_scope({"kind": "table", "path": str(uploads / "abc.csv")}, "alice", uploads) == "alice"


def test_a_private_run_is_invisible_to_other_sessions(store, sample):
    upload = {"kind": "table", "label": "my.csv"}
    mine = train_or_reuse(store, sample, upload, SPLIT, "pop", owner="alice", load=False).record
    shared = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    assert mine.owner == "alice" and shared.owner == SHARED and mine.run_id != shared.run_id
    assert {r.run_id for r in store.list(owner="alice")} == {mine.run_id, shared.run_id}
    assert [r.run_id for r in store.list(owner="bob")] == [shared.run_id]
    assert store.find_done(mine.run_id, "bob") is None and store.find_done(mine.run_id, "alice") == mine
    # bob uploading the same file trains his own run rather than seeing alice's
    bobs = train_or_reuse(store, sample, upload, SPLIT, "pop", owner="bob", load=False)
    assert not bobs.reused and bobs.record.run_id not in (mine.run_id, shared.run_id)


# ---------------------------------------------------------------------- atomicity, interruption
def test_a_run_left_running_by_a_dead_process_reads_interrupted(store, sample):
    script = (
        "import sys; from recsys.store import ExperimentStore\n"
        "s = ExperimentStore(sys.argv[1])\n"
        "s.begin(run_id='abcdef0123456789', owner='shared', model='pop', label='Most popular', params={},"
        " dataset='fp', split={'seed': 1})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store.root)], check=True, cwd=REPO_ROOT,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    record = store.get("abcdef0123456789")
    assert record.status == "interrupted"
    assert [r.run_id for r in store.list(status="interrupted")] == ["abcdef0123456789"]
    # a run this process is training reads as running until it completes or fails
    store.begin(run_id="1111111111111111", owner=SHARED, model="pop", label="Most popular", params={},
                dataset="fp", split={"seed": 1})
    assert store.get("1111111111111111").status == "running"
    store.fail("1111111111111111", "boom")
    assert (store.get("1111111111111111").status, store.get("1111111111111111").error) == ("failed", "boom")


def test_a_failed_write_marks_the_run_failed_and_leaves_no_files(store, sample, monkeypatch):
    def broken(report, folder):
        (folder / "report.json").write_text("{")  # half a file, then the disk "fills up"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "save_report", broken)
    with pytest.raises(StoreError, match="No space left on device"):
        train_or_reuse(store, sample, SOURCE, SPLIT, "pop")
    [record] = store.list()
    assert record.status == "failed" and "No space left" in record.error
    assert not any(store.artifacts.iterdir()) and not any(store.tmp.iterdir())
    monkeypatch.undo()
    retried = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False)  # a failed run is retrained
    assert not retried.reused and retried.record.status == "done" and retried.record.error is None


# ---------------------------------------------------------------------- damage
def test_corrupt_and_foreign_artifacts_give_clear_errors(store, sample, parts):
    run = train_or_reuse(store, sample, SOURCE, SPLIT, "bpr_mf", {"epochs": 1}, load=False).record
    folder = store.artifacts / run.run_id
    (folder / "modules.pt").write_bytes(b"\x00garbage")
    with pytest.raises(StoreError, match=r"model of run .* cannot be loaded: modules.pt .* not a readable weights "
                                         r"file.*Delete the run"):
        store.load_model(run.run_id, parts.train)
    (folder / "model.json").write_text(json.dumps({"format": "someone-elses-model"}))
    with pytest.raises(StoreError, match="does not hold a Recommender Explorer model artifact"):
        store.load_model(run.run_id, parts.train)
    (folder / "report.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(StoreError, match="evaluation of run .* cannot be read"):
        store.load_report(run.run_id)
    # the store itself is still consistent: listing works, and the damaged run can be deleted and retrained
    assert [r.status for r in store.list()] == ["done"]
    store.delete(run.run_id)
    again = train_or_reuse(store, sample, SOURCE, SPLIT, "bpr_mf", {"epochs": 1})
    assert not again.reused and again.model is not None


def test_an_unwritable_store_folder_is_refused_with_a_fix(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot be written.*Set RECSYS_HOME"):
        ExperimentStore(blocker / "store")
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(StoreError, match="cannot be written"):
            ExperimentStore(locked / "store")


def test_a_schema_mismatched_or_foreign_database_is_refused_and_left_alone(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    db = sqlite3.connect(root / "store.sqlite")
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); "
                     "INSERT INTO meta VALUES ('schema_version', '99');")
    db.commit()
    db.close()
    before = (root / "store.sqlite").read_bytes()
    with pytest.raises(StoreError, match="schema version 99.*move the folder away"):
        ExperimentStore(root)
    assert (root / "store.sqlite").read_bytes() == before

    other = tmp_path / "other"
    other.mkdir()
    (other / "store.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not an experiment store database"):
        ExperimentStore(other)


# ---------------------------------------------------------------------- bundles
def test_bundle_export_and_import_round_trip(store, sample, parts, tmp_path):
    pop = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    bpr = train_or_reuse(store, sample, SOURCE, SPLIT, "bpr_mf", {"epochs": 1}).record
    store.rename(bpr.run_id, "my BPR")
    payload = store.export_bundle([pop.run_id, bpr.run_id], include_models=True)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["schema_version"] == 1 and [r["name"] for r in manifest["runs"]] == ["Most popular", "my BPR"]
    assert manifest["datasets"][sample.fingerprint]["card"]["n_users"] == sample.n_users

    other = ExperimentStore(tmp_path / "other")
    outcome = other.import_bundle(payload, owner="carol")
    assert outcome == {"imported": [pop.run_id, bpr.run_id], "skipped": []}
    imported = {r.run_id: r for r in other.list(owner="carol")}
    assert imported[bpr.run_id].name == "my BPR" and imported[bpr.run_id].owner == "carol"
    assert imported[bpr.run_id].metrics == store.get(bpr.run_id).metrics
    assert other.list(owner="dave") == []  # imported runs belong to whoever imported them
    _assert_same_report(other.load_report(bpr.run_id), store.load_report(bpr.run_id))
    users = np.arange(50)
    np.testing.assert_array_equal(other.load_model(bpr.run_id, parts.train).score(users),
                                  store.load_model(bpr.run_id, parts.train).score(users))
    assert other.import_bundle(payload, owner="carol") == {"imported": [], "skipped": [pop.run_id, bpr.run_id]}

    without_models = ExperimentStore(tmp_path / "third")
    without_models.import_bundle(store.export_bundle([bpr.run_id]), owner="erin")
    with pytest.raises(StoreError, match="without its model"):
        without_models.load_model(bpr.run_id, parts.train)


def _rezip(payload: bytes, change) -> bytes:
    """The bundle with its manifest changed by ``change`` (or a member dropped / replaced)."""
    src = zipfile.ZipFile(io.BytesIO(payload))
    members = {name: src.read(name) for name in src.namelist()}
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _edit_manifest(edit):
    def change(members):
        manifest = json.loads(members["manifest.json"])
        edit(manifest)
        members["manifest.json"] = json.dumps(manifest)
    return change


def _drop_report(members):
    del members[next(n for n in members if n.endswith("report.npz"))]


def _garble_report(members):
    members[next(n for n in members if n.endswith("report.npz"))] = b"junk"


def _drop_manifest(members):
    del members["manifest.json"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: b"definitely not a zip", "not a zip archive"),
    (lambda p: _rezip(p, _drop_manifest), "no manifest.json"),
    (lambda p: _rezip(p, _edit_manifest(lambda m: m.update(schema_version=7))), "schema version 7"),
    (lambda p: _rezip(p, _edit_manifest(lambda m: m.update(format="zip of cats"))), "wrong 'format'"),
    (lambda p: _rezip(p, _edit_manifest(lambda m: m["runs"][1].pop("params"))), "lacks 'params'"),
    (lambda p: _rezip(p, _edit_manifest(lambda m: m["runs"][1].update(run_id="../../etc"))), "not a run id"),
    (lambda p: _rezip(p, _drop_report), "lacks \\['report.npz'\\]"),
    (lambda p: _rezip(p, _garble_report), "damaged"),
])
def test_a_bad_bundle_is_refused_and_the_store_is_unchanged(store, sample, tmp_path, damage, message):
    ids = [train_or_reuse(store, sample, SOURCE, SPLIT, key, load=False).record.run_id for key in ("pop", "random")]
    payload = store.export_bundle(ids)
    target = ExperimentStore(tmp_path / "target")
    kept = train_or_reuse(target, sample, SOURCE, SPLIT, "pop", {"weighting": "count"} if False else {},
                          load=False).record
    with pytest.raises(StoreError, match=message):
        target.import_bundle(damage(payload), owner="x")
    assert [r.run_id for r in target.list()] == [kept.run_id]
    assert sorted(p.name for p in target.artifacts.iterdir()) == [kept.run_id]
    assert not any(target.tmp.iterdir())


# ---------------------------------------------------------------------- bench figure and command line
def test_bench_store_figure_reuses_the_stored_ease_run(data_dir):
    from recsys import bench

    figure = bench.store_reuse(data_dir / "ml-100k")
    assert figure["dataset"] == "MovieLens 100K" and figure["model"] == "ease"
    assert figure["ndcg_10_reused"] == figure["ndcg_10"] and 0.40 < figure["ndcg_10"] < 0.50
    assert figure["train_seconds"] > 0 and figure["reuse_seconds"] > 0
    table = bench.store_markdown(figure)
    assert f"| `ease` | {figure['train_seconds']:.3f} | {figure['reuse_seconds']:.3f} |" in table


def test_command_line_lists_shows_and_deletes_runs(store, sample, capsys):
    from recsys.__main__ import main

    run = train_or_reuse(store, sample, SOURCE, SPLIT, "pop", load=False).record
    assert main(["runs", "list", "--store", str(store.root)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["run_id", "name", "model"]
    assert listed[1].startswith(run.run_id) and "random 20% · seed 42" in listed[1]
    assert f"{run.metrics['ndcg@10']:.4f}" in listed[1] and " done " in listed[1]

    assert main(["runs", "show", run.run_id, "--store", str(store.root)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"] == run.metrics and shown["dataset_info"]["card"]["n_users"] == sample.n_users

    assert main(["runs", "delete", run.run_id, "--store", str(store.root)]) == 0
    assert capsys.readouterr().out == f"deleted run {run.run_id} (Most popular)\n"
    assert store.list() == []
    assert main(["runs", "delete", run.run_id, "--store", str(store.root)]) == 2
    assert f"There is no run {run.run_id}" in capsys.readouterr().err


def test_shared_source_opens_server_files_and_the_sample_but_never_uploads(store, sample, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    on_disk = tmp_path / "ratings.csv"
    on_disk.write_text("user,item\n1,2\n")
    uploaded = uploads / "abc.csv"
    uploaded.write_text("user,item\n1,2\n")
    server = {"kind": "path", "path": str(on_disk), "label": "ratings.csv"}
    store.register_dataset(sample, server, "ratings.csv")
    assert store.shared_source("ratings.csv", uploads) == server
    assert store.shared_source("nothing by this name", uploads) is None

    private = {"kind": "path", "path": str(uploaded), "label": "mine.csv"}
    table = {"kind": "table", "path": str(on_disk), "label": "mapped.csv (upload)"}
    other = load("sample").subset(np.arange(10), "tiny")  # another fingerprint per registration
    store.register_dataset(other, private, "mine.csv")
    store.register_dataset(other.subset(np.arange(5), "tinier"), table, "mapped.csv (upload)")
    assert store.shared_source("mine.csv", uploads) is None
    assert store.shared_source("mapped.csv (upload)", uploads) is None

    on_disk.unlink()  # a file that is gone cannot be opened: no descriptor rather than a failing load
    assert store.shared_source("ratings.csv", uploads) is None


# ---------------------------------------------------------------------- what a run's id depends on
KEY_SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "threshold",
             "threshold": 4.0, "validation": False, "valid_fraction": 0.1}
KEY_ARGS = {"fingerprint": "f" * 16, "split": KEY_SPLIT, "model": "item_knn", "params": {"k": 50}, "seed": 42,
            "owner": "alice"}


def _changed(value, choices=None):
    """A different value of the same type (another choice where the field has choices)."""
    if isinstance(value, bool):
        return not value
    if choices:
        return next(choice for choice in choices if choice != value)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, tuple):
        return value + value[-1:] if value else (1,)
    raise AssertionError(f"no variation for {value!r}")


SPLIT_VARIANTS = {"method": "leave_last", "test_fraction": 0.25, "n": 2, "seed": 43, "positives": "all",
                  "threshold": 3.5, "validation": True, "valid_fraction": 0.2}


@pytest.mark.parametrize("field", sorted(SPLIT_VARIANTS))
def test_every_split_field_is_part_of_a_runs_id(field):
    base = run_id_for(**KEY_ARGS)
    changed = run_id_for(**{**KEY_ARGS, "split": {**KEY_SPLIT, field: SPLIT_VARIANTS[field]}})
    assert changed != base, f"the run id ignores the split's {field}"


def test_the_split_fields_the_id_covers_are_every_field_a_split_config_has():
    """A field added to the split config (recsys.data.split.SplitConfig, which split_dataset reads) must be
    listed above, and a stored run's dict reads back as the same config."""
    from recsys.data.split import SplitConfig

    assert {f.name for f in dataclasses.fields(SplitConfig)} == set(SPLIT_VARIANTS) == set(KEY_SPLIT)
    # a leave-last split carves its validation part by position, so the share is not stored there
    leave_last = {k: v for k, v in SPLIT_VARIANTS.items() if k != "valid_fraction"}
    assert SplitConfig.from_dict(SPLIT_VARIANTS).to_dict() == leave_last
    shared = {**KEY_SPLIT, "validation": True, "valid_fraction": 0.2}
    assert SplitConfig.from_dict(shared).to_dict() == shared
    # off, validation (and its share) is left out of the stored dict: ids of runs stored before either
    # existed are unchanged
    assert SplitConfig.from_dict(SPLIT).to_dict() == SPLIT
    assert run_id_for(**{**KEY_ARGS, "split": SplitConfig.from_dict(KEY_SPLIT)}) == run_id_for(
        **{**KEY_ARGS, "split": {k: v for k, v in KEY_SPLIT.items() if k not in ("validation", "valid_fraction")}})


@pytest.mark.parametrize("argument", ["fingerprint", "model", "seed", "owner"])
def test_dataset_model_seed_and_owner_are_part_of_a_runs_id(argument):
    variants = {"fingerprint": "0" * 16, "model": "user_knn", "seed": 7, "owner": "bob"}
    assert run_id_for(**{**KEY_ARGS, argument: variants[argument]}) != run_id_for(**KEY_ARGS), argument


def test_a_private_owner_never_shares_an_id_with_the_shared_scope():
    ids = {run_id_for(**{**KEY_ARGS, "owner": owner}) for owner in (SHARED, "alice", "bob")}
    assert len(ids) == 3


@pytest.mark.parametrize("model_key", ["item_knn", "ials", "sasrec", "hybrid_weighted"])
def test_every_parameter_is_part_of_a_runs_id(model_key):
    from recsys.models import create, get

    params = create(model_key).get_params()
    base = run_id_for(**{**KEY_ARGS, "model": model_key, "params": params})
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(get(model_key).Params)}
    seen = {base}
    for name, value in params.items():
        changed = run_id_for(**{**KEY_ARGS, "model": model_key, "params": {**params, name: _changed(value,
                                                                                                  choices[name])}})
        assert changed not in seen, f"the run id ignores {model_key}'s parameter {name}"
        seen.add(changed)
    assert len(seen) == len(params) + 1 > 3


def test_a_different_threshold_or_dataset_trains_a_new_run(store, sample):
    """Through the store: equal settings reuse, and any change of what the run learns from trains anew."""
    split = {**SPLIT, "positives": "threshold", "threshold": 4.0}
    first = train_or_reuse(store, sample, SOURCE, split, "pop", load=False)
    assert not first.reused and train_or_reuse(store, sample, SOURCE, dict(split), "pop", load=False).reused
    stricter = train_or_reuse(store, sample, SOURCE, {**split, "threshold": 4.5}, "pop", load=False)
    assert not stricter.reused and stricter.record.run_id != first.record.run_id
    one_less = sample.subset(np.arange(sample.n_interactions) != 0)  # one interaction fewer
    assert one_less.fingerprint != sample.fingerprint
    elsewhere = train_or_reuse(store, one_less, SOURCE, split, "pop", load=False)
    assert not elsewhere.reused and elsewhere.record.run_id not in (first.record.run_id, stricter.record.run_id)
