"""Factorization family: EASE and PureSVD (closed form), iALS (alternating least squares),
BPR-MF and biased MF (gradient training on the shared torch loop)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys.models.base import param
from recsys.models.latent import FactorizationModel
from recsys.models.neighborhood import ItemSimilarityModel
from recsys.models.registry import register
from recsys.models.training import NegativeSampler, TorchModel, TorchParams, minibatches


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


# ---------------------------------------------------------------------------- BPR-MF


class _DotProductMF(torch.nn.Module):
    """User and item embeddings (+ an item bias); score = u · i + b_i."""

    def __init__(self, n_users: int, n_items: int, factors: int, init_std: float):
        super().__init__()
        self.user = torch.nn.Embedding(n_users, factors)      # (U, d)
        self.item = torch.nn.Embedding(n_items, factors)      # (I, d)
        self.item_bias = torch.nn.Embedding(n_items, 1)       # (I, 1)
        for table in (self.user, self.item):
            torch.nn.init.normal_(table.weight, std=init_std)
        torch.nn.init.zeros_(self.item_bias.weight)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # users (B,), items (B,) or (B, n) -> scores of the same shape as items
        u = self.user(users)
        i = self.item(items)
        if items.dim() == 2:
            return (i @ u.unsqueeze(-1)).squeeze(-1) + self.item_bias(items).squeeze(-1)
        return (u * i).sum(-1) + self.item_bias(items).squeeze(-1)


@register
class BPRMF(FactorizationModel, TorchModel):
    """Bayesian Personalised Ranking (Rendle et al. 2009) with matrix factorization.

    Each step takes (user, consumed item, sampled unconsumed item) triples and maximises
    log σ(x_ui − x_uj), with L2 on the three embeddings involved.
    """

    key = "bpr_mf"
    label = "BPR-MF"
    family = "factorization"
    description = "Matrix factorization trained to rank each consumed item above a random unconsumed one."

    @dataclass
    class Params(TorchParams):
        factors: int = param(64, help="Embedding size d.", low=1, high=1024, log=True)
        reg: float = param(1e-4, help="L2 penalty on the user and item vectors of each triple.",
                           low=0.0, high=1.0)
        negatives: str = param("uniform", help="How negatives are drawn: uniformly, or in proportion to "
                                               "popularity^0.75 (harder negatives, less popularity bias).",
                               choices=("uniform", "popularity"))
        epochs: int = param(30, help="Passes over the training interactions.", low=1, high=1000)
        batch_size: int = param(1024, help="Triples per gradient step.", low=1, high=65536, log=True)
        lr: float = param(5e-3, help="Adam learning rate.", low=1e-5, high=1.0, log=True)

    def _prepare(self, train):
        super()._prepare(train)
        pos = train.positives.tocoo()
        self.pairs_ = (pos.row.astype(np.int64), pos.col.astype(np.int64))
        self.sampler_ = NegativeSampler(train, 0.75 if self.params.negatives == "popularity" else 0.0)

    def _build(self, train):
        return _DotProductMF(train.n_users, train.n_items, self.params.factors, init_std=0.1)

    def _batches(self, train, rng):
        users, items = self.pairs_
        for idx in minibatches(len(users), self.params.batch_size, rng):
            u = users[idx]
            yield u, items[idx], self.sampler_.sample(u, rng)[:, 0]

    def _loss(self, batch):
        users, pos, neg = batch
        m = self.module_
        diff = m(users, pos) - m(users, neg)
        reg = (m.user(users).pow(2).sum() + m.item(pos).pow(2).sum() + m.item(neg).pow(2).sum()) / len(users)
        return -torch.nn.functional.logsigmoid(diff).mean() + self.params.reg * reg

    def _score_batch(self, users):
        m = self.module_
        return m.user(users) @ m.item.weight.T + m.item_bias.weight.T

    def _finish(self, train):
        m = self.module_
        self.user_factors_ = m.user.weight.detach().cpu().numpy()
        self.item_factors_ = m.item.weight.detach().cpu().numpy()
        self.item_bias_ = m.item_bias.weight.detach().cpu().numpy().ravel()
