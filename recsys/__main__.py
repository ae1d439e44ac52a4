"""Command line: python -m recsys evaluate | bench | runs | simulate | workshop | scale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from recsys.data import load
from recsys.data.errors import DataError
from recsys.data.split import SPLIT_METHODS, VALID_FRACTION, SplitConfig, make_split
from recsys.experiment import EVAL_K
from recsys.models import registry


def cmd_evaluate(args) -> int:
    """Train (or find in the experiment store) each model on the split and print its metrics at ``--k``.

    Every run goes through :func:`recsys.experiment.run` into the store the dashboard uses, under the
    id the Train page gives the same settings, so neither retrains what the other trained."""
    from recsys import experiment
    from recsys.store import ExperimentStore

    ds = load(args.data)
    source = _source_of(args.data, ds)
    validation = args.valid_fraction is not None
    config = SplitConfig(method=args.split, test_fraction=args.test_fraction, n=args.n, seed=args.seed,
                         validation=validation, valid_fraction=args.valid_fraction if validation else VALID_FRACTION)
    split = make_split(ds, config)
    store = ExperimentStore(args.store)
    store.register_dataset(ds, source)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    rows = []
    for key in keys:
        spec = experiment.RunSpec.make(ds, config, key)  # the sample and server files: shared runs
        result = experiment.run(spec, split, store=store, load=bool(args.sampled))
        report = result.report
        row = {"model": key, "run_id": result.run_id, "stored": "reused" if result.reused else "trained",
               "fit_s": round(float(result.record.timings.get("fit_seconds", 0.0)), 3)}
        if args.sampled:
            if result.model is None:
                raise DataError(f"The stored run {result.run_id} of {key} has no model to rank sampled items with; "
                                f"delete it ('python -m recsys runs delete {result.run_id}') and train it again.")
            report = experiment.evaluate_model(result.model, split.train, split.test, k=[args.k], bootstrap=0,
                                               sampled_negatives=args.sampled)
        for name in ("ndcg", "recall", "precision", "map", "mrr", "hit", "novelty"):
            row[f"{name}@{args.k}"] = report.means[f"{name}@{args.k}"]
        row[f"coverage@{args.k}"] = report.list_level[f"coverage@{args.k}"]
        if report.rmse is not None:
            row["rmse"] = report.rmse
        if validation:
            row.update(_validation_columns(result.record.extra.get("history") or []))
        rows.append(row)
    held = f" / {split.valid.n_interactions} validation" if split.valid is not None else ""
    print(f"{ds.name}: {split.method} split, {split.train.n_interactions} train{held} / "
          f"{split.test.n_interactions} test; runs in {store.root}")
    if args.sampled:
        print(f"SAMPLED protocol: each test item ranked against {args.sampled} unseen items, not the whole catalogue; "
              "these numbers are inflated and can order models differently from full ranking.")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _validation_columns(history: list) -> dict:
    """The best validation NDCG@10 of a training history and the epoch it came at (what early stopping
    kept); blank for a model that trains in one pass and so has no validation curve."""
    scored = [(entry["val_ndcg@10"], entry.get("step", i + 1)) for i, entry in enumerate(history)
              if entry.get("val_ndcg@10") is not None]
    if not scored:
        return {"best_val_ndcg@10": None, "best_epoch": None, "epochs": len(history) or None}
    best, epoch = max(scored, key=lambda pair: pair[0])
    return {"best_val_ndcg@10": best, "best_epoch": epoch, "epochs": len(history)}


def _source_of(data: str, ds) -> dict:
    """The store's descriptor of the data the command loaded: the bundled sample or a file on this disk
    (both shared runs, as on the dashboard)."""
    if data == "sample":
        return {"kind": "sample", "label": ds.name}
    return {"kind": "path", "path": str(Path(data).expanduser().resolve()), "label": ds.name}


def cmd_bench(args) -> int:
    from recsys import bench

    paths = [Path(p) for p in args.data] if args.data else [bench.find_dataset("ml-100k")]
    if args.serving:
        return cmd_bench_serving(args, paths[0])
    if args.peers:
        from recsys import peers

        algorithms = [k.strip() for k in args.models.split(",")] if args.models else None
        return peers.main(paths[0], args.seed, Path(args.out), algorithms)
    models = [k.strip() for k in args.models.split(",")] if args.models else None
    protocols = tuple(bench.PROTOCOLS) if args.protocol == "both" else (args.protocol,)
    rows = bench.run(paths, models, seed=args.seed, protocols=protocols)
    # a run of some models only updates their rows and keeps everybody else's
    bench.write(rows, Path(args.out), args.seed, merge=models is not None)
    if models is None:
        figure = bench.store_reuse(paths[0], seed=args.seed)
        print(f"experiment store, {figure['model']} on {figure['dataset']}: first request "
              f"{figure['train_seconds']:.3f} s, same configuration again {figure['reuse_seconds']:.3f} s")
        bench.write_section(Path(args.out) / "benchmarks.md", bench.STORE_HEADING, bench.store_markdown(figure))
    print(f"wrote {args.out}/benchmarks.md and benchmarks.json")
    return 0


def cmd_bench_serving(args, path: Path) -> int:
    """Only the two-stage serving figures, written as their own section of benchmarks.md."""
    from recsys import bench

    print(f"two-stage serving on {path}")
    figures = bench.serving_figures(path, seed=args.seed)
    target = Path(args.out) / "benchmarks.md"
    bench.write_section(target, bench.SERVING_HEADING, bench.serving_markdown(figures))
    print(f"wrote the serving section of {target}")
    return 0


def cmd_runs(args) -> int:
    """List, show or delete runs in the experiment store the dashboard uses."""
    import json

    from recsys.store import ExperimentStore, StoreError, run_rows

    store = ExperimentStore(args.store)
    if args.action == "list":
        rows = run_rows(store, store.list())
        if not rows:
            print(f"no runs in {store.root}")
            return 0
        frame = pd.DataFrame(rows)[["run_id", "name", "model", "dataset", "split", "ndcg@10", "status", "created",
                                    "scope"]]
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                               "{:.4f}".format):
            print(frame.to_string(index=False))
        return 0
    if not args.run_id:
        raise StoreError(f"'runs {args.action}' needs a run id; 'python -m recsys runs list' shows them.")
    record = store.get(args.run_id)
    if record is None:
        raise StoreError(f"There is no run {args.run_id} in {store.root}; 'python -m recsys runs list' shows the ids.")
    if args.action == "show":
        shown = record.to_dict()
        shown["dataset_info"] = store.dataset_info(record.dataset)
        print(json.dumps(shown, indent=2, sort_keys=True, default=str))
    else:
        store.delete(args.run_id)
        print(f"deleted run {args.run_id} ({record.name})")
    return 0


def cmd_simulate(args) -> int:
    """Run one simulation preset and print its per-round table and computed takeaway (``--json``: one JSON
    object per row of the table, with the metric names the Simulate page uses; the takeaway goes to stderr)."""
    import json

    from recsys.simulation import presets

    if args.list:
        for preset in presets.presets().values():
            rounds = f"rounds knob: {preset.rounds_knob}" if preset.rounds_knob else "no rounds"
            print(f"{preset.key:<20} {preset.label} ({rounds})")
        return 0
    if args.bench:
        return _bench_simulations(Path(args.out) / "benchmarks.md")
    if not args.preset:
        raise DataError("Name the simulation to run, e.g. 'python -m recsys simulate popularity_trap'; "
                        "'python -m recsys simulate --list' shows them.")
    preset = presets.get(args.preset)
    overrides = _knob_overrides(args.set or [])
    if args.rounds is not None:
        if preset.rounds_knob is None:
            raise DataError(f"Simulation {preset.key!r} has no rounds to change; leave out --rounds.")
        overrides[preset.rounds_knob] = args.rounds
    result = preset(seed=args.seed, **overrides)
    if args.json:
        for record in result.records():
            print(json.dumps(record))
        print(result.takeaway, file=sys.stderr)
        return 0
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(vars(preset.knobs(**overrides)).items()))
    print(f"{preset.label} ({preset.key}), seed {result.seed}: {knobs}")
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.float_format",
                           "{:.4f}".format):
        print(result.rounds.to_string(index=False))
        for title, table in result.tables.items():
            print(f"\n{title}")
            print(table.to_string(index=False))
    print(f"\n{result.takeaway}")
    return 0


SIMULATIONS_HEADING = "## Simulations"


def _bench_simulations(target: Path) -> int:
    """Time every preset's default run (seed 0) and write them as the Simulations section of ``target``.

    Wall-clock and CPU seconds both: on a shared machine other work stretches the first, the
    second counts this process's own work (all threads: numpy may use more than one core)."""
    import os
    import platform
    import time

    from recsys import bench
    from recsys.simulation import presets

    rows = []
    for preset in presets.presets().values():
        wall, cpu = time.perf_counter(), time.process_time()
        result = preset(seed=0)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows.append(f"| `{preset.key}` | {preset.label} | {result.rounds['round'].nunique()} | "
                    f"{len(result.series)} | {wall:.2f} | {cpu:.2f} |")
        print(f"{preset.key:<20} {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    text = "\n".join([
        SIMULATIONS_HEADING, "",
        "Written by `python -m recsys simulate --bench`: each preset's default run, seed 0, as "
        "`python -m recsys simulate PRESET` and the Simulate page's Run button start it (the synthetic world "
        f"each preset builds; no dataset needed). Seconds on {platform.machine()} with {os.cpu_count()} CPU "
        f"cores (load average {os.getloadavg()[0]:.1f} when measured); CPU seconds count this process's work "
        "on every core, wall-clock seconds include waiting for a busy machine.", "",
        "| preset | page label | rounds | series | wall s | CPU s |",
        "|---|---|---:|---:|---:|---:|",
        *rows, "", ""])
    bench.write_section(target, SIMULATIONS_HEADING, text)
    print(f"wrote the simulations section of {target}")
    return 0


def _knob_overrides(pairs: list[str]) -> dict[str, str]:
    """``["rounds=5", "epsilon=0.1"]`` → {"rounds": "5", ...}; the preset converts and checks each value."""
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise DataError(f"--set takes knob=value (e.g. --set rounds=5); got {pair!r}.")
        overrides[name.strip()] = value.strip()
    return overrides


def cmd_workshop(args) -> int:
    """Check a workshop preset, or train every run it needs into the store (``prepare``), so that a room
    opening any lesson trains nothing."""
    from recsys import workshop
    from recsys.store import ExperimentStore

    preset = workshop.load(args.preset)
    print(f"{preset.name}: dataset {preset.dataset if preset.dataset == 'sample' else Path(preset.dataset).name}, "
          f"{len(preset.models)} model(s), {len(preset.lessons)} lesson(s), pages {', '.join(preset.pages)}, "
          f"uploads {'on' if preset.uploads else 'off'}")
    if args.action == "check":
        return 0
    import torch

    from recsys.jobs import TORCH_THREADS

    # one torch thread, as the server's training jobs: on a busy machine more threads fight over the cores
    torch.set_num_threads(TORCH_THREADS)
    store = ExperimentStore(args.store)
    done = workshop.prepare(preset, store, report=lambda text: print(f"  {text}", flush=True))
    print(f"trained {len(done.trained)} run(s), {done.reused} already stored, into {store.root}")
    for key, message in done.failed.items():
        print(f"error: lesson {key} failed: {message}", file=sys.stderr)
    return 1 if done.failed else 0


def cmd_scale(args) -> int:
    """Measure fit time, peak memory and NDCG@10 of each model as the log grows, and write docs/scale.md."""
    from recsys import scale

    return scale.command(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recsys", description="Recommender Explorer command line.")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="train models on a dataset and print the metrics table")
    ev.add_argument("--data", default="sample", help="'sample', a MovieLens folder/.zip or a CSV/TSV/Parquet file")
    ev.add_argument("--models", default="pop,item_knn", help=f"comma-separated keys from: {', '.join(sorted(registry))}")
    ev.add_argument("--split", default="random", choices=SPLIT_METHODS)
    ev.add_argument("--test-fraction", type=float, default=0.2)
    ev.add_argument("--n", type=int, default=1, help="items per user held out by leave_last")
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--valid-fraction", type=float, default=None, metavar="F",
                    help="carve a validation part out of train (random/temporal: this share of it; leave_last: "
                         "the n items before the held-out ones), scored every epoch for early stopping "
                         "(the models' patience) and the best epoch; default: no validation part")
    ev.add_argument("--k", type=int, default=10, choices=EVAL_K, help="the list length the table shows")
    ev.add_argument("--store", default=None,
                    help="the experiment store folder the runs go to (default: $RECSYS_HOME/store, the dashboard's)")
    ev.add_argument("--sampled", type=int, default=None, metavar="N",
                    help="rank each test item against N sampled unseen items (the sampled protocol of many papers) "
                         "instead of the whole catalogue, to compare with full ranking")
    ev.set_defaults(func=cmd_evaluate)
    be = sub.add_parser("bench", help="benchmark every registered model on MovieLens-100K (or --data)")
    be.add_argument("--data", nargs="*", help="dataset folders/zips (default: ml-100k from RECSYS_DATA_DIR)")
    be.add_argument("--models", help="comma-separated model keys (default: all registered)")
    be.add_argument("--seed", type=int, default=42)
    be.add_argument("--protocol", choices=["random", "leave_last", "both"], default="both",
                    help="random 80/20 per user, leave-last-out (where sequential models run), or both")
    be.add_argument("--out", default="docs")
    be.add_argument("--serving", action="store_true",
                    help="only measure two-stage serving (ANN retrieval + re-ranking vs exact scoring) and write "
                         "its section of benchmarks.md")
    be.add_argument("--peers", action="store_true",
                    help="train the same algorithms from other libraries (pip install -r requirements-bench.txt) "
                         "on the same split, score them with our evaluator and write their section")
    be.set_defaults(func=cmd_bench)
    ru = sub.add_parser("runs", help="list, show or delete runs in the experiment store")
    ru.add_argument("action", choices=["list", "show", "delete"])
    ru.add_argument("run_id", nargs="?", help="the run's id (for show and delete)")
    ru.add_argument("--store", default=None,
                    help="the store folder (default: $RECSYS_HOME/store, i.e. ~/.recsys-explorer/store)")
    ru.set_defaults(func=cmd_runs)
    si = sub.add_parser("simulate", help="run a simulation preset (feedback loop, bandits, position bias, ...) "
                                         "and print its per-round table")
    si.add_argument("preset", nargs="?", help="the preset's key ('--list' shows them)")
    si.add_argument("--list", action="store_true", help="list the presets and exit")
    si.add_argument("--rounds", type=int, default=None, help="how many rounds to run (the preset's rounds knob)")
    si.add_argument("--seed", type=int, default=0, help="the same knobs and seed give the same rounds")
    si.add_argument("--set", action="append", metavar="KNOB=VALUE",
                    help="change one knob (repeat for more); the Simulate page shows them all")
    si.add_argument("--json", action="store_true",
                    help="print one JSON object per row of the per-round table (takeaway on stderr)")
    si.add_argument("--bench", action="store_true",
                    help="time every preset's default run and write the Simulations section of OUT/benchmarks.md")
    si.add_argument("--out", default="docs", help="where benchmarks.md is (with --bench)")
    si.set_defaults(func=cmd_simulate)
    wo = sub.add_parser("workshop", help="check a workshop preset, or train every run its lessons and models need")
    wo.add_argument("action", choices=["prepare", "check"],
                    help="prepare: train what is missing into the store; check: read the preset and say what it holds")
    wo.add_argument("preset", help="the preset file, e.g. workshop.toml")
    wo.add_argument("--store", default=None,
                    help="the store folder the runs go to (default: $RECSYS_HOME/store, the dashboard's)")
    wo.set_defaults(func=cmd_workshop)
    sc = sub.add_parser("scale", help="measure how each model's fit time and memory grow with the log "
                                      "(synthetic logs of growing size, MovieLens for quality) and write docs/scale.md")
    from recsys.scale import add_arguments

    add_arguments(sc)
    sc.set_defaults(func=cmd_scale)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
