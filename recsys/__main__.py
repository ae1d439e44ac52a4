"""Command line: python -m recsys evaluate | bench."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from recsys.data import load
from recsys.data.errors import DataError
from recsys.data.split import make_split
from recsys.evaluation import evaluate
from recsys.models import create, registry


def cmd_evaluate(args) -> int:
    ds = load(args.data)
    split = make_split(ds, args.split, test_fraction=args.test_fraction, seed=args.seed, n=args.n)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    rows = []
    for key in keys:
        model = create(key).fit(split.train)
        report = evaluate(model, split.train, split.test, k=[args.k], bootstrap=0)
        row = {"model": key, "fit_s": round(model.fit_seconds_, 3)}
        for name in ("ndcg", "recall", "precision", "map", "mrr", "hit", "novelty"):
            row[f"{name}@{args.k}"] = report.means[f"{name}@{args.k}"]
        row[f"coverage@{args.k}"] = report.list_level[f"coverage@{args.k}"]
        if report.rmse is not None:
            row["rmse"] = report.rmse
        rows.append(row)
    print(f"{ds.name}: {split.method} split, {split.train.n_interactions} train / {split.test.n_interactions} test")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    return 0


def cmd_bench(args) -> int:
    from recsys import bench

    paths = [Path(p) for p in args.data] if args.data else [bench.find_dataset("ml-100k")]
    models = [k.strip() for k in args.models.split(",")] if args.models else None
    protocols = tuple(bench.PROTOCOLS) if args.protocol == "both" else (args.protocol,)
    rows = bench.run(paths, models, seed=args.seed, protocols=protocols)
    bench.write(rows, Path(args.out), args.seed)
    print(f"wrote {args.out}/benchmarks.md and benchmarks.json")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recsys", description="Recommender Explorer command line.")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="train models on a dataset and print the metrics table")
    ev.add_argument("--data", default="sample", help="'sample', a MovieLens folder/.zip or a CSV/TSV/Parquet file")
    ev.add_argument("--models", default="pop,item_knn", help=f"comma-separated keys from: {', '.join(sorted(registry))}")
    ev.add_argument("--split", default="random", choices=["random", "temporal", "leave_last"])
    ev.add_argument("--test-fraction", type=float, default=0.2)
    ev.add_argument("--n", type=int, default=1, help="items per user held out by leave_last")
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--k", type=int, default=10)
    ev.set_defaults(func=cmd_evaluate)
    be = sub.add_parser("bench", help="benchmark every registered model on MovieLens-100K (or --data)")
    be.add_argument("--data", nargs="*", help="dataset folders/zips (default: ml-100k from RECSYS_DATA_DIR)")
    be.add_argument("--models", help="comma-separated model keys (default: all registered)")
    be.add_argument("--seed", type=int, default=42)
    be.add_argument("--protocol", choices=["random", "leave_last", "both"], default="both",
                    help="random 80/20 per user, leave-last-out (where sequential models run), or both")
    be.add_argument("--out", default="docs")
    be.set_defaults(func=cmd_bench)
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
