"""Spark MLlib's implicit-feedback ALS as a registered model: the same fit -> score -> store path as
every other model, with the alternating least squares run by Spark (locally or on a cluster).

Importing this module needs neither pyspark nor Java: the class is always registered, says in its
description what it needs when that is missing, and its fit raises ``SparkUnavailable`` (a
DataError, shown to a person as a message) instead of failing at import.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np

from recsys.data.errors import DataError
from recsys.models.base import FLOAT32, FitCancelled, StopTraining, param
from recsys.models.latent import FactorizationModel
from recsys.models.registry import register
from recsys.spark.session import missing

DESCRIPTION = ("Implicit ALS trained by Apache Spark MLlib, on this machine or a cluster "
               "(RECSYS_SPARK_MASTER): for logs larger than one process holds.")
# seconds between looks at Spark's job progress while a fit runs (and between chances to cancel it)
POLL_SECONDS = 0.5


def _description() -> str:
    reason = missing()
    return DESCRIPTION if reason is None else f"{DESCRIPTION} Unavailable here: {reason}"


@register
class SparkALS(FactorizationModel):
    """Hu, Koren & Volinsky's implicit ALS as MLlib implements it (``pyspark.ml.recommendation.ALS``
    with ``implicitPrefs=True``): preference 1 for a consumed cell, confidence c = 1 + alpha, and an
    exact least-squares solve per user and per item in each sweep.

    One difference from our ``ials`` is MLlib's, not ours: its L2 penalty is ``reg`` times the number
    of the user's (item's) interactions (the ALS-WR weighting), where ``ials`` adds ``reg`` alone.
    The names are the house's shared ones (``embedding_size``, ``reg``, ``alpha``, ``iterations``)
    so a sweep or a Compare table lines the two up; MLlib's own names (``rank``, ``regParam``,
    ``maxIter``) are accepted as keywords too.
    """

    key = "spark_als"
    label = "Spark ALS"
    family = "factorization"
    description = _description()

    @dataclass
    class Params:
        embedding_size: int = param(64, help="Embedding size d (MLlib's rank).", low=1, high=1024, log=True)
        # MLlib's names, accepted as keywords and kept in run ids (the mechanism renamed fields use)
        legacy_names = {"rank": "embedding_size", "regParam": "reg", "maxIter": "iterations"}
        # chosen on a validation split carved from the ML-100K seed-42 training set (rank 64, 15 sweeps):
        # NDCG@10 0.267 at reg 0.6 / alpha 5, 0.261 at 0.3, 0.252 at 1.0, 0.240 at MLlib's own 0.1
        reg: float = param(0.6, help="MLlib's regParam: L2 penalty per interaction, so a user's vector is "
                                     "penalised reg x (their number of interactions); not on iALS's scale.",
                           low=0.0, high=1000.0)
        alpha: float = param(5.0, help="Extra confidence of a consumed cell, c = 1 + alpha (MLlib's alpha).",
                             low=0.0, high=10000.0)
        iterations: int = param(15, help="ALS sweeps, users then items (MLlib's maxIter).", low=1, high=200)
        seed: int = param(42, help="Seed of MLlib's random initial factors.", low=0)

    @classmethod
    def available(cls) -> bool:
        return missing() is None

    @classmethod
    def memory_terms(cls, params, n_users, n_items, n_interactions):
        # this process holds the two factor tables and the interactions handed to Spark once (Arrow
        # columns); the solves run in Spark's JVM, whose memory is its own setting (driver memory)
        d = params["embedding_size"]
        return {"fit": 16 * n_interactions + 2 * (n_users + n_items) * d * FLOAT32,
                "kept": (n_users + n_items) * d * FLOAT32}

    # ------------------------------------------------------------------ fitting
    def _fit(self, train, *, valid, progress):
        from recsys.spark import get_session
        from recsys.spark.io import from_dataset

        interactions = from_dataset(train, positives_only=True, session=get_session())
        self._fit_frame(interactions.frame, train.n_users, train.n_items, progress)

    def fit_spark(self, interactions, *, progress=None):
        """Fit on a log Spark holds (``recsys.spark.io`` ``SparkInteractions``): only the factor tables
        come back to this process, never the interactions. Returns self with ``user_factors_`` /
        ``item_factors_`` set; ``attach(train)`` then makes score, recommend and storage work with the
        same codes in a Dataset, and ``recsys.spark.metrics`` evaluates without one."""
        self.history_ = []
        report = self._progress_reporter(progress)
        start = time.perf_counter()
        frame = interactions.positives()
        self._fit_frame(frame, interactions.n_users, interactions.n_items, report)
        self.fit_seconds_ = time.perf_counter() - start
        self.train_ = None
        return self

    def attach(self, train):
        """Use factors from ``fit_spark`` with ``train``, a Dataset with the same user and item codes."""
        if self.user_factors_.shape[0] != train.n_users or self.item_factors_.shape[0] != train.n_items:
            raise DataError(f"These factors are for {self.user_factors_.shape[0]} users and "
                            f"{self.item_factors_.shape[0]} items; {train.name} has {train.n_users} and "
                            f"{train.n_items}. Attach the dataset the Spark log was read from.")
        self.train_ = train
        return self

    def _require_fitted(self) -> None:
        if self.train_ is None and getattr(self, "user_factors_", None) is not None:
            raise RuntimeError(f"{self.label} was fitted on a log Spark holds: attach(train) a Dataset with the "
                               "same codes to score it here, or evaluate it in Spark (recsys.spark.metrics).")
        super()._require_fitted()

    def _fit_frame(self, frame, n_users: int, n_items: int, progress) -> None:
        """MLlib's ALS on ``frame`` (user, item codes; every row a positive) in a worker thread, while
        this thread reports Spark's job progress and cancels the jobs when progress says so."""
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        p = self.params
        als = ALS(rank=p.embedding_size, maxIter=p.iterations, regParam=p.reg, alpha=p.alpha, implicitPrefs=True,
                  seed=p.seed, userCol="user", itemCol="item", ratingCol="rating", nonnegative=False)
        data = frame.select("user", "item", F.lit(1.0).alias("rating"))
        # as many user (item) blocks as Spark runs tasks at once: MLlib's fixed 10 would give a 2-core
        # machine 10 small tasks per stage and a large cluster too few to keep its executors busy
        blocks = max(1, data.sparkSession.sparkContext.defaultParallelism)
        als.setNumUserBlocks(blocks).setNumItemBlocks(blocks)
        group = f"recsys-spark-als-{uuid.uuid4().hex}"
        outcome: dict = {}

        def work():
            try:
                context = data.sparkSession.sparkContext
                context.setJobGroup(group, f"{self.label}: {p.iterations} sweeps", interruptOnCancel=True)
                fitted = als.fit(data)
                outcome["users"] = _factor_table(fitted.userFactors, n_users, p.embedding_size)
                outcome["items"] = _factor_table(fitted.itemFactors, n_items, p.embedding_size)
            except BaseException as err:  # handed to the calling thread, which raises it
                outcome["error"] = err

        worker = threading.Thread(target=work, name=group, daemon=True)
        progress(0, p.iterations, {})
        worker.start()
        try:
            self._watch(worker, data.sparkSession.sparkContext, group, progress)
        except (FitCancelled, StopTraining):
            data.sparkSession.sparkContext.cancelJobGroup(group)
            worker.join()
            raise FitCancelled(f"{self.label}'s Spark jobs were cancelled.") from None
        if "error" in outcome:
            raise outcome["error"]
        self.user_factors_, self.item_factors_ = outcome["users"], outcome["items"]
        progress(p.iterations, p.iterations, {})

    def _watch(self, worker: threading.Thread, context, group: str, progress) -> None:
        """Report finished sweeps while the fit runs: MLlib's implicit ALS runs one Spark job per half
        sweep (the Gram matrix YᵀY of the fixed side), so two finished jobs are one sweep."""
        reported = 0
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            tracker = context.statusTracker()
            finished = sum(1 for job in tracker.getJobIdsForGroup(group)
                           if (info := tracker.getJobInfo(job)) is not None and info.status == "SUCCEEDED")
            sweeps = min(self.params.iterations - 1, finished // 2)
            if sweeps > reported:
                reported = sweeps
                progress(sweeps, self.params.iterations, {})

    def score_history(self, items) -> np.ndarray:
        """Fold-in: the exact least-squares vector MLlib's user step gives this history, then its scores."""
        items = np.unique(np.asarray(items, dtype=np.int64))
        fixed = self.item_factors_.astype(np.float64)
        chosen = fixed[items]
        gram = fixed.T @ fixed + self.params.alpha * chosen.T @ chosen
        gram += self.params.reg * len(items) * np.eye(fixed.shape[1])
        user = np.linalg.solve(gram, (1.0 + self.params.alpha) * chosen.sum(axis=0))
        return (fixed @ user).astype(np.float32)


def _factor_table(frame, rows: int, width: int) -> np.ndarray:
    """MLlib's (id, features) factor frame as a dense (rows, width) float32 array; a code with no
    interaction has no row there and keeps a zero vector (it scores every item 0, as in ``ials``)."""
    table = frame.toPandas()
    out = np.zeros((rows, width), dtype=np.float32)
    if len(table):
        out[table["id"].to_numpy(np.int64)] = np.stack(table["features"].to_numpy()).astype(np.float32)
    return out
