"""The one torch training loop every neural, graph and sequential model shares.

A subclass builds its ``nn.Module`` and says what one mini-batch is and what its loss is;
this class owns the rest: seeding, device, the optimiser, one epoch of mini-batches and
batched no-grad scoring. The epoch loop itself (validation NDCG, early stopping that keeps
the best epoch, progress, cancel and stop requests) is ``IterativeModel``'s, shared with iALS.
"""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from recsys.data.dataset import Dataset
from recsys.evaluation.validation import validation_ndcg
from recsys.models.base import param
from recsys.models.iterative import IterativeModel

SCORE_BATCH_USERS = 1024


@dataclass
class TorchParams:
    """Hyperparameters every torch model has; a model adds its own fields and changes these defaults
    with ``with_defaults(TorchParams, epochs=..., lr=...)`` (help and ranges stay here)."""

    epochs: int = param(20, help="Passes over the training data (interactions, users, items or sequences: "
                                 "whatever one training example of the model is).", low=1, high=1000)
    batch_size: int = param(1024, help="Training examples per gradient step.", low=1, high=65536, log=True)
    lr: float = param(1e-3, help="Learning rate of the optimiser (Adam, unless the model's description "
                                 "names another or a schedule).", low=1e-5, high=1.0, log=True)
    weight_decay: float = param(0.0, help="L2 penalty on all weights (Adam weight decay).", low=0.0, high=1.0)
    patience: int = param(3, help="With a validation split: stop after this many epochs without a better "
                                  "validation NDCG@10 and keep the best epoch (0 = train every epoch).",
                          low=0, high=100)
    seed: int = param(42, help="Random seed: same data + parameters + seed = same model.", low=0)
    device: str = param("auto", help="Where to train: 'auto' uses a CUDA GPU when there is one.",
                        choices=("auto", "cpu", "cuda"))


# torch's intra-op thread count is one setting for the whole process: trainings in several server
# threads that lower it share one saved count, and the last one out restores it
_THREADS_LOCK = threading.Lock()
_threads_saved: list[int] = []  # [count before the first lowering] while any lowering is active
_threads_depth = 0


@contextmanager
def intra_op_threads(n: int | None):
    """Run the block with at most ``n`` torch intra-op threads (None: leave the count alone).

    The count is process-wide, so while the block runs other torch work in the process gets at most
    ``n`` threads too (slower, never wrong); nested and concurrent blocks restore the count that was
    there before the first of them.
    """
    global _threads_depth
    if n is None:
        yield
        return
    with _THREADS_LOCK:
        if _threads_depth == 0:
            _threads_saved[:] = [torch.get_num_threads()]
        _threads_depth += 1
        if n < torch.get_num_threads():
            torch.set_num_threads(n)
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_depth -= 1
            if _threads_depth == 0:
                torch.set_num_threads(_threads_saved.pop())


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        from recsys.data.errors import DataError

        raise DataError("device='cuda' was asked for, but this machine has no CUDA GPU; use 'auto' or 'cpu'.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


MIN_STEPS_PER_EPOCH = 8


def minibatches(n: int, batch_size: int, rng: np.random.Generator, shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) in (shuffled) chunks of at most ``batch_size``.

    On small data the chunks shrink so an epoch still has ``MIN_STEPS_PER_EPOCH`` steps:
    otherwise a batch size tuned for MovieLens would give a 200-row upload one gradient
    step per epoch and defaults that learn nothing there.
    """
    batch_size = max(1, min(batch_size, -(-n // MIN_STEPS_PER_EPOCH)))
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of rows of similar length, each holding about as many real entries as
    ``batch_size`` random rows would, in shuffled order.

    A padded window costs as much as a full one, so random batches of a sequence model are
    as wide as their longest row and a third of the sample's positions were padding. Rows
    sorted by length (ties in random order) are cut where the running count of real entries
    passes ``batch_size`` times the mean length: an epoch keeps the same number of steps and
    each step about the same number of real positions, so the loss weights every position as
    before, and each batch can be trimmed to its own longest row. Rows of length 0 are dropped.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = np.flatnonzero(lengths > 0)
    if not len(rows):
        return
    batch_size = max(1, min(batch_size, -(-len(rows) // MIN_STEPS_PER_EPOCH)))
    rows = rows[rng.permutation(len(rows))]
    rows = rows[np.argsort(lengths[rows], kind="stable")]
    filled = np.cumsum(lengths[rows])                                            # real entries up to each row
    budget = batch_size * filled[-1] / len(rows)
    cuts = np.searchsorted(filled, np.arange(budget, filled[-1], budget), side="right")
    batches = [b for b in np.split(rows, np.unique(cuts)) if len(b)]
    for i in rng.permutation(len(batches)):
        yield batches[i]


class TorchModel(IterativeModel):
    """Base of every torch model. Subclasses implement:

    - ``_build(train) -> nn.Module``: the network (put data-derived buffers on it too);
    - ``_batches(train, rng) -> iterator of tuples``: one epoch of mini-batches; numpy
      arrays and tensors in them are moved to the device for you;
    - ``_loss(batch) -> scalar tensor``: uses ``self.module_``;
    - ``_score_batch(users) -> (len(users), n_items) tensor``: in eval mode, no grad.

    Optional: ``_prepare(train)`` before building (tensors of the training matrix),
    ``_start_epoch(epoch)`` (e.g. KL annealing), ``_finish(train)`` after training (cache
    embeddings for fast scoring).
    """

    Params = TorchParams
    # torch's working space in a training (autograd, the allocator's cache, oneDNN/MKL buffers). The
    # first torch training of a process pays another 100-250 MB once (libraries, thread pools), which
    # a warm server has already paid; estimates are per training on a warm server
    memory_overhead = 48 * 1024**2
    # Adam's fused kernel updates every weight in one pass instead of about ten (13.7 -> 1.4 ms a step
    # for Mult-VAE's two million weights on one CPU thread). Its rounding differs from the per-tensor
    # loop's in the last bits, so a model opts in where it was measured to keep its quality
    fused_adam: bool = False
    # Intra-op threads while training, where a model's steps are many small operations: splitting an
    # operation on 512 x 256 floats between two threads costs more in hand-over than it saves (mf_sgd's
    # step took 2.9 ms on two threads, 1.8 ms on one). None = torch's setting. Scoring is not affected.
    # A server's training workers run on one thread anyway (recsys.jobs.TORCH_THREADS).
    training_threads: int | None = None

    # ------------------------------------------------------------------ loop
    def _fit(self, train: Dataset, *, valid: Dataset | None, progress) -> None:
        p = self.params
        torch.manual_seed(p.seed)
        self.device_ = resolve_device(p.device)
        self._prepare(train)
        self.module_ = self._build(train).to(self.device_)
        self.optimizer_ = self._optimizer()
        self._rng = np.random.default_rng(p.seed)  # one stream through every epoch; not part of the model
        try:
            with intra_op_threads(self.training_threads if self.device_.type == "cpu" else None):
                self._train_epochs(train, valid, progress, epochs=p.epochs, patience=p.patience)
        finally:
            del self._rng
        self.module_.eval()
        self._finish(train)

    def _run_epoch(self, train: Dataset, epoch: int) -> dict:
        return {"loss": self._train_epoch(train, self.optimizer_, self._rng, epoch)}

    def _snapshot(self) -> dict:
        return copy.deepcopy(self.module_.state_dict())

    def _restore(self, state: dict) -> None:
        self.module_.load_state_dict(state)

    def _train_epoch(self, train: Dataset, optimizer, rng: np.random.Generator, epoch: int) -> float:
        self.module_.train()
        self._start_epoch(epoch)
        total, count = 0.0, 0
        for batch in self._batches(train, rng):
            batch = tuple(self._to_device(x) for x in batch)
            loss = self._loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            size = len(batch[0])
            total += float(loss.detach()) * size
            count += size
        return total / max(count, 1)

    def _validate(self, train: Dataset, valid: Dataset) -> float:
        self.module_.eval()
        try:
            return validation_ndcg(self._score_numpy, train, valid, k=10)
        finally:
            self.module_.train()

    def _to_device(self, x):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        return x.to(self.device_) if isinstance(x, torch.Tensor) else x

    def _optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self._param_groups(), lr=self.params.lr, weight_decay=self.params.weight_decay,
                                fused=self.fused_adam or None)

    def _param_groups(self):
        """What the optimiser trains: the module's parameters, or groups of them with their own settings."""
        return self.module_.parameters()

    # ------------------------------------------------------------------ scoring
    def _score(self, users):
        return self._score_numpy(users)

    def _score_numpy(self, users: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(users), SCORE_BATCH_USERS):
                batch = torch.as_tensor(users[start:start + SCORE_BATCH_USERS], device=self.device_)
                out.append(self._score_batch(batch).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.n_items_), dtype=np.float32)
        return np.concatenate(out)

    # ------------------------------------------------------------------ hooks
    def _prepare(self, train: Dataset) -> None:
        self.n_users_, self.n_items_ = train.n_users, train.n_items

    def _build(self, train: Dataset) -> torch.nn.Module:
        raise NotImplementedError("abstract: each torch model builds its module")

    def _batches(self, train: Dataset, rng: np.random.Generator):
        raise NotImplementedError("abstract: each torch model defines its mini-batches")

    def _loss(self, batch: tuple) -> torch.Tensor:
        raise NotImplementedError("abstract: each torch model defines its loss")

    def _score_batch(self, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("abstract: each torch model scores a batch of users")

    def _start_epoch(self, epoch: int) -> None:
        """Called before each epoch (the module is in train mode)."""

    def _finish(self, train: Dataset) -> None:
        """Called once after training, with the best weights loaded and eval mode on."""


class PositivePairs:
    """Mixin for a TorchModel trained on the (user, consumed item) pairs of the training set, with
    unconsumed items sampled against them. Its default epoch is BPR's: each pair once, in shuffled
    mini-batches of (user, consumed item, one sampled unconsumed item) triples."""

    # negatives drawn in proportion to popularity^power (0 = uniformly)
    negative_popularity_power: float = 0.0

    def _prepare(self, train: Dataset) -> None:
        super()._prepare(train)
        pos = train.positives.tocoo()
        self.pairs_ = (pos.row.astype(np.int64), pos.col.astype(np.int64))
        self.sampler_ = NegativeSampler(train, self.negative_popularity_power)

    def _batches(self, train: Dataset, rng: np.random.Generator):
        users, items = self.pairs_
        for idx in minibatches(len(users), self.params.batch_size, rng):
            u = users[idx]
            yield u, items[idx], self.sampler_.sample(u, rng)[:, 0]


def csr_to_torch(matrix, device) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (float32) on ``device``."""
    m = matrix.tocsr().astype(np.float32)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data), size=m.shape, device=device,
        )


def dense_rows(matrix, rows: np.ndarray) -> np.ndarray:
    """Rows of a sparse matrix as a dense float32 array (a mini-batch of user histories)."""
    return matrix[rows].toarray().astype(np.float32)


class NegativeSampler:
    """Draws items a user has *not* interacted with in train, uniformly or by popularity.

    Membership is checked against the sorted keys ``user * n_items + item`` of the
    training positives, so a batch of a million draws is a couple of vectorised
    ``searchsorted`` calls; colliding draws are redrawn until none is left.
    """

    def __init__(self, train: Dataset, popularity_power: float = 0.0):
        pos = train.positives.tocoo()
        self.n_items = train.n_items
        self._keys = np.sort(pos.row.astype(np.int64) * self.n_items + pos.col)
        self._cdf = None
        if popularity_power:
            weights = np.asarray(train.positives.sum(axis=0)).ravel() ** popularity_power
            weights = weights + 1e-12  # items never consumed can still be drawn, rarely
            self._cdf = np.cumsum(weights / weights.sum())

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._cdf is None:
            return rng.integers(0, self.n_items, size=n)
        return np.minimum(np.searchsorted(self._cdf, rng.random(n)), self.n_items - 1)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        at = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[at] == keys

    def sample(self, users: np.ndarray, rng: np.random.Generator, per_user: int = 1) -> np.ndarray:
        """(len(users), per_user) negative item codes (int64)."""
        users = np.repeat(np.asarray(users, dtype=np.int64), per_user)
        items = self._draw(len(users), rng)
        bad = np.flatnonzero(self.is_positive(users, items))
        for _ in range(100):  # users who consumed nearly everything could loop forever
            if len(bad) == 0:
                break
            items[bad] = self._draw(len(bad), rng)
            bad = bad[self.is_positive(users[bad], items[bad])]
        return items.reshape(-1, per_user)
