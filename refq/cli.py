"""The ``refq`` command.

Sub-commands live in :mod:`refq.commands`, one module each, imported only when chosen, so
``refq --help`` stays fast and works without any optional extra. Nothing imports this
module; it sees every stage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from refq._version import __version__
from refq.commands._argparse import RefqArgumentParser, parse_args
from refq.errors import RefqError

# name → (module under refq.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "show refq at work on bundled data, no arguments, no download"),
    "eval": ("eval", "top-1 of FP, fake-quant and integer-only models per method and bits"),
    "sweep": ("sweep", "eval's table over methods × bits × models × seeds on Dask, resumable "
              "(SQLite)"),
    "quantize": ("quantize", "run a method recipe and save its QuantSpec"),
    "report": ("report", "per-layer error (cosine, MSE) of a quantized model, optional plots"),
    "kernels": ("kernels", "list the kernel variants: formats, widths, rounding, source, accuracy"),
    "golden": ("golden", "generate, verify, export and diff golden vectors"),
    "check": ("check", "run the conformance suite against a backend (needs refq[test])"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = RefqArgumentParser(
        prog="refq",
        description="refq — the bit-exact reference for quantized Vision Transformers.",
        epilog="Options are spelled in full: an abbreviated or unknown option is an error "
        "that names the closest options.",
    )
    parser.add_argument("--version", action="version", version=f"refq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(f"refq.commands.{module}").add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(f"refq.commands.{COMMANDS[args.command][0]}")
    try:
        return int(module.run(args))
    except RefqError as exc:
        print(f"refq {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"refq {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
