"""A TOSA 1.x graph builder that proves, op by op, that no TOSA precondition can fail.

Every tensor of the graph is a :class:`Val`: its TOSA name, shape, element type and a static
interval ``[lo, hi]`` that holds every value it can take. Each emitting method derives the
interval of its result exactly from its operands' and raises :class:`ExportError` (naming the
op and the interval) where a TOSA ``REQUIRE`` could fail on some value of the intervals — an
int32 ``ADD``/``SUB``/``REDUCE_SUM`` that could overflow, a ``MUL`` with shift whose result
could leave int32, a shift amount outside 0..31, a ``GATHER`` index outside the table, an
``INTDIV`` by a divisor interval containing 0. A graph built here therefore never reaches
an UNPREDICTABLE state on inputs within its input intervals; the few places where a caller
deliberately emits an op whose precondition depends on the data (``assume=...``) are
recorded in :attr:`Graph.assumptions`.

Profile: TOSA 1.0 PRO-INT with EXT-INT16 (int16 MATMUL → int48, RESCALE from int48) and
EXT-DOUBLEROUND (RESCALE DOUBLE_ROUND); no int64 tensors (EXT-INT64 is a TOSA 1.1 draft).
Semantics relied on (TOSA spec pseudocode): ``MUL`` int32 with shift 0 returns the low 32
bits of the product (wraps); ``LOGICAL_LEFT_SHIFT`` wraps; ``MUL`` with shift s > 0 rounds
the 64-bit product half up, ⌊(a·b + 2^(s-1)) / 2^s⌋; ``ARITHMETIC_RIGHT_SHIFT`` floors (its
``round`` option adds bit s-1); ``INTDIV`` truncates toward zero; ``CAST`` to a narrower
integer truncates.

tosa_serializer (the ``tosa`` extra) is imported when a Graph is created.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError, SpecError

RANGES: dict[str, tuple[int, int]] = {
    "bool": (0, 1),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int48": (-(2**47), 2**47 - 1),
}
NUMPY: dict[str, Any] = {
    "bool": np.bool_, "int8": np.int8, "int16": np.int16, "int32": np.int32, "int48": np.int64,
}
I32 = RANGES["int32"]


class ExportError(SpecError):
    """A refq op (or one of its parameters) cannot be expressed exactly in TOSA's integer
    widths; the message names the op, the variant and the reason."""


def load_serializer() -> Any:
    """The ``tosa_serializer`` module, or BackendError saying which extra to install."""
    try:
        import tosa_serializer
    except ImportError as exc:
        raise BackendError(
            f"TOSA export needs tosa-tools: pip install 'refq[tosa]' ({exc})"
        ) from None
    return tosa_serializer


@dataclass(frozen=True)
class Val:
    """A TOSA tensor: name, shape, element type and a proven value interval [lo, hi]."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    lo: int
    hi: int

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


def fits(lo: int, hi: int, dtype: str) -> bool:
    rlo, rhi = RANGES[dtype]
    return rlo <= lo and hi <= rhi


def smallest_dtype(lo: int, hi: int) -> str:
    """int8, int16 or int32 — the narrowest holding [lo, hi] (ExportError beyond int32)."""
    for dt in ("int8", "int16", "int32"):
        if fits(lo, hi, dt):
            return dt
    raise ExportError(f"values in [{lo}, {hi}] do not fit a TOSA int32 tensor")


def broadcast(a: tuple[int, ...], b: tuple[int, ...], what: str) -> tuple[int, ...]:
    if len(a) != len(b):
        raise ExportError(f"{what}: ranks {len(a)} and {len(b)} differ (TOSA broadcasts "
                          "equal ranks only)")
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            raise ExportError(f"{what}: shapes {a} and {b} do not broadcast")
        out.append(max(x, y))
    return tuple(out)


def _corners(a: Val, b: Val) -> list[int]:
    return [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]


@dataclass
class Graph:
    """One TOSA main block under construction (see the module docstring)."""

    name: str = "main"
    inputs: list[Val] = field(default_factory=list)
    outputs: list[Val] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    rescale_policy: str = "exact"
    """``exact``: where a RESCALE precondition cannot be proven, translations use exact
    arithmetic instead; ``native``: they keep the RESCALE and record the precondition."""
    notes: list[str] = field(default_factory=list)
    """Translation choices worth knowing (e.g. a fallback from RESCALE)."""
    uses: dict[str, int] = field(default_factory=dict)
    """Extension features used: ``int16`` (EXT-INT16: int16 MATMUL, RESCALE of int48, int16
    CLAMP), ``double_round`` (EXT-DOUBLEROUND)."""
    declared: tuple[int, int, str] | None = None
    """While a program op is translated: its output's declared range (lo, hi, format name),
    which refq's interpreter checks — a translation may rely on it (recorded as an
    assumption) where intervals alone cannot bound an intermediate."""

    def __post_init__(self) -> None:
        if self.rescale_policy not in ("exact", "native"):
            raise ExportError(f"rescale policy {self.rescale_policy!r} not in exact, native")
        self.ts = load_serializer()
        self._ser = self.ts.TosaSerializer("")
        self._count = 0
        self._names: set[str] = set()
        self._consts: dict[tuple[str, tuple[int, ...], bytes], Val] = {}
        self._objs: dict[str, Any] = {}
        self._loops = 0

    # ------------------------------------------------------------------ naming, tensors
    def _fresh(self) -> str:
        self._count += 1
        return f"_t{self._count}"

    def _claim(self, name: str | None) -> str:
        n = name or self._fresh()
        if n in self._names:
            raise ExportError(f"TOSA tensor name {n!r} used twice")
        self._names.add(n)
        return n

    def _dt(self, dtype: str) -> Any:
        return getattr(self.ts.DType, dtype.upper())

    def input(self, name: str, shape: Sequence[int], dtype: str, lo: int, hi: int) -> Val:
        """A graph input (placeholder), in call order; values promised within [lo, hi]."""
        n = self._claim(name)
        if not fits(lo, hi, dtype):
            raise ExportError(f"input {name}: [{lo}, {hi}] does not fit {dtype}")
        t = self.ts.TosaSerializerTensor(n, list(shape), self._dt(dtype))
        self._ser.addInputTensor(t)
        self._objs[n] = t
        v = Val(n, tuple(int(d) for d in shape), dtype, lo, hi)
        self.inputs.append(v)
        return v

    def output(self, v: Val) -> None:
        """Mark ``v`` as a graph output (outputs are returned in the order marked)."""
        if any(o.name == v.name for o in self.outputs):
            return
        if v.name in {i.name for i in self.inputs}:
            v = self.identity(v)
        self._ser.addOutputTensor(self._objs[v.name])
        self.outputs.append(v)

    def const(self, values: npt.ArrayLike, dtype: str | None = None,
              name: str | None = None) -> Val:
        """A constant tensor (deduplicated when unnamed); dtype defaults to the narrowest
        of int8/int16/int32 holding the values."""
        arr = np.asarray(values)
        if arr.dtype.kind not in "iub":
            raise ExportError(f"const: integer values expected, got {arr.dtype}")
        if arr.dtype.kind == "b":
            dtype = "bool"
            lo, hi = (0, 1)
        else:
            lo = int(arr.min()) if arr.size else 0
            hi = int(arr.max()) if arr.size else 0
            dtype = dtype or smallest_dtype(lo, hi)
        if not fits(lo, hi, dtype):
            raise ExportError(f"const {name or ''}: [{lo}, {hi}] does not fit {dtype}")
        data = arr.astype(NUMPY[dtype])
        key = (dtype, tuple(arr.shape), data.tobytes())
        if name is None and key in self._consts:
            return self._consts[key]
        n = self._claim(name)
        self._objs[n] = self._ser.addConst(list(arr.shape), self._dt(dtype), data, n)
        v = Val(n, tuple(int(d) for d in arr.shape), dtype, lo, hi)
        if name is None:
            self._consts[key] = v
        return v

    def scalar(self, value: int, rank: int, dtype: str = "int32") -> Val:
        """A constant of shape (1,)*rank (TOSA broadcasts equal ranks only)."""
        return self.const(np.full((1,) * rank, value, dtype=np.int64), dtype)

    def _shape(self, dims: Sequence[int]) -> str:
        arr = np.asarray(list(dims), dtype=np.int64)
        key = ("shape", tuple(arr.shape), arr.tobytes())
        if key not in self._consts:
            n = self._claim(None)
            self._ser.addConst([len(dims)], self.ts.DType.SHAPE, arr, n)
            self._consts[key] = Val(n, (len(dims),), "shape", 0, 0)
        return self._consts[key].name

    def _attr(self, kind: str, *args: Any) -> Any:
        a = self.ts.TosaSerializerAttribute()
        getattr(a, f"{kind}Attribute")(*args)
        return a

    def emit(self, op: str, ins: Sequence[str], shape: Sequence[int], dtype: str, lo: int,
             hi: int, attr: Any, name: str | None = None) -> Val:
        """Add one TOSA operator with a single output of the given type and interval."""
        if dtype != "bool" and not fits(lo, hi, dtype):
            raise ExportError(f"{op}: result interval [{lo}, {hi}] does not fit {dtype}")
        n = self._claim(name)
        t = self._ser.addIntermediate(list(shape), self._dt(dtype))
        t.name = n
        self._objs[n] = t
        self._ser.addOperator(getattr(self.ts.Op, op), list(ins), [n], attr)
        self.op_counts[op] = self.op_counts.get(op, 0) + 1
        return Val(n, tuple(int(d) for d in shape), dtype, lo, hi)

    def serialize(self) -> bytes:
        return bytes(self._ser.serialize())

    def loop(self, count: int, state: Sequence[Val],
             body: Callable[[list[Val]], Sequence[Val]]) -> list[Val]:
        """Apply ``body`` ``count`` times to the loop-carried ``state`` (one WHILE_LOOP with
        an iteration counter; EXT-CONTROLFLOW). ``state`` values carry the intervals every
        iteration must keep: the body sees them and its results must lie within them. Values
        the body needs from outside go through ``state`` unchanged (TOSA regions do not
        capture). Returns the final state."""
        if count <= 0:
            return list(state)
        self._loops += 1
        tag = f"_loop{self._loops}"
        it0 = self.const(np.array(count, dtype=np.int64), "int32")
        outs = [Val(self._claim(None), s.shape, s.dtype, s.lo, s.hi) for s in state]
        it_out = self._claim(None)
        for o in [Val(it_out, (), "int32", 0, count), *outs]:
            t = self._ser.addIntermediate(list(o.shape), self._dt(o.dtype))
            t.name = o.name
            self._objs[o.name] = t
        self._ser.addOperator(self.ts.Op.WHILE_LOOP, [it0.name, *(s.name for s in state)],
                              [it_out, *(o.name for o in outs)],
                              self._attr("WhileLoop", f"{tag}_cond", f"{tag}_body"))
        self.op_counts["WHILE_LOOP"] = self.op_counts.get("WHILE_LOOP", 0) + 1
        main = self._ser.currRegion
        saved = self._consts
        try:
            self._consts = {}
            self._ser.startRegion(f"{tag}_cond", "")
            self._ser.addBasicBlock(f"{tag}_cond")
            ins = self._region_inputs([Val("", (), "int32", 1, count), *state])
            zero = self.const(np.array(0, dtype=np.int64), "int32")
            cond = self.gt(ins[0], zero)
            self._ser.addOutputTensor(self._objs[cond.name])
            self._consts = {}
            self._ser.startRegion(f"{tag}_body", "")
            self._ser.addBasicBlock(f"{tag}_body")
            ins = self._region_inputs([Val("", (), "int32", 1, count), *state])
            new = list(body(ins[1:]))
            if len(new) != len(state):
                raise ExportError(f"loop body returned {len(new)} values for {len(state)}")
            for s, n in zip(state, new, strict=True):
                if n.shape != s.shape or n.dtype != s.dtype or n.lo < s.lo or n.hi > s.hi:
                    raise ExportError(f"loop state {n.name}: {n.dtype}{list(n.shape)} "
                                      f"[{n.lo}, {n.hi}] leaves {s.dtype}{list(s.shape)} "
                                      f"[{s.lo}, {s.hi}]")
            it_next = self.sub(ins[0], self.const(np.array(1, dtype=np.int64), "int32"))
            for v in [it_next, *new]:
                self._ser.addOutputTensor(self._objs[v.name])
        finally:
            self._consts = saved
            self._ser.currRegion = main
        return outs

    def _region_inputs(self, vals: Sequence[Val]) -> list[Val]:
        out = []
        for v in vals:
            n = self._claim(None)
            t = self.ts.TosaSerializerTensor(n, list(v.shape), self._dt(v.dtype))
            self._ser.addInputTensor(t)
            self._objs[n] = t
            out.append(Val(n, v.shape, v.dtype, v.lo, v.hi))
        return out

    # ------------------------------------------------------------------ conversions
    def cast(self, a: Val, dtype: str, name: str | None = None) -> Val:
        """CAST between integer types; exact (the interval must fit ``dtype``)."""
        if a.dtype == dtype and name is None:
            return a
        if dtype != "bool" and not fits(a.lo, a.hi, dtype):
            raise ExportError(f"CAST {a.name} [{a.lo}, {a.hi}] → {dtype} would truncate")
        if a.dtype == dtype:
            return self.identity(a, name)
        lo, hi = (a.lo, a.hi) if dtype != "bool" else (0, 1)
        return self.emit("CAST", [a.name], a.shape, dtype, lo, hi, self._attr("Cast"), name)

    def i32(self, a: Val) -> Val:
        return a if a.dtype == "int32" else self.cast(a, "int32")

    def identity(self, a: Val, name: str | None = None) -> Val:
        return self.emit("IDENTITY", [a.name], a.shape, a.dtype, a.lo, a.hi,
                         self._attr("Identity"), name)

    def narrow(self, a: Val, name: str | None = None, dtype: str | None = None) -> Val:
        """``a`` as the narrowest integer type of its interval (or ``dtype``), named."""
        dt = dtype or smallest_dtype(a.lo, a.hi)
        if a.dtype == dt and name is None:
            return a
        return self.cast(a, dt, name) if a.dtype != dt else self.identity(a, name)

    def widen(self, a: Val, lo: int, hi: int) -> Val:
        """``a`` declared with the wider interval [lo, hi] ∪ [a.lo, a.hi] (always sound; a
        loop state's interval must hold every iteration's value)."""
        nlo, nhi = min(lo, a.lo), max(hi, a.hi)
        if a.dtype != "bool" and not fits(nlo, nhi, a.dtype):
            raise ExportError(f"{a.name}: [{nlo}, {nhi}] does not fit {a.dtype}")
        return Val(a.name, a.shape, a.dtype, nlo, nhi)

    def with_interval(self, a: Val, lo: int, hi: int) -> Val:
        """``a`` with its interval narrowed to [lo, hi] ∩ [a.lo, a.hi], a bound the caller
        has proven (no op is emitted)."""
        nlo, nhi = max(lo, a.lo), min(hi, a.hi)
        if nlo > nhi:
            raise ExportError(f"{a.name}: [{lo}, {hi}] misses [{a.lo}, {a.hi}]")
        return Val(a.name, a.shape, a.dtype, nlo, nhi)

    # ------------------------------------------------------------------ int32 arithmetic
    def _bin(self, op: str, a: Val, b: Val, lo: int, hi: int, attr: Any,
             name: str | None, dtype: str = "int32",
             within: tuple[int, int, str] | None = None) -> Val:
        a, b = self.i32(a), self.i32(b)
        shape = broadcast(a.shape, b.shape, op)
        if dtype == "int32" and not fits(lo, hi, "int32"):
            if within is None or not fits(within[0], within[1], "int32"):
                raise ExportError(f"{op} {a.name}, {b.name}: result [{lo}, {hi}] may overflow "
                                  "int32")
            self.assumptions.append(within[2])
            lo, hi = max(lo, within[0]), min(hi, within[1])
        return self.emit(op, [a.name, b.name], shape, dtype, lo, hi, attr, name)

    def add(self, a: Val, b: Val, name: str | None = None,
            within: tuple[int, int, str] | None = None,
            proven: tuple[int, int] | None = None) -> Val:
        """ADD. ``within`` = (lo, hi, reason): a bound that refq's own checks guarantee
        (recorded in :attr:`assumptions`); ``proven`` = (lo, hi): a bound the caller has
        proven (e.g. a loop invariant) where the operand intervals alone do not show that
        the sum stays within int32."""
        lo, hi = a.lo + b.lo, a.hi + b.hi
        if proven is not None:
            lo, hi = max(lo, proven[0]), min(hi, proven[1])
        return self._bin("ADD", a, b, lo, hi, self._attr("Add"), name, within=within)

    def sub(self, a: Val, b: Val, name: str | None = None,
            proven: tuple[int, int] | None = None,
            within: tuple[int, int, str] | None = None) -> Val:
        """SUB (``proven``/``within`` as for :meth:`add`)."""
        lo, hi = a.lo - b.hi, a.hi - b.lo
        if proven is not None:
            lo, hi = max(lo, proven[0]), min(hi, proven[1])
        return self._bin("SUB", a, b, lo, hi, self._attr("Sub"), name, within=within)

    def addc(self, a: Val, c: int, name: str | None = None) -> Val:
        return a if c == 0 and name is None else self.add(a, self.scalar(c, a.rank), name)

    def mul(self, a: Val, b: Val, shift: int = 0, name: str | None = None,
            wrap: bool = False, proven: tuple[int, int] | None = None,
            within: tuple[int, int, str] | None = None) -> Val:
        """MUL: shift 0 → the product (exact, or its low 32 bits with ``wrap``); shift s > 0
        (int32 only) → ⌊(a·b + 2^(s-1)) / 2^s⌋, which must fit int32. ``proven``: a result
        bound the caller has proven beyond the operand intervals."""
        if not 0 <= shift <= 63:
            raise ExportError(f"MUL: shift {shift} outside 0..63")
        a, b = self.i32(a), self.i32(b)
        c = _corners(a, b)
        lo, hi = min(c), max(c)
        if shift:
            r = 1 << (shift - 1)
            lo, hi = (lo + r) >> shift, (hi + r) >> shift
        if proven is not None:
            lo, hi = max(lo, proven[0]), min(hi, proven[1])
        if not fits(lo, hi, "int32") and within is not None and fits(within[0], within[1],
                                                                     "int32"):
            self.assumptions.append(within[2])
            lo, hi = max(lo, within[0]), min(hi, within[1])
        if not fits(lo, hi, "int32"):
            if not wrap or shift:
                raise ExportError(f"MUL {a.name}·{b.name}>>{shift}: result [{lo}, {hi}] may "
                                  "leave int32")
            lo, hi = I32
        sh = self.const(np.array([shift]), "int8")
        shape = broadcast(a.shape, b.shape, "MUL")
        return self.emit("MUL", [a.name, b.name, sh.name], shape, "int32", lo, hi,
                         self._attr("Mul"), name)

    def mulc(self, a: Val, c: int, shift: int = 0, name: str | None = None,
             wrap: bool = False) -> Val:
        return self.mul(a, self.scalar(c, a.rank), shift, name, wrap)

    def _shift_amount(self, s: int | Val, rank: int, op: str) -> Val:
        if isinstance(s, int):
            if not 0 <= s <= 31:
                raise ExportError(f"{op}: shift {s} outside 0..31")
            return self.scalar(s, rank)
        if s.lo < 0 or s.hi > 31:
            raise ExportError(f"{op}: shift amounts [{s.lo}, {s.hi}] outside 0..31")
        return self.i32(s)

    def ars(self, a: Val, s: int | Val, round_: bool = False, name: str | None = None) -> Val:
        """ARITHMETIC_RIGHT_SHIFT (floor; ``round_`` adds bit s-1: half up)."""
        a = self.i32(a)
        sv = self._shift_amount(s, a.rank, "ARITHMETIC_RIGHT_SHIFT")
        slo, shi = (s, s) if isinstance(s, int) else (s.lo, s.hi)
        cands = [v >> k for v in (a.lo, a.hi) for k in (slo, shi)]
        lo, hi = min(cands), max(cands) + (1 if round_ else 0)
        shape = broadcast(a.shape, sv.shape, "ARITHMETIC_RIGHT_SHIFT")
        return self.emit("ARITHMETIC_RIGHT_SHIFT", [a.name, sv.name], shape, "int32", lo,
                         hi, self._attr("ArithmeticRightShift", round_), name)

    def shl(self, a: Val, s: int | Val, name: str | None = None, wrap: bool = False) -> Val:
        """LOGICAL_LEFT_SHIFT: a·2^s, exact (or modulo 2^32 with ``wrap``)."""
        a = self.i32(a)
        sv = self._shift_amount(s, a.rank, "LOGICAL_LEFT_SHIFT")
        slo, shi = (s, s) if isinstance(s, int) else (s.lo, s.hi)
        cands = [v << k for v in (a.lo, a.hi) for k in (slo, shi)]
        lo, hi = min(cands), max(cands)
        if not fits(lo, hi, "int32"):
            if not wrap:
                raise ExportError(f"LOGICAL_LEFT_SHIFT {a.name}: [{lo}, {hi}] leaves int32")
            lo, hi = I32
        shape = broadcast(a.shape, sv.shape, "LOGICAL_LEFT_SHIFT")
        return self.emit("LOGICAL_LEFT_SHIFT", [a.name, sv.name], shape, "int32", lo, hi,
                         self._attr("LogicalLeftShift"), name)

    def lsr(self, a: Val, s: int | Val, name: str | None = None) -> Val:
        """LOGICAL_RIGHT_SHIFT: the 32 bits of ``a`` read unsigned, shifted right."""
        a = self.i32(a)
        sv = self._shift_amount(s, a.rank, "LOGICAL_RIGHT_SHIFT")
        slo = s if isinstance(s, int) else s.lo
        shi = s if isinstance(s, int) else s.hi
        if a.lo >= 0:
            lo, hi = a.lo >> shi, a.hi >> slo
        else:
            lo, hi = 0, ((1 << 32) - 1) >> slo
            if slo == 0:
                lo, hi = I32
        shape = broadcast(a.shape, sv.shape, "LOGICAL_RIGHT_SHIFT")
        return self.emit("LOGICAL_RIGHT_SHIFT", [a.name, sv.name], shape, "int32", lo,
                         min(hi, I32[1]), self._attr("LogicalRightShift"), name)

    def band(self, a: Val, b: Val, name: str | None = None) -> Val:
        """BITWISE_AND; a non-negative operand bounds the result by itself."""
        a, b = self.i32(a), self.i32(b)
        if b.lo >= 0 or a.lo >= 0:
            hi = min(x.hi for x in (a, b) if x.lo >= 0)
            lo = 0
        else:
            lo, hi = I32
        return self._bin("BITWISE_AND", a, b, lo, hi, self._attr("BitwiseAnd"), name)

    def bandc(self, a: Val, mask: int, name: str | None = None) -> Val:
        return self.band(a, self.scalar(mask, a.rank), name)

    def bor(self, a: Val, b: Val, name: str | None = None) -> Val:
        a, b = self.i32(a), self.i32(b)
        if a.lo >= 0 and b.lo >= 0:
            lo, hi = 0, (1 << max(a.hi, b.hi).bit_length()) - 1
        else:
            lo, hi = I32
        return self._bin("BITWISE_OR", a, b, lo, hi, self._attr("BitwiseOr"), name)

    def table(self, a: Val, table: npt.ArrayLike, name: str | None = None) -> Val:
        """TABLE: an int8 input indexes a 256-entry int8 table at a + 128."""
        t = np.asarray(table, dtype=np.int64)
        if a.dtype != "int8" or t.shape != (256,):
            raise ExportError("TABLE: int8 input and a 256-entry table expected")
        tv = self.const(t, "int8")
        return self.emit("TABLE", [a.name, tv.name], a.shape, "int8", int(t.min()),
                         int(t.max()), self._attr("Table"), name)

    def bxor(self, a: Val, b: Val, name: str | None = None) -> Val:
        return self._bin("BITWISE_XOR", a, b, *I32, self._attr("BitwiseXor"), name)

    def clz(self, a: Val, name: str | None = None) -> Val:
        a = self.i32(a)
        return self.emit("CLZ", [a.name], a.shape, "int32", 0, 32, self._attr("Clz"), name)

    def intdiv(self, a: Val, b: Val, name: str | None = None) -> Val:
        """INTDIV (truncation toward zero); the divisor interval must exclude 0."""
        a, b = self.i32(a), self.i32(b)
        if b.lo <= 0 <= b.hi:
            raise ExportError(f"INTDIV {a.name}/{b.name}: divisor interval [{b.lo}, {b.hi}] "
                              "contains 0")
        qs = [_tdiv(x, y) for x in (a.lo, a.hi) for y in (b.lo, b.hi)]
        qs += [0] if a.lo <= 0 <= a.hi else []
        return self._bin("INTDIV", a, b, min(qs), max(qs), self._attr("IntDiv"), name)

    def maximum(self, a: Val, b: Val, name: str | None = None) -> Val:
        nan = self.ts.NanPropagationMode.PROPAGATE
        return self._bin("MAXIMUM", a, b, max(a.lo, b.lo), max(a.hi, b.hi),
                         self._attr("Maximum", nan), name)

    def minimum(self, a: Val, b: Val, name: str | None = None) -> Val:
        nan = self.ts.NanPropagationMode.PROPAGATE
        return self._bin("MINIMUM", a, b, min(a.lo, b.lo), min(a.hi, b.hi),
                         self._attr("Minimum", nan), name)

    def clamp(self, a: Val, lo: int, hi: int, name: str | None = None) -> Val:
        """CLAMP to [lo, hi] in ``a``'s own type (no op if the interval is inside)."""
        if lo > hi:
            raise ExportError(f"CLAMP {a.name}: min {lo} > max {hi}")
        if a.lo >= lo and a.hi <= hi and name is None:
            return a
        lo2, hi2 = max(lo, RANGES[a.dtype][0]), min(hi, RANGES[a.dtype][1])
        if a.dtype not in ("int8", "int16"):  # CLAMP is int8 (int16: EXT-INT16) only
            v = self.i32(a)
            if v.lo < lo2:
                v = self.maximum(v, self.scalar(lo2, v.rank))
            if v.hi > hi2:
                v = self.minimum(v, self.scalar(hi2, v.rank))
            return self.identity(v, name) if name else v
        dt = self._dt(a.dtype)
        if a.dtype == "int16":
            self.uses["int16"] = self.uses.get("int16", 0) + 1
        mn = self.ts.TosaSerializer.convertDataToUint8Vec(dt, [lo2])
        mx = self.ts.TosaSerializer.convertDataToUint8Vec(dt, [hi2])
        mn += [0] * (-len(mn) % 8)
        mx += [0] * (-len(mx) % 8)
        attr = self._attr("Clamp", mn, mx, self.ts.NanPropagationMode.PROPAGATE)
        nlo, nhi = min(max(a.lo, lo2), hi2), max(min(a.hi, hi2), lo2)
        return self.emit("CLAMP", [a.name], a.shape, a.dtype, nlo, nhi, attr, name)

    def select(self, c: Val, a: Val, b: Val, name: str | None = None) -> Val:
        """SELECT(c, a, b): a where c, else b (int32 unless both share a narrower type)."""
        if a.dtype != b.dtype or a.dtype == "int48":
            a, b = self.i32(a), self.i32(b)
        shape = broadcast(broadcast(c.shape, a.shape, "SELECT"), b.shape, "SELECT")
        return self.emit("SELECT", [c.name, a.name, b.name], shape, a.dtype,
                         min(a.lo, b.lo), max(a.hi, b.hi), self._attr("Select"), name)

    def _cmp(self, op: str, a: Val, b: Val, name: str | None) -> Val:
        return self._bin(op, a, b, 0, 1, self._attr(op.title().replace("_", "")), name,
                         dtype="bool")

    def ge(self, a: Val, b: Val, name: str | None = None) -> Val:
        return self._cmp("GREATER_EQUAL", a, b, name)

    def gt(self, a: Val, b: Val, name: str | None = None) -> Val:
        return self._cmp("GREATER", a, b, name)

    def eq(self, a: Val, b: Val, name: str | None = None) -> Val:
        return self._cmp("EQUAL", a, b, name)

    def land(self, a: Val, b: Val, name: str | None = None) -> Val:
        shape = broadcast(a.shape, b.shape, "LOGICAL_AND")
        return self.emit("LOGICAL_AND", [a.name, b.name], shape, "bool", 0, 1,
                         self._attr("LogicalAnd"), name)

    def lor(self, a: Val, b: Val, name: str | None = None) -> Val:
        shape = broadcast(a.shape, b.shape, "LOGICAL_OR")
        return self.emit("LOGICAL_OR", [a.name, b.name], shape, "bool", 0, 1,
                         self._attr("LogicalOr"), name)

    def lnot(self, a: Val, name: str | None = None) -> Val:
        return self.emit("LOGICAL_NOT", [a.name], a.shape, "bool", 0, 1,
                         self._attr("LogicalNot"), name)

    def b2i(self, a: Val) -> Val:
        """A bool tensor as int32 0/1."""
        return self.emit("CAST", [a.name], a.shape, "int32", 0, 1, self._attr("Cast"))

    def abs(self, a: Val, name: str | None = None) -> Val:
        a = self.i32(a)
        if a.lo == I32[0]:
            raise ExportError(f"ABS {a.name}: -2^31 has no int32 absolute value")
        lo = 0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi))
        return self.emit("ABS", [a.name], a.shape, "int32", lo, max(abs(a.lo), abs(a.hi)),
                         self._attr("Abs"), name)

    # ------------------------------------------------------------------ reductions
    def reduce(self, kind: str, a: Val, axis: int, name: str | None = None) -> Val:
        """REDUCE_SUM / REDUCE_MAX / REDUCE_MIN along ``axis`` (kept, size 1)."""
        ax = axis % a.rank
        shape = tuple(1 if i == ax else d for i, d in enumerate(a.shape))
        n = a.shape[ax]
        if kind == "SUM":
            a = self.i32(a)
            lo, hi = n * a.lo, n * a.hi
            if not fits(lo, hi, "int32"):
                raise ExportError(f"REDUCE_SUM {a.name} over {n}: [{lo}, {hi}] may overflow "
                                  "int32")
            attr = self._attr("ReduceSum", ax)
        else:
            lo, hi = a.lo, a.hi
            attr = self._attr(f"Reduce{kind.title()}", ax, self.ts.NanPropagationMode.PROPAGATE)
        return self.emit(f"REDUCE_{kind}", [a.name], shape, a.dtype, lo, hi, attr, name)

    # ------------------------------------------------------------------ data movement
    def reshape(self, a: Val, shape: Sequence[int], name: str | None = None) -> Val:
        shape = tuple(int(d) for d in shape)
        if int(np.prod(shape, dtype=np.int64)) != a.size:
            raise ExportError(f"RESHAPE {a.name}: {a.shape} → {shape} changes the size")
        if shape == a.shape and name is None:
            return a
        return self.emit("RESHAPE", [a.name, self._shape(shape)], shape, a.dtype, a.lo, a.hi,
                         self._attr("Reshape"), name)

    def transpose(self, a: Val, perm: Sequence[int], name: str | None = None) -> Val:
        perm = [int(p) % a.rank for p in perm]
        if perm == list(range(a.rank)) and name is None:
            return a
        shape = tuple(a.shape[p] for p in perm)
        return self.emit("TRANSPOSE", [a.name], shape, a.dtype, a.lo, a.hi,
                         self._attr("Transpose", perm), name)

    def concat(self, vals: Sequence[Val], axis: int, name: str | None = None) -> Val:
        dts = {v.dtype for v in vals}
        if len(dts) > 1 or "int16" in dts:  # CONCAT: int8/int32/bool in PRO-INT
            vals = [self.i32(v) for v in vals]
        ax = axis % vals[0].rank
        shape = list(vals[0].shape)
        shape[ax] = sum(v.shape[ax] for v in vals)
        return self.emit("CONCAT", [v.name for v in vals], shape, vals[0].dtype,
                         min(v.lo for v in vals), max(v.hi for v in vals),
                         self._attr("Concat", ax), name)

    def slice(self, a: Val, start: Sequence[int], size: Sequence[int],
              name: str | None = None) -> Val:
        return self.emit("SLICE", [a.name, self._shape(start), self._shape(size)], size,
                         a.dtype, a.lo, a.hi, self._attr("Slice"), name)

    def tile(self, a: Val, multiples: Sequence[int], name: str | None = None) -> Val:
        shape = [d * m for d, m in zip(a.shape, multiples, strict=True)]
        return self.emit("TILE", [a.name, self._shape(multiples)], shape, a.dtype, a.lo, a.hi,
                         self._attr("Tile"), name)

    def gather(self, values: Val, indices: Val, name: str | None = None) -> Val:
        """GATHER: values (N, K, C), int32 indices (N, W) within [0, K) → (N, W, C)."""
        n, k, c = values.shape
        if indices.lo < 0 or indices.hi >= k:
            raise ExportError(f"GATHER {values.name}: indices [{indices.lo}, {indices.hi}] "
                              f"outside 0..{k - 1}")
        indices = self.i32(indices)
        shape = (n, indices.shape[1], c)
        return self.emit("GATHER", [values.name, indices.name], shape, values.dtype,
                         values.lo, values.hi, self._attr("Gather"), name)

    def lookup(self, table: npt.ArrayLike, idx: Val, name: str | None = None,
               dtype: str | None = None) -> Val:
        """table[idx] for a 1-D constant table and an int32 index tensor of any shape (one
        GATHER over the flattened indices); the result has ``idx``'s shape."""
        t = np.asarray(table, dtype=np.int64).ravel()
        vals = self.const(t.reshape(1, -1, 1), dtype)
        flat = self.reshape(self.i32(idx), (1, idx.size))
        g = self.gather(vals, flat)
        return self.reshape(g, idx.shape, name)

    def matmul(self, a: Val, b: Val, a_zp: int = 0, b_zp: int = 0,
               name: str | None = None) -> Val:
        """MATMUL (N, H, C) x (N, C, W): int8 (zero points allowed) → int32, or int16 (zero
        points 0) → int48; the exact sum must fit the accumulator (proven from intervals)."""
        if a.dtype != b.dtype or a.dtype not in ("int8", "int16"):
            raise ExportError(f"MATMUL: operands {a.dtype}, {b.dtype} (int8 or int16 pairs)")
        if a.dtype == "int16" and (a_zp or b_zp):
            raise ExportError("MATMUL: int16 operands take no zero point")
        k = a.shape[2]
        if b.shape[1] != k or a.shape[0] != b.shape[0]:
            raise ExportError(f"MATMUL: shapes {a.shape} and {b.shape} do not chain")
        av = Val(a.name, a.shape, a.dtype, a.lo - a_zp, a.hi - a_zp)
        bv = Val(b.name, b.shape, b.dtype, b.lo - b_zp, b.hi - b_zp)
        c = _corners(av, bv)
        lo, hi = k * min(c), k * max(c)
        out = "int32" if a.dtype == "int8" else "int48"
        if out == "int48":
            self.uses["int16"] = self.uses.get("int16", 0) + 1
        if not fits(lo, hi, out):
            raise ExportError(f"MATMUL {a.name}@{b.name}: [{lo}, {hi}] may overflow {out}")
        azp = self.const(np.array([a_zp]), a.dtype)
        bzp = self.const(np.array([b_zp]), b.dtype)
        shape = (a.shape[0], a.shape[1], b.shape[2])
        return self.emit("MATMUL", [a.name, b.name, azp.name, bzp.name], shape, out, lo, hi,
                         self._attr("MatMul"), name)

    def rescale(self, x: Val, multiplier: Sequence[int], shift: Sequence[int], dtype: str,
                *, rounding: str = "SINGLE_ROUND", in_zp: int = 0, out_zp: int = 0,
                input_unsigned: bool = False, output_unsigned: bool = False,
                assume: str | None = None, name: str | None = None) -> Val:
        """RESCALE with constant multipliers/shifts (one, or one per last-axis channel).

        scale32 for int8/16/32 inputs (multiplier int32 >= 0), scale16 for int48 inputs.
        Each (multiplier, shift) needs 2 <= shift <= 62 and, for scale32, every input value
        v - in_zp within [-2^(shift-1), 2^(shift-1)); the latter is proven from the
        interval unless ``assume`` records it as a data-dependent precondition."""
        scale32 = x.dtype != "int48"
        per_channel = len(multiplier) > 1
        if not scale32:
            self.uses["int16"] = self.uses.get("int16", 0) + 1
        if rounding == "DOUBLE_ROUND":
            self.uses["double_round"] = self.uses.get("double_round", 0) + 1
        if len(multiplier) != len(shift) or (per_channel and x.shape[-1] != len(multiplier)):
            raise ExportError("RESCALE: per-channel multipliers do not match the last axis")
        v_lo, v_hi = x.lo - in_zp, x.hi - in_zp
        if input_unsigned:
            v_lo, v_hi = 0, 2 ** (8 if x.dtype == "int8" else 16) - 1
        outs: list[int] = []
        for m, s in zip(multiplier, shift, strict=True):
            if not 2 <= s <= 62:
                raise ExportError(f"RESCALE: shift {s} outside 2..62")
            if m < 0 or (not scale32 and m >= 2**15) or m >= 2**31:
                raise ExportError(f"RESCALE: multiplier {m} outside its {32 if scale32 else 16}"
                                  "-bit range")
            if scale32 and not (-(1 << (s - 1)) <= v_lo and v_hi < (1 << (s - 1))):
                if assume is None:
                    raise ExportError(f"RESCALE {x.name}: values [{v_lo}, {v_hi}] outside "
                                      f"[-2^{s - 1}, 2^{s - 1}) (shift {s})")
                self.assumptions.append(assume)
            for v in (v_lo, v_hi):
                r = 1 << (s - 1)
                if scale32 and rounding == "DOUBLE_ROUND" and s > 31:
                    r += (1 << 30) if v >= 0 else -(1 << 30)
                res = (v * m + r) >> s
                if not scale32 and not fits(res, res, "int32"):
                    if assume is None:
                        raise ExportError(f"RESCALE {x.name}: scaled int48 value {res} may "
                                          "leave int32")
                    self.assumptions.append(assume)
                    res = max(min(res, I32[1]), I32[0])
                outs.append(res + out_zp)
        olo, ohi = RANGES[dtype] if not output_unsigned else (0, 2 ** (8 if dtype == "int8"
                                                                      else 16) - 1)
        lo, hi = min(max(min(outs), olo), ohi), max(min(max(outs), ohi), olo)
        mdt = "int32" if scale32 else "int16"
        mul = self.const(np.asarray(multiplier), mdt)
        shf = self.const(np.asarray(shift), "int8")
        izp = self.const(np.array([in_zp]), x.dtype)
        ozp = self.const(np.array([out_zp]), dtype)
        attr = self._attr("Rescale", scale32, getattr(self.ts.RoundingMode, rounding),
                          per_channel, input_unsigned, output_unsigned)
        return self.emit("RESCALE", [x.name, mul.name, shf.name, izp.name, ozp.name], x.shape,
                         dtype, lo, hi, attr, name)


def _tdiv(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


__all__ = ["I32", "NUMPY", "RANGES", "ExportError", "Graph", "Val", "broadcast", "fits",
           "load_serializer", "smallest_dtype"]
