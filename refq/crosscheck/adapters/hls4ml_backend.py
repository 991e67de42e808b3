"""The hls4ml backend: refq cases run by hls4ml's own bit-accurate HLS C++ (Vivado backend,
ap_fixed types), compiled with g++ by ``ModelGraph.compile()`` and run by ``predict``.

``refq check --backend hls4ml`` (extra ``hls``). What runs (``supports`` is exact):

- program and block cases whose every op maps onto an hls4ml layer
  (refq.crosscheck.adapters.hls4ml_models: Dense, ApplyAlpha, Activation('linear'),
  UnaryLUT, Softmax, LayerNormalization) — one compile per program, every mapped tensor
  returned and compared;
- kernel cases whose configuration is in the backend's catalogue (:data:`CAST_TYPES`,
  :func:`softmax_catalogue`, :func:`layernorm_catalogue`): each catalogue entry is one
  compiled model (the casts are one model of many branches), so a suite run compiles a
  handful of models (hls4ml's compile takes 10-40 s each) instead of one per hypothesis
  example. The backend's own strategies (``strategies()``) draw cases on the catalogue and
  replace refq's generic ones for those keys.

hls4ml is imported when the backend is created; without it BackendError names the extra.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.hls4ml_models import HlsGraph, Unmappable, hls_type, map_program
from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.errors import BackendError, SpecError
from refq.golden.case import Case
from refq.golden.cases_hls4ml import (
    CAST_FRAC,
    CAST_TYPES,
    LAYERNORM_C,
    SOFTMAX_N,
    cast_params,
    layernorm_catalogue,
    softmax_catalogue,
)
from refq.intmath.apfixed import ApType
from refq.ops import ApFixedRequantParams
from refq.program.ir import Program

CAST_LANES = 4
"""Values per row of the casts model."""


def _kernel_program(case: Case) -> Program:
    from refq.interop.qonnx.export import case_program

    return case_program(case)[0]


def casts_graph() -> HlsGraph:
    """One model: ap_fixed<32,16> rows → one linear activation per CAST_TYPES entry."""
    g = HlsGraph()
    g.layers.append({"class_name": "InputLayer", "name": "t_x", "input_shape": [CAST_LANES]})
    g.precision["t_x"] = {"Precision": {"result": f"ap_fixed<32,{32 - CAST_FRAC}>"}}
    g.types["x"] = ApType(32, 32 - CAST_FRAC)
    g.layer_of["x"] = "t_x"
    g.inputs.append("x")
    for i, t in enumerate(CAST_TYPES):
        name = f"c{i}"
        g.layers.append({"class_name": "Activation", "name": name, "inputs": ["t_x"],
                         "activation": "linear"})
        g.precision[name] = {"Precision": {"result": hls_type(t)}}
        g.types[name] = t
        g.layer_of[name] = name
        g.outputs.append(name)
    return g


@lru_cache(maxsize=1)
def softmax_graph() -> HlsGraph:
    """One model for the softmax catalogue: the three implementations as three Softmax
    layers on one input (one compile instead of three)."""
    from refq.program.ir import Op

    any_p = next(iter(softmax_catalogue().values()))
    prog = Program("softmax_catalogue")
    prog.declare("x", (-1, SOFTMAX_N), any_p.types["in_type"].fmt, "input")
    for impl, p in softmax_catalogue().items():
        prog.declare(f"sm_{impl}", (-1, SOFTMAX_N), p.types["out_type"].fmt)
        prog.add(Op("kernel", f"softmax.hls4ml_{impl}", ("x",), (f"sm_{impl}",), p.to_dict()))
    prog.outputs = [f"sm_{impl}" for impl in softmax_catalogue()]
    return map_program(prog)


class Hls4mlBackend:
    """refq cases on hls4ml's compiled emulation (module docstring)."""

    name = "hls4ml"

    def __init__(self, workdir: Path | None = None) -> None:
        try:
            import hls4ml
            import hls4ml.model.optimizer.passes.hgq_proxy_model
            from hls4ml.model.graph import ModelGraph
        except ImportError as exc:
            raise BackendError(f"hls4ml backend needs the hls extra: pip install 'refq[hls]' "
                               f"({exc})") from None
        self._model_graph = ModelGraph
        self.version = str(hls4ml.__version__)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="refq-hls4ml-")
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)  # type: ignore[union-attr]
        self._models: dict[str, Any] = {}
        self._graphs: dict[str, HlsGraph] = {}
        self.compiles = 0

    # ------------------------------------------------------------------ mapping
    def _plan(self, case: Case) -> tuple[HlsGraph, Callable[[Outputs], Outputs]] | None:
        """The graph that runs ``case`` and how its outputs map back, or None."""
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        if "program" in case.meta:
            from refq.golden.cases_program import program_of

            program, _ = program_of(case)
            try:
                return map_program(program), lambda out: out
            except (Unmappable, SpecError):
                return None
        params = case.meta.get("params")
        if key == "requantize.ap_fixed":
            try:
                p = ApFixedRequantParams.from_dict(params)
            except SpecError:
                return None
            if p.apfixed not in CAST_TYPES or p != cast_params(p.apfixed):
                return None
            branch = f"c{CAST_TYPES.index(p.apfixed)}"
            return casts_graph(), lambda out: {"y": out[branch]}
        catalogue: dict[str, Any] = {}
        if key.startswith("softmax.hls4ml_"):
            catalogue = {f"softmax.hls4ml_{k}": v for k, v in softmax_catalogue().items()}
        elif key == "layernorm.hls4ml":
            catalogue = {key: layernorm_catalogue()}
        if key not in catalogue or params != catalogue[key].to_dict():
            return None
        x = case.tensors.get("x")
        if x is None or x.values.ndim < 1 or x.values.shape[-1] != (
                SOFTMAX_N if key.startswith("softmax") else LAYERNORM_C):
            return None
        if key.startswith("softmax."):
            branch = "sm_" + key.removeprefix("softmax.hls4ml_")
            return softmax_graph(), lambda out: {"y": out[branch]}
        try:
            return map_program(_kernel_program(case)), lambda out: {"y": out["y"]}
        except (Unmappable, SpecError):
            return None

    def supports(self, case: Case) -> bool:
        return self._plan(case) is not None

    # ------------------------------------------------------------------ running
    def _compiled(self, graph: HlsGraph) -> Any:
        key = graph.key()
        model = self._models.get(key)
        if model is not None:
            return model
        config = {
            "OutputDir": str(self.workdir / f"prj_{key}"), "ProjectName": f"refq{key}",
            "Backend": "Vivado", "Part": "xcvu13p-flga2577-2-e", "ClockPeriod": 5,
            "IOType": "io_parallel",
            "HLSConfig": {"Model": {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1,
                                    "Strategy": "Latency"},
                          "LayerName": graph.precision},
        }
        layer_names = [graph.layer_of[o] for o in graph.outputs]
        log = io.StringIO()
        try:
            with contextlib.redirect_stdout(log):
                model = self._model_graph.from_layer_list(
                    config, [dict(layer) for layer in graph.layers],
                    inputs=[graph.layer_of[i] for i in graph.inputs], outputs=layer_names)
                model.compile()
        except Exception as exc:
            raise BackendError(f"hls4ml could not build/compile the model: {exc}\n"
                               f"{log.getvalue()[-2000:]}") from exc
        self.compiles += 1
        self._models[key] = model
        return model

    def predict(self, graph: HlsGraph, inputs: Mapping[str, npt.NDArray[np.integer[Any]]],
                shapes: dict[str, tuple[int, ...]]) -> Outputs:
        """Run ``graph`` on raw-code ``inputs``; raw codes of every output tensor."""
        if len(graph.inputs) != 1:
            raise BackendError("hls4ml backend: one graph input supported")
        model = self._compiled(graph)
        name = graph.inputs[0]
        x = np.asarray(inputs[name], dtype=np.int64)
        rows = x.reshape(-1, x.shape[-1])
        n = rows.shape[0]
        pad = rows if n > 1 else np.concatenate([rows, rows])  # predict squeezes one sample
        fx = graph.types[name].frac_bits
        with contextlib.redirect_stdout(io.StringIO()):
            out = model.predict(np.ascontiguousarray(pad.astype(np.float64) * 2.0 ** -fx))
        outs = out if isinstance(out, list) else [out]
        result: Outputs = {}
        for t, values in zip(graph.outputs, outs, strict=True):
            f = graph.types[t].frac_bits
            v = np.asarray(values, dtype=np.float64)[:n] * 2.0 ** f
            codes = v.astype(np.int64)
            if not np.array_equal(codes.astype(np.float64), v):
                raise BackendError(f"hls4ml returned non-integer codes for {t}")
            lead = x.shape[:-1] if len(x.shape) > 1 else ()
            result[t] = codes.reshape(shapes.get(t, (*lead, -1)))
        return result

    def run(self, case: Case) -> Outputs:
        plan = self._plan(case)
        if plan is None:
            raise BackendError(f"hls4ml backend does not support case {case.name}")
        graph, back = plan
        if "program" in case.meta:
            from refq.golden.cases_program import program_of

            _program, inputs = program_of(case)
            shapes = {t: case.tensors[t].values.shape for t in graph.outputs
                      if t in case.tensors}
            return back(self.predict(graph, inputs, shapes))
        x = case.tensors["x"].values
        if graph.inputs == ["x"] and "c0" in graph.types:  # the casts model: lanes of 4
            flat = x.astype(np.int64).ravel()
            padded = np.concatenate([flat, np.zeros((-flat.size) % CAST_LANES, np.int64)])
            raw = self.predict(graph, {"x": padded.reshape(-1, CAST_LANES)}, {})
            return {k: v.ravel()[:flat.size].reshape(x.shape) for k, v in back(raw).items()}
        raw = self.predict(graph, {"x": x}, {"y": case.tensors["y"].values.shape})
        return back(raw)

    def suite_extras(self) -> SuiteExtras:
        """Hypothesis strategies drawing cases on the catalogue: ``refq check`` runs them in
        place of refq's generic strategies of the same keys (so a suite run compiles the
        catalogue's few models, not one per drawn configuration)."""
        from refq.crosscheck.adapters import hls4ml_cases

        return SuiteExtras(strategies=hls4ml_cases.strategies())

    def versions(self) -> dict[str, str]:
        return {"hls4ml": self.version, "cxx": os.environ.get("CXX", "g++")}


__all__ = ["CAST_LANES", "Hls4mlBackend", "casts_graph", "softmax_graph"]
