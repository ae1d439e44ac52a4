"""How fit time and memory grow with the interaction log: ``python -m recsys scale``.

Each (model, dataset) pair is fitted and evaluated in a fresh child process, so one fit's memory
never inflates the next one's peak and a fit that runs away can be stopped: the child reports its
own resident high-water mark (``VmHWM`` in ``/proc/self/status``) and, for Spark, that of the JVM it
started; the parent adds the child's CPU seconds from ``wait4``. Before a fit starts, its cost is
estimated and the fit is skipped when the estimate exceeds a budget, with the reason recorded:

* memory: the model's own upper estimate (``Recommender.estimate_memory``: e.g. EASE's 24 bytes
  per item pair, local iALS's float64 vectors gathered at every training cell) against a budget;
* time: the fit time projected from the same model's measured smaller sizes (the growth exponent
  of the last two, or linear from one) against a cap; a fit that did not finish at a smaller size
  is not tried at a larger one.

The synthetic logs here are not ``recsys.data.synthetic``'s catalogue: that one draws over the
dense user x item matrix (fine for a few thousand users, impossible at a million). This
generator keeps the parts that shape the cost, chunk by chunk of users: a Zipf-like item
popularity, a long-tailed (lognormal) activity per user and clustered latent tastes, so that
models have a signal to find and the NDCG figures mean something.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_SIZES = (1_000_000, 10_000_000, 50_000_000)
QUALITY_DATASETS = ("ml-100k", "ml-latest-small")
DEFAULT_MODELS = ("ials", "spark_als", "ease", "item_knn", "bpr_mf", "pop")
SEED = 42
K = 10
# measured for the NDCG floor only: a count of interactions per item has no growth worth fitting
BASELINES = ("pop",)

# the log's shape at n interactions: 50 per user on average (MovieLens 25M: 155), and a catalogue
# that grows with the square root of the log (1M -> 2,000 items, 50M -> 14,142), as real
# catalogues grow more slowly than their audiences
MEAN_ACTIVITY = 50
MIN_ACTIVITY = 5
ITEMS_PER_ROOT = 2.0
N_TASTES = 20  # taste clusters ("genres") the users and items belong to
N_FACTORS = 16
# weight of taste against popularity in what a user picks; at 4, on 1M interactions, EASE's NDCG@10
# is 0.26 against popularity's 0.19 (at 2: 0.25 against 0.22, too little to tell models apart)
TASTE_STRENGTH = 4.0
POPULARITY_EXPONENT = 0.9
ACTIVITY_SIGMA = 1.0
# each user is shown this many candidates per wanted item, drawn by popularity, and keeps the
# ones that suit them best; 3 gives even the heaviest users enough distinct items
CANDIDATES_PER_PICK = 3
CHUNK_CANDIDATES = 4_000_000  # candidate (user, item) pairs generated at a time: ~200 MB
TEST_FRACTION = 0.2

# users evaluated at most per (model, dataset): full ranking of the catalogue for 10,000 users
# costs seconds, for a million users it would cost more than the fit
EVAL_USERS = 10_000
MEMORY_BUDGET_GB = 12.0
TIME_CAP_S = 300.0
RUN_BUDGET_MIN = 30.0
# a child may take this much longer than the cap allows the fit (loading data, evaluating)
CHILD_GRACE_S = 180.0
LIMIT_EXPONENT = (0.5, 3.0)  # a projection never assumes slower than square-root or faster than cubic growth

# the parameters every size uses: the models' defaults, except that local iALS and Spark ALS share
# rank, alpha and sweeps, so the two implementations solve the same problem (Spark keeps MLlib's
# regParam 0.1: its penalty is per interaction, ALS-WR, so no value equals iALS's); at the ML-100K
# defaults (64 factors, reg 50) local iALS overfits the 1M log (NDCG@10 0.15, popularity 0.19), at
# 32 factors and reg 100 it reaches 0.23 in half the time
SHARED_ALS = {"embedding_size": 32, "reg": 100.0, "alpha": 5.0, "iterations": 10}
MODEL_PARAMS = {
    "ials": SHARED_ALS,
    "spark_als": {"embedding_size": SHARED_ALS["embedding_size"], "alpha": SHARED_ALS["alpha"],
                  "iterations": SHARED_ALS["iterations"]},
    "ease": {},
    "item_knn": {},
    # a fixed 20 epochs, so that the cost of an epoch is what grows with the log (the measured
    # docs/scale.md rows were taken at 20, when the default was 60)
    "bpr_mf": {"epochs": 20},
}
# environment of every child: one BLAS / OpenMP / torch thread, so local models are timed alike
# on a shared machine (Spark's executors use the cores of its master URL instead)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CHILD_MARK = "SCALE-RESULT "


# ---------------------------------------------------------------------------- the logs
@dataclass(frozen=True)
class LogShape:
    interactions: int
    users: int
    items: int


def log_shape(n_interactions: int) -> LogShape:
    """Users and items of a synthetic log of about ``n_interactions`` rows."""
    users = max(50, n_interactions // MEAN_ACTIVITY)
    items = max(100, int(round(ITEMS_PER_ROOT * math.sqrt(n_interactions))))
    return LogShape(int(n_interactions), users, items)


@dataclass(frozen=True)
class _Taste:
    item_factors: np.ndarray  # (items, N_FACTORS) float32
    centroids: np.ndarray  # (N_TASTES, N_FACTORS)
    popularity_cdf: np.ndarray  # (items,) cumulative popularity, in popularity-rank order
    item_by_rank: np.ndarray  # (items,) item code of each popularity rank


def _taste(shape: LogShape, rng: np.random.Generator) -> _Taste:
    centroids = rng.standard_normal((N_TASTES, N_FACTORS))
    cluster = rng.integers(0, N_TASTES, shape.items)
    factors = (centroids[cluster] + 0.7 * rng.standard_normal((shape.items, N_FACTORS))) / math.sqrt(N_FACTORS)
    weights = np.arange(1, shape.items + 1, dtype=np.float64) ** -POPULARITY_EXPONENT
    return _Taste(factors.astype(np.float32), centroids, np.cumsum(weights / weights.sum()),
                  rng.permutation(shape.items).astype(np.int32))


def _activity(shape: LogShape, rng: np.random.Generator) -> np.ndarray:
    """Interactions wanted per user: MIN_ACTIVITY plus a lognormal share, summing to the log's size,
    at most half the catalogue each."""
    extra = rng.lognormal(0.0, ACTIVITY_SIGMA, shape.users)
    extra *= max(0, shape.interactions - MIN_ACTIVITY * shape.users) / extra.sum()
    counts = MIN_ACTIVITY + np.floor(extra).astype(np.int64)
    short = shape.interactions - int(counts.sum())
    if short > 0:
        counts[rng.choice(shape.users, size=min(short, shape.users), replace=False)] += 1
    return np.minimum(counts, max(MIN_ACTIVITY, shape.items // 2))


def _pick(users: np.ndarray, wanted: np.ndarray, taste: _Taste, user_factors: np.ndarray,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each user's distinct items: candidates shown by popularity, the best-suited ``wanted`` kept.

    ``users`` are chunk-local codes 0..len(wanted)-1. Ranking the candidates by taste plus Gumbel
    noise and keeping the top ones samples without replacement in proportion to
    exp(TASTE_STRENGTH x affinity) among what popularity put in front of the user."""
    shown = CANDIDATES_PER_PICK * wanted + 5
    user = np.repeat(users, shown)
    ranks = np.searchsorted(taste.popularity_cdf, rng.random(len(user)), side="right")
    item = taste.item_by_rank[np.minimum(ranks, len(taste.item_by_rank) - 1)]
    affinity = np.einsum("nd,nd->n", user_factors[user], taste.item_factors[item])
    key = TASTE_STRENGTH * affinity / (affinity.std() + 1e-12) + rng.gumbel(size=len(user))
    order = np.lexsort((-key, user))
    pair = user[order].astype(np.int64) * len(taste.item_by_rank) + item[order]
    _, first = np.unique(pair, return_index=True)  # the best-keyed copy of each repeated pair
    keep = order[np.sort(first)]  # still by user, best first
    user, item = user[keep], item[keep]
    starts = np.searchsorted(user, users)
    position = np.arange(len(user)) - starts[user]
    chosen = position < wanted[user]
    return user[chosen], item[chosen]


def _user_chunks(wanted: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive user ranges of about CHUNK_CANDIDATES candidates each."""
    load = np.cumsum(CANDIDATES_PER_PICK * wanted + 5)
    bounds = np.searchsorted(load, np.arange(CHUNK_CANDIDATES, load[-1], CHUNK_CANDIDATES), side="right")
    edges = np.unique(np.r_[0, bounds, len(wanted)])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def write_synthetic(folder: Path, n_interactions: int, seed: int = SEED) -> dict:
    """A synthetic log of about ``n_interactions`` rows, split per user 80/20 (ceil(0.2 n) of each
    user's rows held out, as the benchmarks split), written chunk by chunk as ``train.parquet`` and
    ``test.parquet`` (int32 columns user, item) with ``meta.json``; returns the meta."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.data.dataset import Dataset
    from recsys.data.split import random_holdout

    shape = log_shape(n_interactions)
    # the chunks seed themselves from (seed, chunk index), so any chunk can be redrawn alone
    taste_rng, activity_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    taste = _taste(shape, taste_rng)
    wanted = _activity(shape, activity_rng)
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("user", pa.int32()), ("item", pa.int32())])
    counts = {"train": 0, "test": 0}
    item_ids = np.arange(shape.items)
    with pq.ParquetWriter(folder / "train.parquet", schema) as train_out, \
            pq.ParquetWriter(folder / "test.parquet", schema) as test_out:
        for index, (lo, hi) in enumerate(_user_chunks(wanted)):
            rng = np.random.default_rng([seed, index])
            cluster = rng.integers(0, N_TASTES, hi - lo)
            user_factors = ((taste.centroids[cluster] + 0.7 * rng.standard_normal((hi - lo, N_FACTORS)))
                            / math.sqrt(N_FACTORS)).astype(np.float32)
            user, item = _pick(np.arange(hi - lo), wanted[lo:hi], taste, user_factors, rng)
            chunk = Dataset(user=user, item=item, rating=np.ones(len(user), np.float32),
                            user_ids=np.arange(lo, hi), item_ids=item_ids, feedback="implicit")
            train, test = random_holdout(chunk, TEST_FRACTION, seed=seed + index)
            for name, part, out in (("train", train, train_out), ("test", test, test_out)):
                out.write_table(pa.table({"user": (part.user + lo).astype(np.int32), "item": part.item}, schema))
                counts[name] += part.n_interactions
    meta = {"name": f"synthetic {human(n_interactions)}", "kind": "synthetic", "size": n_interactions,
            "users": shape.users,
            "items": shape.items, "train": counts["train"], "test": counts["test"],
            "interactions": counts["train"] + counts["test"], "seed": seed}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def write_movielens(folder: Path, name: str, seed: int = SEED) -> dict:
    """A MovieLens folder split per user 80/20 as the benchmarks split it, every rating an
    interaction, written in the synthetic logs' layout."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys import bench
    from recsys.data import load
    from recsys.data.split import make_split

    ds = load(bench.find_dataset(name))
    split = make_split(ds, bench.protocol_config("random", seed))
    folder.mkdir(parents=True, exist_ok=True)
    for part, file in ((split.train, "train.parquet"), (split.test, "test.parquet")):
        pq.write_table(pa.table({"user": part.user, "item": part.item}), folder / file)
    meta = {"name": ds.name, "kind": "movielens", "users": ds.n_users, "items": ds.n_items,
            "train": split.train.n_interactions, "test": split.test.n_interactions,
            "interactions": ds.n_interactions, "seed": seed}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def prepared(folder: Path, make, seed: int = SEED) -> dict:
    """The meta of a log already written to ``folder`` with ``seed``, or of the one ``make(folder)`` writes."""
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed:
            return meta
    return make(folder)


def human(n: int) -> str:
    """1000000 -> '1M', 250000 -> '250k'."""
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size:
            value = n / size
            return f"{value:g}{unit}" if value == round(value, 1) else f"{value:.1f}{unit}"
    return str(n)


def parse_size(text: str) -> int:
    """'10M' -> 10_000_000, '250k' -> 250_000, '3000' -> 3000."""
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "b": 10**9}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    return int(float(number) * scale)


# ---------------------------------------------------------------------------- one measurement
@dataclass
class Row:
    dataset: str
    kind: str  # synthetic | movielens
    interactions: int
    size: int  # the interactions asked for (a synthetic log falls a little short of it)
    train_interactions: int
    users: int
    items: int
    model: str
    status: str  # ok | skipped | failed | timeout
    reason: str = ""
    fit_s: float | None = None
    fit_cpu_s: float | None = None  # the child's CPU seconds during the fit, all its threads
    eval_s: float | None = None
    ndcg_10: float | None = None
    eval_users: int | None = None
    peak_mb: float | None = None  # the child Python process's resident high-water mark
    loaded_mb: float | None = None  # its resident memory once the data was loaded, before the fit
    jvm_peak_mb: float | None = None  # Spark: the JVM's (driver and local executors) high-water mark
    jvm_cpu_s: float | None = None
    child_cpu_s: float | None = None  # every second of CPU the child used (load, fit, evaluation)
    params: dict = field(default_factory=dict)
    load_average: float | None = None  # the machine's 1-minute load average when the child ended


def _status_kb(path: str, key: str) -> float:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def rss_mb(pid: str = "self") -> float:
    return _status_kb(f"/proc/{pid}/status", "VmRSS") / 1024


def peak_rss_mb(pid: str = "self") -> float:
    return _status_kb(f"/proc/{pid}/status", "VmHWM") / 1024


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (Spark's JVM and its Python workers), read from /proc."""
    parent = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_split(folder: Path):
    """The (train, test) Datasets of a prepared log: implicit, sharing the id maps 0..n-1."""
    import pyarrow.parquet as pq

    from recsys.data.dataset import Dataset

    meta = json.loads((folder / "meta.json").read_text())
    parts = []
    for file in ("train.parquet", "test.parquet"):
        table = pq.read_table(folder / file, columns=["user", "item"])
        user, item = (table.column(c).to_numpy() for c in ("user", "item"))
        del table
        parts.append(Dataset(user=user, item=item, rating=np.ones(len(user), np.float32),
                             user_ids=np.arange(meta["users"]), item_ids=np.arange(meta["items"]),
                             feedback="implicit", name=f"{meta['name']} {file.split('.')[0]}"))
    return parts[0], parts[1]


def eval_user_sample(test_users: np.ndarray, limit: int, seed: int = SEED) -> np.ndarray:
    """At most ``limit`` distinct test users, drawn with ``seed`` (all of them when there are fewer)."""
    users = np.unique(test_users)
    if len(users) <= limit:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=limit, replace=False))


def measure_local(folder: Path, key: str, params: dict, eval_users: int) -> dict:
    """Fit and evaluate one in-process model on a prepared log (runs inside the child), through the
    run pipeline's own fit and evaluation so a scale row means what a run means. The child's
    environment holds torch and BLAS to one thread (ONE_THREAD)."""
    from recsys import experiment

    train, test = read_split(folder)
    loaded = rss_mb()
    cpu = time.process_time()
    model, fit_s = experiment.fit_model(key, params, train)
    fit_cpu = time.process_time() - cpu
    users = eval_user_sample(test.user, eval_users)
    start = time.perf_counter()
    report = experiment.evaluate_model(model, train, test, k=[K], users=users, bootstrap=0)
    return {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "eval_s": time.perf_counter() - start,
            "ndcg_10": report.means[f"ndcg@{K}"], "eval_users": len(report.users), "loaded_mb": loaded,
            "params": model.get_params()}


def _spark_processes_cpu() -> float:
    return sum(cpu_seconds(pid) for pid in descendants(os.getpid()))


def measure_spark(folder: Path, params: dict, eval_users: int) -> dict:
    """Fit Spark ALS on a prepared log read by Spark from Parquet and compute NDCG@10 in Spark for a
    sample of users (runs inside the child). This process never holds the interactions: it gets the
    factor tables back from the fit and the list of test users to draw the sample from."""
    import pandas as pd
    from pyspark.sql import functions as F

    from recsys.models import create
    from recsys.spark import get_session
    from recsys.spark.io import SparkInteractions
    from recsys.spark.metrics import evaluate_factors

    meta = json.loads((folder / "meta.json").read_text())
    spark = get_session()
    train = spark.read.parquet(str(folder / "train.parquet"))
    test = spark.read.parquet(str(folder / "test.parquet"))
    log = SparkInteractions(frame=train.withColumn("rating", F.lit(1.0)), user_ids=None, item_ids=None,
                            n_users=meta["users"], n_items=meta["items"], n_interactions=meta["train"],
                            feedback="implicit", name=meta["name"])
    loaded = rss_mb()
    model = create("spark_als", **params)
    wall, cpu, jvm_cpu = time.perf_counter(), time.process_time(), _spark_processes_cpu()
    model.fit_spark(log)
    fit_s = time.perf_counter() - wall
    fit_cpu = time.process_time() - cpu + _spark_processes_cpu() - jvm_cpu
    start = time.perf_counter()
    users = eval_user_sample(test.select("user").distinct().toPandas()["user"].to_numpy(), eval_users)
    vectors = spark.createDataFrame(pd.DataFrame({"id": users.astype(np.int32),
                                                  "features": list(model.user_factors_[users])}),
                                    schema="id int, features array<float>")
    chosen = test.join(F.broadcast(vectors.select(F.col("id").alias("user"))), "user")
    evaluation = evaluate_factors(vectors, model.item_factors_, train, chosen, k=[K])
    eval_s = time.perf_counter() - start
    spark_pids = descendants(os.getpid())
    return {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "eval_s": eval_s, "ndcg_10": evaluation.means[f"ndcg@{K}"],
            "eval_users": evaluation.n_users, "loaded_mb": loaded, "params": model.get_params(),
            "jvm_peak_mb": sum(peak_rss_mb(str(pid)) for pid in spark_pids),
            "jvm_cpu_s": sum(cpu_seconds(pid) for pid in spark_pids)}


def child_main(task: dict) -> dict:
    """What a child process measures and prints: one fit and evaluation, and its memory peaks."""
    folder = Path(task["folder"])
    if task["model"] == "spark_als":
        result = measure_spark(folder, task["params"], task["eval_users"])
    else:
        result = measure_local(folder, task["model"], task["params"], task["eval_users"])
    result["peak_mb"] = peak_rss_mb()
    return result


def _child_env() -> dict:
    env = dict(os.environ, **ONE_THREAD)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(task: dict, timeout_s: float) -> tuple[dict | None, str, float]:
    """Run one measurement in a fresh process; returns (its result or None, why not, its CPU seconds).

    The child is polled with ``wait4`` so its CPU time is its own (and that of the processes it
    waited for); past ``timeout_s`` its whole process group (Spark's JVM included) is killed."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "recsys.scale", "--child", json.dumps(task)],
                                stdout=out, stderr=err, env=_child_env(), start_new_session=True)
        deadline = time.monotonic() + timeout_s
        status, usage = _wait(proc.pid, deadline)
        if status is None:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        cpu = usage.ru_utime + usage.ru_stime
        if time.monotonic() >= deadline:
            return None, f"stopped after {timeout_s:.0f} s", cpu
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith(CHILD_MARK)]
        if proc.returncode != 0 or not lines:
            err.seek(0)
            tail = [line for line in err.read().strip().splitlines() if line.strip()]
            return None, (tail[-1] if tail else f"exit status {proc.returncode}")[:300], cpu
        return json.loads(lines[-1][len(CHILD_MARK):]), "", cpu


def _wait(pid: int, deadline: float):
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        time.sleep(0.2)
    return None, None


# ---------------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    memory_gb: float = MEMORY_BUDGET_GB
    time_cap_s: float = TIME_CAP_S
    run_minutes: float = RUN_BUDGET_MIN
    eval_users: int = EVAL_USERS
    # (model, interactions) measured whatever its projected time (not past the memory budget): the
    # Spark path's benchmark row, a 10M log trained and evaluated end to end
    required: tuple[tuple[str, int], ...] = (("spark_als", 10_000_000),)
    # how long a required fit may run
    required_cap_s: float = 3600.0

    def is_required(self, key: str, interactions: int) -> bool:
        return any(model == key and 0.9 * size <= interactions <= size for model, size in self.required)


def growth_exponent(interactions, seconds) -> tuple[float, float]:
    """Least-squares (exponent b, coefficient a) of seconds = a * interactions^b, fitted on logs."""
    x, y = np.log(np.asarray(interactions, float)), np.log(np.asarray(seconds, float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("a growth exponent needs at least two different sizes")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(math.exp(intercept))


def projected_seconds(done: list[Row], interactions: int) -> float | None:
    """Fit time at ``interactions`` projected from this model's measured synthetic sizes: the
    exponent through the two largest (kept within LIMIT_EXPONENT), linear from a single one."""
    points = sorted((r.interactions, r.fit_s) for r in done if r.status == "ok" and r.kind == "synthetic")
    if not points:
        return None
    if len(points) == 1:
        exponent = 1.0
    else:
        exponent, _ = growth_exponent(*zip(*points[-2:]))
        exponent = min(max(exponent, LIMIT_EXPONENT[0]), LIMIT_EXPONENT[1])
    size, seconds = points[-1]
    return seconds * (interactions / size) ** exponent


def memory_estimate_gb(key: str, params: dict, meta: dict) -> float | None:
    """The model's own upper estimate of a fit and evaluation on this log, plus the loaded data."""
    from recsys.models import registry

    if key not in registry or not hasattr(registry[key], "estimate_memory"):
        return None
    model_bytes = registry[key].estimate_memory(params, meta["users"], meta["items"], meta["train"])
    return model_bytes / 1024**3


def skip_reason(key: str, meta: dict, done: list[Row], budget: Budget, params: dict,
                spent_s: float = 0.0) -> str:
    """Why this (model, log) is not measured, or '' when it is."""
    failed = [r for r in done if r.status in ("failed", "timeout") and r.interactions < meta["interactions"]]
    if failed:
        return f"did not finish at {human(failed[0].interactions)} ({failed[0].reason})"
    if spent_s > budget.run_minutes * 60 and not budget.is_required(key, meta["interactions"]):
        return f"the run's {budget.run_minutes:.0f}-minute budget was spent"
    memory = memory_estimate_gb(key, params, meta)
    if memory is not None and memory > budget.memory_gb:
        return f"estimated {memory:.1f} GB > {budget.memory_gb:.0f} GB memory budget"
    projected = projected_seconds(done, meta["interactions"])
    if projected is not None and projected > budget.time_cap_s and not budget.is_required(key, meta["interactions"]):
        return f"projected fit {projected:.0f} s > {budget.time_cap_s:.0f} s cap"
    return ""


def available(key: str) -> str:
    """'' when the model can run here, else why not."""
    from recsys.models import registry

    if key == "spark_als":
        from recsys.spark import missing

        return missing() or ""
    return "" if key in registry else f"no model {key!r} is registered"


def measure_one(key: str, folder: Path, meta: dict, done: list[Row], budget: Budget, spent_s: float) -> Row:
    params = dict(MODEL_PARAMS.get(key, {}))
    row = Row(dataset=meta["name"], kind=meta["kind"], interactions=meta["interactions"],
              size=meta.get("size", meta["interactions"]),
              train_interactions=meta["train"], users=meta["users"], items=meta["items"], model=key,
              status="skipped", params=params)
    reason = available(key) or skip_reason(key, meta, done, budget, params, spent_s)
    if reason:
        row.reason = reason
        return row
    task = {"folder": str(folder), "model": key, "params": params, "eval_users": budget.eval_users}
    cap = budget.required_cap_s if budget.is_required(key, meta["interactions"]) else budget.time_cap_s
    result, why, cpu = run_child(task, cap * 2 + CHILD_GRACE_S)
    row.child_cpu_s = round(cpu, 2)
    row.load_average = round(os.getloadavg()[0], 1)
    if result is None:
        row.status, row.reason = ("timeout" if why.startswith("stopped") else "failed"), why
        return row
    row.status = "ok"
    for name, value in result.items():
        if hasattr(row, name):
            setattr(row, name, value)
    return row


def measure(sizes, models, work: Path, budget: Budget = Budget(), quality: tuple[str, ...] = QUALITY_DATASETS,
            log=print, seed: int = SEED, earlier: tuple[Row, ...] = ()) -> list[Row]:
    """Every model on the quality datasets and on a synthetic log of each size (smallest first).
    ``earlier`` rows (a previous run's, on other logs) count when projecting a fit's time."""
    start = time.monotonic()
    rows: list[Row] = []
    logs = [(work / name, lambda f, n=name: write_movielens(f, n, seed), None) for name in quality]
    logs += [(work / f"synthetic-{n}", lambda f, n=n: write_synthetic(f, n, seed), n) for n in sorted(sizes)]
    for folder, make, size in logs:
        made = time.monotonic()
        try:
            meta = prepared(folder, make, seed)
            meta.setdefault("size", size or meta["interactions"])
        except Exception as exc:  # a missing MovieLens copy skips that dataset, not the run
            log(f"{folder.name}: not prepared ({exc})")
            continue
        log(f"{meta['name']}: {meta['interactions']:,} interactions, {meta['users']:,} users, "
            f"{meta['items']:,} items (ready in {time.monotonic() - made:.0f} s)")
        for key in models:
            done = [r for r in (*earlier, *rows) if r.model == key and r.dataset != meta["name"]]
            row = measure_one(key, folder, meta, done, budget, time.monotonic() - start)
            rows.append(row)
            log("  " + row_text(row))
    return rows


def row_text(row: Row) -> str:
    if row.status != "ok":
        return f"{row.model:<10} {row.status}: {row.reason}"
    jvm = f", JVM {row.jvm_peak_mb:.0f} MB" if row.jvm_peak_mb else ""
    return (f"{row.model:<10} fit {row.fit_s:8.1f} s ({row.fit_cpu_s:.1f} CPU s)  NDCG@{K} {row.ndcg_10:.4f} "
            f"on {row.eval_users} users  peak {row.peak_mb:.0f} MB{jvm}")


# ---------------------------------------------------------------------------- summaries
def _slope(points: list[tuple], column: int) -> float | None:
    values = [p[column] for p in points]
    if len(points) < 2 or not all(values):
        return None
    return growth_exponent([p[0] for p in points], values)[0]


def exponents(rows: list[Row], min_size: int = 0) -> dict[str, dict]:
    """Per model, over its measured synthetic logs: the growth exponents of fit time (wall clock and
    CPU) and of peak memory over the logs of at least ``min_size`` requested interactions (None
    below two such logs), the wall-clock exponent over every log, and the largest log it ran on."""
    out = {}
    for key in dict.fromkeys(r.model for r in rows if r.model not in BASELINES):
        ok = sorted((r.interactions, r.fit_s, r.fit_cpu_s, r.peak_mb, r.size, r.dataset) for r in rows
                    if r.model == key and r.status == "ok" and r.kind == "synthetic")
        timed = [p for p in ok if p[4] >= min_size]
        out[key] = {"time_exponent": _slope(timed, 1), "cpu_exponent": _slope(timed, 2),
                    "memory_exponent": _slope(timed, 3), "all_sizes_exponent": _slope(ok, 1),
                    "points": len(timed), "all_points": len(ok),
                    "largest": ok[-1][4] if ok else None, "largest_name": ok[-1][5] if ok else None}
    return out


def machine() -> dict:
    """What the figures were measured on, and how busy it was."""
    total = _status_kb("/proc/meminfo", "MemTotal") / 1024**2
    return {"machine": platform.machine(), "cpu_cores": os.cpu_count(), "memory_gb": round(total, 1),
            "python": platform.python_version(), "load_average": round(os.getloadavg()[0], 1)}


def spark_settings() -> dict:
    """The master URL and driver memory Spark ran with (RECSYS_SPARK_MASTER, RECSYS_SPARK_DRIVER_MEMORY)."""
    from recsys.spark.session import SparkSettings

    settings = SparkSettings.from_env()
    return {"master": settings.master, "driver_memory": settings.driver_memory}


def save(rows: list[Row], path: Path, meta: dict, merge: bool = False) -> list[Row]:
    """Write the rows as JSON; with ``merge`` the stored rows of other (dataset, model) pairs stay."""
    if merge and path.is_file():
        stored = json.loads(path.read_text())
        fresh = {(r.dataset, r.model) for r in rows}
        kept = [row_from_dict(r) for r in stored["rows"] if (r["dataset"], r["model"]) not in fresh]
        rows = kept + rows
        earlier = stored.get("meta", {})
        # the load seen over every run that made these rows, not only the latest
        loads = earlier.get("load_average", []) + meta.get("load_average", [])
        meta = {**earlier, **meta, **({"load_average": loads} if loads else {})}
    path.write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1))
    return rows


def load_rows(path: Path) -> tuple[list[Row], dict]:
    stored = json.loads(path.read_text())
    return [row_from_dict(r) for r in stored["rows"]], stored.get("meta", {})


def row_from_dict(stored: dict) -> Row:
    """A stored row; rows written before ``size`` was recorded take it from their log's name."""
    if "size" not in stored:
        named = stored["dataset"].removeprefix("synthetic ")
        stored = {**stored, "size": parse_size(named) if stored["kind"] == "synthetic" else stored["interactions"]}
    return Row(**stored)


# ---------------------------------------------------------------------------- the report
# the cluster the projection prices: (executors, cores each)
CLUSTERS = ((4, 4), (16, 4), (64, 8))
PROJECTED_SIZES = (100_000_000, 300_000_000, 1_000_000_000)
# share of linear speed-up kept when ALS's shuffles cross a network instead of one JVM's memory
# (an assumption, stated in the report; Spark's ALS moves every factor block once per half-sweep)
CLUSTER_EFFICIENCY = 0.5


# what each model's cost should grow like, from its algorithm, on logs shaped like the synthetic ones
# (users ∝ n, items ∝ √n, activity per user fixed)
EXPECTED_GROWTH = {
    "ials": "O(nnz·d + (users + items)·d²) per sweep with conjugate gradient: linear in n.",
    "spark_als": "O(nnz·r² + (users + items)·r³) per sweep (exact solves) plus a fixed start-up: linear in n "
                 "once the start-up is small beside it.",
    "ease": "the Gram matrix costs Σ_u n_u² (linear in n at a fixed activity), the dense inverse items³ "
            "(n^1.5 here): between 1 and 1.5, nearer 1.5 as the catalogue grows.",
    "item_knn": "co-occurrences Σ_u n_u² plus one similarity row per item over every item (items², linear in n "
                "here): about linear.",
    "bpr_mf": "O(nnz·d) per epoch at a fixed number of epochs: linear in n.",
}


CHART_EXPONENTS = {"fit_s": "time_exponent", "peak_mb": "memory_exponent"}


def chart(rows: list[Row], value: str, title: str, path: Path, min_size: int = 1_000_000) -> Path:
    """A log-log chart of ``value`` against interactions, one line per model labelled with its fitted
    growth exponent from ``min_size`` up (PNG through vl-convert)."""
    import altair as alt
    import pandas as pd

    fits = exponents(rows, min_size)

    def label(key: str) -> str:
        b = fits[key][CHART_EXPONENTS[value]]
        if b is not None:
            return f"{key} (b = {b:.2f})"
        if value == "fit_s" and fits[key]["all_sizes_exponent"] is not None:
            return f"{key} (b = {fits[key]['all_sizes_exponent']:.2f}, every log)"
        return f"{key} (fewer than two logs)"

    measured = [r for r in rows if r.status == "ok" and r.kind == "synthetic" and r.model not in BASELINES]
    points = [{"model": label(r.model), "interactions": r.interactions, value: getattr(r, value)}
              for r in measured if getattr(r, value)]
    if value == "peak_mb":  # Spark's own processes beside the Python process that drives them
        spark = [r for r in measured if r.jvm_peak_mb and r.size >= min_size]
        b = _slope([(r.interactions, r.jvm_peak_mb) for r in spark], 1)
        name = f"spark_als JVM (b = {b:.2f})" if b is not None else "spark_als JVM"
        points += [{"model": name, "interactions": r.interactions, value: r.jvm_peak_mb} for r in spark]
    points = pd.DataFrame(points)
    if points.empty:
        return path
    x = alt.X("interactions:Q", scale=alt.Scale(type="log"), axis=alt.Axis(format="~s"),
              title="interactions in the log")
    y = alt.Y(f"{value}:Q", scale=alt.Scale(type="log"), title=title)
    base = alt.Chart(points).encode(x=x, y=y, color=alt.Color("model:N", title="model (growth exponent b)"))
    (base.mark_line() + base.mark_point(filled=True)).properties(width=520, height=320).save(str(path), ppi=100)
    return path


def _cell(value, digits: int = 1) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def settings_lines(rows: list[Row]) -> list[str]:
    """Each model's parameters as the runs recorded them (the model's own defaults filled in)."""
    lines = []
    for key in dict.fromkeys(r.model for r in rows):
        params = next((r.params for r in rows if r.model == key and r.status == "ok" and r.params), None)
        if params:
            lines.append(f"* `{key}`: " + ", ".join(f"{name}={value}" for name, value in sorted(params.items())))
    return lines


def quality_table(rows: list[Row]) -> list[str]:
    """NDCG@10 with one row per log and one column per model."""
    models = list(dict.fromkeys(r.model for r in rows))
    logs = sorted({(r.kind != "movielens", r.interactions, r.dataset) for r in rows})
    cell = {(r.dataset, r.model): r for r in rows}
    lines = ["| log | " + " | ".join(f"`{m}`" for m in models) + " |", "|---|" + "---:|" * len(models)]
    for _, _, name in logs:
        values = [cell.get((name, m)) for m in models]
        lines.append(f"| {name} | " + " | ".join(f"{v.ndcg_10:.4f}" if v and v.status == "ok" else "–"
                                                for v in values) + " |")
    return lines


def results_table(rows: list[Row]) -> list[str]:
    lines = ["| dataset | model | fit s | fit CPU s | NDCG@10 (users) | peak MB | JVM peak MB | note |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (r.kind != "movielens", r.interactions, r.model)):
        ndcg = f"{r.ndcg_10:.4f} ({r.eval_users:,})" if r.ndcg_10 is not None else ""
        note = r.reason if r.status != "ok" else ""
        lines.append(f"| {r.dataset} | `{r.model}` | {_cell(r.fit_s)} | {_cell(r.fit_cpu_s)} | {ndcg} | "
                     f"{_cell(r.peak_mb, 0)} | {_cell(r.jvm_peak_mb, 0)} | {note} |")
    return lines


def estimate_check(rows: list[Row], key: str) -> str:
    """How the model's memory estimate compared with the peak measured on its largest log run."""
    ok = [r for r in rows if r.model == key and r.status == "ok" and r.kind == "synthetic" and r.peak_mb]
    if not ok:
        return ""
    r = max(ok, key=lambda r: r.interactions)
    meta = {"users": r.users, "items": r.items, "train": r.train_interactions}
    estimate = memory_estimate_gb(key, r.params, meta)
    if estimate is None:
        return ""
    return (f" (on {r.dataset} the estimate was {estimate:.1f} GB and the measured peak {r.peak_mb / 1024:.1f} GB: "
            "the estimate is an upper bound)")


def exponent_table(rows: list[Row], min_size: int) -> list[str]:
    lines = [f"| model | time exponent from {human(min_size)} | CPU-time exponent from {human(min_size)} | "
             f"memory exponent from {human(min_size)} | logs from {human(min_size)} | time exponent, every log "
             "(logs) | largest log run | what stopped it |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for key, fit in exponents(rows, min_size).items():
        stopped = next((r.reason for r in sorted(rows, key=lambda r: r.size)
                        if r.model == key and r.kind == "synthetic" and r.status != "ok"), "nothing: ran on every log")
        if "memory budget" in stopped:
            stopped += estimate_check(rows, key)
        lines.append(f"| `{key}` | {_cell(fit['time_exponent'], 2)} | {_cell(fit['cpu_exponent'], 2)} | "
                     f"{_cell(fit['memory_exponent'], 2)} | {fit['points']} | "
                     f"{_cell(fit['all_sizes_exponent'], 2)} ({fit['all_points']}) | "
                     f"{fit['largest_name'] or 'none'} | {stopped} |")
    return lines


def _line(spark: list[Row], value: str, per: str) -> tuple[float, float]:
    """(fixed part, part per unit of ``per``) of ``value`` over the Spark runs: the line through the
    two largest runs, or everything proportional from a single run (an upper bound)."""
    if len(spark) >= 2 and getattr(spark[-1], per) > getattr(spark[-2], per):
        a, b = spark[-2], spark[-1]
        slope = max(0.0, (getattr(b, value) - getattr(a, value)) / (getattr(b, per) - getattr(a, per)))
        return getattr(b, value) - slope * getattr(b, per), slope
    return 0.0, getattr(spark[-1], value) / getattr(spark[-1], per)


def _spark_runs(rows: list[Row]) -> list[Row]:
    return sorted((r for r in rows if r.model == "spark_als" and r.status == "ok" and r.kind == "synthetic"
                   and r.fit_cpu_s and r.jvm_peak_mb), key=lambda r: r.interactions)


def _jvm_memory_model(spark: list[Row]) -> tuple[float, float]:
    """(fixed MB, bytes per training interaction) of Spark's processes."""
    fixed_mb, mb_per_row = _line(spark, "jvm_peak_mb", "train_interactions")
    return fixed_mb, mb_per_row * 2**20


def cluster_projection(rows: list[Row], sizes=PROJECTED_SIZES, clusters=CLUSTERS) -> list[dict]:
    """Spark ALS's fit time and per-executor memory at ``sizes`` on ``clusters``, priced from the
    measured runs here. Time: the runs' CPU seconds (their work, whatever else the machine was
    doing) as a fixed part (start-up and job scheduling: not shortened by more cores) plus a part per
    interaction, spread over every core at CLUSTER_EFFICIENCY. Memory: the JVM's fixed part plus its
    bytes per training interaction times the executor's share."""
    spark = _spark_runs(rows)
    if not spark:
        return []
    fixed_s, per_row_s = _line(spark, "fit_cpu_s", "interactions")
    fixed_mb, per_row_bytes = _jvm_memory_model(spark)
    out = []
    for n in sizes:
        work = per_row_s * n  # CPU seconds that grow with the log
        for executors, cores in clusters:
            share = per_row_bytes * n * (1 - TEST_FRACTION) / executors / 2**30
            out.append({"interactions": n, "executors": executors, "cores": cores,
                        "cpu_hours": (fixed_s + work) / 3600,
                        "fit_minutes": (fixed_s + work / (executors * cores * CLUSTER_EFFICIENCY)) / 60,
                        "executor_gb": fixed_mb / 1024 + share,
                        "users": log_shape(n).users, "items": log_shape(n).items})
    return out


def projection_reference(rows: list[Row]) -> str:
    spark = _spark_runs(rows)
    fixed_s, per_row_s = _line(spark, "fit_cpu_s", "interactions")
    fixed_mb, per_row = _jvm_memory_model(spark)
    return (f"{' and '.join(r.dataset for r in spark[-2:])}: {fixed_s:.0f} CPU seconds fixed + "
            f"{per_row_s * 1e6:.1f} per million interactions; JVM {fixed_mb:.0f} MB fixed + {per_row:.0f} bytes "
            "per training interaction")


def projection_table(projection: list[dict]) -> list[str]:
    lines = ["| interactions | users | items | CPU hours | executors x cores | projected fit | memory per executor |",
             "|---:|---:|---:|---:|---|---:|---:|"]
    for p in projection:
        lines.append(f"| {human(p['interactions'])} | {p['users']:,} | {p['items']:,} | {p['cpu_hours']:.1f} | "
                     f"{p['executors']} x {p['cores']} | {p['fit_minutes']:.1f} min | {p['executor_gb']:.1f} GB |")
    return lines


def end_to_end_row(rows: list[Row], size: int = 10_000_000, limit_mb: float = 1024.0) -> list[str]:
    """The Spark path's benchmark row: a log of ``size`` trained and evaluated with this Python process
    under ``limit_mb`` resident."""
    match = [r for r in rows if r.model == "spark_als" and r.kind == "synthetic" and r.size == size]
    if not match:
        return [f"Not measured: Spark ALS did not run on a synthetic log of {human(size)} interactions."]
    r = match[0]
    if r.status != "ok":
        return [f"Spark ALS on {r.dataset}: {r.status} ({r.reason})."]
    verdict = "under" if r.peak_mb < limit_mb else "over"
    return ["| log | fit s | evaluation s | NDCG@10 (users) | Python peak MB | JVM peak MB | Python under 1 GB |",
            "|---|---:|---:|---:|---:|---:|---|",
            f"| {r.dataset} ({r.interactions:,} interactions) | {_cell(r.fit_s)} | {_cell(r.eval_s)} | "
            f"{r.ndcg_10:.4f} ({r.eval_users:,}) | {r.peak_mb:.0f} | {_cell(r.jvm_peak_mb, 0)} | "
            f"{'yes' if verdict == 'under' else 'no'}: {r.peak_mb:.0f} MB {verdict} {limit_mb:.0f} MB |"]


def report_markdown(rows: list[Row], meta: dict, min_size: int = 1_000_000) -> str:
    """docs/scale.md: how it was measured, every row, the charts, exponents, largest sizes and the
    cluster projection, all computed from ``rows``."""
    m = meta.get("machine", {})
    budget = meta.get("budget", {})
    sizes = sorted({r.size for r in rows if r.kind == "synthetic"})
    cores = m.get("cpu_cores") or 1
    logs = sorted({(r.kind != "movielens", r.interactions, r.dataset, r.users, r.items, r.train_interactions)
                   for r in rows})
    shapes = ["| log | interactions | users | items | density | train / test |", "|---|---:|---:|---:|---:|---:|"]
    shapes += [f"| {name} | {n:,} | {u:,} | {i:,} | {n / (u * i):.2%} | {t:,} / {n - t:,} |"
               for _, n, name, u, i, t in logs]
    projection = cluster_projection(rows)
    load = sorted([r.load_average for r in rows if r.load_average is not None] + meta.get("load_average", []))
    text = [
        "# How cost grows with the interaction log", "",
        f"Written by `python -m recsys scale --sizes {','.join(human(n) for n in sizes)} --models "
        f"{','.join(dict.fromkeys(r.model for r in rows))}` (these rows were measured in several such runs "
        "joined with `--merge`; `--help` lists the budgets). Each model is fitted and evaluated on each log "
        "in a fresh child process; "
        "**fit s** is the wall-clock time of the fit alone (not loading, not evaluating), **fit CPU s** the "
        "CPU seconds the child spent in it (all its threads), **peak MB** the child Python process's "
        "resident high-water mark over loading, fitting and evaluating (`VmHWM`), **JVM peak MB** the same "
        "for Spark's JVM (driver and local executors in one process). Local models run with one BLAS and "
        "one torch thread; Spark runs with the cores of its master URL.", "",
        f"Machine: {m.get('machine', '?')}, {cores} CPU cores, {m.get('memory_gb', '?')} GB memory, "
        f"Python {m.get('python', '?')}. "
        + (f"The machine was shared with other work while measuring (1-minute load average from {load[0]} to "
           f"{load[-1]} on {cores} cores), so wall-clock seconds are stretched and noisy; CPU seconds are the "
           "steadier figure. " if load and load[-1] > 0.5 * cores else "")
        + (f"Spark: master `{meta['spark']['master']}`, driver memory {meta['spark']['driver_memory']}. "
           if meta.get("spark") else "")
        + (f"Budgets: a fit is skipped when the model's own memory estimate exceeds {budget.get('memory_gb')} GB "
           f"or its projected fit time exceeds {budget.get('time_cap_s'):.0f} s, and a child is stopped after "
           f"twice that cap plus {CHILD_GRACE_S:.0f} s"
           + "".join(f"; `{model}` on the {human(size)} log is measured whatever its projected time (the Spark "
                     "path's benchmark row below)" for model, size in budget.get("required", []))
           + "." if budget else ""), "",
        "## The logs", "",
        f"MovieLens (ML-100K, ML-latest-small) for quality, and synthetic logs for growth: {MEAN_ACTIVITY} "
        f"interactions per user on average (at least {MIN_ACTIVITY}, lognormal tail), a catalogue of "
        f"{ITEMS_PER_ROOT:g}·√n items, Zipf-like popularity and {N_TASTES} taste clusters, generated chunk by chunk "
        "(`recsys.scale.write_synthetic`). Every log is split per user 80/20 as the benchmarks split "
        f"(ceil(0.2 n) of each user's rows held out, seed {meta.get('seed', SEED)}). NDCG@10 ranks the whole "
        f"catalogue for at most {budget.get('eval_users', EVAL_USERS):,} test users drawn with the same seed "
        "(every test user on the MovieLens sets); the count is in brackets.", "",
        *shapes, "",
        "## Every measurement", "",
        "Settings (every log alike):", "",
        *settings_lines(rows), "",
        *([f"`{', '.join(b for b in BASELINES if any(r.model == b for r in rows))}` (the most popular unseen "
           "items) is measured for the NDCG floor only and left out of the growth figures.", ""]
          if any(r.model in BASELINES for r in rows) else []),
        *results_table(rows), "",
        "NDCG@10 side by side (– not measured). The settings are the same at every size and were not tuned "
        "for any log, so these figures show that each model ran and ranked sensibly at that size (local iALS "
        "and Spark ALS share rank, alpha and sweeps but not the meaning of reg), not which model is best at "
        "it; [benchmarks.md](benchmarks.md) compares models at their tuned defaults.", "",
        *quality_table(rows), "",
        "![fit time against interactions, log-log](scale_time.png)", "",
        "![peak memory against interactions, log-log](scale_memory.png)", "",
        "## Growth exponents and the largest size each model runs at", "",
        "The exponent b of seconds = a · interactions^b, fitted by least squares on the logs: of the wall-clock "
        "fit seconds, of the fit's CPU seconds (steadier on a shared machine; Spark's include its JVM's) and of "
        f"the peak resident memory over the synthetic logs from {human(min_size)} interactions up (below that, fixed "
        "costs such as starting Spark's JVM, or the ~350 MB of libraries every Python process loads, flatten the "
        "curves), and of the wall-clock seconds over every synthetic log. 1 is linear growth. \"Largest log run\" "
        "is on this machine under the budgets above. What the algorithms predict, with the catalogue growing "
        "as √n here:", "",
        *[f"* `{key}`: {text}" for key, text in EXPECTED_GROWTH.items()], "",
        *exponent_table(rows, min_size), "",
        "## Spark path end to end at 10M interactions", "",
        "The log is read by Spark from Parquet, ALS is trained and NDCG@10 computed by Spark; the Python "
        "process that drives it (what the dashboard's process does) never holds the interactions.", "",
        *end_to_end_row(rows), "",
        "## On paper: Spark ALS on a cluster, 100M to 1B interactions", "",
    ]
    if projection:
        text += [
            f"Priced from the Spark ALS runs measured here ({projection_reference(rows)}: the line through the "
            "two largest runs), with these assumptions:", "",
            f"* the logs keep the synthetic shape ({MEAN_ACTIVITY} interactions per user, {ITEMS_PER_ROOT:g}·√n "
            "items) and the same settings (rank, sweeps);",
            "* the work is the runs' CPU seconds (Spark's JVM and the driving Python process), not their "
            "wall-clock seconds, which the busy machine stretched; it is a fixed part (start-up, job scheduling) "
            "plus a part linear in the interactions, since each sweep solves every user and item against every "
            "one of their interactions, O(nnz·r² + (users + items)·r³): the sub-linear exponent measured from 1M "
            "to 10M is the fixed part's share shrinking;",
            f"* spreading the linear part over executors x cores keeps {CLUSTER_EFFICIENCY:.0%} of linear speed-up "
            "and the fixed part is not shortened: "
            "MLlib's ALS ships each factor block to the partitions that need it once per half-sweep, which on a "
            f"network is the part that does not shrink (the local run had {cores} cores and no network);",
            "* memory per executor is the JVM's fixed part plus its measured bytes per training interaction "
            "(the line through the two largest runs' peaks) times the executor's share of the log; the factor "
            "tables, (users + items) · rank · 4 bytes, are small beside it;",
            "* no failures, stragglers or data skew; one executor per node; the data already partitioned where "
            "the executors read it.", "",
            *projection_table(projection), "",
        ]
    else:
        text += ["No Spark ALS run was measured, so there is nothing to price the projection from.", ""]
    return "\n".join(text)


def write_report(rows: list[Row], meta: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    chart(rows, "fit_s", "fit seconds", out / "scale_time.png")
    chart(rows, "peak_mb", "peak resident MB", out / "scale_memory.png")
    target = out / "scale.md"
    target.write_text(report_markdown(rows, meta))
    return target


def default_work() -> Path:
    from recsys.hosting import home

    return home() / "scale"


def add_arguments(p) -> None:
    """The options of ``python -m recsys scale``."""
    p.add_argument("--sizes", default=",".join(human(n) for n in DEFAULT_SIZES),
                   help="synthetic log sizes in interactions, comma-separated (e.g. 250k,1M,10M)")
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model keys")
    p.add_argument("--quality", default=",".join(QUALITY_DATASETS),
                   help="MovieLens folders measured for quality ('none' for no MovieLens)")
    p.add_argument("--work", default=None, help="where the generated logs are kept (default: $RECSYS_HOME/scale)")
    p.add_argument("--out", default="docs", help="where scale.md, its charts and scale.json go")
    p.add_argument("--memory-gb", type=float, default=MEMORY_BUDGET_GB,
                   help="skip a fit whose estimated memory exceeds this")
    p.add_argument("--time-cap", type=float, default=TIME_CAP_S,
                   help="skip a fit projected to take longer than this many seconds")
    p.add_argument("--budget-minutes", type=float, default=RUN_BUDGET_MIN,
                   help="start no fit once the whole run has taken this long")
    p.add_argument("--eval-users", type=int, default=EVAL_USERS, help="test users evaluated at most per log")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--merge", action="store_true",
                   help="keep the stored rows of the (dataset, model) pairs this run does not measure")
    p.add_argument("--report-only", action="store_true", help="rewrite scale.md and its charts from scale.json")


def command(args, log=print) -> int:
    out = Path(args.out)
    json_path = out / "scale.json"
    if args.report_only:
        rows, meta = load_rows(json_path)
    else:
        sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
        models = [k.strip() for k in args.models.split(",") if k.strip()]
        quality = tuple(q.strip() for q in args.quality.split(",") if q.strip() and q.strip() != "none")
        budget = Budget(args.memory_gb, args.time_cap, args.budget_minutes, args.eval_users)
        work = Path(args.work) if args.work else default_work()
        load_start = round(os.getloadavg()[0], 1)
        earlier = tuple(load_rows(json_path)[0]) if args.merge and json_path.is_file() else ()
        rows = measure(sizes, models, work, budget, quality, log=log, seed=args.seed, earlier=earlier)
        meta = {"machine": machine(), "budget": asdict(budget), "seed": args.seed,
                "load_average": [load_start, round(os.getloadavg()[0], 1)]}
        if "spark_als" in models:
            meta["spark"] = spark_settings()
        out.mkdir(parents=True, exist_ok=True)
        rows = save(rows, json_path, meta, merge=args.merge)
        meta = json.loads(json_path.read_text())["meta"]
    target = write_report(rows, meta, out)
    log(f"wrote {target}, its charts and {json_path.name}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.scale")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child_main(json.loads(args.child))
        print(CHILD_MARK + json.dumps(result, default=float), flush=True)
        return 0
    parser.error("use 'python -m recsys scale' to measure")
    return 2


if __name__ == "__main__":
    sys.exit(main())
