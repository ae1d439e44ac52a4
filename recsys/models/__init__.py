"""Models: the Recommender base class, the registry, and one module per family.

The family modules are imported when the registry first hands out one of their classes
(``registry[key]``, ``get``, ``create``), not here: several of them import torch, which a page
that only shows data should not wait for.
"""

from recsys.models.base import FitCancelled, Recommender, describe_params
from recsys.models.registry import create, get, registry

__all__ = ["FitCancelled", "Recommender", "create", "describe_params", "get", "registry"]
