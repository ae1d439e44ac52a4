"""EASE against the optimality conditions of its own objective (not against a copy of its formula)."""

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.models import create
from recsys.models.factorization import spd_inverse_inplace


def test_ease_solves_its_constrained_ridge_problem():
    # min ||X - XB||² + λ||B||²  s.t. diag(B) = 0  <=>  (G + λI)B - G is diagonal (Lagrange multipliers)
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 12)) < 0.35).astype(float)
    dense[:, 0] = 1
    u, i = np.nonzero(dense)
    ds = Dataset.from_frame(pd.DataFrame({"user": u, "item": i}), rating=None)
    reg = 3.0
    b = np.asarray(create("ease", reg=reg).fit(ds).weights_, dtype=np.float64)
    gram = dense.T @ dense
    residual = (gram + reg * np.eye(12)) @ b - gram
    off_diagonal = residual - np.diag(np.diag(residual))
    np.testing.assert_allclose(off_diagonal, 0.0, atol=1e-4)
    np.testing.assert_allclose(np.diag(b), 0.0)


def test_ease_score_history_equals_score_for_a_users_own_items():
    rng = np.random.default_rng(1)
    u, i = np.nonzero(rng.random((30, 15)) < 0.4)
    ds = Dataset.from_frame(pd.DataFrame({"user": u, "item": i}), rating=None)
    model = create("ease").fit(ds)
    user = 4
    np.testing.assert_allclose(model.score_history(ds.positives[user].indices), model.score([user])[0], rtol=1e-5)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [1, 7, 300, 513])
def test_in_place_cholesky_inverse_matches_the_general_inverse(n, order):
    rng = np.random.default_rng(n)
    x = rng.random((n + 5, n))
    spd = x.T @ x + 0.5 * np.eye(n)
    expected = np.linalg.inv(spd)
    work = spd.copy(order=order)
    got = spd_inverse_inplace(work, block=128)  # blocks smaller than n exercise the mirroring
    assert np.shares_memory(got, work), "no second n x n array"
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())
    assert np.array_equal(got, got.T)


def test_in_place_inverse_refuses_a_matrix_that_is_not_positive_definite():
    with pytest.raises(ValueError, match="not positive definite"):
        spd_inverse_inplace(np.diag([1.0, -2.0, 3.0]))


def test_ease_weights_are_row_major_for_fast_scoring():
    rng = np.random.default_rng(2)
    u, i = np.nonzero(rng.random((30, 15)) < 0.4)
    ds = Dataset.from_frame(pd.DataFrame({"user": u, "item": i}), rating=None)
    weights = create("ease").fit(ds).weights_
    assert weights.dtype == np.float32 and weights.flags.c_contiguous
