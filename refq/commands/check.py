"""``refq check``: run refq's conformance suite against a backend."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        required=True,
        help="built-in name (reference, torch, torch-cuda, onnxruntime, rtl, litert, "
        "litert-ref, litert-default, litert-optimized, torch-native, torch-native-<engine>, "
        "hls4ml, qonnx, "
        "wrong-rounding, no-saturation) or module:factory",
    )
    parser.add_argument("--golden", type=Path, help="also run the cases of this golden set")
    parser.add_argument(
        "--examples", type=int, default=100, help="hypothesis examples per op (default 100)"
    )
    parser.add_argument("--ops", help="comma-separated globs over op.variant keys or case names")
    parser.add_argument(
        "--known",
        type=Path,
        help="known-disagreements JSON file (default: the backend's own, if it has one)",
    )
    parser.add_argument(
        "--no-extras",
        action="store_true",
        help="run refq's own strategies only, not the backend's strategies and regressions",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=Path("refq-check-failures"),
        help="where minimal failing cases are written",
    )
    parser.add_argument(
        "--no-generated",
        action="store_true",
        help="run the golden cases only (no hypothesis cases)",
    )
    parser.add_argument("--replay", type=Path, help="run one saved case folder and report it")
    parser.add_argument("--workers", type=int,
                        help="split the hunt by seed over an embedded Dask LocalCluster of "
                        "this many worker processes (needs refq[dist])")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="split the hunt by seed over a running Dask cluster")
    parser.add_argument("--seeds", type=int,
                        help="with --workers/--scheduler: parts (hypothesis seeds) to split "
                        "the hunt into (default: one per worker); --examples is the total "
                        "per op")
    parser.add_argument("--seed", type=int, default=0,
                        help="with --workers/--scheduler: the first part's hypothesis seed")


def run(args: argparse.Namespace) -> int:
    from refq.crosscheck import load_backend, replay, run_suite
    from refq.crosscheck.backend import extras_of
    from refq.crosscheck.report import SuiteReport
    from refq.errors import SpecError

    split = args.workers is not None or args.scheduler is not None
    if split and args.replay:
        raise SpecError("--replay runs one case here; it takes no --workers/--scheduler")
    if args.workers is not None and args.scheduler is not None:
        raise SpecError("give --workers or --scheduler, not both")
    if args.examples < 1:
        raise SpecError(f"--examples must be >= 1, got {args.examples}")
    backend = load_backend(args.backend)
    extras = None if args.no_extras else extras_of(backend)
    if args.replay:
        report = SuiteReport(backend.name, [replay(backend, args.replay)])
    elif split:
        from refq.commands._hunt import split_hunt

        report = split_hunt(args)
    else:
        ops = [p.strip() for p in args.ops.split(",")] if args.ops else None
        report = run_suite(
            backend,
            ops=ops,
            golden=args.golden,
            examples=args.examples,
            known=args.known if args.known or extras is None else list(extras.known),
            artifacts=args.artifacts,
            generated=not args.no_generated,
            backend_spec=args.backend,
            extra_strategies=extras.strategies if extras else None,
            regressions=extras.regressions if extras else None,
            every_op_selects=True,
        )
    print(report.text())
    if args.json:
        report.write_json(args.json)
    return 0 if report.ok else 1
