"""A/B test vs bandits: how much traffic each way of choosing between versions burns.

Each arm is a version of the page with a true click rate (a Bernoulli per visitor). Visitors
arrive in rounds; a policy decides how many of each round's visitors see each arm:

* ``ab_fixed``: an equal split until the planned sample size per arm, one two-proportion
  z-test there, then everyone gets the winner (or the control when nothing is significant).
* ``ab_peeking``: the same test run after every round, stopping at the first p < alpha:
  the everyday mistake that inflates false positives.
* ``epsilon_greedy``, ``ucb1``, ``thompson``: bandits that move traffic while they learn.

Everything is vectorised over many repeated runs (arrays shaped ``(runs, arms)``), so the
curves are averages a person can trust, and the A/A false-positive rate is a count over
a thousand null runs rather than an anecdote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from recsys.data.errors import DataError
from recsys.models.base import param
from recsys.simulation.clicks import slot_examination
from recsys.simulation.presets import Preset
from recsys.simulation.result import RoundProgress, SimulationResult

POLICIES = ("ab_fixed", "ab_peeking", "epsilon_greedy", "ucb1", "thompson")
POLICY_LABELS = {
    "ab_fixed": "A/B test (fixed horizon)",
    "ab_peeking": "A/B test (peeking)",
    "epsilon_greedy": "ε-greedy",
    "ucb1": "UCB1",
    "thompson": "Thompson sampling",
}
MAX_ARMS = 5
# what each per-round column means (the page puts it under the chart's title)
METRICS = {
    "visitors": "visitors so far, the same for every policy",
    "cumulative_regret": "clicks lost so far against always showing the best arm (mean over runs)",
    "traffic_share_best": "share of all visitors so far sent to the best arm",
    "clicks": "clicks this round (mean over runs)",
    "decided": "share of runs that have settled on an arm",
    "decided_correct": "share of runs that have settled on a best arm",
}
# Posterior draws per run that estimate each arm's chance of being best. 128 keeps the
# allocation error near 4 % at the 50/50 point while the whole preset runs in a few seconds.
POSTERIOR_DRAWS = 128
# A bandit "has decided" once its own data give one arm this posterior chance of being best:
# the stop rule of Bayesian A/B tools, so bandits and the z-test are judged on a decision.
DECISION_PROBABILITY = 0.95
# Beta posteriors with at least this many clicks and non-clicks are drawn from their normal
# approximation (see posterior_draws)
NORMAL_FROM = 30


# --------------------------------------------------------------------------- statistics


def two_proportion_pvalue(clicks_a, shown_a, clicks_b, shown_b) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test, elementwise over arrays.

    Where either side has no visitors, or nobody clicked at all, there is no evidence: p = 1.
    """
    clicks_a, shown_a, clicks_b, shown_b = (np.asarray(x, dtype=np.float64) for x in
                                            (clicks_a, shown_a, clicks_b, shown_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (clicks_a + clicks_b) / (shown_a + shown_b)
        spread = np.sqrt(pooled * (1 - pooled) * (1 / shown_a + 1 / shown_b))
        z = (clicks_a / shown_a - clicks_b / shown_b) / spread
    p = 2 * stats.norm.sf(np.abs(z))
    return np.where(np.isfinite(z), p, 1.0)


def _rates(p_base: float, lift: float) -> tuple[float, float]:
    """Control and treatment rates; ``lift`` is relative (0.15 = the treatment clicks 15 % more)."""
    if not 0.0 < p_base < 1.0:
        raise DataError(f"p_base must be a click rate between 0 and 1; got {p_base}.")
    treated = p_base * (1 + lift)
    if lift == 0 or not 0.0 < treated < 1.0:
        raise DataError(
            f"lift must be a non-zero relative change that keeps the rate in (0, 1); got {lift} "
            f"(treated rate {treated:.4f}). Use e.g. lift=0.1 for +10 %."
        )
    return p_base, treated


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise DataError(f"alpha must be between 0 and 1 (e.g. 0.05); got {alpha}.")


def sample_size(p_base: float, lift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Visitors per arm a two-sided two-proportion z-test needs (normal approximation).

    ``n = (z_{1-a/2} * sqrt(2 p q) + z_{power} * sqrt(p1 q1 + p2 q2))^2 / (p2 - p1)^2`` with p the
    mean of the two rates; ``lift`` is relative to ``p_base``. Rounded up to whole visitors.
    """
    _check_alpha(alpha)
    if not 0.0 < power < 1.0:
        raise DataError(f"power must be between 0 and 1 (e.g. 0.8); got {power}.")
    p1, p2 = _rates(p_base, lift)
    pooled = (p1 + p2) / 2
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_power = stats.norm.ppf(power)
    root = z_alpha * np.sqrt(2 * pooled * (1 - pooled)) + z_power * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return int(np.ceil(root**2 / (p2 - p1) ** 2))


def power(p_base: float, lift: float, n_per_arm: int, alpha: float = 0.05) -> float:
    """Chance the two-sided z-test at ``n_per_arm`` visitors per arm detects a relative ``lift``.

    The inverse of :func:`sample_size` (the far tail, a significant result the wrong way, is
    left out as that formula does).
    """
    _check_alpha(alpha)
    if n_per_arm < 1:
        raise DataError(f"n_per_arm must be at least 1 visitor; got {n_per_arm}.")
    p1, p2 = _rates(p_base, lift)
    pooled = (p1 + p2) / 2
    null_spread = np.sqrt(2 * pooled * (1 - pooled) / n_per_arm)
    true_spread = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_per_arm)
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf((abs(p2 - p1) - z_alpha * null_spread) / true_spread))


def empirical_power(p_base: float, lift: float, n_per_arm: int, alpha: float = 0.05, *,
                    n_runs: int = 2000, seed=0) -> float:
    """Share of ``n_runs`` simulated A/B tests of ``n_per_arm`` visitors per arm that reject."""
    _check_alpha(alpha)
    p1, p2 = _rates(p_base, lift)
    rng = np.random.default_rng(seed)
    clicks = rng.binomial(n_per_arm, [p1, p2], size=(n_runs, 2))
    p = two_proportion_pvalue(clicks[:, 0], n_per_arm, clicks[:, 1], n_per_arm)
    return float(np.mean(p < alpha))


def false_positive_rate(n_runs: int = 1000, *, p: float = 0.04, n_per_arm: int = 20_000, n_peeks: int = 20,
                        alpha: float = 0.05, peeking: bool = False, seed=0) -> float:
    """Share of A/A tests (two arms with the same rate ``p``) that declare a winner.

    Visitors arrive in ``n_peeks`` equal batches up to ``n_per_arm`` per arm. Without peeking
    the test runs once at the end, so the rate is close to ``alpha``; with peeking it runs after
    every batch and the first p < alpha stops it, and each extra look is another chance to be
    fooled by noise.
    """
    _check_alpha(alpha)
    if n_runs < 1 or n_peeks < 1 or n_per_arm < n_peeks:
        raise DataError(
            f"Need n_runs >= 1, n_peeks >= 1 and n_per_arm >= n_peeks; got {n_runs}, {n_peeks}, {n_per_arm}."
        )
    if not 0.0 < p < 1.0:
        raise DataError(f"p must be a click rate between 0 and 1; got {p}.")
    rng = np.random.default_rng(seed)
    batch_sizes = np.diff(np.linspace(0, n_per_arm, n_peeks + 1).round().astype(np.int64))
    # (runs, peeks, arms): clicks of each batch, then running totals at every look
    clicks = rng.binomial(batch_sizes[None, :, None], p, size=(n_runs, n_peeks, 2)).cumsum(axis=1)
    shown = np.cumsum(batch_sizes)[None, :]
    pvalues = two_proportion_pvalue(clicks[..., 0], shown, clicks[..., 1], shown)
    rejected = (pvalues < alpha).any(axis=1) if peeking else pvalues[:, -1] < alpha
    return float(rejected.mean())


def ab_decision(clicks: np.ndarray, shown: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(significant, leader) per run for ``(runs, arms)`` counts.

    The leader is the arm with the highest observed rate; it wins when its z-test against
    every other arm is significant at ``alpha / (arms - 1)`` (Bonferroni, so an A/B/n test keeps
    its false-positive rate; with two arms this is the plain two-proportion test).
    """
    runs, n_arms = clicks.shape
    observed = clicks / np.maximum(shown, 1)
    leader = np.argmax(observed, axis=1)
    rows = np.arange(runs)
    pvalues = two_proportion_pvalue(clicks[rows, leader][:, None], shown[rows, leader][:, None], clicks, shown)
    pvalues[rows, leader] = 0.0
    significant = (pvalues < alpha / max(n_arms - 1, 1)).all(axis=1)
    return significant, leader


def probability_best(rng: np.random.Generator, clicks: np.ndarray, shown: np.ndarray,
                     draws: int = POSTERIOR_DRAWS) -> np.ndarray:
    """(runs, arms) posterior chance that each arm has the highest rate, Beta(1, 1) prior.

    Monte Carlo over ``draws`` joint posterior draws per run; this is also Thompson
    sampling's allocation, since sending each visitor to the arm of one posterior draw gives
    every arm exactly this share in expectation.
    """
    runs, n_arms = clicks.shape
    return _share_of_wins(posterior_draws(rng, 1.0 + clicks, 1.0 + shown - clicks, draws), n_arms)


def posterior_draws(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, draws: int) -> np.ndarray:
    """(draws, *a.shape) draws of Beta(a, b).

    Where both counts reach ``NORMAL_FROM`` the Beta is drawn from its normal approximation
    (same mean and variance): numpy's Beta sampler took 7 of the preset's 9 seconds, a normal
    draw costs a tenth of it, and at these counts the two agree to well under a percent of
    the posterior's spread. Small counts, where the Beta is skewed, keep exact draws.
    """
    total = a + b
    mean, spread = a / total, np.sqrt(a * b / (total**2 * (total + 1)))
    samples = mean + spread * rng.standard_normal((draws, *a.shape))
    small = np.minimum(a, b) < NORMAL_FROM
    if small.any():
        samples[:, small] = rng.beta(a[small], b[small], size=(draws, int(small.sum())))
    return samples


def _share_of_wins(samples: np.ndarray, n_arms: int) -> np.ndarray:
    """Share of the draws (axis 0) in which each arm (last axis) is highest."""
    winners = samples.argmax(axis=-1)
    return np.stack([(winners == arm).mean(axis=0) for arm in range(n_arms)], axis=-1)


# --------------------------------------------------------------------------- policies


def _argmax_random_ties(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Row-wise argmax, ties broken at random so no arm wins just by being listed first."""
    jitter = rng.random(values.shape)
    best = values == values.max(axis=1, keepdims=True)
    return np.argmax(np.where(best, jitter, -1.0), axis=1)


def _one_hot(index: np.ndarray, n_arms: int) -> np.ndarray:
    return np.eye(n_arms)[index]


@dataclasses.dataclass
class _PolicyState:
    """Running counts of one policy over all runs; ``rollout`` is -1 while an A/B test still splits."""

    shown: np.ndarray  # (runs, arms) visitors sent to each arm so far
    clicks: np.ndarray  # (runs, arms) clicks they gave
    regret: np.ndarray  # (runs,) expected clicks lost against always showing the best arm
    decided_arm: np.ndarray  # (runs,) arm the policy settled on, -1 before a decision
    decided_round: np.ndarray  # (runs,) round of that decision, 0 before
    rollout: np.ndarray  # (runs,) arm an A/B test sends everyone to once it ended, -1 while testing

    @classmethod
    def empty(cls, runs: int, n_arms: int) -> _PolicyState:
        return cls(np.zeros((runs, n_arms), np.int64), np.zeros((runs, n_arms), np.int64), np.zeros(runs),
                   np.full(runs, -1), np.zeros(runs, np.int64), np.full(runs, -1))


def _allocate(policy: str, rng: np.random.Generator, state: _PolicyState, visitors: int, epsilon: float) -> np.ndarray:
    """(runs, arms) visitors of one batch sent to each arm by ``policy``."""
    runs, n_arms = state.shown.shape
    if policy in ("ab_fixed", "ab_peeking"):
        split = np.full(n_arms, visitors // n_arms)
        split[: visitors % n_arms] += 1
        testing = np.broadcast_to(split, (runs, n_arms))
        rolled = _one_hot(np.maximum(state.rollout, 0), n_arms) * visitors
        return np.where((state.rollout < 0)[:, None], testing, rolled).astype(np.int64)
    observed = state.clicks / np.maximum(state.shown, 1)
    if policy == "epsilon_greedy":
        # an arm never tried counts as best, so every arm is tried before exploiting
        greedy = _argmax_random_ties(rng, np.where(state.shown > 0, observed, np.inf))
        share = epsilon / n_arms + (1 - epsilon) * _one_hot(greedy, n_arms)
        return rng.multinomial(visitors, share)
    if policy == "ucb1":
        total = np.maximum(state.shown.sum(axis=1, keepdims=True), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = np.sqrt(2 * np.log(total) / state.shown)
        index = np.where(state.shown > 0, observed + bonus, np.inf)
        return _one_hot(_argmax_random_ties(rng, index), n_arms).astype(np.int64) * visitors
    if policy == "thompson":
        return rng.multinomial(visitors, probability_best(rng, state.clicks, state.shown))
    raise DataError(f"Unknown policy {policy!r}; choose one of {list(POLICIES)}.")


def _decide(policy: str, rng: np.random.Generator, state: _PolicyState, round_number: int, *, alpha: float,
            planned_per_arm: int, last_round: bool) -> None:
    """Record decisions reached at the end of ``round_number`` (each run decides once)."""
    open_runs = state.decided_arm < 0
    if policy in ("ab_fixed", "ab_peeking"):
        testing = state.rollout < 0
        reached = state.shown.min(axis=1) >= planned_per_arm
        look = testing & ((reached | last_round) if policy == "ab_fixed" else np.ones_like(testing))
        significant, leader = ab_decision(state.clicks, state.shown, alpha)
        winners = look & significant
        # a test that reached its planned size without a winner keeps the control (arm 0)
        gave_up = testing & (reached | last_round) & ~significant
        state.rollout = np.where(winners, leader, np.where(gave_up, 0, state.rollout))
    else:
        chance = probability_best(rng, state.clicks, state.shown)
        winners = chance.max(axis=1) >= DECISION_PROBABILITY
        leader = chance.argmax(axis=1)
    newly = open_runs & winners
    state.decided_arm = np.where(newly, leader, state.decided_arm)
    state.decided_round = np.where(newly, round_number, state.decided_round)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One arms-and-traffic setting, shared by every policy it compares."""

    rates: np.ndarray  # (arms,) true click rate of each arm
    rounds: int
    visitors_per_round: int
    runs: int
    epsilon: float = 0.1
    alpha: float = 0.05
    planned_per_arm: int = 20_000
    # bandits update this many times per round: a round is what the chart shows, not how
    # often a live bandit may move traffic
    updates_per_round: int = 10

    def __post_init__(self) -> None:
        rates = np.asarray(self.rates, dtype=np.float64)
        if rates.ndim != 1 or not 2 <= rates.size <= MAX_ARMS:
            raise DataError(f"Give between 2 and {MAX_ARMS} arm click rates; got {rates.tolist()}.")
        if rates.min() <= 0 or rates.max() >= 1:
            raise DataError(f"Arm click rates must lie strictly between 0 and 1; got {rates.tolist()}.")
        if self.rounds < 1 or self.visitors_per_round < self.updates_per_round or self.runs < 1:
            raise DataError(
                "Need at least one round and one run, and at least one visitor per update "
                f"(rounds={self.rounds}, visitors_per_round={self.visitors_per_round}, runs={self.runs})."
            )
        if not 0.0 <= self.epsilon <= 1.0:
            raise DataError(f"epsilon must be between 0 and 1; got {self.epsilon}.")
        _check_alpha(self.alpha)
        object.__setattr__(self, "rates", rates)

    @property
    def best(self) -> np.ndarray:
        """Arms tied for the highest rate (several in an A/A test)."""
        return np.flatnonzero(self.rates == self.rates.max())


def simulate(experiment: Experiment, policies: Sequence[str] = POLICIES, *, seed: int = 0,
             progress: RoundProgress | None = None) -> tuple[pd.DataFrame, dict[str, _PolicyState]]:
    """Run every policy on the same arms, ``experiment.runs`` times over; per-round means over runs.

    Each policy draws from its own child of ``seed``, so adding or dropping one leaves the
    others' numbers unchanged.
    """
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise DataError(f"Unknown policy {unknown}; choose from {list(POLICIES)}.")
    rates, n_arms, runs = experiment.rates, experiment.rates.size, experiment.runs
    gap = rates.max() - rates
    is_best = np.isin(np.arange(n_arms), experiment.best)
    streams = dict(zip(policies, np.random.SeedSequence(seed).spawn(len(policies)), strict=True))
    rngs = {p: np.random.default_rng(streams[p]) for p in policies}
    states = {p: _PolicyState.empty(runs, n_arms) for p in policies}
    batch_sizes = np.diff(np.linspace(0, experiment.visitors_per_round, experiment.updates_per_round + 1)
                          .round().astype(np.int64))
    rows = []
    for round_number in range(1, experiment.rounds + 1):
        latest = {}
        for policy in policies:
            rng, state = rngs[policy], states[policy]
            round_clicks = np.zeros(runs)
            for visitors in batch_sizes:
                counts = _allocate(policy, rng, state, int(visitors), experiment.epsilon)
                clicks = rng.binomial(counts, rates)
                state.shown += counts
                state.clicks += clicks
                state.regret += counts @ gap
                round_clicks += clicks.sum(axis=1)
            _decide(policy, rng, state, round_number, alpha=experiment.alpha,
                    planned_per_arm=experiment.planned_per_arm, last_round=round_number == experiment.rounds)
            decided = state.decided_arm >= 0
            row = {
                "round": round_number,
                "series": POLICY_LABELS[policy],
                "visitors": round_number * experiment.visitors_per_round,
                "cumulative_regret": float(state.regret.mean()),
                "traffic_share_best": float(state.shown[:, is_best].sum() / state.shown.sum()),
                "clicks": float(round_clicks.mean()),
                "decided": float(decided.mean()),
                "decided_correct": float((decided & is_best[np.maximum(state.decided_arm, 0)]).mean()),
            }
            rows.append(row)
            # the round's row as the page's live charts read it: the same metrics as the final ones
            latest[POLICY_LABELS[policy]] = {k: v for k, v in row.items() if k not in ("round", "series")}
        if progress is not None:
            progress(round_number, experiment.rounds, latest)
    return pd.DataFrame(rows), states


def visitors_to_correct_decision(state: _PolicyState, experiment: Experiment) -> float:
    """Median over runs of the visitors seen when the policy settled on a best arm (NaN if most never did)."""
    correct = (state.decided_arm >= 0) & np.isin(state.decided_arm, experiment.best)
    visitors = np.where(correct, state.decided_round * experiment.visitors_per_round, np.inf).astype(np.float64)
    median = float(np.median(visitors))
    return median if np.isfinite(median) else float("nan")


# --------------------------------------------------------------------------- arms from trained models


def arm_rates_from_rankings(relevance: np.ndarray, rankings: Sequence[np.ndarray], examine: np.ndarray) -> np.ndarray:
    """Per-arm visitor click rate of ranked rows placed in a world.

    ``relevance`` is the world's (users, items) click probability of an examined item;
    ``rankings[a]`` is arm a's (users, K) items per user, in slot order; ``examine`` the (K,)
    chance each slot is looked at. An arm's rate is the mean over users of the chance that a
    visitor clicks at least one tile, ``1 - prod(1 - examine * relevance)``: an A/B test counts
    visitors who clicked, a Bernoulli per visitor, which is what the z-test assumes.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    examine = np.asarray(examine, dtype=np.float64)
    if relevance.ndim != 2:
        raise DataError(f"relevance must be a (users, items) matrix; got shape {relevance.shape}.")
    if not 2 <= len(rankings) <= MAX_ARMS:
        raise DataError(f"Give between 2 and {MAX_ARMS} rankings as arms; got {len(rankings)}.")
    rates = []
    for ranking in rankings:
        ranking = np.asarray(ranking)
        if ranking.shape != (relevance.shape[0], examine.size):
            raise DataError(
                f"Each ranking must be (users, K) = ({relevance.shape[0]}, {examine.size}); got {ranking.shape}. "
                "Rank every user of the world with the same K as the examination curve."
            )
        shown = np.take_along_axis(relevance, ranking, axis=1)
        rates.append(float(np.mean(1 - np.prod(1 - examine * shown, axis=1))))
    return np.asarray(rates)


def arm_rates_in_world(models: Sequence, world, *, k: int = 10, examination_kind: str = "grid",
                       n_cols: int | None = None, row_decay: float = 0.7, col_decay: float = 0.85,
                       users: np.ndarray | None = None, exclude_seen: bool = True) -> np.ndarray:
    """Per-arm visitor click rate of fitted models' top-``k`` rows placed in a :class:`World`.

    Each model recommends ``k`` items to every person of the world, laid out ``n_cols`` to a
    row (one row by default) and examined by ``examination_kind``; the rate is that of
    :func:`arm_rates_from_rankings`. The models must be fitted on the dataset the world's
    people and items come from; ``users`` gives the dataset codes of the world's rows when the
    world holds a subset of people (``World.from_model(..., users=...)``).
    """
    truth = np.asarray(world.truth)
    codes = np.arange(truth.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
    if codes.shape != (truth.shape[0],):
        raise DataError(f"users must give one dataset code per person of the world ({truth.shape[0]}); "
                        f"got {codes.size}.")
    if not 1 <= k <= truth.shape[1]:
        raise DataError(f"k must be between 1 and the world's {truth.shape[1]} items; got {k}.")
    examine = slot_examination(examination_kind, k, n_cols, row_decay=row_decay, col_decay=col_decay)
    rankings = [np.asarray(model.recommend(codes, k, exclude_seen=exclude_seen)[0]) for model in models]
    return arm_rates_from_rankings(truth, rankings, examine)


# --------------------------------------------------------------------------- the preset


# The highs keep the slowest allowed run (5 arms, 100 rounds, 300 runs, 200 visitors a round, where
# small counts still need exact Beta draws) near 13 CPU s, 35 s wall, on a busy two-core machine
# (load 8); 500 rounds of 2,000 runs took minutes. The lessons' bandit knobs stay within these.
@dataclasses.dataclass
class BanditKnobs:
    n_arms: int = param(2, low=2, high=MAX_ARMS, help="How many versions compete (arm 1 is the control).")
    rate_1: float = param(0.040, low=0.001, high=0.5, step=0.001, help="True click rate of arm 1, the control.")
    rate_2: float = param(0.046, low=0.001, high=0.5, step=0.001, help="True click rate of arm 2.")
    rate_3: float = param(0.043, low=0.001, high=0.5, step=0.001, help="True click rate of arm 3 (when 3+ arms).")
    rate_4: float = param(0.038, low=0.001, high=0.5, step=0.001, help="True click rate of arm 4 (when 4+ arms).")
    rate_5: float = param(0.044, low=0.001, high=0.5, step=0.001, help="True click rate of arm 5 (when 5 arms).")
    rounds: int = param(60, low=5, high=100, help="Rounds of traffic; the charts show one point per round.")
    visitors_per_round: int = param(2000, low=200, high=100_000, log=True, help="Visitors arriving per round.")
    runs: int = param(200, low=10, high=300, log=True, help="Repeated runs averaged into each curve.")
    epsilon: float = param(0.1, low=0.0, high=1.0, step=0.01, help="Share of traffic ε-greedy spends exploring.")
    alpha: float = param(0.05, low=0.001, high=0.2, step=0.001, help="Significance level of the A/B test.")
    target_power: float = param(0.8, low=0.5, high=0.99, step=0.01, help="Power the A/B test is planned for.")
    planned_lift: float = param(0.15, low=0.01, high=2.0, step=0.01,
                                help="Smallest relative lift the A/B test is sized to detect (0.15 = +15 %).")
    null_runs: int = param(1000, low=100, high=20_000, log=True,
                           help="A/A runs (equal arms) counted for the false-positive rate.")


def knob_rates(knobs: BanditKnobs) -> np.ndarray:
    return np.array([getattr(knobs, f"rate_{arm}") for arm in range(1, knobs.n_arms + 1)])


def run_bandit_vs_ab(knobs: BanditKnobs, *, seed: int = 0, progress: RoundProgress | None = None,
                     arm_rates: Sequence[float] | None = None, arm_labels: Sequence[str] | None = None
                     ) -> SimulationResult:
    """The preset: every policy on the same arms, plus the power and false-positive tables.

    ``arm_rates`` (with optional ``arm_labels``) replaces the knob rates, e.g. with
    :func:`arm_rates_in_world` of two stored runs placed in a world.
    """
    rates = knob_rates(knobs) if arm_rates is None else np.asarray(arm_rates, dtype=np.float64)
    labels = list(arm_labels) if arm_labels is not None else [f"arm {a + 1}" for a in range(rates.size)]
    if len(labels) != rates.size:
        raise DataError(f"Give one label per arm: {rates.size} rates but {len(labels)} labels.")
    planned = sample_size(rates[0], knobs.planned_lift, knobs.alpha, knobs.target_power)
    experiment = Experiment(rates=rates, rounds=knobs.rounds, visitors_per_round=knobs.visitors_per_round,
                            runs=knobs.runs, epsilon=knobs.epsilon, alpha=knobs.alpha, planned_per_arm=planned)
    frame, states = simulate(experiment, seed=seed, progress=progress)
    summary = _summary(experiment, states, knobs, planned, seed)
    tables = {
        "Policies": _policy_table(experiment, states),
        "Arms": pd.DataFrame({"arm": labels, "true click rate": rates,
                              "best": np.isin(np.arange(rates.size), experiment.best)}),
        "Power calculation": _power_table(experiment, knobs, planned, summary),
        "False positives over A/A runs": pd.DataFrame({
            "test": ["fixed horizon (one look)", "peeking (stop at first p < alpha)"],
            "false-positive rate": [summary["fpr_fixed"], summary["fpr_peeking"]],
            "looks": [1, summary["fpr_looks"]],
            "null runs": [knobs.null_runs, knobs.null_runs],
        }),
    }
    return SimulationResult(preset="bandit_vs_ab", knobs=dataclasses.asdict(knobs), seed=seed, rounds=frame,
                            takeaway=_takeaway(summary, experiment), summary=summary, tables=tables)


def _summary(experiment: Experiment, states: dict[str, _PolicyState], knobs: BanditKnobs, planned: int,
             seed: int) -> dict[str, float]:
    horizon = experiment.rounds * experiment.visitors_per_round
    summary: dict[str, float] = {"visitors": float(horizon), "planned_per_arm": float(planned)}
    for policy, state in states.items():
        summary[f"regret_{policy}"] = float(state.regret.mean())
        summary[f"visitors_to_decision_{policy}"] = visitors_to_correct_decision(state, experiment)
        summary[f"wrong_decisions_{policy}"] = float(
            ((state.decided_arm >= 0) & ~np.isin(state.decided_arm, experiment.best)).mean())
    # the A/A check uses the A/B test's own plan: control rate, planned size, one look per round
    per_round_per_arm = experiment.visitors_per_round // experiment.rates.size
    looks = int(np.clip(np.ceil(planned / per_round_per_arm), 1, experiment.rounds))
    # streams after the policies' own, so the checks never share draws with a policy
    null_seed, power_seed = np.random.SeedSequence(seed).spawn(len(POLICIES) + 2)[-2:]
    null_kwargs = dict(p=float(experiment.rates[0]), n_per_arm=max(planned, looks), n_peeks=looks,
                       alpha=experiment.alpha, seed=null_seed)
    summary["fpr_looks"] = float(looks)
    # the plan's power at the visitors this run can give, by formula and by simulated tests
    per_arm_run = int(min(planned, horizon // experiment.rates.size))
    summary["per_arm_run"] = float(per_arm_run)
    summary["power_formula"] = power(float(experiment.rates[0]), knobs.planned_lift, per_arm_run, knobs.alpha)
    summary["power_simulated"] = empirical_power(float(experiment.rates[0]), knobs.planned_lift, per_arm_run,
                                                 knobs.alpha, n_runs=knobs.null_runs, seed=power_seed)
    summary["fpr_fixed"] = false_positive_rate(knobs.null_runs, peeking=False, **null_kwargs)
    summary["fpr_peeking"] = false_positive_rate(knobs.null_runs, peeking=True, **null_kwargs)
    return summary


def _policy_table(experiment: Experiment, states: dict[str, _PolicyState]) -> pd.DataFrame:
    rows = []
    for policy, state in states.items():
        decided = state.decided_arm >= 0
        correct = decided & np.isin(state.decided_arm, experiment.best)
        rows.append({
            "policy": POLICY_LABELS[policy],
            "cumulative regret (clicks)": float(state.regret.mean()),
            "traffic on best arm": float(state.shown[:, experiment.best].sum() / state.shown.sum()),
            "runs decided correctly": float(correct.mean()),
            "runs decided wrongly": float((decided & ~correct).mean()),
            "median visitors to correct decision": visitors_to_correct_decision(state, experiment),
        })
    return pd.DataFrame(rows)


def _power_table(experiment: Experiment, knobs: BanditKnobs, planned: int, summary: dict) -> pd.DataFrame:
    return pd.DataFrame({
        "quantity": ["control click rate", "planned relative lift", "alpha", "target power",
                     "visitors needed per arm", "visitors per arm this run can give", "power (formula)",
                     "power (simulated tests)"],
        "value": [float(experiment.rates[0]), knobs.planned_lift, knobs.alpha, knobs.target_power, float(planned),
                  summary["per_arm_run"], summary["power_formula"], summary["power_simulated"]],
    })


def _takeaway(summary: dict, experiment: Experiment) -> str:
    ab, ts = summary["regret_ab_fixed"], summary["regret_thompson"]
    if ts < ab:
        comparison = f"Thompson sampling lost {ts:.0f} clicks to weaker arms against {ab:.0f} for the fixed A/B test"
    else:
        comparison = (f"the fixed A/B test lost {ab:.0f} clicks to weaker arms, no more than "
                      f"Thompson sampling's {ts:.0f}")
    fixed, peek = summary["fpr_fixed"], summary["fpr_peeking"]
    return (f"Over {summary['visitors']:,.0f} visitors {comparison}; with equal arms, peeking after every round "
            f"declared a false winner in {peek:.1%} of runs against {fixed:.1%} for one planned look.")


PRESETS = [
    Preset(
        key="bandit_vs_ab",
        label="Bandit vs A/B test",
        blurb="A fixed-split A/B test, the same test with peeking, and ε-greedy, UCB1 and Thompson "
              "sampling share the same visitors: regret, traffic on the best arm, decisions and false positives.",
        Knobs=BanditKnobs,
        run=run_bandit_vs_ab,
    ),
]
