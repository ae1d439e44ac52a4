"""Spark as an engine: sessions, reading large interaction files, statistics and ranking metrics
computed by Spark, so data too large for one Python process never has to enter it.

Nothing here is imported by ``recsys`` itself: ``pyspark`` (and the Java 17 runtime Spark 4 runs
on) are optional, and :func:`missing` says, without importing pyspark or starting a JVM, what is
absent. Every entry point that needs Spark raises :class:`SparkUnavailable` with that sentence.
"""

from __future__ import annotations

from recsys.spark.session import SparkSettings, SparkUnavailable, get_session, missing, require_spark, stop_session

__all__ = ["SparkSettings", "SparkUnavailable", "get_session", "missing", "require_spark", "stop_session"]
