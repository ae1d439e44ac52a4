"""EASE against the optimality conditions of its own objective (not against a copy of its formula)."""

import numpy as np
import pandas as pd

from recsys.data import Dataset
from recsys.models import create


def test_ease_solves_its_constrained_ridge_problem():
    # min ||X - XB||² + λ||B||²  s.t. diag(B) = 0  <=>  (G + λI)B - G is diagonal (Lagrange multipliers)
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 12)) < 0.35).astype(float)
    dense[:, 0] = 1
    u, i = np.nonzero(dense)
    ds = Dataset.from_frame(pd.DataFrame({"user": u, "item": i}), rating=None)
    lam = 3.0
    b = np.asarray(create("ease", lam=lam).fit(ds).weights_, dtype=np.float64)
    gram = dense.T @ dense
    residual = (gram + lam * np.eye(12)) @ b - gram
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
