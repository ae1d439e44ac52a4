"""Factorization-family models with closed-form fits (EASE)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.models.base import param
from recsys.models.neighborhood import ItemSimilarityModel
from recsys.models.registry import register


@register
class EASE(ItemSimilarityModel):
    """Embarrassingly Shallow Autoencoder (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, diag(B) = 0."""

    key = "ease"
    label = "EASE"
    family = "factorization"
    description = "A closed-form item-to-item linear model: one matrix inverse, often the strongest baseline."

    @dataclass
    class Params:
        lam: float = param(500.0, help="L2 regularisation λ: larger = smoother, more popular items.",
                           low=1.0, high=100000.0, log=True)

    def _similarity(self, train, progress):
        x = train.positives
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.params.lam
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        progress(1, 1)
        return weights.astype(np.float32)
