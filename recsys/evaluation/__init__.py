"""Evaluation: ranking and rating metrics, beyond-accuracy metrics, the evaluator, statistics."""

from recsys.evaluation import beyond, metrics, stats
from recsys.evaluation.evaluator import (
    CURVE_METRICS,
    Report,
    compare_reports,
    curve,
    evaluate,
)
from recsys.evaluation.stats import bootstrap_ci, paired_test

__all__ = [
    "CURVE_METRICS",
    "Report",
    "beyond",
    "bootstrap_ci",
    "compare_reports",
    "curve",
    "evaluate",
    "metrics",
    "paired_test",
    "stats",
]
