"""The Train page's waits and validation, run through app.py with AppTest.

Before a training the page says how long it should take on this data (a timed probe,
recsys.estimate); a setting over a minute is announced with a quick setting computed for the
data; while a model trains, its time per epoch and the time left are on its progress bar from
the start. A split with a validation part brings patience, the validation curve and the best
epoch; without one, patience is explained instead of offered.
"""

from __future__ import annotations

import re
import time

from recsys.models import registry
from tests.app.test_pages import TRAIN, assert_clean, charts, sidebar_widget, submit, wait_for_training
from ui import identity, jobs
from ui.text import md_unescape

ESTIMATE = r"(about \d+ (s|min|h)( \d+ (s|min))?|under a second)"
EXPECTED = re.compile(rf"^Expected on this data: {ESTIMATE}( \([\d.]+ s per epoch × (?P<epochs>\d+) epochs\))?, "
                      r"timed on \d+% of the training interactions\.$")
# a running job's pace (estimated before its first epoch ends, measured after), or a queued job's wait
PACE = re.compile(rf"[\d.]+ s per epoch( \(estimated\))? · ({ESTIMATE} left|almost done)|then takes")


def train_page(app, models: list[str]):
    app.run()
    app.switch_page(TRAIN).run()
    app.multiselect(key="train_models").set_value(models).run()
    assert_clean(app)
    return app


def expected_captions(app) -> list[re.Match]:
    return [m for c in app.caption if (m := EXPECTED.match(c.value))]


def progress_texts(app) -> list[str]:
    return [p.proto.text for p in app.get("progress")]


def cancel_all(app) -> None:
    for button in [b for b in app.button if b.label == "Cancel"]:
        button.click().run()


def test_an_estimate_before_training_and_on_the_progress_bar_from_the_first_epoch(app):
    train_page(app, ["mult_vae"])
    label, epochs = registry["mult_vae"].label, registry["mult_vae"].Params().epochs
    # the form's setting, timed before anything trains: in the panel's title, and in its caption (or its
    # warning, for a setting over a minute)
    [panel] = app.expander
    assert re.search(rf" · {ESTIMATE}$", panel.label), panel.label
    said = [m.value for m in [*app.caption, *app.warning] if re.search(rf"× {epochs} epochs\)", m.value)]
    assert len(said) == 1, [c.value for c in app.caption]
    app.number_input(key="param_mult_vae.epochs").set_value(3)
    submit(app, f"Train {label}")
    [first] = progress_texts(app)  # drawn right after queueing: the first epoch has not ended
    assert first.startswith(f"{label}: ") and PACE.search(first), first
    seen = [first]
    deadline = time.monotonic() + 120
    while [m for m in app.success if m.value.startswith(f"{label}: NDCG@10")] == [] and not app.error:
        assert time.monotonic() < deadline, "Mult-VAE still training"
        time.sleep(0.3)
        app.run()
        seen += progress_texts(app)
    assert_clean(app)
    training = [t for t in seen if " epoch " in t and "evaluating" not in t and "saving" not in t]
    assert training and all(PACE.search(t) for t in training), training
    # once an epoch has ended the pace is measured, not estimated
    measured = [t for t in training if re.match(rf"{label}: epoch [123] of 3", t)]
    assert all("(estimated)" not in t for t in measured), measured


def test_a_setting_over_a_minute_is_announced_with_a_quick_setting_for_this_data(app):
    train_page(app, ["bpr_mf"])
    app.number_input(key="param_bpr_mf.epochs").set_value(1000)
    submit(app, "Train BPR-MF")  # the form now holds 1,000 epochs (this training is cancelled at once)
    cancel_all(app)
    [warning] = [md_unescape(w.value) for w in app.warning if "over a minute" in w.value]
    match = re.fullmatch(rf"BPR-MF as set would take {ESTIMATE} \([\d.]+ s per epoch × 1000 epochs\) on this data: "
                         r"over a minute \(timed on \d+% of the training interactions\)\. A quick setting for this data: epochs 1000 → (?P<epochs>\d+)"
                         rf"(, \w+ \d+ → \d+)*, {ESTIMATE} \([\d.]+ s per epoch × (?P=epochs) epochs\)\.", warning)
    assert match, warning
    quick_epochs = int(match["epochs"])
    assert 1 <= quick_epochs < 1000
    [quick] = [b for b in app.button if b.label.startswith("Train the quick setting")]
    quick.click().run()
    assert_clean(app)
    # the quick setting fills the form and is what trains
    assert app.number_input(key="param_bpr_mf.epochs").value == quick_epochs
    [job] = [j for j in jobs.board().jobs_of(identity.token_owner(app.session_state["_visitor_token"]))
             if not j.finished_running]
    assert job.spec["params"]["epochs"] == quick_epochs
    cancel_all(app)


def test_without_a_validation_part_patience_is_explained_instead_of_offered(app):
    train_page(app, ["bpr_mf"])
    assert "param_bpr_mf.patience" not in [w.key for w in app.number_input]
    assert any(c.value.startswith("Early stopping (patience) needs a validation part") for c in app.caption)
    assert any("no validation part" in c.value for c in app.caption)


def test_a_validation_part_brings_patience_the_curve_and_the_best_epoch(app):
    train_page(app, ["bpr_mf"])
    sidebar_widget(app, "checkbox", "Validation part").check().run()
    assert_clean(app)
    assert app.session_state["split_config"].validation is True
    assert not any(c.value.startswith("Early stopping (patience)") for c in app.caption)
    assert any(re.search(r"· [\d,]+ validation interactions ·", c.value) for c in app.caption)
    app.number_input(key="param_bpr_mf.epochs").set_value(8)
    app.number_input(key="param_bpr_mf.patience").set_value(2)
    submit(app, "Train BPR-MF")
    assert len(wait_for_training(app, "BPR-MF")) == 1
    assert_clean(app)
    [best] = [i.value for i in app.info if i.value.startswith("BPR-MF: best validation NDCG@10")]
    match = re.fullmatch(r"BPR-MF: best validation NDCG@10 (?P<value>\d\.\d{4}) at epoch (?P<epoch>\d+) of the "
                         r"(?P<trained>\d+) trained; that epoch's model is the one kept and evaluated\.", best)
    assert match, best
    epoch, trained = int(match["epoch"]), int(match["trained"])
    assert 1 <= epoch <= trained <= 8
    if trained < 8:  # stopped by patience: no better epoch in the last two
        assert trained - epoch == 2
    table = app.dataframe[0].value
    assert list(table["best epoch"]) == [epoch]
    assert list(table["split"]) == ["random 80/20 holdout, with a validation part"]
    assert "Validation NDCG@10 by epoch" in charts(app) and "Training loss by epoch" in charts(app)


def test_the_pace_is_estimated_until_an_epoch_ends_then_measured():
    from recsys.estimate import FitEstimate
    from recsys.jobs import RUNNING, Job

    now = [100.0]
    guess = FitEstimate(fixed=1.0, per_epoch=2.0, epochs=20, scoring=1.0, sample_share=0.2, probe_seconds=0.4)
    job = Job({"run_id": "r", "model": "bpr_mf", "label": "BPR-MF"}, None, {}, estimate=guess, clock=lambda: now[0])
    job.status, job.started = RUNNING, 100.0
    assert jobs.pace_text(job) == "2.0 s per epoch (estimated) · about 42 s left"
    now[0] = 104.0
    job.progress(1, 20, {"loss": 0.7})  # the first epoch took 4 s, setup included
    assert jobs.pace_text(job) == "4.0 s per epoch · about 1 min 20 s left"  # 19 x 4 s + 1 s of scoring
    now[0] = 107.0
    job.progress(2, 20, {"loss": 0.6})
    assert jobs.pace_text(job) == "3.0 s per epoch · about 55 s left"  # 18 x 3 s + 1 s
