"""Per-request latency as serving reports it: the median, the slow tail and the mean, in milliseconds."""

from __future__ import annotations

import numpy as np


def latency_summary(milliseconds) -> dict[str, float]:
    """p50, p99, mean and max of per-request times in ms (p99 is what the slowest visitors wait)."""
    times = np.asarray(milliseconds, dtype=np.float64)
    if times.size == 0:
        raise ValueError("A latency summary needs at least one timed request.")
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "mean_ms": float(times.mean()), "max_ms": float(times.max())}
