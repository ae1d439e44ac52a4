"""The one shape every simulation returns, so the page, the CLI and the tests read them alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

# (round done, rounds in all, latest figures): the page redraws its charts as rounds come in. The
# figures are the round's rows, {series: {metric: value}} with the names of ``rounds``, so the live
# charts are the final ones (every preset reports so; a flat {series: value} from other code would be
# drawn as one "headline figure" chart).
RoundProgress = Callable[[int, int, dict], None]


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """Per-round figures of one simulation run, and the one-line lesson computed from them.

    ``rounds`` is long-form: one row per (round, series). ``round`` counts from 1; ``series``
    names the policy, arm or tier the row belongs to; every other column is a metric, named
    the same on the page, in the CSV export and in ``python -m recsys simulate --json``.
    ``summary`` holds the headline figures that ``takeaway`` quotes (so a test can check that
    the sentence and the numbers agree); ``tables`` holds any non-per-round output (a power
    calculation, an item ranking) by title.
    """

    preset: str
    knobs: dict
    seed: int
    rounds: pd.DataFrame
    takeaway: str
    summary: dict[str, float]
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = {"round", "series"} - set(self.rounds.columns)
        if missing:
            raise ValueError(f"rounds lacks column(s) {sorted(missing)}")

    @property
    def metrics(self) -> list[str]:
        """The metric columns, in the order the simulation wrote them."""
        return [c for c in self.rounds.columns if c not in ("round", "series")]

    @property
    def series(self) -> list[str]:
        return list(dict.fromkeys(self.rounds["series"]))

    def records(self) -> list[dict]:
        """One plain dict per (round, series) row: what ``--json`` prints."""
        frame = self.rounds.replace({np.nan: None})
        return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value):
    """numpy scalars become Python numbers so ``json.dumps`` takes them."""
    if isinstance(value, np.generic):
        return value.item()
    return value
