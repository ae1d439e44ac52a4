"""Lessons page: the course's questions as experiments. Pick a lesson, read its framing, set the app up for
it, change its knobs, look at the live result and answer; the feedback quotes this run's numbers.

Every lesson is computed by recsys.lessons; this page reads the widgets, calls it (ui.lessons caches the
result by lesson, knobs and dataset) and draws what it returns.
"""

from __future__ import annotations

import streamlit as st

from recsys.lessons.base import lessons
from ui import lessons as lesson_ui
from ui import pages
from ui import simulate as sim
from ui.errors import attempt, shown_errors
from ui.text import md_escape

st.title("Lessons")
st.caption("Each lesson is one question of the course, answered by an experiment you run here: the feedback "
           "explains the answer with the numbers your run produced.")

preset = lesson_ui.workshop()
if preset is not None:
    st.caption(f"Workshop: {md_escape(preset.name)}")
    preparing = lesson_ui.preparation(preset)
    if preparing is not None and (preparing.done is None or preparing.done.failed or preparing.error):
        st.info(preparing.text(), icon=":material/hourglass_top:")

shown = lesson_ui.shown_lessons(attempt("Loading the lessons", lessons), preset)
if not shown:
    st.info("This workshop shows no lessons.")
    st.stop()
grouped = lesson_ui.chapters(shown)
chosen = st.session_state.get(lesson_ui.CHOSEN)
chosen = chosen if chosen in shown else next(iter(shown))

picker, body = st.columns([1, 3], gap="large")
with picker:
    chapter_names = list(grouped)
    chapter = st.selectbox("Chapter", chapter_names, index=chapter_names.index(shown[chosen].chapter),
                           key="lesson_chapter")
    in_chapter = grouped[chapter]
    key = st.radio("Lesson", in_chapter, format_func=lambda k: shown[k].title, key=f"lesson_pick.{chapter}",
                   index=in_chapter.index(chosen) if chosen in in_chapter else 0)
st.session_state[lesson_ui.CHOSEN] = key
lesson = shown[key]

with body:
    st.header(lesson.title)
    st.markdown(lesson.framing)

    knobs = lesson_ui.remembered_knobs(key)
    with st.expander("Knobs of this experiment", expanded=True), st.form(f"lesson_form.{key}"):
        submitted = sim.knob_widgets(lesson.describe(), f"lesson_knob.{key}", knobs, columns=2)
        if st.form_submit_button("Run the experiment", type="primary", icon=":material/play_arrow:"):
            knobs = submitted
            lesson_ui.remember_knobs(key, knobs)

    setup_note = st.session_state.setdefault(lesson_ui.SET_UP, {}).get(key)
    if lesson_ui.has_setup(lesson) and st.button(
            "Set up the app for this lesson", icon=":material/tune:", key=f"lesson_setup.{key}",
            help="Selects the lesson's dataset and split in the sidebar, trains its runs (or finds them "
                 "stored) and prepares the page to look at next."):
        with shown_errors(f"Setting the app up for {lesson.title}"):
            st.session_state[lesson_ui.SET_UP][key] = lesson_ui.apply_setup(lesson, knobs)
            st.rerun()  # the sidebar shows the lesson's dataset and split
    if setup_note:
        st.success(setup_note, icon=":material/check_circle:")
        target = lesson_ui.page_file(lesson)
        if target is not None:
            pages.link(target, label=f"Open the {lesson.setup.page.capitalize()} page", icon=":material/arrow_forward:")

    result = None
    with shown_errors(f"Running {lesson.title}"), st.spinner("Running the experiment…"):
        result = lesson_ui.run_lesson(key, knobs)
    if result is None:
        st.stop()  # the message says what to change

    st.subheader("Your question")
    # a new experiment asks the question afresh: the answer is keyed by the knobs it was given for
    answer_key = f"lesson_answer.{lesson_ui.result_id(key, lesson_ui.all_knobs(lesson, knobs), '')}"
    choice = st.radio(lesson.question, range(len(lesson.choices)), format_func=lambda i: lesson.choices[i],
                      index=None, key=answer_key)
    if choice is not None:
        feedback = result.feedback(choice)
        (st.success if choice == result.correct else st.warning)(feedback)

    st.subheader("What this run produced")
    lesson_ui.show_tables(result)
    with st.expander("Every figure of this run"):
        st.dataframe(lesson_ui.figures_table(result.figures), hide_index=True, width="stretch")
