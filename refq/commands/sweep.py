"""``refq sweep``: methods × bits × models × seeds × {fake-quant, integer} on Dask (an
embedded LocalCluster, a running scheduler, or this process with ``--workers 0``), each
result stored in SQLite as it ends; a re-run computes only what is missing. ``--report``
renders the stored table as Markdown, CSV and PNG plots without computing anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from refq.errors import SpecError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from refq.commands.eval import add_data_arguments

    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="repeatable: 'bundled' (default), NAME=WEIGHTS (a config of "
                        "refq.nn.CONFIGS and its .safetensors/.npz), NAME with --weights, or "
                        "a Hugging Face / timm checkpoint folder")
    parser.add_argument("--weights", type=Path,
                        help="weights of a single named --model")
    add_data_arguments(parser)
    parser.add_argument("--seed", default="0",
                        help="comma-separated seeds of the recipes and shuffle (default 0)")
    parser.add_argument("--methods", default="all",
                        help="comma-separated recipes (default: all of refq.methods.METHODS)")
    parser.add_argument("--bits", default="W8A8", help="comma-separated, e.g. W8A8,W4A4")
    parser.add_argument("--integer", action="store_true",
                        help="also the integer-only top-1 of the lowered Programs")
    parser.add_argument("--opt", action="append", metavar="METHOD.KEY=VALUE",
                        help="recipe option, repeatable (as refq eval)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads per worker (default 1 on a local cluster; the "
                        "BLAS library's choice with --workers 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of an embedded Dask LocalCluster (default: "
                        "one per CPU); 0 runs every task in this process, without Dask")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="use a running Dask cluster (e.g. tcp://host:8786) instead")
    parser.add_argument("--results", type=Path, default=Path("sweep.sqlite"),
                        help="the SQLite results database (default sweep.sqlite); created "
                        "if missing, resumed if present")
    parser.add_argument("--shard-size", type=int, default=100,
                        help="images per evaluation task (default 100)")
    parser.add_argument("--report", action="store_true",
                        help="render the tables of --results (report.md, report.csv, PNG "
                        "plots) into --out and stop; computes nothing, ignores the sweep "
                        "options")
    parser.add_argument("--out", type=Path,
                        help="folder of --report (default: RESULTS without suffix + "
                        "'-report')")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars, no cluster line")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` → [0, 1, 2]; SpecError if malformed."""
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise SpecError(f"bad --seed {text!r}: expected comma-separated integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise SpecError(f"bad --seed {text!r}: expected distinct integers")
    return seeds


def run(args: argparse.Namespace) -> int:
    from refq.commands._blas import blas_threads

    if args.threads is not None and args.threads < 1:
        raise SpecError(f"--threads must be >= 1, got {args.threads}")
    if args.report:
        return report(args)
    if args.workers is not None and args.workers < 0:
        raise SpecError(f"--workers must be >= 0, got {args.workers}")
    if args.workers is not None and args.scheduler is not None:
        raise SpecError("give --workers or --scheduler, not both")
    inline = args.workers == 0
    with blas_threads(args.threads if inline else None):
        return sweep(args, inline)


def report(args: argparse.Namespace) -> int:
    from refq.dist import Store
    from refq.sweep import csv_text, markdown, plots, setups, text

    if not Path(args.results).is_file():
        raise SpecError(f"--results {args.results}: no such file")
    out = args.out or args.results.with_name(args.results.stem + "-report")
    with Store(args.results) as store:
        tables = setups(store)
    if not tables:
        raise SpecError(f"--results {args.results}: no cells stored")
    from refq.files.atomic import write_file

    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "report.md", markdown(tables, str(args.results)).encode(), force=True)
    write_file(out / "report.csv", csv_text(tables).encode(), force=True)
    print(text(tables))
    print(f"\nwritten: {out / 'report.md'}, {out / 'report.csv'}")
    pngs = plots(tables, out)
    print(f"plots: {', '.join(str(p) for p in pngs)}")
    return 0


def sweep(args: argparse.Namespace, inline: bool) -> int:
    from refq.commands.eval import check_counts, parse_bits, parse_methods, parse_recipe_options
    from refq.dist import DaskExecutor, InlineExecutor, Store, open_cluster
    from refq.nn.sources import parse_model
    from refq.sweep import Options, build_plan, execute, pending, setups, text

    check_counts(args)
    models = args.model or ["bundled"]
    if args.weights is not None and len(models) != 1:
        raise SpecError("--weights goes with a single named --model; write NAME=FILE for "
                        "several")
    methods = parse_methods(args.methods)
    opts = Options(
        sources=[parse_model(m, args.weights) for m in models], data=args.data,
        labels=args.labels, seeds=parse_seeds(args.seed), calib=args.calib,
        limit=args.limit, methods=methods, bits=parse_bits(args.bits),
        integer=args.integer, options=parse_recipe_options(args.opt, methods),
        shard_size=args.shard_size, threads=args.threads)
    if len(set(opts.sources)) != len(opts.sources):
        raise SpecError("--model: a model is named twice")
    plan = build_plan(opts)
    with Store(args.results) as store:
        work = pending(plan, store)
        shards = sum(len(c.shards) for c in plan.cells)
        print(f"sweep: {len(plan.cells)} cells, {shards} shards; to compute: "
              f"{len(work.preps)} preps, {len(work.shards)} shards "
              f"({work.images} images) — results {args.results}")
        outcome = None
        try:
            if work.tasks == 0:
                print("nothing to compute: every result is in the database")
            elif inline:
                outcome = execute(work, store, InlineExecutor(), progress=not args.quiet)
            else:
                with open_cluster(args.workers, args.scheduler, args.threads) as cluster:
                    if not args.quiet:
                        print(f"cluster: {cluster.description}; dashboard "
                              f"{cluster.dashboard}")
                    outcome = execute(work, store, DaskExecutor(cluster.client,
                                                                cluster.description),
                                      progress=not args.quiet)
        except KeyboardInterrupt:
            print(f"refq sweep: interrupted; finished results are in {args.results}: the "
                  "same command resumes", file=sys.stderr)
            raise
        tables = setups(store, [c.cell for c in plan.cells])
        preps = [store.prep(p) for p in plan.preps]
        refused = any(row is not None and row["recipe_error"] for row in preps)
    if outcome is not None:
        print(f"computed {outcome.tasks} tasks, stored {outcome.rows} rows")
    print(text(tables))
    if outcome is not None and outcome.failures:
        print("FAILED (not stored; a re-run tries again):\n  " +
              "\n  ".join(outcome.failures))
        return 1
    return 2 if refused else 0
