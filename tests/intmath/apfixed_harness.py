"""A g++-compiled harness around the ``ap_types`` headers hls4ml ships: the oracle of
refq.intmath.apfixed.

Each executable holds one group of target types (all 35 Q×O modes of ``ap_fixed<W,W>``
and 30 of ``ap_ufixed<W,W>`` — ``ap_ufixed`` refuses AP_WRAP_SM — plus ``ap_int<W>`` and
``ap_uint<W>``, for the widths of the group) and answers, for each line ``type x f`` on
stdin, the raw W-bit code of ``Target y(v);`` where v = x·2^-f is held exactly in the
wide source ``ap_fixed<256,128>`` (x an int64, -64 < f <= 128). A target ``ap_fixed<W,I>``
with I != W is the same computation with f - (W - I) in place of f: every quantity in
``ap_fixed_base::operator=`` depends on the fractional bits only through F_source - F_target
(sh_amt, pos1, pos2, and I - S < I2 - S2 + ... rewritten as F2 - F < W2 - W + ...); the
``EXTRA`` group instantiates such types (and int64 sources ``ap_fixed<64, 64-f>``) directly
to check that.

Executables are cached in ``$TMPDIR/refq-apfixed-<hash>/`` keyed by the generated source,
every header file and the compiler's version, so a rebuild happens only when one changes;
built into a temporary name and renamed (concurrent sessions never see half a binary).
Workers are persistent processes: a batch is written, then exactly as many answers read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from refq.intmath.apfixed import OVERFLOW_MODES, QUANT_MODES, ApType

WIDE_F = 128
"""Fractional bits of the harness's wide source ``ap_fixed<256,128>``."""


def ap_types_dir() -> Path | None:
    """The ``ap_types`` folder of the installed hls4ml (found without importing it)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "templates/vivado/ap_types"
    return path if (path / "ap_fixed.h").is_file() else None


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


@dataclass(frozen=True)
class Target:
    """One target type of the harness: an ApType with I = W, or ap_[u]int<W>."""

    width: int
    signed: bool
    quantization: str
    overflow: str
    is_int: bool = False

    def cxx(self) -> str:
        if self.is_int:
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        base = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{base}<{self.width},{self.width},{self.quantization},{self.overflow}>"


def targets_of_width(width: int) -> list[Target]:
    out = []
    for signed in (True, False):
        if signed and width < 2:
            continue
        for q in QUANT_MODES:
            for o in OVERFLOW_MODES:
                if not signed and o == "AP_WRAP_SM":
                    continue
                out.append(Target(width, signed, q, o))
        out.append(Target(width, signed, "AP_TRN_ZERO", "AP_WRAP", is_int=True))
    return out


def target_of(t: ApType) -> Target:
    return Target(t.width, t.signed, t.quantization, t.overflow)


_PRELUDE = """
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include "ap_fixed.h"
#include "ap_int.h"
typedef ap_fixed<256, 128> wide_t;
static wide_t wide(long long x, int f) {
  ap_int<64> xi = x;
  wide_t v = xi;
  if (f > 0) v >>= f; else if (f < 0) v <<= -f;
  return v;
}
typedef unsigned long long (*fn_t)(long long, int);
template <class T, int W> static unsigned long long cast_wide(long long x, int f) {
  T r(wide(x, f));
  ap_uint<W> raw = r.range(W - 1, 0);
  return raw.to_uint64();
}
template <class S, class T, int W> static unsigned long long cast_from(long long x, int f) {
  S s; s.range(63, 0) = ap_int<64>(x);  /* raw x in a 64-bit source */
  T r(s);
  ap_uint<W> raw = r.range(W - 1, 0);
  (void)f;
  return raw.to_uint64();
}
"""

_MAIN = """
int main() {
  const int n_fn = sizeof(TABLE) / sizeof(TABLE[0]);
  long n;
  while (std::scanf("%ld", &n) == 1) {
    for (long i = 0; i < n; ++i) {
      int idx, f; long long x;
      if (std::scanf("%d %lld %d", &idx, &x, &f) != 3 || idx < 0 || idx >= n_fn) return 2;
      std::printf("%llu\\n", TABLE[idx](x, f));
    }
    std::fflush(stdout);
  }
  return 0;
}
"""


def source_for(entries: Sequence[str]) -> str:
    """C++ source with ``TABLE`` = the given function-pointer expressions."""
    body = ",\n".join(f"  &{e}" for e in entries)
    return f"{_PRELUDE}\nstatic const fn_t TABLE[] = {{\n{body}\n}};\n{_MAIN}"


def width_entries(width: int) -> tuple[list[Target], list[str]]:
    ts = targets_of_width(width)
    return ts, [f"cast_wide<{t.cxx()}, {t.width}>" for t in ts]


@dataclass(frozen=True)
class ExtraCase:
    """A direct instantiation: source ``ap_fixed<64, 64 - src_frac>`` (or the wide source
    when ``src_frac`` is None) to target ``ApType``."""

    target: ApType
    src_frac: int | None


EXTRA_TYPES: tuple[tuple[int, int, bool], ...] = (
    (8, 3, True), (8, -2, True), (12, 20, False), (64, 32, True), (16, 6, True), (8, 0, True),
    (8, 11, True), (6, 1, False), (33, 17, True), (63, 0, False),
)
"""(W, I, signed) of the direct instantiations; the first two form the small group."""
EXTRA_SOURCES: tuple[int | None, ...] = (None, 0, 31, 12)
"""Sources: None = the wide ``ap_fixed<256,128>``, else ``ap_fixed<64, 64 - f>`` (the first
three form the small group)."""


def extra_cases(full: bool = False) -> list[ExtraCase]:
    """Direct instantiations: every Q×O mode of each EXTRA type from each EXTRA source
    (``full``) or from the small groups."""
    types = EXTRA_TYPES if full else EXTRA_TYPES[:2]
    sources = EXTRA_SOURCES if full else EXTRA_SOURCES[:3]
    out = []
    for w, i, s in types:
        for q in QUANT_MODES:
            for o in OVERFLOW_MODES:
                if not s and o == "AP_WRAP_SM":
                    continue
                for src in sources:
                    out.append(ExtraCase(ApType(w, i, s, q, o), src))  # type: ignore[arg-type]
    return out


def _extra_entry(c: ExtraCase) -> str:
    t = c.target
    base = "ap_fixed" if t.signed else "ap_ufixed"
    cxx = f"{base}<{t.width},{t.int_bits},{t.quantization},{t.overflow}>"
    if c.src_frac is None:
        return f"cast_wide<{cxx}, {t.width}>"
    return f"cast_from<ap_fixed<64, {64 - c.src_frac}>, {cxx}, {t.width}>"


class Harness:
    """Builds (or finds cached) executables and answers batches of casts."""

    def __init__(self, cache_root: Path | None = None, full_extra: bool = False) -> None:
        inc = ap_types_dir()
        cxx = compiler()
        if inc is None or cxx is None:
            raise RuntimeError("needs hls4ml's ap_types headers and g++")
        self.include = inc
        self.cxx = cxx
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
        h = hashlib.sha256(version.encode())
        for p in sorted(inc.glob("*.h")):
            h.update(p.name.encode() + p.read_bytes())
        h.update(source_for(["x"]).encode())
        base = cache_root or Path(tempfile.gettempdir())
        self.root = base / f"refq-apfixed-{h.hexdigest()[:16]}"
        self.root.mkdir(parents=True, exist_ok=True)
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._lock = threading.Lock()
        self.extra = extra_cases(full_extra)
        self._extra_name = "extra-full" if full_extra else "extra"
        self._width_index = {w: {t: i for i, t in enumerate(width_entries(w)[0])}
                             for w in range(1, 65)}

    # ----------------------------------------------------------------- building
    def _exe(self, name: str, entries: Sequence[str]) -> Path:
        src = source_for(entries)
        digest = hashlib.sha256(src.encode()).hexdigest()[:12]
        exe = self.root / f"{name}-{digest}"
        if exe.exists():
            return exe
        fd, tmp_src = tempfile.mkstemp(suffix=".cpp", dir=self.root)
        os.close(fd)
        Path(tmp_src).write_text(src)
        tmp_exe = tmp_src[:-4] + ".bin"
        cmd = [self.cxx, "-O1", "-std=c++14", "-w", f"-I{self.include}", tmp_src, "-o", tmp_exe]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"g++ failed for {name}:\n{res.stderr[-3000:]}")
            os.replace(tmp_exe, exe)
        finally:
            Path(tmp_src).unlink(missing_ok=True)
            Path(tmp_exe).unlink(missing_ok=True)
        return exe

    def build(self, widths: Iterable[int], extra: bool = False, jobs: int = 2) -> None:
        """Build the executables of ``widths`` (and the EXTRA group), ``jobs`` at a time."""
        work: list[tuple[str, list[str]]] = [(f"w{w}", width_entries(w)[1]) for w in widths]
        if extra:
            work.append((self._extra_name, [_extra_entry(c) for c in self.extra]))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(lambda nw: self._exe(*nw), work))

    # ----------------------------------------------------------------- running
    def _proc(self, name: str, entries: Sequence[str]) -> subprocess.Popen[str]:
        with self._lock:
            p = self._procs.get(name)
            if p is None or p.poll() is not None:
                exe = self._exe(name, entries)
                p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1 << 16)
                self._procs[name] = p
            return p

    def _ask(self, name: str, entries: Sequence[str],
             rows: list[tuple[int, int, int]]) -> list[int]:
        p = self._proc(name, entries)
        assert p.stdin is not None and p.stdout is not None
        lines = [f"{len(rows)}"] + [f"{i} {x} {f}" for i, x, f in rows]
        p.stdin.write("\n".join(lines) + "\n")
        p.stdin.flush()
        out = [int(p.stdout.readline()) for _ in rows]
        return out

    def cast(self, cases: Sequence[tuple[ApType, int, int]]) -> list[int]:
        """Header results (raw codes, sign-interpreted per target) of ``(type, x, f)`` casts,
        each ``type`` mapped onto its ``ap_fixed<W,W>`` target with f - F."""
        by_width: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
        for n, (t, x, f) in enumerate(cases):
            g = f - t.frac_bits
            if not -64 < g <= WIDE_F:
                raise ValueError(f"harness source cannot hold x·2^-{g}")
            idx = self._width_index[t.width][target_of(t)]
            by_width[t.width].append((n, idx, x, g))
        result = [0] * len(cases)
        for w, rows in sorted(by_width.items()):
            answers = self._ask(f"w{w}", width_entries(w)[1], [(i, x, g) for _, i, x, g in rows])
            for (n, *_), raw in zip(rows, answers, strict=True):
                result[n] = _signed(raw, w, cases[n][0].signed)
        return result

    def cast_int(self, width: int, signed: bool, cases: Sequence[tuple[int, int]]) -> list[int]:
        """``ap_[u]int<width>`` results of ``(x, f)`` wide values."""
        idx = self._width_index[width][Target(width, signed, "AP_TRN_ZERO", "AP_WRAP", True)]
        answers = self._ask(f"w{width}", width_entries(width)[1], [(idx, x, f) for x, f in cases])
        return [_signed(r, width, signed) for r in answers]

    def cast_extra(self, index: int, cases: Sequence[tuple[int, int]]) -> list[int]:
        """Results of EXTRA entry ``index`` for ``(x, f)``: f is the frac bits of the wide
        source, or ignored for a 64-bit source (whose frac bits are fixed)."""
        c = self.extra[index]
        answers = self._ask(self._extra_name, [_extra_entry(e) for e in self.extra],
                            [(index, x, f) for x, f in cases])
        return [_signed(r, c.target.width, c.target.signed) for r in answers]

    def close(self) -> None:
        for p in self._procs.values():
            if p.stdin is not None:
                p.stdin.close()
            p.wait(timeout=10)
        self._procs.clear()


def _signed(raw: int, width: int, signed: bool) -> int:
    if signed and raw >> (width - 1):
        return raw - (1 << width)
    return raw


__all__ = ["EXTRA_SOURCES", "EXTRA_TYPES", "WIDE_F", "ExtraCase", "Harness", "Target",
           "ap_types_dir", "compiler", "extra_cases", "targets_of_width"]
