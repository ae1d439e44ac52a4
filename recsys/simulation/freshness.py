"""Freshness and serving tiers: a model goes stale as tastes drift, and what keeps it fresh.

Each round people's tastes turn a little (``World.drift``), every person starts a few new
titles drawn from their *current* tastes, and some resume a title they began earlier. The
interaction log grows by those sessions. People start titles from their own tastes, not from
any tier's recommendations, so every tier reads the same log and differs only in how fresh it
keeps its view of it (how shown lists feed back into the log is the feedback loop's subject).
Four serving tiers:

* **static**: one model fitted on the log before round 1 and its scores computed once;
* **nightly retrain**: the model refitted on the whole log every ``retrain_every`` rounds,
  its scores recomputed then and served until the next refit (the offline tier);
* **nearline fold-in**: the static model's item side kept, each person's scores recomputed
  every round from their up-to-date history through the model's own fold-in
  (``score_history``), with no refit (the nearline tier);
* **static + recent**: the static scores blended with item-to-item similarity to the
  person's last few titles (the online tier's cheap session signal).

Every tier filters out what a person already started from the up-to-date log (a lookup, not
a model), so quality differences come from the models alone. Per round and tier it records
the true utility of the top-K (mean click probability, and its share of the best possible
top-K), the recall of the titles people start that round, the work done (refits, the logged
interactions those refits read, people folded in, user x item scores computed: counts, so
the same seed gives the same numbers; measured seconds sit apart in ``seconds``) and how
often a "Continue watching" row held the title a person resumed: built from the up-to-date
log it follows people, built when the tier last ran a batch job it lags.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.models.base import param
from recsys.models.capabilities import has
from recsys.models.registry import create
from recsys.serving.ranking import top_k
from recsys.simulation.presets import Preset
from recsys.simulation.result import RoundProgress, SimulationResult
from recsys.simulation.world import World

STATIC, RETRAIN, NEARLINE, ENSEMBLE = "static", "nightly retrain", "nearline fold-in", "static + recent"
TIERS = (STATIC, RETRAIN, NEARLINE, ENSEMBLE)
# registered models that fold a new history in and fit in well under a second on the default world
# what each per-round column means (the page puts it under the chart's title)
METRICS = {
    "utility": "mean true relevance of the tier's list, per person",
    "utility_share": "the tier's list's true relevance as a share of the best possible list's",
    "next_click_recall": "share of the titles people started next that the tier's list held",
    "continue_watching_hit": "share of resumed titles that the Continue watching row showed",
    "fits": "full model fits this round",
    "fit_interactions": "interactions read by those fits",
    "fold_ins": "histories folded into the served model this round (nearline work)",
    "scored_cells": "(person, title) scores computed this round",
    "seconds": "wall-clock seconds the tier's work took this round",
}
FOLD_IN_MODELS = ("item_knn", "ease", "ials", "pure_svd")
# a person resuming a title picks by how much they like it times this per round of its age:
# people mostly finish what they began lately, sometimes something older
RESUME_RECENCY = 0.5


@dataclass
class FreshnessKnobs:
    rounds: int = param(12, help="Rounds of drifting tastes and new sessions.", low=1, high=25)
    drift: float = param(0.15, help="How far tastes turn each round (0 = never, 1 = to unrelated tastes).",
                         low=0.0, high=1.0, step=0.01)
    retrain_every: int = param(4, help="The nightly tier refits on the whole log every this many rounds.",
                               low=1, high=100)
    model: str = param("item_knn", help="The served model (one that can fold in a new history).",
                       choices=FOLD_IN_MODELS)
    # nearline folds every person in every round, one history at a time: the highs keep the slowest
    # allowed run (400 x 400, 25 rounds, nightly refit every round) near 10 CPU s on a busy two-core
    # machine for item kNN, EASE and PureSVD; iALS, whose fold-in solves a least-squares problem per
    # person, takes about 2 CPU s a round there (default 300 people x 12 rounds: about a second)
    users: int = param(300, help="People in the simulated world.", low=20, high=400, log=True)
    items: int = param(300, help="Titles in the catalogue.", low=50, high=400, log=True)
    k: int = param(10, help="Recommendations shown per person, and the Continue watching row's length.",
                   low=1, high=30)
    items_per_round: int = param(3, help="New titles each person starts per round.", low=1, high=10)
    history_rounds: int = param(8, help="Rounds of history logged before the static model is fitted.",
                                low=1, high=20)
    resume_rate: float = param(0.6, help="Chance a person resumes a title they started, each round.",
                               low=0.0, high=1.0, step=0.05)
    recent_items: int = param(5, help="Static + recent: how many of the person's latest titles it reads.",
                              low=1, high=20)
    recent_weight: float = param(0.5, help="Static + recent: weight of the recent-title similarity "
                                           "against the static scores (both standardised per person).",
                                 low=0.0, high=10.0, step=0.1)


# ---------------------------------------------------------------------------- the log


@dataclass
class Log:
    """Who started what, in order: ``items[u]`` is person u's titles, oldest first.

    Every person starts the same number of titles per round, so the log is a dense
    (users x starts) array and "the last m titles" is a column slice.
    """

    items: np.ndarray          # (n_users, starts) item codes
    items_per_round: int
    n_items: int

    @property
    def n_users(self) -> int:
        return self.items.shape[0]

    @property
    def size(self) -> int:
        return self.items.size

    def append(self, started: np.ndarray) -> Log:
        return Log(np.hstack([self.items, started]), self.items_per_round, self.n_items)

    def seen(self) -> sp.csr_matrix:
        return _rows_to_matrix(self.items, self.n_items)

    def recent(self, m: int) -> np.ndarray:
        return self.items[:, -min(m, self.items.shape[1]):]

    def start_age(self) -> np.ndarray:
        """Rounds since each column's title was started (the last round's starts are 1 round old)."""
        columns = np.arange(self.items.shape[1])
        return (self.items.shape[1] - 1 - columns) // self.items_per_round + 1

    def dataset(self) -> Dataset:
        """The log as an implicit-feedback Dataset over the whole catalogue (codes are ids)."""
        n_users, starts = self.items.shape
        column_round = np.arange(starts) // self.items_per_round
        return Dataset(
            user=np.repeat(np.arange(n_users), starts), item=self.items.ravel(),
            rating=np.ones(self.items.size, np.float32), timestamp=np.tile(column_round, n_users),
            user_ids=np.arange(n_users), item_ids=np.arange(self.n_items), feedback="implicit",
            name="simulated log",
        )


def _rows_to_matrix(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """Binary (rows x n_items) matrix with a one at each listed item of each row."""
    n_rows, width = items.shape
    return sp.csr_matrix((np.ones(items.size, np.float32), (np.repeat(np.arange(n_rows), width), items.ravel())),
                         shape=(n_rows, n_items))


def _gumbel_top(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct columns per row drawn without replacement with probability ∝ ``weights``.

    The Gumbel-top-k trick: the n largest ``log w + Gumbel noise`` are such a draw, for every
    row at once; zero weights (already started titles) are never drawn.
    """
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    part = np.argpartition(-keys, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(keys, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def start_titles(rng: np.random.Generator, truth: np.ndarray, seen: sp.csr_matrix, n: int) -> np.ndarray:
    """Each person's ``n`` new titles, drawn by how much they like them now, never one they started."""
    weights = np.array(truth, dtype=np.float64)
    coo = seen.tocoo()
    weights[coo.row, coo.col] = 0.0
    return _gumbel_top(rng, weights, n)


def resume_titles(rng: np.random.Generator, truth: np.ndarray, log: Log, resume_rate: float) -> np.ndarray:
    """The title each person goes back to this round, -1 for those who resume nothing.

    A resumer picks among everything they started, by relevance times ``RESUME_RECENCY`` per
    round of age: mostly last round's titles, now and then an older one.
    """
    relevance = np.take_along_axis(truth, log.items, axis=1)
    weights = relevance * RESUME_RECENCY ** log.start_age()[None, :]
    picked = np.take_along_axis(log.items, _gumbel_top(rng, weights, 1), axis=1).ravel()
    resumes = rng.random(log.n_users) < resume_rate
    return np.where(resumes, picked, -1)


def continue_watching(log: Log, k: int) -> np.ndarray:
    """The "Continue watching" row: the person's ``k`` latest titles, newest first."""
    return log.recent(k)[:, ::-1]


def _row_hits(row: np.ndarray, resumed: np.ndarray) -> float:
    """Share of the people who resumed a title whose row held it (NaN when nobody resumed)."""
    resumers = resumed >= 0
    if not resumers.any():
        return float("nan")
    return float((row[resumers] == resumed[resumers, None]).any(axis=1).mean())


# ---------------------------------------------------------------------------- the tiers


def fold_in(model, log: Log) -> np.ndarray:
    """(users x items) scores of every person from their up-to-date history, via the model's fold-in.

    ``score_histories`` folds everybody in at once where the model can (one sparse product for
    kNN and EASE, one batched solve for iALS) and person by person otherwise.
    """
    return model.score_histories(log.items)


def item_cosine(log: Log) -> np.ndarray:
    """Dense item x item cosine of co-starting on ``log``, zero on the diagonal (the recent tier's signal)."""
    x = log.seen()
    co = (x.T @ x).toarray().astype(np.float64)
    norms = np.sqrt(np.diag(co))
    cosine = co / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(cosine, 0.0)
    return cosine


def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-person z-scores, so two scorers with different scales can be blended."""
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    std = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


@dataclass
class Tier:
    """One tier's state between rounds: the scores it serves and the row it shows."""

    scores: np.ndarray                  # (users x items) served scores
    row: np.ndarray                     # its "Continue watching" row (users x k)


@dataclass
class Work:
    """What a tier did in one round, counted (one seed, one set of counts) with measured seconds apart.

    The first fit, before round 1, is shared by every tier and so counted in none.
    """

    fits: int = 0
    fit_interactions: int = 0
    fold_ins: int = 0
    scored_cells: int = 0
    seconds: float = 0.0


def fit_model(key: str, log: Log):
    """A registered model fitted on the log; it must fold in, or the nearline tier has nothing to call."""
    model = create(key).fit(log.dataset())
    if not has(model, "fold_in"):
        raise DataError(f"The model {key!r} cannot fold in a new history; choose one of {list(FOLD_IN_MODELS)}.")
    return model


def _serve(tiers: dict[str, Tier], static_model, cosine: np.ndarray, log: Log, knobs: FreshnessKnobs,
           round_number: int) -> dict[str, Work]:
    """Bring each tier up to date for ``round_number`` as that tier would, and count its work."""
    n_cells = log.n_users * log.n_items
    work = {tier: Work() for tier in TIERS}

    start = time.perf_counter()
    if round_number > 1 and (round_number - 1) % knobs.retrain_every == 0:
        refit = fit_model(knobs.model, log)
        tiers[RETRAIN] = Tier(refit.score(np.arange(log.n_users)), continue_watching(log, knobs.k))
        work[RETRAIN] = Work(fits=1, fit_interactions=log.size, scored_cells=n_cells)
    work[RETRAIN].seconds = time.perf_counter() - start

    start = time.perf_counter()
    tiers[NEARLINE] = Tier(fold_in(static_model, log), continue_watching(log, knobs.k))
    work[NEARLINE] = Work(fold_ins=log.n_users, scored_cells=n_cells, seconds=time.perf_counter() - start)

    start = time.perf_counter()
    recent = cosine[log.recent(knobs.recent_items)].sum(axis=1)          # (users, items)
    blended = standardise_rows(tiers[STATIC].scores) + knobs.recent_weight * standardise_rows(recent)
    tiers[ENSEMBLE] = Tier(blended, continue_watching(log, knobs.k))
    work[ENSEMBLE] = Work(scored_cells=n_cells, seconds=time.perf_counter() - start)
    return work


# ---------------------------------------------------------------------------- the run


def check_knobs(knobs: FreshnessKnobs) -> None:
    starts = (knobs.history_rounds + knobs.rounds) * knobs.items_per_round
    if starts + knobs.k > knobs.items:
        raise DataError(
            f"People would start {starts} titles and still need {knobs.k} new ones to be shown, but the "
            f"catalogue has {knobs.items}; raise items or lower rounds, history_rounds or items_per_round."
        )
    if knobs.model not in FOLD_IN_MODELS:
        raise DataError(f"Unknown model {knobs.model!r} for the freshness simulation; choose one of "
                        f"{list(FOLD_IN_MODELS)}.")


def simulate(knobs: FreshnessKnobs, seed: int = 0, progress: RoundProgress | None = None) -> SimulationResult:
    """Run the freshness simulation: per round and tier, quality, work and the Continue watching row."""
    check_knobs(knobs)
    world_seed, drift_seed, session_seed = np.random.SeedSequence(seed).spawn(3)
    world = World.synthetic(knobs.users, knobs.items, seed=int(world_seed.generate_state(1)[0]))
    drift_seeds = np.random.default_rng(drift_seed).integers(0, 2**32, size=knobs.rounds)
    rng = np.random.default_rng(session_seed)

    log = history_before(rng, world, knobs)
    static_model = fit_model(knobs.model, log)
    static = Tier(static_model.score(np.arange(log.n_users)), continue_watching(log, knobs.k))
    tiers = {STATIC: static, RETRAIN: static}
    cosine = item_cosine(log)

    frames = []
    for round_number in range(1, knobs.rounds + 1):
        world = world.drift(knobs.drift, seed=int(drift_seeds[round_number - 1]))
        work = _serve(tiers, static_model, cosine, log, knobs, round_number)
        seen = log.seen()
        best = top_k(world.truth, knobs.k, exclude=seen)[0]
        best_utility = world.relevance(items=best).mean(axis=1)
        started = start_titles(rng, world.truth, seen, knobs.items_per_round)
        resumed = resume_titles(rng, world.truth, log, knobs.resume_rate)
        frame = _round_frame(round_number, tiers, work, world, seen, best_utility, started, resumed, knobs.k)
        frames.append(frame)
        log = log.append(started)
        if progress is not None:
            progress(round_number, knobs.rounds, frame.drop(columns="round").set_index("series").to_dict(orient="index"))
    rounds = pd.concat(frames, ignore_index=True)
    summary = summarise(rounds, knobs)
    return SimulationResult(preset="stale_model", knobs=asdict(knobs), seed=seed, rounds=rounds,
                            takeaway=takeaway(summary, knobs), summary=summary)


def history_before(rng: np.random.Generator, world: World, knobs: FreshnessKnobs) -> Log:
    """``history_rounds`` rounds of sessions under the initial tastes: what the static model learns from."""
    log = Log(np.empty((world.n_users, 0), np.int64), knobs.items_per_round, world.n_items)
    for _ in range(knobs.history_rounds):
        log = log.append(start_titles(rng, world.truth, log.seen(), knobs.items_per_round))
    return log


def _round_frame(round_number: int, tiers: dict[str, Tier], work: dict[str, Work], world: World,
                 seen: sp.csr_matrix, best_utility: np.ndarray, started: np.ndarray, resumed: np.ndarray,
                 k: int) -> pd.DataFrame:
    rows = []
    for name in TIERS:
        shown = top_k(tiers[name].scores, k, exclude=seen)[0]
        utility = world.relevance(items=shown).mean(axis=1)
        found = (shown[:, :, None] == started[:, None, :]).sum()
        rows.append({
            "round": round_number, "series": name,
            "utility": float(utility.mean()),
            "utility_share": float(utility.sum() / best_utility.sum()),
            "next_click_recall": float(found / started.size),
            "continue_watching_hit": _row_hits(tiers[name].row, resumed),
            "fits": work[name].fits, "fit_interactions": work[name].fit_interactions,
            "fold_ins": work[name].fold_ins, "scored_cells": work[name].scored_cells,
            "seconds": work[name].seconds,
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- the lesson


def summarise(rounds: pd.DataFrame, knobs: FreshnessKnobs) -> dict[str, float]:
    by_tier = rounds.groupby("series", sort=False)
    share = by_tier["utility_share"].mean()
    static = rounds[rounds["series"] == STATIC].sort_values("round")["utility_share"].to_numpy()
    hits = by_tier["continue_watching_hit"].mean()
    totals = by_tier[["fits", "fit_interactions", "fold_ins", "scored_cells"]].sum()
    return {
        "static_first_share": float(static[0]),
        "static_last_share": float(static[-1]),
        "static_drop_percent": float(100.0 * (1.0 - static[-1] / static[0])) if static[0] > 0 else 0.0,
        **{f"{_slug(tier)}_mean_share": float(share[tier]) for tier in TIERS},
        "nearline_kept_percent": float(100.0 * share[NEARLINE] / share[RETRAIN]) if share[RETRAIN] > 0 else 0.0,
        "retrain_fits": float(totals.loc[RETRAIN, "fits"]),
        "retrain_fit_interactions": float(totals.loc[RETRAIN, "fit_interactions"]),
        "nearline_fold_ins": float(totals.loc[NEARLINE, "fold_ins"]),
        "continue_watching_nearline": float(hits[NEARLINE]),
        "continue_watching_stale": float(hits[STATIC]),
    }


def _slug(tier: str) -> str:
    return {STATIC: "static", RETRAIN: "retrain", NEARLINE: "nearline", ENSEMBLE: "ensemble"}[tier]


def _percent(value: float) -> str:
    return f"{100.0 * value:.0f} %"


def takeaway(summary: dict[str, float], knobs: FreshnessKnobs) -> str:
    """One sentence from this run's numbers (every figure in it is in ``summary``)."""
    change = "fell" if summary["static_drop_percent"] >= 0 else "rose"
    return (
        f"After {knobs.rounds} rounds {'of drift' if knobs.drift > 0 else 'without drift'} the static model's share of the best possible utility {change} "
        f"{abs(summary['static_drop_percent']):.0f} % ({_percent(summary['static_first_share'])} to "
        f"{_percent(summary['static_last_share'])}); nearline fold-in averaged "
        f"{_percent(summary['nearline_mean_share'])} of the best, {summary['nearline_kept_percent']:.0f} % of "
        f"nightly retrain's {_percent(summary['retrain_mean_share'])}, with no refit "
        f"({summary['nearline_fold_ins']:,.0f} fold-ins against {summary['retrain_fits']:.0f} refits over "
        f"{summary['retrain_fit_interactions']:,.0f} logged interactions); static + recent averaged "
        f"{_percent(summary['ensemble_mean_share'])}, static {_percent(summary['static_mean_share'])}; the "
        f"Continue watching row held {_percent(summary['continue_watching_nearline'])} of resumed titles "
        f"when updated nearline, {_percent(summary['continue_watching_stale'])} when built once."
    )


def run(knobs: FreshnessKnobs, seed: int = 0, progress: RoundProgress | None = None) -> SimulationResult:
    from recsys.simulation.loop import one_blas_thread

    # small matrices, refitted and folded in hundreds of times: BLAS threads only fight over busy cores
    with one_blas_thread():
        return simulate(knobs, seed=seed, progress=progress)


PRESETS = [
    Preset(
        key="stale_model",
        label="Stale model",
        blurb="Tastes drift each round: a model trained once goes stale; nightly retraining, nearline "
              "fold-in of each session and a static + recent blend keep it fresh at different costs.",
        Knobs=FreshnessKnobs,
        run=run,
    ),
]
