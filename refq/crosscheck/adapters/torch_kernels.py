"""Integer kernels in torch: an independent re-implementation of refq's kernel variants in
torch int64 tensor ops (no float math; refq.ops / refq.intmath are not called — params are
read from the params dict of a case or program op).

:class:`TorchKernels` implements the variants of :attr:`TorchKernels.IMPLEMENTS` (registry
key → method); :data:`SUPPORTED` is that table's keys. Requantization, GEMMs and adds are
here, the nonlinear variants in :mod:`refq.crosscheck.adapters.torch_nonlinear`, the shared
arithmetic in :mod:`refq.crosscheck.adapters.torch_base`. The ``torch`` backend
(:mod:`refq.crosscheck.adapters.torch_backend`) and the torch program interpreter
(:mod:`refq.crosscheck.adapters.torch_program`) both run kernels through it.

Exact integer matmul: torch.matmul on int64 where the device supports it (CPU); elsewhere
(CUDA has no int64 GEMM) a broadcast multiply-and-sum in int64, chunked over rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from refq.crosscheck.adapters.torch_nonlinear import TorchNonlinear
from refq.errors import BackendError

_BINDS = {"requantize": "family", "add": "scheme"}
"""Params fields naming the variant (refq.ops registry ``binds``): checked before running."""


class TorchKernels(TorchNonlinear):
    """Integer kernels in torch int64 tensors on ``device`` ("cpu" or "cuda"), one method
    per variant (:attr:`IMPLEMENTS`)."""

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

    IMPLEMENTS: ClassVar[dict[str, str]] = {
        "requantize.double": "_requant_x",
        "requantize.single": "_requant_x",
        "requantize.dyadic": "_requant_x",
        "linear.gemm": "_linear",
        "matmul.gemm": "_matmul_gemm",
        "add.ivit": "_add",
        "add.shared_shift": "_add",
        "softmax.refq": "_softmax_refq",
        "softmax.ibert": "_softmax_ibert",
        "softmax.shiftmax": "_softmax_shiftmax_train",
        "softmax.shiftmax_deploy": "_softmax_shiftmax_deploy",
        "softmax.tflite": "_softmax_tflite",
        "softmax.lis": "_softmax_lis",
        "gelu.ibert": "_gelu_ibert",
        "gelu.shiftgelu": "_gelu_shiftgelu",
        "gelu.lut": "_gelu_lut_x",
        "layernorm.refq": "_layernorm_refq_x",
        "layernorm.ibert": "_layernorm_ibert",
        "layernorm.ivit": "_layernorm_ivit",
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

    def _softmax_lis(self, t: dict[str, Any], p: dict[str, Any]) -> Any:
        """FQ-ViT log-int softmax: I-BERT i-exp, ratio = round_half_even(Σexp / exp),
        k = ⌊log2 ratio⌋ + [ratio - 2^k ≥ 2^(k-1)], code min(k, 2^bits) with exp = 0 (and an
        all-zero row) giving 2^bits; integers only."""
        torch = self.torch
        x = t["x"]
        x0, b, c, n = int(p["x0_int"]), int(p["b_int"]), int(p["c_int"]), int(p["n"])
        d = x - torch.amax(x, dim=-1, keepdim=True)
        d = torch.clamp(d, min=n * x0)
        q = torch.div(d, x0, rounding_mode="floor")
        r = d - x0 * q
        poly = (r + b) * r + c
        e = torch.clamp(torch.bitwise_left_shift(poly, n - q), min=0)
        total = e.sum(dim=-1, keepdim=True).expand_as(e)
        zero = e == 0
        den = torch.where(zero, torch.ones_like(e), e)
        quo = torch.div(total, den, rounding_mode="floor")
        rem2 = 2 * (total - quo * den)
        ratio = quo + ((rem2 > den) | ((rem2 == den) & (torch.remainder(quo, 2) == 1))).long()
        v = torch.clamp(ratio, min=1)
        k = torch.zeros_like(v)
        for sh in (32, 16, 8, 4, 2, 1):  # ⌊log2 v⌋ by halving, integers only
            big = torch.bitwise_right_shift(v, sh) > 0
            v = torch.where(big, torch.bitwise_right_shift(v, sh), v)
            k = k + big.long() * sh
        pow_k = torch.bitwise_left_shift(torch.ones_like(k), k)
        k = k + ((k > 0) & (ratio - pow_k >= torch.bitwise_right_shift(pow_k, 1))).long()
        top = 1 << int(p["bits"])
        return torch.where(zero | (k >= top), torch.full_like(k, top), k)


SUPPORTED: tuple[str, ...] = tuple(TorchKernels.IMPLEMENTS)
"""The registry keys the torch kernels implement (derived from :attr:`TorchKernels.IMPLEMENTS`)."""

__all__ = ["SUPPORTED", "TorchKernels"]
