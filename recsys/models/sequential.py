"""Sequential family: what a person consumes *next*, given the order of what came before.

- ``markov``: first-order item-to-item transition counts (a sparse matrix), smoothed
  toward popularity; no training loop, one pass over the log.
- ``sasrec``: SASRec (Kang & McAuley 2018), causal self-attention over the item sequence.
- ``gru4rec``: GRU4Rec (Hidasi et al. 2016, losses of Hidasi & Karatzoglou 2018), a GRU
  over the item sequence.

Every model reads a user's training interactions in time order, ties broken by item id
exactly as ``recsys.data.split.leave_last_out`` breaks them, so the held-out last item
really is "the next one" after the sequence the model scores from.

The neural models share one data layout, built once in ``_prepare``: each user's sequence
is cut into rows of ``max_len`` (newest row first, older history in further rows, so no
transition is thrown away) and padded with the item id ``n_items`` — one row past the
catalogue, so real item codes are used unchanged and the padding row of the embedding
table never reaches an output score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.models.base import FLOAT32, Recommender, embedding_bytes, param, with_defaults
from recsys.models.registry import register
from recsys.models.training import NegativeSampler, TorchModel, TorchParams, length_batches

# Users scored per forward pass inside one scoring batch: SASRec's attention maps are
# (users, heads, L, L) per layer, which for 1024 users and L = 200 would be ~1 GB.
SCORE_CHUNK_USERS = 256
# rows of logits the full-softmax cross-entropy holds at once: 256 x 2,000 items is 2 MB, near the
# cache (256 rows ran 1.8x faster than torch's cross-entropy, 1,024 rows 1.4x)
CE_BLOCK_ROWS = 256


# ---------------------------------------------------------------------------- sequences


def time_ordered(train: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) of every training interaction, sorted by user, then time, then item id."""
    histories = train.histories_in_time_order()
    return histories.users, histories.items


def _offsets_from_end(owner: np.ndarray, n_owners: int) -> tuple[np.ndarray, np.ndarray]:
    """For owner-sorted entries: how many entries of the same owner follow each one, and each owner's count."""
    counts = np.bincount(owner, minlength=n_owners)
    return np.cumsum(counts)[owner] - 1 - np.arange(len(owner)), counts


def sequence_windows(owner: np.ndarray, columns: tuple[np.ndarray, ...], length: int, *, pad: int,
                     pad_side: str, n_owners: int, last_only: bool = False):
    """Lay owner-sorted, time-ordered entries out as padded rows of ``length``.

    Each owner's entries are cut into windows of ``length`` counted from the newest one;
    with ``last_only`` only the newest window is kept and row r belongs to owner r (owners
    without entries get an all-padding row). ``pad_side="left"`` right-aligns each window
    (SASRec: the newest item always sits in the last column), ``"right"`` left-aligns it
    (a GRU then starts from its zero state at the first real item).
    Returns one (rows, length) int64 matrix per array in ``columns`` and each row's owner.
    """
    from_end, counts = _offsets_from_end(owner, n_owners)
    window, offset = from_end // length, from_end % length
    if last_only:
        keep, row, row_owner = window == 0, owner, np.arange(n_owners)
    else:
        n_windows = -(-counts // length)                                         # (n_owners,)
        keep = np.ones(len(owner), dtype=bool)
        row = (np.cumsum(n_windows) - n_windows)[owner] + window
        row_owner = np.repeat(np.arange(n_owners), n_windows)
    size = np.minimum(length, counts[owner] - window * length)                  # entries in each one's window
    col = length - 1 - offset if pad_side == "left" else size - 1 - offset
    out = []
    for values in columns:
        matrix = np.full((len(row_owner), length), pad, dtype=np.int64)
        matrix[row[keep], col[keep]] = values[keep]
        out.append(matrix)
    return out, row_owner


def next_item_pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, the item the same user consumed right after) for every consecutive pair."""
    same = users[:-1] == users[1:]
    return users[:-1][same], items[:-1][same], items[1:][same]


def _history_codes(items, n_items: int) -> np.ndarray:
    items = np.asarray(items, dtype=np.int64).ravel()
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise IndexError(f"item codes must lie in [0, {n_items}); got {items.min()}..{items.max()}")
    return items


# ---------------------------------------------------------------------------- Markov chain


@register
class MarkovChain(Recommender):
    """First-order Markov chain over items: P(next = j | last = i) from counted transitions.

    ``C[i, j]`` counts how often some user consumed j right after i. With smoothing α and
    item popularity distribution p, P(j | i) = (C[i, j] + α p_j) / (C[i, ·] + α): a
    Dirichlet prior centred on popularity, so items never seen after i are still ranked
    (by popularity, not arbitrarily), and an item that nobody consumed anything after
    falls back to popularity entirely. A user's score mixes the rows of their last
    ``window`` items with weights decay⁰, decay¹, … (newest first), normalised to sum to 1.
    """

    key = "markov"
    label = "Markov chain"
    family = "sequential"
    description = "Recommends what people most often consumed right after the person's last item."
    needs_timestamps = True

    @dataclass
    class Params:
        smoothing: float = param(1.0, help="Pseudo-counts α spread over items by popularity: P(j|i) = "
                                           "(C[i,j] + α·pop_j) / (C[i,·] + α). Larger = closer to popularity.",
                                 low=0.0, high=10000.0)
        window: int = param(5, help="How many of the person's most recent items vote on the next one "
                                    "(1 = a plain first-order chain: only the last item).", low=1, high=50)
        decay: float = param(0.5, help="Weight of each earlier item relative to the one after it in the window.",
                             low=0.0, high=1.0)

    def _fit(self, train, *, valid, progress):
        n = train.n_items
        users, items = time_ordered(train)
        _, before, after = next_item_pairs(users, items)
        counts = sp.csr_matrix((np.ones(len(before), np.float64), (before, after)), shape=(n, n))
        counts.sum_duplicates()
        self.transitions_ = counts                                                 # (I, I) raw counts
        popularity = train.item_popularity.astype(np.float64)
        self.popularity_ = popularity / max(popularity.sum(), 1.0)                 # (I,) sums to 1
        out_degree = np.asarray(counts.sum(axis=1)).ravel()
        alpha = self.params.smoothing
        total = out_degree + alpha
        safe_total = np.where(total > 0, total, 1.0)
        # share of each row that goes to popularity; 1 for a row with neither counts nor smoothing
        self.fallback_ = np.where(total > 0, alpha / safe_total, 1.0)                      # (I,)
        self.conditional_ = (sp.diags(1.0 / safe_total) @ counts).tocsr()                 # (I, I) C[i,j] / (C[i,·] + α)
        (self.recent_,), _ = sequence_windows(users, (items,), self.params.window, pad=-1, pad_side="left",
                                              n_owners=train.n_users, last_only=True)   # (U, window)
        progress(1, 1)

    def transition_probabilities(self, item: int) -> np.ndarray:
        """P(next = j | last = ``item``) for every item j, (I,) float64, sums to 1."""
        self._require_fitted()
        row = self.conditional_[int(item)].toarray().ravel()
        return row + self.fallback_[int(item)] * self.popularity_

    def _mix(self, recent: np.ndarray) -> np.ndarray:
        """(rows, window) recent item codes (-1 = none, newest last) -> (rows, I) mixed next-item probabilities."""
        n_rows, width = recent.shape
        weights = np.broadcast_to(self.params.decay ** np.arange(width - 1, -1, -1, dtype=np.float64), recent.shape)
        weights = np.where(recent >= 0, weights, 0.0)
        norm = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, norm, out=np.zeros_like(weights), where=norm > 0)
        rows = np.repeat(np.arange(n_rows), width)
        mixer = sp.csr_matrix((weights.ravel(), (rows, np.maximum(recent, 0).ravel())),
                              shape=(n_rows, self.train_.n_items))               # (rows, I)
        fallback = mixer @ self.fallback_
        fallback[norm.ravel() == 0] = 1.0  # no history at all: popularity
        return np.asarray((mixer @ self.conditional_).todense()) + fallback[:, None] * self.popularity_[None, :]

    def _score(self, users):
        return self._mix(self.recent_[users]).astype(np.float32)

    def score_history(self, items) -> np.ndarray:
        """(I,) next-item probabilities after ``items``, read in the order given (last = newest)."""
        self._require_fitted()
        items = _history_codes(items, self.train_.n_items)[-self.params.window:]
        recent = np.full((1, self.params.window), -1, dtype=np.int64)
        recent[0, self.params.window - len(items):] = items
        return self._mix(recent)[0].astype(np.float32)


# ---------------------------------------------------------------------------- shared by the neural models


class SequenceModel(TorchModel):
    """Torch models that read padded windows of each user's item sequence.

    ``_prepare`` builds, once: training rows (inputs and next-item targets, ``max_len``
    wide), each row's user (for negative sampling) and each user's newest window (what
    scoring reads). Subclasses say which side the padding goes (``pad_side``) and map a
    batch of windows to next-item logits with ``_next_logits``.
    """

    needs_timestamps = True
    family = "sequential"
    pad_side = "left"

    def _prepare(self, train):
        super()._prepare(train)
        length, pad = self.params.max_len, train.n_items
        users, items = time_ordered(train)
        pair_user, before, after = next_item_pairs(users, items)
        (self.inputs_, self.targets_), self.row_user_ = sequence_windows(
            pair_user, (before, after), length, pad=pad, pad_side=self.pad_side, n_owners=train.n_users)
        (windows,), _ = sequence_windows(users, (items,), length, pad=pad, pad_side=self.pad_side,
                                         n_owners=train.n_users, last_only=True)
        self.row_length_ = (self.targets_ != pad).sum(axis=1)                     # real positions per row
        self.user_windows_ = torch.from_numpy(windows).to(self.device_)          # (U, L)
        self.popularity_ = train.item_popularity.astype(np.float32)
        if self.params.loss == "bce":
            self.sampler_ = NegativeSampler(train)

    def _score_batch(self, users):
        windows = self.user_windows_[users]
        return torch.cat([self._next_logits(windows[i:i + SCORE_CHUNK_USERS])
                          for i in range(0, len(windows), SCORE_CHUNK_USERS)])

    def _next_logits(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, L) padded windows -> (B, I) scores of the item after each window's newest item."""
        raise NotImplementedError("abstract: each sequence model maps windows to next-item logits")

    def _window(self, items) -> torch.Tensor:
        """A (1, L) padded window of the newest ``max_len`` of ``items``, in the order given."""
        items = _history_codes(items, self.n_items_)[-self.params.max_len:]
        window = np.full((1, self.params.max_len), self.n_items_, dtype=np.int64)
        if self.pad_side == "left":
            window[0, self.params.max_len - len(items):] = items
        else:
            window[0, :len(items)] = items
        return torch.from_numpy(window).to(self.device_)

    def score_history(self, items) -> np.ndarray:
        """(I,) scores of the item that comes after ``items`` (read in the order given, last = newest).

        Only the newest ``max_len`` items are read, as for a training user; an empty
        history gets training popularity.
        """
        self._require_fitted()
        if len(np.atleast_1d(items)) == 0:
            return self.popularity_.copy()
        with torch.no_grad():
            return self._next_logits(self._window(items))[0].float().cpu().numpy()

    def item_embeddings(self) -> np.ndarray:
        """(I, d) item vectors: the input embeddings (the output layer shares them unless it is a separate
        linear layer); the padding row is dropped."""
        self._require_fitted()
        return self.module_.item.weight[:self.n_items_].detach().cpu().numpy().astype(np.float32)

    def _batches(self, train, rng):
        length = self.params.max_len
        for idx in length_batches(self.row_length_, self.params.batch_size, rng):
            # the batch's padding-only columns are cut off: no real position ever reads them
            width = int(self.row_length_[idx].max())
            columns = slice(length - width, length) if self.pad_side == "left" else slice(0, width)
            inputs, targets = self.inputs_[idx, columns], self.targets_[idx, columns]
            if self.params.loss == "bce":
                # one negative per position, never an item this user consumed (Kang & McAuley)
                negatives = self.sampler_.sample(self.row_user_[idx], rng, per_user=inputs.shape[1])
                yield inputs, targets, negatives
            elif self.params.loss == "bpr_max":
                # one shared set of negatives for the whole batch (GRU4Rec's extra samples)
                yield inputs, targets, rng.integers(0, self.n_items_, size=self.params.negatives)
            else:
                yield inputs, targets


class ByteDropout(nn.Module):
    """Dropout whose keep mask is read from random bytes: an element survives when its byte is at
    least round(256 p), and survivors are scaled by 256 / (256 - that), so the mean is kept.

    torch's CPU dropout draws one random number per element; here one 64-bit draw gives eight
    mask bytes, which made the nine dropouts of a SASRec step about four times cheaper (they had
    been a fifth of its training time). The rate is p rounded to a multiple of 1/256 (0.3 ->
    0.3008). On a GPU torch's own dropout is already cheap and is used as is.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(256 * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu" or self.threshold >= 256:
            return F.dropout(x, self.p, True)
        n = x.numel()
        bits = torch.empty((n + 7) // 8, dtype=torch.int64, device=x.device).random_(-2**63, 2**63 - 1)
        keep = bits.view(torch.uint8)[:n].view(x.shape) >= self.threshold
        # one float mask, scaled in place: multiplying by the bool mask converts it twice (forward, backward)
        return x * keep.to(x.dtype).mul_(256 / (256 - self.threshold))


# ---------------------------------------------------------------------------- SASRec


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where a position sees itself and earlier real items only."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.attn_dropout = ByteDropout(dropout)
        self.resid_dropout = ByteDropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x (B, L, d), allowed (B, 1, L, L) bool -> (B, L, d) and the weights (B, heads, L, L)
        B, L, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(B, L, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))                  # (B, h, L, L)
        att = att.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
        y = self.attn_dropout(att) @ v                                           # (B, h, L, hs)
        y = y.transpose(1, 2).contiguous().view(B, L, d)
        return self.resid_dropout(self.proj(y)), att


class FeedForward(nn.Module):
    """SASRec's point-wise feed-forward: the same two-layer MLP applied at every position."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(hidden, hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.dropout = ByteDropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(self.dropout(F.relu(self.fc(x)))))


class AttentionBlock(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + feed-forward(LN(x))."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden)
        self.attn = CausalSelfAttention(hidden, heads, dropout)
        self.ln_2 = nn.LayerNorm(hidden)
        self.mlp = FeedForward(hidden, dropout)

    def forward(self, x, allowed):
        y, att = self.attn(self.ln_1(x), allowed)
        x = x + y
        return x + self.mlp(self.ln_2(x)), att


class SASRecNet(nn.Module):
    """Item + learned position embeddings -> causal attention blocks -> LN; logits share the item table.

    Without positions (``positions=False``) the only trace of order is the causal mask: each
    position attends to a bag of the items up to it, not knowing which came when.
    """

    def __init__(self, n_items: int, max_len: int, hidden: int, layers: int, heads: int, dropout: float,
                 positions: bool = True):
        super().__init__()
        self.pad = n_items
        self.item = nn.Embedding(n_items + 1, hidden, padding_idx=n_items)      # (I + 1, d), last row = padding
        # (L, d), column 0 = oldest
        self.position = nn.Embedding(max_len, hidden) if positions else None
        self.dropout = ByteDropout(dropout)
        self.blocks = nn.ModuleList(AttentionBlock(hidden, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        self.register_buffer("causal", torch.ones(max_len, max_len, dtype=torch.bool).tril(), persistent=False)
        for table in (self.item, self.position):
            if table is not None:
                nn.init.normal_(table.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.item.weight[n_items].zero_()

    def forward(self, seq: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # seq (B, L) left-padded item codes -> hidden states (B, L, d), per-layer weights [(B, h, L, L)]
        B, L = seq.shape
        real = seq != self.pad                                                   # (B, L)
        # a real item never looks at padding; a padding position looks at itself only, so
        # its softmax row is never empty (its output is never used)
        eye = torch.eye(L, dtype=torch.bool, device=seq.device)
        allowed = (self.causal[:L, :L] & real[:, None, :]) | eye                 # (B, L, L)
        x = self.item(seq)                                                       # (B, L, d)
        if self.position is not None:
            # a window narrower than max_len is the right end of a full one (training trims
            # padding-only columns), so its columns are the last L positions
            width = self.position.num_embeddings
            x = x + self.position(torch.arange(width - L, width, device=seq.device))
        x = self.dropout(x)
        weights = []
        for block in self.blocks:
            x, att = block(x, allowed[:, None])
            weights.append(att)
        return self.ln_f(x), weights

    def output_weight(self) -> torch.Tensor:
        """(I, d): the item table without the padding row; logits = hidden @ this.T."""
        return self.item.weight[:self.pad]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        # (..., d) -> (..., I): scores against every real item (the padding row is left out)
        return hidden @ self.output_weight().T


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of the logits ``h @ weight.T`` against ``targets``, with its gradients
    computed in the same pass, a block of rows at a time.

    The same numbers as ``F.cross_entropy(h @ weight.T, targets)``, but the (N, I) logits never
    exist whole: each block's logits become its softmax in place, the target's column loses 1,
    and two matrix products give the block's share of both gradients while it is still in cache.
    torch's log-softmax and its backward read and write the whole (N, I) matrix several times,
    which cost SASRec as much as the three matrix products.
    """

    @staticmethod
    def forward(ctx, h, weight, targets):
        n = len(h)
        grad_h, grad_weight = torch.empty_like(h), torch.zeros_like(weight)
        total = torch.zeros((), dtype=h.dtype, device=h.device)
        for start in range(0, n, CE_BLOCK_ROWS):
            rows = slice(start, start + CE_BLOCK_ROWS)
            block, target = h[rows], targets[rows]
            logits = block @ weight.T                                            # (b, I)
            shifted = logits.sub_(logits.amax(dim=1, keepdim=True))              # in place, max 0
            picked = shifted.gather(1, target[:, None])[:, 0]                    # (b,) the target's
            probs = shifted.exp_()                                               # in place; one exp per cell
            norm = probs.sum(dim=1, keepdim=True)                                # (b, 1)
            total += (norm[:, 0].log() - picked).sum()
            probs.div_(norm)                                                     # softmax
            probs[torch.arange(len(block), device=h.device), target] -= 1.0     # d loss / d logits
            grad_h[rows] = probs @ weight
            grad_weight.addmm_(probs.T, block)
        ctx.save_for_backward(grad_h, grad_weight)
        ctx.n = n
        return total / n

    @staticmethod
    def backward(ctx, grad):
        grad_h, grad_weight = ctx.saved_tensors
        scale = grad / ctx.n
        return grad_h * scale, grad_weight * scale, None


def full_softmax_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` (h (N, d), weight (I, d)) against ``targets`` (N,)."""
    if len(h) == 0 or not (h.requires_grad or weight.requires_grad):
        return F.cross_entropy(h @ weight.T, targets)
    return _FullSoftmaxCrossEntropy.apply(h, weight, targets)


def _next_item_loss(module, hidden: torch.Tensor, targets: torch.Tensor, negatives, loss: str,
                    bpr_max_reg: float = 0.0) -> torch.Tensor:
    """Mean next-item loss over the real positions of a batch; hidden (B, L, d), targets (B, L)."""
    real = targets != module.pad
    h, pos = hidden[real], targets[real]                                         # (N, d), (N,)
    if loss == "ce":
        weight = module.output_weight()
        return F.cross_entropy(module.logits(h), pos) if weight is None else full_softmax_cross_entropy(h, weight, pos)
    pos_vec = module.item(pos)                                                   # (N, d)
    pos_score = (h * pos_vec).sum(-1)                                            # (N,)
    if loss == "bce":
        neg_score = (h * module.item(negatives[real])).sum(-1)                   # (N,)
        return -(F.logsigmoid(pos_score) + F.logsigmoid(-neg_score)).mean()
    # BPR-max: the negatives' softmax weights focus the pairwise loss on the hardest ones
    neg_score = h @ module.item(negatives).T                                     # (N, S)
    # a shared sample can contain a row's own target: it gets no weight rather than a push down
    weight = neg_score.masked_fill(negatives[None, :] == pos[:, None], float("-inf")).softmax(dim=1)
    weight = weight.nan_to_num(0.0)                                              # every sample was the target
    ranked = (weight * torch.sigmoid(pos_score[:, None] - neg_score)).sum(1)
    return (-torch.log(ranked + 1e-10) + bpr_max_reg * (weight * neg_score.pow(2)).sum(1)).mean()


def _sequence_terms(params: dict, n_users: int, n_items: int, n_interactions: int, weights: int,
                    activations: int) -> dict[str, int]:
    """A sequence model's memory: the training windows (inputs and targets, int64, about one window
    per max_len events plus one per person), the weights (with gradients and Adam moments while
    training), one step's activations, and the loss: with loss='ce' a softmax over every item for a
    block of positions at a time (and the gradients of the batch's hidden states), otherwise sampled
    negatives."""
    length, batch = params["max_len"], params["batch_size"]
    windows = (n_interactions + n_users * length) * 16 + n_users * length * 8
    positions = batch * length
    if params["loss"] == "ce":
        # the blocked cross-entropy holds one block of logits; a linear output layer (with its bias) goes
        # through torch's, which holds the whole batch's
        rows = positions if params.get("output") == "linear" else min(positions, CE_BLOCK_ROWS)
        loss = rows * n_items * FLOAT32 * 5 + positions * params["embedding_size"] * FLOAT32 * 2
    else:
        loss = positions * (1 if params["loss"] == "bce" else params["negatives"]) * FLOAT32 * 6
    return {"fit": embedding_bytes(weights, 1) + activations + loss, "kept": windows + weights * FLOAT32,
            "score": SCORE_CHUNK_USERS * length * params["embedding_size"] * FLOAT32 * 16 + 3 * 1024 * n_items * FLOAT32}


@register
class SASRec(SequenceModel):
    """Self-Attentive Sequential Recommendation (Kang & McAuley 2018).

    Each position of a user's window predicts the item that comes after it, seeing only
    itself and earlier items; a user is scored from the hidden state of their newest item.
    Padding is item id ``n_items`` on the left of each window, so the newest item always
    sits at the last position and meets the same position embedding in training and scoring.
    """

    key = "sasrec"
    label = "SASRec (self-attention)"
    description = "A small transformer over the person's item sequence that predicts the next item."

    @dataclass
    class Params(with_defaults(TorchParams, epochs=20, batch_size=128, lr=0.01)):
        embedding_size: int = param(64, help="Width d of the item and position embeddings and of every block.",
                                    low=4, high=1024, log=True)
        legacy_names = {"hidden": "embedding_size"}
        # one block, dropout 0.2, 20 epochs: on ML-100K leave-last-out HR@10 0.196 / 0.196 / 0.203 (seeds
        # 42 / 1 / 2) in 26 s, against 0.188-0.200 in 41 s for two blocks at dropout 0.3 over 30 epochs
        layers: int = param(1, help="Self-attention blocks stacked.", low=1, high=8)
        heads: int = param(1, help="Attention heads per block (must divide embedding_size).", low=1, high=16)
        dropout: float = param(0.2, help="Dropout on embeddings, attention weights and block outputs.",
                               low=0.0, high=0.9)
        max_len: int = param(50, help="Most recent items read per person; longer histories are cut into "
                                       "several training windows.", low=2, high=2000, log=True)
        loss: str = param("ce", help="Cross-entropy over all items (softmax), or binary cross-entropy "
                                     "with one sampled negative per position (the original paper).",
                          choices=("ce", "bce"))
        positions: bool = param(True, help="Add a learned embedding of each position to its item. Off, the "
                                           "model still sees only earlier items (the causal mask) but not "
                                           "in which order they came.")
        added_fields = ("positions",)  # runs stored before the switch keep their ids

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        d, length, layers, batch = params["embedding_size"], params["max_len"], params["layers"], params["batch_size"]
        weights = (n_items + 1 + length) * d + layers * (6 * d * d + 8 * d)
        # per block: ~12 (batch, L, d) activations kept for backward, 3 (batch, heads, L, L) attention maps
        activations = layers * batch * length * (12 * d + 3 * params["heads"] * length) * FLOAT32
        return _sequence_terms(params, n_users, n_items, n_interactions, weights, activations)

    def _build(self, train):
        p = self.params
        if p.embedding_size % p.heads:
            raise DataError(f"heads ({p.heads}) must divide embedding_size ({p.embedding_size}).")
        return SASRecNet(train.n_items, p.max_len, p.embedding_size, p.layers, p.heads, p.dropout, p.positions)

    def _loss(self, batch):
        inputs, targets, *negatives = batch
        hidden, _ = self.module_(inputs)
        return _next_item_loss(self.module_, hidden, targets, negatives[0] if negatives else None, self.params.loss)

    def _next_logits(self, windows):
        hidden, _ = self.module_(windows)
        return self.module_.logits(hidden[:, -1])                                # newest item is the last column

    def attention(self, history) -> np.ndarray:
        """Attention weights (layers, heads, L, L) over ``history`` (item codes, oldest first),
        L = min(len(history), max_len): row q is where position q looked; rows sum to 1 and
        every weight above the diagonal (a later position) is 0."""
        self._require_fitted()
        n = min(len(np.atleast_1d(history)), self.params.max_len)
        if n == 0:
            raise DataError("An attention map needs at least one item in the history.")
        with torch.no_grad():
            _, weights = self.module_(self._window(history))
        stacked = torch.stack([w[0] for w in weights])                           # (layers, h, max_len, max_len)
        return stacked[:, :, -n:, -n:].cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------------------- GRU4Rec


class GRU4RecNet(nn.Module):
    """Item embedding -> GRU -> next-item logits, via the item table (shared) or a linear layer."""

    def __init__(self, n_items: int, hidden: int, layers: int, dropout: float, output: str):
        super().__init__()
        self.pad = n_items
        self.item = nn.Embedding(n_items + 1, hidden, padding_idx=n_items)       # (I + 1, d)
        self.dropout = ByteDropout(dropout)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)
        self.out = nn.Linear(hidden, n_items) if output == "linear" else None    # (d -> I) when not shared
        nn.init.normal_(self.item.weight, std=hidden ** -0.5)
        with torch.no_grad():
            self.item.weight[n_items].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        # seq (B, L) right-padded item codes -> (B, L, d); a real position never sees the padding after it
        states, _ = self.gru(self.dropout(self.item(seq)))
        return self.dropout(states)

    def output_weight(self) -> torch.Tensor | None:
        """(I, d) when items are scored by the shared item table (logits = hidden @ this.T); None for
        the linear output layer, which adds a bias."""
        return self.item.weight[:self.pad] if self.out is None else None

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        # (..., d) -> (..., I)
        return self.out(hidden) if self.out is not None else hidden @ self.output_weight().T


@register
class GRU4Rec(SequenceModel):
    """GRU4Rec (Hidasi et al. 2016): a recurrent net reads the sequence and predicts each next item.

    Windows are padded on the right, so the GRU starts from its zero state at the first
    real item and padding only ever follows the real items (which never see it).
    BPR-max (Hidasi & Karatzoglou 2018) compares the target with a shared sample of
    negatives, weighted by their softmax; cross-entropy over all items is the default
    because it is exact and, at MovieLens catalogue sizes, cheap.
    """

    key = "gru4rec"
    label = "GRU4Rec (recurrent)"
    description = "A recurrent network that reads the person's item sequence and predicts the next item."
    pad_side = "right"

    @dataclass
    class Params(with_defaults(TorchParams, epochs=10, batch_size=64, lr=0.005)):
        embedding_size: int = param(128, help="Width d of the item embeddings and of the GRU state.", low=4,
                                    high=1024, log=True)
        legacy_names = {"hidden": "embedding_size"}
        layers: int = param(1, help="Stacked GRU layers.", low=1, high=4)
        dropout: float = param(0.3, help="Dropout on the embeddings and the GRU output.", low=0.0, high=0.9)
        max_len: int = param(50, help="Most recent items read per person; longer histories are cut into "
                                       "several training windows.", low=2, high=2000, log=True)
        output: str = param("shared", help="Score items with the input item embeddings (shared) or with a "
                                           "separate linear output layer.", choices=("shared", "linear"))
        loss: str = param("ce", help="Cross-entropy over all items, or BPR-max over sampled negatives.",
                          choices=("ce", "bpr_max"))
        negatives: int = param(256, help="BPR-max: negatives sampled per mini-batch.", low=1, high=100000,
                               log=True)
        bpr_max_reg: float = param(1.0, help="BPR-max: penalty on the (softmax-weighted) squared negative scores.",
                                   low=0.0, high=100.0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        d, length, layers, batch = params["embedding_size"], params["max_len"], params["layers"], params["batch_size"]
        weights = (n_items + 1) * d + layers * 6 * d * (d + 1) + (n_items * (d + 1) if params["output"] == "linear"
                                                                   else 0)
        activations = layers * batch * length * 10 * d * FLOAT32
        return _sequence_terms(params, n_users, n_items, n_interactions, weights, activations)

    def _build(self, train):
        p = self.params
        return GRU4RecNet(train.n_items, p.embedding_size, p.layers, p.dropout, p.output)

    def _loss(self, batch):
        inputs, targets, *negatives = batch
        p = self.params
        return _next_item_loss(self.module_, self.module_(inputs), targets, negatives[0] if negatives else None,
                               p.loss, p.bpr_max_reg)

    def _next_logits(self, windows):
        newest = ((windows != self.module_.pad).sum(1) - 1).clamp(min=0)          # (B,) column of the newest item
        hidden = self.module_(windows)                                           # (B, L, d)
        return self.module_.logits(hidden[torch.arange(len(windows), device=windows.device), newest])
