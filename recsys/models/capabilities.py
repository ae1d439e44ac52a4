"""What a model can do beyond ``score``: the one place pages, serving and messages ask.

Every optional capability is a method a model may implement (see the design notes); a page
never probes for methods itself and never names models in its hints, it asks here:

    >>> "fold_in" in capabilities(model)
    >>> models_with("attention")          # labels for "train one of …" hints

A class answers for what every fitted model of it can do. A fitted model answers for itself:
a hybrid can fold in a new visitor only when each of its components can, which only the
fitted model knows (its ``score_history`` is a property that is absent otherwise).
"""

from __future__ import annotations

# capability -> the method that provides it
METHODS: dict[str, str] = {
    "user_embeddings": "user_embeddings",    # (n_users, d) vectors
    "item_embeddings": "item_embeddings",    # (n_items, d) vectors, dense or sparse
    "similar_items": "similar_items",        # similar_items(item, k) -> (items, scores)
    "fold_in": "score_history",              # scores for an unseen person from a list of items
    "attention": "attention",                # attention(history) -> (layers, heads, L, L)
    "explain": "explain",                    # explain(user, item) -> [(history item or user, weight)]
    "predicts_ratings": "predict",           # predict(users, items) -> ratings
    "graph_layers": "layer_embeddings",      # layer_embeddings(layer) -> (users, items) after k hops
}
CAPABILITIES = frozenset(METHODS)


def capabilities(model_or_cls) -> frozenset[str]:
    """The capability names ``model_or_cls`` (a Recommender class or instance) provides."""
    found = {name for name, method in METHODS.items() if callable(getattr(model_or_cls, method, None))}
    # a model may have a predict method yet not predict ratings in its configuration (mf_sgd with loss='bce')
    if "predicts_ratings" in found and not getattr(model_or_cls, "predicts_ratings", True):
        found.discard("predicts_ratings")
    return frozenset(found)


def has(model_or_cls, *names: str) -> bool:
    """Does ``model_or_cls`` provide every one of the capabilities ``names``?"""
    unknown = set(names) - CAPABILITIES
    if unknown:
        raise ValueError(f"unknown capability {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return set(names) <= capabilities(model_or_cls)


def models_with(*names: str) -> list[str]:
    """Labels of the registered models whose class provides every one of ``names``, in registry order.

    This imports every model family (torch included): call it for a hint or an error, not on
    every page load.
    """
    from recsys.models.registry import registry

    return [cls.label for cls in registry.values() if has(cls, *names)]


def example_list(*names: str, limit: int = 4) -> str:
    """A few of ``models_with(names)`` in words, e.g. "iALS, PureSVD, BPR-MF or LightGCN"."""
    labels = models_with(*names)[:limit]
    if len(labels) <= 1:
        return "".join(labels) or "none of the registered models"
    return f"{', '.join(labels[:-1])} or {labels[-1]}"
