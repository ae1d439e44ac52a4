"""Full ranking next to the sampled protocol: values, ranks and the sentences the Compare page shows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data import Dataset
from recsys.data.split import random_holdout
from recsys.evaluation import evaluate
from recsys.evaluation.sampled import FULL, full_vs_sampled, rank_changes, sampled_label
from recsys.models import create


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    popularity = rng.zipf(1.6, size=120).astype(float)
    rows = [(u, i) for u in range(80) for i in rng.choice(120, size=12, replace=False, p=popularity / popularity.sum())]
    ds = Dataset.from_frame(pd.DataFrame(rows, columns=["user", "item"]), rating=None)
    return random_holdout(ds, 0.25, seed=1)


@pytest.fixture(scope="module")
def fitted(split):
    train, test = split
    models = {"Popular": create("pop").fit(train), "kNN": create("item_knn").fit(train),
              "Random": create("random").fit(train)}
    reports = {name: evaluate(m, train, test, k=[10], bootstrap=0) for name, m in models.items()}
    return models, reports


def test_full_values_come_from_the_reports_and_sampled_ones_from_rescoring(split, fitted):
    train, test = split
    models, reports = fitted
    frame = full_vs_sampled(models, reports, train, test, k=10, n_negatives=20)
    assert len(frame) == 3 * 2 * 2
    full = frame[(frame.protocol == FULL) & (frame.metric == "ndcg")].set_index("run")["value"]
    for name, report in reports.items():
        assert full[name] == report.means["ndcg@10"]
    sampled = frame[(frame.protocol == sampled_label(20)) & (frame.metric == "hit")].set_index("run")["value"]
    for name, model in models.items():
        expected = evaluate(model, train, test, k=[10], bootstrap=0, sampled_negatives=20).means["hit@10"]
        assert sampled[name] == pytest.approx(expected)
        assert sampled[name] >= frame[(frame.protocol == FULL) & (frame.metric == "hit") & (frame.run == name)][
            "value"].item()
    # ranks: 1 = best value within each (metric, protocol)
    for _, group in frame.groupby(["metric", "protocol"]):
        best = group.loc[group["value"].idxmax()]
        assert best["rank"] == 1 and sorted(group["rank"]) == sorted(group["value"].rank(ascending=False, method="min"))


def test_rank_changes_name_every_run_that_moved_biggest_move_first():
    frame = pd.DataFrame([
        {"run": "A", "metric": "hit", "protocol": FULL, "value": 0.18, "rank": 1},
        {"run": "B", "metric": "hit", "protocol": FULL, "value": 0.09, "rank": 2},
        {"run": "C", "metric": "hit", "protocol": FULL, "value": 0.08, "rank": 3},
        {"run": "A", "metric": "hit", "protocol": "100 sampled items", "value": 0.54, "rank": 3},
        {"run": "B", "metric": "hit", "protocol": "100 sampled items", "value": 0.60, "rank": 1},
        {"run": "C", "metric": "hit", "protocol": "100 sampled items", "value": 0.59, "rank": 2},
    ])
    assert rank_changes(frame, "hit") == [
        "A: 1st with full ranking, 3rd with 100 sampled items.",
        "B: 2nd with full ranking, 1st with 100 sampled items.",
        "C: 3rd with full ranking, 2nd with 100 sampled items.",
    ]
    same = frame.assign(rank=[1, 2, 3, 1, 2, 3])
    assert rank_changes(same, "hit") == []
    tied = frame.assign(rank=[1, 2, 3, 2, 1, 2])
    assert rank_changes(tied, "hit") == ["A: 1st with full ranking, 2nd (tied) with 100 sampled items.",
                                         "B: 2nd with full ranking, 1st with 100 sampled items.",
                                         "C: 3rd with full ranking, 2nd (tied) with 100 sampled items."]


def test_a_run_without_its_model_is_refused(split, fitted):
    train, test = split
    models, reports = fitted
    with pytest.raises(ValueError, match="no fitted model for kNN"):
        full_vs_sampled({"Popular": models["Popular"]}, {"Popular": reports["Popular"], "kNN": reports["kNN"]},
                        train, test, k=10)
