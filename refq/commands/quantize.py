"""``refq quantize``: run one method recipe on calibration images and save its QuantSpec
(``spec.json`` + ``params.npz``, no pickle) into a folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from refq.commands.eval import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--method", default="minmax", help="recipe name (default minmax)")
    parser.add_argument("--bits", default="W8A8", help="one WxAy, e.g. W8A8 (default)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder of the spec (created atomically; it must not "
                        "exist unless --force)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output folder")


def run(args: argparse.Namespace) -> int:
    from refq.commands.eval import load_workload, parse_bits, parse_methods
    from refq.errors import SpecError
    from refq.files.atomic import check_output
    from refq.methods import quantize_model

    methods = parse_methods(args.method)
    if len(methods) != 1 or args.method.strip() == "all":
        raise SpecError(f"--method takes one name, got {args.method!r}")
    method = methods[0]
    bits = parse_bits(args.bits)
    if len(bits) != 1:
        raise SpecError(f"--bits takes one WxAy, got {args.bits!r}")
    w, a = bits[0]
    check_output(args.out, args.force)
    work = load_workload(args)
    spec = quantize_model(work.model, method, w, a, work.calib, seed=args.seed)
    spec.save(args.out, force=args.force)
    print(f"{method} W{w}A{a}: {len(spec.weights)} weight and {len(spec.activations)} "
          f"activation quantizers, calibrated on {work.calib.shape[0]} images → {args.out}")
    return 0
