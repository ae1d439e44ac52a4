"""Position bias and MNAR: clicks follow the tile's place on the page as much as its quality.

A logging policy fills a homepage grid (rows x columns) from a noisy popularity ranking for
every page view; people examine slots with the examination model of
:mod:`recsys.simulation.clicks` and click what they examine with the world's true relevance.
The log is therefore missing not at random: items the policy likes sit where people look, so
their raw click-through rate is inflated. Three ways to rank the catalogue from that log:

* **naive CTR**: clicks / impressions, which confounds quality with position;
* **IPW CTR**: each click weighted by 1 / (examination chance of its slot), unbiased for the
  chance a person clicks the item when they look at it;
* **IPW with estimated propensities**: the same weights learned from the log itself, by
  randomly swapping the first slot with slot k on a share of page views.

Each is compared with the truth (the item's mean true relevance) by Kendall's tau.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from recsys.data.errors import DataError
from recsys.models.base import param
from recsys.simulation.clicks import EXAMINATION_KINDS, examination
from recsys.simulation.presets import Preset
from recsys.simulation.result import RoundProgress, SimulationResult
from recsys.simulation.world import World

ESTIMATORS = ("naive", "ipw", "ipw_estimated")
ESTIMATOR_LABELS = {
    "naive": "naive CTR",
    "ipw": "IPW (true propensities)",
    "ipw_estimated": "IPW (estimated propensities)",
}
# what each per-round column means (the page puts it under the chart's title)
METRICS = {
    "page_views": "page views logged so far, the same for every estimator",
    "kendall_tau": "Kendall τ between the estimator's item ranking and the items' true relevance (1 = same order)",
    "propensity_error": "mean absolute error of the slots' examination propensities the estimator uses",
}
# Estimated propensities below this are clipped: a slot whose swap sample holds no click yet
# would otherwise get an infinite weight.
PROPENSITY_FLOOR = 0.01


@dataclasses.dataclass
class ImpressionLog:
    """Running counts of a grid's log: what was shown where, and the swap experiment's tallies.

    ``clicks`` / ``shown`` are (items, slots); slots are in reading order (row by row).
    ``swap_*`` count page views whose first slot was swapped with slot k (index k), and
    ``plain_*`` the page views left as the policy ranked them.
    """

    clicks: np.ndarray
    shown: np.ndarray
    plain_views: int
    plain_clicks: np.ndarray  # (slots,) clicks per slot on unswapped page views
    swap_views: np.ndarray  # (slots,) page views whose slot 0 was swapped with slot k
    swap_clicks_top: np.ndarray  # (slots,) clicks at slot 0 on those page views
    swap_clicks_k: np.ndarray  # (slots,) clicks at slot k on those page views

    @classmethod
    def empty(cls, n_items: int, n_slots: int) -> ImpressionLog:
        return cls(np.zeros((n_items, n_slots)), np.zeros((n_items, n_slots)), 0, np.zeros(n_slots),
                   np.zeros(n_slots), np.zeros(n_slots), np.zeros(n_slots))

    @property
    def page_views(self) -> int:
        return int(self.plain_views + self.swap_views.sum())


def logging_pages(rng: np.random.Generator, scores: np.ndarray, n_views: int, n_slots: int,
                  randomisation: float) -> np.ndarray:
    """(n_views, n_slots) items a noisy ranking puts on each page view, best slot first.

    Every view ranks ``scores + randomisation * Gumbel noise`` (a Plackett-Luce draw), so the
    policy mostly shows its favourites at the top but every item gets some exposure.
    """
    noisy = scores[None, :] + randomisation * rng.gumbel(size=(n_views, scores.size))
    top = np.argpartition(-noisy, n_slots - 1, axis=1)[:, :n_slots]
    order = np.argsort(-np.take_along_axis(noisy, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def swap_first_slot(rng: np.random.Generator, pages: np.ndarray, swap_fraction: float) -> np.ndarray:
    """Swap slot 0 with a uniformly chosen slot k on a random ``swap_fraction`` of page views.

    Returns (n_views,) k for swapped views and 0 for the rest; ``pages`` is swapped in place.
    The swap is random, so the items at slot 0 and slot k are the same populations with or
    without it: only their positions differ, which is what makes the click ratio a propensity.
    """
    n_views, n_slots = pages.shape
    swapped = rng.random(n_views) < swap_fraction
    partner = np.where(swapped, rng.integers(1, n_slots, size=n_views), 0)
    views = np.flatnonzero(swapped)
    first = pages[views, 0].copy()
    pages[views, 0] = pages[views, partner[views]]
    pages[views, partner[views]] = first
    return partner


def record(log: ImpressionLog, pages: np.ndarray, clicks: np.ndarray, partner: np.ndarray) -> None:
    """Add one batch of page views (items shown, clicks, swap partner) to the log."""
    n_items, n_slots = log.shown.shape
    cell = (pages * n_slots + np.arange(n_slots)[None, :]).ravel()
    log.shown += np.bincount(cell, minlength=n_items * n_slots).reshape(n_items, n_slots)
    log.clicks += np.bincount(cell, weights=clicks.ravel(), minlength=n_items * n_slots).reshape(n_items, n_slots)
    plain = partner == 0
    log.plain_views += int(plain.sum())
    log.plain_clicks += clicks[plain].sum(axis=0)
    swapped = np.flatnonzero(~plain)
    log.swap_views += np.bincount(partner[swapped], minlength=n_slots)
    log.swap_clicks_top += np.bincount(partner[swapped], weights=clicks[swapped, 0], minlength=n_slots)
    log.swap_clicks_k += np.bincount(partner[swapped], weights=clicks[swapped, partner[swapped]], minlength=n_slots)


def estimated_propensities(log: ImpressionLog) -> np.ndarray:
    """(slots,) examination of each slot relative to slot 0, from the randomised swaps.

    Unswapped views show the policy's top item (relevance a) at slot 0 and its k-th (b) at
    slot k; swapped views show b at 0 and a at k. So
    ``(CTR_k unswapped + CTR_k swapped) / (CTR_0 unswapped + CTR_0 swapped)``
    ``= e_k (a + b) / (e_0 (a + b)) = e_k / e_0``: the items' quality cancels.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        plain_ctr = log.plain_clicks / log.plain_views
        at_k = plain_ctr + log.swap_clicks_k / log.swap_views
        at_top = plain_ctr[0] + log.swap_clicks_top / log.swap_views
        ratio = at_k / at_top
    ratio = np.where(np.isfinite(ratio), ratio, 1.0)
    ratio[0] = 1.0
    return np.clip(ratio, PROPENSITY_FLOOR, None)


def item_ctr(log: ImpressionLog, propensity: np.ndarray | None = None) -> np.ndarray:
    """(items,) click-through rate per item; with ``propensity`` each click counts 1 / propensity.

    NaN for items never shown. The weighted form estimates how often an item is clicked
    when it is looked at (up to the scale of ``propensity``).
    """
    impressions = log.shown.sum(axis=1)
    clicks = log.clicks if propensity is None else log.clicks / np.asarray(propensity)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return clicks.sum(axis=1) / impressions


def kendall_tau(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Kendall's tau-b between an estimate and the truth over the items it could rank (shown ones)."""
    known = np.isfinite(estimate)
    if known.sum() < 2:
        return float("nan")
    return float(stats.kendalltau(estimate[known], truth[known]).statistic)


# --------------------------------------------------------------------------- the preset


# Each round ranks every page view over the whole catalogue: the highs (50 rounds of 20,000 views over
# 150 items) keep the slowest allowed run near 7 CPU s on a busy two-core machine.
@dataclasses.dataclass
class PositionBiasKnobs:
    rounds: int = param(20, low=2, high=50, help="Rounds; each adds a batch of page views to the log.")
    page_views_per_round: int = param(5000, low=100, high=20_000, log=True, help="Page views logged per round.")
    n_items: int = param(30, low=10, high=150, help="Catalogue size the grid draws from.")
    n_users: int = param(300, low=20, high=2000, log=True, help="People in the synthetic world.")
    grid_rows: int = param(4, low=1, high=6, help="Rows of the homepage grid.")
    grid_cols: int = param(6, low=1, high=8, help="Tiles per row.")
    examination_kind: str = param("grid", choices=EXAMINATION_KINDS,
                                  help="How people look at the page: every slot, top to bottom, or row x column decay.")
    row_decay: float = param(0.7, low=0.05, high=1.0, step=0.05, help="Examination kept per row further down.")
    col_decay: float = param(0.85, low=0.05, high=1.0, step=0.05, help="Examination kept per tile further right.")
    randomisation: float = param(0.3, low=0.0, high=5.0, step=0.1,
                                 help="Noise in the logging ranking (0 = always the same popularity order).")
    swap_fraction: float = param(0.2, low=0.0, high=1.0, step=0.05,
                                 help="Share of page views whose first tile is swapped with a random other tile.")
    base_rate: float = param(0.05, low=0.005, high=0.5, step=0.005,
                             help="Mean true click probability of a looked-at (user, item) in the world.")


def run_position_bias(knobs: PositionBiasKnobs, *, seed: int = 0, progress: RoundProgress | None = None,
                      world: World | None = None) -> SimulationResult:
    """The preset: log page views round by round and rank the catalogue three ways.

    ``world`` replaces the synthetic one (e.g. ``World.from_model`` of a stored run); its
    item popularity prior drives the logging policy.
    """
    n_slots = knobs.grid_rows * knobs.grid_cols
    world_seed, log_seed = np.random.SeedSequence(seed).spawn(2)
    if world is None:
        world = World.synthetic(knobs.n_users, knobs.n_items, seed=int(world_seed.generate_state(1)[0]),
                                base_rate=knobs.base_rate)
    if n_slots >= world.n_items:
        raise DataError(
            f"The grid has {n_slots} tiles but the catalogue only {world.n_items} items; "
            "use fewer rows or columns, or more items, so the policy has to choose."
        )
    if n_slots < 2:
        raise DataError("The grid needs at least two tiles to show position bias; add a row or a column.")
    examine = examination(knobs.examination_kind, knobs.grid_rows, knobs.grid_cols,
                          row_decay=knobs.row_decay, col_decay=knobs.col_decay).ravel()
    truth = world.truth.mean(axis=0)
    rng = np.random.default_rng(log_seed)
    log = ImpressionLog.empty(world.n_items, n_slots)
    rows = []
    for round_number in range(1, knobs.rounds + 1):
        pages = logging_pages(rng, world.popularity, knobs.page_views_per_round, n_slots, knobs.randomisation)
        partner = swap_first_slot(rng, pages, knobs.swap_fraction)
        users = rng.integers(0, world.n_users, size=knobs.page_views_per_round)
        clicks = rng.random(pages.shape) < examine[None, :] * world.truth[users[:, None], pages]
        record(log, pages, clicks, partner)
        estimated = estimated_propensities(log)
        error = float(np.mean(np.abs(estimated[1:] - examine[1:] / examine[0])))
        latest = {}
        for name, propensity in (("naive", None), ("ipw", examine), ("ipw_estimated", estimated)):
            tau = kendall_tau(item_ctr(log, propensity), truth)
            figures = {"page_views": log.page_views, "kendall_tau": tau,
                       "propensity_error": error if name == "ipw_estimated" else (0.0 if name == "ipw" else np.nan)}
            rows.append({"round": round_number, "series": ESTIMATOR_LABELS[name], **figures})
            latest[ESTIMATOR_LABELS[name]] = figures  # the round's row: the live charts are the final ones
        if progress is not None:
            progress(round_number, knobs.rounds, latest)
    frame = pd.DataFrame(rows)
    estimated = estimated_propensities(log)
    summary = _summary(frame, log, knobs)
    tables = {
        "Propensities": _propensity_table(knobs, examine, estimated, log),
        "Item ranking": _item_table(world, truth, log, examine, estimated),
    }
    return SimulationResult(preset="position_bias", knobs=dataclasses.asdict(knobs), seed=seed, rounds=frame,
                            takeaway=_takeaway(summary), summary=summary, tables=tables)


def _summary(frame: pd.DataFrame, log: ImpressionLog, knobs: PositionBiasKnobs) -> dict[str, float]:
    last = frame[frame["round"] == frame["round"].max()].set_index("series")
    return {
        "page_views": float(log.page_views),
        "swapped_views": float(log.swap_views.sum()),
        "tau_naive": float(last.loc[ESTIMATOR_LABELS["naive"], "kendall_tau"]),
        "tau_ipw": float(last.loc[ESTIMATOR_LABELS["ipw"], "kendall_tau"]),
        "tau_ipw_estimated": float(last.loc[ESTIMATOR_LABELS["ipw_estimated"], "kendall_tau"]),
        "propensity_error": float(last.loc[ESTIMATOR_LABELS["ipw_estimated"], "propensity_error"]),
        "items_shown": float((log.shown.sum(axis=1) > 0).sum()),
    }


def _propensity_table(knobs: PositionBiasKnobs, examine: np.ndarray, estimated: np.ndarray,
                      log: ImpressionLog) -> pd.DataFrame:
    slots = np.arange(examine.size)
    return pd.DataFrame({
        "slot": slots + 1,
        "row": slots // knobs.grid_cols + 1,
        "column": slots % knobs.grid_cols + 1,
        "true examination (relative to slot 1)": examine / examine[0],
        "estimated from swaps": estimated,
        "swapped page views": log.swap_views.astype(np.int64),
        "clicks logged": log.clicks.sum(axis=0).astype(np.int64),
    })


def _item_table(world: World, truth: np.ndarray, log: ImpressionLog, examine: np.ndarray,
                estimated: np.ndarray) -> pd.DataFrame:
    """Every item with its truth and the three estimates, best first by the truth."""
    impressions = log.shown.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_slot = (log.shown * np.arange(1, examine.size + 1)[None, :]).sum(axis=1) / impressions
    titles = world.item_titles or tuple(f"item {i}" for i in range(world.n_items))
    frame = pd.DataFrame({
        "item": list(titles),
        "true relevance": truth,
        "naive CTR": item_ctr(log),
        "IPW CTR": item_ctr(log, examine / examine[0]),
        "IPW CTR (estimated)": item_ctr(log, estimated),
        "impressions": impressions.astype(np.int64),
        "mean slot": mean_slot,
    })
    for column in ("true relevance", "naive CTR", "IPW CTR", "IPW CTR (estimated)"):
        frame[f"rank by {column}"] = frame[column].rank(ascending=False, method="min")
    return frame.sort_values("true relevance", ascending=False, kind="stable").reset_index(drop=True)


def _takeaway(summary: dict) -> str:
    naive, ipw, estimated = summary["tau_naive"], summary["tau_ipw"], summary["tau_ipw_estimated"]
    verdict = "raised" if ipw > naive else "did not raise"
    return (f"After {summary['page_views']:,.0f} page views, ranking items by raw click-through agreed with their "
            f"true relevance at Kendall τ = {naive:.2f}; weighting each click by 1 / examination {verdict} it to "
            f"{ipw:.2f}, and {estimated:.2f} with propensities learned from {summary['swapped_views']:,.0f} "
            f"randomised swaps (mean error {summary['propensity_error']:.2f}).")


PRESETS = [
    Preset(
        key="position_bias",
        label="Position bias",
        blurb="A homepage grid logged under a noisy popularity ranking: raw CTR rewards the top-left tiles; "
              "inverse-propensity weighting, with propensities true or learned from randomised swaps, "
              "recovers the items' quality.",
        Knobs=PositionBiasKnobs,
        run=run_position_bias,
    ),
]
