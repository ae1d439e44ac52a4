"""Click models: whether a person looks at a slot, and whether they click what they see.

A person shown item i in slot (row r, column c) clicks with probability
``examine(r, c) * relevance(u, i)`` (the examination hypothesis): a tile they never look at
gets no click however good it is, so raw clicks confound quality with position.
"""

from __future__ import annotations

import numpy as np

from recsys.data.errors import DataError

EXAMINATION_KINDS = ("none", "cascade", "grid")


def examination(kind: str, n_rows: int, n_cols: int, *, row_decay: float = 0.7,
                col_decay: float = 0.85) -> np.ndarray:
    """Probability that a person examines each slot of an ``n_rows x n_cols`` grid.

    * ``none``: every slot is examined (clicks follow relevance alone).
    * ``cascade``: slots are read in reading order (row by row, left to right) and each next
      slot is examined with probability ``row_decay`` of the one before: a vertical list.
    * ``grid``: the homepage's two directions at once: ``row_decay ** row * col_decay ** col``,
      people scroll down less than they scan along a row.
    """
    _check_grid(kind, n_rows, n_cols, row_decay, col_decay)
    if kind == "none":
        return np.ones((n_rows, n_cols))
    if kind == "cascade":
        reading_order = np.arange(n_rows * n_cols, dtype=np.float64).reshape(n_rows, n_cols)
        return row_decay ** reading_order
    rows = row_decay ** np.arange(n_rows, dtype=np.float64)
    cols = col_decay ** np.arange(n_cols, dtype=np.float64)
    return np.outer(rows, cols)


def slot_examination(kind: str, n_slots: int, n_cols: int | None = None, *, row_decay: float = 0.7,
                     col_decay: float = 0.85) -> np.ndarray:
    """Examination of a flat list of ``n_slots`` laid out ``n_cols`` to a row (one row by default).

    Slot ``s`` sits at row ``s // n_cols``, column ``s % n_cols``: the order a ranked list fills
    a grid, so ``ranked_items[:, s]`` is examined with ``result[s]``.
    """
    if n_slots < 1:
        raise DataError(f"n_slots must be at least 1; got {n_slots}.")
    cols = n_slots if n_cols is None else int(n_cols)
    if cols < 1:
        raise DataError(f"n_cols must be at least 1; got {n_cols}.")
    rows = -(-n_slots // cols)
    grid = examination(kind, rows, cols, row_decay=row_decay, col_decay=col_decay)
    return grid.ravel()[:n_slots]


def click_probability(relevance: np.ndarray, examine: np.ndarray) -> np.ndarray:
    """``examine * relevance`` with the shapes checked: (n_users, n_slots) against (n_slots,)."""
    relevance = np.asarray(relevance, dtype=np.float64)
    examine = np.asarray(examine, dtype=np.float64)
    if relevance.ndim != 2:
        raise DataError(f"relevance must be a (users, slots) matrix; got shape {relevance.shape}.")
    if examine.shape not in ((relevance.shape[1],), relevance.shape):
        raise DataError(
            f"examine has shape {examine.shape} but relevance has {relevance.shape[1]} slots; "
            "pass one examination probability per slot."
        )
    if relevance.size and (relevance.min() < 0 or relevance.max() > 1):
        raise DataError("relevance must be click probabilities between 0 and 1.")
    if examine.size and (examine.min() < 0 or examine.max() > 1):
        raise DataError("examine must be probabilities between 0 and 1.")
    return relevance * examine


def draw_clicks(rng: np.random.Generator, relevance: np.ndarray, examine: np.ndarray, *,
                stop_after_click: bool = False) -> np.ndarray:
    """Boolean (n_users, n_slots) clicks: each slot is Bernoulli(examine * relevance).

    ``stop_after_click`` is the cascade model's impatient reader: after the first click in
    reading order the person leaves, so later slots get no click.
    """
    return clicks_from_uniforms(rng.random(np.shape(relevance)), relevance, examine,
                                stop_after_click=stop_after_click)


def clicks_from_uniforms(uniforms: np.ndarray, relevance: np.ndarray, examine: np.ndarray, *,
                         stop_after_click: bool = False) -> np.ndarray:
    """:func:`draw_clicks` with the uniform draws given (one per user and slot).

    Simulations that compare policies give every policy the same draw for the same (person,
    item) pair, so a difference in clicks comes from what was shown, not from luck.
    """
    clicks = np.asarray(uniforms) < click_probability(relevance, examine)
    if stop_after_click:
        clicks &= np.cumsum(clicks, axis=1) <= 1
    return clicks


def _check_grid(kind: str, n_rows: int, n_cols: int, row_decay: float, col_decay: float) -> None:
    if kind not in EXAMINATION_KINDS:
        raise DataError(f"Unknown examination model {kind!r}; choose one of {list(EXAMINATION_KINDS)}.")
    if n_rows < 1 or n_cols < 1:
        raise DataError(f"A grid needs at least one row and one column; got {n_rows} x {n_cols}.")
    for name, decay in (("row_decay", row_decay), ("col_decay", col_decay)):
        if not 0.0 < decay <= 1.0:
            raise DataError(f"{name} must be in (0, 1]; got {decay}.")
