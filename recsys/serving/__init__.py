"""Serving: ranking, homepage rows, re-ranking and retrieval built on any fitted model."""

from recsys.serving.ranking import top_k

__all__ = ["top_k"]
