"""Model registry: key -> Recommender class. Adding a model = one class + one @register."""

from __future__ import annotations

from recsys.data.errors import DataError

registry: dict[str, type] = {}

FAMILIES = ("baseline", "neighborhood", "content", "hybrid", "factorization", "neural", "graph", "sequential")


def register(cls: type) -> type:
    """Class decorator: make a Recommender subclass available by its ``key``."""
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.family must be one of {FAMILIES}, not {cls.family!r}")
    if cls.key in registry and registry[cls.key] is not cls:
        raise ValueError(f"model key {cls.key!r} is registered twice")
    registry[cls.key] = cls
    return cls


def get(key: str) -> type:
    try:
        return registry[key]
    except KeyError:
        raise DataError(f"Unknown model {key!r}; available: {', '.join(sorted(registry))}.") from None


def create(key: str, **params):
    """A fresh, unfitted model with keyword overrides of its Params defaults."""
    return get(key)(**params)
