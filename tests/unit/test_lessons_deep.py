"""The deep-model lessons: AutoRec's masked loss and SASRec's causal mask and positions.

Each lesson's default run must show the effect it teaches, its verdict must follow the
numbers it produced, and the two switches must leave the models' defaults (and so the
stored runs) as they were.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.data.errors import DataError
from recsys.data.split import SplitConfig, make_split
from recsys.experiment import RunSpec
from recsys.lessons import autoencoders as ae
from recsys.lessons import lessons
from recsys.lessons import sequential as sq
from recsys.models.registry import create
from recsys.store import run_id_for


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the machine's cores are shared: one torch thread per test run, restored afterwards
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mask_result():
    return lessons()["autorec_mask"].run()


@pytest.fixture(scope="module")
def positions_result():
    return lessons()["sasrec_positions"].run()


def test_the_lessons_sit_in_course_order():
    keys = list(lessons())
    assert keys.index("and_taste") < keys.index("autorec_mask") < keys.index("layers_are_hops")
    assert keys.index("layers_are_hops") < keys.index("sasrec_positions") < keys.index("ndcg_by_hand")


# ------------------------------------------------------------------ AutoRec's mask
def test_unmasked_autorec_predicts_near_zero_where_nobody_rated(mask_result):
    f = mask_result.figures
    assert f["unmasked_unobserved"] < 0.25 * f["rating_mean"]
    assert abs(f["masked_unobserved"] - f["rating_mean"]) < 0.5
    assert f["masked_rmse"] < f["unmasked_rmse"] - 0.5
    assert mask_result.correct == ae.NEAR_ZERO
    assert f"{f['unmasked_unobserved']:.2f}" in mask_result.explanation
    assert f"{f['masked_rmse']:.3f}" in mask_result.explanation


@pytest.mark.parametrize(("masked", "unmasked", "expected"), [
    (2.5, 0.3, ae.NEAR_ZERO), (2.5, 2.4, ae.USUAL), (2.5, 2.9, ae.HIGHER),
])
def test_the_mask_verdict_follows_the_numbers(masked, unmasked, expected):
    assert ae.verdict(masked, unmasked, rating_mean=2.8) == expected


def test_the_mask_is_what_changes_the_loss():
    ds = ae.rating_world(80, 40, 1)
    train = make_split(ds, SplitConfig()).train
    losses = {}
    for masked in (True, False):
        model = create("autorec", masked=masked, embedding_size=8, epochs=1)
        model.fit(train)
        # same seed and the same weights at the start: evaluate both losses on one batch
        torch.manual_seed(0)
        model.module_ = model._build(train).to(model.device_)
        with torch.no_grad():
            losses[masked] = float(model._loss((torch.arange(ds.n_items, device=model.device_),)))
    # the unmasked error adds the squared output at every empty cell, so it is strictly larger
    assert losses[False] > losses[True]


# ------------------------------------------------------------------ SASRec's mask and positions
def test_sasrec_never_attends_to_a_later_position(positions_result):
    attention = positions_result.tables["Where each position looks (positions on)"].to_numpy()
    assert positions_result.figures["future_attention"] == 0.0
    assert np.all(np.triu(attention, 1) == 0.0)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(np.diag(attention) > 0)


def test_the_positions_verdict_follows_the_numbers(positions_result):
    f = positions_result.figures
    assert positions_result.correct == sq.verdict(f["hr_on"], f["hr_off"])
    assert f"{f['hr_on']:.3f}" in positions_result.explanation
    assert f"{f['hr_off']:.3f}" in positions_result.explanation
    # the walks are learnable: far above a random pick of 10 among the row's films
    assert min(f["hr_on"], f["hr_off"]) > 0.3
    assert sq.verdict(0.8, 0.6) == sq.WORSE and sq.verdict(0.8, 0.78) == sq.SAME and sq.verdict(0.6, 0.8) == sq.BETTER


def test_sasrec_without_positions_has_no_position_table_and_keeps_the_mask():
    ds = sq.walk_log(60, 80, 8, 3, 0)
    model = create("sasrec", positions=False, embedding_size=8, epochs=1, max_len=8).fit(ds)
    assert model.module_.position is None
    assert create("sasrec", embedding_size=8, epochs=1, max_len=8).fit(ds).module_.position is not None
    weights = model.attention(ds.histories_in_time_order().of(0))
    assert weights.shape[-1] == 8 and np.all(np.triu(weights, 1) == 0.0)


def test_a_walk_longer_than_the_row_is_refused():
    with pytest.raises(DataError, match="add films or shorten"):
        sq.walk_log(10, 50, 20, 5, 0)


# ------------------------------------------------------------------ stored runs keep their ids
@pytest.mark.parametrize(("model", "new", "off"), [("autorec", "masked", False), ("sasrec", "positions", False)])
def test_a_new_switch_at_its_default_keeps_the_run_ids(model, new, off):
    split = {"method": "random", "test_fraction": 0.2, "seed": 42}
    spec = RunSpec.make("fingerprint", split, model, {})
    # how these runs were hashed before the switch existed: no such field, the first names
    before = {("hidden" if name == "embedding_size" else name): value
              for name, value in spec.params.items() if name != new}
    assert spec.run_id == run_id_for("fingerprint", SplitConfig.coerce(split).to_dict(), model, before, 42)
    assert RunSpec.make("fingerprint", split, model, {new: off}).run_id != spec.run_id
