"""Recommender Explorer backend: data, models, evaluation and serving, free of any UI."""

__version__ = "0.1.0"
