"""The one epoch loop of every iterative model: the torch models and iALS.

A model that learns in passes (epochs, ALS sweeps) says what one pass does and how to copy and
put back its learned state; this class owns the rest, the same for all of them: the validation
NDCG after each pass, progress reports with loss and metric, stopping early on request
(``StopTraining``: keep what was learned), cancelling (``FitCancelled`` passes through), early
stopping after ``patience`` passes without a better validation NDCG, and keeping the best pass.
"""

from __future__ import annotations

import math

from recsys.data.dataset import Dataset
from recsys.evaluation.validation import validation_ndcg
from recsys.models.base import Progress, Recommender, StopTraining


class IterativeModel(Recommender):
    """Base of models fitted pass by pass. Subclasses call :meth:`_train_epochs` from ``_fit`` and
    implement:

    - ``_run_epoch(train, epoch) -> dict``: one pass; returns its metrics (at least ``"loss"``);
    - ``_snapshot() -> state`` and ``_restore(state)``: a copy of the learned state and putting it
      back (the best validation pass is restored at the end);
    - optionally ``_validate(train, valid) -> float``: validation NDCG@10 (default: rank with
      ``_score``, which must work mid-fit).
    """

    iterative = True
    stopped_early_: bool = False

    @property
    def stopped_early(self) -> bool:
        return bool(self.stopped_early_)

    def _train_epochs(self, train: Dataset, valid: Dataset | None, progress: Progress, *, epochs: int,
                      patience: int = 0) -> None:
        """Run up to ``epochs`` passes; sets ``epochs_run_``, ``best_epoch_`` and ``stopped_early_``."""
        best_metric, best_state, best_epoch, waited = -math.inf, None, 0, 0
        self.epochs_run_, self.stopped_early_ = 0, False
        for epoch in range(1, epochs + 1):
            metrics = self._run_epoch(train, epoch)
            if valid is not None:
                metrics["val_ndcg@10"] = self._validate(train, valid)
            self.epochs_run_ = epoch
            stop_requested = False
            try:
                progress(epoch, epochs, metrics)
            except StopTraining:
                stop_requested = True
            if valid is not None:
                if metrics["val_ndcg@10"] > best_metric:
                    best_metric, best_epoch, waited = metrics["val_ndcg@10"], epoch, 0
                    best_state = self._snapshot()
                else:
                    waited += 1
                if patience and waited >= patience:
                    self.stopped_early_ = True
                    break
            if stop_requested:
                self.stopped_early_ = True
                break
        if best_state is not None:
            self._restore(best_state)
        self.best_epoch_ = best_epoch or self.epochs_run_
        if self.epochs_run_ < epochs:
            progress(epochs, epochs, {})  # the fit is complete even when it stopped early

    def _validate(self, train: Dataset, valid: Dataset) -> float:
        return validation_ndcg(self._score, train, valid, k=10)

    # ------------------------------------------------------------------ hooks
    def _run_epoch(self, train: Dataset, epoch: int) -> dict:
        raise NotImplementedError("abstract: each iterative model runs one pass")

    def _snapshot(self):
        raise NotImplementedError("abstract: each iterative model copies its learned state")

    def _restore(self, state) -> None:
        raise NotImplementedError("abstract: each iterative model restores a copied state")
