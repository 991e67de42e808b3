"""Torch integer arithmetic shared by the torch kernels: int64 tensors on a device, the named
roundings, exact matmul, isqrt, and gemmlowp's fixed-point primitives — each written from
the semantics refq documents, without calling refq.ops or refq.intmath.

torch is an optional extra: it is imported when a :class:`TorchBase` is constructed; a
missing torch raises BackendError.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError

I32_MIN = -(2**31)
I32_MAX = 2**31 - 1


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


class TorchBase:
    """int64 torch tensors on ``device`` ("cpu" or "cuda") and the integer primitives."""

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

    # -- gemmlowp fixed point (int32 values in int64 tensors) ----------------------------------
    def srdhm(self, a: Any, b: Any) -> Any:
        """SaturatingRoundingDoublingHighMul: round(a·b / 2^31), ties away from zero (C++
        truncating division of ab + nudge); a = b = -2^31 gives 2^31 - 1."""
        torch = self.torch
        a, b = torch.broadcast_tensors(torch.as_tensor(a, device=self.device),
                                       torch.as_tensor(b, device=self.device))
        ab = a * b
        nudge = torch.where(ab >= 0, torch.full_like(ab, 1 << 30),
                            torch.full_like(ab, 1 - (1 << 30)))
        q = torch.div(ab + nudge, 1 << 31, rounding_mode="trunc")
        return torch.where((a == I32_MIN) & (b == I32_MIN), torch.full_like(q, I32_MAX), q)

    def rdbpot(self, x: Any, e: Any) -> Any:
        """RoundingDivideByPOT: x / 2^e, ties away from zero (e in 0..31)."""
        torch = self.torch
        e = torch.broadcast_to(torch.as_tensor(e, device=self.device), x.shape)
        mask = torch.bitwise_left_shift(torch.ones_like(x), e) - 1
        rem = torch.bitwise_and(x, mask)
        thr = torch.bitwise_right_shift(mask, 1) + (x < 0).to(torch.int64)
        return torch.bitwise_right_shift(x, e) + (rem > thr).to(torch.int64)

    def sat_shl(self, x: Any, e: int) -> Any:
        """SaturatingRoundingMultiplyByPOT<e>, e > 0: x·2^e clamped to int32."""
        return self.torch.clamp(self.torch.bitwise_left_shift(x, e), I32_MIN, I32_MAX)


__all__ = ["I32_MAX", "I32_MIN", "TorchBase", "_fmt_range", "_torch"]
