"""The torch kernels of the nonlinear variants: softmax (refq, ibert, shiftmax,
shiftmax_deploy, tflite), GELU (ibert, shiftgelu, lut) and LayerNorm (refq, ibert, ivit),
each re-written in torch int64 from the formulas of its refq.ops docstring (no refq.ops, no
refq.intmath; params from the params dict)."""

from __future__ import annotations

from typing import Any

from refq.crosscheck.adapters.torch_base import I32_MAX, TorchBase, _fmt_range
from refq.errors import BackendError

T = dict[str, Any]


class TorchNonlinear(TorchBase):
    """Softmax, GELU and LayerNorm variants (module docstring); ``t`` maps input names to
    int64 tensors, ``p`` is the params dict."""

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

    def _i_exp(self, x: Any, p: T) -> Any:
        """I-BERT i-exp of x - max(x): q = ⌊d/x0⌋, r = d - x0·q, poly = (r + b)·r + c,
        exp = max(poly·2^(n-q), 0)."""
        torch = self.torch
        x0, n = int(p["x0_int"]), int(p["n"])
        d = torch.clamp(x - torch.amax(x, dim=-1, keepdim=True), min=n * x0)
        q = torch.div(d, x0, rounding_mode="floor")
        r = d - x0 * q
        poly = (r + int(p["b_int"])) * r + int(p["c_int"])
        return torch.clamp(torch.bitwise_left_shift(poly, n - q), min=0)

    def _softmax_ibert(self, t: T, p: T) -> Any:
        """exp16 = clamp(round_half_even(exp·m/2^c), int16); factor = ⌊2^32/Σexp16⌋;
        out = clamp(⌊exp16·factor/2^(32-b)⌋, uint<b>)."""
        torch = self.torch
        e = self._i_exp(t["x"], p)
        e16 = self._round_shift(e * int(p["exp_multiplier"]), int(p["exp_shift"]), "half_even")
        e16 = torch.clamp(e16, -(2**15), 2**15 - 1)
        total = e16.sum(dim=-1, keepdim=True)
        if bool((total <= 0).any()):
            raise BackendError("torch backend: softmax.ibert row with Σexp16 = 0")
        factor = torch.div(torch.full_like(total, 2**32), total, rounding_mode="floor")
        b = int(p["out_bits"])
        out = torch.bitwise_right_shift(e16 * factor, 32 - b)
        return torch.clamp(out, 0, (1 << b) - 1)

    def _softmax_shiftmax(self, t: T, p: T, deploy: bool) -> Any:
        """I-ViT shift-exp (d·log2e ≈ d + d/2 - d/16), exp saturating sum, f = ⌊(2^31-1)/Σ⌋,
        out = ⌊exp·f / 2^(32-b)⌋."""
        torch = self.torch
        x = t["x"]
        x0, n = int(p["x0_int"]), int(p["n"])
        d = x - torch.amax(x, dim=-1, keepdim=True)
        d = d + torch.bitwise_right_shift(d, 1) - torch.bitwise_right_shift(d, 4)
        d = torch.clamp(d, min=n * x0)
        q = torch.div(d, x0, rounding_mode="floor")
        r = d - x0 * q
        sh = n - q
        if deploy:
            e = torch.bitwise_left_shift(torch.bitwise_right_shift(r, 1) - x0, sh)
        else:
            e = torch.bitwise_right_shift(torch.bitwise_left_shift(r - 2 * x0, sh), 1)
        e = torch.clamp(e, min=0)
        total = torch.clamp(e.sum(dim=-1, keepdim=True), max=I32_MAX)
        f = torch.div(torch.full_like(total, I32_MAX), torch.clamp(total, min=1),
                      rounding_mode="floor")
        return torch.bitwise_right_shift(e * f, 32 - int(p["out_bits"]))

    def _softmax_shiftmax_train(self, t: T, p: T) -> Any:
        return self._softmax_shiftmax(t, p, deploy=False)

    def _softmax_shiftmax_deploy(self, t: T, p: T) -> Any:
        return self._softmax_shiftmax(t, p, deploy=True)

    def _exp_on_negative_values(self, a: Any) -> Any:
        """gemmlowp exp_on_negative_values, Q5.26 a <= 0 → Q0.31: exp on [-1/4, 0) by a
        Taylor polynomial around -1/8, then a barrel of exp(-2^k) factors, k = -2..4."""
        torch = self.torch
        quarter = 1 << 24  # 1/4 in Q5.26
        a_mod = torch.bitwise_and(a, quarter - 1) - quarter
        x = self.sat_shl(a_mod, 5) + (1 << 28)  # Q0.31, + 1/8
        x2 = self.srdhm(x, x)
        x3 = self.srdhm(x2, x)
        x4 = self.srdhm(x2, x2)
        poly = self.rdbpot(self.srdhm(self.rdbpot(x4, 2) + x3, 715827883) + x2, 1)
        e_eighth = 1895147668  # exp(-1/8) in Q0.31
        result = e_eighth + self.srdhm(torch.full_like(x, e_eighth), x + poly)
        remainder = a_mod - a
        for k, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                        (2, 39332535), (3, 720401), (4, 242)):
            bit = torch.bitwise_and(remainder, 1 << (26 + k)) != 0
            result = torch.where(bit, self.srdhm(result, mult), result)
        return torch.where(a == 0, torch.full_like(result, I32_MAX), result)

    def _one_over_one_plus_x(self, a: Any) -> Any:
        """gemmlowp one_over_one_plus_x_for_x_in_0_1 (Q0.31 → Q0.31): half_den =
        RoundingHalfSum(a, 1), x = 48/17 - 32/17·half_den (Q2.29), three Newton steps."""
        torch = self.torch
        s = a + I32_MAX
        half_den = torch.div(s + torch.where(s >= 0, 1, -1), 2, rounding_mode="trunc")
        x = 1515870810 + self.srdhm(half_den, -1010580540)
        for _ in range(3):
            x = x + self.sat_shl(self.srdhm(x, (1 << 29) - self.srdhm(half_den, x)), 2)
        return self.sat_shl(x, 1)

    def _softmax_tflite(self, t: T, p: T) -> Any:
        """TFLite int8 softmax: diff (masked below diff_min), SRDHM to Q5.26, exp, Σ RDBPOT
        by 12, headroom, reciprocal, RDBPOT to 8 bits, offset, clamp."""
        torch = self.torch
        x = t["x"]
        lo, hi = _fmt_range(str(p["out_format"]))
        diff = x - torch.amax(x, dim=-1, keepdim=True)
        valid = diff >= int(p["diff_min"])
        shifted = torch.bitwise_left_shift(torch.where(valid, diff, 0),
                                           int(p["input_left_shift"]))
        e = torch.where(valid, self._exp_on_negative_values(
            self.srdhm(shifted, int(p["input_multiplier"]))), 0)
        total = self.rdbpot(e, 12).sum(dim=-1, keepdim=True)
        headroom = 31 - (self._bit_length(torch.clamp(total, min=1)) - 1)
        rec = self._one_over_one_plus_x(torch.bitwise_left_shift(total, headroom) - (1 << 31))
        out = self.rdbpot(self.srdhm(rec, e), (12 - headroom) + 31 - 8)
        out = torch.clamp(out + (lo if lo < 0 else 0), lo, hi)
        return torch.where(valid, out, torch.full_like(out, lo))

    def _gelu_ibert(self, t: T, p: T) -> Any:
        torch = self.torch
        q = t["x"]
        b = int(p["b_int"])
        a = torch.clamp(torch.abs(q), max=-b)
        y = torch.sign(q) * ((a + b) * (a + b) + int(p["c_int"]))
        y = torch.bitwise_right_shift(y, int(p["erf_shift"]))
        return q * (y + int(p["shift_int"]))

    def _shift_exp_sat(self, d: Any, x0: int, n: int) -> Any:
        """I-ViT shift-exp of any-signed d, saturated to [0, 2^31 - 1]."""
        torch = self.torch
        d = d + torch.bitwise_right_shift(d, 1) - torch.bitwise_right_shift(d, 4)
        d = torch.clamp(d, min=n * x0)
        q = torch.div(d, x0, rounding_mode="floor")
        sh = n - q
        base = d - x0 * q - 2 * x0
        big = sh >= 32
        e = torch.bitwise_right_shift(torch.bitwise_left_shift(base, torch.where(big, 0, sh)), 1)
        return torch.where(big, torch.full_like(e, I32_MAX), torch.clamp(e, max=I32_MAX))

    def _gelu_shiftgelu(self, t: T, p: T) -> Any:
        """x·σ(1.702x), σ = e1/(e1 + e2) of shift-exps of x - max and -max, f = ⌊(2^31-1)/Σ⌋,
        σ = ⌊e1·f/2^(32-b)⌋, out = x·σ."""
        torch = self.torch
        q = t["x"]
        x0, n = int(p["x0_int"]), int(p["n"])
        m = torch.amax(q, dim=-1, keepdim=True)
        e1 = self._shift_exp_sat(q - m, x0, n)
        e2 = self._shift_exp_sat(-m, x0, n)
        total = torch.clamp(e1 + e2, max=I32_MAX)
        f = torch.div(torch.full_like(total, I32_MAX), torch.clamp(total, min=1),
                      rounding_mode="floor")
        sig = torch.bitwise_right_shift(e1 * f, 32 - int(p["out_bits"]))
        return q * sig

    def _gelu_lut(self, x: Any, p: dict[str, Any]) -> Any:
        """out = table[x - in_min] (table from the params, 2^bits entries)."""
        torch = self.torch
        lo, _ = _fmt_range(str(p["in_format"]))
        table = torch.tensor([int(v) for v in p["table"]], dtype=torch.int64, device=self.device)
        idx = x - lo
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= table.numel()):
            raise BackendError(f"torch backend: gelu.lut input outside {p['in_format']}")
        return table[idx]

    def _gelu_lut_x(self, t: T, p: T) -> Any:
        return self._gelu_lut(t["x"], p)

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

    def _layernorm_refq_x(self, t: T, p: T) -> Any:
        return self._layernorm_refq(t["x"], p)

    def _centered(self, x: Any, p: T) -> tuple[Any, Any, int]:
        """y = a - round_half_even(Σa / C) with a = (x - zp) << shift_c; also bias, C."""
        torch = self.torch
        c = int(x.shape[-1])
        if c == 0:
            raise BackendError("torch backend: layernorm over an empty channel axis")
        sh = self._per_channel(p["channel_shift"], c, "channel_shift")
        a = torch.bitwise_left_shift(x - int(p["zero_point"]), sh)
        mean = self._div_half_even(a.sum(dim=-1, keepdim=True), torch.full_like(a[..., :1], c))
        return a - mean, self._per_channel(p["bias"], c, "bias"), c

    def _layernorm_ibert(self, t: T, p: T) -> Any:
        """std = isqrt(Σ(y >> s)²)·2^s (>= 1), factor = ⌊2^31/std⌋, out = ⌊y·factor/2⌋ +
        bias."""
        torch = self.torch
        y, bias, _ = self._centered(t["x"], p)
        s = int(p["var_shift"])
        ys = torch.bitwise_right_shift(y, s)
        std = torch.clamp(torch.bitwise_left_shift(
            self.isqrt((ys * ys).sum(dim=-1, keepdim=True)), s), min=1)
        factor = torch.div(torch.full_like(std, 2**31), std, rounding_mode="floor")
        return torch.bitwise_right_shift(y * factor, 1) + bias

    def _layernorm_ivit(self, t: T, p: T) -> Any:
        """k: 10 Newton steps ⌊(k + ⌊v/k⌋)/2⌋ from 2^16 on v = Σy²; factor = ⌊(2^31-1)/k⌋;
        out = ⌊y·factor/2⌋ + bias."""
        torch = self.torch
        y, bias, _ = self._centered(t["x"], p)
        v = (y * y).sum(dim=-1, keepdim=True)
        k = torch.full_like(v, 1 << 16)
        for _ in range(10):
            k = torch.bitwise_right_shift(k + torch.div(v, k, rounding_mode="floor"), 1)
        factor = torch.div(torch.full_like(k, I32_MAX), k, rounding_mode="floor")
        return torch.bitwise_right_shift(y * factor, 1) + bias


__all__ = ["TorchNonlinear"]
