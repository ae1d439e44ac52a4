"""What happens once recommendations are shown: worlds, click models and the course's online half.

Every simulation is UI-free, vectorised and seeded (the same knobs and seed give the same
rounds). Each one is reached through a :class:`~recsys.simulation.presets.Preset`, which names
its knobs (a ``Params``-style dataclass, so the page builds widgets the way the Train page
does) and returns a :class:`~recsys.simulation.result.SimulationResult`.
"""

from recsys.simulation.result import SimulationResult

__all__ = ["SimulationResult"]
