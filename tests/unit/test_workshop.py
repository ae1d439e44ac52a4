"""Workshop mode: the shipped preset reads and names every lesson; preparing a preset into a store
leaves nothing for the lessons to train; bad presets are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys import workshop
from recsys.__main__ import main
from recsys.data.errors import DataError
from recsys.lessons import Context, lessons
from recsys.lessons.base import get

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "workshop.toml"
# a small preset for the preparation test: a model on the sample, a lesson with setup runs on the sample,
# one that trains in its own generated world, a worked example and two simulations (about 20 s here)
SMALL = """
name = "test room"
uploads = false
pages = ["data", "train"]
lessons = ["harsh_raters", "magic_barrier", "ndcg_by_hand", "peeking", "position_bias"]
[split]
method = "random"
test_fraction = 0.2
seed = 42
[[models]]
model = "pop"
"""


def test_the_shipped_preset_holds_every_lesson_and_page():
    preset = workshop.load(SHIPPED)
    assert preset.lessons == tuple(lessons())
    assert preset.pages == workshop.PAGES and preset.uploads is False
    assert preset.dataset == "sample" and preset.split_config().method == "random"
    assert {model for model, _ in preset.models} >= {"pop", "item_knn", "user_knn", "mf_sgd"}


def test_cli_check_reads_the_shipped_preset(capsys):
    assert main(["workshop", "check", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert f"{len(lessons())} lesson(s)" in out and "uploads off" in out


def test_prepared_lessons_train_nothing_when_opened(tmp_path, store):
    path = tmp_path / "room.toml"
    path.write_text(SMALL)
    preset = workshop.load(path)
    assert preset.pages == ("data", "train", "lessons")  # chosen lessons stay reachable
    done = workshop.prepare(preset, store)
    assert done.failed == {}
    # pop, user_knn with cosine and with pearson (harsh raters' setup), mf_sgd and item_knn (the barrier)
    assert len(done.trained) == 5 and set(done.lesson_seconds) == set(preset.lessons)
    for key in preset.lessons:
        lesson = get(key)
        context = Context(dataset=workshop_dataset(lesson), store=store)
        lesson.run(context)
        assert context.fits == [], key
        for model, params in lesson.setup.runs:
            context.train(workshop_dataset(lesson), lesson.setup.split, model, params)
        assert context.fits == [], key
    again = workshop.prepare(preset, store)
    assert again.trained == [] and again.reused == 3


def workshop_dataset(lesson):
    from recsys.data import load

    return load(lesson.setup.dataset)


@pytest.mark.parametrize("text, message", [
    ("colour = 'red'", "unknown key"),
    ("lessons = ['no_such_lesson']", "unknown lesson"),
    ("pages = ['nowhere']", "unknown page"),
    ("[[models]]\nmodel = 'item_knn'\nparams = { no_such_param = 1 }", "no_such_param"),
    ("[[models]]\nparams = {}", "needs a 'model' key"),
    ("[split]\nmethod = 'sideways'", "sideways"),
    ("name = ", "not valid TOML"),
])
def test_bad_presets_are_refused_with_the_fix(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        workshop.load(path)


def test_missing_preset_is_named():
    with pytest.raises(DataError, match="no workshop preset"):
        workshop.load("does-not-exist.toml")


def test_the_preset_is_named_by_flag_or_environment():
    assert workshop.named(["app.py", "--workshop", "room.toml"], {}) == "room.toml"
    assert workshop.named(["app.py", "--workshop=room.toml"], {"RECSYS_WORKSHOP": "other.toml"}) == "room.toml"
    assert workshop.named(["app.py"], {"RECSYS_WORKSHOP": " other.toml "}) == "other.toml"
    assert workshop.named(["app.py"], {}) is None


def test_a_relative_dataset_is_read_beside_the_preset(tmp_path):
    path = tmp_path / "room.toml"
    path.write_text("dataset = 'data/ratings.csv'\nlessons = []")
    preset = workshop.load(path)
    assert preset.dataset == str(tmp_path / "data" / "ratings.csv")
    assert preset.lessons == () and "lessons" in preset.pages


# ------------------------------------------------------------------ README lists every lesson
README = REPO_ROOT / "README.md"
BEGIN, END = "<!-- lessons: generated from recsys.lessons.lessons() -->", "<!-- /lessons -->"


def lesson_table() -> str:
    """The README's list of lessons, in course order (regenerate it from here when a lesson is added)."""
    rows = [BEGIN, "", "| chapter | lesson | key | the question |", "|---|---|---|---|"]
    for key, lesson in lessons().items():
        rows.append(f"| {lesson.chapter} | {lesson.title} | `{key}` | {lesson.question.replace('|', '/')} |")
    return "\n".join([*rows, "", END])


def test_readme_lists_every_lesson_in_course_order():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README.md needs its generated list of lessons"
    shown = text[text.index(BEGIN): text.index(END) + len(END)]
    assert shown == lesson_table(), f"README.md's list of lessons is out of date; replace it with:\n{lesson_table()}"
