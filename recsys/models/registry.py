"""Model registry: key -> Recommender class. Adding a model = one class + one @register + its line in MODULES.

The registry knows which module defines each key and imports that module the first time the
key is looked up, so a page that only lists keys, or shows data, never pays for torch: the
neural, factorization and sequential families import it, and that import alone takes several
seconds on a cold server. ``registry[key]``, ``get(key)``, ``create(key)`` import on demand;
``registry.values()`` / ``items()`` import every family.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

from recsys.data.errors import DataError

FAMILIES = ("baseline", "neighborhood", "content", "hybrid", "factorization", "neural", "graph", "sequential")

# key -> the module whose import registers it (a test checks this against the @register calls)
MODULES: dict[str, str] = {
    **dict.fromkeys(("autorec", "cdae", "mult_vae"), "recsys.models.autoencoders"),
    **dict.fromkeys(("random", "pop"), "recsys.models.baselines"),
    "content_tfidf": "recsys.models.content",
    **dict.fromkeys(("item_knn", "user_knn"), "recsys.models.neighborhood"),
    **dict.fromkeys(("ease", "bpr_mf", "pure_svd", "ials", "mf_sgd"), "recsys.models.factorization"),
    "lightgcn": "recsys.models.graph",
    **dict.fromkeys(("hybrid_weighted", "hybrid_switching"), "recsys.models.hybrid"),
    **dict.fromkeys(("ncf_gmf", "ncf_mlp", "neumf"), "recsys.models.ncf"),
    **dict.fromkeys(("markov", "sasrec", "gru4rec"), "recsys.models.sequential"),
    "spark_als": "recsys.models.spark_als",
}


class Registry(MutableMapping):
    """A dict of key -> Recommender class whose classes are imported on first access.

    Membership, iteration and ``len`` use the known keys and import nothing; looking a key up
    imports its module (Python's import lock makes concurrent first look-ups from several
    threads wait for one import).
    """

    def __init__(self, modules: dict[str, str]):
        self._modules = dict(modules)
        self._classes: dict[str, type] = {}

    def _load(self, key: str) -> None:
        module = self._modules.get(key)
        if module is not None and key not in self._classes:
            importlib.import_module(module)
            if key not in self._classes:
                raise RuntimeError(f"importing {module} did not register the model {key!r}; "
                                   "fix recsys.models.registry.MODULES")

    def __getitem__(self, key: str) -> type:
        if key not in self._classes:
            self._load(key)
        return self._classes[key]

    def __setitem__(self, key: str, cls: type) -> None:
        self._classes[key] = cls

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._classes.pop(key, None)
        self._modules.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._classes or key in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(list(dict.fromkeys([*self._modules, *self._classes])))

    def __len__(self) -> int:
        return len(set(self._modules) | set(self._classes))

    def loaded(self) -> list[str]:
        """The keys whose classes have been imported so far."""
        return list(self._classes)

    def __repr__(self) -> str:
        return f"Registry({sorted(self)})"


registry: Registry = Registry(MODULES)


def register(cls: type) -> type:
    """Class decorator: make a Recommender subclass available by its ``key``."""
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.family must be one of {FAMILIES}, not {cls.family!r}")
    if registry._classes.get(cls.key, cls) is not cls:
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
