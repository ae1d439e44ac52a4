"""Factorization family: EASE and PureSVD (closed form), iALS (alternating least squares),
BPR-MF and biased MF (gradient training on the shared torch loop)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.linalg import lapack
from scipy.sparse.linalg import svds

from recsys.evaluation.validation import validation_ndcg
from recsys.models.base import EVAL_BATCH_USERS, FLOAT32, FLOAT64, StopTraining, embedding_bytes, param
from recsys.models.latent import FactorizationModel, cosine_neighbours
from recsys.models.neighborhood import ItemSimilarityModel
from recsys.models.registry import register
from recsys.models.training import MIN_STEPS_PER_EPOCH, NegativeSampler, TorchModel, TorchParams, minibatches


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

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # The sparse Gram matrix (float32 product + its float64 cast: 20 bytes a stored cell, and at
        # most every cell is stored) becomes a dense float64 one (8 I²), inverted in place; the
        # float32 B (4 I²) is kept: 24 I² at most. Measured 12.4 I² on ml-latest-small (1.12 GB of
        # 2.20 GB estimated), where the co-occurrences are sparse; a dense catalogue stores them all.
        cells = n_items * n_items
        stored = min(cells, n_items * max(n_interactions, 1))
        return {"fit": max(20 * stored, 12 * stored + 8 * cells), "kept": 4 * cells,
                "score": EVAL_BATCH_USERS * n_items * 8}

    def _similarity(self, train, progress):
        x = train.positives
        gram = (x.T @ x).astype(np.float64).toarray()  # cast while sparse: no dense float32 copy on the way
        gram[np.diag_indices_from(gram)] += self.params.lam
        inverse = spd_inverse_inplace(gram)
        # B = -P / diag(P) column-wise, in place: at 10k items every n x n temporary is 0.8 GB
        inverse /= -np.diag(inverse).copy()[None, :]
        np.fill_diagonal(inverse, 0.0)
        progress(1, 1)
        # row-major, so that history @ W reads whole rows of W (3x faster scoring than column-major)
        return inverse.astype(np.float32, order="C")


def spd_inverse_inplace(a: np.ndarray, block: int = 1024) -> np.ndarray:
    """Inverse of the symmetric positive-definite float64 ``a`` (C- or Fortran-ordered), computed in
    ``a``'s own memory by Cholesky (LAPACK potrf + potri): half the flops of a general LU inverse
    and no second n x n array. Raises ValueError when ``a`` is not positive definite."""
    n = a.shape[0]
    # a is symmetric, so when it is C-ordered its transpose is the same matrix in the Fortran order
    # LAPACK overwrites in place (a scipy sparse Gram matrix comes out Fortran-ordered already)
    fortran = a if a.flags.f_contiguous else a.T
    factor, info = lapack.dpotrf(fortran, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise ValueError(f"the matrix is not positive definite (LAPACK potrf info {info})")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"the matrix could not be inverted (LAPACK potri info {info})")
    if not np.shares_memory(inverse, a):  # the wrappers copy when they cannot work in place
        fortran[...] = inverse
    # potri filled the upper triangle of the Fortran view; mirror it down one block of columns at
    # a time, so no n x n temporary is made
    for start in range(0, n, block):
        stop = min(start + block, n)
        fortran[stop:, start:stop] = fortran[start:stop, stop:].T
        diagonal = fortran[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        diagonal[lower] = diagonal.T[lower]
    return a


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
        reg: float = param(0.01, help="L2 penalty on the user and item vectors of each triple.",
                           low=0.0, high=1.0)
        negatives: str = param("uniform", help="How negatives are drawn: uniformly, or in proportion to "
                                               "popularity^0.75 (harder negatives, less popularity bias).",
                               choices=("uniform", "popularity"))
        epochs: int = param(60, help="Passes over the training interactions.", low=1, high=1000)
        batch_size: int = param(8192, help="Triples per gradient step.", low=1, high=65536, log=True)
        lr: float = param(0.01, help="Adam learning rate.", low=1e-5, high=1.0, log=True)

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


# ---------------------------------------------------------------------------- PureSVD


@register
class PureSVD(FactorizationModel):
    """PureSVD (Cremonesi et al. 2010): truncated SVD X ≈ U Σ Vᵀ, score = x_u V Vᵀ.

    Scoring through V (not U Σ) makes a new person's history score the same way as a
    training user's: ``score_history`` is exact fold-in.
    """

    key = "pure_svd"
    label = "PureSVD"
    family = "factorization"
    description = "Truncated SVD of the interaction matrix: projects each history onto the top latent directions."

    @dataclass
    class Params:
        factors: int = param(20, help="Number of singular vectors kept (latent directions).", low=1, high=2000,
                             log=True)
        seed: int = param(42, help="Seed of the iterative SVD solver's start vector.", low=0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # a float64 copy of X and the Lanczos vectors of svds (ncv = max(2k + 1, 20) on each side)
        k = max(1, min(params["factors"], min(n_users, n_items) // 4))
        lanczos = min(min(n_users, n_items), max(2 * k + 1, 20))
        return {"fit": 12 * n_interactions + (n_users + n_items) * lanczos * FLOAT64 * 3,
                "kept": (n_users + n_items) * k * FLOAT32}

    def _fit(self, train, *, valid, progress):
        x = train.positives.astype(np.float64)
        k = self._effective_factors(x.shape)
        start = np.random.default_rng(self.params.seed).standard_normal(min(x.shape))
        _, singular_values, vt = svds(x, k=k, v0=start)
        order = np.argsort(-singular_values)
        self.singular_values_ = singular_values[order]
        self.item_factors_ = vt[order].T.astype(np.float32)                      # (I, k)
        self.user_factors_ = np.asarray(x @ self.item_factors_, dtype=np.float32)  # (U, k) = x_u V
        self.factors_ = k
        progress(1, 1)

    def _effective_factors(self, shape) -> int:
        """At most a quarter of the smaller side: with rank close to the matrix's own, the
        projection reproduces each history and has no room left to suggest anything new."""
        return int(max(1, min(self.params.factors, min(shape) // 4)))

    def score_history(self, items) -> np.ndarray:
        row = self._history_row(items)
        return np.asarray((row @ self.item_factors_) @ self.item_factors_.T, dtype=np.float32).ravel()


# ---------------------------------------------------------------------------- iALS


@register
class IALS(FactorizationModel):
    """Implicit ALS (Hu, Koren & Volinsky 2008): weighted least squares on the full matrix.

    Every (user, item) cell has preference p = 1 if consumed else 0 and confidence
    c = 1 + alpha for consumed cells, 1 otherwise. Loss
    Σ c (p − xᵤ·yᵢ)² + reg (‖X‖² + ‖Y‖²), minimised by alternating exact least-squares
    steps for all users then all items. Both solvers are vectorised over users: conjugate
    gradient (a few warm-started steps per half-iteration, as in Takács et al. 2011) or
    batched Cholesky. Each half-step lowers the loss, so the loss never goes up.
    """

    key = "ials"
    label = "iALS"
    family = "factorization"
    iterative = True
    description = "Implicit-feedback matrix factorization: every unseen item is a weak negative, solved by ALS."

    @dataclass
    class Params:
        factors: int = param(64, help="Embedding size d.", low=1, high=1024, log=True)
        reg: float = param(50.0, help="L2 penalty on user and item vectors.", low=0.0, high=10000.0)
        alpha: float = param(5.0, help="Extra confidence of a consumed cell (c = 1 + alpha).", low=0.0,
                             high=10000.0)
        iterations: int = param(15, help="ALS sweeps (users then items).", low=1, high=200)
        solver: str = param("cg", help="Conjugate gradient (fast) or exact batched Cholesky.",
                            choices=("cg", "cholesky"))
        cg_steps: int = param(3, help="Conjugate-gradient steps per half-iteration (solver='cg').", low=1, high=50)
        seed: int = param(42, help="Seed of the random initial factors.", low=0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # The loss gathers both sides' float64 vectors at every stored cell and einsum multiplies
        # them (24 d bytes a cell: sample data, 105 MB estimated for the loss, 161 MB fit peak
        # measured before this was counted); CG gathers the fixed side's vectors per half-step and
        # keeps ~8 (rows x d) arrays; Cholesky solves 128 rows at a time against a padded gather.
        d = params["factors"]
        size = FLOAT64 if params["solver"] == "cholesky" else FLOAT32
        cells = n_interactions * d
        solver = 3 * cells * size + (n_users + n_items) * d * size * 8
        if params["solver"] == "cholesky":
            solver += 128 * min(n_items, n_interactions) * d * FLOAT64 + 128 * d * d * FLOAT64
        return {"fit": max(3 * cells * FLOAT64, solver) + 12 * n_interactions,
                "kept": (n_users + n_items) * d * FLOAT32}

    def _fit(self, train, *, valid, progress):
        p = self.params
        rng = np.random.default_rng(p.seed)
        # float32 halves the memory traffic of the CG gathers; the loss is summed in float64
        dtype = np.float64 if p.solver == "cholesky" else np.float32
        x = train.positives.tocsr().astype(dtype)
        xt = x.T.tocsr()
        scale = 0.1 / np.sqrt(p.factors)
        users = (rng.standard_normal((x.shape[0], p.factors)) * scale).astype(dtype)
        items = (rng.standard_normal((x.shape[1], p.factors)) * scale).astype(dtype)
        self.loss_history_ = []
        for iteration in range(1, p.iterations + 1):
            users = self._solve(x, items, users)
            items = self._solve(xt, users, items)
            metrics = {"loss": self._loss(x, users, items)}
            self.loss_history_.append(metrics["loss"])
            self.user_factors_, self.item_factors_ = users.astype(np.float32), items.astype(np.float32)
            if valid is not None:
                metrics["val_ndcg@10"] = validation_ndcg(self._score, train, valid)
            try:
                progress(iteration, p.iterations, metrics)
            except StopTraining:
                progress(p.iterations, p.iterations, {})
                break
        self.iterations_run_ = iteration

    def _solve(self, x, fixed: np.ndarray, current: np.ndarray) -> np.ndarray:
        """New factors for every row of ``x`` given the other side's ``fixed`` factors."""
        gram = fixed.T @ fixed + self.params.reg * np.eye(fixed.shape[1], dtype=fixed.dtype)
        rhs = (1.0 + self.params.alpha) * (x @ fixed)                       # Σ_{i∈u} c_ui y_i
        if self.params.solver == "cholesky":
            return _batched_cholesky_solve(x, fixed, gram, rhs, self.params.alpha)
        return _conjugate_gradient(x, fixed, gram, rhs, current, self.params.alpha, self.params.cg_steps)

    def _loss(self, x, users: np.ndarray, items: np.ndarray) -> float:
        """Σ over all cells of c (p − s)² + reg (‖X‖² + ‖Y‖²), in O(nnz·d + d²)."""
        coo = x.tocoo()
        users, items = users.astype(np.float64), items.astype(np.float64)
        observed = np.einsum("nd,nd->n", users[coo.row], items[coo.col])
        everything = float(np.sum((users.T @ users) * (items.T @ items)))   # Σ_all s²
        # consumed cells: replace s² by (1 + alpha)(1 − s)²
        observed_part = float(np.sum((1.0 + self.params.alpha) * (1.0 - observed) ** 2 - observed ** 2))
        penalty = self.params.reg * float(np.sum(users ** 2) + np.sum(items ** 2))
        return everything + observed_part + penalty

    def score_history(self, items) -> np.ndarray:
        """Fold-in: the exact least-squares user vector for this history, then its scores."""
        row = self._history_row(items).astype(np.float64)
        fixed = self.item_factors_.astype(np.float64)
        gram = fixed.T @ fixed + self.params.reg * np.eye(fixed.shape[1])
        rhs = (1.0 + self.params.alpha) * (row @ fixed)
        user = _batched_cholesky_solve(row.tocsr(), fixed, gram, rhs, self.params.alpha)
        return (user @ fixed.T).astype(np.float32).ravel()


class _CellVectors:
    """The fixed side's vectors at every stored cell of ``x`` (row-major), gathered once per
    half-iteration so each CG step is two einsums and one sparse product."""

    def __init__(self, x, fixed: np.ndarray, alpha: float):
        self.x, self.fixed, self.alpha = x, fixed, alpha
        self.rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        self.vectors = fixed[x.indices]                                        # (nnz, d)

    def weighted_products(self, v: np.ndarray) -> np.ndarray:
        """For each row u: alpha Σ_{i∈u} (y_i · v_u) y_i, without forming any d×d matrix."""
        dots = np.einsum("nd,nd->n", v[self.rows], self.vectors)
        weighted = sp.csr_matrix((self.alpha * dots, self.x.indices, self.x.indptr), shape=self.x.shape)
        return weighted @ self.fixed


def _conjugate_gradient(x, fixed, gram, rhs, start, alpha: float, steps: int) -> np.ndarray:
    """A few CG steps on every row's system (gram + alpha Y_uᵀY_u) v = rhs_u at once.

    Warm-started from the previous factors; every CG step lowers each row's quadratic,
    which is why the overall loss still decreases monotonically.
    """
    cells = _CellVectors(x, fixed, alpha)

    def apply(v):
        return v @ gram + cells.weighted_products(v)

    solution = start.copy()
    residual = rhs - apply(solution)
    direction = residual.copy()
    rr = np.einsum("ud,ud->u", residual, residual)
    for _ in range(steps):
        a_dir = apply(direction)
        curvature = np.einsum("ud,ud->u", direction, a_dir)
        step = np.divide(rr, curvature, out=np.zeros_like(rr), where=curvature > 0)
        step = step.astype(solution.dtype)
        solution += step[:, None] * direction
        residual -= step[:, None] * a_dir
        rr_new = np.einsum("ud,ud->u", residual, residual)
        beta = np.divide(rr_new, rr, out=np.zeros_like(rr), where=rr > 0).astype(solution.dtype)
        direction = residual + beta[:, None] * direction
        rr = rr_new
    return solution


def _batched_cholesky_solve(x, fixed, gram, rhs, alpha: float, rows_per_chunk: int = 128) -> np.ndarray:
    """Exact per-row solves of (gram + alpha Y_uᵀY_u) v = rhs_u, batched over rows.

    Rows are sorted by their number of cells and taken in chunks, each padded to its
    longest row with a zero vector, so Y_uᵀY_u for a whole chunk is one batched matmul
    and padding wastes little.
    """
    n_rows, d = rhs.shape
    counts = np.diff(x.indptr)
    padded_fixed = np.vstack([fixed, np.zeros((1, d))])                       # last row = padding
    out = np.empty_like(rhs)
    order = np.argsort(counts, kind="stable")
    for start in range(0, n_rows, rows_per_chunk):
        rows = order[start:start + rows_per_chunk]
        width = int(counts[rows].max()) if len(rows) else 0
        systems = np.broadcast_to(gram, (len(rows), d, d)).copy()
        if width:
            offsets = np.arange(width)[None, :]
            inside = offsets < counts[rows][:, None]
            positions = np.minimum(x.indptr[rows][:, None] + offsets, max(len(x.indices) - 1, 0))
            cells = np.where(inside, x.indices[positions], len(fixed))            # (rows, width)
            vecs = padded_fixed[cells]                                             # (rows, width, d)
            systems += alpha * (vecs.transpose(0, 2, 1) @ vecs)
        out[rows] = np.linalg.solve(systems, rhs[rows, :, None])[:, :, 0]
    return out


# ---------------------------------------------------------------------------- biased MF


class _BiasedMF(torch.nn.Module):
    """r̂(u, i) = μ + b_u + b_i + p_u · q_i (Koren, Bell & Volinsky 2009)."""

    def __init__(self, n_users: int, n_items: int, factors: int, global_mean: float, init_std: float,
                 presence_factors: int = 0):
        super().__init__()
        self.user = torch.nn.Embedding(n_users, factors)       # (U, d)
        self.item = torch.nn.Embedding(n_items, factors)       # (I, d)
        self.user_bias = torch.nn.Embedding(n_users, 1)        # (U, 1)
        self.item_bias = torch.nn.Embedding(n_items, 1)        # (I, 1)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        for table in (self.user, self.item):
            torch.nn.init.normal_(table.weight, std=init_std)
        for table in (self.user_bias, self.item_bias):
            torch.nn.init.zeros_(table.weight)
        # Created last, so the rating tables above draw the same random numbers with or without them.
        self.presence = None
        if presence_factors:
            self.presence = torch.nn.ModuleDict({
                "user": torch.nn.Embedding(n_users, presence_factors),     # (U, d_p)
                "item": torch.nn.Embedding(n_items, presence_factors),     # (I, d_p)
                "item_bias": torch.nn.Embedding(n_items, 1),               # (I, 1)
            })
            for name in ("user", "item"):
                torch.nn.init.normal_(self.presence[name].weight, std=init_std)
            torch.nn.init.zeros_(self.presence["item_bias"].weight)

    def presence_logit(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # users (B,), items (B,) -> (B,) log-odds that the user consumed the item at all
        pr = self.presence
        return (pr["user"](users) * pr["item"](items)).sum(-1) + pr["item_bias"](items).squeeze(-1)

    def all_presence(self, users: torch.Tensor) -> torch.Tensor:
        # users (B,) -> (B, I) probabilities of consumption
        pr = self.presence
        return torch.sigmoid(pr["user"](users) @ pr["item"].weight.T + pr["item_bias"].weight.T)

    def presence_penalty(self, reg: float, users: torch.Tensor, *item_batches: torch.Tensor) -> torch.Tensor:
        pr = self.presence
        total = pr["user"](users).pow(2).sum()
        for items in item_batches:
            total = total + pr["item"](items).pow(2).sum()
        return reg * total / len(users)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # users, items (B,) -> (B,)
        dot = (self.user(users) * self.item(items)).sum(-1)
        return self.global_mean + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + dot

    def all_items(self, users: torch.Tensor) -> torch.Tensor:
        # users (B,) -> (B, I)
        return (self.global_mean + self.user_bias(users) + self.item_bias.weight.T
                + self.user(users) @ self.item.weight.T)

    def penalty(self, reg: float, bias_reg: float, users: torch.Tensor, *item_batches: torch.Tensor) -> torch.Tensor:
        """Classic per-example L2: squared norms of the rows this batch touched, per example."""
        vectors = self.user(users).pow(2).sum()
        biases = self.user_bias(users).pow(2).sum()
        for items in item_batches:
            vectors = vectors + self.item(items).pow(2).sum()
            biases = biases + self.item_bias(items).pow(2).sum()
        return (reg * vectors + bias_reg * biases) / len(users)


@register
class MFSGD(TorchModel):
    """Biased matrix factorization learned by stochastic gradient steps on observed cells.

    One model, three losses, for the "which loss?" lesson: ``mse`` regresses observed
    ratings (rating prediction), ``bce`` classifies consumed cells against sampled
    unconsumed ones, ``bpr`` ranks a consumed item above an unconsumed one. Only ``mse``
    predicts ratings.

    A rating regressor alone ranks badly for top-N (NDCG@10 0.074 on ML-100K, a third of
    popularity): it learns how people rate what they chose, never what they choose, so
    an obscure film with three 5-star ratings tops everyone's list. With ``mse`` the model
    therefore also learns a *presence* head — a separate logistic MF of "did the user
    consume it", trained on the same batches with sampled unconsumed items — and ranks by
    P(consumed) × predicted rating. The heads share no parameters and the presence
    negatives come from their own random stream, so ``predict`` (and its RMSE) is
    identical with the head on or off; ``presence_factors = 0`` gives the plain model.
    """

    key = "mf_sgd"
    label = "Biased MF (SGD)"
    family = "factorization"
    description = "Funk-style matrix factorization with user/item biases; choose the loss: MSE, BCE or BPR."

    @dataclass
    class Params(TorchParams):
        factors: int = param(256, help="Embedding size d (strong L2 keeps a large d from overfitting).",
                             low=1, high=2048, log=True)
        loss: str = param("mse", help="mse: predict ratings; bce: consumed vs sampled unconsumed; "
                                      "bpr: rank consumed above unconsumed.", choices=("mse", "bce", "bpr"))
        reg: float = param(0.075, help="L2 penalty on the user and item vectors each example touches.",
                           low=0.0, high=10.0)
        bias_reg: float = param(0.02, help="L2 penalty on the user and item biases each example touches.",
                                low=0.0, high=10.0)
        negatives: int = param(4, help="Sampled unconsumed items per consumed one (loss = bce).", low=1, high=100)
        epochs: int = param(50, help="Passes over the observed cells.", low=1, high=1000)
        batch_size: int = param(512, help="Observed cells per gradient step.", low=1, high=65536, log=True)
        lr: float = param(0.008, help="SGD step size per example (as in one-example-at-a-time SGD).",
                          low=1e-5, high=1.0, log=True)
        lr_decay: float = param(0.975, help="Step size multiplier after every epoch (1 = constant).",
                                low=0.5, high=1.0)
        init_std: float = param(0.01, help="Standard deviation of the random initial vectors (small: SGD "
                                           "then grows only the directions the data supports).",
                                low=0.0, high=1.0)
        average_last: int = param(20, help="Average the weights of the last n epochs (stochastic weight "
                                          "averaging: smooths SGD noise); 0 = keep the last epoch's.",
                                  low=0, high=1000)
        presence_factors: int = param(64, help="loss = mse: size of the 'did they consume it' head that the "
                                                "top-N list multiplies with the predicted rating (0 = rank by "
                                                "predicted rating alone).", low=0, high=2048)
        presence_lr: float = param(0.2, help="loss = mse: SGD step size per example of the presence head "
                                              "(a logistic loss takes larger steps than a squared error).",
                                   low=1e-5, high=1.0, log=True)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # the rating tables, the presence head's tables and the per-epoch shuffled cell arrays
        width = params["factors"] + (params["presence_factors"] if params["loss"] == "mse" else 0)
        return {"fit": embedding_bytes(n_users + n_items, width) + n_interactions * (1 + params["negatives"]) * 24,
                "kept": (n_users + n_items) * width * FLOAT32}

    def _prepare(self, train):
        super()._prepare(train)
        if self.params.loss == "mse" and train.feedback != "explicit":
            from recsys.data.errors import DataError

            raise DataError("loss='mse' regresses ratings, and this data has none (implicit feedback). "
                            "Choose loss='bce' or loss='bpr'.")
        if self.params.loss == "mse":
            self.cells_ = (train.user.astype(np.int64), train.item.astype(np.int64),
                           train.rating.astype(np.float32))
            self.rating_range_ = (float(train.rating.min()), float(train.rating.max()))
            self.global_mean_ = float(train.rating.mean())
            if self._with_presence:
                self.sampler_ = NegativeSampler(train)
                # its own stream: the rating half sees the same batches with or without the head
                self._presence_rng = np.random.default_rng([self.params.seed, 1])
        else:
            pos = train.positives.tocoo()
            self.cells_ = (pos.row.astype(np.int64), pos.col.astype(np.int64), np.ones(pos.nnz, np.float32))
            self.global_mean_ = 0.0
            self.sampler_ = NegativeSampler(train)

    def _build(self, train):
        return _BiasedMF(train.n_users, train.n_items, self.params.factors, self.global_mean_,
                         init_std=self.params.init_std,
                         presence_factors=self.params.presence_factors if self._with_presence else 0)

    @property
    def _with_presence(self) -> bool:
        return self.params.loss == "mse" and self.params.presence_factors > 0

    def _optimizer(self):
        """Plain SGD, as the model's name says. The loss is a batch mean, so the step is scaled by
        the batch size to keep ``lr`` meaning what it means for one-example SGD (Funk's 0.005–0.01)."""
        batch = min(self.params.batch_size, -(-len(self.cells_[0]) // MIN_STEPS_PER_EPOCH))
        presence = self.module_.presence
        if presence is None:
            return torch.optim.SGD(self.module_.parameters(), lr=self.params.lr * batch)
        rating = [p for name, p in self.module_.named_parameters() if not name.startswith("presence.")]
        return torch.optim.SGD([{"params": rating, "lr": self.params.lr * batch},
                                {"params": list(presence.parameters()), "lr": self.params.presence_lr * batch}])

    def _start_epoch(self, epoch):
        for group in self.optimizer_.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * self.params.lr_decay ** (epoch - 1)
        if epoch == 1:
            self._averaged, self._n_averaged = None, 0
        elif self.params.average_last and epoch - 1 > self.params.epochs - self.params.average_last:
            self._accumulate()

    def _accumulate(self):
        """Running sum of the weights after each of the last ``average_last`` epochs."""
        state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
        if self._averaged is None:
            self._averaged = state
        else:
            for k in self._averaged:
                self._averaged[k] += state[k]
        self._n_averaged += 1

    def _batches(self, train, rng):
        users, items, ratings = self.cells_
        for idx in minibatches(len(users), self.params.batch_size, rng):
            u = users[idx]
            if self.params.loss == "mse":
                negatives = self.sampler_.sample(u, self._presence_rng, self.params.negatives) \
                    if self._with_presence else None
                yield u, items[idx], ratings[idx], negatives
            elif self.params.loss == "bpr":
                yield u, items[idx], self.sampler_.sample(u, rng)[:, 0]
            else:
                yield u, items[idx], self.sampler_.sample(u, rng, self.params.negatives)

    def _loss(self, batch):
        users, items, third, *rest = batch
        m, reg, bias_reg = self.module_, self.params.reg, self.params.bias_reg
        if self.params.loss == "mse":
            loss = torch.mean((m(users, items) - third) ** 2) + m.penalty(reg, bias_reg, users, items)
            if rest and rest[0] is not None:
                loss = loss + self._presence_loss(users, items, rest[0])
            return loss
        if self.params.loss == "bpr":
            diff = m(users, items) - m(users, third)
            return -torch.nn.functional.logsigmoid(diff).mean() + m.penalty(reg, bias_reg, users, items, third)
        # bce: one consumed cell against `negatives` sampled ones per row of the batch
        negatives = third                                                     # (B, n)
        pos_logit = m(users, items)                                           # (B,)
        neg_logit = m(users.unsqueeze(1).expand_as(negatives).reshape(-1), negatives.reshape(-1))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        loss = bce(pos_logit, torch.ones_like(pos_logit)) + negatives.shape[1] * bce(
            neg_logit, torch.zeros_like(neg_logit))
        return loss + m.penalty(reg, bias_reg, users, items)

    def _presence_loss(self, users, items, negatives):
        """Logistic loss of consumed cells against ``negatives`` (B, n) sampled unconsumed ones."""
        m = self.module_
        pos_logit = m.presence_logit(users, items)                                 # (B,)
        neg_logit = m.presence_logit(users.unsqueeze(1).expand_as(negatives).reshape(-1), negatives.reshape(-1))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        return (bce(pos_logit, torch.ones_like(pos_logit))
                + negatives.shape[1] * bce(neg_logit, torch.zeros_like(neg_logit))
                + m.presence_penalty(self.params.reg, users, items))

    def _score_batch(self, users):
        if self._with_presence:
            rating = self.module_.all_items(users).clamp(*self.rating_range_)
            return self.module_.all_presence(users) * rating
        return self.module_.all_items(users)

    def _finish(self, train):
        m = self.module_
        if self.params.average_last and self.epochs_run_ == self.params.epochs:
            self._accumulate()  # the final epoch's weights
            m.load_state_dict({k: v / self._n_averaged for k, v in self._averaged.items()})
        self._averaged = None
        self.user_factors_ = m.user.weight.detach().cpu().numpy()
        self.item_factors_ = m.item.weight.detach().cpu().numpy()

    @property
    def ranks_by_predicted_rating(self) -> bool:
        """With loss='mse' and no presence head the top-N list is a by-product of rating prediction:
        the model never learned what people consume, only how they rate what they did."""
        return self.params.loss == "mse" and self.params.presence_factors == 0

    @property
    def predicts_ratings(self) -> bool:
        """Only the mse loss regresses ratings; bce/bpr scores are preferences on no rating scale."""
        return self.params.loss == "mse"

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for (user, item) pairs, clipped to the training rating range."""
        if self.params.loss != "mse":
            from recsys.data.errors import DataError

            raise DataError(f"{self.label} predicts ratings only when trained with loss='mse' "
                            f"(this one used {self.params.loss!r}).")
        self._check_users(users)
        with torch.no_grad():
            u = torch.as_tensor(np.asarray(users, dtype=np.int64), device=self.device_)
            i = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device_)
            out = self.module_(u, i).cpu().numpy()
        return np.clip(out, *self.rating_range_).astype(np.float32)

    def user_embeddings(self) -> np.ndarray:
        return self.user_factors_

    def item_embeddings(self) -> np.ndarray:
        return self.item_factors_

    def similar_items(self, item: int, k: int = 10):
        return cosine_neighbours(self.item_factors_, int(item), k)
