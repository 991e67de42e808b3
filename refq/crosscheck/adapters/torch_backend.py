"""Torch backend: an independent re-implementation of refq's integer kernels in torch int64
tensor ops (no float math; refq.ops / refq.intmath are not called — params are read from the
case's ``meta["params"]`` dict).

Kernels claimed by :meth:`TorchBackend.supports`: ``requantize.{double,single,dyadic}``,
``linear.gemm``, ``matmul.gemm``, ``add.{ivit,shared_shift}``, ``softmax.refq``,
``gelu.ibert``. Other softmax / GELU / LayerNorm variants are not implemented yet
(reported as skipped by the suite).

torch is an optional extra: it is imported when the backend is constructed; a missing torch
raises BackendError.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError
from refq.golden.case import Case

SUPPORTED = (
    "requantize.double",
    "requantize.single",
    "requantize.dyadic",
    "linear.gemm",
    "matmul.gemm",
    "add.ivit",
    "add.shared_shift",
    "softmax.refq",
    "gelu.ibert",
)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(f"torch backend: torch is not installed ({exc})") from None
    return torch


def _fmt_range(name: str) -> tuple[int, int]:
    """(min, max) of a format string such as 'int8' / 'uint4'."""
    m = re.fullmatch(r"(u?)int(\d+)", str(name))
    if m is None:
        raise BackendError(f"torch backend: unknown integer format {name!r}")
    bits = int(m.group(2))
    if m.group(1):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


class TorchBackend:
    """Integer kernels in torch int64 tensors on ``device`` ("cpu" or "cuda")."""

    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        self.torch = _torch()
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise BackendError("torch backend: CUDA requested but torch.cuda is unavailable")
        self.device = device
        if device != "cpu":
            self.name = f"torch-{device}"

    # -- helpers ---------------------------------------------------------------------------
    def _t(self, a: npt.NDArray[np.integer]) -> Any:
        return self.torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)

    def _saturate(self, y: Any, fmt: str) -> Any:
        lo, hi = _fmt_range(fmt)
        return self.torch.clamp(y, lo, hi)

    def _round_shift(self, x: Any, s: Any, rounding: str) -> Any:
        """x / 2^s rounded by the named rule; x int64 tensor, s int64 tensor in 0..62."""
        torch = self.torch
        s = torch.broadcast_to(s, x.shape) if isinstance(s, torch.Tensor) else torch.full_like(x, s)
        q = torch.bitwise_right_shift(x, s)  # floor
        if rounding == "floor":
            return q
        one = torch.ones_like(x)
        d = torch.bitwise_left_shift(one, s)
        r = x - q * d  # 0 <= r < d
        up = r > 0
        twice = 2 * r  # r < 2^62 keeps this in int64
        if rounding == "ceil":
            inc = up
        elif rounding == "trunc":
            inc = up & (x < 0)
        elif rounding == "half_up":
            inc = twice >= d
        elif rounding == "half_away":
            inc = (twice > d) | ((twice == d) & (x < 0))
        elif rounding == "half_even":
            inc = (twice > d) | ((twice == d) & (torch.bitwise_and(q, one) == 1))
        elif rounding == "half_down":
            inc = twice > d
        else:
            raise BackendError(f"torch backend: unknown rounding {rounding!r}")
        return q + inc.to(torch.int64)

    def _requant(self, x: Any, p: dict[str, Any], axis: int = -1) -> Any:
        torch = self.torch
        m = torch.tensor([int(v) for v in p["multiplier"]], dtype=torch.int64, device=self.device)
        s = torch.tensor([int(v) for v in p["shift"]], dtype=torch.int64, device=self.device)
        if len(p["multiplier"]) > 1 and x.dim():
            shape = [1] * x.dim()
            shape[axis] = m.numel()
            m = m.reshape(shape)
            s = s.reshape(shape)
        else:
            m = m.reshape(())
            s = s.reshape(())
        xz = x - int(p.get("in_zero_point", 0))
        fam = p["family"]
        if fam == "dyadic":
            y = self._round_shift(xz * m, s, str(p.get("rounding", "half_even")))
        elif fam == "single":
            total = 31 - s
            nudge = torch.bitwise_left_shift(torch.ones_like(total), total - 1)
            y = torch.bitwise_right_shift(xz * m + nudge, total)
        elif fam == "double":
            left = torch.clamp(s, min=0)
            right = torch.clamp(-s, min=0)
            a = torch.bitwise_left_shift(xz, left)
            ab = a * m
            nudge = torch.where(
                ab >= 0, torch.full_like(ab, 1 << 30), torch.full_like(ab, 1 - (1 << 30))
            )
            hi = torch.div(ab + nudge, 1 << 31, rounding_mode="trunc")  # C++ int64 division
            right = torch.broadcast_to(right, hi.shape)
            mask = torch.bitwise_left_shift(torch.ones_like(hi), right) - 1
            rem = torch.bitwise_and(hi, mask)
            thr = torch.bitwise_right_shift(mask, 1) + (hi < 0).to(torch.int64)
            y = torch.bitwise_right_shift(hi, right) + (rem > thr).to(torch.int64)
        else:
            raise BackendError(f"torch backend: unknown requantize family {fam!r}")
        return self._saturate(y + int(p.get("out_zero_point", 0)), str(p["out_format"]))

    def _gemm_finish(self, acc: Any, p: dict[str, Any]) -> Any:
        if p.get("requant") is not None:
            return self._requant(acc, p["requant"])
        return acc

    # -- protocol --------------------------------------------------------------------------
    def supports(self, case: Case) -> bool:
        return f"{case.meta.get('op')}.{case.meta.get('variant')}" in SUPPORTED

    def run(self, case: Case) -> dict[str, npt.NDArray[np.integer]]:
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        if key not in SUPPORTED:
            raise BackendError(f"torch backend: kernel {key!r} not supported")
        p: dict[str, Any] = case.meta["params"]
        t = {n: self._t(v.values) for n, v in case.tensors.items() if v.role == "input"}
        y = self.kernel(key, t, p)
        return {"y": y.cpu().numpy().astype(np.int64)}

    def kernel(self, key: str, t: dict[str, Any], p: dict[str, Any]) -> Any:
        """Run kernel ``key`` on int64 tensors ``t`` with the params dict ``p``."""
        torch = self.torch
        if key.startswith("requantize."):
            return self._requant(t["x"], p)
        if key == "linear.gemm":
            x = t["x"] - int(p["a_zero_point"])
            w = t["w"] - int(p["b_zero_point"])
            acc = torch.matmul(x, w.T)  # int64 matmul: exact for these widths
            if "bias" in t and t["bias"] is not None:
                acc = acc + t["bias"]
            return self._gemm_finish(acc, p)
        if key == "matmul.gemm":
            a = t["a"] - int(p["a_zero_point"])
            b = t["b"] - int(p["b_zero_point"])
            return self._gemm_finish(torch.matmul(a, b), p)
        if key in ("add.ivit", "add.shared_shift"):
            a = t["a"] - int(p["a_zero_point"])
            b = t["b"] - int(p["b_zero_point"])
            r = str(p["rounding"])
            if key == "add.ivit":
                y = self._round_shift(a * int(p["a_multiplier"]), int(p["a_shift"]), r)
                y = y + self._round_shift(b * int(p["b_multiplier"]), int(p["b_shift"]), r)
            else:
                acc = a * int(p["a_multiplier"]) + b * int(p["b_multiplier"])
                y = self._round_shift(acc, int(p["a_shift"]), r)
            return self._saturate(y + int(p["out_zero_point"]), str(p["out_format"]))
        if key == "softmax.refq":
            return self._softmax_refq(t["x"], p)
        if key == "gelu.ibert":
            q = t["x"]
            b = int(p["b_int"])
            a = torch.clamp(torch.abs(q), max=-b)
            y = torch.sign(q) * ((a + b) * (a + b) + int(p["c_int"]))
            y = torch.bitwise_right_shift(y, int(p["erf_shift"]))
            return q * (y + int(p["shift_int"]))
        raise BackendError(f"torch backend: kernel {key!r} not supported")

    def _softmax_refq(self, x: Any, p: dict[str, Any]) -> Any:
        """refq softmax: base-2 range reduction, 2^-j/2^L table, half-up roundings."""
        torch = self.torch
        table = torch.tensor([int(v) for v in p["table"]], dtype=torch.int64, device=self.device)
        n_bits = (table.numel() - 1).bit_length()
        d = torch.amax(x, dim=-1, keepdim=True) - x
        t = d * int(p["log2e_multiplier"])
        u = self._round_shift(t, int(p["log2e_shift"]) - n_bits, "half_up")
        k = torch.clamp(torch.bitwise_right_shift(u, n_bits), max=20)
        j = torch.bitwise_and(u, (1 << n_bits) - 1)
        e = self._round_shift(table[j], k, "half_up")
        total = e.sum(dim=-1, keepdim=True)
        num = e * ((1 << int(p.get("out_bits", 8))) - 1)
        return torch.div(2 * num + total, 2 * total, rounding_mode="floor")


def cuda_backend() -> TorchBackend:
    """The torch backend on "cuda" (BackendError if CUDA is unavailable)."""
    return TorchBackend("cuda")


__all__ = ["SUPPORTED", "TorchBackend", "cuda_backend"]
