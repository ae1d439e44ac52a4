"""Every page run headless through app.py with Streamlit's AppTest: what a person would see, checked.

The app is always started from app.py (so the shared sidebar and session-state defaults run)
and pages are reached with ``switch_page``, exactly as the navigation does it.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from recsys.data import load, loaders
from recsys.data.errors import DataError
from recsys.data.split import make_split
from ui.text import md_unescape

TRAIN = "app_pages/train.py"
COMPARE = "app_pages/compare.py"
MODELS = {"pop": "Most popular", "item_knn": "Item-item kNN"}
SUCCESS = re.compile(r"^(?P<label>.+): NDCG@10 = (?P<ndcg>\d\.\d{4}) on (?P<users>[\d,]+) test users\.$")


@pytest.fixture(scope="module")
def sample():
    return load("sample")


def assert_clean(at) -> None:
    """No traceback box and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at) -> list[str]:
    """Titles of the Altair charts on the page, each checked to carry data."""
    titles = []
    for chart in at.get("vega_lite_chart"):
        assert chart.proto.datasets and all(d.data.data for d in chart.proto.datasets), "a chart without data"
        title = json.loads(chart.proto.spec).get("title")
        titles.append(title["text"] if isinstance(title, dict) else title)
    return titles


def submit(at, label: str):
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return buttons[0].click().run()


def wait_for_training(at, label: str, timeout: float = 120.0):
    """Rerun the page (as its live panel does every second) until ``label``'s training has ended."""
    deadline = time.monotonic() + timeout
    while True:
        outcomes = [m for s in at.success if (m := SUCCESS.match(s.value)) and m["label"] == label]
        if outcomes or at.error or at.exception:
            return outcomes
        assert time.monotonic() < deadline, f"{label} still training after {timeout} s"
        time.sleep(0.2)
        at.run()


def train(at, key: str) -> dict:
    """Click the model's "Train …" form button, wait for the background job, parse the success message."""
    submit(at, f"Train {MODELS[key]}")
    found = wait_for_training(at, MODELS[key])
    assert_clean(at)
    assert len(found) == 1, [s.value for s in at.success]
    return found[0].groupdict()


def trained_app(app) -> tuple:
    app.run()
    app.switch_page(TRAIN).run()
    assert_clean(app)
    results = {key: train(app, key) for key in MODELS}
    return app, results


def sidebar_widget(app, kind: str, label: str):
    """A sidebar widget by its label: its key changes with each programmatic change (ui.state)."""
    return next(w for w in getattr(app.sidebar, kind) if w.label == label)


# ---------------------------------------------------------------------------- Data
def test_data_page_shows_the_sample(app, sample):
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Data"
    assert sidebar_widget(app, "selectbox", "Dataset").value == sample.name
    assert sample.name in [md_unescape(h.value) for h in app.subheader]  # names are escaped into markdown
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Users"] == f"{sample.n_users:,}" == "2,500"
    assert metrics["Items"] == f"{sample.n_items:,}"
    assert metrics["Interactions"] == f"{sample.n_interactions:,}"
    assert metrics["Density"] == f"{sample.n_interactions / (sample.n_users * sample.n_items):.2%}"
    # long tail, two activity histograms, rating bars (the sample is explicit), matrix sample
    assert sample.feedback == "explicit"
    assert charts(app) == ["Long tail: how concentrated is consumption?", "How active are users?",
                           "Rating distribution", "How popular are items?",
                           "What the matrix looks like (each dot is an interaction)"]
    # the caption describing the default split matches the backend's split of the same data
    split = make_split(sample, "random", test_fraction=0.2, seed=42, n=1)
    captions = [c.value for c in app.caption]
    expected = (f"Current split (random 80/20 holdout): {split.train.n_interactions:,} train / "
                f"{split.test.n_interactions:,} test interactions")
    assert any(c.startswith(expected) for c in captions), captions


def test_data_page_shows_a_loader_error_for_a_broken_table(app, tmp_path):
    """A table whose rating column holds text: the loader's own message, no traceback, no overview."""
    broken = tmp_path / "ratings.csv"
    broken.write_text("user,item,rating\nu1,i1,4\nu2,i2,five\nu3,i1,3\n")
    descriptor = {
        "kind": "table",
        "path": str(broken),
        "filename": "ratings.csv",
        "mapping": {"user": "user", "item": "item", "rating": "rating", "timestamp": None},
        "feedback": None,
        "duplicates": "last",
        "label": "ratings.csv (upload)",
    }
    with pytest.raises(DataError) as raised:
        loaders.load_mapped(descriptor)
    message = str(raised.value)
    assert "'rating'" in message and "row 2" in message and "five" in message

    # what ui.state.add_source stores when the Data page accepts an upload
    app.session_state["sources"] = {"Sample catalogue (synthetic)": {"kind": "sample",
                                                                     "label": "Sample catalogue (synthetic)"},
                                     descriptor["label"]: descriptor}
    app.session_state["dataset_label"] = descriptor["label"]
    app.session_state["_select_dataset"] = descriptor["label"]
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [md_unescape(e.value) for e in app.error] == [message]  # shown escaped: it quotes the file
    assert sidebar_widget(app, "selectbox", "Dataset").value == descriptor["label"]
    assert not app.metric  # the page stops instead of drawing an overview of nothing
    assert not charts(app)

    # the Train page refuses the same data with the same message
    app.switch_page(TRAIN).run()
    assert not app.exception, [e.value for e in app.exception]
    assert [md_unescape(e.value) for e in app.error] == [message]  # shown escaped: it quotes the file
    assert not [b for b in app.button if b.label.startswith("Train ")]


# ---------------------------------------------------------------------------- Train
def test_train_page_trains_two_models(app, sample):
    app.run()
    app.switch_page(TRAIN).run()
    assert_clean(app)
    assert app.title[0].value == "Train"
    assert app.multiselect(key="train_models").value == list(MODELS)
    assert app.session_state["runs"] == []

    pop = train(app, "pop")
    assert pop["label"] == "Most popular"
    assert [spec["model"] for spec in app.session_state["runs"]] == ["pop"]
    knn = train(app, "item_knn")
    assert knn["label"] == "Item-item kNN"

    specs = app.session_state["runs"]
    assert len(specs) == 2
    assert [spec["model"] for spec in specs] == ["pop", "item_knn"]
    assert {spec["dataset"] for spec in specs} == {sample.name}
    assert len({spec["run_id"] for spec in specs}) == 2
    for result in (pop, knn):
        assert 0.0 < float(result["ndcg"]) < 1.0
        assert 0 < int(result["users"].replace(",", "")) <= sample.n_users
    # personalised neighbours beat the popularity baseline on this catalogue
    assert float(knn["ndcg"]) > float(pop["ndcg"])

    table = app.dataframe[0].value
    assert list(table["model"]) == ["Most popular", "Item-item kNN"]
    assert [f"{v:.4f}" for v in table["NDCG@10"]] == [pop["ndcg"], knn["ndcg"]]

    # the same settings again reuse the trained run instead of training (and listing) it twice
    submit(app, "Train Most popular")
    assert_clean(app)
    assert any("already trained" in i.value for i in app.info), [i.value for i in app.info]
    assert len(app.session_state["runs"]) == 2


def test_results_of_two_splits_are_labelled_with_dataset_and_split(app, sample):
    app.run()
    app.switch_page(TRAIN).run()
    train(app, "pop")
    sidebar_widget(app, "selectbox", "Split").set_value("leave_last").run()
    assert_clean(app)
    caption = app.caption[0].value
    assert "leave last 1 out" in caption and "leave_last" not in caption  # words, not the raw key
    submit(app, "Train Most popular")
    deadline = time.monotonic() + 60
    while len([m for m in app.success if SUCCESS.match(m.value)]) < 2:
        assert time.monotonic() < deadline and not app.error and not app.exception, "the second training"
        time.sleep(0.2)
        app.run()
    # every result sits under the dataset and split it belongs to
    shown = [(el.type, md_unescape(el.value)) for el in app.main if el.type in ("caption", "success")
             and (el.type == "success" or el.value.startswith("On "))]
    on = "On **Sample catalogue (synthetic) · "
    assert [(kind, text if kind == "caption" else SUCCESS.match(text)["label"]) for kind, text in shown] == [
        ("caption", on + "random 80/20 holdout**"), ("success", "Most popular"),
        ("caption", on + "leave last 1 out**"), ("success", "Most popular")]
    table = app.dataframe[0].value
    assert list(table["split"]) == ["random 80/20 holdout", "leave last 1 out"]
    assert list(table["dataset"]) == [sample.name, sample.name] == ["Sample catalogue (synthetic)"] * 2
    # the Data page's caption uses the same words
    app.switch_page("app_pages/data.py").run()
    assert any(c.value.startswith("Current split (leave last 1 out):") for c in app.caption)
    assert not [c.value for c in app.caption if "leave_last" in c.value]


def test_the_model_choice_matches_by_substring_and_survives_a_page_switch(app):
    app.run()
    app.switch_page(TRAIN).run()
    chooser = app.multiselect(key="train_models")
    # fuzzy matching took "knn" for Markov chain too; "select all matches" then added every one of them
    modes = chooser.proto.DESCRIPTOR.fields_by_name["filter_mode"].enum_type
    assert modes.values_by_number[chooser.proto.filter_mode].name == "FILTER_MODE_CONTAINS"
    assert not chooser.proto.select_all
    chooser.set_value(["ease", "markov"]).run()
    app.switch_page("app_pages/data.py").run()
    app.switch_page(TRAIN).run()
    assert_clean(app)
    assert app.multiselect(key="train_models").value == ["ease", "markov"]


def test_the_data_page_says_what_use_the_sample_did(app):
    app.run()
    app.button(key="use_sample").click().run()
    assert_clean(app)
    assert "The bundled sample is already the current dataset; nothing changed." in [i.value for i in app.info]
    other = "The sample under a name too long for the sidebar's box"
    app.session_state["sources"] = {**app.session_state["sources"], other: {"kind": "sample", "label": other}}
    app.session_state["_select_dataset"] = other
    app.run()
    assert sidebar_widget(app, "selectbox", "Dataset").value == other
    # a name longer than the sidebar's box is written out in full beneath it
    assert [md_unescape(c.value) for c in app.sidebar.caption] == [other]
    app.button(key="use_sample").click().run()
    assert sidebar_widget(app, "selectbox", "Dataset").value == "Sample catalogue (synthetic)"
    assert [s.value for s in app.success] == ["Switched to the bundled sample: it is the current dataset for every "
                                              "page."]
    assert not app.sidebar.caption  # the sample's name fits


# ---------------------------------------------------------------------------- Compare
def test_live_training_shows_curves_and_stop_keeps_the_model(app):
    app.run()
    app.switch_page(TRAIN).run()
    app.multiselect(key="train_models").set_value(["bpr_mf"]).run()
    submit(app, "Train BPR-MF")
    deadline = time.monotonic() + 60
    while not [c for c in charts(app) if c == "Training loss by epoch"]:
        assert time.monotonic() < deadline, "no live loss curve appeared"
        time.sleep(0.3)
        app.run()
    assert_clean(app)
    assert any(p.proto.text.startswith("BPR-MF: epoch ") for p in app.get("progress"))
    [stop] = [b for b in app.button if b.label == "Stop and keep"]
    stop.click().run()
    found = wait_for_training(app, "BPR-MF")
    assert_clean(app)
    assert len(found) == 1
    [note] = [i.value for i in app.info if "stopped early" in i.value]
    match = re.search(r"after epoch (\d+) of (\d+)\.$", note)
    assert match, note
    assert 2 <= int(match.group(1)) < int(match.group(2))
    assert [spec["model"] for spec in app.session_state["runs"]] == ["bpr_mf"]


def test_cancel_keeps_nothing(app):
    app.run()
    app.switch_page(TRAIN).run()
    app.multiselect(key="train_models").set_value(["bpr_mf"]).run()
    submit(app, "Train BPR-MF")
    [cancel] = [b for b in app.button if b.label == "Cancel"]
    cancel.click().run()
    deadline = time.monotonic() + 60
    while not [w for w in app.warning if "cancelled" in w.value]:
        assert time.monotonic() < deadline, "cancel was not honoured"
        time.sleep(0.3)
        app.run()
    assert_clean(app)
    assert app.session_state["runs"] == []


def test_compare_page_without_runs_points_to_train(app):
    app.run()
    app.switch_page(COMPARE).run()
    assert_clean(app)
    assert app.title[0].value == "Compare"
    assert [i.value for i in app.info] == ["No trained models on this dataset and split yet. "
                                           "Train some on the Train page."]
    assert not app.dataframe
    assert not charts(app)


def test_compare_page_shows_both_models_and_a_paired_test(app):
    app, results = trained_app(app)
    app.switch_page(COMPARE).run()
    assert_clean(app)
    assert not app.info
    assert "Metrics at K = 10" in [h.value for h in app.subheader]

    table = app.dataframe[0].value
    assert list(table["model"]) == ["Most popular", "Item-item kNN"]
    ndcg = dict(zip(table["model"], table["ndcg@10"]))
    assert {name: f"{value:.4f}" for name, value in ndcg.items()} == {
        MODELS[key]: result["ndcg"] for key, result in results.items()}
    for column in ("recall@10", "coverage@10", "novelty@10", "ndcg@10 95% CI"):
        assert column in table.columns
    # popularity recommends (nearly) the same ten items to everyone: kNN covers far more of the catalogue
    coverage = dict(zip(table["model"], table["coverage@10"]))
    assert coverage["Item-item kNN"] > coverage["Most popular"]
    # the overview charts come first; the deeper ones are checked in test_compare_page.py
    assert charts(app)[:4] == ["NDCG as the list grows", "NDCG@10 (95% bootstrap interval)",
                               "Catalogue coverage@10 (share of items ever recommended)",
                               "Novelty@10 (bits of surprise per item)"]

    # the paired test names the better model (by the table) as the better one
    assert app.selectbox(key="compare_a").value == "Most popular"
    assert app.selectbox(key="compare_b").value == "Item-item kNN"
    better, worse = sorted(ndcg, key=ndcg.get, reverse=True)
    sentences = [md_unescape(m.value) for m in app.markdown if " on NDCG@10 " in m.value]  # run names escaped
    assert len(sentences) == 1, [m.value for m in app.markdown]
    assert re.fullmatch(
        rf"{re.escape(better)} is better than {re.escape(worse)} on NDCG@10 by [\d.e-]+ "
        r"\(p (<|=) [\d.]+\): the difference is (unlikely to be noise|could well be noise)\.",
        sentences[0],
    ), sentences[0]
    details = [c.value for c in app.caption if c.value.startswith("Paired t-test")]
    assert len(details) == 1 and re.match(
        r"Paired t-test p (= [\d.e+-]+|< 1e-300) · Wilcoxon signed-rank p (= [\d.e+-]+|< 1e-300) · "
        r"effect size \|d\| = \d\.\d\d .* over [\d,]+ users\.$", details[0]), details
    assert "p = 0 " not in details[0]  # an underflowed p-value is not a certainty

    # K is a live control: the table follows it
    app.select_slider(key="compare_k").set_value(20).run()
    assert_clean(app)
    assert "Metrics at K = 20" in [h.value for h in app.subheader]
    assert "ndcg@20" in app.dataframe[0].value.columns
