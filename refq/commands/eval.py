"""``refq eval``: top-1 of the FP model, of each method's fake-quant simulation and (with
``--integer``) of the lowered integer-only Program, printed as a table.

Also home of the helpers the other model commands share (model/data options, bits parsing,
the accuracy table). Heavy modules are imported inside functions so ``refq --help`` stays
fast.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refq.errors import SpecError

_BITS = re.compile(r"^[Ww](\d+)[Aa](\d+)$")
_OPT = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def parse_bits(text: str) -> list[tuple[int, int]]:
    """``"W8A8,W4A4"`` (or plain ``"8"`` = W8A8) → [(8, 8), (4, 4)]; SpecError if malformed
    or outside 2..16."""
    from refq.quant.base import check_bits  # the one check of a code width (2..16)

    out: list[tuple[int, int]] = []
    for part in (p.strip() for p in str(text).split(",")):
        m = _BITS.match(part)
        if m:
            wa = (int(m.group(1)), int(m.group(2)))
        elif part.isdigit():
            wa = (int(part), int(part))
        else:
            raise SpecError(f"bad bits {part!r}: expected WxAy such as W8A8 (comma-separated)")
        try:
            for b in wa:
                check_bits(b, f"bits {part!r}")
        except SpecError as exc:
            raise SpecError(f"bad {exc}") from None
        out.append(wa)
    if not out:
        raise SpecError("no bits given")
    return out


def parse_methods(text: str | None) -> list[str]:
    """Comma-separated method names (None or "all" → every method); SpecError if unknown."""
    from refq.methods import METHODS

    if text is None or text.strip() == "all":
        return list(METHODS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        raise SpecError(f"unknown method(s) {', '.join(bad) or repr(text)}; "
                        f"known: {', '.join(METHODS)}")
    return names


def parse_recipe_options(items: list[str] | None,
                         methods: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``["ptq4vit.n=20", "ias.sos=false"]`` → ``{"ptq4vit": {"n": 20}, "ias": {"sos": False}}``.

    Values: ``true``/``false`` → bool, ``none`` → None, an integer literal → int, a float
    literal → float, anything else a string. SpecError, before any work, if an item is not
    ``METHOD.KEY=VALUE``, names an unknown method, a key that method does not take (the
    valid keys listed, the closest suggested), a value the recipe's options refuse or,
    given ``methods`` (those being run), a method that is not among them (its option would
    be ignored).
    """
    from difflib import get_close_matches

    from refq.methods import METHODS, check_options, recipe_options

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        m = _OPT.match(item.strip())
        if not m:
            raise SpecError(f"bad recipe option {item!r}: expected METHOD.KEY=VALUE, "
                            "e.g. ptq4vit.n=20")
        method, key, text = m.group(1), m.group(2), m.group(3)
        if method not in METHODS:
            close = get_close_matches(method, METHODS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(f"recipe option {item!r}: unknown method {method!r}{hint}; "
                            f"known: {', '.join(METHODS)}")
        keys = sorted(recipe_options(method))
        if key not in keys:
            close = get_close_matches(key, keys, n=1)
            hint = f" (did you mean {method}.{close[0]}?)" if close else ""
            raise SpecError(f"recipe option {item!r}: {method} has no option {key!r}{hint}; "
                            f"{method} takes {', '.join(keys) if keys else 'no options'}")
        if methods is not None and method not in methods:
            raise SpecError(f"recipe option {item!r}: {method} is not run here (methods: "
                            f"{', '.join(methods)}); add it to --methods or drop the option")
        value: Any
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif text.lower() == "none":
            value = None
        elif re.fullmatch(r"[+-]?\d+", text):
            value = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                value = text
        out.setdefault(method, {})[key] = value
    for method, kv in out.items():
        check_options(method, kv)
    return out


def format_recipe_options(opts: dict[str, dict[str, Any]]) -> str:
    """The options as the command line spells them (``ptq4vit.n=20 ias.sos=false``)."""
    def txt(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)

    parts = [f"{m}.{k}={txt(v)}" for m, kv in opts.items() for k, v in kv.items()]
    return " ".join(parts) if parts else "none (recipe defaults)"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --weights, --data, --labels, --calib, --limit, --seed, --quiet."""
    parser.add_argument("--model", default="bundled",
                        help="'bundled' (default: the bundled digits DeiT), 'swin_digits' "
                        "(the bundled digits Swin), a model config name (see refq.nn.CONFIGS) "
                        "with --weights or as NAME=FILE, or a Hugging Face / timm checkpoint "
                        "folder (config.json + model.safetensors)")
    parser.add_argument("--weights", type=Path,
                        help=".safetensors/.npz weights (timm or HF keys) of a named --model")
    add_data_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the recipes and shuffle")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--data, --labels, --calib, --limit (shared with ``refq sweep``)."""
    parser.add_argument("--data", type=Path,
                        help="ImageFolder root (class subfolders); default: the bundled "
                        "digits (calib and test splits; bundled model only)")
    parser.add_argument("--labels", choices=("auto", "position"), default="auto",
                        help="how folder classes map to model outputs: 'auto' (default) by "
                        "the model's class names, or in sorted order when it names none and "
                        "the folder has one class per output; 'position': sorted folders "
                        "are outputs 0, 1, ...")
    parser.add_argument("--calib", type=int, default=32,
                        help="calibration images (default 32; taken from the start of a "
                        "shuffled --data folder, or from the bundled calib split)")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate at most this many images (default: all)")


@dataclass
class Workload:
    """The folded (uint8-pixel input) model, calibration and evaluation pixels/labels."""

    model: Any
    calib: Any
    images: Any
    labels: Any
    source: str


def check_counts(args: argparse.Namespace) -> None:
    """SpecError unless --calib and --limit are >= 1."""
    if args.calib is not None and args.calib < 1:
        raise SpecError(f"--calib must be >= 1, got {args.calib}")
    if args.limit is not None and args.limit < 1:
        raise SpecError(f"--limit must be >= 1, got {args.limit}")


def open_folder(source: Any, data: Path, labels: str) -> tuple[Any, list[int]]:
    """The ImageFolder ``data`` in the eval transform of ``source``'s model, and the model
    output of each of its classes; SpecError (naming both) when they do not fit."""
    from refq.nn import ImageFolder, eval_transform
    from refq.nn.fit import check_channels, class_map

    cfg = source.config()
    folder = ImageFolder(data, eval_transform(cfg))
    outputs = class_map(folder.classes, source.class_names(), cfg.num_classes,
                        data=str(data), model=source.label, by=labels)
    check_channels(folder.samples, cfg.in_chans, data=str(data), model=source.label)
    return folder, outputs


def load_workload(args: argparse.Namespace) -> Workload:
    """Build the model and data of ``args`` (see :func:`add_model_arguments`).

    The model is folded (``fold_normalization``) so every input is uint8 pixels. With
    ``--data`` the folder is shuffled with ``--seed``; the first ``--calib`` images calibrate
    and the evaluation uses all images (``--limit`` caps it); the calibration images are
    disjoint from the evaluated ones when the folder holds more than ``--calib`` images
    (:func:`refq.nn.fit.calib_eval_split`). Folder classes map to model outputs by
    :func:`refq.nn.fit.class_map` (``--labels``).
    """
    import numpy as np

    from refq.nn import load_digits
    from refq.nn.fit import calib_eval_split
    from refq.nn.sources import BUNDLED, parse_model

    check_counts(args)
    source = parse_model(args.model, args.weights)
    if args.data is None and source.kind != "bundled":
        raise SpecError(f"--model {args.model}: --data IMAGEFOLDER is required")
    fm = source.load().fold_normalization()
    if args.data is None:
        digits = load_digits()
        calib, _ = digits.split("calib")
        images, labels = digits.split("test")
        calib = calib[: args.calib]
        src = f"bundled digits test split ({images.shape[0]} images)"
    else:
        folder, outputs = open_folder(source, args.data, args.labels)
        n = len(folder)
        cal_idx, eval_idx = calib_eval_split(n, args.calib, args.seed)
        calib, _ = folder.load([int(i) for i in cal_idx])
        images, labels = folder.load([int(i) for i in eval_idx])
        labels = np.asarray(outputs, dtype=np.int64)[labels]
        src = f"{args.data} ({len(folder.classes)} classes, {n} images)"
    if source.kind != "bundled" or source.name != BUNDLED:
        src = f"model {source.describe()}; data {src}"
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    return Workload(fm, calib, images, labels, src)


def integer_top1(program: Any, images: Any, labels: Any, batch: int = 100) -> float:
    """Top-1 (fraction) of the integer-only Program: ``refq.program.run`` on uint8 pixels
    in batches, argmax of the logits tensor (``program.meta["logits"]``)."""
    import numpy as np

    from refq.program import run

    logits = str(program.meta.get("logits", program.outputs[0]))
    ok = 0
    for i in range(0, images.shape[0], batch):
        out = run(program, {"input": images[i:i + batch]}, keep="outputs")
        ok += int(np.sum(np.argmax(out[logits], axis=-1) == labels[i:i + batch]))
    return ok / max(1, int(images.shape[0]))


@dataclass
class Row:
    """One line of the accuracy table; None = n/a (the reason goes to ``note``)."""

    method: str
    bits: str
    fp: float
    fq: float | None = None
    integer: float | None = None
    note: str = ""
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds (``time.process_time``) per phase: calibrate, fake-quant, lower, integer."""


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def table(rows: list[Row], integer: bool = True) -> str:
    """The accuracy table (top-1 in %; Δ = integer − fake-quant, or fake-quant − FP
    without the integer column)."""
    head = ["method", "bits", "FP", "fake-quant"] + (["integer"] if integer else [])
    head += ["Δ", "time s"]
    body = []
    for r in rows:
        ref = r.integer if integer else r.fq
        base = r.fq if integer else r.fp
        d = "n/a" if ref is None or base is None else f"{100 * (ref - base):+.2f}"
        cells = [r.method, r.bits, _pct(r.fp), _pct(r.fq)]
        cells += [_pct(r.integer)] if integer else []
        body.append([*cells, d, f"{r.seconds:.1f}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
             "-|-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    lines.append(table_legend(integer))
    notes = [f"  {r.method} {r.bits}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["n/a:", *notes] if notes else []))


def table_legend(integer: bool) -> str:
    """The line under the accuracy table saying what its columns are."""
    delta = ("Δ = integer − fake-quant" if integer else "Δ = fake-quant − FP")
    return (f"top-1 in %; {delta}, in percentage points; time s = wall seconds of the row "
            f"(calibrate, evaluate{', lower, run' if integer else ''})")


def evaluate_grid(work: Workload, methods: list[str], bits: list[tuple[int, int]], *,
                  integer: bool, seed: int = 0, progress: bool = True,
                  fp: float | None = None,
                  keep: dict[tuple[str, int, int], tuple[Any, Any]] | None = None,
                  options: dict[str, dict[str, Any]] | None = None,
                  kernels: str | None = None,
                  ) -> list[Row]:
    """For each method × bits: quantize on ``work.calib``, fake-quant top-1 and (with
    ``integer``) the integer-only top-1 of the lowered Program. A recipe or lowering that
    raises a RefqError (e.g. not implemented yet) gives n/a cells with the reason; any other
    exception gives n/a with "FAILED" and the exception (the caller decides the exit code).
    ``keep``: if given, receives (spec, program or None) per (method, w_bits, a_bits).
    ``kernels``: the lowering's kernel choice (a profile or family=variant items)."""
    from tqdm import tqdm

    from refq.methods import evaluate

    fp_top1 = evaluate(work.model, None, work.images, work.labels) if fp is None else fp
    rows: list[Row] = []
    grid = [(m, w, a) for m in methods for (w, a) in bits]
    bar = tqdm(grid, desc="quantize+eval", unit="run", disable=not progress)
    for method, w, a in bar:
        bar.set_postfix_str(f"{method} W{w}A{a}")
        row = Row(method, f"W{w}A{a}", fp_top1)
        rows.append(row)
        t0 = time.perf_counter()
        _run_one(work, row, method, w, a, integer, seed, keep, (options or {}).get(method, {}),
                 kernels)
        row.seconds = time.perf_counter() - t0
    return rows


def _run_one(work: Workload, row: Row, method: str, w: int, a: int, integer: bool, seed: int,
             keep: dict[tuple[str, int, int], tuple[Any, Any]] | None,
             opts: dict[str, Any] | None = None, kernels: str | None = None) -> None:
    from refq.errors import RefqError
    from refq.methods import evaluate, quantize_model
    from refq.program import lower

    clock = time.process_time
    try:
        t0 = clock()
        spec = quantize_model(work.model, method, w, a, work.calib, seed=seed, **(opts or {}))
        t1 = clock()
        row.cpu["calibrate"] = t1 - t0
        row.fq = evaluate(work.model, spec, work.images, work.labels)
        row.cpu["fake-quant"] = clock() - t1
    except RefqError as exc:
        row.note = f"recipe: {exc}"
        return
    except Exception as exc:  # a recipe bug must not hide the other rows
        row.note = f"recipe FAILED: {type(exc).__name__}: {exc}"
        return
    if keep is not None:
        keep[(method, w, a)] = (spec, None)
    if not integer:
        return
    try:
        t0 = clock()
        prog = lower(work.model, spec, work.calib, kernels=kernels)
        t1 = clock()
        row.cpu["lower"] = t1 - t0
        if keep is not None:
            keep[(method, w, a)] = (spec, prog)
        row.integer = integer_top1(prog, work.images, work.labels)
        row.cpu["integer"] = clock() - t1
    except RefqError as exc:
        row.note = f"lowering: {exc}"
    except Exception as exc:  # reported in the table, not swallowed
        row.note = f"lowering FAILED: {type(exc).__name__}: {exc}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--methods", default="all",
                        help="comma-separated recipes (default: all of refq.methods.METHODS)")
    parser.add_argument("--bits", default="W8A8", help="comma-separated, e.g. W8A8,W4A4")
    parser.add_argument("--integer", action="store_true",
                        help="also the integer-only top-1 of the lowered Program")
    parser.add_argument("--kernels", default=None, metavar="PROFILE|FAMILY=VARIANT,...",
                        help="kernel variants of the lowered Program: a profile (refq — the "
                        "default —, ibert, ivit, tflite) and/or family=variant items, e.g. "
                        "softmax=shiftmax,gelu=shiftgelu (see `refq kernels`)")
    parser.add_argument("--opt", action="append", metavar="METHOD.KEY=VALUE",
                        help="recipe option, repeatable, e.g. --opt ptq4vit.n=20 "
                        "--opt ias.sos=false (see docs/methods.md)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (default: the BLAS library's own choice; 1 is "
                        "fastest for the small bundled model)")


def run(args: argparse.Namespace) -> int:
    from refq.commands._blas import blas_threads

    if args.threads is not None and args.threads < 1:
        raise SpecError(f"--threads must be >= 1, got {args.threads}")
    with blas_threads(args.threads):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    methods = parse_methods(args.methods)
    bits = parse_bits(args.bits)
    opts = parse_recipe_options(args.opt, methods)
    work = load_workload(args)
    if work.images.shape[0] == 0:
        raise SpecError("no images to evaluate")
    if args.kernels is not None:
        from refq.program.kernels import choose

        choose(args.kernels)  # an unknown profile, family or variant fails before calibrating
    rows = evaluate_grid(work, methods, bits, integer=args.integer, seed=args.seed,
                         progress=not args.quiet, options=opts, kernels=args.kernels)
    print(f"data: {work.source}; calibration {work.calib.shape[0]} images, "
          f"evaluated {work.images.shape[0]} images; top-1 in %")
    print(f"recipe options: {format_recipe_options(opts)}")
    if args.integer:
        print(f"integer kernels: {args.kernels or 'refq (default profile)'}")
    print(table(rows, integer=args.integer))
    if any("FAILED" in r.note for r in rows):
        return 1  # a bug: an exception that is not a RefqError
    # a recipe refusing its input (unknown option, unsupported bits): bad input, like SpecError
    return 2 if any(r.note.startswith("recipe: ") for r in rows) else 0
