"""QuantSpec (Contract A): the output of every method recipe and the input of lowering.

On disk a spec is a folder with ``spec.json`` (everything but the float parameters, keys
sorted) and ``params.npz`` (the replacement float parameters, read with
``allow_pickle=False``). ``to_dict`` holds the parameters as nested lists so a spec can also
travel as one JSON document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from refq.errors import SpecError
from refq.quant.base import Quantizer, check_bits, quantizer_from_dict


def _check_json_safe(v: Any, where: str) -> None:
    try:
        json.dumps(v, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise SpecError(f"QuantSpec.{where}: not JSON-safe ({e})") from e


@dataclass
class QuantSpec:
    """Per-tensor quantizers plus replacement parameters and kernel choices of one model.

    ``weights``: weight parameter name -> quantizer; ``activations``: tap name -> quantizer;
    ``params``: float arrays replacing the model's (``model.with_params(params)``);
    ``kernels``: integer kernel variant per op family; ``notes``: JSON-safe record.
    """

    method: str
    model: str
    w_bits: int
    a_bits: int
    weights: dict[str, Quantizer] = field(default_factory=dict)
    activations: dict[str, Quantizer] = field(default_factory=dict)
    params: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    kernels: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for name in ("method", "model"):
            if not isinstance(getattr(self, name), str):
                raise SpecError(f"QuantSpec.{name}: expected a str")
        self.w_bits = check_bits(self.w_bits, "QuantSpec.w_bits")
        self.a_bits = check_bits(self.a_bits, "QuantSpec.a_bits")
        for where in ("weights", "activations"):
            d = getattr(self, where)
            if not isinstance(d, dict):
                raise SpecError(f"QuantSpec.{where}: expected a dict")
            for k, q in d.items():
                if not isinstance(k, str) or not isinstance(q, Quantizer):
                    raise SpecError(f"QuantSpec.{where}[{k!r}]: expected str -> Quantizer")
        if not isinstance(self.params, dict):
            raise SpecError("QuantSpec.params: expected a dict")
        clean: dict[str, np.ndarray[Any, Any]] = {}
        for k, v in self.params.items():
            a = np.asarray(v)
            if not isinstance(k, str) or a.dtype.kind not in "iuf":
                raise SpecError(f"QuantSpec.params[{k!r}]: expected a numeric array")
            if a.dtype.kind == "f" and not bool(np.isfinite(a).all()):
                raise SpecError(f"QuantSpec.params[{k!r}]: non-finite values")
            clean[k] = a
        self.params = clean
        if not isinstance(self.kernels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.kernels.items()
        ):
            raise SpecError("QuantSpec.kernels: expected dict[str, str]")
        if not isinstance(self.notes, dict):
            raise SpecError("QuantSpec.notes: expected a dict")
        _check_json_safe(self.notes, "notes")

    # ---------------------------------------------------------------- dict form
    def _head(self) -> dict[str, Any]:
        return {
            "kind": "quant_spec",
            "version": self.VERSION,
            "method": self.method,
            "model": self.model,
            "w_bits": self.w_bits,
            "a_bits": self.a_bits,
            "weights": {k: q.to_dict() for k, q in sorted(self.weights.items())},
            "activations": {k: q.to_dict() for k, q in sorted(self.activations.items())},
            "kernels": dict(sorted(self.kernels.items())),
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; params as {"dtype", "shape", "data" (nested lists)}."""
        d = self._head()
        d["params"] = {
            k: {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.tolist()}
            for k, v in sorted(self.params.items())
        }
        return d

    @classmethod
    def _from_head(cls, d: Any, params: dict[str, np.ndarray[Any, Any]]) -> QuantSpec:
        if not isinstance(d, dict):
            raise SpecError(f"QuantSpec.from_dict: expected a dict, got {type(d).__name__}")
        if d.get("kind") != "quant_spec":
            raise SpecError(f"QuantSpec.from_dict: kind {d.get('kind')!r} != 'quant_spec'")
        if d.get("version") != cls.VERSION:
            raise SpecError(f"QuantSpec.from_dict: unsupported version {d.get('version')!r}")
        need = {"method", "model", "w_bits", "a_bits", "weights", "activations", "kernels",
                "notes"}
        missing = need - set(d)
        if missing:
            raise SpecError(f"QuantSpec.from_dict: missing keys {sorted(missing)}")
        for where in ("weights", "activations"):
            if not isinstance(d[where], dict):
                raise SpecError(f"QuantSpec.from_dict: {where} must be a dict")
        return cls(
            method=d["method"], model=d["model"], w_bits=d["w_bits"], a_bits=d["a_bits"],
            weights={k: quantizer_from_dict(v) for k, v in d["weights"].items()},
            activations={k: quantizer_from_dict(v) for k, v in d["activations"].items()},
            params=params, kernels=dict(d["kernels"]), notes=d["notes"],
        )

    @classmethod
    def from_dict(cls, d: Any) -> QuantSpec:
        """Inverse of :meth:`to_dict`, validated (SpecError)."""
        if not isinstance(d, dict):
            raise SpecError(f"QuantSpec.from_dict: expected a dict, got {type(d).__name__}")
        raw = d.get("params", {})
        if not isinstance(raw, dict):
            raise SpecError("QuantSpec.from_dict: params must be a dict")
        params: dict[str, np.ndarray[Any, Any]] = {}
        for k, v in raw.items():
            if not isinstance(v, dict) or set(v) != {"dtype", "shape", "data"}:
                raise SpecError(f"QuantSpec.from_dict: params[{k!r}] malformed")
            try:
                dt = np.dtype(v["dtype"])
                a = np.asarray(v["data"], dtype=dt).reshape(v["shape"])
            except (TypeError, ValueError) as e:
                raise SpecError(f"QuantSpec.from_dict: params[{k!r}]: {e}") from e
            params[k] = a
        return cls._from_head(d, params)

    # ---------------------------------------------------------------- folder form
    def save(self, folder: str | Path) -> Path:
        """Write ``folder/spec.json`` and ``folder/params.npz`` (created if needed)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self._head(), sort_keys=True, indent=1, allow_nan=False)
        (out / "spec.json").write_text(text + "\n", encoding="utf-8")
        with open(out / "params.npz", "wb") as f:
            arrays: dict[str, Any] = {
                k: np.ascontiguousarray(v) for k, v in sorted(self.params.items())
            }
            np.savez(f, **arrays)
        return out

    @classmethod
    def load(cls, folder: str | Path) -> QuantSpec:
        """Read a folder written by :meth:`save` (no pickle); SpecError if malformed."""
        src = Path(folder)
        try:
            d = json.loads((src / "spec.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise SpecError(f"QuantSpec.load: cannot read {src / 'spec.json'}: {e}") from e
        params: dict[str, np.ndarray[Any, Any]] = {}
        p = src / "params.npz"
        if p.exists():
            try:
                with np.load(p, allow_pickle=False) as z:
                    params = {k: np.array(z[k]) for k in z.files}
            except (OSError, ValueError) as e:
                raise SpecError(f"QuantSpec.load: cannot read {p}: {e}") from e
        return cls._from_head(d, params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantSpec):
            return NotImplemented
        if self._head() != other._head() or set(self.params) != set(other.params):
            return False
        return all(
            self.params[k].dtype == other.params[k].dtype
            and np.array_equal(self.params[k], other.params[k])
            for k in self.params
        )

    __hash__ = None  # type: ignore[assignment]


__all__ = ["QuantSpec"]
