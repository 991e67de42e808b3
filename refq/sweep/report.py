"""Sweep tables, computed from the stored rows only (never recomputed): as text (what
``refq sweep`` prints), Markdown and CSV, and PNG plots (accuracy vs bits per method,
integer − fake-quant gap; matplotlib, the ``plot`` extra).

A *setup* is everything a cell depends on but its method, bits, recipe options and mode:
model, data, labels, seed, calibration and evaluation counts, shard size, refq version.
Each setup gets a table; its lines are method × bits (× options) with the float model's
top-1 (FP), the fake-quant and the integer top-1 and Δ = integer − fake-quant (or
fake-quant − FP without an integer column).

A cell shows a number only when every shard has an ok row and every row ran the same
spec (and program): otherwise n/a with the reason — the prep's refusal, the rows' error,
"k/n shards" while it is incomplete, or the hashes that disagree.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refq.dist.store import CellTotal, Store, canonical
from refq.errors import SpecError
from refq.files.atomic import atomic_file

_LINE_KEYS = ("method", "w_bits", "a_bits", "options", "mode")


@dataclass
class Value:
    """One cell's result: top-1 (fraction) or None with a note; CPU seconds spent."""

    top1: float | None
    note: str = ""
    cpu_s: float = 0.0


@dataclass
class Line:
    """One table line: a method × bits (FP alone for method "fp")."""

    method: str
    bits: str
    options: dict[str, Any]
    fp: Value | None = None
    fq: Value | None = None
    integer: Value | None = None
    prep_cpu_s: float = 0.0

    @property
    def name(self) -> str:
        if not self.options:
            return self.method
        opts = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                        for k, v in sorted(self.options.items()))
        return f"{self.method} ({opts})"

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the prep (once) and of every evaluation row of the line."""
        rows = sum(v.cpu_s for v in (self.fq, self.integer) if v is not None)
        return self.prep_cpu_s + rows

    @property
    def notes(self) -> list[str]:
        return [v.note for v in (self.fq, self.integer) if v is not None and v.note]


@dataclass
class Setup:
    """A table: its description and lines (in the order the cells were first stored)."""

    describe: dict[str, Any]
    lines: list[Line] = field(default_factory=list)
    integer: bool = False
    fp: Value | None = None

    @property
    def title(self) -> str:
        d = self.describe
        lim = "all" if d["limit"] is None else f"at most {d['limit']}"
        return (f"model {d['model']} · data {d['data']} ({d['images']} images evaluated, "
                f"{lim}; labels {d['labels']}) · seed {d['seed']} · calibration "
                f"{d['calib']} images · shards of {d['shard_size']} · refq {d['refq']}")


def _value(cell: dict[str, Any], total: CellTotal | None, prep: dict[str, Any] | None,
           ) -> Value:
    if prep is not None and prep["recipe_error"]:
        return Value(None, prep["recipe_error"])
    if (cell["mode"] == "integer" and prep is not None and prep["lowered"]
            and prep["lowering_error"]):
        return Value(None, prep["lowering_error"])
    if total is None:
        return Value(None, f"0/{cell['shards']} shards")
    if total.errors:
        return Value(None, "; ".join(total.errors), total.cpu_s)
    if total.rows < cell["shards"]:
        return Value(None, f"{total.rows}/{cell['shards']} shards", total.cpu_s)
    want_spec = {prep["spec_sha256"]} if prep is not None else set()
    if set(total.spec_sha256) != want_spec:
        return Value(None, f"rows ran specs {list(total.spec_sha256)}, prep has "
                     f"{sorted(want_spec)}", total.cpu_s)
    if cell["mode"] == "integer":
        want = {prep["program_sha256"]} if prep is not None else set()
        if set(total.program_sha256) != want:
            return Value(None, f"rows ran programs {list(total.program_sha256)}, prep has "
                         f"{sorted(want)}", total.cpu_s)
    return Value(total.correct / total.images, "", total.cpu_s)


def setups(store: Store, only: list[str] | None = None) -> list[Setup]:
    """The tables of the stored cells (all, or the cells listed in ``only``)."""
    totals = store.totals()
    out: dict[str, Setup] = {}
    fps: dict[str, Value] = {}
    lines: dict[tuple[str, str], Line] = {}
    for cell in store.cells(only):
        cfg = json.loads(cell["config"])
        setup_cfg = {k: v for k, v in cfg.items() if k not in _LINE_KEYS}
        key = canonical(setup_cfg)
        if key not in out:
            out[key] = Setup({**setup_cfg, "model": cell["model"], "data": cell["data"],
                              "images": cell["images"]})
        setup = out[key]
        prep = store.prep(cell["prep"]) if cell["prep"] else None
        value = _value(cell, totals.get(cell["cell"]), prep)
        if cell["method"] == "fp":
            fps[key] = value
            continue
        bits = f"W{cell['w_bits']}A{cell['a_bits']}"
        line_key = (key, canonical([cell["method"], bits, cfg.get("options", {})]))
        if line_key not in lines:
            lines[line_key] = Line(cell["method"], bits, cfg.get("options", {}))
            setup.lines.append(lines[line_key])
        line = lines[line_key]
        line.prep_cpu_s = float(prep["cpu_s"]) if prep is not None else 0.0
        if cell["mode"] == "integer":
            line.integer, setup.integer = value, True
        else:
            line.fq = value
    for key, setup in out.items():
        setup.fp = fps.get(key)
        for line in setup.lines:
            line.fp = setup.fp
    return list(out.values())


def _pct(v: Value | None) -> str:
    return "n/a" if v is None or v.top1 is None else f"{100 * v.top1:.2f}"


def _delta(line: Line, integer: bool) -> str:
    ref, base = (line.integer, line.fq) if integer else (line.fq, line.fp)
    if ref is None or base is None or ref.top1 is None or base.top1 is None:
        return "n/a"
    return f"{100 * (ref.top1 - base.top1):+.2f}"


def _cells(setup: Setup) -> tuple[list[str], list[list[str]]]:
    head = ["method", "bits", "FP", "fake-quant"] + (["integer"] if setup.integer else [])
    head += ["Δ", "CPU s"]
    body = []
    for line in setup.lines:
        row = [line.name, line.bits, _pct(line.fp), _pct(line.fq)]
        row += [_pct(line.integer)] if setup.integer else []
        body.append([*row, _delta(line, setup.integer), f"{line.cpu_s:.1f}"])
    if not setup.lines:  # FP only
        body.append(["fp", "", _pct(setup.fp), "n/a"] + (["n/a"] if setup.integer else [])
                    + ["n/a", f"{setup.fp.cpu_s if setup.fp else 0:.1f}"])
    return head, body


def legend(integer: bool) -> str:
    """The line under a text table saying what its columns are."""
    delta = "Δ = integer − fake-quant" if integer else "Δ = fake-quant − FP"
    return (f"top-1 in %; {delta}, in percentage points; CPU s = calibration, lowering and "
            "evaluation CPU seconds of the line")


def text(tables: list[Setup]) -> str:
    """The tables as aligned text, each under its setup line, with the n/a reasons."""
    parts = []
    for setup in tables:
        head, body = _cells(setup)
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        lines = [setup.title,
                 " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
                 "-|-".join("-" * w for w in widths)]
        lines += [" | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
        lines.append(legend(setup.integer))
        notes = [f"  {ln.name} {ln.bits}: {n}" for ln in setup.lines for n in ln.notes]
        parts.append("\n".join(lines + (["n/a:", *notes] if notes else [])))
    return "\n\n".join(parts)


def markdown(tables: list[Setup], source: str) -> str:
    """The tables as Markdown (top-1 in %), with the database they come from."""
    out = [f"# Sweep results\n\nFrom `{source}`; top-1 in %, Δ = integer − fake-quant "
           "(fake-quant − FP without an integer column); CPU s = calibration, lowering and "
           "evaluation CPU seconds of the line.\n"]
    for setup in tables:
        head, body = _cells(setup)
        out.append(f"## {setup.title}\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join("---" for _ in head) + "|")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
        notes = [f"- {ln.name} {ln.bits}: {n}" for ln in setup.lines for n in ln.notes]
        out.append("\n" + "\n".join(["n/a:", *notes]) + "\n" if notes else "")
    return "\n".join(out)


CSV_COLUMNS = ("model", "data", "seed", "calib", "limit", "images", "labels", "refq",
               "method", "options", "bits", "fp", "fake_quant", "integer", "delta", "cpu_s",
               "note")


def csv_text(tables: list[Setup]) -> str:
    """One CSV line per table line (top-1 as fractions; empty = n/a)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)

    def num(v: Value | None) -> str:
        return "" if v is None or v.top1 is None else repr(v.top1)

    for setup in tables:
        d = setup.describe
        for ln in setup.lines:
            ref, base = (ln.integer, ln.fq) if setup.integer else (ln.fq, ln.fp)
            delta = ""
            if (ref is not None and base is not None and ref.top1 is not None
                    and base.top1 is not None):
                delta = f"{ref.top1 - base.top1:.6f}"
            w.writerow([d["model"], d["data"], d["seed"], d["calib"], d["limit"] or "",
                        d["images"], d["labels"], d["refq"], ln.method,
                        canonical(ln.options), ln.bits, num(ln.fp), num(ln.fq),
                        num(ln.integer), delta, f"{ln.cpu_s:.3f}", "; ".join(ln.notes)])
    return buf.getvalue()


def plots(tables: list[Setup], folder: Path) -> list[Path]:
    """accuracy[-k].png (top-1 vs bits per method: fake-quant solid, integer dashed, FP
    dotted) and gap[-k].png (integer − fake-quant per method and bits) per setup k."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecError("PNG plots need matplotlib: pip install 'refq[plot]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for k, setup in enumerate(tables):
        suffix = "" if len(tables) == 1 else f"-{k + 1}"
        bits = sorted({ln.bits for ln in setup.lines}, key=_bits_order)
        methods = list(dict.fromkeys(ln.name for ln in setup.lines))
        by = {(ln.name, ln.bits): ln for ln in setup.lines}
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, m in enumerate(methods):
            color = f"C{i % 10}"
            for attr, style, tag in (("fq", "-", "fake-quant"), ("integer", "--", "integer")):
                ys = [_y(by.get((m, b)), attr) for b in bits]
                if any(y is not None for y in ys):
                    ax.plot(bits, [float("nan") if y is None else y for y in ys], style,
                            marker="o", color=color, label=f"{m} {tag}")
        if setup.fp is not None and setup.fp.top1 is not None:
            ax.axhline(100 * setup.fp.top1, color="k", linestyle=":", label="FP")
        written.append(_save(plt, fig, ax, "top-1 %", setup.title,
                             folder / f"accuracy{suffix}.png"))
        if setup.integer:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            width = 0.8 / max(1, len(methods))
            for i, m in enumerate(methods):
                gaps = []
                for b in bits:
                    ln = by.get((m, b))
                    d = _delta(ln, True) if ln is not None else "n/a"
                    gaps.append(float("nan") if d == "n/a" else float(d))
                ax.bar([j + i * width for j in range(len(bits))], gaps, width, label=m)
            ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(bits))],
                          bits)
            ax.axhline(0, color="k", linewidth=0.8)
            written.append(_save(plt, fig, ax, "integer − fake-quant, top-1 points",
                                 setup.title, folder / f"gap{suffix}.png"))
    return written


def _save(plt: Any, fig: Any, ax: Any, ylabel: str, title: str, path: Path) -> Path:
    """Label ``ax`` (x: bits), write ``fig`` to ``path`` as a PNG (atomically), close it."""
    ax.set_xlabel("bits")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=7, wrap=True)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_file(path, force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _y(line: Line | None, attr: str) -> float | None:
    v = getattr(line, attr) if line is not None else None
    return None if v is None or v.top1 is None else 100 * v.top1


def _bits_order(bits: str) -> tuple[int, int]:
    w, a = bits[1:].split("A")
    return (-int(w), -int(a))


__all__ = ["CSV_COLUMNS", "Line", "Setup", "Value", "csv_text", "legend", "markdown", "plots",
           "setups", "text"]
