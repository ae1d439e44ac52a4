"""Data layer: the Dataset type, loaders, validation, splits, statistics, synthetic data."""

from recsys.data import split
from recsys.data.dataset import Dataset
from recsys.data.errors import DataError
from recsys.data.loaders import load

__all__ = ["Dataset", "DataError", "load", "split"]
