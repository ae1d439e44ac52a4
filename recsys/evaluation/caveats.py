"""Plain-words warnings about setups whose numbers mislead, for the Compare page and reports.

Each check looks at the split and the reports and returns a sentence a non-specialist can act
on, or nothing. Thresholds are deliberately simple and stated in the sentence.
"""

from __future__ import annotations

from recsys.data.split import Split
from recsys.evaluation.evaluator import Report

# Below these, intervals get wide and rankings of close models flip from one seed to the next.
FEW_TEST_USERS = 200
FEW_TEST_INTERACTIONS = 1000
# An interval wider than this share of its mean is "too wide to rank close models".
WIDE_INTERVAL = 0.25


def sampled_metrics(reports: dict[str, Report]) -> str | None:
    """Metrics computed against a sample of negatives rather than the whole catalogue.

    An evaluation that samples records how many negatives it drew in
    ``Report.extra["sampled_negatives"]``; ``evaluate`` ranks the full catalogue and never sets it,
    so this speaks up only for reports made elsewhere (imported, or from a sampled protocol).
    """
    sampled = [name for name, rep in reports.items() if rep.extra.get("sampled_negatives")]
    if not sampled:
        return None
    return (f"{', '.join(sampled)} {'was' if len(sampled) == 1 else 'were'} scored against a sample of unseen items, "
            "not the whole catalogue. Sampled metrics can rank models in a different order than full ranking "
            "(Krichene & Rendle, 2020); compare models on full-catalogue numbers.")


def random_split_on_timestamps(split: Split) -> str | None:
    """A random split leaks the future into training when the data has timestamps."""
    if split.method != "random" or split.train.timestamp is None:
        return None
    return ("This is a random split of data that has timestamps: models train on interactions that happened "
            "after some test interactions. If your question is how a model will do on next week's visits, "
            "choose the temporal or leave-last-out split in the sidebar; random-split numbers are usually higher.")


def tiny_test_set(split: Split, reports: dict[str, Report]) -> str | None:
    """Few test users or interactions: intervals are wide and close models cannot be ranked."""
    n_users = max((rep.n_users for rep in reports.values()), default=0)
    n_interactions = split.test.n_interactions
    if n_users >= FEW_TEST_USERS and n_interactions >= FEW_TEST_INTERACTIONS:
        return None
    return (f"Only {n_users:,} users are evaluated, on {n_interactions:,} test interactions (below "
            f"{FEW_TEST_USERS:,} users or {FEW_TEST_INTERACTIONS:,} interactions, intervals get wide). Differences "
            "between models may be chance unless the paired test says otherwise; a larger test share or dataset "
            "gives tighter intervals.")


def wide_intervals(reports: dict[str, Report], metric: str) -> str | None:
    """Intervals wider than WIDE_INTERVAL of their mean: the ranking of runs is not settled."""
    wide = []
    for name, rep in reports.items():
        mean = rep.means.get(metric)
        low, high = rep.ci.get(metric, (float("nan"), float("nan")))
        if mean and mean > 0 and (high - low) / mean > WIDE_INTERVAL:
            wide.append(name)
    if not wide:
        return None
    return (f"The 95% interval of {metric} is wider than {WIDE_INTERVAL:.0%} of the mean for {', '.join(wide)}: "
            "their order in the table could change with another draw of the test set.")


def skipped_users(reports: dict[str, Report]) -> str | None:
    """Test users without training history are left out, which flatters every model."""
    skipped = max((rep.n_skipped_users for rep in reports.values()), default=0)
    if skipped == 0:
        return None
    return (f"{skipped:,} test users have no training history, so no model could rank for them and they are "
            "left out of every metric. The numbers describe returning users only; cold-start users would score lower.")


def order_without_timestamps(split: Split) -> str | None:
    """Leave-last-out without timestamps orders interactions by their row in the file."""
    if split.method != "leave_last" or split.train.timestamp is not None:
        return None
    return ("Leave-last-out needs an order, and this data has no timestamps: the file's row order was used. "
            "If the rows are not in time order, the held-out items are arbitrary, not each person's latest.")


def caveats(split: Split, reports: dict[str, Report], metric: str = "ndcg@10") -> list[str]:
    """Every caveat that applies, most misleading first."""
    checks = (sampled_metrics(reports), random_split_on_timestamps(split), order_without_timestamps(split),
              tiny_test_set(split, reports), wide_intervals(reports, metric), skipped_users(reports))
    return [text for text in checks if text]
