"""Autoencoder recommenders: AutoRec, CDAE and Mult-VAE.

Each squeezes a row of the interaction matrix through a narrow hidden layer and reads
recommendations off the reconstruction:

- ``autorec`` (Sedhain et al. 2015, item-based): an item's column of ratings in, the same
  column out; trained on the observed ratings only, so the output is a rating prediction.
- ``cdae`` (Wu et al. 2016): a user's corrupted binary history plus a per-user vector in,
  the full history out.
- ``mult_vae`` (Liang et al. 2018): a user's history in, a distribution over items out,
  with a variational bottleneck whose KL term is annealed in.

The training loop is ``TorchModel``'s; this file holds the networks, one epoch's batches
and the losses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from recsys.models.base import FLOAT32, TRAINED_FLOAT_BYTES, param, with_defaults
from recsys.models.registry import register
from recsys.models.training import SCORE_BATCH_USERS, TorchModel, TorchParams, dense_rows, minibatches

# A matrix with at most this many cells is kept dense on the device (256 MB of float32):
# row look-ups are then one gather. Bigger ones stay sparse and are densified per batch.
DENSE_CELLS = 1 << 26


class RowStore:
    """The rows of a sparse matrix, handed out as dense float32 tensors on the device."""

    def __init__(self, matrix: sp.spmatrix, device: torch.device):
        self.device = device
        self.matrix = matrix.tocsr().astype(np.float32)
        self.dense = None
        if matrix.shape[0] * matrix.shape[1] <= DENSE_CELLS:
            self.dense = torch.from_numpy(self.matrix.toarray()).to(device)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        # rows (B,) -> (B, n_columns)
        if self.dense is not None:
            return self.dense[rows]
        return torch.from_numpy(dense_rows(self.matrix, rows.cpu().numpy())).to(self.device)


def _row_store_bytes(n_rows: int, n_columns: int, n_interactions: int) -> int:
    """A RowStore: a float32 CSR copy, plus the whole matrix dense when it has at most DENSE_CELLS cells
    (made by toarray and handed to torch without a copy)."""
    dense = n_rows * n_columns * FLOAT32 if n_rows * n_columns <= DENSE_CELLS else 0
    return n_interactions * 8 + dense


def _autoencoder_terms(weights: int, row_stores: int, batch: int, width: int, score_rows: int) -> dict[str, int]:
    """Trained weights (gradients and Adam moments during the fit), the row stores, about eight
    live (batch x width) activations and gradients per step, and four (rows x width) arrays while
    one chunk of users is scored."""
    return {"fit": weights * (TRAINED_FLOAT_BYTES - FLOAT32) + 8 * batch * width * FLOAT32,
            "kept": weights * FLOAT32 + row_stores, "score": 4 * score_rows * width * FLOAT32}


class StoredCellDropout(nn.Module):
    """Dropout of a mostly-zero input (histories): the same in distribution as ``nn.Dropout``, but the
    random draws are made for the stored (non-zero) cells alone, a twentieth of a MovieLens row. Drawing
    one per cell of the dense batch was a sixth of a CDAE training step."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        flat = x.reshape(-1)
        stored = flat.nonzero().squeeze(1)
        kept = torch.rand(len(stored), device=x.device) >= self.p
        out = torch.zeros_like(flat)
        out[stored] = flat[stored] * kept / (1.0 - self.p)
        return out.view_as(x)


class CosineDecay:
    """Mixin for a TorchModel: the learning rate falls from ``lr`` to 0 along a half cosine.

    With a constant rate the small batches keep the last epochs jumping around the optimum,
    so the final model is a noisy draw; decaying it lets them settle. Measured on
    MovieLens-100K validation (two splits, NDCG@10): Mult-VAE +0.013, CDAE +0.003.
    """

    fused_adam = True  # measured: each autoencoder's NDCG@10 unchanged to the third decimal

    def _optimizer(self):
        self.optimizer_ = super()._optimizer()
        return self.optimizer_

    def _start_epoch(self, epoch):
        super()._start_epoch(epoch)
        progress = (epoch - 1) / self.params.epochs
        for group in self.optimizer_.param_groups:
            group["lr"] = self.params.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# ====================================================================== AutoRec
class _AutoRecNet(nn.Module):
    """One item's ratings r (B, U) -> code h = sigmoid(r W + b) (B, h) -> per user: rating and presence.

    ``rating`` (h V + c) is the paper's decoder; ``presence`` (h P + d) is a second decoder of
    the same code giving the logit that each user rated the item at all.
    """

    def __init__(self, n_users: int, hidden: int):
        super().__init__()
        self.encoder = nn.Linear(n_users, hidden)    # W, b
        self.rating = nn.Linear(hidden, n_users)     # V, c: one output per user
        self.presence = nn.Linear(hidden, n_users)   # P, d

    def encode(self, ratings: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(ratings))


@register
class AutoRec(CosineDecay, TorchModel):
    """Item-based AutoRec (I-AutoRec, Sedhain et al. 2015), with a presence decoder for ranking.

    Each item is the vector of the ratings its users gave (0 where they gave none). The
    network reconstructs it, and the squared error counts only the observed ratings, so the
    output at an unrated cell is a rating *prediction*; L2 on the weights keeps it from
    overfitting the few observed.

    A predicted rating answers "how much would you like it if you watched it", not "will you
    watch it", and ranks badly: on MovieLens-100K the paper's model alone scores NDCG@10 0.17,
    below popularity (0.22). So a second decoder of the same item code learns, with binary
    cross-entropy on every cell, the probability that each user rated the item, and top-N
    scores are the expected value of the input cell, P(rated) × predicted rating: the
    reconstruction of the zero-filled rating matrix (NDCG@10 0.44). ``predict`` still returns
    the rating decoder alone (u1 RMSE 0.90). ``presence_weight = 0`` gives the paper's model.

    40 epochs at a learning rate of 0.002 (the rate decays to 0 either way) rank better than 60 at
    0.001 in two thirds of the time: MovieLens-100K random 80/20, split seeds 42 / 1 / 2, NDCG@10
    0.436 / 0.437 / 0.437 against 0.433 / 0.437 / 0.433. 30 epochs at 0.003 ranked higher still there
    (0.438) but overfit small data: a 24 x 24 block pattern was no longer recovered.
    """

    key = "autorec"
    label = "AutoRec (item-based)"
    family = "neural"
    description = "An autoencoder over each movie's ratings; predicts the ratings people have not given yet."
    needs_ratings = True

    @dataclass
    class Params(with_defaults(TorchParams, epochs=40, batch_size=64, lr=0.002)):
        embedding_size: int = param(500, help="Size of the hidden layer (the item code).", low=1, high=4096,
                                    log=True)
        legacy_names = {"hidden": "embedding_size"}
        reg: float = param(100.0, help="L2 penalty λ on the weights: λ/2 · ‖weights‖² against the sum of "
                                       "squared rating errors.", low=0.0, high=10000.0, log=True)
        presence_weight: float = param(1.0, help="Weight of the 'did this user rate it' loss; ranking uses "
                                                 "P(rated) × rating. 0 = the paper's AutoRec: ranks by "
                                                 "predicted rating alone.", low=0.0, high=100.0)
        masked: bool = param(True, help="Count only the observed ratings in the reconstruction error (the "
                                        "paper). Off, every unrated cell counts as a rating of 0 and the "
                                        "predictions sink toward 0.")
        added_fields = ("masked",)  # runs stored before the switch keep their ids

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        h = params["embedding_size"]
        weights = n_users * h * 3 + h
        return _autoencoder_terms(weights, 2 * _row_store_bytes(n_items, n_users, n_interactions),
                                  params["batch_size"], 3 * n_users, SCORE_BATCH_USERS)

    def _prepare(self, train):
        super()._prepare(train)
        self.ratings_ = RowStore(train.csr.T, self.device_)       # (I, U) ratings, 0 = unrated
        self.observed_ = RowStore(train.seen.T, self.device_)     # (I, U) 1 = rated
        self.n_observed_ = train.n_interactions
        self.rating_range_ = (float(train.rating.min()), float(train.rating.max()))
        self._item_codes = None

    def _build(self, train):
        return _AutoRecNet(train.n_users, self.params.embedding_size)

    def _batches(self, train, rng):
        for items in minibatches(self.n_items_, self.params.batch_size, rng):
            yield (items,)

    def _loss(self, batch):
        (items,) = batch
        p, m = self.params, self.module_
        ratings, observed = self.ratings_[items], self.observed_[items]       # (B, U)
        code = m.encode(ratings)                                              # (B, h)
        error = (m.rating(code) - ratings) ** 2
        # unmasked, the zeros that stand for "not rated" are learned as ratings of 0
        loss = (error * observed).sum() if p.masked else error.sum()
        if p.presence_weight > 0:
            presence = F.binary_cross_entropy_with_logits(m.presence(code), observed, reduction="sum")
            loss = loss + p.presence_weight * presence
        # the paper's objective (a sum over all items + λ/2 · ‖weights‖²), estimated from this
        # batch, divided by the number of ratings so it reads as a per-rating error. The penalty's
        # gradient, λ · weights / ratings, is Adam's weight decay on those weights (see _param_groups):
        # the same step without differentiating ‖weights‖², which cost a sixth of each step
        with torch.no_grad():
            penalty = 0.5 * p.reg * sum(torch.dot(w.view(-1), w.view(-1)) for w in self._penalised())
        return (loss * (self.n_items_ / len(items)) + penalty) / self.n_observed_

    def _penalised(self) -> list[torch.Tensor]:
        """The weight matrices under the L2 penalty (the presence decoder's only when it is trained)."""
        m = self.module_
        return [m.encoder.weight, m.rating.weight] + ([m.presence.weight] if self.params.presence_weight > 0 else [])

    def _param_groups(self):
        penalised = self._penalised()
        rest = [w for w in self.module_.parameters() if all(w is not x for x in penalised)]
        l2 = self.params.reg / self.n_observed_
        return [{"params": penalised, "weight_decay": self.params.weight_decay + l2}, {"params": rest}]

    def _start_epoch(self, epoch):
        super()._start_epoch(epoch)
        self._item_codes = None  # the weights are about to change

    def _finish(self, train):
        self._item_codes = None  # the best epoch's weights were just loaded

    def _codes(self) -> torch.Tensor:
        """Hidden code of every item (I, h), computed once per set of weights."""
        if self._item_codes is None:
            items = torch.arange(self.n_items_, device=self.device_)
            self._item_codes = torch.cat([self.module_.encode(self.ratings_[chunk])
                                          for chunk in items.split(SCORE_BATCH_USERS)])
        return self._item_codes

    def _score_batch(self, users):
        # every item's reconstruction, read at these users' output units: (B, I)
        m, codes = self.module_, self._codes()
        rating = m.rating.weight[users] @ codes.T + m.rating.bias[users, None]
        if self.params.presence_weight == 0:
            return rating
        presence = torch.sigmoid(m.presence.weight[users] @ codes.T + m.presence.bias[users, None])
        return presence * rating.clamp(*self.rating_range_)

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings for (user, item) pairs, clipped to the training rating range."""
        users = torch.as_tensor(np.asarray(users, np.int64), device=self.device_)
        items = torch.as_tensor(np.asarray(items, np.int64), device=self.device_)
        rating = self.module_.rating
        with torch.no_grad():
            pred = (self._codes()[items] * rating.weight[users]).sum(1) + rating.bias[users]
        return np.clip(pred.cpu().numpy(), *self.rating_range_).astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        """The hidden code of each item (I, h)."""
        with torch.no_grad():
            return self._codes().cpu().numpy().astype(np.float32)

    def user_embeddings(self) -> np.ndarray:
        """Each user's rating-decoder row (U, h): predicted rating = item code · row + user bias."""
        return self.module_.rating.weight.detach().cpu().numpy().astype(np.float32)


# ====================================================================== CDAE
class _CDAENet(nn.Module):
    """x (B, I) -> dropout -> act(x W + V_u + b) (B, h) -> h W' + b' (B, I) logits."""

    def __init__(self, n_users: int, n_items: int, hidden: int, corruption: float, activation: str):
        super().__init__()
        self.corrupt = StoredCellDropout(corruption)   # rescales survivors by 1/(1-q), as in the paper
        self.encoder = nn.Linear(n_items, hidden)      # W, b
        self.user = nn.Embedding(n_users, hidden)      # V_u: what the history alone does not say
        self.decoder = nn.Linear(hidden, n_items)      # W', b'
        self.activation = torch.sigmoid if activation == "sigmoid" else (lambda h: h)
        nn.init.normal_(self.user.weight, std=0.01)

    def encode(self, history: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.activation(self.encoder(self.corrupt(history)) + self.user(users))

    def forward(self, history: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(history, users))


@register
class CDAE(CosineDecay, TorchModel):
    """Collaborative Denoising Auto-Encoder (Wu et al. 2016).

    A user's binary history, with some of it dropped at random, goes in; the whole history
    must come out. Dropping items teaches the network to recover items from the rest of the
    history, which is recommending. A per-user vector added to the hidden layer lets it
    learn what the history alone does not explain. The paper's full-row cross-entropy beat a
    multinomial loss on MovieLens-100K validation (NDCG@10 0.227 against 0.212), so it is the default.
    """

    key = "cdae"
    label = "CDAE"
    family = "neural"
    description = "A denoising autoencoder of each person's history, plus a learned vector per person."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=30, batch_size=64, lr=0.003)):
        embedding_size: int = param(200, help="Size of the hidden layer (the user code).", low=1, high=4096,
                                    log=True)
        legacy_names = {"hidden": "embedding_size"}
        corruption: float = param(0.5, help="Share of each history dropped at random in training (q).",
                                  low=0.0, high=0.95, step=0.05)
        activation: str = param("sigmoid", help="Hidden-layer function: sigmoid, as in the paper, or identity.",
                                choices=("sigmoid", "identity"))
        loss: str = param("bce", help="bce: each item consumed or not, on the full row (the paper); "
                                      "multinomial: the history as draws from a softmax over all items.",
                          choices=("bce", "multinomial"))

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        h = params["embedding_size"]
        weights = 2 * n_items * h + n_users * h
        return _autoencoder_terms(weights, _row_store_bytes(n_users, n_items, n_interactions),
                                  params["batch_size"], n_items, SCORE_BATCH_USERS)

    def _prepare(self, train):
        super()._prepare(train)
        self.history_rows_ = RowStore(train.positives, self.device_)   # (U, I) binary

    def _build(self, train):
        p = self.params
        net = _CDAENet(train.n_users, train.n_items, p.embedding_size, p.corruption, p.activation)
        # start the output at each item's base rate, so training does not first spend its steps
        # pushing thousands of unconsumed items down from p = 0.5. Measured (validation NDCG@10):
        # ml-latest-small 0.102 -> 0.160; MovieLens-100K as good in half the epochs (0.229 at 30).
        share = np.asarray(train.positives.sum(axis=0)).ravel() / train.n_users
        share = np.clip(share, 0.5 / train.n_users, 1.0 - 0.5 / train.n_users)
        prior = np.log(share) if p.loss == "multinomial" else np.log(share / (1.0 - share))
        with torch.no_grad():
            net.decoder.bias.copy_(torch.from_numpy(prior.astype(np.float32)))
        return net

    def _batches(self, train, rng):
        for users in minibatches(self.n_users_, self.params.batch_size, rng):
            yield (users,)

    def _loss(self, batch):
        (users,) = batch
        history = self.history_rows_[users]                       # (B, I)
        logits = self.module_(history, users)                     # (B, I)
        if self.params.loss == "multinomial":
            return -(F.log_softmax(logits, dim=1) * history).sum(1).mean()
        # summed over items (not averaged) so the gradient per user does not shrink with the catalogue
        return F.binary_cross_entropy_with_logits(logits, history, reduction="sum") / len(users)

    def _score_batch(self, users):
        return self.module_(self.history_rows_[users], users)

    def item_embeddings(self) -> np.ndarray:
        """Decoder weights (I, h): score = user code · item row + item bias."""
        return self.module_.decoder.weight.detach().cpu().numpy().astype(np.float32)

    def user_embeddings(self) -> np.ndarray:
        """Each user's hidden code (U, h) from the uncorrupted history and the user vector."""
        users = torch.arange(self.n_users_, device=self.device_)
        with torch.no_grad():
            codes = [self.module_.encode(self.history_rows_[b], b) for b in users.split(SCORE_BATCH_USERS)]
        return torch.cat(codes).cpu().numpy().astype(np.float32)


# ====================================================================== Mult-VAE
class _MultVAENet(nn.Module):
    """x (B, I) -> normalise, dropout -> tanh (B, H) -> mu, logvar (B, d) -> z -> tanh (B, H) -> logits (B, I)."""

    def __init__(self, n_items: int, hidden: int, latent: int, dropout: float):
        super().__init__()
        self.drop = StoredCellDropout(dropout)
        self.encoder = nn.Linear(n_items, hidden)
        self.to_posterior = nn.Linear(hidden, 2 * latent)       # mu and logvar side by side
        self.decoder_hidden = nn.Linear(latent, hidden)
        self.decoder = nn.Linear(hidden, n_items)

    def encode(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # unit length, so a heavy user's code is not just a louder light user's
        x = self.drop(F.normalize(history, dim=1))
        h = torch.tanh(self.encoder(x))                          # (B, H)
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)         # (B, d) each
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.tanh(self.decoder_hidden(z)))   # (B, I) logits

    def forward(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(history)
        if self.training:
            # reparameterisation: the sample is a differentiable function of mu and logvar
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return self.decode(z), mu, logvar


@register
class MultVAE(CosineDecay, TorchModel):
    """Variational autoencoder with a multinomial likelihood (Mult-VAE, Liang et al. 2018).

    A user's history, normalised and partly dropped, is encoded into a Gaussian; a sample is
    decoded into a softmax over all items, trained to give the history high probability.
    The KL term pulls codes towards the prior; its weight grows linearly from 0 to ``beta``
    over ``anneal_steps`` gradient steps, so the network first learns to reconstruct and
    only then to regularise. Scoring decodes the mean code, with no sampling. A thousand users
    need more regularisation than the paper's millions: on MovieLens-100K validation β = 0.5
    beat 0.2, 0.3 and 1.0 (NDCG@10 0.226 against 0.218, 0.221 and 0.223). A latent code of 100
    rather than the paper's 200, 25 epochs at a learning rate of 0.004 rather than 60 at 0.002:
    MovieLens-100K random 80/20, split seeds 42 / 1 / 2, NDCG@10 0.435 / 0.433 / 0.430 against
    0.424 / 0.425 / 0.425, in under half the training time.
    """

    key = "mult_vae"
    label = "Mult-VAE"
    family = "neural"
    description = "A variational autoencoder of each person's history that outputs a distribution over items."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=25, batch_size=64, lr=0.004)):
        hidden: int = param(600, help="Size of the encoder and decoder hidden layers.", low=1, high=4096, log=True)
        embedding_size: int = param(100, help="Size of the latent code (each user's vector).", low=1, high=2048,
                                    log=True)
        legacy_names = {"latent": "embedding_size"}
        dropout: float = param(0.5, help="Share of the input history dropped in training.", low=0.0, high=0.95,
                               step=0.05)
        beta: float = param(0.5, help="Final weight of the KL term (annealed to from 0).", low=0.0, high=1.0,
                            step=0.05)
        anneal_steps: int = param(300, help="Gradient steps over which the KL weight grows from 0 to beta "
                                            "(0 = beta from the first step).", low=0, high=1_000_000)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        h, z = params["hidden"], params["embedding_size"]
        weights = 2 * n_items * h + 3 * h * z
        return _autoencoder_terms(weights, _row_store_bytes(n_users, n_items, n_interactions),
                                  params["batch_size"], n_items, SCORE_BATCH_USERS)

    def _prepare(self, train):
        super()._prepare(train)
        self.history_rows_ = RowStore(train.positives, self.device_)   # (U, I) binary
        self.steps_ = 0

    def _build(self, train):
        p = self.params
        return _MultVAENet(train.n_items, p.hidden, p.embedding_size, p.dropout)

    def _batches(self, train, rng):
        for users in minibatches(self.n_users_, self.params.batch_size, rng):
            yield (users,)

    def kl_weight(self, step: int) -> float:
        """β · min(1, step / anneal_steps): the KL weight at gradient step ``step`` (0-based)."""
        p = self.params
        if p.anneal_steps == 0:
            return p.beta
        return p.beta * min(1.0, step / p.anneal_steps)

    def _loss(self, batch):
        (users,) = batch
        history = self.history_rows_[users]                                  # (B, I)
        logits, mu, logvar = self.module_(history)
        log_likelihood = (F.log_softmax(logits, dim=1) * history).sum(1)      # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)           # (B,) KL(q(z|x) || N(0, I))
        self.last_kl_weight_ = self.kl_weight(self.steps_)
        self.steps_ += 1  # _loss runs once per gradient step
        return (-log_likelihood + self.last_kl_weight_ * kl).mean()

    def _score_batch(self, users):
        logits, _, _ = self.module_(self.history_rows_[users])
        return logits

    def score_history(self, items) -> np.ndarray:
        """Scores (I,) for a person who consumed ``items``: fold-in, the history encoded like a user's."""
        self._require_fitted()
        row = torch.from_numpy(self._history_row(items).toarray()).to(self.device_)
        with torch.no_grad():
            logits, _, _ = self.module_(row)
        return logits[0].cpu().numpy().astype(np.float32)

    def item_embeddings(self) -> np.ndarray:
        """Decoder output weights (I, H)."""
        return self.module_.decoder.weight.detach().cpu().numpy().astype(np.float32)

    def user_embeddings(self) -> np.ndarray:
        """Each user's posterior mean (U, d)."""
        users = torch.arange(self.n_users_, device=self.device_)
        with torch.no_grad():
            codes = [self.module_.encode(self.history_rows_[b])[0] for b in users.split(SCORE_BATCH_USERS)]
        return torch.cat(codes).cpu().numpy().astype(np.float32)
