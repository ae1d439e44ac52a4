"""Neighbourhood models: item-kNN and user-kNN, and the ItemSimilarityModel family base."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.data.errors import DataError
from recsys.models import similarity
from recsys.models.base import EVAL_BATCH_USERS, FLOAT32, FLOAT64, Recommender, param
from recsys.models.registry import register

# Score at most this many users' dense rows at once (bounds memory on big catalogues).
SCORE_BATCH = 2048


class ItemSimilarityModel(Recommender):
    """Family base: fit an item x item matrix W, then score = history @ W.

    Subclasses implement ``_similarity(train, progress) -> W`` (sparse or dense,
    W[j, i] = how much having j in the history recommends i). kNN, EASE and SLIM differ
    only there; ranking, fold-in, neighbours and explanations are shared.
    """

    family = "neighborhood"

    def _fit(self, train, *, valid, progress):
        self.history_matrix_ = self._history(train)
        self.weights_ = self._similarity(train, progress)

    def _history(self, train) -> sp.csr_matrix:
        """What a user's row looks like when scoring: binary positives by default."""
        return train.positives

    def _similarity(self, train, progress):
        raise NotImplementedError("abstract: each similarity model implements _similarity")

    def _score(self, users):
        product = self.history_matrix_[users] @ self.weights_
        return product.toarray() if sp.issparse(product) else np.asarray(product)

    def score_candidates(self, users, candidates) -> np.ndarray:
        """Only the history rows x candidate columns of W per user: a tiny block, not W[:, candidates]."""
        users = self._check_users(users)
        candidates = self._check_candidates(users, candidates)
        safe = np.maximum(candidates, 0)
        scores = np.empty(candidates.shape, dtype=np.float64)
        for row, user in enumerate(users):
            history = self.history_matrix_[user]
            block = self.weights_[history.indices][:, safe[row]]
            block = block.toarray() if sp.issparse(block) else np.asarray(block)
            scores[row] = history.data @ block
        return self._mask_missing(scores, candidates)

    def score_history(self, items) -> np.ndarray:
        """Scores over the catalogue for a person who consumed ``items`` (codes): onboarding, fold-in."""
        return self.score_histories([items])[0]

    def score_histories(self, histories) -> np.ndarray:
        """Fold-in for many people: one sparse product of their history rows with W."""
        product = self._history_rows(histories) @ self.weights_
        return np.asarray(product.toarray() if sp.issparse(product) else product, np.float32)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k items that ``item`` most recommends (by W), best first."""
        row = self.weights_[item]
        row = row.toarray().ravel() if sp.issparse(row) else np.asarray(row).ravel().copy()
        row[item] = -np.inf
        order = np.argsort(-row, kind="stable")[:k]
        keep = np.isfinite(row[order]) & (row[order] > 0)
        return order[keep], row[order][keep].astype(np.float32)

    def explain(self, user: int, item: int, n: int = 3) -> list[tuple[int, float]]:
        """The user's history items that contribute most to ``item``'s score."""
        history = self.history_matrix_[user].indices
        column = self.weights_[history, item]
        contrib = np.asarray(column.toarray() if sp.issparse(column) else column).ravel()
        order = np.argsort(-contrib, kind="stable")[:n]
        return [(int(history[j]), float(contrib[j])) for j in order if contrib[j] > 0]


def _inverse_power(counts: np.ndarray, power: float) -> np.ndarray:
    return 1.0 / np.maximum(counts.astype(np.float64), 1.0) ** power


def _check_rating_metric(metric: str, train) -> None:
    if metric in ("adjusted_cosine", "pearson") and train.feedback != "explicit":
        raise DataError(
            f"The {metric} similarity centres ratings and needs explicit feedback; this data is "
            "implicit. Use cosine or jaccard."
        )


def _weighted_rating_prediction(neighbour_weights, centered, binary, offsets, rows, cols):
    """offset + sum_n w * centered / sum_n |w| for (row, col) pairs, computed per unique row."""
    out = np.empty(len(rows), np.float64)
    for start in range(0, len(rows), 200_000):
        r, c = rows[start : start + 200_000], cols[start : start + 200_000]
        uniq, inverse = np.unique(r, return_inverse=True)
        w = neighbour_weights(uniq)
        num = np.asarray((w @ centered).todense() if sp.issparse(w) else w @ centered)
        den = np.asarray((abs(w) @ binary).todense() if sp.issparse(w) else np.abs(w) @ binary)
        n, d = num[inverse, c], den[inverse, c]
        out[start : start + len(r)] = offsets[r] + np.divide(n, d, out=np.zeros_like(n), where=d > 1e-9)
    return out


@register
class ItemKNN(ItemSimilarityModel):
    key = "item_knn"
    label = "Item-item kNN"
    description = "Recommends items similar to those you liked; similarity from who consumed what."

    @dataclass
    class Params:
        similarity: str = param("cosine", help="How two items' audiences are compared.",
                                choices=similarity.METRICS)
        k: int = param(200, help="Neighbours kept per item.", low=1, high=2000, log=True)
        shrinkage: float = param(0.0, help="Damp similarities built on few co-ratings: n / (n + shrinkage).",
                                 low=0.0, high=1000.0)
        user_weight: float = param(1.0, help="Cosine: a user with n items adds 1/n^w to each co-occurrence, "
                                             "so heavy users do not dominate similarities (0 = off).",
                                   low=0.0, high=2.0, step=0.05)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # one block of dense item x item similarities at a time (similarity.BLOCK_CELLS): at most four
        # float64 or int64 arrays of it alive (Gram, denominators, similarities, argpartition's
        # indices; co-counts with shrinkage); then every kept neighbour as row, column and value in
        # the parts, concatenated, and as CSR
        k = min(params["k"], n_items)
        rows = max(1, min(n_items, similarity.BLOCK_CELLS // max(n_items, 1)))
        blocks = 5 if params["shrinkage"] > 0 else 4
        fit = rows * n_items * blocks * FLOAT64 + n_items * k * 3 * 24 + 36 * n_interactions
        return {"fit": fit, "kept": n_items * k * 8, "score": EVAL_BATCH_USERS * n_items * (FLOAT32 + 12)}

    def _similarity(self, train, progress):
        _check_rating_metric(self.params.similarity, train)
        values = train.csr if self.params.similarity in ("adjusted_cosine", "pearson") else train.positives
        if self.params.similarity == "cosine" and self.params.user_weight > 0:
            # measured on MovieLens-100K: NDCG@10 0.398 -> 0.409 at w = 1
            values = sp.csr_matrix(sp.diags(_inverse_power(train.user_activity, self.params.user_weight)) @ values)
        vectors = similarity.prepare(values.T.tocsr(), self.params.similarity)
        binary = train.seen.T.tocsr()
        knn = similarity.knn_similarity(vectors, self.params.similarity, self.params.k,
                                        self.params.shrinkage, binary, progress)
        # knn row i = i's neighbours; W[j, i] must say how much j recommends i
        return knn.T.tocsr()

    def predict(self, users, items) -> np.ndarray:
        """Rating prediction: user mean + similarity-weighted deviations on the item's neighbours."""
        train = self.train_
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        means = similarity.row_means(train.csr)
        centered = similarity.center(train.csr, 1)
        # per item i: weights over neighbour items j; evaluate transposed (items as rows)
        w_items = self.weights_.T.tocsr()
        pred = _weighted_rating_prediction(
            lambda uniq: w_items[uniq], centered.T.tocsr(), train.seen.T.tocsr(),
            np.zeros(train.n_items), items, users,
        )
        return (pred + means[users]).astype(np.float32)


@register
class UserKNN(Recommender):
    key = "user_knn"
    label = "User-user kNN"
    family = "neighborhood"
    description = "Finds people with similar taste and recommends what they liked."

    @dataclass
    class Params:
        similarity: str = param("cosine", help="How two people's histories are compared.",
                                choices=similarity.METRICS)
        k: int = param(100, help="Neighbours consulted per user.", low=1, high=2000, log=True)
        shrinkage: float = param(0.0, help="Damp similarities built on few co-ratings: n / (n + shrinkage).",
                                 low=0.0, high=1000.0)
        item_weight: float = param(0.25, help="Cosine: an item with n fans counts 1/n^w when comparing "
                                              "people, so shared blockbusters say less (0 = off).",
                                   low=0.0, high=2.0, step=0.05)
        locality: float = param(3.0, help="Raise similarities to this power: the closest neighbours "
                                          "count much more than the k-th (1 = plain weights).",
                                low=0.5, high=8.0, step=0.5)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # Scoring is the heavy part: each evaluation batch of users gets dense similarities to
        # every user (at most four float64 or int64 arrays of them alive: Gram, denominators,
        # similarities, argpartition's indices; co-counts with shrinkage), then their k neighbours
        # and a sparse batch x items product: ~32 KB per user, whatever the catalogue.
        batch = min(EVAL_BATCH_USERS, n_users)
        k = min(params["k"], n_users)
        blocks = 5 if params["shrinkage"] > 0 else 4
        score = batch * n_users * blocks * FLOAT64 + batch * k * 24 + batch * n_items * 12
        return {"fit": 24 * n_interactions, "kept": 24 * n_interactions, "score": score}

    def _fit(self, train, *, valid, progress):
        _check_rating_metric(self.params.similarity, train)
        values = train.csr if self.params.similarity in ("adjusted_cosine", "pearson") else train.positives
        # user vectors: pearson centres by the user's mean, adjusted cosine by the item's
        if self.params.similarity == "cosine" and self.params.item_weight > 0:
            # measured on MovieLens-100K (with locality 3): NDCG@10 0.398 -> 0.405 at w = 0.25
            weights = _inverse_power(train.item_popularity, self.params.item_weight)
            values = sp.csr_matrix(values @ sp.diags(weights))
        self.vectors_ = similarity.prepare(values, self.params.similarity)
        self.binary_ = train.seen
        self.positives_ = train.positives
        progress(1, 1)

    def neighbours(self, users: np.ndarray) -> sp.csr_matrix:
        """Sparse (len(users) x n_users) matrix of each user's k nearest neighbours."""
        sim = similarity.pairwise_block(self.vectors_, np.asarray(users), self.params.similarity,
                                        self.binary_, self.params.shrinkage)
        idx, vals = similarity.keep_top_k(sim, self.params.k)
        vals = np.where(vals > 0, vals, 0.0) ** self.params.locality
        rows = np.repeat(np.arange(len(users)), idx.shape[1])
        return sp.csr_matrix((vals.ravel(), (rows, idx.ravel())), shape=(len(users), sim.shape[1]))

    def _score(self, users):
        out = np.empty((len(users), self.train_.n_items), np.float32)
        for start in range(0, len(users), SCORE_BATCH):
            batch = users[start : start + SCORE_BATCH]
            out[start : start + len(batch)] = (self.neighbours(batch) @ self.positives_).toarray()
        return out

    def predict(self, users, items) -> np.ndarray:
        """Rating prediction: user mean + similarity-weighted neighbours' deviations from their means."""
        train = self.train_
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        means = similarity.row_means(train.csr)
        pred = _weighted_rating_prediction(
            self.neighbours, similarity.center(train.csr, 1), train.seen, means, users, items
        )
        return pred.astype(np.float32)

    def explain(self, user: int, item: int, n: int = 3) -> list[tuple[int, float]]:
        """The neighbours (user codes) who consumed ``item``, most similar first."""
        nb = self.neighbours(np.array([user]))
        who = nb.indices[self.binary_[nb.indices, item].toarray().ravel() > 0]
        weights = nb[0, who].toarray().ravel()
        order = np.argsort(-weights, kind="stable")[:n]
        return [(int(who[j]), float(weights[j])) for j in order]
