"""One shared SparkSession per process, built from a settings object (or the environment).

A JVM holds a single SparkContext, so the session is cached: every caller with the same settings
gets the same one, and asking for different settings stops it and starts another (a master URL
or a driver memory cannot change inside a running JVM).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from recsys.data.errors import DataError

JAVA_MAJOR_NEEDED = 17   # Spark 4 runs on Java 17 or 21
INSTALL_HINT = ("Spark needs Java 17 and pyspark: install a Java 17 runtime (Debian: apt-get install "
                "openjdk-17-jre-headless) and `pip install -r requirements-spark.txt`.")


class SparkUnavailable(DataError):
    """Spark cannot run here (no pyspark, no Java 17, or the JVM did not start); the message says which."""


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs and with how much memory. ``from_env`` reads RECSYS_SPARK_MASTER and
    RECSYS_SPARK_DRIVER_MEMORY, so pointing the app at a cluster needs no code change."""

    # local[*] = every core of this machine; spark://host:7077, k8s://https://host or yarn on a cluster
    master: str = "local[*]"
    # the driver collects only factors and small summaries, never the interactions
    driver_memory: str = "2g"
    app_name: str = "recommender-explorer"
    # None: two per local core (Spark's own default of 200 makes ~200 tiny tasks per shuffle on a
    # laptop, each with its scheduling overhead); on a cluster Spark's default is kept
    shuffle_partitions: int | None = None
    log_level: str = "ERROR"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SparkSettings:
        environ = os.environ if environ is None else environ
        settings = cls()
        if environ.get("RECSYS_SPARK_MASTER"):
            settings = replace(settings, master=environ["RECSYS_SPARK_MASTER"].strip())
        if environ.get("RECSYS_SPARK_DRIVER_MEMORY"):
            settings = replace(settings, driver_memory=environ["RECSYS_SPARK_DRIVER_MEMORY"].strip())
        return settings

    @property
    def is_local(self) -> bool:
        return self.master == "local" or self.master.startswith("local[")

    def local_cores(self) -> int:
        """Cores a local master uses: N of local[N], every core for local[*]; 1 for plain local."""
        if self.master == "local":
            return 1
        match = re.fullmatch(r"local\[(\d+|\*)(?:,\s*\d+)?\]", self.master)
        if match is None or match.group(1) == "*":
            return os.cpu_count() or 1
        return max(1, int(match.group(1)))

    def partitions(self) -> int | None:
        """spark.sql.shuffle.partitions to set, or None to keep Spark's default."""
        if self.shuffle_partitions is not None:
            return int(self.shuffle_partitions)
        return 2 * self.local_cores() if self.is_local else None

    def conf(self) -> dict[str, str]:
        """The Spark configuration these settings stand for."""
        conf = {
            "spark.driver.memory": self.driver_memory,
            "spark.ui.showConsoleProgress": "false",
            "spark.log.level": self.log_level,
            # factors come back to the driver through Arrow as whole columns, not row by row
            "spark.sql.execution.arrow.pyspark.enabled": "true",
        }
        if self.partitions() is not None:
            conf["spark.sql.shuffle.partitions"] = str(self.partitions())
            conf["spark.default.parallelism"] = str(self.partitions())
        if self.is_local:
            # a container's hostname often does not resolve; local mode only talks to itself
            conf["spark.driver.host"] = "127.0.0.1"
            conf["spark.driver.bindAddress"] = "127.0.0.1"
        return conf


# ---------------------------------------------------------------------- what is missing
def _java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@functools.lru_cache(maxsize=1)
def _java_major() -> int | None:
    """The major version of the java Spark would launch (None when there is none or it does not run)."""
    java = _java_executable()
    if java is None:
        return None
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8" is Java 8


def missing() -> str | None:
    """Why Spark cannot run here, in one sentence, or None when pyspark and Java 17+ are present.
    Imports nothing and starts no JVM (the Java check runs ``java -version`` once per process)."""
    if importlib.util.find_spec("pyspark") is None:
        return f"pyspark is not installed. {INSTALL_HINT}"
    major = _java_major()
    if major is None:
        return f"No Java runtime was found (JAVA_HOME or java on the PATH). {INSTALL_HINT}"
    if major < JAVA_MAJOR_NEEDED:
        return f"Java {major} was found, but Spark 4 needs Java {JAVA_MAJOR_NEEDED} or later. {INSTALL_HINT}"
    return None


def require_spark() -> None:
    """Raise SparkUnavailable with the reason when Spark cannot run here."""
    reason = missing()
    if reason is not None:
        raise SparkUnavailable(reason)


# ---------------------------------------------------------------------- the session
_lock = threading.Lock()
_session = None
_session_settings: SparkSettings | None = None


def get_session(settings: SparkSettings | None = None):
    """The process's SparkSession for ``settings``. Without settings: the running session, or a new
    one from ``SparkSettings.from_env()``; with other settings than the running one's, that one is
    stopped first (its DataFrames with it)."""
    global _session, _session_settings
    with _lock:
        running = _session is not None and _is_alive(_session)
        if running and (settings is None or settings == _session_settings):
            return _session
        settings = settings or SparkSettings.from_env()
        require_spark()
        if _session is not None:
            _session.stop()
            _session = None
        _session = _start(settings)
        _session_settings = settings
        return _session


def stop_session() -> None:
    """Stop the shared session (its JVM and executors); the next get_session starts a new one."""
    global _session, _session_settings
    with _lock:
        if _session is not None:
            _session.stop()
        _session, _session_settings = None, None


def _is_alive(session) -> bool:
    context = session.sparkContext
    return context._jsc is not None and not context._jsc.sc().isStopped()


def _start(settings: SparkSettings):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in settings.conf().items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as err:  # the JVM's own message ("Java gateway process exited…") names no cause
        raise SparkUnavailable(f"Spark did not start with master {settings.master!r}: "
                               f"{str(err).strip().splitlines()[0][:200]}. {INSTALL_HINT}") from err
    session.sparkContext.setLogLevel(settings.log_level)
    if settings.is_local:
        # iterative MLlib jobs (ALS) cut their lineage at checkpoints; without a directory a long fit
        # grows one plan per iteration until the JVM's stack overflows. A cluster needs a shared
        # filesystem for this, which only its operator can name (spark.checkpoint.dir).
        session.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="recsys-spark-checkpoints-"))
    return session
