"""Integer kernels in torch: an independent re-implementation of refq's kernel variants in
torch int64 tensor ops (no float math; refq.ops / refq.intmath are not called — params are
read from the params dict of a case or program op).

:class:`TorchKernels` implements the variants of :attr:`TorchKernels.IMPLEMENTS` (registry
key → method); :data:`SUPPORTED` is that table's keys. The ``torch`` backend
(:mod:`refq.crosscheck.adapters.torch_backend`) and the torch program interpreter
(:mod:`refq.crosscheck.adapters.torch_program`) both run kernels through it.

Exact integer matmul: torch.matmul on int64 where the device supports it (CPU); elsewhere
(CUDA has no int64 GEMM) a broadcast multiply-and-sum in int64, chunked over rows.

torch is an optional extra: it is imported when the kernels are constructed; a missing torch
raises BackendError.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError

_BINDS = {"requantize": "family", "add": "scheme"}
"""Params fields naming the variant (refq.ops registry ``binds``): checked before running."""


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


class TorchKernels:
    """Integer kernels in torch int64 tensors on ``device`` ("cpu" or "cuda"), one method
    per variant (:attr:`IMPLEMENTS`)."""

    name = "torch"

    def __init__(self, device: str = "cpu", matmul: str = "auto") -> None:
        """``matmul``: "auto" (torch.matmul on CPU, broadcast multiply-and-sum elsewhere),
        "native" (always torch.matmul) or "broadcast" (always the broadcast form)."""
        self.torch = _torch()
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise BackendError("torch backend: CUDA requested but torch.cuda is unavailable")
        if matmul not in ("auto", "native", "broadcast"):
            raise BackendError(
                f"torch backend: matmul mode {matmul!r} not in auto / native / broadcast"
            )
        self.device = device
        self.matmul_mode = matmul if matmul != "auto" else (
            "native" if device == "cpu" else "broadcast"
        )
        if device != "cpu":
            self.name = f"torch-{device}"

    # -- helpers ---------------------------------------------------------------------------
    def _t(self, a: npt.NDArray[np.integer[Any]]) -> Any:
        return self.torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)

    def _saturate(self, y: Any, fmt: str) -> Any:
        lo, hi = _fmt_range(fmt)
        return self.torch.clamp(y, lo, hi)

    def _round_shift(self, x: Any, s: Any, rounding: str) -> Any:
        """x / 2^s rounded by the named rule; x int64 tensor, s int64 tensor in 0..63.

        No intermediate leaves int64: the remainder is ``x & (2^s - 1)`` with the mask taken
        as ``INT64_MAX >> (63 - s)``, and it is compared with ``2^(s-1)`` (never 2^s, which
        does not exist in int64 for s = 63)."""
        torch = self.torch
        s = torch.broadcast_to(s, x.shape) if isinstance(s, torch.Tensor) else torch.full_like(x, s)
        q = torch.bitwise_right_shift(x, s)  # floor
        if rounding == "floor":
            return q
        one = torch.ones_like(x)
        mask = torch.bitwise_right_shift(torch.full_like(x, 2**63 - 1), 63 - s)
        r = torch.bitwise_and(x, mask)  # x - q·2^s, 0 <= r < 2^s
        half = torch.bitwise_left_shift(one, torch.clamp(s - 1, min=0))
        above = (r > half) & (s > 0)
        tie = (r == half) & (s > 0)
        up = r > 0
        if rounding == "ceil":
            inc = up
        elif rounding == "trunc":
            inc = up & (x < 0)
        elif rounding == "half_up":
            inc = above | tie
        elif rounding == "half_away":  # a tie goes up for x >= 0 (floor q is below the tie)
            inc = above | (tie & (x >= 0))
        elif rounding == "half_even":
            inc = above | (tie & (torch.bitwise_and(q, one) == 1))
        elif rounding == "half_down":
            inc = above
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

    def _matmul(self, a: Any, b: Any) -> Any:
        """Exact int64 a @ b (a: (..., M, K), b: (..., K, N), batch dims broadcast)."""
        torch = self.torch
        if self.matmul_mode == "native":
            return torch.matmul(a, b)
        # sum_k a[..., m, k] * b[..., k, n], in row chunks of at most ~2^24 products
        bt = b.transpose(-1, -2).unsqueeze(-3)  # (..., 1, N, K)
        m, k = a.shape[-2], a.shape[-1]
        n = b.shape[-1]
        lead = max(1, int(np.prod(torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]))))
        step = max(1, (1 << 24) // max(1, lead * n * k))
        parts = [
            (a[..., i:i + step, :].unsqueeze(-2) * bt).sum(dim=-1) for i in range(0, m, step)
        ]
        if not parts:
            return torch.zeros((*a.shape[:-1], n), dtype=torch.int64, device=a.device)
        return torch.cat(parts, dim=-2)

    def _per_channel(self, values: Any, c: int, what: str) -> Any:
        """A per-channel parameter (length 1 or C) as an int64 tensor broadcasting on the
        last axis."""
        vals = [int(v) for v in values]
        if len(vals) not in (1, c):
            raise BackendError(f"torch backend: {what} has {len(vals)} values, channels {c}")
        return self.torch.tensor(vals, dtype=self.torch.int64, device=self.device)

    def _bit_length(self, n: Any) -> Any:
        """bit_length of non-negative int64 n (0 -> 0), by a binary search over shifts."""
        torch = self.torch
        b = torch.zeros_like(n)
        for s in (32, 16, 8, 4, 2, 1):
            b = torch.where(torch.bitwise_right_shift(n, b + s) > 0, b + s, b)
        return b + (n > 0).to(torch.int64)

    def isqrt(self, n: Any) -> Any:
        """floor(sqrt(n)) exactly for int64 0 <= n < 2^63: digit-by-digit (restoring)
        square root, one result bit per step from bit 31 down; r | 2^i is kept when
        (r | 2^i) <= n // (r | 2^i), i.e. (r | 2^i)^2 <= n without forming the square
        (which could pass 2^63). No float, no Newton iteration."""
        torch = self.torch
        if bool((n < 0).any()):
            raise BackendError("torch backend: isqrt of a negative number")
        r = torch.zeros_like(n)
        for i in range(31, -1, -1):
            cand = torch.bitwise_or(r, 1 << i)
            ok = cand <= torch.div(n, cand, rounding_mode="floor")
            r = torch.where(ok, cand, r)
        return r

    def _div_half_even(self, num: Any, den: Any) -> Any:
        """num / den rounded half to even, den > 0 (int64, floor quotient + remainder)."""
        torch = self.torch
        q = torch.div(num, den, rounding_mode="floor")
        r = num - q * den  # 0 <= r < den
        twice = 2 * r
        odd = torch.bitwise_and(q, 1) == 1
        return q + ((twice > den) | ((twice == den) & odd)).to(torch.int64)

    def _layernorm_refq(self, x: Any, p: dict[str, Any]) -> Any:
        """refq LayerNorm: a = (x - zp) << shift_c; y = C·a - Σa; v = Σy²;
        k = max(0, (62 - bitlen(v)) >> 1); s = max(isqrt(v·4^k), 1);
        out = half_even(y·2^(F+k) / s) + bias_c."""
        torch = self.torch
        c = int(x.shape[-1])
        if c == 0:
            raise BackendError("torch backend: layernorm over an empty channel axis")
        sh = self._per_channel(p["channel_shift"], c, "channel_shift")
        a = torch.bitwise_left_shift(x - int(p["zero_point"]), sh)
        y = c * a - a.sum(dim=-1, keepdim=True)
        v = (y * y).sum(dim=-1, keepdim=True)
        k = torch.clamp(torch.bitwise_right_shift(62 - self._bit_length(torch.clamp(v, min=1)), 1),
                        min=0)
        s = torch.clamp(self.isqrt(torch.bitwise_left_shift(v, 2 * k)), min=1)
        num = torch.bitwise_left_shift(y, int(p["frac_bits"]) + k)
        out = self._div_half_even(num, torch.broadcast_to(s, num.shape))
        return out + self._per_channel(p["bias"], c, "bias")

    def _gelu_lut(self, x: Any, p: dict[str, Any]) -> Any:
        """out = table[x - in_min] (table from the params, 2^bits entries)."""
        torch = self.torch
        lo, _ = _fmt_range(str(p["in_format"]))
        table = torch.tensor([int(v) for v in p["table"]], dtype=torch.int64, device=self.device)
        idx = x - lo
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= table.numel()):
            raise BackendError(f"torch backend: gelu.lut input outside {p['in_format']}")
        return table[idx]

    def _gemm_finish(self, acc: Any, p: dict[str, Any]) -> Any:
        if p.get("requant") is not None:
            return self._requant(acc, p["requant"])
        return acc

    IMPLEMENTS: ClassVar[dict[str, str]] = {
        "requantize.double": "_requant_x",
        "requantize.single": "_requant_x",
        "requantize.dyadic": "_requant_x",
        "linear.gemm": "_linear",
        "matmul.gemm": "_matmul_gemm",
        "add.ivit": "_add",
        "add.shared_shift": "_add",
        "softmax.refq": "_softmax_refq",
        "gelu.ibert": "_gelu_ibert",
        "gelu.lut": "_gelu_lut_x",
        "layernorm.refq": "_layernorm_refq_x",
    }
    """The variants this backend implements (registry key → method taking the named input
    tensors and the params dict)."""

    def kernel(self, key: str, t: dict[str, Any], p: dict[str, Any]) -> Any:
        """Run variant ``key`` on int64 tensors ``t`` (named as the registry's ``inputs``)
        with the params dict ``p``."""
        method = self.IMPLEMENTS.get(key)
        if method is None:
            raise BackendError(f"torch backend: kernel {key!r} not supported")
        family, name = key.split(".", 1)
        field = _BINDS.get(family)
        if field is not None and p.get(field) != name:
            raise BackendError(f"torch backend: kernel {key!r} given params of "
                               f"{field} {p.get(field)!r}")
        return getattr(self, method)(t, p)

    def _requant_x(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        return self._requant(t["x"], p)

    def _linear(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        x = t["x"] - int(p["a_zero_point"])
        w = t["w"] - int(p["b_zero_point"])
        acc = self._matmul(x, w.T)  # exact int64 products and sums
        if "bias" in t and t["bias"] is not None:
            acc = acc + t["bias"]
        return self._gemm_finish(acc, p)

    def _matmul_gemm(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        a = t["a"] - int(p["a_zero_point"])
        b = t["b"] - int(p["b_zero_point"])
        return self._gemm_finish(self._matmul(a, b), p)

    def _add(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        a = t["a"] - int(p["a_zero_point"])
        b = t["b"] - int(p["b_zero_point"])
        r = str(p["rounding"])
        if p["scheme"] == "ivit":
            y = self._round_shift(a * int(p["a_multiplier"]), int(p["a_shift"]), r)
            y = y + self._round_shift(b * int(p["b_multiplier"]), int(p["b_shift"]), r)
        else:
            acc = a * int(p["a_multiplier"]) + b * int(p["b_multiplier"])
            y = self._round_shift(acc, int(p["a_shift"]), r)
        return self._saturate(y + int(p["out_zero_point"]), str(p["out_format"]))

    def _gelu_ibert(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        torch = self.torch
        q = t["x"]
        b = int(p["b_int"])
        a = torch.clamp(torch.abs(q), max=-b)
        y = torch.sign(q) * ((a + b) * (a + b) + int(p["c_int"]))
        y = torch.bitwise_right_shift(y, int(p["erf_shift"]))
        return q * (y + int(p["shift_int"]))

    def _gelu_lut_x(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        return self._gelu_lut(t["x"], p)

    def _layernorm_refq_x(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        return self._layernorm_refq(t["x"], p)

    def _softmax_refq(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        """refq softmax: base-2 range reduction, 2^-j/2^L table, half-up roundings."""
        torch = self.torch
        x = t["x"]
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



SUPPORTED: tuple[str, ...] = tuple(TorchKernels.IMPLEMENTS)
"""The registry keys the torch kernels implement (derived from :attr:`TorchKernels.IMPLEMENTS`)."""

__all__ = ["SUPPORTED", "TorchKernels"]
