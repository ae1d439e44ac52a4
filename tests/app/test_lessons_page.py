"""Lessons page through app.py: lessons grouped by chapter in course order, knobs from each lesson's Knobs,
the live result, an answer and feedback that quotes this run's numbers; setting the app up; workshop mode."""

from __future__ import annotations

import re

import pytest

from recsys.lessons import lessons
from recsys.lessons.base import get
from tests.app.test_pages import assert_clean, charts

LESSONS = "app_pages/lessons.py"


def open_page(app):
    app.run()
    app.switch_page(LESSONS).run()
    assert_clean(app)
    return app


def pick(app, key: str):
    lesson = get(key)
    app.selectbox(key="lesson_chapter").set_value(lesson.chapter).run()
    app.radio(key=f"lesson_pick.{lesson.chapter}").set_value(key).run()
    assert_clean(app)
    return lesson


def answer(app, choice: int):
    box = next(r for r in app.radio if r.key.startswith("lesson_answer."))
    box.set_value(choice).run()
    assert_clean(app)
    return [m.value for m in (*app.success, *app.warning) if m.value.startswith(("Right.", "Not quite."))]


def numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+\.\d+", text))


def test_lessons_are_grouped_by_chapter_in_course_order(app):
    open_page(app)
    found = lessons()
    chapters = list(dict.fromkeys(lesson.chapter for lesson in found.values()))
    assert app.selectbox(key="lesson_chapter").options == chapters
    first = next(iter(found.values()))
    assert app.radio(key=f"lesson_pick.{first.chapter}").options == [
        lesson.title for lesson in found.values() if lesson.chapter == first.chapter]
    assert app.header[0].value == first.title


def test_answer_gets_feedback_with_this_runs_numbers(app):
    open_page(app)
    lesson = pick(app, "ndcg_by_hand")
    for field in lesson.describe():  # a widget per knob, at its default
        widget = [w for w in (*app.slider, *app.number_input, *app.text_input, *app.selectbox)
                  if w.key == f"lesson_knob.ndcg_by_hand.{field['name']}"]
        assert widget and widget[0].value == field["default"], field["name"]
    # a worked example needs no data, runs or page: nothing to set up
    assert not [b for b in app.button if b.label == "Set up the app for this lesson"]
    result = lesson.run()
    wrong = (result.correct + 1) % len(lesson.choices)
    feedback = answer(app, wrong)
    assert len(feedback) == 1 and feedback[0].startswith("Not quite.")
    assert f"{result.figures['ndcg_graded']:.3f}" in feedback[0]
    feedback = answer(app, result.correct)
    assert feedback == [result.feedback(result.correct)] and feedback[0].startswith("Right.")


def test_changed_knobs_change_the_verdict(app):
    open_page(app)
    pick(app, "ndcg_by_hand")
    app.text_input(key="lesson_knob.ndcg_by_hand.relevance").set_value("3, 1, 0")
    app.text_input(key="lesson_knob.ndcg_by_hand.missed").set_value("")
    next(b for b in app.button if b.label == "Run the experiment").click().run()
    assert_clean(app)
    result = get("ndcg_by_hand").run(relevance="3, 1, 0", missed="")
    assert get("ndcg_by_hand").choices[result.correct] == "It goes down"
    feedback = answer(app, 1)
    assert feedback[0].startswith("Right.") and f"{result.figures['ndcg_graded_after_swap']:.3f}" in feedback[0]


def test_a_simulation_lesson_draws_its_rounds_and_sets_up_the_simulate_page(app):
    open_page(app)
    pick(app, "position_bias")
    assert "kendall_tau" in charts(app)
    result = get("position_bias").run()
    feedback = answer(app, result.correct)
    assert feedback[0].startswith("Right.") and numbers(feedback[0]) & {f"{result.figures['tau_ipw']:.2f}"}
    next(b for b in app.button if b.label == "Set up the app for this lesson").click().run()
    assert_clean(app)
    assert app.session_state["simulate_chosen"] == "position_bias"
    assert app.session_state["simulate_knobs"]["position_bias"]["knobs"]["rounds"] == 10
    assert any("Simulate page is set to this experiment" in s.value for s in app.success)


def test_setup_trains_the_lessons_runs_once_through_the_store(app):
    open_page(app)
    pick(app, "harsh_raters")
    next(b for b in app.button if b.label == "Set up the app for this lesson").click().run()
    assert_clean(app)
    note = [s.value for s in app.success if s.value.startswith("Set up:")]
    assert note and "2 run(s) ready (2 trained now, 0 found stored)" in note[0]
    from recsys.store import ExperimentStore
    from ui import data

    stored = ExperimentStore(data.data_home() / "store").list(status="done")
    assert sorted(r.params["similarity"] for r in stored if r.model == "user_knn") == ["cosine", "pearson"]
    assert app.session_state["split_config"].seed == 42 and app.session_state["split_config"].method == "random"
    # pressed again, both runs are found stored: nothing is trained twice
    next(b for b in app.button if b.label == "Set up the app for this lesson").click().run()
    note = [s.value for s in app.success if s.value.startswith("Set up:")]
    assert "2 run(s) ready (0 trained now, 2 found stored)" in note[0]


def test_bad_knobs_are_a_message_not_a_traceback(app):
    open_page(app)
    pick(app, "harsh_raters")
    app.text_input(key="lesson_knob.harsh_raters.generous").set_value("5, 5, 4")
    next(b for b in app.button if b.label == "Run the experiment").click().run()
    assert not app.exception
    assert any("same number of films" in e.value for e in app.error)


@pytest.fixture
def room(tmp_path, monkeypatch):
    preset = tmp_path / "room.toml"
    preset.write_text('name = "Test room"\npages = ["data", "compare"]\nlessons = ["ndcg_by_hand", "peeking"]\n'
                      'uploads = false\n[split]\nmethod = "random"\ntest_fraction = 0.25\nseed = 7\n'
                      '[[models]]\nmodel = "pop"\n')
    monkeypatch.setenv("RECSYS_WORKSHOP", str(preset))
    monkeypatch.setenv("RECSYS_WORKSHOP_PREPARE", "0")
    return preset


def test_workshop_preset_limits_pages_and_lessons(app, room):
    app.run()
    assert_clean(app)
    app.switch_page(LESSONS).run()
    assert_clean(app)
    assert app.selectbox(key="lesson_chapter").options == ["Evaluation", "Online experiments"]
    assert any("Workshop: Test room" in c.value for c in app.caption)
    from ui import lessons as lesson_ui

    assert lesson_ui.uploads_allowed() is False
    # the preset's split is the sidebar's from the first page on
    assert app.session_state["split_config"].seed == 7
    assert app.session_state["split_config"].test_fraction == 0.25


def test_a_server_started_with_a_preset_prepares_its_runs_once(app, room, monkeypatch):
    monkeypatch.setenv("RECSYS_WORKSHOP_PREPARE", "1")
    app.run()
    assert_clean(app)
    from recsys.store import ExperimentStore
    from ui import data
    from ui import lessons as lesson_ui

    preparing = lesson_ui._preparation(str(room), str(data.data_home() / "store"))
    preparing.thread.join(timeout=120)
    assert preparing.error is None and preparing.done is not None and preparing.done.failed == {}
    stored = ExperimentStore(data.data_home() / "store").list(status="done")
    assert [r.model for r in stored] == ["pop"] and stored[0].split["seed"] == 7
    assert preparing.text().startswith("Workshop prepared: 1 run(s) trained now")


def test_a_preset_with_uploads_off_offers_no_uploader_on_data_or_runs(app, room):
    # the room's preset lists only data and compare, so allow the Runs page by a second preset
    room.write_text(room.read_text().replace('pages = ["data", "compare"]', 'pages = ["data", "compare", "runs"]'))
    app.run()
    assert_clean(app)
    uploaders = [w for w in app.get("file_uploader")]
    assert uploaders == []
    assert any("takes no uploads" in i.value for i in app.info)
    app.switch_page("app_pages/runs.py").run()
    assert_clean(app)
    assert [w for w in app.get("file_uploader")] == []
    assert any("Importing bundles is off" in c.value for c in app.caption)


# ------------------------------------------------------------------ every lesson through the page
# Small versions of the lessons that train networks or generate worlds, so the walk below stays quick;
# the effects at the defaults are asserted by the unit tests of each lesson.
SMALL_KNOBS = {
    "sparsity_knn": {"keep": "1, 0.5"},
    "embedding_size": {"sizes": "2, 8, 32"},
    "and_taste": {"users": 150, "items": 80, "epochs": 5},
    "overfitting_epochs": {"epochs": 6},
    "autorec_mask": {"users": 150, "items": 100, "epochs": 10},
    "sasrec_positions": {"users": 150, "items": 200, "epochs": 4},
    "magic_barrier": {"users": 200, "items": 100},
}
# set-up buttons pressed in the walk: those with at most two runs (on the bundled sample) that train in seconds
QUICK_MODELS = {"pop", "item_knn", "user_knn", "pure_svd", "ease"}
QUICK_RUNS = 2
SMALL = "Small test catalogue"


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """A 300 x 200 generated catalogue written as a MovieLens (latest) folder: ratings, titles, genres, times."""
    import pandas as pd

    from recsys.lessons.sparsity import generated_world

    ds = generated_world(300, 200, 7)
    folder = tmp_path_factory.mktemp("small") / "ml-small"
    folder.mkdir()
    pd.DataFrame({"userId": ds.user_ids[ds.user], "movieId": ds.item_ids[ds.item], "rating": ds.rating,
                  "timestamp": ds.timestamp}).to_csv(folder / "ratings.csv", index=False)
    pd.DataFrame({"movieId": ds.item_ids, "title": ds.items["title"],
                  "genres": ds.items["genres"].map("|".join)}).to_csv(folder / "movies.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    return tmp_path_factory.mktemp("lessons-home")


@pytest.fixture
def small_app(app, small_folder, shared_home, monkeypatch):
    """The app on the small catalogue with the small knobs remembered; one store for the whole walk, so a
    run trained for one lesson is reused by the next that needs it (shared fits)."""
    from ui.state import SAMPLE

    monkeypatch.setenv("RECSYS_HOME", str(shared_home))
    app.session_state["sources"] = {SAMPLE["label"]: SAMPLE,
                                    SMALL: {"kind": "path", "path": str(small_folder), "label": SMALL}}
    app.session_state["_select_dataset"] = SMALL
    app.session_state["lesson_knobs"] = SMALL_KNOBS
    return open_page(app)


def figures_shown(app) -> dict:
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["figure", "value"])
    return dict(zip(table["figure"], table["value"]))


@pytest.mark.parametrize("key", list(lessons()))
def test_every_lesson_renders_computes_and_answers(small_app, key):
    app = small_app
    lesson = pick(app, key)
    assert app.header[0].value == lesson.title
    assert app.session_state["dataset_label"] == SMALL
    figures = figures_shown(app)
    assert figures, "the run's figures are listed"
    verdicts = [answer(app, choice) for choice in range(len(lesson.choices))]
    assert all(len(v) == 1 for v in verdicts)
    right = [i for i, v in enumerate(verdicts) if v[0].startswith("Right.")]
    assert len(right) == 1, verdicts  # one answer is right, and every answer gets the same explanation
    explanations = {v[0].split(" ", 1)[1] if v[0].startswith("Right.") else v[0].split(" ", 2)[2] for v in verdicts}
    assert len(explanations) == 1 and re.search(r"\d", explanations.pop())

    setup = [b for b in app.button if b.label == "Set up the app for this lesson"]
    assert bool(setup) == bool(lesson.setup.runs or lesson.setup.page or key in _simulations())
    runs = lesson.setup.runs
    if setup and len(runs) <= QUICK_RUNS and {model for model, _ in runs} <= QUICK_MODELS:
        setup[0].click().run()
        assert_clean(app)
        note = [s.value for s in app.success if s.value.startswith("Set up:")]
        assert note and (not lesson.setup.runs or f"{len(lesson.setup.runs)} run(s) ready" in note[0])
        assert figures_shown(app)  # the lesson computes again on the set-up data


def _simulations() -> set[str]:
    from recsys.lessons import online

    return set(online.SIMULATION_OF)


def test_a_hosted_lesson_over_the_training_budget_is_refused_before_it_trains(small_app, small_folder, monkeypatch):
    from recsys import estimate
    from recsys.store import ExperimentStore
    from ui import data

    monkeypatch.setenv("RECSYS_HOSTED", "1")
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(small_folder.parent))  # the server offers the small catalogue
    monkeypatch.setattr(estimate, "LONG_FIT_SECONDS", 1e-3)
    app = small_app
    app.session_state["lesson_knobs"] = {"overfitting_epochs": {"epochs": 7}}  # a run no other test stored
    app.selectbox(key="lesson_chapter").set_value(get("overfitting_epochs").chapter).run()
    assert not app.exception
    assert any("training may take on this shared server" in e.value for e in app.error), \
        [e.value for e in app.error]
    stored = ExperimentStore(data.data_home() / "store").list()
    assert not [r for r in stored if r.model == "ncf_gmf" and r.params.get("epochs") == 7]
