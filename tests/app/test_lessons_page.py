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
