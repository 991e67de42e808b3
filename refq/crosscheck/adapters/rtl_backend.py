"""The ``rtl`` backend: refq's kernels run through Verilog models under Icarus via cocotb 2.x.

Units (tools/rtl, Verilog-2005, combinational; docs/backends/rtl.md):

- ``requant_tflite_double.v`` — ``requantize.double`` (TFLite MultiplyByQuantizedMultiplier,
  two roundings ties away from zero);
- ``requant_dyadic.v`` — ``requantize.dyadic`` (round(x·b/2^c), rounding chosen by a string
  parameter: half_even, half_away, half_up, floor, ceil, trunc);
- ``igelu_ibert.v`` — ``gelu.ibert`` (I-BERT i-GELU datapath);

all behind ``rtl_harness.v`` (a selector over one instance per rounding × output format).

Cost: the harness is compiled once per set of sources (the build is cached in
``$REFQ_RTL_CACHE`` or the temp dir, keyed by the sources' sha256) and ONE simulator runs for
the backend's lifetime: cocotb's test ``tools/rtl/refq_rtl_server.py`` connects back to this
process over a localhost socket and answers one request per case (all its elements in one
message). :meth:`RtlBackend.close` (or interpreter exit) stops it.

Needs ``cocotb`` (``cocotb_tools.runner``) and Icarus Verilog (``iverilog``, ``vvp``); both
are imported/looked up only when a case runs. ``rtl_dir`` selects another copy of the Verilog
(the negative-control tests run a mutated copy).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from refq.crosscheck.backend import Outputs
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat

SOURCES = ("rtl_harness.v", "requant_tflite_double.v", "requant_dyadic.v", "igelu_ibert.v")
SERVER_MODULE = "refq_rtl_server"
TOPLEVEL = "rtl_harness"

#: output formats the harness instantiates, in selector order (sel = index, +16+4r dyadic)
OUT_FORMATS: tuple[IntFormat, ...] = (INT8, UINT8, INT16, IntFormat(4, True))
#: dyadic roundings in selector order
DYADIC_ROUNDINGS: tuple[str, ...] = ("half_even", "half_away", "half_up", "floor", "ceil", "trunc")
SEL_GELU = 64
IMPLEMENTS = (
    "requantize.double and requantize.dyadic (per-tensor multiplier and shift, input zero "
    "point 0, int32 input, output "
    + " / ".join(f.name for f in OUT_FORMATS)
    + "; dyadic: b < 2^31, c in 0..63, rounding "
    + " / ".join(DYADIC_ROUNDINGS)
    + ") and gelu.ibert (signed input of at most 32 bits)"
)
"""What the Verilog units implement, in words (named when a case is refused)."""
_TIMEOUT_S = 120.0


def default_rtl_dir() -> Path:
    """``$REFQ_RTL_DIR`` or the repository's ``tools/rtl`` (next to the refq package)."""
    env = os.environ.get("REFQ_RTL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "tools" / "rtl"


def _int_param(params: dict[str, Any], key: str) -> int | None:
    v = params.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _fmt(value: Any) -> IntFormat | None:
    try:
        return IntFormat.from_dict(value) if isinstance(value, dict) else IntFormat.parse(value)
    except Exception:
        return None


class RtlBackend:
    """refq kernels on the Verilog units of tools/rtl (module docstring).

    ``supports(case)`` is exact: ``requantize.double`` and ``requantize.dyadic`` with an
    int32 input, per-tensor multiplier/shift, input zero point 0, output int8 / uint8 /
    int16 / int4 (dyadic: b < 2^31, c in 0..63; double: x·2^max(shift,0) within int32), and
    ``gelu.ibert`` with a signed input of at most 32 bits and out_bits <= 64.
    """

    name = "rtl"

    def __init__(self, rtl_dir: Path | str | None = None, cache_dir: Path | str | None = None):
        self.rtl_dir = Path(rtl_dir) if rtl_dir is not None else default_rtl_dir()
        root = cache_dir or os.environ.get("REFQ_RTL_CACHE") or tempfile.gettempdir()
        self.cache_root = Path(root)
        self._lock = threading.Lock()
        self._conn: socket.socket | None = None
        self._reader: Any = None
        self._thread: threading.Thread | None = None
        self._sim_error: list[str] = []
        self.simulator_launches = 0
        self.requests = 0
        self.elements = 0

    # -- what runs where ------------------------------------------------------------------

    def _request_of(self, case: Case) -> tuple[int, dict[str, int], str] | None:
        """(selector, port values, input tensor name), or None if the units cannot run it."""
        op, variant = case.meta.get("op"), case.meta.get("variant")
        params = case.meta.get("params")
        if not isinstance(params, dict):
            return None
        if op == "requantize" and variant in ("double", "dyadic"):
            return self._requant_request(case, str(variant), params)
        if op == "gelu" and variant == "ibert":
            return self._gelu_request(case, params)
        return None

    def _requant_request(
        self, case: Case, variant: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, int], str] | None:
        if params.get("family") != variant or "x" not in case.tensors:
            return None
        mult, shift = params.get("multiplier"), params.get("shift")
        if not (isinstance(mult, list | tuple) and isinstance(shift, list | tuple)):
            return None
        if len(mult) != 1 or len(shift) != 1:
            return None  # per-channel parameters: not wired in the harness
        m, s = mult[0], shift[0]
        zp = _int_param(params, "out_zero_point")
        if not isinstance(m, int) or not isinstance(s, int) or zp is None:
            return None
        if _int_param(params, "in_zero_point") != 0:
            return None
        out = _fmt(params.get("out_format"))
        if out not in OUT_FORMATS or not out.min <= zp <= out.max:
            return None
        f = OUT_FORMATS.index(out)
        x = case.tensors["x"].values
        if x.size and (int(x.min()) < INT32.min or int(x.max()) > INT32.max):
            return None
        ports = {"multiplier": m, "shift": s, "zero_point": zp}
        if variant == "double":
            if not (m == 0 or (1 << 30) <= m < (1 << 31)) or not -31 <= s <= 30:
                return None
            left = max(s, 0)
            if x.size and (int(x.min()) << left < INT32.min or int(x.max()) << left > INT32.max):
                return None
            ports["multiplier"] = m - (1 << 32) if m >= 1 << 31 else m
            return f, ports, "x"
        rounding = params.get("rounding")
        if rounding not in DYADIC_ROUNDINGS or not 0 <= m < (1 << 31) or not 0 <= s <= 63:
            return None
        return 16 + 4 * DYADIC_ROUNDINGS.index(str(rounding)) + f, ports, "x"

    def _gelu_request(
        self, case: Case, params: dict[str, Any]
    ) -> tuple[int, dict[str, int], str] | None:
        fmt = _fmt(params.get("in_format"))
        keys = ("b_int", "c_int", "shift_int", "erf_shift", "out_bits")
        vals = {k: _int_param(params, k) for k in keys}
        if fmt is None or not fmt.signed or fmt.bits > 32 or "x" not in case.tensors:
            return None
        if any(v is None for v in vals.values()):
            return None
        b, c, sh, e, ob = (int(vals[k]) for k in keys)  # type: ignore[arg-type]
        if not (-(2**15) <= b <= -1 and INT32.min <= c <= -1 and INT32.min <= sh <= 0):
            return None
        if not (0 <= e <= 30 and 8 <= ob <= 64):
            return None
        return SEL_GELU, {"b_int": b, "c_int": c, "shift_int": sh, "erf_shift": e}, "x"

    def supports(self, case: Case) -> bool:
        return self._request_of(case) is not None

    def run(self, case: Case) -> Outputs:
        req = self._request_of(case)
        if req is None:
            raise BackendError(
                f"rtl backend: case {case.name} ({case.meta.get('op')}."
                f"{case.meta.get('variant')}) is not one its units implement; they implement "
                f"{IMPLEMENTS}"
            )
        sel, ports, name = req
        x = case.tensors[name].values
        ys = self.simulate(sel, ports, [int(v) for v in x.ravel()])
        return {"y": np.asarray(ys, dtype=np.int64).reshape(x.shape)}

    # -- the simulator --------------------------------------------------------------------

    def sources(self) -> list[Path]:
        paths = [self.rtl_dir / s for s in (*SOURCES, f"{SERVER_MODULE}.py")]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise BackendError(f"rtl backend: missing Verilog/cocotb sources {missing}")
        return paths

    def build_dir(self) -> Path:
        digest = hashlib.sha256()
        for p in self.sources():
            digest.update(p.name.encode() + b"\0" + p.read_bytes())
        return self.cache_root / f"refq-rtl-{digest.hexdigest()[:16]}"

    def _start(self) -> None:
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise BackendError("rtl backend: Icarus Verilog (iverilog, vvp) not found on PATH")
        try:
            from cocotb_tools.runner import get_runner
        except ImportError as exc:
            raise BackendError(f"rtl backend: cocotb 2.x is not installed ({exc})") from None
        sources = self.sources()
        build = self.build_dir()
        runner = get_runner("icarus")
        runner.build(
            sources=[str(p) for p in sources if p.suffix == ".v"],
            hdl_toplevel=TOPLEVEL,
            build_dir=str(build),
            build_args=["-g2005"],
            timescale=("1ns", "1ps"),
            log_file=str(build / "build.log"),
        )
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        # the runner hands this process's sys.path to the simulator's Python as PYTHONPATH
        added = str(self.rtl_dir.resolve())
        if added not in sys.path:
            sys.path.append(added)
        test_dir = Path(tempfile.mkdtemp(prefix="refq-rtl-run-"))

        def simulate() -> None:
            try:
                runner.test(
                    test_module=SERVER_MODULE,
                    hdl_toplevel=TOPLEVEL,
                    build_dir=str(build),
                    test_dir=str(test_dir),
                    extra_env={"REFQ_RTL_PORT": str(port)},
                    results_xml=str(test_dir / "results.xml"),
                    log_file=str(test_dir / "sim.log"),
                )
            except BaseException as exc:  # SystemExit from the runner included
                self._sim_error.append(f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=simulate, name="refq-rtl-sim", daemon=True)
        self._thread.start()
        self.simulator_launches += 1
        listener.settimeout(0.2)
        deadline = time.monotonic() + _TIMEOUT_S
        try:
            while True:
                try:
                    conn, _ = listener.accept()
                    break
                except OSError:
                    if self._thread.is_alive() and time.monotonic() < deadline:
                        continue
                    log = test_dir / "sim.log"
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise BackendError(
                        f"rtl backend: the simulator did not connect {self._sim_error}\n{tail}"
                    ) from None
        finally:
            listener.close()
        conn.settimeout(_TIMEOUT_S)
        self._conn = conn
        self._reader = conn.makefile("r", encoding="ascii")
        atexit.register(self.close)

    def simulate(self, sel: int, ports: dict[str, int], xs: list[int]) -> list[int]:
        """One request to the running simulation: drive ``xs`` through unit ``sel``."""
        with self._lock:
            if self._conn is None:
                self._start()
            assert self._conn is not None
            msg = json.dumps({"sel": sel, "ports": ports, "x": xs}) + "\n"
            try:
                self._conn.sendall(msg.encode("ascii"))
                line = self._reader.readline()
            except OSError as exc:
                self._drop()
                raise BackendError(f"rtl backend: simulator connection failed ({exc})") from None
            if not line:
                self._drop()
                raise BackendError(f"rtl backend: the simulator exited {self._sim_error}")
            reply = json.loads(line)
            if "error" in reply:
                raise BackendError(f"rtl backend: simulator reported {reply['error']}")
            self.requests += 1
            self.elements += len(xs)
            ys = reply["y"]
            if not isinstance(ys, list) or len(ys) != len(xs):
                raise BackendError("rtl backend: malformed reply from the simulator")
            return [int(v) for v in ys]

    def _drop(self) -> None:
        with contextlib.suppress(OSError):
            if self._conn is not None:
                self._conn.close()
        self._conn = None
        self._reader = None

    def close(self) -> None:
        """Stop the simulator (idempotent)."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.sendall(b'{"quit": true}\n')
            self._drop()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def __enter__(self) -> RtlBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DYADIC_ROUNDINGS", "OUT_FORMATS", "SEL_GELU", "RtlBackend", "default_rtl_dir"]
