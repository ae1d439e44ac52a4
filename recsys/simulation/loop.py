"""The feedback loop: a recommender that learns from the clicks on what it chose to show.

Every round the system scores the catalogue for each person with a model trained on the
click log so far, a *policy* picks K items per person (never one they already clicked), the
person clicks under the click model of :mod:`recsys.simulation.clicks`, and the clicks join
the log the next model is trained on. Items that are never shown never get clicked, so a
greedy policy keeps feeding its own favourites: exposure concentrates, coverage shrinks and
everyone's lists start to look alike. Exploration policies spend some slots to learn.

All policies in one run start from the same seed log and get the same random draw for the
same (person, item) click, so their curves differ only through what they chose to show.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.stats import gini
from recsys.evaluation.metrics import ndcg
from recsys.models.base import param
from recsys.serving.ranking import top_k
from recsys.simulation.clicks import EXAMINATION_KINDS, clicks_from_uniforms, slot_examination
from recsys.simulation.presets import Preset
from recsys.simulation.result import RoundProgress, SimulationResult
from recsys.simulation.world import DEFAULT_ITEMS, DEFAULT_USERS, World

POLICY_LABELS = {
    "greedy": "Greedy",
    "epsilon_greedy": "ε-greedy",
    "thompson": "Thompson",
    "ucb": "UCB",
    "mmr": "MMR diversity",
    "long_tail_floor": "Long-tail floor",
}
POLICIES = tuple(POLICY_LABELS)

# Models a preset offers: the whole 20-round, three-policy default run stays near the 10 s budget
# on a busy two-core machine (measured at load 12: cooccurrence 3.8 s, item_knn 4.8 s, pop 3.7 s,
# user_knn 6.2 s; pure_svd 37 s, ease 36 s and ials 135 s did not fit). Any registered
# implicit-feedback model still runs through run_loop, only slower.
LOOP_MODELS = ("cooccurrence", "item_knn", "pop", "user_knn")

METRICS = {
    "exposure_gini": "Gini of impressions over the catalogue this round (0 = even, 1 = all on one item)",
    "coverage": "share of the catalogue shown to anyone this round",
    "cumulative_coverage": "share of the catalogue the policy has shown at least once so far",
    "tail_share": "share of this round's impressions on the less popular half of the catalogue",
    "top1pct_click_share": "share of this round's clicks that went to its 1 % most-clicked items",
    "ctr": "clicks per impression this round",
    "true_utility": "mean true click probability of what was shown (the world's relevance)",
    "offline_ndcg": "NDCG@K of the round's model on the held-out slice of the logged clicks",
    "homogenisation": "mean Jaccard overlap between two people's shown lists",
}

# Exploration's spread for an item shown n times is 1 / sqrt(1 + n / 200): at a 3 % click rate 200
# impressions hold about six clicks, too few to know an item. With 20 instead, Thompson barely
# explored past the seed log (its Gini ended at 0.87 against greedy's 0.90 on seed 0).
UNCERTAINTY_IMPRESSIONS = 200.0
HOMOGENISATION_USERS = 250  # pairwise overlap is quadratic in people; a spread sample suffices


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """How the loop runs (everything but the world and the policies)."""

    rounds: int = 20
    k: int = 10
    model: str = "cooccurrence"
    epsilon: float = 0.2
    exploration: float = 1.0
    mmr_lambda: float = 0.6
    tail_slots: int = 3
    seed_exposures: int = 60
    holdout: float = 0.2
    examination: str = "none"

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.k < 1:
            raise DataError(f"rounds and k must be at least 1; got rounds={self.rounds}, k={self.k}.")
        if not 0.0 <= self.epsilon <= 1.0:
            raise DataError(f"epsilon must be between 0 and 1; got {self.epsilon}.")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise DataError(f"mmr_lambda must be between 0 and 1; got {self.mmr_lambda}.")
        if not 0 <= self.tail_slots <= self.k:
            raise DataError(f"tail_slots must be between 0 and k ({self.k}); got {self.tail_slots}.")
        if not 0.0 <= self.holdout < 1.0:
            raise DataError(f"holdout must be in [0, 1); got {self.holdout}.")
        if self.exploration < 0 or self.seed_exposures < 1:
            raise DataError("exploration must be zero or more and seed_exposures at least 1.")
        if self.examination not in EXAMINATION_KINDS:
            raise DataError(f"Unknown examination {self.examination!r}; choose one of {list(EXAMINATION_KINDS)}.")


@dataclasses.dataclass
class ClickLog:
    """One policy's history: who clicked what, which clicks are kept back for offline
    evaluation, and how often each item has been shown."""

    clicks: np.ndarray  # (n_users, n_items) bool
    held_out: np.ndarray  # (n_users, n_items) bool, the pairs whose click goes to evaluation
    impressions: np.ndarray  # (n_items,) int64, times each item was shown
    ever_shown: np.ndarray  # (n_items,) bool, shown by the policy (not the seed log)

    @property
    def train(self) -> np.ndarray:
        return self.clicks & ~self.held_out

    @property
    def validation(self) -> np.ndarray:
        return self.clicks & self.held_out

    def copy(self) -> ClickLog:
        return ClickLog(*(np.array(getattr(self, f.name)) for f in dataclasses.fields(self)))

    def record(self, shown: np.ndarray, clicked: np.ndarray) -> None:
        valid = shown >= 0
        np.add.at(self.impressions, shown[valid], 1)
        self.ever_shown[shown[valid]] = True
        rows = np.broadcast_to(np.arange(shown.shape[0])[:, None], shown.shape)
        self.clicks[rows[clicked & valid], shown[clicked & valid]] = True


@dataclasses.dataclass(frozen=True)
class RoundState:
    """What a policy sees when it picks: the model's per-person standardised scores, the
    items it must not repeat, and the log's item counts."""

    scores: np.ndarray  # (n_users, n_items) float64, z-scored per person
    excluded: np.ndarray  # (n_users, n_items) bool: already clicked
    impressions: np.ndarray  # (n_items,)
    item_clicks: np.ndarray  # (n_items,)
    # item x item content similarity the catalogue knows (genres, descriptions), if any
    item_similarity: np.ndarray | None = None


Policy = Callable[[RoundState, int, LoopSettings, np.random.Generator], np.ndarray]
# the system's model: the loop's training clicks (n_users, n_items) -> raw scores of the same shape
Scorer = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------- the log and the model
def seed_log(world: World, exposures: int, holdout: float, rng: np.random.Generator) -> ClickLog:
    """Each person is shown ``exposures`` random items once, before any model exists."""
    n_users, n_items = world.n_users, world.n_items
    shown = np.argsort(rng.random((n_users, n_items)), axis=1)[:, : min(exposures, n_items)]
    clicked = clicks_from_uniforms(rng.random(shown.shape), world.relevance(None, shown), np.ones(shown.shape[1]))
    log = ClickLog(
        clicks=np.zeros((n_users, n_items), dtype=bool),
        held_out=rng.random((n_users, n_items)) < holdout,
        impressions=np.zeros(n_items, dtype=np.int64),
        ever_shown=np.zeros(n_items, dtype=bool),
    )
    log.record(shown, clicked)
    log.ever_shown[:] = False  # random seed exposure is not the policy's doing
    return log


def fit_scores(model_key: str, train: np.ndarray, params: dict | None = None) -> np.ndarray:
    """Retrain ``model_key`` (with ``params``, else its defaults) on the click matrix and score everyone
    (zeros while the log is empty)."""
    from recsys.models import create

    users, items = np.nonzero(train)
    n_users, n_items = train.shape
    if users.size == 0:
        return np.zeros(train.shape)
    if model_key == "cooccurrence":
        return cooccurrence_scores(train)
    log = Dataset(user=users, item=items, rating=np.ones(users.size), user_ids=np.arange(n_users),
                  item_ids=np.arange(n_items), feedback="implicit", name="simulated click log")
    model = create(model_key, **(params or {})).fit(log)
    return np.asarray(model.score(np.arange(n_users)), dtype=np.float64)


def model_label(model_key: str) -> str:
    """What a person reads for a loop model: the registry's label, or the built-in co-click model's."""
    from recsys.models import registry

    if model_key == "cooccurrence":
        return "Co-click counts"
    if model_key not in registry:
        raise DataError(f"Unknown model {model_key!r}; choose one of {sorted(registry)} or 'cooccurrence'.")
    return registry[model_key].label


def cooccurrence_scores(train: np.ndarray) -> np.ndarray:
    """"People who clicked your items also clicked": unnormalised co-click counts summed over a
    person's clicks. No damping of popular items, which is exactly how 'also clicked' lists
    feed a loop; it retrains in about a millisecond on a 600 x 400 log."""
    clicks = sp.csr_matrix(train, dtype=np.float64)
    together = (clicks.T @ clicks).toarray()
    np.fill_diagonal(together, 0.0)
    return np.asarray(clicks @ together)


def standardise_scores(raw: np.ndarray, item_clicks: np.ndarray) -> np.ndarray:
    """Per-person z-scores; a person the model cannot tell apart items for (no clicks yet)
    gets the log's popularity instead, as a real system falls back to 'popular now'."""
    finite = np.isfinite(raw)
    low = np.where(finite, raw, np.inf).min(axis=1, keepdims=True)
    filled = np.where(finite, raw, np.where(np.isfinite(low), low, 0.0))
    std = filled.std(axis=1, keepdims=True)
    z = (filled - filled.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
    popularity = np.log1p(item_clicks.astype(np.float64))
    popularity = (popularity - popularity.mean()) / (popularity.std() or 1.0)
    return np.where(std > 0, z, popularity[None, :])


def break_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Add a sliver of noise so exact ties (items nobody clicked) do not always go to low codes.

    1e-3 of a standard deviation: ranking casts to float32, whose steps near a z-score of 4 are
    5e-7, so a 1e-6 nudge was lost and ties fell back to item order.
    """
    return scores + 1e-3 * rng.random(scores.shape)


def content_similarity(world: World) -> np.ndarray | None:
    """Cosine similarity of the items' latent descriptions, when the world has them (a synthetic
    world's items are built from their genres, which a catalogue knows before any click)."""
    if world.item_factors is None:
        return None
    norms = np.linalg.norm(world.item_factors, axis=1, keepdims=True)
    unit = world.item_factors / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def offline_ndcg(scores: np.ndarray, train: np.ndarray, validation: np.ndarray, k: int) -> float:
    """NDCG@k of the scores against the held-out logged clicks (training clicks excluded)."""
    users = np.flatnonzero(validation.any(axis=1))
    if users.size == 0:
        return float("nan")
    ranked, _ = top_k(np.where(train[users], -np.inf, scores[users]), k)
    hits = np.take_along_axis(validation[users], np.maximum(ranked, 0), axis=1) & (ranked >= 0)
    return float(ndcg(hits, validation[users].sum(axis=1), k).mean())


# ---------------------------------------------------------------------------- policies
def top_unseen(scores: np.ndarray, excluded: np.ndarray, k: int) -> np.ndarray:
    """Each person's ``k`` best-scored items among those not ``excluded`` (item -1 once none are left)."""
    return top_k(np.where(excluded, -np.inf, scores), k)[0]


def _uncertainty(impressions: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + impressions / UNCERTAINTY_IMPRESSIONS)


def greedy(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """The model's top K: what an offline-tuned system ships."""
    return top_unseen(state.scores, state.excluded, k)


def epsilon_greedy(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """Each slot shows, with probability epsilon, a random item instead of the model's pick."""
    best = top_unseen(state.scores, state.excluded, k)
    taken = np.array(state.excluded)
    np.put_along_axis(taken, np.maximum(best, 0), True, axis=1)
    random_pick = top_unseen(rng.random(state.scores.shape), taken, k)
    explore = (rng.random(best.shape) < settings.epsilon) & (random_pick >= 0)
    return np.where(explore, random_pick, best)


def thompson(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """Rank one draw from each item's posterior: the model's score plus Gaussian noise whose
    spread shrinks as the item gathers impressions (little-shown items get their chance)."""
    spread = settings.exploration * _uncertainty(state.impressions)
    return top_unseen(state.scores + spread[None, :] * rng.standard_normal(state.scores.shape), state.excluded, k)


def ucb(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """Optimism under uncertainty: the score plus a bonus that shrinks with impressions."""
    bonus = settings.exploration * _uncertainty(state.impressions)
    return top_unseen(state.scores + bonus[None, :], state.excluded, k)


def mmr(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """Maximal marginal relevance: each next slot trades relevance against similarity to the
    items already in the list. Similarity is the catalogue's content similarity when the world
    has one, else what the model believes: the correlation of two items' scores across people."""
    scores, excluded = state.scores, np.array(state.excluded)
    similarity = state.item_similarity if state.item_similarity is not None else _score_correlation(scores)
    usable = np.where(excluded, np.nan, scores)
    low, high = np.nanmin(usable, axis=1, keepdims=True), np.nanmax(usable, axis=1, keepdims=True)
    relevance = (scores - low) / np.where(high > low, high - low, 1.0)
    closest = np.zeros_like(scores)  # max similarity to anything already picked
    rows = np.arange(scores.shape[0])
    shown = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for slot in range(min(k, scores.shape[1])):  # K steps, each vectorised over people
        value = settings.mmr_lambda * relevance - (1 - settings.mmr_lambda) * closest
        value[excluded] = -np.inf
        pick = np.argmax(value, axis=1)
        open_rows = np.isfinite(value[rows, pick])
        shown[open_rows, slot] = pick[open_rows]
        excluded[rows, pick] = True
        closest = np.maximum(closest, similarity[pick])
    return shown


def long_tail_floor(state: RoundState, k: int, settings: LoopSettings, rng: np.random.Generator) -> np.ndarray:
    """The model's top K - f, then its best f among the less-clicked half of the catalogue."""
    floor = min(settings.tail_slots, k)
    head = top_unseen(state.scores, state.excluded, k - floor)
    # less-clicked half by logged clicks, ties broken by fewer impressions: what the system knows
    order = np.lexsort((state.impressions, state.item_clicks))
    tail = np.zeros(state.scores.shape[1], dtype=bool)
    tail[order[: state.scores.shape[1] // 2]] = True
    taken = state.excluded | ~tail[None, :]
    np.put_along_axis(taken, np.maximum(head, 0), True, axis=1)
    return np.concatenate([head, top_unseen(state.scores, taken, floor)], axis=1)


POLICY_FUNCTIONS: dict[str, Policy] = {
    "greedy": greedy, "epsilon_greedy": epsilon_greedy, "thompson": thompson, "ucb": ucb,
    "mmr": mmr, "long_tail_floor": long_tail_floor,
}


def _score_correlation(scores: np.ndarray) -> np.ndarray:
    centred = scores - scores.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0)
    norms[norms == 0] = 1.0
    unit = centred / norms
    return unit.T @ unit


# ---------------------------------------------------------------------------- metrics
def homogenisation(shown: np.ndarray, n_items: int) -> float:
    """Mean Jaccard overlap of two people's shown lists (1 = everyone sees the same list)."""
    rows = np.unique(np.linspace(0, shown.shape[0] - 1, min(shown.shape[0], HOMOGENISATION_USERS)).astype(int))
    if rows.size < 2:
        return float("nan")
    sample = shown[rows]
    valid = sample >= 0
    # sparse: K marks per row, and dense BLAS stalls when the machine is busy (25 ms against 7)
    marks = sp.csr_matrix((np.ones(int(valid.sum())), (np.nonzero(valid)[0], sample[valid])),
                          shape=(rows.size, n_items))
    overlap = (marks @ marks.T).toarray()
    sizes = valid.sum(axis=1).astype(np.float64)
    union = sizes[:, None] + sizes[None, :] - overlap
    jaccard = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
    pairs = rows.size * (rows.size - 1)
    return float((jaccard.sum() - np.trace(jaccard)) / pairs)


def top_share(counts: np.ndarray, fraction: float = 0.01) -> float:
    """Share of the total held by the top ``fraction`` of entries (at least one)."""
    total = counts.sum()
    if total == 0:
        return 0.0
    n_top = max(1, int(np.ceil(fraction * counts.size)))
    return float(np.sort(counts)[::-1][:n_top].sum() / total)


def round_metrics(world: World, shown: np.ndarray, clicked: np.ndarray, log: ClickLog, ndcg_value: float) -> dict:
    """Every METRICS figure for one policy's round (``log`` already holds this round)."""
    n_items = world.n_items
    valid = shown >= 0
    impressions = np.bincount(shown[valid], minlength=n_items)
    item_clicks = np.bincount(shown[valid & clicked], minlength=n_items)
    tail = world.popularity < np.median(world.popularity)
    return {
        "exposure_gini": gini(impressions),
        "coverage": float((impressions > 0).mean()),
        "cumulative_coverage": float(log.ever_shown.mean()),
        "tail_share": float(impressions[tail].sum() / max(1, impressions.sum())),
        "top1pct_click_share": top_share(item_clicks),
        "ctr": float(clicked[valid].mean()) if valid.any() else 0.0,
        "true_utility": float(world.relevance(None, shown)[valid].mean()) if valid.any() else 0.0,
        "offline_ndcg": ndcg_value,
        "homogenisation": homogenisation(shown, n_items),
    }


# ---------------------------------------------------------------------------- the loop
def one_blas_thread():
    """BLAS limited to one thread while a simulation runs: its matrices are small, and threads
    fighting over two busy cores cost more than they bring (pure_svd's loop took 37 s with the
    default threads and 3.4 s with one; the default loop 3.3 s and 2.8 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def run_loop(world: World, policies: tuple[str, ...] | list[str], settings: LoopSettings | None = None, *,
             seed: int = 0, progress: RoundProgress | None = None,
             custom: dict[str, Policy] | None = None, scorer: Scorer | None = None) -> pd.DataFrame:
    """Run every policy's feedback loop side by side; one row per (round, policy), the policy
    named by its label (``POLICY_LABELS``; a custom policy by its name).

    ``custom`` adds policies by name (a function with the built-in policies' signature),
    e.g. a simulation that ranks by something other than the model. ``scorer`` replaces the
    system's model (``settings.model`` retrained on the log), e.g. :meth:`TrainedPolicy.scorer`.
    Progress is reported after each round with ``{policy label: {metric: value}}`` of that round.
    """
    with one_blas_thread():
        return _run_loop(world, policies, settings, seed=seed, progress=progress, custom=custom, scorer=scorer)


def _run_loop(world: World, policies, settings: LoopSettings | None, *, seed: int,
              progress: RoundProgress | None, custom: dict[str, Policy] | None,
              scorer: Scorer | None = None) -> pd.DataFrame:
    settings = settings or LoopSettings()
    scorer = scorer or (lambda train: fit_scores(settings.model, train))
    choosers = POLICY_FUNCTIONS | (custom or {})
    unknown = [p for p in policies if p not in choosers]
    if unknown or not policies:
        raise DataError(f"Unknown or no policies {unknown}; choose from {list(choosers)}.")
    if settings.k > world.n_items // 2:
        raise DataError(f"k={settings.k} is too large for {world.n_items} items; keep it at most half the catalogue.")
    start_rng, *policy_rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(1 + len(policies)))
    start = seed_log(world, settings.seed_exposures, settings.holdout, start_rng)
    logs = {name: start.copy() for name in policies}
    examine = slot_examination(settings.examination, settings.k)
    item_similarity = content_similarity(world)
    rows = []
    for round_number in range(1, settings.rounds + 1):
        # one click draw per (person, item) per round, shared by every policy
        uniforms = start_rng.random((world.n_users, world.n_items))
        latest = {}
        for name, rng in zip(policies, policy_rngs):
            label = POLICY_LABELS.get(name, name)
            latest[label] = _step(world, logs[name], choosers[name], settings, examine, uniforms, rng,
                                  item_similarity, scorer)
            rows.append({"round": round_number, "series": label, **latest[label]})
        if progress is not None:
            progress(round_number, settings.rounds, latest)
    return pd.DataFrame(rows)


def _step(world: World, log: ClickLog, choose: Policy, settings: LoopSettings, examine: np.ndarray,
          uniforms: np.ndarray, rng: np.random.Generator, item_similarity: np.ndarray | None,
          scorer: Scorer) -> dict:
    train = log.train
    item_clicks = log.clicks.sum(axis=0)
    scores = standardise_scores(scorer(train), item_clicks)
    state = RoundState(scores=break_ties(scores, rng), excluded=log.clicks, impressions=log.impressions,
                       item_clicks=item_clicks, item_similarity=item_similarity)
    ndcg_value = offline_ndcg(scores, train, log.validation, settings.k)
    shown = choose(state, settings.k, settings, rng)
    safe = np.maximum(shown, 0)
    clicked = clicks_from_uniforms(np.take_along_axis(uniforms, safe, axis=1),
                                   world.relevance(None, shown), examine[: shown.shape[1]]) & (shown >= 0)
    log.record(shown, clicked)
    return round_metrics(world, shown, clicked, log, ndcg_value)


# ---------------------------------------------------------------------------- a trained run as the system
# registry models that refit on the loop's log every round within the preset's budget (measured for
# LOOP_MODELS); any other model serves as a fixed prior unless refitting is asked for by name
REFIT_FAST = tuple(key for key in LOOP_MODELS if key != "cooccurrence")
TRAINED_MODES = ("auto", "refit", "prior")


@dataclasses.dataclass(frozen=True)
class TrainedPolicy:
    """A trained run of the current dataset as the system's model in the feedback loop.

    Two honest ways to let a run drive a loop, as ``mode``:

    * ``"refit"``: the run's model (its registry key and hyperparameters) is retrained on the
      loop's click log every round, exactly as the default loop retrains its co-click model. This
      is the run's *algorithm* under feedback; what it learned from the dataset is not used (the
      log starts from the random seed exposures). It works in any world, the synthetic one too.
    * ``"prior"``: the run's fitted scores for the world's people are a fixed prior (what a batch
      model trained offline on last month's data believes), and ``settings.model`` (co-click by
      default) is retrained on the log each round; both are z-scored per person and added, the
      log's part weighted by ``log_weight``. This keeps what the run learned from the dataset, so
      it needs a world of that dataset's people and items (``World.from_model`` of a run, with
      ``users`` its dataset codes), and costs one scoring pass for the whole run: slow models
      (PureSVD, EASE, iALS, the neural ones) stay within seconds this way.
    * ``"auto"`` refits the models that refit fast (``REFIT_FAST``: measured within the loop's
      budget) and uses the prior for the rest, or refits in a world that has no ``users``.
    """

    model: object  # a fitted Recommender
    users: np.ndarray | None = None  # dataset codes of the world's rows; None: the world is not the dataset's
    mode: str = "auto"
    log_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in TRAINED_MODES:
            raise DataError(f"Unknown mode {self.mode!r} for a trained run in the loop; choose one of "
                            f"{list(TRAINED_MODES)}.")
        if not getattr(self.model, "is_fitted", False):
            raise DataError("The loop's trained run has no fitted model; train it again.")
        if self.log_weight < 0:
            raise DataError(f"log_weight must be zero or more; got {self.log_weight}.")

    @property
    def key(self) -> str:
        return str(getattr(self.model, "key", type(self.model).__name__))

    @property
    def resolved_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        return "refit" if self.key in REFIT_FAST or self.users is None else "prior"

    def scorer(self, world: World, settings: LoopSettings) -> Scorer:
        """The loop's model: training clicks -> raw scores for every (world person, item)."""
        if self.resolved_mode == "refit":
            params = self.model.get_params() if hasattr(self.model, "get_params") else {}
            return lambda train: fit_scores(self.key, train, params)
        prior = self.prior_scores(world)
        weight = self.log_weight

        def blended(train: np.ndarray) -> np.ndarray:
            return prior + weight * _row_z(fit_scores(settings.model, train))

        return blended

    def prior_scores(self, world: World) -> np.ndarray:
        """The run's scores for the world's people, z-scored per person (unscorable items count as worst)."""
        if self.users is None:
            raise DataError("A trained run can serve as a prior only in a world of its dataset's people: take the "
                            "world from a trained run, or let the run refit on the log instead.")
        users = np.asarray(self.users, dtype=np.int64)
        if users.shape != (world.n_users,):
            raise DataError(f"users must give one dataset code per person of the world ({world.n_users}); "
                            f"got {users.size}.")
        scores = np.asarray(self.model.score(users), dtype=np.float64)
        if scores.shape[1] != world.n_items:
            raise DataError(f"The run scores {scores.shape[1]} items but the world has {world.n_items}; "
                            "use a world built from a run of the same dataset.")
        finite = np.isfinite(scores)
        low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
        return _row_z(np.where(finite, scores, np.where(np.isfinite(low), low, 0.0)))

    def describe(self) -> str:
        label = getattr(self.model, "label", self.key)
        if self.resolved_mode == "refit":
            return f"{label} (refitted on the log each round)"
        return f"{label} (its dataset scores as a prior, plus the log)"


def _row_z(raw: np.ndarray) -> np.ndarray:
    """Per-row z-scores; a row with no spread (nobody's clicks yet) is all zeros, so it adds nothing."""
    std = raw.std(axis=1, keepdims=True)
    return np.where(std > 0, (raw - raw.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0), 0.0)


def run_loop_with_trained(world: World, trained: TrainedPolicy, policies: tuple[str, ...] | list[str],
                          settings: LoopSettings | None = None, *, seed: int = 0,
                          progress: RoundProgress | None = None) -> pd.DataFrame:
    """:func:`run_loop` with a trained run as the system's model (see :class:`TrainedPolicy` for how)."""
    settings = settings or LoopSettings()
    return run_loop(world, policies, settings, seed=seed, progress=progress, scorer=trained.scorer(world, settings))


# ---------------------------------------------------------------------------- presets
def _model_knob():
    return param("cooccurrence", help="model retrained on the click log every round", choices=LOOP_MODELS)


# Every round refits and ranks a dense (people x items) matrix per policy: the highs (40 rounds, 800
# people, 500 items, k = 30, user kNN) keep the slowest allowed run near 10 CPU s on a busy two-core
# machine (3,000 x 2,000 took 5 s a round).
@dataclasses.dataclass
class _LoopKnobs:
    """The world and the loop, shared by both loop presets; each adds its policies' own knobs."""

    rounds: int = param(20, help="rounds of show, click, retrain", low=2, high=40)
    k: int = param(10, help="items shown to each person per round", low=1, high=30)
    n_users: int = param(DEFAULT_USERS, help="people in the simulated world", low=50, high=800)
    n_items: int = param(DEFAULT_ITEMS, help="items in the catalogue", low=40, high=500)
    model: str = _model_knob()
    examination: str = param("none", help="which slots people look at", choices=EXAMINATION_KINDS)


@dataclasses.dataclass
class TrapKnobs(_LoopKnobs):
    epsilon: float = param(0.2, help="ε-greedy: chance each slot shows a random item", low=0.0, high=1.0)
    exploration: float = param(1.0, help="Thompson: spread of the score draws for never-shown items",
                               low=0.0, high=5.0)


@dataclasses.dataclass
class TailKnobs(_LoopKnobs):
    tail_slots: int = param(3, help="long-tail floor: slots kept for the less-clicked half", low=0, high=30)
    mmr_lambda: float = param(0.6, help="MMR: weight of relevance against similarity (1 = greedy)",
                              low=0.0, high=1.0)


def _settings(knobs) -> LoopSettings:
    names = {f.name for f in dataclasses.fields(LoopSettings)}
    return LoopSettings(**{k: v for k, v in dataclasses.asdict(knobs).items() if k in names})


def _world(knobs, seed: int) -> World:
    return World.synthetic(knobs.n_users, knobs.n_items, seed=seed)


def _at(rounds: pd.DataFrame, series: str, metric: str, which: str, digits: int = 2) -> float:
    """A series' first or last value of a metric, rounded as the takeaway quotes it."""
    values = rounds.loc[rounds["series"] == POLICY_LABELS.get(series, series), metric].to_numpy()
    return round(float(values[0] if which == "first" else values[-1]), digits)


def _moved(first: float, last: float) -> str:
    return "rose" if last > first else "fell" if last < first else "stayed"


def _play(knobs, policies: tuple[str, ...], seed: int, progress: RoundProgress | None, world: World | None,
          trained: TrainedPolicy | None) -> tuple[pd.DataFrame, str]:
    """The preset's loop in its synthetic world or ``world``, with the knobs' model or a ``trained`` run;
    returns the rounds and the takeaway's opening words naming a trained run."""
    world = world if world is not None else _world(knobs, seed)
    settings = _settings(knobs)
    if trained is None:
        return run_loop(world, policies, settings, seed=seed, progress=progress), ""
    rounds = run_loop_with_trained(world, trained, policies, settings, seed=seed, progress=progress)
    return rounds, f"With {trained.describe()} as the system's model: "


def run_popularity_trap(knobs: TrapKnobs, seed: int = 0, progress: RoundProgress | None = None, *,
                        world: World | None = None, trained: TrainedPolicy | None = None) -> SimulationResult:
    """Greedy vs ε-greedy vs Thompson on one world: does exploration slow the narrowing?

    ``world`` replaces the synthetic one (e.g. ``World.from_model`` of a stored run); ``trained``
    makes a trained run the system's model (:class:`TrainedPolicy`)."""
    policies = ("greedy", "epsilon_greedy", "thompson")
    rounds, opening = _play(knobs, policies, seed, progress, world, trained)
    summary = {
        "greedy_gini_first": _at(rounds, "greedy", "exposure_gini", "first"),
        "greedy_gini_last": _at(rounds, "greedy", "exposure_gini", "last"),
        "greedy_coverage_first": _at(rounds, "greedy", "coverage", "first"),
        "greedy_coverage_last": _at(rounds, "greedy", "coverage", "last"),
        "epsilon_greedy_gini_last": _at(rounds, "epsilon_greedy", "exposure_gini", "last"),
        "thompson_gini_last": _at(rounds, "thompson", "exposure_gini", "last"),
    }
    s = summary
    takeaway = opening + (
        f"Greedy's exposure Gini {_moved(s['greedy_gini_first'], s['greedy_gini_last'])} from "
        f"{s['greedy_gini_first']:.2f} to {s['greedy_gini_last']:.2f} in {knobs.rounds} rounds and the share "
        f"of the catalogue it showed went from {s['greedy_coverage_first']:.2f} to "
        f"{s['greedy_coverage_last']:.2f}; ε-greedy ended at a Gini of {s['epsilon_greedy_gini_last']:.2f} "
        f"and Thompson at {s['thompson_gini_last']:.2f}."
    )
    return SimulationResult(preset="popularity_trap", knobs=dataclasses.asdict(knobs), seed=seed,
                            rounds=rounds, takeaway=takeaway, summary=summary)


def run_exploration_tail(knobs: TailKnobs, seed: int = 0, progress: RoundProgress | None = None, *,
                         world: World | None = None, trained: TrainedPolicy | None = None) -> SimulationResult:
    """Greedy vs a long-tail floor vs MMR: who keeps the catalogue alive, and at what cost?

    ``world`` and ``trained`` as in :func:`run_popularity_trap`."""
    if knobs.tail_slots > knobs.k:
        raise DataError(f"tail_slots ({knobs.tail_slots}) cannot exceed k ({knobs.k}).")
    policies = ("greedy", "long_tail_floor", "mmr")
    rounds, opening = _play(knobs, policies, seed, progress, world, trained)
    summary = {}
    for name in policies:
        for metric, digits in (("coverage", 2), ("tail_share", 2), ("true_utility", 3)):
            summary[f"{name}_{metric}_last"] = _at(rounds, name, metric, "last", digits)
    s = summary
    takeaway = opening + (
        f"After {knobs.rounds} rounds greedy showed {s['greedy_coverage_last']:.2f} of the catalogue with "
        f"{s['greedy_tail_share_last']:.2f} of impressions in the tail; the long-tail floor showed "
        f"{s['long_tail_floor_coverage_last']:.2f} (tail {s['long_tail_floor_tail_share_last']:.2f}) and MMR "
        f"{s['mmr_coverage_last']:.2f} (tail {s['mmr_tail_share_last']:.2f}), with a mean true click "
        f"probability of {s['greedy_true_utility_last']:.3f}, {s['long_tail_floor_true_utility_last']:.3f} "
        f"and {s['mmr_true_utility_last']:.3f}."
    )
    return SimulationResult(preset="exploration_tail", knobs=dataclasses.asdict(knobs), seed=seed,
                            rounds=rounds, takeaway=takeaway, summary=summary)


PRESETS = [
    Preset(
        key="popularity_trap", label="Popularity trap",
        blurb="A model retrained on its own clicks narrows what everyone sees; exploration slows it.",
        Knobs=TrapKnobs, run=run_popularity_trap,
    ),
    Preset(
        key="exploration_tail", label="Exploration rescues the tail",
        blurb="Reserving slots for the tail or diversifying with MMR keeps the catalogue in play.",
        Knobs=TailKnobs, run=run_exploration_tail,
    ),
]
