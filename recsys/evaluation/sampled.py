"""Full-catalogue ranking next to the sampled protocol, to show how sampling reorders models.

Many papers rank each test item against ~100 randomly drawn unseen items instead of the whole
catalogue. The numbers look better and, worse, can put models in a different order (Krichene &
Rendle, "On Sampled Metrics for Item Recommendation", 2020). This module re-scores fitted models
under that protocol and lines the two rankings up, so a person can see the order change.
"""

from __future__ import annotations

import pandas as pd

from recsys.data.dataset import Dataset
from recsys.evaluation.evaluator import Report, evaluate

FULL = "full ranking"


def sampled_label(n: int) -> str:
    return f"{n:,} sampled items"


def full_vs_sampled(models: dict, reports: dict[str, Report], train: Dataset, test: Dataset, k: int,
                    n_negatives: int = 100, metrics: tuple[str, ...] = ("ndcg", "hit"),
                    seed: int = 0) -> pd.DataFrame:
    """One row per (run, metric, protocol): the run's value@k and its rank among the runs (1 = best).

    ``reports`` are the runs' full-ranking reports on (train, test); ``models`` the same runs' fitted
    models, which are scored again with each user's test positives ranked against ``n_negatives``
    unseen items. Every run is sampled with the same seed, so all of them see the same draws.
    """
    missing = [name for name in reports if name not in models]
    if missing:
        raise ValueError(f"no fitted model for {', '.join(missing)}: the sampled protocol has to score them again")
    rows = []
    for name, report in reports.items():
        if f"{metrics[0]}@{k}" not in report.means:
            raise ValueError(f"the report of {name} has no {metrics[0]}@{k}; evaluate it at K = {k} first")
        sampled = evaluate(models[name], train, test, k=[k], bootstrap=0, users=report.users,
                           sampled_negatives=n_negatives, seed=seed)
        for metric in metrics:
            rows.append({"run": name, "metric": metric, "protocol": FULL, "value": report.means[f"{metric}@{k}"]})
            rows.append({"run": name, "metric": metric, "protocol": sampled_label(n_negatives),
                         "value": sampled.means[f"{metric}@{k}"]})
    frame = pd.DataFrame(rows)
    frame["rank"] = (frame.groupby(["metric", "protocol"])["value"].rank(ascending=False, method="min")
                     .astype(int))
    return frame


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def rank_changes(frame: pd.DataFrame, metric: str) -> list[str]:
    """Plain sentences for every run whose rank on ``metric`` differs between the two protocols,
    biggest move first; empty when sampling keeps the order. A rank shared with another run says so."""
    view = frame[frame["metric"] == metric].pivot(index="run", columns="protocol", values="rank")
    sampled = next(c for c in view.columns if c != FULL)
    moved = view[view[FULL] != view[sampled]]
    order = (moved[FULL] - moved[sampled]).abs().sort_values(ascending=False, kind="stable").index

    def place(run: str, protocol: str) -> str:
        rank = int(view.at[run, protocol])
        tied = int((view[protocol] == rank).sum()) > 1
        return _ordinal(rank) + (" (tied)" if tied else "")

    return [f"{run}: {place(run, FULL)} with full ranking, {place(run, sampled)} with {sampled}." for run in order]
