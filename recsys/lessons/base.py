"""The shape of a lesson and the list of lessons in the course's order."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping

import pandas as pd

from recsys import estimate, hosting
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.split import Split, make_split
from recsys.experiment import RunSpec, fit_and_evaluate, run
from recsys.models import registry
from recsys.models.base import coerce_params, describe_params
from recsys.store import SHARED, ExperimentStore

# chapter modules in the course's order; each declares LESSONS: list[Lesson]
MODULES = (
    "recsys.lessons.neighborhood",
    "recsys.lessons.sparsity",
    "recsys.lessons.factorization",
    "recsys.lessons.neural",
    "recsys.lessons.overfitting",
    "recsys.lessons.autoencoders",
    "recsys.lessons.graphs",
    "recsys.lessons.sequential",
    "recsys.lessons.evaluation",
    "recsys.lessons.ratings",
    "recsys.lessons.popularity",
    "recsys.lessons.online",
)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What "Set up the app for this lesson" does: the data, the split and the runs it needs.

    ``runs`` are (model key, params) pairs trained or reused from the experiment store, so a
    prepared workshop opens every lesson without training; ``page`` is the page to open next.
    """

    dataset: str = "sample"
    split: dict = dataclasses.field(default_factory=lambda: {"method": "random", "test_fraction": 0.2, "seed": 42})
    runs: tuple[tuple[str, dict], ...] = ()
    page: str | None = None


@dataclasses.dataclass
class Context:
    """What a lesson computes on: the app's current dataset (None for worked examples) and the store.

    Lessons train through :meth:`train`, the experiment's one run path: with a store, a run
    trained once (by the workshop's preparation, or by the first learner) is reused by every
    later visit; ``fits`` lists the runs this context actually trained. ``hosted`` holds every
    training that is not stored yet to the shared server's budgets before it starts.
    """

    dataset: Dataset | None = None
    store: ExperimentStore | None = None
    owner: str = SHARED
    fits: list[str] = dataclasses.field(default_factory=list)
    # a shared server: a training not in the store is first held to the Train page's budgets (check_budget),
    # and all of one lesson run's new trainings together to one training's time (estimated_s adds them up)
    hosted: bool = False
    estimated_s: float = 0.0

    def train(self, data: Dataset, split: Mapping, model: str, params: Mapping | None = None):
        """(fitted model, evaluation report) of ``model`` on ``data`` under ``split``, reused when stored."""
        fitted, report, _ = self.train_with_history(data, split, model, params)
        return fitted, report

    def train_with_history(self, data: Dataset, split: Mapping, model: str, params: Mapping | None = None):
        """(fitted model, report, per-epoch history) as :meth:`train`; the history is the one the Train page
        draws (loss and validation NDCG@10 per epoch), read from the store for a reused run."""
        spec = RunSpec.make(data, split, model, params, owner=self.owner)
        parts = make_split(data, spec.split)
        if self.store is not None:
            if self.hosted and self.store.find_done(spec.run_id, spec.owner) is None:
                self.estimated_s += check_budget(spec.model, spec.params, parts, spent=self.estimated_s)
            result = run(spec, parts, store=self.store)
            if not result.reused:
                self.fits.append(spec.run_id)
            if result.model is not None:
                return result.model, result.report, list(result.record.extra.get("history") or [])
        if self.hosted:
            self.estimated_s += check_budget(spec.model, spec.params, parts, spent=self.estimated_s)
        trained = fit_and_evaluate(spec, parts)
        self.fits.append(spec.run_id)
        return trained.model, trained.report, trained.history


def check_budget(model: str, params: Mapping, parts: Split, seconds: float | None = None, *,
                 spent: float = 0.0) -> float:
    """Refuse, before it starts, a lesson's training that the Train page would not run on a shared server;
    returns its estimated seconds.

    The same two budgets: the host's memory estimate (``hosting.check_training_budget``) and the probed fit
    time (``recsys.estimate``), here held to ``seconds`` (the Train page's "over a minute" line) less what
    the lesson's earlier trainings in this run are estimated to take (``spent``), so one lesson run costs
    at most one such training. The quick setting for what is left is named when the model has epochs to cut.
    """
    seconds = estimate.LONG_FIT_SECONDS if seconds is None else float(seconds)
    cls = registry.get(model)
    hosting.check_training_budget(cls, params, parts.train)
    n_test_users = int((parts.test.user_activity > 0).sum())
    guess = estimate.estimate_fit(cls, dict(params), parts.train, valid=parts.valid, n_eval_users=n_test_users)
    left = seconds - spent
    if guess.seconds <= left:
        return guess.seconds
    advice = " Lower the lesson's sizes or pick a smaller dataset."
    if left > 0:
        quick = estimate.quick_setting(cls, dict(params), parts.train, valid=parts.valid,
                                       n_eval_users=n_test_users, target=left / 2)
        changes = quick and ", ".join(f"{name} {before} → {after}" for name, (before, after)
                                      in estimate.changed(estimate.full_params(cls, dict(params)), quick[0]).items())
        advice = f" A setting that fits: {changes} ({quick[1].describe()})." if changes else advice
    earlier = f", after {estimate.duration_text(spent)} of its earlier trainings" if spent > 0 else ""
    raise DataError(f"This lesson would train {cls.label} for {guess.describe()} on this data{earlier}, over the "
                    f"{estimate.seconds_text(seconds)} a lesson's training may take on this shared server.{advice}")


@dataclasses.dataclass(frozen=True)
class LessonResult:
    """What one run of a lesson produced and which answer those numbers make right.

    ``correct`` indexes the lesson's ``choices``; ``explanation`` says why, quoting
    ``figures``. ``tables`` hold the worked terms a learner can read line by line.
    """

    figures: dict[str, float]
    correct: int
    explanation: str
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    def feedback(self, choice: int) -> str:
        verdict = "Right." if choice == self.correct else "Not quite."
        return f"{verdict} {self.explanation}"


@dataclasses.dataclass(frozen=True)
class Lesson:
    """One question of the course, the experiment that answers it, and how to set the app up.

    ``Knobs`` is a dataclass declared with ``recsys.models.base.param`` (the page builds its
    widgets the way the Train page builds a model's); ``compute(knobs, context)`` runs the
    experiment on the context's data (lessons that need none ignore it).
    """

    key: str
    chapter: str
    title: str
    framing: str
    question: str
    choices: tuple[str, ...]
    Knobs: type
    compute: Callable[[object, Context], LessonResult]
    setup: Setup = Setup()

    def knobs(self, **overrides) -> object:
        return coerce_params(self.Knobs, overrides)

    def describe(self) -> list[dict]:
        return describe_params(self.Knobs)

    def run(self, context: Context | None = None, **overrides) -> LessonResult:
        result = self.compute(self.knobs(**overrides), context or Context())
        if not 0 <= result.correct < len(self.choices):
            raise RuntimeError(f"lesson {self.key!r} marked choice {result.correct} of {len(self.choices)}")
        return result


def lessons() -> dict[str, Lesson]:
    """Every lesson by key, in the course's order."""
    found: dict[str, Lesson] = {}
    for name in MODULES:
        for lesson in importlib.import_module(name).LESSONS:
            if lesson.key in found:
                raise RuntimeError(f"lesson key {lesson.key!r} is declared twice")
            found[lesson.key] = lesson
    return found


def get(key: str) -> Lesson:
    available = lessons()
    if key not in available:
        raise DataError(f"Unknown lesson {key!r}; choose one of {sorted(available)}.")
    return available[key]


def parse_numbers(text: str, what: str, *, low: float | None = None, high: float | None = None,
                  min_len: int = 2, max_len: int = 50) -> list[float]:
    """"5, 5, 4, 4" -> [5.0, 5.0, 4.0, 4.0], with a message that says which entry is wrong."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not min_len <= len(parts) <= max_len:
        raise DataError(f"{what} needs between {min_len} and {max_len} numbers separated by commas; "
                        f"got {len(parts)}.")
    values = []
    for position, part in enumerate(parts, start=1):
        try:
            value = float(part)
        except ValueError:
            raise DataError(f"{what}: entry {position} ({part[:20]!r}) is not a number.") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise DataError(f"{what}: entry {position} is {value:g}; use values from {low:g} to {high:g}.")
        values.append(value)
    return values
