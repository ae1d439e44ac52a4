"""Models that score by a dot product of user and item vectors (MF, iALS, BPR, SVD, LightGCN)."""

from __future__ import annotations

import numpy as np

from recsys.models.base import Recommender


def cosine_neighbours(vectors: np.ndarray, item: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k rows most cosine-similar to row ``item`` (itself excluded), best first."""
    from recsys.serving.ranking import top_k

    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    sims = (vectors @ vectors[item]) / (norms * norms[item])
    exclude = np.zeros((1, len(vectors)), dtype=bool)
    exclude[0, item] = True
    items, scores = top_k(sims[None, :].astype(np.float32), k, exclude=exclude)
    keep = items[0] >= 0
    return items[0][keep], scores[0][keep]


class FactorizationModel(Recommender):
    """score(u, i) = user_factors[u] · item_factors[i] (+ item_bias[i]) (+ user_bias[u]).

    Subclasses fill ``user_factors_`` (n_users, d), ``item_factors_`` (n_items, d) and
    optionally ``item_bias_`` (n_items,) and ``user_bias_`` (n_users,) in ``_fit``; scoring,
    embeddings and item neighbours come from here. A user bias does not change a user's
    ranking, but keeps the scores on the model's own scale (predicted ratings for biased MF).
    """

    user_factors_: np.ndarray
    item_factors_: np.ndarray
    item_bias_: np.ndarray | None = None
    user_bias_: np.ndarray | None = None

    def _score(self, users):
        scores = self.user_factors_[users] @ self.item_factors_.T
        if self.item_bias_ is not None:
            scores = scores + self.item_bias_[None, :]
        if self.user_bias_ is not None:
            scores = scores + self.user_bias_[users][:, None]
        return scores

    def score_candidates(self, users, candidates) -> np.ndarray:
        """Only the candidates' factors: one (users, n, d) product instead of the whole catalogue.

        A subclass that changes ``_score`` must override this too (the contract test checks both
        agree for every registered model)."""
        users = self._check_users(users)
        candidates = self._check_candidates(users, candidates)
        safe = np.maximum(candidates, 0)
        scores = np.einsum("ud,und->un", self.user_factors_[users], self.item_factors_[safe])
        if self.item_bias_ is not None:
            scores = scores + self.item_bias_[safe]
        if self.user_bias_ is not None:
            scores = scores + self.user_bias_[users][:, None]
        return self._mask_missing(scores, candidates)

    def inner_product_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(user vectors, item vectors) whose inner products equal ``score``: a per-item bias becomes
        one more dimension, with a constant 1 on the user side (what a retrieval index needs), and a
        per-user bias one more with the 1 on the item side."""
        users, items = self.user_embeddings(), self.item_embeddings()
        if self.item_bias_ is not None:
            users = np.hstack([users, np.ones((len(users), 1), np.float32)])
            items = np.hstack([items, np.asarray(self.item_bias_, np.float32).reshape(-1, 1)])
        if self.user_bias_ is not None:
            users = np.hstack([users, np.asarray(self.user_bias_, np.float32).reshape(-1, 1)])
            items = np.hstack([items, np.ones((len(items), 1), np.float32)])
        return users, items

    def user_embeddings(self) -> np.ndarray:
        return np.asarray(self.user_factors_, dtype=np.float32)

    def item_embeddings(self) -> np.ndarray:
        return np.asarray(self.item_factors_, dtype=np.float32)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by cosine similarity of their factors."""
        return cosine_neighbours(self.item_embeddings(), int(item), k)
