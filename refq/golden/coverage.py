"""Functional coverage of golden cases: which declared bins of which kernel variant a case
hits (``refq golden coverage DIR``).

Each variant declares its coverage points beside its function in the variant registry
(``meta["coverage.bins"]``, ``"coverage.model"``, ``"coverage.unreachable"``;
:mod:`refq.ops.registry`). The *coverage mode* is an observer of the registry
(:func:`recording`): while it is on, every variant call — a kernel case re-run, each kernel
op of an interpreted program, a requantization nested in a GEMM — hands its arguments and
output to the variant's coverage model, whose sampled intermediates are counted into bins
(:mod:`refq.golden.coverage_bins`). The observer sees read-only views after the kernel has
computed its result, so results are the same byte for byte with the mode on or off
(``tests/golden/test_coverage.py``). Off (the default) it costs one empty-list test per call.
Programs are observed op by op (:func:`run_op_by_op`: each kernel op through its variant):
the interpreter's execution plan (:mod:`refq.program.run`) fuses row-block chains that call
kernel functions on blocks directly, and those calls are not observed; a test checks that
the op-by-op run gives the interpreter's tensors byte for byte.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from refq.errors import GoldenError, SpecError
from refq.golden.case import Case, read_case
from refq.golden.coverage_bins import KINDS, bin_names, masks, parse_point
from refq.ops.registry import Ref, Variant, lookup, observing, variants


@dataclass(frozen=True)
class CoverageSpec:
    """A variant's declared coverage: points, their bins, the model, unreachable bins."""

    key: str
    points: tuple[str, ...]
    model: Ref
    unreachable: Mapping[str, str]

    @property
    def bins(self) -> list[str]:
        return bin_names(self.points)

    @property
    def reachable(self) -> list[str]:
        return [b for b in self.bins if b not in self.unreachable]


def spec_of(v: Variant) -> CoverageSpec | None:
    """The coverage declared by ``v`` (None if it declares none); SpecError if malformed."""
    points = v.meta.get("coverage.bins")
    if points is None:
        return None
    model = v.meta.get("coverage.model")
    if not isinstance(model, Ref):
        raise SpecError(f"variant {v.key}: coverage.bins without a coverage.model Ref")
    pts = tuple(points)
    for p in pts:
        parse_point(p)
    unreachable = dict(v.meta.get("coverage.unreachable", {}))
    declared = set(bin_names(pts))
    for b in unreachable:
        if b not in declared:
            raise SpecError(f"variant {v.key}: unreachable bin {b!r} is not a declared bin")
    return CoverageSpec(v.key, pts, model, unreachable)


def _readonly(a: Any) -> Any:
    if isinstance(a, np.ndarray):
        view = a.view()
        view.flags.writeable = False
        return view
    return a


def sample(v: Variant, args: tuple[Any, ...], kwargs: Mapping[str, Any],
           y: Any) -> dict[str, dict[str, Any]]:
    """point name → bin → bool mask, for one call of ``v`` (empty if ``v`` declares none)."""
    spec = spec_of(v)
    if spec is None:
        return {}
    got = spec.model(tuple(_readonly(a) for a in args),
                     {k: _readonly(a) for k, a in kwargs.items()}, _readonly(y))
    out: dict[str, dict[str, Any]] = {}
    for decl in spec.points:
        kind, name = parse_point(decl)
        if name in got:
            out[name] = masks(kind, got[name])
    return out


@dataclass
class Recorder:
    """Bin hit counts per variant key (``counts[key][bin]``) and call counts."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, v: Variant, args: tuple[Any, ...], kwargs: dict[str, Any],
                 y: Any) -> None:
        spec = spec_of(v)
        if spec is None:
            return
        self.calls[v.key] = self.calls.get(v.key, 0) + 1
        table = self.counts.setdefault(v.key, dict.fromkeys(spec.bins, 0))
        for name, bins in sample(v, args, kwargs, y).items():
            for b, m in bins.items():
                table[f"{name}: {b}"] += int(np.count_nonzero(m))


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """The coverage mode: count the bins of every variant call made inside the block."""
    rec = Recorder()
    with observing(rec):
        yield rec


def case_coverage(case: Case) -> Recorder:
    """Re-run ``case`` from its stored tensors in coverage mode (kernel cases: the variant
    on the stored inputs and params; program and block cases: the stored program)."""
    with recording() as rec:
        if "program" in case.meta:
            from refq.golden.cases_program import program_of

            program, inputs = program_of(case)
            run_op_by_op(program, inputs)
        elif "op" in case.meta:
            from refq.golden.kernels import kernel_of, params_of

            v = kernel_of(case)
            v.compute({n: case.tensors[n].values.astype(np.int64) for n in v.inputs},
                      params_of(case))
    return rec


def run_op_by_op(program: Any, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Every tensor of ``program`` (a :class:`refq.program.ir.Program`) run op by op, each
    kernel op through its registry variant (so an observer sees every call) and each
    movement op through its function; no range checks (the interpreter's job)."""
    from refq.program.movement import movement

    env: dict[str, Any] = {n: np.asarray(inputs[n], dtype=np.int64) for n in program.inputs}
    env.update({n: np.asarray(a, dtype=np.int64) for n, a in program.consts.items()})
    for op in program.ops:
        args = [env[i] for i in op.inputs]
        if op.kind == "kernel":
            v = lookup(op.key)
            outs: tuple[Any, ...] = (v.compute(dict(zip(v.inputs, args, strict=True)),
                                               v.params_type.from_dict(op.params)),)
        else:
            outs = tuple(movement(op.key)(*args, **op.params))
        for name, value in zip(op.outputs, outs, strict=True):
            env[name] = np.asarray(value, dtype=np.int64)
    return {n: a for n, a in env.items() if n not in program.consts}


@dataclass
class VariantReport:
    key: str
    bins: list[str]
    unreachable: dict[str, str]
    hits: dict[str, int]
    cases: list[str]

    @property
    def reachable(self) -> list[str]:
        return [b for b in self.bins if b not in self.unreachable]

    @property
    def missing(self) -> list[str]:
        return [b for b in self.reachable if not self.hits.get(b)]

    def to_dict(self) -> dict[str, Any]:
        return {"bins": len(self.reachable), "hit": len(self.reachable) - len(self.missing),
                "missing": self.missing, "unreachable": self.unreachable,
                "hits": self.hits, "cases": self.cases}


def _case_folders(root: Path) -> dict[str, Path]:
    if (root / "meta.json").is_file():
        return {root.name: root}
    if not root.is_dir():
        raise GoldenError(f"{root}: not a golden set or case folder")
    return {p.name: p for p in sorted(root.iterdir()) if (p / "meta.json").is_file()}


def coverage(root: Path) -> dict[str, Any]:
    """The coverage report of a golden set (or one case folder): per case and variant the
    reachable bins hit, their total and the missing ones; per variant over the whole set
    every bin's hit count, the missing and the unreachable bins (with reasons); a summary.
    Every variant that declares coverage is listed, hit by the set or not."""
    per_case: dict[str, dict[str, Any]] = {}
    specs = {v.key: s for v in variants() if (s := spec_of(v)) is not None}
    total = {k: VariantReport(k, s.bins, dict(s.unreachable), dict.fromkeys(s.bins, 0), [])
             for k, s in specs.items()}
    for name, folder in _case_folders(Path(root)).items():
        rec = case_coverage(read_case(folder))
        row = {}
        for key, counts in sorted(rec.counts.items()):
            vr = VariantReport(key, specs[key].bins, dict(specs[key].unreachable), counts, [name])
            row[key] = {"hit": len(vr.reachable) - len(vr.missing), "bins": len(vr.reachable),
                        "missing": vr.missing}
            for b, n in counts.items():
                total[key].hits[b] += n
            total[key].cases.append(name)
        per_case[name] = row
    reports = {k: total[k].to_dict() for k in sorted(total)}
    n_bins = sum(r["bins"] for r in reports.values())
    n_hit = sum(r["hit"] for r in reports.values())
    return {
        "cases": per_case,
        "variants": reports,
        "summary": {"cases": len(per_case), "variants": len(reports), "bins": n_bins,
                    "hit": n_hit, "unreachable": sum(len(r["unreachable"])
                                                     for r in reports.values()),
                    "complete": [k for k, r in reports.items() if not r["missing"]]},
    }


def element_bins(case: Case, tensor: str, index: tuple[int, ...]) -> list[str]:
    """The bins the element ``index`` of ``tensor`` belongs to, from the call that produced
    it in ``case`` (kernel cases: the output ``y``; program and block cases: the kernel op
    writing ``tensor``, when all its inputs are stored or constant). Empty if unknown."""
    try:
        call = _producing_call(case, tensor)
    except (GoldenError, SpecError, KeyError):
        return []
    if call is None:
        return []
    v, args, y = call
    shape = np.shape(y)
    out = []
    for name, bins in sample(v, args, {}, y).items():
        for b, m in bins.items():
            m = np.asarray(m)
            if m.shape == shape:
                hit = bool(m[index])
            elif m.shape == shape[:-1] and len(index) == len(shape):
                hit = bool(m[index[:-1]])
            else:
                continue
            if hit:
                out.append(f"{v.key} {name}: {b}")
    return out


def _producing_call(case: Case, tensor: str) -> tuple[Variant, tuple[Any, ...], Any] | None:
    stored = {n: t.values.astype(np.int64) for n, t in case.tensors.items()}
    if "op" in case.meta and "program" not in case.meta:
        from refq.golden.kernels import kernel_of, params_of

        v = kernel_of(case)
        if tensor != "y":
            return None
        return v, (*(stored[n] for n in v.inputs), params_of(case)), stored["y"]
    if "program" not in case.meta:
        return None
    from refq.golden.cases_program import program_of

    program, _ = program_of(case)
    for op in program.ops:
        if op.kind == "kernel" and tensor in op.outputs:
            v = lookup(op.key)
            args = [stored[i] if i in stored else program.consts[i] for i in op.inputs]
            return v, (*args, v.params_type.from_dict(op.params)), stored[tensor]
    return None


def describe_kinds() -> dict[str, tuple[str, ...]]:
    """kind → its bins (for help texts)."""
    return dict(KINDS)


__all__ = [
    "CoverageSpec",
    "Recorder",
    "VariantReport",
    "case_coverage",
    "coverage",
    "describe_kinds",
    "element_bins",
    "recording",
    "run_op_by_op",
    "sample",
    "spec_of",
]
