"""QuantSpec (Contract A): the output of every method recipe and the input of lowering.

On disk a spec is a folder with ``spec.json`` (everything but the float parameters, keys
sorted, and the manifest of the parameters: dtype, shape and sha256 of each) and, when there
are parameters, ``params.npz`` (deterministic, read without pickle, checked against the
manifest). ``to_dict`` holds the parameters as nested lists so a spec can also travel as one
JSON document. Both forms are checked against :func:`refq.quant.schema.spec_schema`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from refq.errors import SpecError
from refq.files import atomic_folder, load_json, require_folder, sha256_bytes
from refq.files.npy import REAL_DTYPES, npy_bytes
from refq.files.npz import npz_bytes, read_npz
from refq.files.safe import MiB
from refq.files.schema import did_you_mean, same, validate
from refq.quant.base import Quantizer, check_bits, quantizer_from_dict
from refq.quant.schema import SPEC_VERSION, spec_schema
from refq.quant.schema import first_difference as _first_difference

SPEC_JSON_LIMIT = 64 * MiB


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

    VERSION: ClassVar[int] = SPEC_VERSION
    """2: ``spec.json`` lists the arrays of ``params.npz`` (dtype, shape, sha256)."""

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

    def check_model(self, model: Any) -> None:
        """SpecError unless the spec fits ``model`` (anything with ``params`` and
        ``tap_names()``): every weight name a parameter of the model or of ``params``,
        every activation name a tap of the model, every replacement parameter one of the
        model's — a misspelled name is an error naming the close ones, never a quantizer
        silently left out."""
        model_params = set(model.params)
        taps = set(model.tap_names())
        groups = (("params", self.params, model_params),
                  ("weights", self.weights, model_params | set(self.params)),
                  ("activations", self.activations, taps))
        for where, names, known in groups:
            unknown = sorted(set(names) - known)
            if unknown:
                what = "a tap" if where == "activations" else "a parameter"
                raise SpecError(
                    f"spec {self.method} W{self.w_bits}A{self.a_bits}: {where} name "
                    f"{unknown[0]!r} is not {what} of {model.config.name}"
                    f"{did_you_mean(unknown[0], known)}"
                    + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))

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

    def params_manifest(self) -> dict[str, dict[str, Any]]:
        """What ``spec.json`` says of each array of ``params.npz``: dtype, shape and the
        sha256 of its canonical .npy bytes."""
        return {k: {"dtype": str(v.dtype), "shape": list(v.shape),
                    "sha256": sha256_bytes(npy_bytes(v, REAL_DTYPES))}
                for k, v in sorted(self.params.items())}

    @classmethod
    def _from_head(cls, d: dict[str, Any], params: dict[str, np.ndarray[Any, Any]],
                   file: object) -> QuantSpec:
        """A spec from a document already checked against its schema; each quantizer
        parsed by its class and required to be in canonical form (what it writes back)."""
        groups: dict[str, dict[str, Quantizer]] = {}
        for where in ("weights", "activations"):
            groups[where] = {}
            for k, v in d[where].items():
                at = f"{file}: at $.{where}[{k!r}]"
                try:
                    q = quantizer_from_dict(v)
                except SpecError as exc:
                    raise SpecError(f"{at}: {exc}") from None
                canonical = q.to_dict()
                if not same(canonical, v):
                    raise SpecError(f"{at}: {_first_difference(v, canonical)}")
                groups[where][k] = q
        try:
            return cls(method=d["method"], model=d["model"], w_bits=d["w_bits"],
                       a_bits=d["a_bits"], weights=groups["weights"],
                       activations=groups["activations"], params=params,
                       kernels=dict(d["kernels"]), notes=d["notes"])
        except SpecError as exc:
            raise SpecError(f"{file}: {exc}") from None

    @classmethod
    def _check_version(cls, d: Any, file: object) -> None:
        if not isinstance(d, dict) or d.get("kind") != "quant_spec":
            got = d.get("kind") if isinstance(d, dict) else type(d).__name__
            raise SpecError(f"{file}: kind {got!r}, expected 'quant_spec'")
        if d.get("version") != cls.VERSION:
            raise SpecError(f"{file}: spec version {d.get('version')!r}, this refq reads "
                            f"{cls.VERSION} (write the spec again with this refq)")

    @classmethod
    def from_dict(cls, d: Any, file: object = "QuantSpec.from_dict") -> QuantSpec:
        """Inverse of :meth:`to_dict`, validated against :func:`spec_schema` (SpecError)."""
        cls._check_version(d, file)
        validate(spec_schema("document"), d, file)
        params: dict[str, np.ndarray[Any, Any]] = {}
        for k, v in d["params"].items():
            try:
                dt = np.dtype(v["dtype"])
                a = np.asarray(v["data"], dtype=dt)
            except (TypeError, ValueError, OverflowError) as e:
                raise SpecError(f"{file}: at $.params[{k!r}]: {e}") from None
            if list(a.shape) != v["shape"]:
                raise SpecError(f"{file}: at $.params[{k!r}]: data of shape {list(a.shape)}, "
                                f"declared {v['shape']}")
            params[k] = a
        return cls._from_head(d, params, file)

    # ---------------------------------------------------------------- folder form
    def save(self, folder: str | Path, force: bool = False) -> Path:
        """Write the new folder ``folder`` atomically: ``spec.json`` (everything but the
        arrays, plus their manifest) and, when there are params, ``params.npz``. An
        existing ``folder`` is an error unless ``force`` (then it is replaced whole)."""
        out = Path(folder)
        head = self._head()
        head["params"] = self.params_manifest()
        text = json.dumps(head, sort_keys=True, indent=1, allow_nan=False) + "\n"
        with atomic_folder(out, force=force) as tmp:
            (tmp / "spec.json").write_text(text, encoding="ascii")
            if self.params:
                (tmp / "params.npz").write_bytes(npz_bytes(self.params))
        return out

    @classmethod
    def load(cls, folder: str | Path) -> QuantSpec:
        """Read a folder written by :meth:`save`: regular files inside it, ``spec.json``
        against :func:`spec_schema`, ``params.npz`` holding exactly the listed arrays with
        their dtype, shape and sha256 (checked before use, no pickle); SpecError naming the
        file and what is wrong."""
        src = require_folder(folder, SpecError, "spec folder")
        path = src / "spec.json"
        d = load_json(path, SPEC_JSON_LIMIT, src, SpecError, "spec.json")
        cls._check_version(d, path)
        validate(spec_schema("folder"), d, path)
        manifest: dict[str, Any] = d["params"]
        npz = src / "params.npz"
        params: dict[str, np.ndarray[Any, Any]] = {}
        if manifest:
            expected = {k: (np.dtype(m["dtype"]), tuple(m["shape"])) for k, m in manifest.items()}
            params = read_npz(npz, expected, src, SpecError)
            for k, arr in params.items():
                if sha256_bytes(npy_bytes(arr, REAL_DTYPES)) != manifest[k]["sha256"]:
                    raise SpecError(f"{npz}[{k}.npy]: sha256 differs from spec.json "
                                    f"(at $.params[{k!r}].sha256): the array was modified")
        elif os.path.lexists(npz):
            raise SpecError(f"{npz}: present, but {path} lists no params (at $.params)")
        return cls._from_head(d, params, path)

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
