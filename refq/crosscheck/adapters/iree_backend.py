"""The ``iree`` backend: refq cases exported as TOSA (refq.interop.tosa), printed as generic
MLIR by tosa-tools' tosa-opt, compiled by IREE (``iree-compile --iree-input-type=tosa``) and
run with ``iree.runtime`` — a real compiler's lowering of the same graph the TOSA reference
model runs.

Targets: ``llvm-cpu`` (``iree``, the default) and ``cuda`` (``iree-cuda``; every case is
reported as skipped where no CUDA device is visible). Compiled modules are cached by the
hash of their MLIR and flags — in memory for the process and, when ``REFQ_IREE_CACHE``
names a folder, on disk — so one graph is compiled once per test session. Program and block
cases are one module each (every refq tensor a result) and are compared with refq's
interpreter tensor by tensor (refq.crosscheck.adapters.tosa_cases); :meth:`IreeBackend.
precompile` compiles many kernel cases' graphs in one iree-compile run.

``IreeBackend(avoid_known=True)`` (``iree-avoid-known``) additionally declines the cases a
known IREE defect predicts (:func:`predicted_known`: iree-compile 3.13 rejects the
``layernorm.ibert`` graph of a one-element input — "circular dependency: input operation uses
partition output" — see refq/crosscheck/known/iree.json), so the rest of the key can be
shown to agree; the default backend runs them and the suite reports them as known.

Needs the ``tosa`` extra (tosa-tools, iree-base-compiler, iree-base-runtime).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.tosa_cases import kernel_key, prepare, run_prepared, supported
from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.errors import BackendError, SpecError
from refq.golden.case import Case

TARGETS = {"llvm-cpu": ("llvm-cpu", "local-task"), "cuda": ("cuda", "cuda")}
CPU_FLAGS = ("--iree-llvmcpu-target-cpu=host",)


def predicted_known(case: Case) -> str:
    """The known IREE defect ``case`` would hit ("" if none): a ``layernorm.ibert`` kernel
    case whose input has one element (iree-compile 3.13: circular dependency in stream
    partitioning; every other size compiles and agrees)."""
    if kernel_key(case) == "layernorm.ibert" and "x" in case.tensors \
            and case.tensors["x"].values.size == 1:
        return "layernorm.ibert of one element: iree-compile circular dependency"
    return ""


def _iree() -> tuple[Any, Any]:
    try:
        import iree.compiler as compiler
        import iree.runtime as runtime
    except ImportError as exc:
        raise BackendError(f"the iree backend needs iree-base-compiler and iree-base-runtime: "
                           f"pip install 'refq[tosa]' ({exc})") from None
    return compiler, runtime


class IreeBackend:
    """IREE as a refq backend (module docstring)."""

    def __init__(self, target: str = "llvm-cpu", avoid_known: bool = False) -> None:
        if target not in TARGETS:
            raise BackendError(f"iree target {target!r} not in {sorted(TARGETS)}")
        self.target = target
        self.avoid_known = avoid_known
        self.name = "iree" if target == "llvm-cpu" else f"iree-{target}"
        if avoid_known:
            self.name += "-avoid-known"
        self.compiler, self.runtime = _iree()
        self._modules: dict[str, Any] = {}
        self._mlir: dict[str, str] = {}
        self.compiled = 0
        self.available, self.why = self._probe()

    def _probe(self) -> tuple[bool, str]:
        driver = TARGETS[self.target][1]
        try:
            self.runtime.get_driver(driver)
            if self.target == "cuda":
                devices = self.runtime.get_driver(driver).query_available_devices()
                if not devices:
                    return False, "no CUDA device"
        except Exception as exc:  # no driver or no device: every case is skipped, named
            return False, f"IREE {driver} driver unavailable ({type(exc).__name__}: {exc})"
        return True, ""

    def suite_extras(self) -> SuiteExtras:
        """The regression cases and known file of refq check (tosa_suite.suite_extras)."""
        from refq.crosscheck.adapters.tosa_suite import suite_extras

        return suite_extras(self.name)

    def supports(self, case: Case) -> bool:
        if not self.available:
            return False
        if self.avoid_known and predicted_known(case):
            return False
        return supported(case)

    def flags(self) -> list[str]:
        return list(CPU_FLAGS) if self.target == "llvm-cpu" else []

    def _hash(self, mlir: str) -> str:
        backend = TARGETS[self.target][0]
        return hashlib.sha256("\n".join([backend, *self.flags(), mlir]).encode()).hexdigest()

    def _compile(self, mlir: str) -> bytes:
        h = self._hash(mlir)
        vmfb = self._cached(h)
        if vmfb is None:
            try:
                vmfb = self.compiler.compile_str(mlir, target_backends=[TARGETS[self.target][0]],
                                                 input_type="tosa", extra_args=self.flags())
            except Exception as exc:
                raise BackendError(f"iree-compile failed: {str(exc)[:800]}") from None
            self.compiled += 1
            self._store(h, vmfb)
        return bytes(vmfb)

    def _load(self, vmfb: bytes, names: list[str]) -> list[Any]:
        rt = self.runtime
        ctx = rt.SystemContext(config=rt.Config(TARGETS[self.target][1]))
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vmfb))
        return [ctx.modules.module[n] for n in names]

    def module(self, mlir: str) -> Any:
        """The compiled module's ``main`` (compiled once per MLIR text and flags)."""
        h = self._hash(mlir)
        if h not in self._modules:
            self._modules[h] = self._load(self._compile(mlir), ["main"])[0]
        return self._modules[h]

    def mlir_of(self, exported: Any) -> str:
        """The generic MLIR of an exported graph (tosa-opt, once per graph)."""
        from refq.interop.tosa.mlir import to_mlir

        key = hashlib.sha256(exported.graph).hexdigest()
        if key not in self._mlir:
            self._mlir[key] = to_mlir(exported.graph)
        return self._mlir[key]

    def precompile(self, cases: Iterable[Case]) -> int:
        """Compile the graphs of the supported kernel ``cases`` not compiled yet in ONE
        iree-compile run (one module, a function per graph; compiling has a fixed cost per
        run of about half a CPU second). Returns how many graphs; where the joint compile
        fails, none is kept and each case compiles (and reports) on its own when run."""
        from refq.interop.tosa.mlir import merge

        todo: dict[str, str] = {}
        for case in cases:
            if "program" in case.meta or not self.supports(case):
                continue
            try:
                mlir = self.mlir_of(prepare(case).exported)
            except (BackendError, SpecError):  # ExportError: reported when the case runs
                continue
            h = self._hash(mlir)
            if h not in self._modules:
                todo.setdefault(h, mlir)
        if not todo:
            return 0
        names = [f"case{i}" for i in range(len(todo))]
        try:
            vmfb = self._compile(merge(list(todo.values()), names))
        except BackendError:
            return 0
        for h, fn in zip(todo, self._load(vmfb, names), strict=True):
            self._modules[h] = fn
        return len(todo)

    def _cached(self, h: str) -> bytes | None:
        folder = os.environ.get("REFQ_IREE_CACHE")
        if not folder:
            return None
        path = Path(folder) / f"{h}.vmfb"
        return path.read_bytes() if path.is_file() else None

    def _store(self, h: str, vmfb: bytes) -> None:
        folder = os.environ.get("REFQ_IREE_CACHE")
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        tmp = Path(folder) / f".{h}.{os.getpid()}.tmp"
        tmp.write_bytes(vmfb)
        tmp.replace(Path(folder) / f"{h}.vmfb")

    def execute(self, exported: Any, feed: list[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        fn = self.module(self.mlir_of(exported))
        res = fn(*feed)
        outs = res if isinstance(res, (list, tuple)) else [res]
        return [np.asarray(o.to_host()) for o in outs]

    def run(self, case: Case) -> Outputs:
        if not self.available:
            raise BackendError(f"{self.name}: {self.why}")
        prep = prepare(case)
        return dict(run_prepared(prep, case, self.name, self.execute))


def cuda_backend() -> IreeBackend:
    return IreeBackend("cuda")


__all__ = ["CPU_FLAGS", "TARGETS", "IreeBackend", "cuda_backend", "predicted_known"]
