"""Overfitting over epochs: training loss keeps falling, validation accuracy peaks, early stopping keeps the peak."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.lessons.base import Context, Lesson, LessonResult, Setup
from recsys.lessons.sparsity import generated_world
from recsys.models.base import param

MODEL = "ncf_gmf"
# the sidebar's random split with its validation part ticked: the Train page draws that run's curves
SPLIT = {"method": "random", "test_fraction": 0.2, "seed": 42, "validation": True}
EPOCH_CHOICES = (
    "It keeps rising while the loss falls: train every epoch and keep the last",
    "It peaks and then falls while the loss keeps falling: keep the peak epoch and stop soon after it",
    "It hardly moves: the number of epochs does not matter",
)
# a validation NDCG that ends more than this share below its peak has fallen (not noise between epochs)
FALL_SHARE = 0.05
# a curve whose whole range is under this share of its peak is flat
FLAT_SHARE = 0.05
LOSS, VALID = "train loss", "validation NDCG@10"


@dataclass
class OverfitKnobs:
    epochs: int = param(15, help="Epochs trained, every one of them (the run's own patience is off so the "
                                 "whole curve is there to look at).", low=3, high=60)
    embedding_size: int = param(64, help="Size of GMF's user and film vectors: wide vectors memorise sooner.",
                                low=2, high=256)
    reg: float = param(0.0, help="L2 penalty on the vectors a step touches: raise it (e.g. 0.05) and the fall "
                                 "after the peak shrinks.", low=0.0, high=1.0, step=0.005)
    patience: int = param(3, help="Early stopping: stop after this many epochs without a better validation "
                                  "NDCG@10 (read off the curve; the training loop stops the same way).",
                          low=1, high=20)
    users: int = param(600, help="People in the generated world (used when the app has no dataset).",
                       low=100, high=3000)
    items: int = param(400, help="Films in the generated world.", low=50, high=2000)


def run_params(knobs: OverfitKnobs) -> dict:
    """The GMF run the lesson trains (and its setup trains for the Train page): every epoch, no stopping."""
    return {"epochs": knobs.epochs, "embedding_size": knobs.embedding_size, "reg": knobs.reg, "patience": 0}


def stopping_epoch(validation: list[float], patience: int) -> int:
    """The epoch at which early stopping with ``patience`` ends the fit, read off a validation curve.

    The same rule as the shared epoch loop: a pass that does not beat the best so far adds one to the
    wait, a better one resets it, and the fit stops once the wait reaches ``patience``.
    """
    best, waited = -math.inf, 0
    for epoch, value in enumerate(validation, start=1):
        if value > best:
            best, waited = value, 0
        else:
            waited += 1
        if waited >= patience:
            return epoch
    return len(validation)


def epoch_table(history: list[dict]) -> pd.DataFrame:
    """One row per epoch: the training loss, the validation NDCG@10 and how long since it last improved."""
    rows, best, waited = [], -math.inf, 0
    for entry in history:
        if "loss" not in entry or "val_ndcg@10" not in entry:
            continue
        value = float(entry["val_ndcg@10"])
        best, waited = (value, 0) if value > best else (best, waited + 1)
        rows.append({"epoch": int(entry["step"]), LOSS: float(entry["loss"]), VALID: value,
                     "epochs without a better validation": waited})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> int:
    """Which of EPOCH_CHOICES this curve makes right."""
    values = table[VALID]
    peak = float(values.max())
    best_epoch = int(table.loc[values.idxmax(), "epoch"])
    if best_epoch < int(table["epoch"].iloc[-1]) and float(values.iloc[-1]) < (1 - FALL_SHARE) * peak:
        return 1
    if float(values.max() - values.min()) < FLAT_SHARE * max(peak, 1e-12):
        return 2
    return 0


def _data(context: Context, knobs: OverfitKnobs) -> Dataset:
    return context.dataset if context.dataset is not None else generated_world(knobs.users, knobs.items, 7)


def overfit_curve(knobs: OverfitKnobs, context: Context) -> LessonResult:
    _, report, history = context.train_with_history(_data(context, knobs), SPLIT, MODEL, run_params(knobs))
    table = epoch_table(history)
    if len(table) < 2:
        raise DataError("The run kept no per-epoch validation curve; train it again with the validation part on.")
    best_row = table.loc[table[VALID].idxmax()]
    stop = stopping_epoch(list(table[VALID]), knobs.patience)
    correct = verdict(table)
    figures = {"epochs": float(len(table)), "best_epoch": float(best_row["epoch"]),
               "best_validation": float(best_row[VALID]), "last_validation": float(table[VALID].iloc[-1]),
               "first_loss": float(table[LOSS].iloc[0]), "last_loss": float(table[LOSS].iloc[-1]),
               "loss_at_best": float(best_row[LOSS]), "stop_epoch": float(stop),
               "epochs_saved": float(len(table) - stop), "test_ndcg_kept": float(report.means["ndcg@10"])}
    return LessonResult(figures=figures, correct=correct, explanation=_explain(correct, figures, knobs.patience),
                        tables={"Training loss and validation NDCG@10 by epoch": table})


def _explain(correct: int, f: dict, patience: int) -> str:
    curve = (f"Training loss fell from {f['first_loss']:.3f} to {f['last_loss']:.3f} over {f['epochs']:.0f} epochs. "
             f"Validation NDCG@10 peaked at epoch {f['best_epoch']:.0f} ({f['best_validation']:.3f}) and ended at "
             f"{f['last_validation']:.3f}. ")
    stopping = (f"Early stopping with patience {patience} ends the fit at epoch {f['stop_epoch']:.0f} "
                f"({f['epochs_saved']:.0f} epochs never trained) and keeps epoch {f['best_epoch']:.0f}'s model, "
                f"which scores test NDCG@10 {f['test_ndcg_kept']:.3f}. ")
    if correct == 1:
        return curve + ("After the peak the loss kept falling because the model memorised the particular "
                        "films each person has in training, which the held-out ones do not reward. "
                        + stopping).strip()
    if correct == 2:
        return curve + "The curve barely moves: on this data and setting, more epochs neither help nor hurt."
    return curve + ("Here validation accuracy was still at (or near) its best at the end: train longer, or "
                    "lower the L2 penalty, to see where it turns.")


LESSONS = [
    Lesson(
        key="overfitting_epochs",
        chapter="Overfitting and early stopping",
        title="Train loss falls, validation peaks",
        framing=(
            "Every epoch lowers the training loss: the model fits the interactions it is shown better and "
            "better. Whether it also ranks the interactions it was *not* shown better is a different question, "
            "and the validation part of the split answers it after each epoch. Train a GMF with wide vectors "
            "and no penalty for every epoch, and watch both curves."
        ),
        question="The training loss falls every epoch. What does validation NDCG do, and which epoch's model "
                 "should you keep?",
        choices=EPOCH_CHOICES,
        Knobs=OverfitKnobs,
        compute=overfit_curve,
        setup=Setup(split=SPLIT, runs=((MODEL, run_params(OverfitKnobs())),), page="train"),
    ),
]
