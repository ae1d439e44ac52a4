"""The ground truth a simulation plays against: how likely each person is to click each item.

A :class:`World` holds a dense (users x items) matrix of click probabilities that no model
ever sees; simulations show items, draw clicks from it (see :mod:`recsys.simulation.clicks`)
and score policies by it. It comes either from the synthetic generator's hidden tastes or
from a trained model whose scores are taken as the truth.

Relevance is ``logistic(sharpness * affinity + popularity_weight * popularity + intercept)``
where ``affinity`` is standardised taste, ``popularity`` a standardised log-popularity prior
(popular items really are a bit better liked, which is what makes chasing them tempting) and
the intercept is solved so the mean click probability of a random (user, item) is
``base_rate``. With the defaults (sharpness 2, base rate 0.03) on the synthetic world the
median person's best item is clicked about half the time and a handful of items per person
exceed 0.5, while a random tile draws 3 % (measured on 600 x 400, seed 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from recsys.data.errors import DataError

DEFAULT_USERS = 600
DEFAULT_ITEMS = 400
DEFAULT_BASE_RATE = 0.03
DEFAULT_SHARPNESS = 2.0
DEFAULT_POPULARITY_WEIGHT = 0.5


@dataclasses.dataclass(frozen=True, eq=False)
class World:
    """Hidden click probabilities for every (user, item), and the tastes behind them.

    ``affinity`` is the standardised taste matrix; ``truth`` the click probabilities built
    from it. ``user_factors`` / ``item_factors`` are the latent tastes when the world has them
    (synthetic worlds); drift then rotates the users' vectors. Worlds built from a model have
    none, and drift blends each person's tastes with another person's instead.
    """

    truth: np.ndarray  # (n_users, n_items) click probability in [0, 1]
    affinity: np.ndarray  # (n_users, n_items) standardised taste
    popularity: np.ndarray  # (n_items,) standardised log-popularity prior
    intercept: float
    sharpness: float
    popularity_weight: float
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    item_titles: tuple[str, ...] | None = None
    source: str = "synthetic"
    # affinity's global mean and std before standardising, so drifted tastes keep the scale
    affinity_location: tuple[float, float] = (0.0, 1.0)

    # ------------------------------------------------------------------ construction
    @classmethod
    def synthetic(cls, n_users: int = DEFAULT_USERS, n_items: int = DEFAULT_ITEMS, seed: int = 0, *,
                  base_rate: float = DEFAULT_BASE_RATE, sharpness: float = DEFAULT_SHARPNESS,
                  popularity_weight: float = DEFAULT_POPULARITY_WEIGHT, **synthetic_knobs) -> World:
        """A world from the synthetic generator's hidden latent tastes.

        The popularity prior is the log of how often each item was chosen in the generated
        log (the generator's own Zipf prior shows through it). Extra keyword arguments go to
        :func:`recsys.data.synthetic.simulate` (e.g. ``n_factors``).
        """
        from recsys.data.synthetic import simulate

        _check_calibration(base_rate, sharpness, popularity_weight)
        hidden = simulate(n_users, n_items, seed, **synthetic_knobs)
        counts = np.bincount(hidden.interactions["item_id"].to_numpy() - 1, minlength=n_items)
        raw = hidden.user_factors @ hidden.item_factors.T
        location = (float(raw.mean()), float(raw.std()) or 1.0)
        return cls._build(
            affinity=(raw - location[0]) / location[1], popularity=_standardise(np.log1p(counts)),
            base_rate=base_rate, sharpness=sharpness, popularity_weight=popularity_weight,
            user_factors=hidden.user_factors, item_factors=hidden.item_factors,
            item_titles=tuple(hidden.items["title"]), source="synthetic", affinity_location=location,
        )

    @classmethod
    def from_model(cls, model, dataset, *, users: np.ndarray | None = None,
                   base_rate: float = DEFAULT_BASE_RATE, sharpness: float = DEFAULT_SHARPNESS,
                   popularity_weight: float = DEFAULT_POPULARITY_WEIGHT) -> World:
        """Treat a fitted model's scores as the truth about ``dataset``'s people.

        Each person's scores are standardised on their own (models' score scales differ and
        mean nothing across people), so the ranking of items per person is the model's; the
        popularity prior is the dataset's item popularity. ``users`` keeps a subset of people
        (dense codes), which keeps large datasets sample-sized.
        """
        _check_calibration(base_rate, sharpness, popularity_weight)
        if not getattr(model, "is_fitted", False):
            raise DataError("from_model needs a fitted model; train it first.")
        codes = np.arange(dataset.n_users) if users is None else np.asarray(users, dtype=np.int64)
        if codes.size < 2 or codes.min() < 0 or codes.max() >= dataset.n_users:
            raise DataError(f"users must be at least two codes in [0, {dataset.n_users}); got {codes.size}.")
        scores = np.asarray(model.score(codes), dtype=np.float64)
        if scores.shape[1] != dataset.n_items:
            raise DataError(
                f"The model scores {scores.shape[1]} items but the dataset has {dataset.n_items}; "
                "pass the dataset the model was trained on."
            )
        titles = None
        if dataset.items is not None and "title" in dataset.items:
            titles = tuple(str(t) for t in dataset.item_titles())
        return cls._build(
            affinity=_standardise_rows(scores), popularity=_standardise(np.log1p(dataset.item_popularity)),
            base_rate=base_rate, sharpness=sharpness, popularity_weight=popularity_weight,
            item_titles=titles, source=f"model:{getattr(model, 'key', type(model).__name__)}",
        )

    @classmethod
    def _build(cls, *, affinity: np.ndarray, popularity: np.ndarray, base_rate: float, sharpness: float,
               popularity_weight: float, **rest) -> World:
        logits = sharpness * affinity + popularity_weight * popularity[None, :]
        intercept = _calibrate_intercept(logits, base_rate)
        return cls(truth=_logistic(logits + intercept), affinity=affinity, popularity=popularity,
                   intercept=intercept, sharpness=sharpness, popularity_weight=popularity_weight, **rest)

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return int(self.truth.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.truth.shape[1])

    # ------------------------------------------------------------------ reading the truth
    def relevance(self, users: np.ndarray | None = None, items: np.ndarray | None = None) -> np.ndarray:
        """Click probabilities.

        ``items=None``: every item, (len(users), n_items). ``items`` 1-D: the same items for
        every user, (len(users), len(items)). ``items`` 2-D (one row per user, e.g. each
        person's shown list): (len(users), items.shape[1]); item -1 (an empty slot) gives 0.
        """
        rows = np.arange(self.n_users) if users is None else self._user_codes(users)
        if items is None:
            return self.truth[rows]
        items = np.asarray(items, dtype=np.int64)
        if items.ndim == 1:
            return self.truth[rows][:, self._item_codes(items)]
        if items.ndim != 2 or items.shape[0] != rows.size:
            raise DataError(f"items must be 1-D or one row per user ({rows.size}); got shape {items.shape}.")
        empty = items < 0
        values = self.truth[rows[:, None], self._item_codes(np.where(empty, 0, items))]
        return np.where(empty, 0.0, values)

    def expected_clicks(self, users: np.ndarray, shown_items: np.ndarray,
                        examine: np.ndarray | None = None) -> np.ndarray:
        """Expected clicks per user on their shown list (one row of items per user).

        ``examine`` (one probability per slot) discounts slots people rarely look at; without
        it every slot is examined.
        """
        relevance = self.relevance(users, np.asarray(shown_items).reshape(len(np.atleast_1d(users)), -1))
        if examine is not None:
            relevance = relevance * np.asarray(examine, dtype=np.float64)[None, :]
        return relevance.sum(axis=1)

    def best_items(self, k: int) -> np.ndarray:
        """Each person's ``k`` truly most relevant items, best first (the oracle's list)."""
        k = int(min(max(k, 1), self.n_items))
        part = np.argpartition(-self.truth, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(self.truth, part, axis=1), axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)

    # ------------------------------------------------------------------ change
    def drift(self, amount: float, seed: int = 0) -> World:
        """The same world after tastes moved by ``amount`` (0 = unchanged, 1 = unrelated tastes).

        Every person's taste turns by an angle of ``amount * 90 degrees`` toward another
        person's taste (the part of it orthogonal to their own), keeping its length, so the correlation between a person's old and new
        affinities is about ``cos(amount * pi / 2)``. Items, their popularity and the
        calibration stay: only people change.
        """
        if not 0.0 <= amount <= 1.0:
            raise DataError(f"drift amount must be between 0 and 1; got {amount}.")
        rng = np.random.default_rng(seed)
        angle = amount * np.pi / 2
        # tastes turn toward another person's (plus a little noise): a random Gaussian
        # direction would leave the genre structure of the catalogue and wash relevance out
        # (mean click probability fell from 0.030 to 0.011 at amount 1 when measured)
        donors = rng.permutation(self.n_users)
        if self.user_factors is not None and self.item_factors is not None:
            toward = self.user_factors[donors] + 0.3 * rng.normal(size=self.user_factors.shape)
            user_factors = _rotate_rows(self.user_factors, toward, angle)
            affinity = (user_factors @ self.item_factors.T - self.affinity_location[0]) / self.affinity_location[1]
        else:
            user_factors = None
            toward = self.affinity[donors] + 0.3 * rng.normal(size=self.affinity.shape)
            affinity = _rotate_rows(self.affinity, toward, angle)
        logits = self.sharpness * affinity + self.popularity_weight * self.popularity[None, :] + self.intercept
        return dataclasses.replace(self, truth=_logistic(logits), affinity=affinity, user_factors=user_factors)

    # ------------------------------------------------------------------ checks
    def _user_codes(self, users) -> np.ndarray:
        codes = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if codes.size and (codes.min() < 0 or codes.max() >= self.n_users):
            raise DataError(f"user codes must lie in [0, {self.n_users}); got {codes.min()}..{codes.max()}.")
        return codes

    def _item_codes(self, items: np.ndarray) -> np.ndarray:
        if items.size and (items.min() < 0 or items.max() >= self.n_items):
            raise DataError(f"item codes must lie in [0, {self.n_items}); got {items.min()}..{items.max()}.")
        return items


# ---------------------------------------------------------------------------- helpers
def _logistic(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free form of 1 / (1 + exp(-x))


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    std = x.std()
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)


def _standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores; items a model cannot score (-inf, NaN) count as that row's worst."""
    finite = np.isfinite(scores)
    if not finite.any(axis=1).all():
        raise DataError("The model scored no item at all for some people; pick another model or users.")
    low = np.where(finite, scores, np.inf).min(axis=1, keepdims=True)
    filled = np.where(finite, scores, low)
    std = filled.std(axis=1, keepdims=True)
    return (filled - filled.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


def _calibrate_intercept(logits: np.ndarray, base_rate: float, iterations: int = 30) -> float:
    """The shift that makes the mean click probability ``base_rate``.

    Newton steps on a monotone function, kept inside a shrinking bracket so a flat start
    cannot throw it off: six to eight steps instead of bisection's sixty full passes.
    """
    low, high = -40.0, 40.0
    shift = float(np.log(base_rate / (1 - base_rate)) - logits.mean())
    for _ in range(iterations):
        probability = _logistic(logits + shift)
        gap = probability.mean() - base_rate
        if abs(gap) < 1e-9 * base_rate:
            break
        low, high = (shift, high) if gap < 0 else (low, shift)
        slope = (probability * (1 - probability)).mean()
        step = shift - gap / slope if slope > 0 else 0.5 * (low + high)
        shift = step if low < step < high else 0.5 * (low + high)
    return shift


def _rotate_rows(vectors: np.ndarray, directions: np.ndarray, angle: float) -> np.ndarray:
    """Turn each row by ``angle`` toward the part of its direction orthogonal to it, keeping length."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    orthogonal = directions - (directions * unit).sum(axis=1, keepdims=True) * unit
    orthogonal /= np.maximum(np.linalg.norm(orthogonal, axis=1, keepdims=True), 1e-12)
    return np.cos(angle) * vectors + np.sin(angle) * norms * orthogonal


def _check_calibration(base_rate: float, sharpness: float, popularity_weight: float) -> None:
    if not 0.0 < base_rate < 1.0:
        raise DataError(f"base_rate must be a click probability strictly between 0 and 1; got {base_rate}.")
    if sharpness <= 0:
        raise DataError(f"sharpness must be positive; got {sharpness}.")
    if popularity_weight < 0:
        raise DataError(f"popularity_weight must be zero or more; got {popularity_weight}.")
