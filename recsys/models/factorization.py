"""Factorization family: EASE and PureSVD (closed form), iALS (alternating least squares),
BPR-MF and biased MF (gradient training on the shared torch loop)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.linalg import lapack
from scipy.sparse.linalg import svds

from recsys.models.base import (
    EVAL_BATCH_USERS,
    FLOAT32,
    FLOAT64,
    Recommender,
    embedding_bytes,
    param,
    with_defaults,
)
from recsys.models.iterative import IterativeModel
from recsys.models.latent import FactorizationModel
from recsys.models.neighborhood import ItemSimilarityModel
from recsys.models.registry import register
from recsys.models.training import (
    MIN_STEPS_PER_EPOCH,
    NegativeSampler,
    TorchModel,
    TorchParams,
    minibatches,
)


@register
class EASE(ItemSimilarityModel):
    """Embarrassingly Shallow Autoencoder (Steck 2019): B = I - P / diag(P), P = (XᵀX + λI)⁻¹, diag(B) = 0."""

    key = "ease"
    label = "EASE"
    family = "factorization"
    description = "A closed-form item-to-item linear model: one matrix inverse, often the strongest baseline."

    @dataclass
    class Params:
        reg: float = param(500.0, help="L2 penalty λ: larger = smoother, more popular items.",
                           low=1.0, high=100000.0, log=True)
        legacy_names = {"lam": "reg"}

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
        gram[np.diag_indices_from(gram)] += self.params.reg
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

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        # users (B,) -> (B, I)
        return self.user(users) @ self.item.weight.T + self.item_bias.weight.T

    def squared_norms(self, users: torch.Tensor, *item_batches: torch.Tensor) -> torch.Tensor:
        """Σ of the squared user vectors and item vectors a batch touched (the L2 term before scaling)."""
        total = self.user(users).pow(2).sum()
        for items in item_batches:
            total = total + self.item(items).pow(2).sum()
        return total


@register
class BPRMF(FactorizationModel, TorchModel):
    """Bayesian Personalised Ranking (Rendle et al. 2009) with matrix factorization.

    Each step takes (user, consumed item, sampled unconsumed item) triples and maximises
    log σ(x_ui − x_uj), with L2 on the three embeddings involved. The negative of a triple is
    the highest-scoring of ``negative_candidates`` draws (dynamic negative sampling, Zhang et al.
    2013): a random unconsumed item is usually ranked far below already and teaches little.

    The gradient of this loss is a few lines of algebra, so each step computes it directly
    (gathers, row-wise products, scatters into the tables) instead of through autograd, whose
    embedding backward was most of the time; Adam then steps the dense tables.
    """

    key = "bpr_mf"
    label = "BPR-MF"
    family = "factorization"
    description = "Matrix factorization trained to rank each consumed item above a random unconsumed one."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=15, batch_size=8192, lr=0.03)):
        embedding_size: int = param(64, help="Embedding size d.", low=1, high=1024, log=True)
        legacy_names = {"factors": "embedding_size"}
        reg: float = param(0.02, help="L2 penalty on the user and item vectors of each triple.",
                           low=0.0, high=1.0)
        negatives: str = param("popularity", help="How negatives are drawn: uniformly, or in proportion to "
                                                  "popularity^popularity_power (more often the items people "
                                                  "know, less popularity bias).",
                               choices=("uniform", "popularity"))
        popularity_power: float = param(0.25, help="negatives = popularity: the exponent of an item's "
                                                   "popularity in its chance to be drawn (0 = uniform).",
                                        low=0.0, high=2.0)
        negative_candidates: int = param(2, help="Unconsumed items drawn per triple; the one the model scores "
                                                 "highest is the negative (1 = plain BPR).", low=1, high=50)
        lr_decay: float = param(0.85, help="Step size multiplier after every epoch (1 = constant).",
                                low=0.5, high=1.0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # the tables with Adam's two moments, the consumed-cell bitmap, an epoch of shuffled
        # (user, item, candidates) codes and a batch's gathered vectors and gradient rows
        d, candidates = params["embedding_size"], params["negative_candidates"]
        batch = min(params["batch_size"], n_interactions)
        bitmap = n_users * n_items if n_users * n_items <= _NegativeDraws.BITMAP_CELLS else 0
        return {"fit": embedding_bytes(n_users + n_items, d) + bitmap + n_interactions * (2 + candidates) * 8 * 2
                + batch * (candidates + 6) * d * FLOAT32 * 2,
                "kept": (n_users + n_items) * d * FLOAT32}

    def _prepare(self, train):
        super()._prepare(train)
        pos = train.positives.tocoo()
        self.pairs_ = (pos.row.astype(np.int64), pos.col.astype(np.int64))
        power = self.params.popularity_power if self.params.negatives == "popularity" else 0.0
        self.sampler_ = _NegativeDraws(train, power)

    def _build(self, train):
        return _DotProductMF(train.n_users, train.n_items, self.params.embedding_size, init_std=0.1)

    def _optimizer(self):
        return _Adam(self.module_.parameters(), lr=self.params.lr, weight_decay=self.params.weight_decay)

    def _start_epoch(self, epoch):
        self.optimizer_.lr = self.params.lr * self.params.lr_decay ** (epoch - 1)

    def _train_epoch(self, train, optimizer, rng, epoch) -> float:
        """One pass over the (user, consumed item) pairs in shuffled batches; every negative of the
        epoch is drawn at once (one vectorised draw instead of one per batch)."""
        self.module_.train()
        self._start_epoch(epoch)
        users, items = self.pairs_
        order = rng.permutation(len(users))
        candidates = self.sampler_.sample(users[order], rng, self.params.negative_candidates)
        device = self.device_
        users, items = torch.from_numpy(users[order]).to(device), torch.from_numpy(items[order]).to(device)
        candidates = torch.from_numpy(candidates).to(device)
        batch = max(1, min(self.params.batch_size, -(-len(users) // MIN_STEPS_PER_EPOCH)))
        total = 0.0
        for start in range(0, len(users), batch):
            stop = start + batch
            total += self._step(users[start:stop], items[start:stop], candidates[start:stop], optimizer)
        return total / max(len(users), 1)

    @torch.no_grad()
    def _step(self, users, items, candidates, optimizer) -> float:
        """One Adam step on a batch of triples; returns the batch's summed loss.

        With x = x_ui − x_uj and L = mean softplus(−x) + reg Σ‖·‖² / B, the gradient of a triple is
        −σ(−x)/B times (y_i − y_j) for p_u, p_u for y_i, −p_u for y_j and ±1 for the biases,
        plus 2 reg / B times the vector itself. Every (B, d) array lives in buffers reused from
        step to step: fresh ones cost a page fault per 4 KB, which made a process's first fit
        twice as slow as the next.
        """
        m, n = self.module_, len(users)
        user_table, item_table, bias = m.user.weight, m.item.weight, m.item_bias.weight[:, 0]
        work = self._buffers(n)
        u = torch.index_select(user_table, 0, users, out=work["user"][:n])                   # (B, d)
        positive = torch.index_select(item_table, 0, items, out=work["positive"][:n])
        negatives = self._hardest(u, candidates, item_table, bias, work["scratch"][:n])       # (B,)
        negative = torch.index_select(item_table, 0, negatives, out=work["negative"][:n])
        difference = torch.sub(positive, negative, out=work["difference"][:n])
        x = torch.mul(u, difference, out=work["scratch"][:n]).sum(1)
        x += bias.index_select(0, items) - bias.index_select(0, negatives)
        squares = sum(torch.dot(t.view(-1), t.view(-1)) for t in (u, positive, negative))
        loss = torch.nn.functional.softplus(-x).sum() + self.params.reg * squares
        weight = torch.sigmoid(-x).div_(-n)[:, None]                             # dL/dx of each triple
        shrink = 2.0 * self.params.reg / n
        pulled = torch.mul(u, weight, out=work["scratch"][:n])
        # the rows are updated in place from here on: each gathered copy is used once more
        user_grad, item_grad, bias_grad = (p.grad for p in (m.user.weight, m.item.weight, m.item_bias.weight))
        user_grad.zero_().index_add_(0, users, difference.mul_(weight).add_(u, alpha=shrink))
        item_grad.zero_().index_add_(0, items, positive.mul_(shrink).add_(pulled))
        item_grad.index_add_(0, negatives, negative.mul_(shrink).sub_(pulled))
        bias_grad.zero_().index_add_(0, items, weight).index_add_(0, negatives, -weight)
        optimizer.step()
        return float(loss)

    def _buffers(self, rows: int) -> dict:
        """The step's reusable (rows, d) arrays and the tables' gradients, made at the first step."""
        work = getattr(self, "_work", None)
        if work is None or len(work["user"]) < rows:
            shape = (rows, self.params.embedding_size)
            work = self._work = {name: torch.empty(shape, device=self.device_)
                                 for name in ("user", "positive", "negative", "difference", "scratch")}
            for table in self.module_.parameters():
                table.grad = torch.zeros_like(table)
        return work

    @staticmethod
    def _hardest(u, candidates, item_table, bias, scratch=None) -> torch.Tensor:
        """Each triple's candidate the model scores highest (the only one when there is one)."""
        if candidates.shape[1] == 1:
            return candidates[:, 0]
        scratch = torch.empty_like(u) if scratch is None else scratch
        # one (B, d) product a column: torch reduces a broadcast (B, c, d) product twice as slowly
        scores = torch.stack([torch.mul(u, torch.index_select(item_table, 0, column, out=scratch), out=scratch).sum(1)
                              + bias.index_select(0, column) for column in candidates.T], 1)
        return candidates.gather(1, scores.argmax(1, keepdim=True))[:, 0]

    def _score_batch(self, users):
        return self.module_.score_all(users)

    def _finish(self, train):
        m = self.module_
        for table in m.parameters():
            table.grad = None
        # training state, not part of the model (and the optimizer is not a torch one that saving skips)
        del self.optimizer_
        vars(self).pop("_work", None)
        self.user_factors_ = m.user.weight.detach().cpu().numpy()
        self.item_factors_ = m.item.weight.detach().cpu().numpy()
        self.item_bias_ = m.item_bias.weight.detach().cpu().numpy().ravel()


class _Adam:
    """Adam (Kingma & Ba 2015) on tensors whose gradients the caller sets, the update of torch's own.

    Constructing any torch.optim optimizer imports torch's compiler stack the first time in a
    process: about a second on an idle machine, several under load, which is longer than a whole
    BPR-MF fit on ML-100K.
    """

    def __init__(self, params, lr: float, weight_decay: float = 0.0, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self._moments = [(torch.zeros_like(p), torch.zeros_like(p), torch.empty_like(p)) for p in self.params]
        self._steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self._steps += 1
        beta1, beta2 = self.betas
        first_correction, second_correction = 1 - beta1 ** self._steps, 1 - beta2 ** self._steps
        for p, (mean, square, denominator) in zip(self.params, self._moments):
            grad = p.grad if not self.weight_decay else p.grad.add(p, alpha=self.weight_decay)
            mean.mul_(beta1).add_(grad, alpha=1 - beta1)
            square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            torch.div(square, second_correction, out=denominator).sqrt_().add_(self.eps)
            p.addcdiv_(mean, denominator, value=-self.lr / first_correction)


class _NegativeDraws(NegativeSampler):
    """The shared negative sampler, made cheap enough to draw every negative of an epoch in a few
    milliseconds: the membership test reads a bitmap of the consumed cells when the user x item grid
    is small (1.6 MB on ML-100K) instead of binary-searching the sorted consumed keys, and popularity
    draws use an alias table (one uniform number a draw) instead of a binary search of the CDF.
    Together these took as long as the rest of a BPR epoch."""

    BITMAP_CELLS = 1 << 25

    def __init__(self, train, popularity_power: float = 0.0):
        super().__init__(train, popularity_power)
        self._bitmap = None
        if train.n_users * self.n_items <= self.BITMAP_CELLS:
            self._bitmap = np.zeros(train.n_users * self.n_items, dtype=bool)
            self._bitmap[self._keys] = True
        self._alias = alias_table(np.diff(self._cdf, prepend=0.0)) if self._cdf is not None else None

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._alias is None:
            return super()._draw(n, rng)
        keep, alias = self._alias
        # one uniform number gives both the column (its integer part) and the coin (its fraction)
        scaled = rng.random(n) * self.n_items
        items = np.minimum(scaled.astype(np.int64), self.n_items - 1)
        return np.where(scaled - items < keep[items], items, alias[items])

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if self._bitmap is None:
            return super().is_positive(users, items)
        return self._bitmap[users.astype(np.int64) * self.n_items + items]


def alias_table(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (Vose's construction) of a distribution over n outcomes: column k keeps
    itself with probability keep[k] and otherwise gives alias[k], so a draw is a uniform column
    and one coin, whatever n."""
    n = len(probabilities)
    scaled = np.asarray(probabilities, dtype=np.float64) * (n / np.sum(probabilities))
    keep, alias = np.ones(n), np.arange(n)
    small, large = list(np.flatnonzero(scaled < 1.0)), list(np.flatnonzero(scaled >= 1.0))
    while small and large:
        low, high = small.pop(), large.pop()
        keep[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return keep, alias


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
        embedding_size: int = param(20, help="Number of singular vectors kept (latent directions).", low=1,
                                    high=2000, log=True)
        legacy_names = {"factors": "embedding_size"}
        seed: int = param(42, help="Seed of the iterative SVD solver's start vector.", low=0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # a float64 copy of X and the Lanczos vectors of svds (ncv = max(2k + 1, 20) on each side)
        k = max(1, min(params["embedding_size"], min(n_users, n_items) // 4))
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
        return int(max(1, min(self.params.embedding_size, min(shape) // 4)))

    def score_history(self, items) -> np.ndarray:
        return self.score_histories([items])[0]

    def score_histories(self, histories) -> np.ndarray:
        """Fold-in for many people: each history projected on V and back, x V Vᵀ, in one product."""
        rows = self._history_rows(histories)
        return np.asarray((rows @ self.item_factors_) @ self.item_factors_.T, dtype=np.float32)


# ---------------------------------------------------------------------------- iALS


@register
class IALS(FactorizationModel, IterativeModel):
    """Implicit ALS (Hu, Koren & Volinsky 2008): weighted least squares on the full matrix.

    Every (user, item) cell has preference p = 1 if consumed else 0 and confidence
    c = 1 + alpha for consumed cells, 1 otherwise. Loss
    Σ c (p − xᵤ·yᵢ)² + reg (‖X‖² + ‖Y‖²), minimised by alternating exact least-squares
    steps for all users then all items. Both solvers are vectorised over users: conjugate
    gradient (a few warm-started steps per half-iteration, as in Takács et al. 2011) or
    batched Cholesky. Each half-step lowers the loss, so the loss never goes up.

    Each sweep is one epoch of the loop every iterative model shares (``IterativeModel``):
    progress with loss and validation NDCG, stop requests that keep the model, and with a
    validation split the best sweep is kept.
    """

    key = "ials"
    label = "iALS"
    family = "factorization"
    description = "Implicit-feedback matrix factorization: every unseen item is a weak negative, solved by ALS."

    @dataclass
    class Params:
        embedding_size: int = param(64, help="Embedding size d.", low=1, high=1024, log=True)
        legacy_names = {"factors": "embedding_size"}
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
        # An upper bound, kept from when the loss and each CG half-step gathered the other side's
        # vectors at every stored cell (24 d bytes a cell: 161 MB fit peak measured on the sample
        # data). Both now take the dots at the stored cells by a sampled product (a few bytes a
        # cell) and keep ~8 (rows x d) arrays; Cholesky solves 128 rows at a time against a padded gather.
        d = params["embedding_size"]
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
        # float32 halves the memory traffic of the CG products; the loss is summed in float64
        dtype = np.float64 if p.solver == "cholesky" else np.float32
        x = train.positives.tocsr().astype(dtype)
        self._sides = (_Cells(x), _Cells(x.T.tocsr()))
        scale = 0.1 / np.sqrt(p.embedding_size)
        self._users = torch.from_numpy((rng.standard_normal((x.shape[0], p.embedding_size)) * scale).astype(dtype))
        self._items = torch.from_numpy((rng.standard_normal((x.shape[1], p.embedding_size)) * scale).astype(dtype))
        self.loss_history_ = []
        try:
            self._train_epochs(train, valid, progress, epochs=p.iterations)
        finally:
            del self._sides, self._users, self._items  # working copies, not part of the model

    def _run_epoch(self, train, epoch):
        """One ALS sweep: every user's vector, then every item's, each an exact (or CG) least-squares step."""
        users_side, items_side = self._sides
        self._users = self._solve(users_side, self._items, self._users)
        self._items = self._solve(items_side, self._users, self._items)
        loss = _als_loss(users_side, self._users, self._items, self.params.alpha, self.params.reg)
        self.loss_history_.append(loss)
        # the solvers return new arrays every sweep, so these views are never written to afterwards
        self.user_factors_ = self._users.numpy().astype(np.float32, copy=False)
        self.item_factors_ = self._items.numpy().astype(np.float32, copy=False)
        return {"loss": loss}

    def _snapshot(self):
        return self.user_factors_.copy(), self.item_factors_.copy()

    def _restore(self, state):
        self.user_factors_, self.item_factors_ = state

    def _solve(self, cells: _Cells, fixed: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """New factors for every row of ``cells`` given the other side's ``fixed`` factors."""
        p = self.params
        gram = fixed.T @ fixed + p.reg * torch.eye(fixed.shape[1], dtype=fixed.dtype)
        rhs = (1.0 + p.alpha) * cells.times(fixed)                            # Σ_{i∈u} c_ui y_i
        if p.solver == "cholesky":
            return torch.from_numpy(_batched_cholesky_solve(cells.matrix, fixed.numpy(), gram.numpy(), rhs.numpy(),
                                                            p.alpha))
        return _conjugate_gradient(cells, fixed, gram, rhs, current, p.alpha, p.cg_steps)

    def _loss(self, x, users: np.ndarray, items: np.ndarray) -> float:
        """Σ over all cells of c (p − s)² + reg (‖X‖² + ‖Y‖²) for the (users x items) matrix ``x``."""
        users, items = np.asarray(users), np.asarray(items)
        return _als_loss(_Cells(sp.csr_matrix(x, dtype=users.dtype)), torch.from_numpy(users), torch.from_numpy(items),
                         self.params.alpha, self.params.reg)

    def score_history(self, items) -> np.ndarray:
        """Fold-in: the exact least-squares user vector for this history, then its scores."""
        return self.score_histories([items])[0]

    def score_histories(self, histories) -> np.ndarray:
        """Fold-in for many people: every history's least-squares user vector from one batched solve (the
        fit's own user step), then all their scores in one product."""
        rows = self._history_rows(histories).astype(np.float64)
        fixed = self.item_factors_.astype(np.float64)
        gram = fixed.T @ fixed + self.params.reg * np.eye(fixed.shape[1])
        rhs = (1.0 + self.params.alpha) * (rows @ fixed)
        users = _batched_cholesky_solve(rows.tocsr(), fixed, gram, rhs, self.params.alpha)
        return (users @ fixed.T).astype(np.float32)


class _Cells:
    """The stored cells of one side's interaction matrix (rows = the side being solved).

    Each CG step needs alpha Σ_{i∈u} (y_i · v_u) y_i for every row u: torch's sampled product gives
    the dots at the stored cells only (no (nnz x d) gather of the other side's vectors), and scipy
    multiplies the resulting sparse matrix by the dense factors (single-threaded, and about twice as
    fast as torch's sparse product here): O(nnz·d) a step.
    """

    def __init__(self, matrix):
        matrix = sp.csr_matrix(matrix, copy=True)
        matrix.sum_duplicates()                # sorted, unique cells: torch and scipy see the same order
        matrix.data[:] = 1.0
        self.matrix = matrix
        self._weights = matrix.copy()          # its data is overwritten with each step's weights
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the sampled product is stable
            warnings.simplefilter("ignore", UserWarning)
            self.pattern = torch.sparse_csr_tensor(
                torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
                torch.from_numpy(matrix.data), size=matrix.shape)

    def dots(self, rows: torch.Tensor, cols: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """scale · (rows_u · cols_i) at every stored cell (u, i), in the cells' order."""
        return torch.sparse.sampled_addmm(self.pattern, rows, cols.T, beta=0.0, alpha=scale).values()

    def times(self, dense: torch.Tensor) -> torch.Tensor:
        """Σ_{i∈u} dense_i for every row u (the matrix of ones times ``dense``)."""
        return torch.from_numpy(self.matrix @ dense.numpy())

    def weighted_products(self, v: torch.Tensor, fixed: torch.Tensor, alpha: float) -> torch.Tensor:
        """For each row u: alpha Σ_{i∈u} (y_i · v_u) y_i, without forming any d×d matrix."""
        self._weights.data = self.dots(v, fixed, alpha).numpy()
        return torch.from_numpy(self._weights @ fixed.numpy())


def _als_loss(cells: _Cells, users: torch.Tensor, items: torch.Tensor, alpha: float, reg: float) -> float:
    """Σ over all cells of c (p − s)² + reg (‖X‖² + ‖Y‖²), in O(nnz·d + d²), summed in float64.

    Σ over every cell of s² is Σ (XᵀX ∘ YᵀY); a consumed cell then swaps its s² for (1 + alpha)(1 − s)².
    """
    observed = cells.dots(users, items).double()                             # s at the consumed cells
    users, items = users.double(), items.double()
    everything = float(((users.T @ users) * (items.T @ items)).sum())
    observed_part = float(((1.0 + alpha) * (1.0 - observed) ** 2 - observed ** 2).sum())
    return everything + observed_part + reg * float(users.pow(2).sum() + items.pow(2).sum())


def _conjugate_gradient(cells: _Cells, fixed, gram, rhs, start, alpha: float, steps: int) -> torch.Tensor:
    """A few CG steps on every row's system (gram + alpha Y_uᵀY_u) v = rhs_u at once.

    Warm-started from the previous factors; every CG step lowers each row's quadratic,
    which is why the overall loss still decreases monotonically.
    """
    def apply(v):
        return torch.addmm(cells.weighted_products(v, fixed, alpha), v, gram)

    solution = start.clone()
    residual = rhs - apply(solution)
    direction = residual.clone()
    rr = (residual * residual).sum(1)
    for _ in range(steps):
        a_dir = apply(direction)
        curvature = (direction * a_dir).sum(1)
        step = torch.where(curvature > 0, rr / curvature, torch.zeros_like(rr))[:, None]
        solution.addcmul_(step, direction)
        residual.addcmul_(step, a_dir, value=-1.0)
        rr_new = (residual * residual).sum(1)
        beta = torch.where(rr > 0, rr_new / rr, torch.zeros_like(rr))[:, None]
        direction = residual.addcmul(beta, direction)
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
        # The presence head (log-odds that a user consumed an item at all) is a BPR-style dot-product
        # MF of its own, created last, so the rating tables above draw the same random numbers with
        # or without it.
        self.presence = _DotProductMF(n_users, n_items, presence_factors, init_std) if presence_factors else None

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # users, items (B,) -> (B,)
        dot = (self.user(users) * self.item(items)).sum(-1)
        return self.global_mean + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + dot

    def all_items(self, users: torch.Tensor) -> torch.Tensor:
        # users (B,) -> (B, I)
        return (self.global_mean + self.user_bias(users) + self.item_bias.weight.T
                + self.user(users) @ self.item.weight.T)


def _gathered(head, users: torch.Tensor, cells: torch.Tensor):
    """What a batch reads of a score u · v + b_v (+ b_u), each table once: user vectors (B, d), user
    biases (B,) or None for a head without them, item vectors (B, K, d) and item biases (B, K)."""
    user_bias = head.user_bias(users)[:, 0] if hasattr(head, "user_bias") else None
    return head.user(users), user_bias, head.item(cells), head.item_bias(cells)[..., 0]


def _consumed_vs_sampled(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic loss of (B, 1 + n) logits, the consumed cell first and n sampled unconsumed ones after
    (the mean over consumed cells plus n times the mean over sampled ones), and its gradient."""
    loss = F.softplus(-logits[:, 0]).mean() + F.softplus(logits[:, 1:]).sum(1).mean()
    grad = torch.sigmoid(logits)
    grad[:, 0] -= 1.0
    return loss, grad / len(logits)


def _sgd_update(head, users, cells, gathered, d_scores, lr: float, reg: float, bias_reg: float = 0.0,
                penalised: int | None = None) -> torch.Tensor:
    """One SGD step of ``lr`` on the rows of ``head`` a batch read (``gathered``, see :func:`_gathered`)
    along ``d_scores`` (B, K), the gradient of the loss with respect to the scores of ``cells`` (B, K),
    plus the per-example L2 of the rows read divided by B (reg on vectors, bias_reg on biases), over the
    users and every cell or only column ``penalised`` (the consumed one). Returns that L2 term.

    The gathered rows are copies, so every gradient is taken at the weights before the step; repeated
    rows add up, as in the gradient of a sum.
    """
    user, user_bias, item, item_bias = gathered
    n, width = len(users), item.shape[-1]
    weight = torch.ones(cells.shape[1], dtype=item.dtype, device=item.device)       # L2 weight per column
    if penalised is not None:
        weight = (torch.arange(cells.shape[1], device=item.device) == penalised).to(item.dtype)
    grad_user = (d_scores[:, :, None] * item).sum(1) + (2 * reg / n) * user
    grad_item = d_scores[:, :, None] * user[:, None, :] + (2 * reg / n) * item * weight[:, None]
    grad_item_bias = d_scores + (2 * bias_reg / n) * item_bias * weight
    flat = cells.reshape(-1)
    # steps are scaled before index_add_, and the (rows, 1) bias tables added to as flat vectors: torch's
    # CPU index_add_ with alpha, or of rows one value wide, was 2-30x slower
    head.user.weight.index_add_(0, users, grad_user.mul_(-lr))
    head.item.weight.index_add_(0, flat, grad_item.reshape(-1, width).mul_(-lr))
    head.item_bias.weight.view(-1).index_add_(0, flat, grad_item_bias.reshape(-1).mul_(-lr))
    penalty = reg * (user.pow(2).sum() + (item.pow(2).sum(-1) * weight).sum()) \
        + bias_reg * (item_bias.pow(2) * weight).sum()
    if user_bias is not None:
        grad_user_bias = d_scores.sum(1) + (2 * bias_reg / n) * user_bias
        head.user_bias.weight.view(-1).index_add_(0, users, grad_user_bias.mul_(-lr))
        penalty = penalty + bias_reg * user_bias.pow(2).sum()
    return penalty / n


@register
class MFSGD(FactorizationModel, TorchModel):
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
    identical with the head on or off; ``presence_embedding_size = 0`` gives the plain model.

    Without the presence head the score is one inner product, μ + b_u + b_i + p_u · q_i, and
    the factorization base scores it (its candidates too); with the head, P(consumed) × rating
    is not, so scoring goes through the network and retrieval uses the plain vectors as a proxy.
    """

    key = "mf_sgd"
    label = "Biased MF (SGD)"
    family = "factorization"
    training_threads = 1  # a step is ~40 small tensor operations (512 cells), faster on one thread
    description = "Funk-style matrix factorization with user/item biases; choose the loss: MSE, BCE or BPR."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=50, batch_size=512, lr=0.008)):
        embedding_size: int = param(256, help="Embedding size d (strong L2 keeps a large d from overfitting).",
                                    low=1, high=2048, log=True)
        legacy_names = {"factors": "embedding_size", "presence_factors": "presence_embedding_size"}
        loss: str = param("mse", help="mse: predict ratings; bce: consumed vs sampled unconsumed; "
                                      "bpr: rank consumed above unconsumed.", choices=("mse", "bce", "bpr"))
        reg: float = param(0.075, help="L2 penalty on the user and item vectors each example touches.",
                           low=0.0, high=10.0)
        bias_reg: float = param(0.02, help="L2 penalty on the user and item biases each example touches.",
                                low=0.0, high=10.0)
        negatives: int = param(4, help="Sampled unconsumed items per consumed one (loss = bce).", low=1, high=100)
        lr_decay: float = param(0.975, help="Step size multiplier after every epoch (1 = constant).",
                                low=0.5, high=1.0)
        init_std: float = param(0.01, help="Standard deviation of the random initial vectors (small: SGD "
                                           "then grows only the directions the data supports).",
                                low=0.0, high=1.0)
        average_last: int = param(20, help="Average the weights of the last n epochs (stochastic weight "
                                          "averaging: smooths SGD noise); 0 = keep the last epoch's.",
                                  low=0, high=1000)
        presence_embedding_size: int = param(64, help="loss = mse: embedding size of the 'did they consume it' "
                                                       "head that the top-N list multiplies with the predicted "
                                                       "rating (0 = rank by predicted rating alone).",
                                             low=0, high=2048)
        presence_lr: float = param(0.2, help="loss = mse: SGD step size per example of the presence head "
                                              "(a logistic loss takes larger steps than a squared error).",
                                   low=1e-5, high=1.0, log=True)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # the rating tables, the presence head's tables and the per-epoch shuffled cell arrays
        width = params["embedding_size"] + (params["presence_embedding_size"] if params["loss"] == "mse" else 0)
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
        return _BiasedMF(train.n_users, train.n_items, self.params.embedding_size, self.global_mean_,
                         init_std=self.params.init_std,
                         presence_factors=self.params.presence_embedding_size if self._with_presence else 0)

    @property
    def _with_presence(self) -> bool:
        return self.params.loss == "mse" and self.params.presence_embedding_size > 0

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

    def _train_epoch(self, train, optimizer, rng, epoch):
        """One pass of plain SGD with the gradients written out (:meth:`_sgd_step`), no autograd.

        Autograd gave every step dense (U + I) x d gradients to zero and apply (sparse ones had to
        be added up per table), several hundred small operations for 512 cells: 0.7 s an epoch on
        the sample. By hand a step reads and writes only the rows its batch touched; a test holds
        each step equal to plain SGD along autograd's gradient of the objective.
        """
        self.module_.train()
        self._start_epoch(epoch)
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in self._batches(train, rng):
                batch = tuple(self._to_device(x) for x in batch)
                total += self._sgd_step(batch) * len(batch[0])
                count += len(batch[0])
        return total / max(count, 1)

    def _sgd_step(self, batch) -> float:
        """One SGD step on a batch (the rows it read, nothing else); returns the batch's loss before it.

        The objective: with ``mse`` the mean squared rating error (plus, with the presence head, that
        head's logistic loss of each consumed cell against its sampled ones); with ``bpr`` -log σ of the
        consumed-minus-sampled score; with ``bce`` the logistic loss of each consumed cell against its
        ``negatives`` sampled ones. Each plus the per-example L2 of the rows read (the sampled cells' too
        for mse and bpr, not for the logistic losses). The gradients are written out here.
        """
        users, items, third, *rest = batch
        m, p, n = self.module_, self.params, len(users)
        rates = [group["lr"] for group in self.optimizer_.param_groups]  # the epoch's decayed step sizes
        if p.loss == "mse":
            cells = items[:, None]                                                # (B, 1)
        elif p.loss == "bpr":
            cells = torch.stack([items, third], dim=1)                            # (B, 2): consumed, sampled
        else:
            cells = torch.cat([items[:, None], third], dim=1)                     # (B, 1 + n), consumed first
        gathered = _gathered(m, users, cells)
        user, user_bias, item, item_bias = gathered
        scores = m.global_mean + user_bias[:, None] + item_bias + (item * user[:, None, :]).sum(-1)
        penalised = None
        if p.loss == "mse":
            error = scores[:, 0] - third
            loss, d_scores = error.pow(2).mean(), (2.0 / n) * error[:, None]
        elif p.loss == "bpr":
            diff = scores[:, 0] - scores[:, 1]                                    # μ and b_u cancel
            pull = torch.sigmoid(-diff) / n
            loss, d_scores = F.softplus(-diff).mean(), torch.stack([-pull, pull], dim=1)
        else:
            (loss, d_scores), penalised = _consumed_vs_sampled(scores), 0
        loss = loss + _sgd_update(m, users, cells, gathered, d_scores, rates[0], p.reg, p.bias_reg, penalised)
        if rest and rest[0] is not None:
            head, cells = m.presence, torch.cat([items[:, None], rest[0]], dim=1)
            gathered = _gathered(head, users, cells)
            user, _, item, item_bias = gathered
            presence_loss, d_scores = _consumed_vs_sampled(item_bias + (item * user[:, None, :]).sum(-1))
            loss = loss + presence_loss + _sgd_update(head, users, cells, gathered, d_scores, rates[1], p.reg,
                                                      penalised=0)
        return float(loss)

    def _score(self, users):
        return self._score_numpy(users) if self._with_presence else super()._score(users)

    def score_candidates(self, users, candidates):
        if self._with_presence:
            return Recommender.score_candidates(self, users, candidates)
        return super().score_candidates(users, candidates)

    def inner_product_embeddings(self):
        if self._with_presence:
            return self.user_embeddings(), self.item_embeddings()
        return super().inner_product_embeddings()

    @property
    def item_bias_(self) -> np.ndarray:
        """b_i, read from the network (so a model stored before it was kept apart still has it)."""
        return self.module_.item_bias.weight.detach().cpu().numpy().ravel()

    @property
    def user_bias_(self) -> np.ndarray:
        """μ + b_u: the part of the score that is the same for all of a user's items."""
        m = self.module_
        return (m.global_mean + m.user_bias.weight[:, 0]).detach().cpu().numpy()

    def _score_batch(self, users):
        if self._with_presence:
            rating = self.module_.all_items(users).clamp(*self.rating_range_)
            return torch.sigmoid(self.module_.presence.score_all(users)) * rating
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
        return self.params.loss == "mse" and self.params.presence_embedding_size == 0

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
