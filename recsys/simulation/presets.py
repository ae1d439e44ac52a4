"""The named simulations a person picks on the Simulate page or as ``python -m recsys simulate PRESET``.

Each simulation module declares ``PRESETS: list[Preset]``; this module only gathers them in
the order of the course, so adding a preset never touches the page or the CLI.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from recsys.data.errors import DataError
from recsys.models.base import coerce_params, describe_params
from recsys.simulation.result import RoundProgress, SimulationResult

# modules holding presets, in the order the page lists them
MODULES = (
    "recsys.simulation.loop",
    "recsys.simulation.offline_online",
    "recsys.simulation.bandits",
    "recsys.simulation.position_bias",
    "recsys.simulation.freshness",
)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A simulation with its knobs' defaults set to tell one story.

    ``Knobs`` is a dataclass whose fields are declared with ``recsys.models.base.param`` (type,
    default, range, one-line help), exactly like a model's ``Params``; ``run(knobs, seed,
    progress)`` returns the result. ``rounds_knob`` names the knob that sets how many rounds
    run (the CLI's ``--rounds``), or None when the simulation has no rounds to change.
    """

    key: str
    label: str
    blurb: str
    Knobs: type
    run: Callable[..., SimulationResult]
    rounds_knob: str | None = "rounds"

    def knobs(self, **overrides) -> object:
        """The Knobs with ``overrides`` applied; a name the simulation does not have is refused by name."""
        known = sorted(field["name"] for field in self.describe())
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise DataError(f"Simulation {self.key!r} has no knob(s) {unknown}; its knobs are {known}.")
        return coerce_params(self.Knobs, overrides)

    def describe(self) -> list[dict]:
        return describe_params(self.Knobs)

    def __call__(self, seed: int = 0, progress: RoundProgress | None = None, **overrides) -> SimulationResult:
        return self.run(self.knobs(**overrides), seed=seed, progress=progress)


def presets() -> dict[str, Preset]:
    """Every preset by key, in page order (modules import lazily: torch-free ones stay light)."""
    found: dict[str, Preset] = {}
    for name in MODULES:
        for preset in getattr(importlib.import_module(name), "PRESETS", []):
            if preset.key in found:
                raise RuntimeError(f"preset key {preset.key!r} is declared twice")
            found[preset.key] = preset
    return found


def metric_descriptions() -> dict[str, str]:
    """{metric name: one line on what it measures}, from each simulation module's ``METRICS``."""
    found: dict[str, str] = {}
    for name in MODULES:
        for metric, text in getattr(importlib.import_module(name), "METRICS", {}).items():
            found.setdefault(metric, text)
    return found


def get(key: str) -> Preset:
    available = presets()
    if key not in available:
        raise DataError(f"Unknown simulation {key!r}; choose one of {sorted(available)}.")
    return available[key]
