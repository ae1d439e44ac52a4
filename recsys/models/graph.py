"""Graph family: LightGCN (He et al. 2020) on the user–item bipartite graph.

The graph has one node per user and per item and an edge per consumed (user, item) pair.
Embeddings are smoothed over it by K rounds of symmetric-normalised propagation
Â = D^-1/2 A D^-1/2 with no weights and no non-linearity, and the layers are averaged:
e = (e⁽⁰⁾ + … + e⁽ᴷ⁾) / (K + 1). Training is BPR on the averaged embeddings with L2 on the
ego (layer-0) embeddings of the batch. With K = 0 this is exactly BPR matrix factorization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recsys.models.base import FLOAT32, embedding_bytes, param, with_defaults
from recsys.models.latent import FactorizationModel
from recsys.models.registry import register
from recsys.models.training import PositivePairs, TorchModel, TorchParams, csr_to_torch


def normalised_adjacency(positives: sp.csr_matrix) -> sp.csr_matrix:
    """Â = D^-1/2 A D^-1/2 of the bipartite graph; users are nodes 0..U-1, items U..U+I-1."""
    n_users, n_items = positives.shape
    x = (positives > 0).astype(np.float32)
    adjacency = sp.bmat([[None, x], [x.T, None]], format="csr")               # (U+I, U+I)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5                          # isolated nodes stay 0
    scale = sp.diags(inv_sqrt)
    return (scale @ adjacency @ scale).tocsr().astype(np.float32)


class _SymmetricPropagate(torch.autograd.Function):
    """y = Â x for a fixed symmetric sparse Â. Since Âᵀ = Â the gradient is Â g: one more
    sparse product, instead of autograd's generic sparse backward (several times slower)."""

    @staticmethod
    def forward(ctx, adjacency, x):
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adjacency @ grad


class _LightGCN(torch.nn.Module):
    def __init__(self, n_users: int, n_items: int, factors: int, layers: int, adjacency: torch.Tensor):
        super().__init__()
        self.n_users, self.layers = n_users, layers
        self.ego = torch.nn.Embedding(n_users + n_items, factors)            # (U+I, d), layer 0
        torch.nn.init.normal_(self.ego.weight, std=0.1)
        self.adjacency = adjacency                                            # sparse (U+I, U+I)

    def layer_outputs(self) -> list[torch.Tensor]:
        """[e⁽⁰⁾, e⁽¹⁾, …, e⁽ᴷ⁾], each (U+I, d)."""
        out = [self.ego.weight]
        for _ in range(self.layers):
            out.append(_SymmetricPropagate.apply(self.adjacency, out[-1]))
        return out

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        # mean over layers -> users (U, d), items (I, d)
        final = torch.stack(self.layer_outputs()).mean(dim=0)
        return final[: self.n_users], final[self.n_users:]


@register
class LightGCN(PositivePairs, FactorizationModel, TorchModel):
    """LightGCN: BPR-trained embeddings smoothed over the user–item graph."""

    key = "lightgcn"
    label = "LightGCN"
    family = "graph"
    description = "Graph convolution without the extras: embeddings averaged over 1–3 hops of the user–item graph."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=120, batch_size=16384, lr=0.01)):
        embedding_size: int = param(64, help="Embedding size d.", low=1, high=1024, log=True)
        legacy_names = {"factors": "embedding_size"}
        layers: int = param(3, help="Propagation layers K (hops over the graph); 0 = plain BPR-MF.",
                            low=0, high=6)
        reg: float = param(1e-3, help="L2 penalty on the ego (layer-0) embeddings of each triple.",
                           low=0.0, high=1.0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # the trained ego table, every layer's propagated (U + I) x d output kept for backward (and
        # its gradient), and the symmetric normalised adjacency in both directions
        rows, d = n_users + n_items, params["embedding_size"]
        propagation = (params["layers"] + 1) * rows * d * FLOAT32 * 3
        return {"fit": embedding_bytes(rows, d) + propagation + n_interactions * 4 * 12,
                "kept": rows * d * FLOAT32 * 2 + n_interactions * 4 * 12}

    def _prepare(self, train):
        super()._prepare(train)
        self.adjacency_ = normalised_adjacency(train.positives)

    def _build(self, train):
        adjacency = csr_to_torch(self.adjacency_, self.device_)
        return _LightGCN(train.n_users, train.n_items, self.params.embedding_size, self.params.layers, adjacency)

    def _loss(self, batch):
        users, pos, neg = batch
        m = self.module_
        user_final, item_final = m()
        diff = (user_final[users] * (item_final[pos] - item_final[neg])).sum(-1)
        ego = m.ego.weight
        # the squared norms of the batch's ego rows, each row weighted by how often the batch holds
        # it: the same sum as indexing the rows, without copying (and scattering back) 3 x batch rows
        rows = torch.cat([users, m.n_users + pos, m.n_users + neg])
        uses = torch.bincount(rows, minlength=len(ego)).to(ego.dtype)                   # (U+I,)
        penalty = (uses @ ego.pow(2).sum(1)) / (2 * len(users))
        return -torch.nn.functional.logsigmoid(diff).mean() + self.params.reg * penalty

    def _score_batch(self, users):
        user_final, item_final = self._final
        return user_final[users] @ item_final.T

    def _train_epoch(self, train, optimizer, rng, epoch):
        self._final_cache = None
        return super()._train_epoch(train, optimizer, rng, epoch)

    @property
    def _final(self):
        """Propagated embeddings for scoring, computed once per evaluation (the graph is fixed)."""
        if getattr(self, "_final_cache", None) is None:
            with torch.no_grad():
                self._final_cache = self.module_()
        return self._final_cache

    def _finish(self, train):
        self._final_cache = None
        with torch.no_grad():
            layers = [t.cpu().numpy() for t in self.module_.layer_outputs()]
        self.layer_embeddings_ = layers
        final = np.mean(layers, axis=0)
        self.user_factors_, self.item_factors_ = final[: train.n_users], final[train.n_users:]
        self._final_cache = None

    def layer_embeddings(self, layer: int, combined: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) after ``layer`` propagation steps; ``combined`` = the mean of layers 0..layer
        (what the model scores with when layer = K)."""
        if not 0 <= layer <= self.params.layers:
            raise ValueError(f"layer must be in 0..{self.params.layers}; got {layer}")
        chosen = np.mean(self.layer_embeddings_[: layer + 1], axis=0) if combined else self.layer_embeddings_[layer]
        n_users = self.train_.n_users
        return chosen[:n_users], chosen[n_users:]

    def score_history(self, items) -> np.ndarray:
        """Fold-in: a new user node linked to ``items``, propagated through the trained graph.

        Its ego embedding is unknown (zero); at layer k+1 it receives Σ_i e_i⁽ᵏ⁾ / sqrt(d_u d_i)
        from its items. Its own effect on the items' embeddings is left out: one person among
        hundreds barely moves them.
        """
        items = np.unique(np.asarray(items, dtype=np.int64))
        n_users = self.train_.n_users
        item_degree = np.asarray(self.train_.positives.sum(axis=0)).ravel()[items] + 1.0   # +1: the new edge
        weights = (1.0 / np.sqrt(len(items) * item_degree)).astype(np.float32)
        user_layers = [np.zeros(self.params.embedding_size, dtype=np.float32)]
        for layer in range(self.params.layers):
            user_layers.append(weights @ self.layer_embeddings_[layer][n_users + items])
        user = np.mean(user_layers, axis=0)
        return (self.item_factors_ @ user).astype(np.float32)
