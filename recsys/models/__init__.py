"""Models: the Recommender base class, the registry, and one module per family."""

from recsys.models import (  # noqa: F401  (importing a family module registers its models)
    autoencoders,
    baselines,
    content,
    factorization,
    graph,
    hybrid,
    ncf,
    neighborhood,
    sequential,
)
from recsys.models.base import FitCancelled, Recommender, describe_params
from recsys.models.registry import create, get, registry

__all__ = ["FitCancelled", "Recommender", "create", "describe_params", "get", "registry"]
