"""Hybrid family: a weighted blend of any registered models, and a switch between content
and collaborative filtering by how much a person has consumed.

Both keep their fitted state simple (so the experiment store can save them without
pickle): the component models in ``components_``, blend weights in ``weights_`` (numpy),
thresholds as plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.split import random_holdout
from recsys.evaluation.validation import validation_ndcg
from recsys.models.base import EVAL_BATCH_USERS, FLOAT32, Recommender, full_params, param
from recsys.models.capabilities import has
from recsys.models.registry import create, register, registry

# Weight grid of the coordinate search: each weight is tried at 0, 0.1, …, 1.
WEIGHT_GRID = np.linspace(0.0, 1.0, 11)
MAX_SEARCH_ROUNDS = 10
# Users scored during the weight search; more adds time, not a better choice of weights.
MAX_SEARCH_USERS = 2000


# ---------------------------------------------------------------------------- score blending


def normalise_scores(scores: np.ndarray, exclude: sp.spmatrix | None = None, method: str = "zscore") -> np.ndarray:
    """Per-row rescaling of raw scores so that models on different scales can be added.

    Statistics come from the finite scores of items that may be recommended (``exclude``,
    the seen items, is left out: a model's scores of what a person already has are often
    far larger and would squash the rest). Non-finite scores (items a model cannot score)
    become the row's lowest value, so another component can still rank those items.

    ``zscore``: (s − mean) / std; ``minmax``: (s − min) / (max − min). A constant row
    (no information) becomes all zeros.
    """
    scores = np.array(scores, dtype=np.float64, ndmin=2)
    finite = np.isfinite(scores)
    usable = finite.copy()
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        usable[rows, exclude.indices] = False
    # a row whose every item is excluded falls back to its finite scores
    empty = ~usable.any(axis=1)
    usable[empty] = finite[empty]
    count = np.maximum(usable.sum(axis=1, keepdims=True), 1)
    values = np.where(usable, scores, 0.0)
    if method == "zscore":
        centre = values.sum(axis=1, keepdims=True) / count
        spread = np.sqrt((np.where(usable, scores - centre, 0.0) ** 2).sum(axis=1, keepdims=True) / count)
    elif method == "minmax":
        centre = np.where(usable, scores, np.inf).min(axis=1, keepdims=True)
        spread = np.where(usable, scores, -np.inf).max(axis=1, keepdims=True) - centre
        centre[~np.isfinite(centre)] = 0.0
    else:
        raise ValueError(f"normalisation must be 'zscore' or 'minmax', not {method!r}")
    spread[~(spread > 1e-12)] = np.inf  # constant rows carry no ranking: they become 0
    out = (np.where(finite, scores, centre) - centre) / spread
    lowest = np.where(finite, out, np.inf).min(axis=1, keepdims=True)
    lowest[~np.isfinite(lowest)] = 0.0
    return np.where(finite, out, lowest)


def blend(normalised: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Σ weight_j · normalised_j, skipping zero weights (so weights (1, 0) reproduce model 1 exactly)."""
    total = np.zeros_like(normalised[0], dtype=np.float64)
    for scores, weight in zip(normalised, weights):
        if weight > 0:
            total += weight * scores
    return total.astype(np.float32)


def parse_components(text: str) -> list[str]:
    """Registry keys from "ease, item_knn, pop", with a clear error for unknown or nested hybrids."""
    keys = [k.strip() for k in str(text).split(",") if k.strip()]
    if not keys:
        raise DataError("A weighted hybrid needs at least one component model, e.g. 'ease,item_knn,pop'.")
    unknown = [k for k in keys if k not in registry]
    if unknown:
        raise DataError(f"Unknown component model(s) {unknown}; choose from: {', '.join(sorted(registry))}.")
    nested = [k for k in keys if registry[k].family == "hybrid"]
    if nested:
        raise DataError(f"A hybrid cannot contain another hybrid ({nested}); list its parts instead.")
    if len(set(keys)) != len(keys):
        raise DataError(f"Component models are listed twice in {keys}; name each model once.")
    return keys


def parse_weights(text: str, n: int) -> np.ndarray | None:
    """None for "auto", else n non-negative weights scaled to sum 1."""
    text = str(text).strip().lower()
    if text == "auto":
        return None
    try:
        weights = np.array([float(w) for w in text.split(",")], dtype=np.float64)
    except ValueError:
        raise DataError(f"Weights must be 'auto' or {n} comma-separated numbers, e.g. '0.6,0.3,0.1'; "
                        f"got {text!r}.") from None
    if len(weights) != n:
        raise DataError(f"{len(weights)} weight(s) given for {n} component model(s); give one per model or 'auto'.")
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise DataError(f"Weights must be non-negative numbers with a positive sum; got {text!r}.")
    return weights / weights.sum()


def coordinate_search(evaluate, n: int) -> tuple[np.ndarray, float]:
    """Weights on the simplex that maximise ``evaluate(weights)``, one coordinate at a time.

    Starts from equal weights; each step sets one weight to a grid value and rescales the
    others to fill the rest, keeping a change only if it strictly improves. The first round
    tries every weight at 1, i.e. every single model, so the result is never worse (on the
    data searched) than the best component alone.
    """
    cache: dict[tuple, float] = {}

    def value(weights: np.ndarray) -> float:
        key = tuple(np.round(weights, 6))
        if key not in cache:
            cache[key] = float(evaluate(weights))
        return cache[key]

    best = np.full(n, 1.0 / n)
    best_value = value(best)
    if n == 1:
        return best, best_value
    for _ in range(MAX_SEARCH_ROUNDS):
        improved = False
        for j in range(n):
            for target in WEIGHT_GRID:
                trial = _with_weight(best, j, target)
                trial_value = value(trial)
                if trial_value > best_value + 1e-12:
                    best, best_value, improved = trial, trial_value, True
        if not improved:
            break
    return best, best_value


def _with_weight(weights: np.ndarray, j: int, target: float) -> np.ndarray:
    """``weights`` with weight j set to ``target`` and the others rescaled to sum 1 − target."""
    others = np.delete(weights, j)
    rest = 1.0 - target
    others = others / others.sum() * rest if others.sum() > 0 else np.full(len(others), rest / len(others))
    return np.insert(others, j, target)


def _search_users(valid: Dataset, seed: int) -> Dataset:
    """The validation set cut to at most MAX_SEARCH_USERS users (seeded), for a bounded search."""
    users = np.flatnonzero(valid.user_activity > 0)
    if len(users) <= MAX_SEARCH_USERS:
        return valid
    keep = np.random.default_rng(seed).choice(users, MAX_SEARCH_USERS, replace=False)
    return valid.subset(np.isin(valid.user, keep))


# ---------------------------------------------------------------------------- weighted hybrid


def _components_terms(keys: list[str], n_users: int, n_items: int, n_interactions: int, *, refit: bool,
                      search_users: int = 0) -> dict[str, int]:
    """Memory of a hybrid over ``keys``: every component's fitted model is kept; the components are
    fitted one after another; tuning the weights scores up to ``search_users`` people with every
    component (a first set fitted on a holdout, freed before the final fit when ``refit``); scoring
    holds each component's scores plus the blend. (Weighted EASE + item kNN + popularity on
    ml-latest-small: 1.12 GB measured, as much as EASE alone.)"""
    from recsys.models.registry import get

    terms = [get(key).memory_terms(full_params(get(key), {}), n_users, n_items, n_interactions) for key in keys]
    kept = sum(t.get("kept", 0) for t in terms)
    search = search_users * n_items * FLOAT32 * (len(keys) + 2) + (kept if refit else 0)
    fit = max(max(max(t.get("fit", 0), t.get("score", 0)) for t in terms), search)
    score = sum(t.get("score", 0) for t in terms) + (len(keys) + 1) * EVAL_BATCH_USERS * n_items * FLOAT32 * 2
    return {"fit": fit, "kept": kept, "score": score}


@register
class WeightedHybrid(Recommender):
    """score = Σ_j w_j · normalise(score_j), per user; weights fitted on validation data.

    With ``weights = auto`` the weights maximise NDCG@10 on the validation split passed to
    ``fit`` or, without one, on a per-user holdout carved from the training data (the
    components are then refitted on all of it).
    """

    key = "hybrid_weighted"
    label = "Weighted hybrid"
    family = "hybrid"
    description = "Adds up several models' per-user normalised scores, with weights tuned on validation data."

    @dataclass
    class Params:
        components: str = param("ease,item_knn,pop", help="Comma-separated keys of the models to blend.")
        weights: str = param("auto", help="'auto' (tuned for NDCG@10 on validation data) or one weight per "
                                          "model, e.g. '0.6,0.3,0.1'.")
        normalisation: str = param("zscore", help="How each model's scores are put on one scale per user.",
                                   choices=("zscore", "minmax"))
        # small by default: the components are tuned on what is left and then refitted on
        # everything, and the less the two differ, the better the weights carry over
        holdout: float = param(0.1, help="Without a validation split: share of each user's items held out "
                                         "to tune the weights.", low=0.05, high=0.5)
        seed: int = param(42, help="Seed of the holdout used to tune the weights.", low=0)

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        keys = parse_components(params["components"])
        return _components_terms(keys, n_users, n_items, n_interactions, refit=params["weights"] == "auto",
                                 search_users=min(n_users, MAX_SEARCH_USERS))

    def _fit(self, train, *, valid, progress):
        keys = parse_components(self.params.components)
        weights = parse_weights(self.params.weights, len(keys))
        carve = weights is None and valid is None
        total = len(keys) * (2 if carve else 1) + 1
        stage = [0]

        def fit_all(data: Dataset, check: Dataset | None) -> list[Recommender]:
            models = []
            for key in keys:
                # forward component progress so a long component fit can still be cancelled
                models.append(create(key).fit(data, valid=check,
                                              progress=lambda s, t, m, at=stage[0]: progress(at, total, {})))
                stage[0] += 1
                progress(stage[0], total, {})
            return models

        self.validation_ndcg_ = float("nan")
        self.component_validation_ndcg_ = np.full(len(keys), np.nan)
        if weights is not None:
            self.components_ = fit_all(train, valid)
        elif valid is not None:
            self.components_ = fit_all(train, valid)
            weights = self._search(self.components_, train, valid)
        else:
            inner, held = random_holdout(train, self.params.holdout, self.params.seed)
            weights = self._search(fit_all(inner, None), inner, held)
            self.components_ = fit_all(train, None)
        self.component_keys_ = keys
        self.weights_ = np.asarray(weights, dtype=np.float64)
        progress(total, total, {})

    def _search(self, models: list[Recommender], train: Dataset, valid: Dataset) -> np.ndarray:
        """Coordinate search of the weights for NDCG@10 on ``valid`` (equal weights if it has no users)."""
        valid = _search_users(valid, self.params.seed)
        users = np.flatnonzero(valid.user_activity > 0)
        if len(users) == 0:
            return np.full(len(models), 1.0 / len(models))
        seen = train.seen[users]
        normalised = [normalise_scores(m.score(users), seen, self.params.normalisation).astype(np.float32)
                      for m in models]

        def ndcg_of(weights: np.ndarray) -> float:
            blended = blend(normalised, weights)
            return validation_ndcg(lambda batch: blended[np.searchsorted(users, batch)], train, valid)

        self.component_validation_ndcg_ = np.array([ndcg_of(np.eye(len(models))[j]) for j in range(len(models))])
        weights, self.validation_ndcg_ = coordinate_search(ndcg_of, len(models))
        return weights

    def _score(self, users):
        seen = self.train_.seen[users]
        return self._blend([m.score(users) for m in self._used()], seen)

    def _used(self) -> list[Recommender]:
        return [m for m, w in zip(self.components_, self.weights_) if w > 0]

    def _blend(self, raw: list[np.ndarray], seen) -> np.ndarray:
        weights = self.weights_[self.weights_ > 0]
        return blend([normalise_scores(s, seen, self.params.normalisation) for s in raw], weights)

    @property
    def score_history(self):
        """Blend of the components' ``score_history``; absent when a weighted component cannot fold in."""
        used = self._used() if hasattr(self, "weights_") else [None]
        if not all(has(m, "fold_in") for m in used):
            raise AttributeError(f"{self.label}: not every component can score a new person's history")
        return self._blend_history

    def _blend_history(self, items) -> np.ndarray:
        history = self._history_row(items)
        raw = [np.asarray(m.score_history(items), dtype=np.float64)[None, :] for m in self._used()]
        return self._blend(raw, history).ravel()


# ---------------------------------------------------------------------------- switching hybrid


@register
class SwitchingHybrid(Recommender):
    """Content-based for people with fewer than ``threshold`` interactions, collaborative above.

    Collaborative models know little about someone with two ratings, while item metadata
    describes every item from the first click: the classic remedy for user cold start.
    """

    key = "hybrid_switching"
    label = "Switching hybrid"
    family = "hybrid"
    description = "Content-based for newcomers, a collaborative model once a person has enough history."
    needs_metadata = True

    @dataclass
    class Params:
        threshold: int = param(5, help="People with fewer training interactions than this get the content "
                                       "model.", low=1, high=1000)
        collaborative: str = param("ease", help="Key of the collaborative model used above the threshold.")
        content: str = param("content_tfidf", help="Key of the content model used below the threshold.")

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        keys = parse_components(f"{params['content']},{params['collaborative']}")
        return _components_terms(keys, n_users, n_items, n_interactions, refit=False)

    def _fit(self, train, *, valid, progress):
        keys = parse_components(f"{self.params.content},{self.params.collaborative}")
        self.components_ = []
        for stage, key in enumerate(keys):
            self.components_.append(create(key).fit(train, valid=valid,
                                                    progress=lambda s, t, m, at=stage: progress(at, 2, {})))
            progress(stage + 1, 2, {})
        self.threshold_ = int(self.params.threshold)

    def routes_to_content(self, users) -> np.ndarray:
        """True for each user (code) the content model serves."""
        return self.train_.user_activity[np.asarray(users, dtype=np.int64)] < self.threshold_

    def _score(self, users):
        content, collaborative = self.components_
        cold = self.routes_to_content(users)
        scores = np.empty((len(users), self.train_.n_items), dtype=np.float32)
        if cold.any():
            scores[cold] = content.score(users[cold])
        if (~cold).any():
            scores[~cold] = collaborative.score(users[~cold])
        return scores

    @property
    def score_history(self):
        """The content or collaborative model's ``score_history``, by the length of the history
        (absent when either model cannot fold in)."""
        if not all(has(m, "fold_in") for m in getattr(self, "components_", [None])):
            raise AttributeError(f"{self.label}: one of its models cannot score a new person's history")
        return self._switch_history

    def _switch_history(self, items) -> np.ndarray:
        content, collaborative = self.components_
        chosen = content if len(np.unique(np.asarray(items))) < self.threshold_ else collaborative
        return np.asarray(chosen.score_history(items), dtype=np.float32)
