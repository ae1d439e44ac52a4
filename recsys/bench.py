"""Benchmark every registered model on real data: accuracy, coverage, time and memory."""

from __future__ import annotations

import json
import os
import platform
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from recsys import experiment
from recsys.data import load
from recsys.data.errors import DataError
from recsys.data.split import SplitConfig, make_split, random_holdout
from recsys.models import create, registry

PROTOCOLS = {
    "random": "per-user random 80/20 (ceil(0.2 n) of each user's interactions held out)",
    "leave_last": "leave the last interaction of each user out (by timestamp, ties by item id)",
}


@dataclass
class BenchRow:
    dataset: str
    protocol: str
    model: str
    label: str
    ndcg_10: float
    hit_10: float
    recall_20: float
    coverage_10: float
    fit_seconds: float
    score_seconds: float
    peak_mb: float
    params: dict


def find_dataset(name: str) -> Path:
    """A real dataset folder: RECSYS_DATA_DIR, then ../shared/datasets beside the project."""
    candidates = []
    if os.environ.get("RECSYS_DATA_DIR"):
        candidates.append(Path(os.environ["RECSYS_DATA_DIR"]) / name)
    candidates.append(Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / name)
    for path in candidates:
        if path.exists():
            return path
    raise DataError(f"Cannot find {name!r}; set RECSYS_DATA_DIR to the folder that contains it, or pass --data PATH.")


class PeakMemory:
    """Peak resident memory of this process while the block runs, in MB.

    Linux: the kernel's high-water mark (VmHWM), reset on entry through /proc/self/clear_refs,
    so native allocations (BLAS, torch) count too. Elsewhere: Python allocations (tracemalloc).
    """

    def __enter__(self):
        self.kernel = _reset_rss_peak()
        if not self.kernel:
            tracemalloc.start()
        return self

    def __exit__(self, *exc):
        if self.kernel:
            self.mb = _rss_peak_kb() / 1024
        else:
            self.mb = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _rss_peak_kb() > 0
    except OSError:
        return False


def _rss_peak_kb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return 0.0


def bench_model(key: str, train, test, dataset_name: str, protocol: str = "random",
                score_repeats: int = 3) -> BenchRow:
    """Default parameters, fitted and evaluated by the run pipeline's own steps (no bootstrap, not stored)."""
    with PeakMemory() as memory:
        model, fit_seconds = experiment.fit_model(key, experiment.normalise_params(key), train)
        users = np.arange(train.n_users)
        score_times = []
        for _ in range(score_repeats):  # the minimum of a few runs is the honest scoring cost
            start = time.perf_counter()
            model.score(users)
            score_times.append(time.perf_counter() - start)
    report = experiment.evaluate_model(model, train, test, k=(10, 20), bootstrap=0)
    return BenchRow(
        dataset=dataset_name,
        protocol=protocol,
        model=key,
        label=model.label,
        ndcg_10=report.means["ndcg@10"],
        hit_10=report.means["hit@10"],
        recall_20=report.means["recall@20"],
        coverage_10=report.list_level["coverage@10"],
        fit_seconds=fit_seconds,
        score_seconds=min(score_times),
        peak_mb=memory.mb,
        params=model.get_params(),
    )


def config(seed: int) -> dict:
    """What a reader needs to reproduce the numbers: protocol, machine and library versions."""
    import scipy
    import torch

    return {
        "split": "per-user random holdout, ceil(0.2 n) of each user's interactions in test",
        "seed": seed,
        "ranking": "full catalogue, training items excluded",
        "relevance": "every rating is an interaction",
        "parameters": "defaults",
        "machine": platform.machine(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }


def run(paths: list[Path], models: list[str] | None = None, seed: int = 42, log=print,
        protocols: tuple[str, ...] = ("random",)) -> list[BenchRow]:
    """Every model (or ``models``) on every dataset under every protocol.

    Sequential models are benchmarked only under ``leave_last`` (they predict the next
    event, which a random split does not define); the others run under every protocol, so
    the families can be compared on the same test set.
    """
    rows = []
    for path in paths:
        ds = load(path)
        log(f"{ds.name}: {ds.n_users} users, {ds.n_items} items, {ds.n_interactions} interactions")
        for protocol in protocols:
            train, test = _split(ds, protocol, seed)
            log(f" {PROTOCOLS[protocol]}")
            for key in models or sorted(registry):
                if registry[key].family == "sequential" and protocol != "leave_last":
                    continue
                try:
                    row = bench_model(key, train, test, ds.name, protocol)
                except DataError as exc:  # e.g. a content model on data without metadata
                    log(f"  {key:<16} skipped: {exc}")
                    continue
                log(f"  {key:<16} NDCG@10 {row.ndcg_10:.4f}  HR@10 {row.hit_10:.4f}  fit {row.fit_seconds:6.2f}s  "
                    f"score {row.score_seconds:6.3f}s  peak {row.peak_mb:7.1f} MB")
                rows.append(row)
    return rows


def _split(ds, protocol: str, seed: int):
    split = make_split(ds, protocol_config(protocol, seed))
    return split.train, split.test


def protocol_config(protocol: str, seed: int) -> SplitConfig:
    """The split a protocol names: random 80/20 per user with ``seed``, or the last interaction of each user."""
    if protocol == "leave_last":
        return SplitConfig(method="leave_last", n=1, seed=seed)
    return SplitConfig(method="random", test_fraction=0.2, seed=seed)


NOTES = """## Notes

* **Split rounding.** The per-user holdout puts ceil(0.2 n) of each user's interactions in the test set
  (scikit-learn's `train_test_split` convention); rounding half up instead moves NDCG@10 by about 0.005.
* **EASE and PureSVD against the published floors.** On this protocol EASE (λ = 500) gives NDCG@10
  0.443 / 0.447 / 0.446 on split seeds 42 / 1 / 2 and PureSVD (20 factors) 0.431 / 0.438 / 0.428; a
  twenty-line independent numpy/scipy implementation of each gives the same numbers on the same splits, so
  the ~0.01 gap to the 0.456 / 0.445 quoted for other libraries is in the split, not in the models.
* `item_knn` default `user_weight = 1` (each user adds 1/n to the co-occurrence of two items) lifts
  NDCG@10 on MovieLens-100K from 0.398 to 0.409 (mean of split seeds 42, 1, 2); `k = 200` was the best of 50-400.
* `user_knn` defaults (`item_weight = 0.25`, `locality = 3`, `k = 100`) lift NDCG@10 from 0.396 (plain
  cosine, k = 100) to 0.405 (same three seeds).
* `ials` defaults (64 factors, reg 50, alpha 5, 15 sweeps of 3 CG steps) were chosen on a validation split
  carved from the seed-42 training set; the Cholesky solver reaches the same NDCG (0.443) with the exact
  per-user solves and is the one to use when you need the loss to be the exact ALS objective.
* `mf_sgd` is plain SGD (the step is per example, as in Funk's SVD), 256 factors with strong per-example
  L2, a 0.975 step decay and the average of the last 20 epochs' weights: RMSE 0.9145 on the canonical
  u1.base / u1.test split (Adam with the same loss reached 0.924). Ranking by the predicted rating alone gives
  NDCG@10 0.074 (a third of popularity: an obscure film with three 5-star ratings tops every list), so with
  `loss = mse` a separate 64-factor presence head learns "did the user consume it" and the top-N list ranks by
  P(consumed) x predicted rating: NDCG@10 0.328, with `predict` (and the RMSE) bit-identical to the plain model.
  Its SGD steps are written out by hand and touch only the rows a batch read, on one torch thread: 17 s on u1
  (31 s through autograd, which zeroed and stepped every row of every table each step), same RMSE.
* `autorec` does the same with a presence decoder (the paper's masked-MSE model alone ranks at 0.168, below
  popularity); `presence_weight = 0` restores the paper's model.
* `sasrec` (1 block, 1 head, d = 64, dropout 0.2, 20 epochs of full-softmax cross-entropy at lr 0.01, windows
  of 50): HR@10 0.196 / 0.196 / 0.203 (model seeds 42 / 1 / 2) on the leave-last-out split in about 26 s. Two
  blocks at dropout 0.3 for 30 epochs (the earlier default) gave 0.188-0.200 in 41 s, and only 0.135-0.141 when
  cut to 15 epochs; one block converges in fewer epochs. Training batches group windows of similar length and
  are cut to their longest window (a third of the sample's positions had been padding), keeping each epoch's
  steps and each step's number of real positions. Sampled softmax (256 negatives, uniform or popularity with
  the logQ correction) trains faster per epoch but reached only HR@10 0.06-0.11 in 12-16 epochs.
  `markov` mixes the last 5 items (decay 0.5) and so beats the plain first-order chain (window = 1, HR@10 ~0.15).
* `lightgcn` (3 layers, 64 factors, 120 epochs of BPR at batch 16384 and lr 0.01, L2 1e-3 on the ego
  embeddings) reaches NDCG@10 0.427 / 0.438 / 0.426 on split seeds 42 / 1 / 2 (batch 4096 at lr 0.003: 0.428 /
  0.434 / 0.427, with 4x the graph propagations). With the earlier L2 of 1e-5 it overfitted: 0.412 at
  80 epochs, 0.392 at 150.
* `gru4rec` uses 128 hidden units and 10 epochs: with 64 units it reached HR@10 0.173, under the default
  `markov` (0.177).
* `bpr_mf` draws 2 negatives per triple by popularity^0.25 and steps on the higher-scoring one, 15 epochs at
  lr 0.03 decaying 0.85 an epoch, reg 0.02, gradients written out by hand (no autograd): NDCG@10 0.431 / 0.434 /
  0.428 on split seeds 42 / 1 / 2 (uniform negatives, 60 epochs: 0.409). Settings chosen on a validation split
  carved from the seed-42 training set.
* `mult_vae` (latent 100, 25 epochs at lr 0.004) and `autorec` (40 epochs at lr 0.002) were retuned the same
  way: Mult-VAE 0.435 / 0.433 / 0.430 (latent 200, 60 epochs: 0.424 / 0.425 / 0.425), AutoRec 0.436 / 0.437 /
  0.437 (0.433 / 0.437 / 0.433); both use a fused Adam step.
* `content_tfidf` sees only genres and title words on ML-100K (no tags): a cold-start tool, not a rival
  to collaborative models on warm users.
* `ease` inverts a dense items x items matrix in place by Cholesky: 0.2 s for 1.7k items, about 15 s and
  1.5 GB peak for 9.7k (numpy's general inverse took 38 s and 3.4 GB there).
* The ml-latest-small tables were run with `--models` subsets (the slow neural models were left out there to keep
  the run short); `python -m recsys bench --data path/to/ml-latest-small` runs every model.
* The MovieLens 100K rows were measured on an idle 2-core machine with torch's default two threads:
  `python -m recsys bench --protocol random` (every model, Spark ALS included: 2 min 3 s wall, 816 MB peak),
  then `--protocol both --models sasrec,gru4rec,mf_sgd,markov` again after those models changed (1 min 21 s).
  Thread count changes the order of float sums (SASRec's earlier two-block default reached HR@10 0.188 with
  two threads and 0.200 with one; one standard error on 943 users is about 0.013). The other non-sequential
  leave-last rows and the ml-latest-small rows are older, taken with one torch thread on a machine running
  other jobs: read their times as upper bounds.
* The sample_data tables are what a first session on the bundled sample costs:
  `python -m recsys bench --data sample_data` (both protocols, every model: 6 min 38 s wall, 894 MB peak) on
  the same idle machine. Every default model fits in under 30 s there. GRU4Rec is the closest: 33.7 s in that
  run and 27.2 s re-run alone (`--models gru4rec --protocol leave_last`) minutes later, the row kept here;
  epoch times of the same fit on this machine vary by up to a quarter from run to run. Its cheaper settings
  (64-112 units, 7-8 epochs, BPR-max) each lost 0.01-0.03 HR@10 on ML-100K, down to the Markov chain's level.
* Peak MB is the whole process's resident memory (Python, numpy, torch and the data), not the model alone.
"""


def store_reuse(path: Path, model: str = "ease", seed: int = 42, store_root: Path | None = None) -> dict:
    """Seconds to train ``model`` on ``path`` through the experiment store, and to ask for the same
    configuration again (found in the store: model and evaluation loaded from disk, no training).

    A temporary store is used unless ``store_root`` is given, so an earlier run never makes the
    first request look fast.
    """
    import tempfile

    from recsys.store import ExperimentStore

    ds = load(path)
    source = {"kind": "path", "path": str(path), "label": ds.name}
    spec = experiment.RunSpec.make(ds, protocol_config("random", seed), model)
    with tempfile.TemporaryDirectory() as tmp:
        store = ExperimentStore(store_root or Path(tmp) / "store")
        start = time.perf_counter()
        first = experiment.run(spec, ds, store=store, source=source)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        second = experiment.run(spec, ds, store=store, source=source)
        reuse_seconds = time.perf_counter() - start
    if not second.reused or first.record.run_id != second.record.run_id:
        raise RuntimeError("the second request trained again instead of reusing the stored run")
    return {"dataset": ds.name, "model": model, "run_id": first.record.run_id, "train_seconds": train_seconds,
            "reuse_seconds": reuse_seconds, "ndcg_10": first.report.means["ndcg@10"],
            "ndcg_10_reused": second.report.means["ndcg@10"]}


def store_markdown(figure: dict) -> str:
    """The store-reuse figure as a small markdown table."""
    return "\n".join([
        f"## Experiment store — {figure['dataset']}", "",
        f"Train `{figure['model']}` through the experiment store (fit, evaluate with bootstrap intervals, write the "
        "run), then request the same configuration again: the stored model and evaluation are loaded instead of "
        "retrained.", "",
        "| model | first request (train) s | second request (from the store) s | NDCG@10 first / again |",
        "|---|---:|---:|---:|",
        f"| `{figure['model']}` | {figure['train_seconds']:.3f} | {figure['reuse_seconds']:.3f} | "
        f"{figure['ndcg_10']:.4f} / {figure['ndcg_10_reused']:.4f} |", "", ""])


def to_markdown(rows: list[BenchRow], seed: int) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m recsys bench --data path/to/ml-100k path/to/ml-latest-small`. Each table names "
        f"its split (random splits use seed {seed}); full ranking over the catalogue with training items "
        "excluded, every rating an interaction, **default parameters**. Fit and score times are wall-clock seconds on "
        f"{platform.machine()} with {os.cpu_count()} CPU cores (score = all users, best of 3); peak MB is the "
        "process's peak resident memory during fit and scoring (it includes the loaded data and libraries). "
        "The JSON file beside this one holds the same rows, every parameter and the full configuration. "
        "`--models a,b` re-measures those models and keeps every other row, so the times in one table can "
        "come from separate runs (the machine may have been busier for some).",
        "",
    ]
    for dataset, protocol in dict.fromkeys((r.dataset, r.protocol) for r in rows):
        lines += [f"## {dataset} — {PROTOCOLS[protocol]}", "",
                  "| model | NDCG@10 | HR@10 | Recall@20 | Coverage@10 | fit s | score s | peak MB |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        group = [r for r in rows if r.dataset == dataset and r.protocol == protocol]
        for r in sorted(group, key=lambda r: -r.ndcg_10):
            lines.append(f"| `{r.model}` | {r.ndcg_10:.4f} | {r.hit_10:.4f} | {r.recall_20:.4f} | {r.coverage_10:.3f} | "
                         f"{r.fit_seconds:.3f} | {r.score_seconds:.3f} | {r.peak_mb:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n" + NOTES


def write(rows: list[BenchRow], out_dir: Path, seed: int, merge: bool = False) -> list[BenchRow]:
    """Write benchmarks.md and benchmarks.json from ``rows``; returns the rows written.

    The rows already in benchmarks.json for the same seed are kept where this run did not measure
    them: with ``merge`` (a run of some models only) only the re-measured (dataset, protocol, model)
    rows are replaced, so re-benchmarking one model does not drop the others; without it (every
    model) each (dataset, protocol) table this run measured is replaced whole (a model no longer
    registered leaves it) and the tables of other datasets stay, so a run on the sample keeps the
    MovieLens tables. The sections that other commands write (experiment store, two-stage serving)
    are carried over either way.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / "benchmarks.md", out_dir / "benchmarks.json"
    rows = merged_rows(json_path, rows, seed, whole_tables=not merge)
    kept = kept_sections(md_path.read_text()) if md_path.exists() else ""
    md_path.write_text(to_markdown(rows, seed) + kept)
    payload = {"config": config(seed), "results": [asdict(r) for r in rows]}
    json_path.write_text(json.dumps(payload, indent=2))
    return rows


def merged_rows(json_path: Path, rows: list[BenchRow], seed: int, whole_tables: bool = False) -> list[BenchRow]:
    """The rows of an earlier run with the same seed, each replaced by its new measurement when
    there is one, followed by the rows that are new. With ``whole_tables`` an earlier row of a
    (dataset, protocol) table that ``rows`` measured is dropped when it was not measured again."""
    if not json_path.exists():
        return rows
    payload = json.loads(json_path.read_text())
    if payload.get("config", {}).get("seed") != seed:
        return rows  # figures from another split cannot share a table with these
    fresh = {(r.dataset, r.protocol, r.model): r for r in rows}
    measured = {(r.dataset, r.protocol) for r in rows}
    merged = []
    for old in payload.get("results", []):
        key = (old["dataset"], old["protocol"], old["model"])
        if key in fresh:
            merged.append(fresh.pop(key))
        elif not (whole_tables and key[:2] in measured):
            merged.append(BenchRow(**old))
    return merged + list(fresh.values())


STORE_HEADING = "## Experiment store"
# written by the hosted load test (python -m tests.e2e.test_load), kept when bench rewrites the file
LOAD_HEADING = "## A room at once"
# written by `python -m recsys simulate --bench` and `python -m recsys bench --peers`, kept likewise
SIMULATIONS_HEADING = "## Simulations"
PEERS_HEADING = "## Beside the field's libraries"
SERVING_HEADING = "## Two-stage serving"
KEPT_HEADINGS = (STORE_HEADING, SERVING_HEADING, LOAD_HEADING, SIMULATIONS_HEADING, PEERS_HEADING)


def kept_sections(markdown: str) -> str:
    """The sections other commands write (``KEPT_HEADINGS``) of an existing benchmarks.md, each whole."""
    lines = markdown.splitlines(keepends=True)
    kept = []
    for heading in KEPT_HEADINGS:
        span = _section_span(lines, heading)
        if span is not None:
            kept.append("".join(lines[span[0]:span[1]]).rstrip("\n") + "\n")
    return "".join("\n" + section for section in kept)


def _section_span(lines: list[str], heading: str) -> tuple[int, int] | None:
    """[start, end) of the section whose heading line starts with ``heading``: up to the next ``## ``."""
    start = next((i for i, line in enumerate(lines) if line.startswith(heading)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


# ---------------------------------------------------------------------------- two-stage serving



def serving_figures(path: Path, seed: int = 42, retrievers: tuple[str, ...] = ("ials", "pure_svd"),
                    ranker: str = "ease", method: str = "hnsw", latency_requests: int = 500,
                    scale_sizes: tuple[int, ...] = (10_000, 100_000), log=print) -> dict:
    """Recall and per-request latency of retrieve-then-rank on ``path`` (random 80/20 split), for each
    retrieval model re-ranked by itself (ANN + exact re-scoring) and by ``ranker``, next to exact scoring;
    then the same request on synthetic catalogues of ``scale_sizes`` items grown from the first
    retriever's item vectors (where an index starts to pay)."""
    import pandas as pd

    from recsys.serving.retrieval import SEARCH_WIDTHS, catalogue_scaling, serving_tradeoff

    ds = load(path)
    train, _ = random_holdout(ds, 0.2, seed)
    heavy = create(ranker).fit(train)
    tables, models = [], []
    for key in retrievers:
        model = create(key).fit(train)
        models.append(model)
        for reranker in (model, heavy):
            result = serving_tradeoff(model, reranker, method=method, recall_users=None,
                                      latency_requests=latency_requests, seed=seed)
            table = result.table.assign(retriever=key, ranker=reranker.key)
            tables.append(table)
            best = table[table["stage"] == "two-stage"].iloc[-1]
            log(f"  {key} -> {reranker.key}: {result.backend}, {len(table) - 1} candidate counts, "
                f"recall@10 at {int(best['candidates'])} = {best['recall']:.4f}")
    scaling = pd.concat([catalogue_scaling(models[0], scale_sizes, seed=seed, method=name, search_widths=widths)
                         for name, widths in SEARCH_WIDTHS.items() if name != "exact"])
    for r in scaling.itertuples():
        log(f"  synthetic catalogue of {r.items:,} items, {r.backend} width {r.search_width}: recall@10 "
            f"{r.recall:.3f}, p50 {r.index_p50_ms:.3f} ms vs exact {r.exact_p50_ms:.3f} ms")
    homepage = homepage_figures([heavy, *models], train, seed=seed, log=log)
    return {"dataset": ds.name, "seed": seed, "method": method, "backend": result.backend,
            "latency_requests": latency_requests, "n_items": train.n_items, "scale_retriever": retrievers[0],
            "rows": [row for table in tables for row in table.to_dict("records")],
            "scaling": scaling.to_dict("records"), "homepage": homepage}


# The homepage knobs measured besides the plain page: every re-ranking step switched on.
ALL_KNOBS = {"alpha": 0.3, "mmr_lambda": 0.5, "tail_share": 0.3}


def homepage_figures(models: list, train, n_users: int = 300, seed: int = 42, log=print) -> list[dict]:
    """Whole-homepage build latency (every row, re-ranking, dedupe) per fitted model, plain and with all knobs."""
    from recsys.serving.page import PageSettings, bench_homepage

    out = []
    for model in models:
        for knobs, settings in (("default", PageSettings()), ("all knobs", PageSettings(**ALL_KNOBS))):
            figure = {**bench_homepage(model, train, n_users=n_users, seed=seed, settings=settings), "knobs": knobs}
            log(f"  homepage by {figure['model']} ({knobs}): p50 {figure['p50_ms']:.1f} ms, "
                f"p99 {figure['p99_ms']:.1f} ms")
            out.append(figure)
    return out


def serving_markdown(figures: dict) -> str:
    """The serving figures as a markdown section (heading ``SERVING_HEADING``)."""
    lines = [
        f"{SERVING_HEADING} — {figures['dataset']}", "",
        "Written by `python -m recsys bench --serving`. Per-user random 80/20 split (seed "
        f"{figures['seed']}), default parameters. Stage 1 asks a `{figures['backend']}` index over the retrieval "
        "model's item vectors (maximum inner product) for n unseen candidates; stage 2 scores only those with the "
        "ranking model and keeps its top 10. *Retrieval recall* = share of the retrieval model's exact top-10 among "
        "the candidates; *recall* = share of the ranking model's full-catalogue top-10 that the two-stage top-10 "
        f"keeps (every user). Latency = milliseconds per request, one user at a time, over {figures['latency_requests']} "
        f"requests, on {platform.machine()} with {os.cpu_count()} CPU cores; the `exact` rows score all "
        f"{figures['n_items']:,} items with the ranking model.", "",
        "| retrieval | ranking | candidates | retrieval recall@10 | recall@10 | p50 ms | p99 ms | mean ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in figures["rows"]:
        shown = "all (exact)" if r["stage"] == "exact" else str(int(r["candidates"]))
        lines.append(f"| `{r['retriever']}` | `{r['ranker']}` | {shown} | {r['retrieval_recall']:.4f} | "
                     f"{r['recall']:.4f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_ms']:.3f} |")
    lines += ["", f"At {figures['n_items']:,} items a full scoring pass is one small matrix product, so retrieval "
              "cannot beat it on time. The index pays off on large catalogues: below, the same request (top-10 by "
              f"inner product, `{figures['scale_retriever']}` user vectors) on synthetic catalogues grown from the "
              "real item vectors (resampled, plus Gaussian noise of 0.1 × each dimension's spread), 200 candidates "
              "from the index re-scored exactly, against exact scoring of every item. *Recall* = share of the exact "
              "top-10 the index path returns (no history filtering: the items are new to everyone). *Search width* "
              "= HNSW's `ef_search` (graph nodes kept during the walk) or IVF's `n_probe` (k-means cells visited, "
              "of about sqrt(items)): wider finds more and takes longer.", "",
              "| items | index | search width | build s | recall@10 | exact p50 ms | exact p99 ms | index p50 ms "
              "| index p99 ms |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in figures["scaling"]:
        lines.append(f"| {r['items']:,} | `{r['backend']}` | {r['search_width']} | {r['build_s']:.2f} | "
                     f"{r['recall']:.3f} | {r['exact_p50_ms']:.3f} | {r['exact_p99_ms']:.3f} | "
                     f"{r['index_p50_ms']:.3f} | {r['index_p99_ms']:.3f} |")
    if figures.get("homepage"):
        knobs = ", ".join(f"{k} = {v}" for k, v in ALL_KNOBS.items())
        lines += ["", f"Whole homepage per request (every row generator, re-ranking, dedupe, page metrics) for "
                  f"{figures['homepage'][0]['pages']} random users, one at a time; *all knobs* = {knobs}. "
                  "The online budget is 100 ms at the median and 200 ms at p99.", "",
                  "| model | knobs | p50 ms | p99 ms | mean ms | max ms |", "|---|---|---:|---:|---:|---:|"]
        for r in figures["homepage"]:
            lines.append(f"| `{r['model']}` | {r['knobs']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                         f"{r['mean_ms']:.1f} | {r['max_ms']:.1f} |")
    lines += ["", ""]
    return "\n".join(lines)


def write_section(markdown_path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with ``heading`` (up to the next ``## `` heading) by ``text``,
    or append it, leaving the rest of the file as it was."""
    old = markdown_path.read_text() if markdown_path.exists() else ""
    lines = old.splitlines(keepends=True)
    span = _section_span(lines, heading)
    if span is None:
        new = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + text
    else:
        new = "".join(lines[:span[0]]) + text + "".join(lines[span[1]:])
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(new)
