"""Runs page: stored runs listed after a "restart", renamed, deleted, exported and imported.

Runs are put into the store the way another server process would (``recsys.store``
directly, into the same RECSYS_HOME), so the page must find them without this session
having trained anything.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from recsys.data import load
from recsys.store import SHARED, ExperimentStore, train_or_reuse
from ui.identity import token_owner
from ui.text import md_unescape

RUNS = "app_pages/runs.py"
SAMPLE = {"kind": "sample", "label": "Sample catalogue (synthetic)"}
SPLIT = {"method": "random", "test_fraction": 0.2, "n": 1, "seed": 42, "positives": "all", "threshold": 4.0}


@pytest.fixture(scope="module")
def sample():
    return load("sample")


def home_store() -> ExperimentStore:
    return ExperimentStore(Path(os.environ["RECSYS_HOME"]) / "store")


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def button(at, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def open_runs(app):
    app.run()
    app.switch_page(RUNS).run()
    assert_clean(app)
    return app


def test_an_empty_store_says_how_to_get_runs(app):
    open_runs(app)
    assert app.title[0].value == "Runs"
    assert [i.value for i in app.info] == ["No runs stored yet. Train some on the Train page, or import a bundle "
                                           "below."]
    assert not app.dataframe


def test_runs_stored_by_another_process_are_listed_compared_and_reused(app, sample):
    store = home_store()
    pop = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    knn = train_or_reuse(store, sample, SAMPLE, SPLIT, "item_knn", load=False).record
    # a run on someone else's upload stays invisible to this session
    train_or_reuse(store, sample, {"kind": "table", "label": "their.csv"}, SPLIT, "pop", owner="someone-else",
                   load=False)
    open_runs(app)
    table = app.dataframe[0].value
    assert list(table["name"]) == ["Most popular", "Item-item kNN"]
    assert list(table["status"]) == ["done", "done"] and list(table["scope"]) == ["shared", "shared"]
    assert list(table["dataset"]) == [SAMPLE["label"]] * 2
    assert [round(v, 6) for v in table["ndcg@10"]] == [round(pop.metrics["ndcg@10"], 6),
                                                        round(knn.metrics["ndcg@10"], 6)]
    assert list(table["split"]) == ["random 20% · seed 42"] * 2

    # the Compare page shows them without this session having trained anything
    app.switch_page("app_pages/compare.py").run()
    assert_clean(app)
    compared = app.dataframe[0].value
    assert list(compared["model"]) == ["Most popular", "Item-item kNN"]
    assert [round(v, 6) for v in compared["ndcg@10"]] == [round(pop.metrics["ndcg@10"], 6),
                                                          round(knn.metrics["ndcg@10"], 6)]

    # training the same settings reuses the stored run instead of training again
    app.switch_page("app_pages/train.py").run()
    button(app, "Train Most popular").click().run()
    assert_clean(app)
    assert any("already trained" in i.value for i in app.info), [i.value for i in app.info]
    assert [spec["run_id"] for spec in app.session_state["runs"]] == [pop.run_id]


def test_rename_and_delete_with_confirmation(app, sample):
    store = home_store()
    pop = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    knn = train_or_reuse(store, sample, SAMPLE, SPLIT, "item_knn", load=False).record
    open_runs(app)
    app.selectbox(key="runs_pick").set_value(knn.run_id).run()
    app.text_input(key=f"runs_name_{knn.run_id}").set_value("kNN, k=200").run()
    app.multiselect(key="runs_export_pick").set_value([knn.run_id]).run()
    button(app, "Rename").click().run()
    assert_clean(app)
    assert [md_unescape(s.value) for s in app.success] == ["Renamed Item-item kNN to kNN, k=200."]
    assert list(app.dataframe[0].value["name"]) == ["Most popular", "kNN, k=200"]
    assert store.get(knn.run_id).name == "kNN, k=200"
    # the renamed run stays in the export selection, and a run left out stays out
    assert app.multiselect(key="runs_export_pick").value == [knn.run_id]
    app.run()
    assert app.multiselect(key="runs_export_pick").value == [knn.run_id] and not app.success

    app.selectbox(key="runs_pick").set_value(pop.run_id).run()
    button(app, "Delete…").click().run()
    assert [w.value for w in app.warning] == ["Delete Most popular and its stored model? This cannot be undone."]
    button(app, "Keep it").click().run()
    assert not app.warning and store.get(pop.run_id) is not None

    button(app, "Delete…").click().run()
    button(app, "Yes, delete").click().run()
    assert_clean(app)
    assert [s.value for s in app.success] == ["Deleted Most popular."]
    assert list(app.dataframe[0].value["name"]) == ["kNN, k=200"]
    assert store.get(pop.run_id) is None and not (store.artifacts / pop.run_id).exists()


def test_deleting_a_run_without_a_stored_model_does_not_mention_one(app, sample):
    store = home_store()
    pop = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    # an imported run may carry its numbers alone: exported without its model, deleted, imported again
    bundle = store.export_bundle([pop.run_id], include_models=False)
    store.delete(pop.run_id)
    store.import_bundle(bundle, SHARED)
    assert not store.get(pop.run_id).has_model
    open_runs(app)
    app.selectbox(key="runs_pick").set_value(pop.run_id).run()
    button(app, "Delete…").click().run()
    assert [w.value for w in app.warning] == ["Delete Most popular? This cannot be undone."]


def test_import_a_bundle_and_refuse_a_bad_one(app, sample, tmp_path):
    source = ExperimentStore(tmp_path / "elsewhere")
    run = train_or_reuse(source, sample, SAMPLE, SPLIT, "pop", load=False).record
    bundle = source.export_bundle([run.run_id])
    open_runs(app)
    assert not app.get("download_button")  # nothing to export yet

    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "recsys-explorer-bundle", "schema_version": 99,
                                                 "runs": []}))
    app.file_uploader(key="runs_import_file").set_value(("old.zip", broken.getvalue(), "application/zip")).run()
    button(app, "Import").click().run()
    assert [md_unescape(e.value) for e in app.error] == ["The bundle has schema version 99; this program reads version 1. "
                                            "Export it again with a matching version."]
    assert home_store().list() == []

    app.file_uploader(key="runs_import_file").set_value(("good.zip", bundle, "application/zip")).run()
    button(app, "Import").click().run()
    assert_clean(app)
    assert [s.value for s in app.success] == ["Imported 1 run(s)."]
    table = app.dataframe[0].value
    assert list(table["name"]) == ["Most popular"] and list(table["scope"]) == ["yours"]
    assert list(table["model stored"]) == [False]
    [imported] = home_store().list()
    assert imported.metrics == run.metrics and imported.owner == token_owner(app.session_state["_visitor_token"])
    assert [b.label for b in app.get("download_button")] == ["Download experiment bundle (.zip)"]


def test_an_unwritable_store_is_explained_not_a_traceback(app):
    home = Path(os.environ["RECSYS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "store").write_text("a file where the store folder should be")
    for page in (RUNS, "app_pages/compare.py"):
        app.run()
        app.switch_page(page).run()
        assert not app.exception, [e.value for e in app.exception]
        [message] = [md_unescape(e.value) for e in app.error]
        assert "cannot be written" in message and "Set RECSYS_HOME" in message, message


def _job_target(store: ExperimentStore, sample) -> dict:
    from ui import runs

    return {"store": store, "owner": "shared", "fingerprint": store.register_dataset(sample, SAMPLE),
            "split": SPLIT, "models": runs.LoadedCache(4), "reports": runs.LoadedCache(4)}


def _job_spec(model: str, params: dict, sample) -> dict:
    from recsys.experiment import RunSpec
    from recsys.models import create, get

    params = create(model, **params).get_params()
    return {"model": model, "label": get(model).label, "params": params, "dataset": SAMPLE["label"],
            "split": tuple(SPLIT.values()), "run_id": RunSpec.make(sample, SPLIT, model, params).run_id}


def test_background_jobs_store_done_runs_mark_failures_and_drop_cancelled_ones(sample, tmp_path, monkeypatch):
    from recsys import experiment, jobs
    from recsys.store import split_dataset

    store = ExperimentStore(tmp_path / "store")
    target = _job_target(store, sample)
    split = split_dataset(sample, SPLIT)

    done = jobs.Job(_job_spec("pop", {}, sample), split, target)
    jobs.train_and_store(done)
    assert done.status == jobs.DONE
    record = store.get(done.spec["run_id"])
    assert record.status == "done" and record.metrics["ndcg@10"] == done.entry["report"].means["ndcg@10"]
    key = (str(store.root), record.run_id, record.created_at)
    assert target["models"].get(key) is done.entry["model"]  # no reload from disk for this process

    cancelled = jobs.Job(_job_spec("bpr_mf", {"epochs": 3}, sample), split, target)
    cancelled._cancel.set()
    jobs.train_and_store(cancelled)
    assert cancelled.status == jobs.CANCELLED and store.get(cancelled.spec["run_id"]) is None
    assert not (store.artifacts / cancelled.spec["run_id"]).exists()

    def explode(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(experiment, "fit_and_evaluate", explode)  # the queue trains through recsys.experiment
    failed = jobs.Job(_job_spec("item_knn", {}, sample), split, target)
    jobs.train_and_store(failed)
    assert failed.status == jobs.FAILED and failed.error == "RuntimeError: out of memory"
    assert (store.get(failed.spec["run_id"]).status, store.get(failed.spec["run_id"]).error) == (
        "failed", "RuntimeError: out of memory")


# ---------------------------------------------------------------------- hosted: visitors and instructors
@pytest.fixture
def hosted(monkeypatch):
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setenv("RECSYS_INSTRUCTOR_KEY", "open sesame")


def test_hosted_visitors_see_shared_runs_read_only_and_change_their_own(app, sample, hosted, tmp_path):
    store = home_store()
    shared = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    elsewhere = ExperimentStore(tmp_path / "elsewhere")
    bundle = elsewhere.export_bundle([train_or_reuse(elsewhere, sample, SAMPLE, SPLIT, "item_knn",
                                                     load=False).record.run_id])
    open_runs(app)
    assert list(app.dataframe[0].value["scope"]) == ["shared"]
    # a visitor gets no rename or delete controls for the shared run, and the page says why
    assert not [b for b in app.button if b.label in ("Rename", "Delete…")]
    assert any("1 shared run(s) are read-only for you" in c.value for c in app.caption)
    assert [i.value for i in app.info] == ["You have no runs of your own to rename or delete."]

    # a run the visitor imported is theirs to change
    app.file_uploader(key="runs_import_file").set_value(("mine.zip", bundle, "application/zip")).run()
    button(app, "Import").click().run()
    assert_clean(app)
    [mine] = [r for r in store.list() if r.owner != "shared"]
    assert mine.owner == token_owner(app.session_state["_visitor_token"])
    assert list(app.selectbox(key="runs_pick").options) == [f"{mine.name} · {SAMPLE['label']} · random 20% · seed 42"]
    app.text_input(key=f"runs_name_{mine.run_id}").set_value("my kNN").run()
    button(app, "Rename").click().run()
    assert_clean(app)
    assert store.get(mine.run_id).name == "my kNN" and store.get(shared.run_id).name == "Most popular"


def test_the_instructor_key_unlocks_shared_runs(app, sample, hosted):
    store = home_store()
    shared = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    open_runs(app)
    app.text_input(key="runs_instructor_key").set_value("open says me")
    button(app, "Sign in as instructor").click().run()
    assert [md_unescape(e.value) for e in app.error] == ["That is not this server's instructor key; ask the host for it, or keep "
                                            "working as a visitor."]
    assert not [b for b in app.button if b.label == "Rename"]

    app.text_input(key="runs_instructor_key").set_value("open sesame")
    button(app, "Sign in as instructor").click().run()
    assert_clean(app)
    assert [s.value for s in app.success] == ["Signed in as instructor."]
    assert any("signed in as instructor" in c.value for c in app.caption)
    app.text_input(key=f"runs_name_{shared.run_id}").set_value("teacher reference").run()
    button(app, "Rename").click().run()
    assert_clean(app)
    assert store.get(shared.run_id).name == "teacher reference"
    button(app, "Sign out as instructor").click().run()
    assert not [b for b in app.button if b.label == "Rename"]


def test_a_signed_in_instructor_account_changes_shared_runs(app, sample, hosted, monkeypatch):
    from ui import identity

    monkeypatch.setenv("RECSYS_INSTRUCTORS", "teacher@example.org")
    store = home_store()
    shared = train_or_reuse(store, sample, SAMPLE, SPLIT, "pop", load=False).record
    monkeypatch.setattr(identity, "_user", lambda: {"is_logged_in": True, "email": "Teacher@Example.org"})
    open_runs(app)
    assert any("signed in as instructor" in c.value for c in app.caption)
    assert not [b for b in app.button if b.label == "Sign out as instructor"]  # the account is the role
    app.text_input(key=f"runs_name_{shared.run_id}").set_value("teacher reference").run()
    button(app, "Rename").click().run()
    assert_clean(app)
    assert store.get(shared.run_id).name == "teacher reference"

    # an account the host did not list is a visitor
    monkeypatch.setattr(identity, "_user", lambda: {"is_logged_in": True, "email": "student@example.org"})
    visitor = open_runs(type(app).from_file(str(app._script_path), default_timeout=60))
    assert not [b for b in visitor.button if b.label in ("Rename", "Delete…")]
    assert any("1 shared run(s) are read-only for you" in c.value for c in visitor.caption)


def test_the_train_page_refuses_a_training_over_the_memory_budget_or_the_visitor_limit(app, monkeypatch):
    from ui import jobs

    monkeypatch.setenv("RECSYS_LIMIT_TRAINING_BYTES", "1000")
    app.run()
    app.switch_page("app_pages/train.py").run()
    button(app, "Train Most popular").click().run()
    assert not app.exception
    [message] = [md_unescape(e.value) for e in app.error]
    assert message.startswith("Most popular would need about ") and "this server allows" in message, message
    assert jobs.board().queued() == 0 and not app.get("progress")

    monkeypatch.delenv("RECSYS_LIMIT_TRAINING_BYTES")
    monkeypatch.setenv("RECSYS_LIMIT_VISITOR_JOBS", "1")
    monkeypatch.setenv("RECSYS_LIMIT_WORKERS", "1")
    jobs.board.clear()  # a board with the new limits
    app.multiselect(key="train_models").set_value(["bpr_mf", "item_knn"]).run()
    button(app, "Train BPR-MF").click().run()
    button(app, "Train Item-item kNN").click().run()
    assert not app.exception
    [message] = [md_unescape(e.value) for e in app.error]
    assert message == ("You already have 1 trainings running or waiting, the most one visitor may have on this "
                       "server. Wait for one to finish, or cancel one, then start Item-item kNN.")
    [bpr] = jobs.board().jobs_of(token_owner(app.session_state["_visitor_token"]))
    assert bpr.spec["model"] == "bpr_mf"
    button(app, "Cancel").click().run()
    assert any("Training of BPR-MF was cancelled" in w.value for w in app.warning)


def test_a_reloaded_page_finds_its_visitors_training_and_a_stranger_does_not(app, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from recsys.jobs import CANCELLED, Board
    from ui import jobs

    def until_cancelled(job):  # a training that runs until its last watcher cancels it
        while not job.cancel_requested:
            time.sleep(0.01)
        job.status = CANCELLED

    board = Board(workers=1, visitor_jobs=3, queue_length=4, runner=until_cancelled)
    monkeypatch.setattr(jobs, "board", lambda: board)
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.multiselect(key="train_models").set_value(["bpr_mf"]).run()
    button(app, "Train BPR-MF").click().run()
    assert_clean(app)
    token = app.session_state["_visitor_token"]
    [job] = board.jobs_of(token_owner(token))

    def session(visitor_token: str | None):
        page = AppTest.from_file(str(app._script_path), default_timeout=60)
        if visitor_token is not None:  # what the browser's cookie brings back after a reload
            page.session_state["_visitor_token"] = visitor_token
        page.run()
        page.switch_page("app_pages/train.py").run()
        assert_clean(page)
        return page

    stranger = session(None)
    assert "Training now" not in [h.value for h in stranger.subheader]
    assert not [b for b in stranger.button if b.label in ("Cancel", "Stop and keep")]

    reloaded = session(token)
    assert "Training now" in [h.value for h in reloaded.subheader]
    assert [b.label for b in reloaded.button if b.label in ("Cancel", "Stop and keep")] == ["Stop and keep", "Cancel"]
    button(reloaded, "Cancel").click().run()
    assert any("Training of BPR-MF was cancelled" in w.value for w in reloaded.warning)
    deadline = time.monotonic() + 30
    while not job.finished_running:
        assert time.monotonic() < deadline, "the cancelled job did not end"
        time.sleep(0.01)
    assert job.status == CANCELLED and board.jobs_of(token_owner(token)) == []
    board.close()
