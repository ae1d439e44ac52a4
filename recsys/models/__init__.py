"""Models: the Recommender base class, the registry, and one module per family."""

from recsys.models import baselines, content, factorization, neighborhood  # noqa: F401  (registers the models)
from recsys.models.base import FitCancelled, Recommender, describe_params
from recsys.models.registry import create, get, registry

__all__ = ["FitCancelled", "Recommender", "create", "describe_params", "get", "registry"]
