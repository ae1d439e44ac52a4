"""The Data page on a hosted server: data roots only, nothing else of the server's disk, uploads per visitor."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from recsys import hosting
from recsys.data import load
from recsys.data.errors import DataError
from ui.text import md_unescape

VISITOR, OTHER = "visitor-a", "visitor-b"


def write_ml100k(folder, n_users=30, n_items=40, per_user=12, seed=0):
    """A MovieLens-100K-like folder: tab-separated u.data and a '|'-separated u.item with 19 genre flags."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = []
    for user in range(1, n_users + 1):
        for item in rng.choice(np.arange(1, n_items + 1), size=per_user, replace=False):
            lines.append(f"{user}\t{item}\t{rng.integers(1, 6)}\t{880000000 + len(lines)}")
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    flags = "|".join(["0"] * 18 + ["1"])
    (folder / "u.item").write_text("".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{flags}\n"
                                           for i in range(1, n_items + 1)), encoding="latin-1")
    return n_users * per_user


@pytest.fixture
def hosted(tmp_path, monkeypatch):
    """RECSYS_HOSTED=1 with one data root holding ml-100k; this session is VISITOR."""
    root = tmp_path / "datasets"
    interactions = write_ml100k(root / "ml-100k")
    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(root))
    monkeypatch.setattr("ui.runs.owner_token", lambda: VISITOR)
    return {"root": root, "interactions": interactions}


def submit(at, label: str):
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return buttons[0].click().run()


def dataset_box(at):
    return next(w for w in at.sidebar.selectbox if w.label == "Dataset")


def shown(markdown: str) -> str:
    """Markdown as a person reads it: messages are escaped (ui.text.md_escape) on their way to the page."""
    return md_unescape(markdown)


def errors(at) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [shown(e.value) for e in at.error]


def test_a_dataset_under_the_root_loads_by_its_relative_name(app, hosted):
    app.run()
    assert not errors(app)
    choice = app.selectbox(key="ml_choice")
    assert choice.options == ["datasets/ml-100k"]
    choice.set_value("datasets/ml-100k")
    submit(app, "Load MovieLens")
    assert not errors(app)
    expected = load(hosted["root"] / "ml-100k")
    assert expected.n_interactions == hosted["interactions"] == 360
    assert dataset_box(app).value == f"MovieLens 100K ({expected.n_interactions:,} interactions)"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Users"] == "30" and metrics["Interactions"] == "360"
    # the same by typing it, with or without the root's name
    for typed in ("ml-100k", "datasets/ml-100k"):
        app.text_input(key="ml_path").input(typed)
        submit(app, "Load MovieLens")
        assert not errors(app) and dataset_box(app).value == "MovieLens 100K (360 interactions)", typed


def test_a_folder_of_datasets_says_which_one_it_loaded_and_what_else_it_holds(app, hosted):
    """The data root itself holds two editions: the page names the one taken and the other, never by an
    absolute path."""
    write_ml100k(hosted["root"] / "more" / "ml-small", n_users=12, n_items=20, per_user=5, seed=1)
    app.run()
    app.text_input(key="ml_path").input("datasets")
    submit(app, "Load MovieLens")
    assert not errors(app)
    assert dataset_box(app).value == "MovieLens 100K (360 interactions)"  # the shallowest u.data
    [said] = [shown(s.value) for s in app.success]
    assert said == ("Loaded MovieLens 100K: 30 users, 40 items, 360 interactions. The folder datasets holds "
                    "datasets in subfolders: this is the one in ml-100k. It also holds more/ml-small; to load one "
                    "of those, give its folder's path instead.")
    assert str(hosted["root"]) not in said
    # the folder of one edition says only what it loaded
    app.text_input(key="ml_path").input("datasets/more/ml-small")
    submit(app, "Load MovieLens")
    assert [shown(s.value) for s in app.success] == ["Loaded MovieLens small: 12 users, 20 items, 60 interactions."]


@pytest.mark.parametrize("typed", ["/etc/passwd", "../..", "/etc", "ml-100k/../../.."])
def test_paths_outside_the_root_are_refused(app, hosted, tmp_path, typed):
    app.run()
    app.text_input(key="ml_path").input(typed)
    submit(app, "Load MovieLens")
    shown = errors(app)
    assert shown == ["That path is outside the data folders this server offers. Pick one of: datasets/ml-100k — "
                     "or upload the file."]
    assert dataset_box(app).value == "Sample catalogue (synthetic)"


def test_a_missing_name_inside_the_root_is_named_relative_to_it(app, hosted, tmp_path):
    app.run()
    app.text_input(key="ml_path").input("ml-1m")
    submit(app, "Load MovieLens")
    assert errors(app) == ["'datasets/ml-1m' does not exist in the server's data folders. Pick one of: "
                           "datasets/ml-100k — or upload the file."]
    assert str(tmp_path) not in errors(app)[0]


def test_another_visitors_upload_is_refused_by_path_and_by_descriptor(app, hosted, tmp_path):
    path, _ = hosting.save_upload("ratings.csv", b"user,item,rating\n1,1,5\n1,2,3\n2,1,4\n", OTHER)
    app.run()
    app.text_input(key="ml_path").input(str(path))
    submit(app, "Load MovieLens")
    assert errors(app) == ["That path is outside the data folders this server offers. Pick one of: "
                           "datasets/ml-100k — or upload the file."]
    # a descriptor of it (as a shared session state or a crafted link would carry) does not load either
    descriptor = {"kind": "table", "path": str(path), "filename": "ratings.csv",
                  "mapping": {"user": "user", "item": "item", "rating": "rating", "timestamp": None},
                  "feedback": None, "duplicates": "last", "label": "ratings.csv (upload)"}
    app.session_state["sources"] = {"Sample catalogue (synthetic)": {"kind": "sample",
                                                                     "label": "Sample catalogue (synthetic)"},
                                     descriptor["label"]: descriptor}
    app.session_state["dataset_label"] = descriptor["label"]
    app.session_state["_select_dataset"] = descriptor["label"]
    app.run()
    assert errors(app) == ["This dataset is another visitor's upload (or one from a session that is over), so it "
                           "cannot be opened here. Upload the file yourself on the Data page."]
    assert not app.metric
    # its owner opens it
    hosting.check_source(descriptor, OTHER)


def test_without_data_roots_the_path_box_is_hidden(app, hosted, monkeypatch):
    monkeypatch.delenv("RECSYS_DATA_ROOTS")
    app.run()
    assert not errors(app)
    assert not [t for t in app.text_input if t.key == "ml_path"]
    assert not [s for s in app.selectbox if s.key == "ml_choice"]
    assert any("reads no files from its own disk: uploads are the way in" in i.value for i in app.info)


def test_local_mode_keeps_the_free_path_box(app, hosted, monkeypatch):
    monkeypatch.delenv("RECSYS_HOSTED")
    monkeypatch.delenv("RECSYS_DATA_ROOTS")
    app.run()
    assert not [s for s in app.selectbox if s.key == "ml_choice"]
    app.text_input(key="ml_path").input(str(hosted["root"] / "ml-100k"))
    submit(app, "Load MovieLens")
    assert not errors(app) and dataset_box(app).value == "MovieLens 100K (360 interactions)"
    app.text_input(key="ml_path").input(str(hosted["root"] / "nothing-here"))
    submit(app, "Load MovieLens")
    assert errors(app) == ["Nothing called 'nothing-here' exists on the server at that path. Check the path (it is "
                           "read on the server), or upload the file."]
    # any path, except another visitor's upload
    theirs, _ = hosting.save_upload("ml-100k.zip", b"PK\x05\x06" + bytes(18), OTHER)
    app.text_input(key="ml_path").input(str(theirs))
    submit(app, "Load MovieLens")
    assert errors(app) == ["This dataset is another visitor's upload (or one from a session that is over), so it "
                           "cannot be opened here. Upload the file yourself on the Data page."]
    assert dataset_box(app).value == "MovieLens 100K (360 interactions)"


def test_your_uploads_lists_sizes_and_deletes(app, hosted):
    mine, _ = hosting.save_upload("ratings.csv", b"user,item\n" + b"1,2\n" * 600, VISITOR)
    hosting.save_upload("theirs.csv", b"user,item\n1,2\n", OTHER)
    app.run()
    assert not errors(app)
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["file", "size", "uploaded"])
    assert list(table["file"]) == ["ratings.csv"] and list(table["size"]) == ["2.4 KB"]
    assert any(c.value.startswith("You keep 2.4 KB of the 200.0 MB each visitor may keep.") for c in app.caption)
    app.button(key="uploads_delete").click().run()
    assert not errors(app)
    assert not mine.exists() and [shown(s.value) for s in app.success] == ["Deleted ratings.csv (2.4 KB)."]
    assert hosting.list_uploads(VISITOR) == [] and [u.name for u in hosting.list_uploads(OTHER)] == ["theirs.csv"]
    assert [i.value for i in app.info if "no uploads" in i.value] == ["You have no uploads on this server."]


def test_deleting_the_current_upload_returns_to_the_sample(app, hosted):
    path, _ = hosting.save_upload("ratings.csv", b"user,item,rating\n1,1,5\n1,2,3\n2,1,4\n2,3,2\n3,2,5\n3,3,1\n",
                                  VISITOR)
    descriptor = {"kind": "table", "path": str(path), "filename": "ratings.csv",
                  "mapping": {"user": "user", "item": "item", "rating": "rating", "timestamp": None},
                  "feedback": None, "duplicates": "last", "label": "ratings.csv (6 interactions)"}
    app.session_state["sources"] = {"Sample catalogue (synthetic)": {"kind": "sample",
                                                                     "label": "Sample catalogue (synthetic)"},
                                    descriptor["label"]: descriptor}
    app.session_state["dataset_label"] = descriptor["label"]
    app.session_state["_select_dataset"] = descriptor["label"]
    app.run()
    assert dataset_box(app).value == descriptor["label"]
    app.button(key="uploads_delete").click().run()
    assert not errors(app)
    assert dataset_box(app).value == "Sample catalogue (synthetic)"
    assert dataset_box(app).options == ["Sample catalogue (synthetic)"]


def test_an_upload_that_does_not_load_is_not_kept(hosted, monkeypatch):
    from ui import data

    broken, created = hosting.save_upload("ratings.csv", b"user,item,rating\nu1,i1,4\nu2,i2,five\n", VISITOR)
    assert created
    descriptor = {"kind": "table", "path": str(broken), "filename": "ratings.csv",
                  "mapping": {"user": "user", "item": "item", "rating": "rating", "timestamp": None}}
    with pytest.raises(DataError, match="five"):
        data.load_upload(descriptor, [])  # kept: this call did not write it (an earlier one did)
    assert broken.exists()
    with pytest.raises(DataError, match="five"):
        data.load_upload(descriptor, [broken])
    assert not broken.exists() and hosting.list_uploads(VISITOR) == []


# ---------------------------------------------------------------------------- uploads through the page
RATINGS = b"user,item,rating\n" + b"".join(f"u{u},i{(u * 7 + k) % 25},{1 + (u + k) % 5}\n".encode()
                                           for u in range(20) for k in range(8))


def uploader(at, key: str):
    return next(f for f in at.file_uploader if f.key == key)


def upload_table(at, name: str, payload: bytes):
    uploader(at, "upload_file").set_value((name, payload, "text/csv"))
    return at.run()


def test_an_uploaded_table_is_kept_for_its_visitor_alone(app, hosted):
    app.run()
    upload_table(app, "my ratings.csv", RATINGS)
    assert not errors(app)
    assert any(shown(c.value).startswith("160 rows · columns: user, item, rating") for c in app.caption)
    submit(app, "Use this data")
    assert not errors(app)
    assert dataset_box(app).value == "my ratings.csv (160 interactions)"
    kept = hosting.list_uploads(VISITOR)
    assert [(u.name, u.size) for u in kept] == [("my_ratings.csv", len(RATINGS))]
    assert kept[0].path.parent == hosting.owner_uploads(VISITOR) and hosting.list_uploads(OTHER) == []
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["file", "size", "uploaded"])
    assert list(table["file"]) == ["my_ratings.csv"]


def test_an_upload_that_fails_to_load_is_not_kept(app, hosted):
    app.run()
    upload_table(app, "ratings.csv", b"user,item,rating\nu1,i1,4\nu2,i2,five\nu3,i1,3\n")
    assert not errors(app)  # it reads as a table; the rating column fails when the dataset is built
    submit(app, "Use this data")
    [message] = errors(app)
    assert "'rating'" in message and "row 2" in message and "five" in message
    assert hosting.list_uploads(VISITOR) == []
    assert hosting.folder_bytes(hosting.config().uploads()) == 0
    assert dataset_box(app).value == "Sample catalogue (synthetic)"


def test_an_upload_over_the_size_limit_is_refused_before_reading(app, hosted, monkeypatch):
    monkeypatch.setenv("RECSYS_LIMIT_UPLOAD_BYTES", "1000")
    app.run()
    upload_table(app, "ratings.csv", RATINGS)
    assert errors(app) == [f"ratings.csv is {len(RATINGS) / 1024:.1f} KB; this server takes uploads of up to "
                           "1000 bytes. Upload a smaller file (fewer rows, or a smaller MovieLens variant)."]
    assert not [b for b in app.button if b.label == "Use this data"] and hosting.list_uploads(VISITOR) == []


def test_an_upload_over_the_visitor_quota_is_refused_before_writing(app, hosted, monkeypatch):
    monkeypatch.setenv("RECSYS_LIMIT_VISITOR_UPLOAD_BYTES", str(len(RATINGS) + 100))
    hosting.save_upload("old.csv", b"x" * 200, VISITOR)
    app.run()
    upload_table(app, "ratings.csv", RATINGS)
    submit(app, "Use this data")
    kept, limit = 200, len(RATINGS) + 100
    assert errors(app) == [
        f"This upload ({hosting.human_bytes(len(RATINGS))}) would bring your kept uploads to "
        f"{hosting.human_bytes(kept + len(RATINGS))}, over the {hosting.human_bytes(limit)} each visitor may keep "
        f"(you keep {kept} bytes). Delete old uploads under 'Your uploads' on the Data page, then upload again."]
    assert [u.name for u in hosting.list_uploads(VISITOR)] == ["old.csv"]
    # deleting the old upload makes room
    app.button(key="uploads_delete").click().run()
    upload_table(app, "ratings.csv", RATINGS)
    submit(app, "Use this data")
    assert not errors(app) and [u.name for u in hosting.list_uploads(VISITOR)] == ["ratings.csv"]


def test_without_roots_a_movielens_zip_upload_is_the_way_in(app, hosted, monkeypatch):
    monkeypatch.delenv("RECSYS_DATA_ROOTS")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((hosted["root"] / "ml-100k").iterdir()):
            zf.write(path, f"ml-100k/{path.name}")
    app.run()
    assert [f.label for f in app.file_uploader if f.key == "ml_zip"] == ["Upload a MovieLens .zip"]
    uploader(app, "ml_zip").set_value(("ml-100k.zip", archive.getvalue(), "application/zip"))
    submit(app, "Load MovieLens")
    assert not errors(app)
    assert dataset_box(app).value == "MovieLens 100K (360 interactions)"
    assert [u.name for u in hosting.list_uploads(VISITOR)] == ["ml-100k.zip"]


def test_the_runs_page_refuses_a_bundle_over_the_budget_by_its_size(app, hosted, monkeypatch):
    monkeypatch.setenv("RECSYS_LIMIT_BUNDLE_BYTES", "2048")
    app.run()
    app.switch_page("app_pages/runs.py").run()
    uploader(app, "runs_import_file").set_value(("bundle.zip", b"PK" + bytes(4000), "application/zip"))
    app.run()
    app.button(key="runs_import").click().run()
    assert errors(app) == ["The bundle is 3.9 KB; this server imports bundles of up to 2.0 KB. Export fewer runs, or "
                           "export them without their models."]
