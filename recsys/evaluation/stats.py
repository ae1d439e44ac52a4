"""Uncertainty for per-user metrics: bootstrap intervals and paired model comparisons."""

from __future__ import annotations

import warnings

import numpy as np

# Bound on resampled index entries held at once (~32 MB of int64).
_CHUNK_ENTRIES = 4_000_000


def bootstrap_means(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the rows of ``values``.

    ``values``: (n,) or (n, m). Columns share the same resamples, so many metrics of one
    report cost one set of draws. Returns (n_boot,) or (n_boot, m). Resamples are drawn
    in chunks so memory stays bounded for large user counts.
    """
    values = np.asarray(values, dtype=np.float64)
    column = values.ndim == 1
    matrix = values[:, None] if column else values
    n = len(matrix)
    if n == 0 or n_boot <= 0:
        out = np.full((max(n_boot, 0), matrix.shape[1]), np.nan)
        return out[:, 0] if column else out
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_ENTRIES // n)
    means = np.empty((n_boot, matrix.shape[1]))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        # counts[b, i] = how often row i was drawn in resample b: one matmul then gives
        # every column's mean without materialising (size, n, m)
        offsets = (np.arange(size) * n)[:, None]
        counts = np.bincount((idx + offsets).ravel(), minlength=size * n).reshape(size, n)
        means[start : start + size] = counts @ matrix / n
    return means[:, 0] if column else means


def bootstrap_ci(
    per_user_values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval for the mean of per-user values."""
    means = bootstrap_means(per_user_values, n_boot, seed)
    if len(means) == 0 or np.isnan(means).all():
        return float("nan"), float("nan")
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_cis(
    columns: dict[str, np.ndarray], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Intervals for several equally long per-user arrays, drawn from one shared resample."""
    if not columns:
        return {}
    names = list(columns)
    matrix = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names])
    means = bootstrap_means(matrix, n_boot, seed)
    if len(means) == 0 or len(matrix) == 0:
        return {name: (float("nan"), float("nan")) for name in names}
    bounds = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=0)
    return {name: (float(bounds[0, j]), float(bounds[1, j])) for j, name in enumerate(names)}


# Cohen's conventional thresholds for |d|: below 0.2 negligible, then small, medium, large from 0.8.
EFFECT_SIZES = ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"))


def effect_size_label(d: float) -> str:
    """Cohen's name for a standardised difference: "negligible", "small", "medium" or "large"."""
    return next((label for bound, label in EFFECT_SIZES if abs(d) < bound), "large")


def exact_p(p: float) -> str:
    """"= 2.2e-05", or "< 1e-300" where the p-value underflowed to 0 (printing "p = 0" would claim certainty)."""
    return f"= {p:.3g}" if p > 0 else "< 1e-300"


def significance_details(test: dict, alpha: float = 0.05) -> list[str]:
    """What a ``paired_test`` result rests on, in plain words, beyond its ``sentence``.

    First both p-values, the effect size with its conventional name and the number of users; then,
    when the difference is significant but negligible, why that happens with many users.
    """
    d = abs(test["cohens_d"])
    size = effect_size_label(d)
    lines = [f"Paired t-test p {exact_p(test['t_pvalue'])} · Wilcoxon signed-rank p {exact_p(test['wilcoxon_pvalue'])}"
             f" · effect size |d| = {d:.2f} ({size}; 0.2 small, 0.5 medium, 0.8 large) over {test['n']:,} users."]
    if size == "negligible" and test["t_pvalue"] < alpha:
        lines.append("With this many users even a negligible difference is detectable: it is real, but too small "
                     "to matter to most people.")
    return lines


def _format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _sentence(name_a: str, name_b: str, metric: str, diff: float, p: float, alpha: float) -> str:
    if diff == 0:
        text = f"{name_a} and {name_b} score the same on {metric}: there is no difference to test."
    else:
        better, worse = (name_a, name_b) if diff > 0 else (name_b, name_a)
        verdict = "unlikely to be noise" if p < alpha else "could well be noise"
        text = f"{better} is better than {worse} on {metric} by {abs(diff):.3g} ({_format_p(p)}): the difference is {verdict}."
    return text[:1].upper() + text[1:]


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    metric: str = "the metric",
    names: tuple[str, str] = ("model A", "model B"),
    alpha: float = 0.05,
) -> dict:
    """Compare two models on the same users (a[i] and b[i] belong to the same user).

    Returns mean_a, mean_b, mean_diff (a - b), t_pvalue (paired t-test), wilcoxon_pvalue
    (signed-rank, no normality assumption), cohens_d (mean diff / sd of diffs), n, and a
    plain-words ``sentence`` whose verdict uses the t-test p-value against ``alpha``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be equally long 1-d arrays (one value per user); got {a.shape}, {b.shape}")
    diff = a - b
    n = len(diff)
    mean_diff = float(diff.mean()) if n else 0.0
    sd = float(diff.std(ddof=1)) if n > 1 else 0.0
    if n < 2 or np.all(diff == diff[0]):
        # constant differences: no spread, so the tests are undefined; the verdict is exact
        p_t = p_w = 1.0 if mean_diff == 0 else 0.0
        d = 0.0 if mean_diff == 0 else float(np.sign(mean_diff) * np.inf)
    else:
        from scipy import stats as sps  # imported here: scipy.stats takes seconds to import cold

        p_t = float(sps.ttest_rel(a, b).pvalue)
        p_w = _wilcoxon_p(diff)
        d = mean_diff / sd if sd > 0 else 0.0
    return {
        "mean_a": float(a.mean()) if n else float("nan"),
        "mean_b": float(b.mean()) if n else float("nan"),
        "mean_diff": mean_diff,
        "t_pvalue": p_t,
        "wilcoxon_pvalue": p_w,
        "cohens_d": d,
        "n": n,
        "sentence": _sentence(names[0], names[1], metric, mean_diff, p_t, alpha),
    }


def _wilcoxon_p(diff: np.ndarray) -> float:
    """Signed-rank p-value; 1.0 when every difference is zero (nothing to rank)."""
    if not np.any(diff != 0):
        return 1.0
    from scipy import stats as sps

    with warnings.catch_warnings():
        # ties and zero differences trigger approximation warnings that say nothing new
        warnings.simplefilter("ignore")
        return float(sps.wilcoxon(diff).pvalue)
