"""Neural Collaborative Filtering (He et al. 2017): GMF, MLP and their fusion, NeuMF.

Every model here scores a (user, item) pair as a logit and learns it as a binary
classifier: each consumed item is a positive, and ``negatives`` items the user did not
consume, drawn afresh every epoch, are negatives (binary cross-entropy).

- ``ncf_gmf``: generalised matrix factorization, h · (p_u ⊙ q_i): a dot product whose
  coordinates get learned weights.
- ``ncf_mlp``: [p_u, q_i] through a tower of ReLU layers whose widths halve, then a
  linear output; it can learn interactions a dot product cannot express.
- ``neumf``: both branches, with their own embeddings, side by side into one linear
  output; optionally initialised from a trained GMF and a trained MLP, as in the paper.

The training loop is ``TorchModel``'s; this file holds the networks, one epoch's batches
and the loss.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import EVAL_BATCH_USERS, FLOAT32, StopTraining, embedding_bytes, param, with_defaults
from recsys.models.latent import cosine_neighbours
from recsys.models.registry import register
from recsys.models.training import PositivePairs, TorchModel, TorchParams, minibatches

# Scoring every item through the MLP tower materialises (users, items, first layer) floats;
# users are taken in chunks so that tensor stays under this many elements (64 MB of float32).
MAX_TOWER_CELLS = 1 << 24
# Embeddings start as N(0, 0.1²). The paper's 0.01 is as good on MovieLens-100K but so
# close to the saddle point at zero that a small log (a few gradient steps per epoch)
# ends the default epochs still there, predicting the share of positives for everything.
EMBEDDING_INIT_STD = 0.1
# NeuMF from pretrained branches: weight of the GMF side in the fused output layer (the
# MLP side gets 1 - alpha). The paper uses 0.5, trusting both branches equally.
PRETRAIN_ALPHA = 0.5


# ====================================================================== networks
class GMF(nn.Module):
    """users (B,), items (B,) -> p_u ⊙ q_i (B, d): matrix factorization before the sum."""

    def __init__(self, n_users: int, n_items: int, factors: int):
        super().__init__()
        self.factors = factors
        self.user = nn.Embedding(n_users, factors)     # P (U, d)
        self.item = nn.Embedding(n_items, factors)     # Q (I, d)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.user(users) * self.item(items)

    def score_all(self, users: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # h · (p_u ⊙ q_i) = (p_u ⊙ h) · q_i: one matrix product scores every item, (B, I)
        return (self.user(users) * weight) @ self.item.weight.T


class MLP(nn.Module):
    """users (B,), items (B,) -> tower([p_u, q_i]) (B, factors).

    ``layers`` ReLU layers whose widths halve down to ``factors`` (the paper's tower
    pattern); each embedding is as wide as the first layer, so the input is twice that.
    """

    def __init__(self, n_users: int, n_items: int, factors: int, layers: int, dropout: float):
        super().__init__()
        widths = [factors * 2 ** k for k in reversed(range(layers))]    # e.g. [32, 16, 8]
        self.factors, self.embedding_size = factors, widths[0]
        self.user = nn.Embedding(n_users, widths[0])   # (U, e)
        self.item = nn.Embedding(n_items, widths[0])   # (I, e)
        for table in (self.user, self.item):
            nn.init.normal_(table.weight, std=EMBEDDING_INIT_STD)
        self.tower = nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip([2 * widths[0]] + widths, widths))
        self.dropout = nn.Dropout(dropout)
        # He initialisation keeps the signal's scale through the ReLU layers. torch's default
        # shrinks it layer by layer, so the small embeddings reach the output as almost a
        # constant and the tower sits on "predict the share of positives" for many epochs
        # (on a 48-user log: still there after 15 epochs; with He init, gone after 5).
        for layer in self.tower:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user(users), self.item(items)], dim=-1)     # (B, 2e)
        return self._rest(self.tower[0](x))

    def _rest(self, x: torch.Tensor) -> torch.Tensor:
        # x: the first layer's pre-activation (..., w1) -> last hidden layer (..., factors)
        x = self.dropout(F.relu(x))
        for layer in self.tower[1:]:
            x = self.dropout(F.relu(layer(x)))
        return x

    def score_all(self, users: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # W [p_u, q_i] = W_u p_u + W_i q_i: the first layer splits into a user part and an
        # item part, so every item costs one broadcast add rather than a concatenation.
        first = self.tower[0]
        e = self.embedding_size
        user_part = self.user(users) @ first.weight[:, :e].T + first.bias    # (B, w1)
        item_part = self.item.weight @ first.weight[:, e:].T                 # (I, w1)
        chunk = max(1, MAX_TOWER_CELLS // (item_part.shape[0] * item_part.shape[1]))
        out = [self._rest(u[:, None, :] + item_part[None, :, :]) @ weight   # (b, I, w1) -> (b, I)
               for u in user_part.split(chunk)]
        return torch.cat(out)


class NCF(nn.Module):
    """One or both branches, concatenated, into a linear output: (B,) pairs -> (B,) logits."""

    def __init__(self, gmf: GMF | None = None, mlp: MLP | None = None):
        super().__init__()
        self.gmf, self.mlp = gmf, mlp
        self.gmf_width = gmf.factors if gmf is not None else 0
        width = self.gmf_width + (mlp.factors if mlp is not None else 0)
        self.head = nn.Linear(width, 1)                 # h (width,) and a bias

    def branches(self):
        return [b for b in (self.gmf, self.mlp) if b is not None]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        features = torch.cat([b(users, items) for b in self.branches()], dim=-1)   # (B, width)
        return self.head(features).squeeze(-1)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        # users (B,) -> logits (B, I); the output layer is linear, so each branch adds its part
        weight = self.head.weight[0]
        scores = self.head.bias
        if self.gmf is not None:
            scores = scores + self.gmf.score_all(users, weight[:self.gmf_width])
        if self.mlp is not None:
            scores = scores + self.mlp.score_all(users, weight[self.gmf_width:])
        return scores


def batch_squared_norms(table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Sum over a batch of ||table[row]||², as each row's squared norm times how often the batch holds it.

    The same number as indexing the rows, without copying them and scattering their gradients
    back; the tables' gradients are dense anyway (every row is updated every step).
    """
    uses = torch.bincount(rows, minlength=len(table)).to(table.dtype)               # (rows of table,)
    return uses @ table.pow(2).sum(1)


# ====================================================================== models
class _NCFModel(PositivePairs, TorchModel):
    """What the three NCF models share: pointwise batches, BCE loss, all-item scoring."""

    family = "neural"

    def _batches(self, train, rng):
        # every positive once, plus ``negatives`` fresh unconsumed items per positive
        users, items = self.pairs_
        k = self.params.negatives
        negatives = self.sampler_.sample(users, rng, per_user=k).ravel()     # (N k,)
        all_users = np.concatenate([users, np.repeat(users, k)])
        all_items = np.concatenate([items, negatives])
        labels = np.concatenate([np.ones(len(users), np.float32), np.zeros(len(negatives), np.float32)])
        for idx in minibatches(len(all_users), self.params.batch_size, rng):
            yield all_users[idx], all_items[idx], labels[idx]

    def _loss(self, batch):
        users, items, labels = batch
        loss = F.binary_cross_entropy_with_logits(self.module_(users, items), labels)
        reg = self.params.reg
        if reg:
            penalty = sum(batch_squared_norms(b.user.weight, users) + batch_squared_norms(b.item.weight, items)
                          for b in self.module_.branches())
            loss = loss + reg * penalty / len(users)
        return loss

    def _optimizer(self, lr: float | None = None):
        # the fused Adam kernel updates the embedding tables (every row, every step: their
        # gradients are dense) in one pass; on CPU that halves the time of an MLP step
        p = self.params
        return torch.optim.Adam(self.module_.parameters(), lr=p.lr if lr is None else lr,
                                weight_decay=p.weight_decay, fused=True)

    def _score_batch(self, users):
        return self.module_.score_all(users)

    def user_embeddings(self) -> np.ndarray:
        """Each user's embedding (U, d); NeuMF concatenates its GMF and MLP embeddings."""
        tables = [b.user.weight for b in self.module_.branches()]
        return torch.cat(tables, dim=1).detach().cpu().numpy().astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        """Each item's embedding (I, d); NeuMF concatenates its GMF and MLP embeddings."""
        tables = [b.item.weight for b in self.module_.branches()]
        return torch.cat(tables, dim=1).detach().cpu().numpy().astype(np.float32)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest items by cosine similarity of their embeddings."""
        return cosine_neighbours(self.item_embeddings(), int(item), k)


@dataclass
class NCFParams(with_defaults(TorchParams, epochs=12, batch_size=4096, lr=1e-2)):
    """What the three NCF models are trained with; each adds the shape of its network."""

    reg: float = param(0.01, help="L2 penalty on the embeddings of the user and item of each training pair.",
                       low=0.0, high=1.0)
    negatives: int = param(8, help="Unconsumed items sampled per consumed one, afresh each epoch (the "
                                   "classifier's negatives).", low=1, high=100)


def _ncf_terms(params: dict, n_users: int, n_items: int, n_interactions: int, gmf: int, mlp: int,
               networks: int = 1, towers: int = 1) -> dict[str, int]:
    """Memory of an NCF model with a GMF branch ``gmf`` wide and an MLP branch whose last layer is ``mlp``
    wide: the embedding tables (trained: gradients and Adam moments; NeuMF trains ``networks`` of them),
    each epoch's (user, item, label) arrays with ``negatives`` sampled items per positive, and in
    scoring the MLP tower over chunks of MAX_TOWER_CELLS (user, item, unit) cells."""
    layers = params.get("layers", 1)
    width = gmf + (mlp * 2 ** (layers - 1) if mlp else 0)
    pairs = n_interactions * (1 + params["negatives"]) * 20 * 2
    tower = towers * MAX_TOWER_CELLS * FLOAT32 * 4 if mlp else 0
    return {"fit": networks * embedding_bytes(n_users + n_items, width) + pairs,
            "kept": (n_users + n_items) * width * FLOAT32 * networks,
            "score": tower + 2 * EVAL_BATCH_USERS * n_items * FLOAT32}


@register
class NCFGMF(_NCFModel):
    """Generalised Matrix Factorization (the GMF branch of He et al. 2017 on its own).

    score = h · (p_u ⊙ q_i) + b. With h all ones this is plain matrix factorization; a
    learned h weighs the latent dimensions, and the logistic loss with sampled negatives
    makes it an implicit-feedback classifier.
    """

    key = "ncf_gmf"
    label = "NCF: GMF"
    description = "Matrix factorization as a neural classifier: a weighted dot product of user and item vectors."

    @dataclass
    class Params(NCFParams):
        embedding_size: int = param(32, help="Embedding size d (the predictive factors).", low=1, high=1024,
                                    log=True)
        legacy_names = {"factors": "embedding_size"}

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        return _ncf_terms(params, n_users, n_items, n_interactions, gmf=params["embedding_size"], mlp=0)

    def _build(self, train):
        return NCF(gmf=GMF(train.n_users, train.n_items, self.params.embedding_size))


@register
class NCFMLP(_NCFModel):
    """The MLP branch of He et al. 2017 on its own.

    score = h · tower([p_u, q_i]) + b: the concatenated embeddings pass through ReLU layers
    whose widths halve, so the network can learn a non-linear user-item interaction.
    """

    key = "ncf_mlp"
    label = "NCF: MLP"
    description = "User and item vectors side by side through a small neural network."

    @dataclass
    class Params(NCFParams):
        # not an embedding size: the embeddings are 2^(layers - 1) times wider than this last layer
        mlp_factors: int = param(16, help="Width of the last hidden layer (the predictive factors).",
                                 low=1, high=1024, log=True)
        legacy_names = {"factors": "mlp_factors"}
        layers: int = param(3, help="Hidden layers; each is half as wide as the one before, and the "
                                    "embeddings are as wide as the first.", low=1, high=6)
        dropout: float = param(0.0, help="Dropout after each hidden layer.", low=0.0, high=0.9)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        return _ncf_terms(params, n_users, n_items, n_interactions, gmf=0, mlp=params["mlp_factors"])

    def _build(self, train):
        p = self.params
        return NCF(mlp=MLP(train.n_users, train.n_items, p.mlp_factors, p.layers, p.dropout))


@register
class NeuMF(_NCFModel):
    """Neural Matrix Factorization (He et al. 2017): GMF and MLP fused.

    The two branches keep separate embeddings (a dot product and a tower want different
    ones) and meet only in the output layer. With ``pretrain`` a GMF and an MLP are first
    trained on their own, with the same seed and epochs; NeuMF starts from their weights,
    its output layer the two output layers side by side, each weighted 1/2, so it starts
    as the average of the two models, and is then fine-tuned for a few epochs at a smaller
    learning rate. The paper fine-tunes with plain SGD; here SGD (lr 0.01 to 1) left the
    validation NDCG where the average put it, Adam at a tenth of the pretraining rate
    added 0.004 to 0.01.
    """

    key = "neumf"
    label = "NCF: NeuMF"
    description = "GMF and MLP side by side: a dot product and a neural network, fused in one output."

    @dataclass
    class Params(with_defaults(NCFParams, epochs=10)):
        embedding_size: int = param(32, help="Embedding size of the GMF branch.", low=1, high=1024, log=True)
        legacy_names = {"factors": "embedding_size"}
        mlp_factors: int = param(16, help="Width of the MLP branch's last hidden layer.", low=1, high=1024,
                                 log=True)
        layers: int = param(3, help="Hidden layers of the MLP branch, each half as wide as the one before.",
                            low=1, high=6)
        dropout: float = param(0.0, help="Dropout after each hidden layer of the MLP branch.", low=0.0, high=0.9)
        pretrain: bool = param(True, help="First train a GMF and an MLP on their own (same seed, epochs and "
                                          "learning rate), start NeuMF from their weights, then fine-tune it.")
        finetune_epochs: int = param(2, help="With pretraining: passes of fine-tuning the fused network.",
                                     low=1, high=1000)
        finetune_lr: float = param(1e-3, help="With pretraining: Adam learning rate of the fine-tuning.",
                                   low=1e-5, high=1.0, log=True)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # with pretraining the GMF and MLP networks are trained, then kept inside the fused one; its
        # scoring peaked at 0.56 GB above the fitted model on ml-latest-small (twice NCF-MLP's tower)
        return _ncf_terms(params, n_users, n_items, n_interactions, gmf=params["embedding_size"],
                          mlp=params["mlp_factors"], networks=2 if params["pretrain"] else 1, towers=2)

    def _fit(self, train, *, valid, progress):
        p = self.params
        self.pretrained_gmf_ = self.pretrained_mlp_ = None
        if not p.pretrain:
            super()._fit(train, valid=valid, progress=progress)
            return
        stages = _Stages(progress, [p.epochs, p.epochs, p.finetune_epochs])
        shared = dict(reg=p.reg, negatives=p.negatives, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr,
                      weight_decay=p.weight_decay, patience=p.patience, seed=p.seed, device=p.device)
        self.pretrained_gmf_ = NCFGMF(embedding_size=p.embedding_size, **shared).fit(
            train, valid=valid, progress=stages.next("gmf_"))
        self.pretrained_mlp_ = NCFMLP(mlp_factors=p.mlp_factors, layers=p.layers, dropout=p.dropout, **shared).fit(
            train, valid=valid, progress=stages.next("mlp_"))
        # the shared loop takes its epoch count from the params: fine-tuning has its own
        self.params = dataclasses.replace(p, epochs=p.finetune_epochs)
        try:
            super()._fit(train, valid=valid, progress=stages.next(""))
        finally:
            self.params = p

    def _build(self, train):
        p = self.params
        if self.pretrained_gmf_ is not None:
            return fuse_pretrained(self.pretrained_gmf_.module_, self.pretrained_mlp_.module_, PRETRAIN_ALPHA)
        return NCF(gmf=GMF(train.n_users, train.n_items, p.embedding_size),
                   mlp=MLP(train.n_users, train.n_items, p.mlp_factors, p.layers, p.dropout))

    def _optimizer(self, lr: float | None = None):
        # a fresh Adam: the two stages' moment estimates belong to other networks
        return super()._optimizer(self.params.finetune_lr if self.pretrained_gmf_ is not None else lr)


def fuse_pretrained(gmf: NCF, mlp: NCF, alpha: float = PRETRAIN_ALPHA) -> NCF:
    """A NeuMF network initialised from a trained GMF and a trained MLP network (He et al. 2017, 3.4.1).

    Both branches are copied; the output layer is [alpha h_gmf, (1 - alpha) h_mlp] with bias
    alpha b_gmf + (1 - alpha) b_mlp, so the new logit starts as that mix of the two models'
    logits: fine-tuning starts from an ensemble, not from scratch.
    """
    net = NCF(gmf=copy.deepcopy(gmf.gmf), mlp=copy.deepcopy(mlp.mlp))
    with torch.no_grad():
        net.head.weight.copy_(torch.cat([alpha * gmf.head.weight, (1 - alpha) * mlp.head.weight], dim=1))
        net.head.bias.copy_(alpha * gmf.head.bias + (1 - alpha) * mlp.head.bias)
    return net


class _Stages:
    """One progress bar over consecutive training stages (NeuMF: GMF, MLP, fine-tuning).

    Each stage's metrics get a prefix ("gmf_loss", ...) so the history tells the stages
    apart. A stop request ends the current stage, and every later stage after its first
    epoch, so what comes out is still a complete, if short-trained, NeuMF.
    """

    def __init__(self, progress, lengths: list[int]):
        self.progress, self.lengths, self.total = progress, lengths, sum(lengths)
        self.started, self.stop_requested = 0, False

    def next(self, prefix: str):
        offset = sum(self.lengths[:self.started])
        self.started += 1

        def report(step: int, _total: int, metrics: dict) -> None:
            try:
                self.progress(offset + step, self.total, {prefix + k: v for k, v in metrics.items()})
            except StopTraining:
                self.stop_requested = True
            # an epoch's report (it has metrics) may stop a stage; the closing one must not
            if self.stop_requested and metrics:
                raise StopTraining

        return report
