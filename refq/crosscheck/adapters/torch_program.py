"""A torch interpreter of refq integer Programs: every op on torch int64 tensors.

Kernel ops (``kind = "kernel"``) call :class:`~refq.crosscheck.adapters.torch_kernels.TorchKernels`
with the op's params dict (no refq.ops kernel, no refq.intmath; the registry only names each
variant's inputs); the data-movement and table ops of
:mod:`refq.program.movement` are re-written here in torch (reshape, transpose, split,
prepend, patchify, select, mean_pool, threshold, lookup, shift_left, add_exact, affine,
and Swin's roll, window_partition, window_reverse, patch_merge, window_mask).
Like :func:`refq.program.run`, each op's outputs are checked against their declared shape
(SpecError) and integer format (RangeError naming op, tensor and first bad index), so the two
interpreters can be compared tensor by tensor. No float is touched.

torch is imported when :func:`run_program_torch` runs (BackendError if it is missing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.torch_kernels import SUPPORTED, TorchKernels
from refq.errors import BackendError, RangeError, SpecError
from refq.ops.registry import lookup
from refq.program.ir import Op, Program, TensorDecl


def _kernel_inputs(key: str) -> tuple[str, ...]:
    """The names of variant ``key``'s positional inputs, from the registry."""
    return lookup(key).inputs


class _Moves:
    """torch versions of the movement / table ops (same signatures as refq.program.movement:
    inputs positional, params as keywords, a tuple of outputs)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def reshape(self, x: Any, *, shape: list[int]) -> tuple[Any]:
        """Row-major reshape; a leading -1 keeps the batch size."""
        dims = [int(x.shape[0]) if (i == 0 and d == -1) else int(d) for i, d in enumerate(shape)]
        return (x.reshape(dims),)

    def transpose(self, x: Any, *, perm: list[int]) -> tuple[Any]:
        return (x.permute(*[int(p) for p in perm]).contiguous(),)

    def split(self, x: Any, *, axis: int, sections: int) -> tuple[Any, ...]:
        """``sections`` equal parts along ``axis``."""
        size = int(x.shape[axis])
        if size % sections:
            raise SpecError(f"split: axis {axis} of size {size} not divisible by {sections}")
        return tuple(p.contiguous() for p in self.torch.split(x, size // sections, dim=axis))

    def prepend(self, x: Any, token: Any) -> tuple[Any]:
        """(B, N, D), (1, k, D) -> (B, k + N, D)."""
        tok = token.expand(int(x.shape[0]), *token.shape[1:])
        return (self.torch.cat([tok, x], dim=1),)

    def patchify(self, x: Any, *, patch: int) -> tuple[Any]:
        """(B, C, H, W) -> (B, (H/p)(W/p), C·p·p), patches row-major, each (C, p, p)."""
        b, c, h, w = (int(d) for d in x.shape)
        if h % patch or w % patch:
            raise SpecError(f"patchify: image {h}x{w} not divisible by patch {patch}")
        y = x.reshape(b, c, h // patch, patch, w // patch, patch).permute(0, 2, 4, 1, 3, 5)
        return (y.reshape(b, (h // patch) * (w // patch), c * patch * patch).contiguous(),)

    def select(self, x: Any, *, axis: int, index: int) -> tuple[Any]:
        return (self.torch.select(x, axis, index).contiguous(),)

    def mean_pool(self, x: Any, *, axis: int, shift: int) -> tuple[Any]:
        """Sum over ``axis``, arithmetic right shift (floor) by ``shift``."""
        return (self.torch.bitwise_right_shift(x.sum(dim=axis), shift),)

    def _grid(self, x: Any, side: int, op: str) -> Any:
        if x.dim() != 3 or side < 1 or int(x.shape[1]) != side * side:
            raise SpecError(f"{op}: expected (B, {side}x{side}, C) tokens, got shape "
                            f"{tuple(x.shape)}")
        return x.reshape(int(x.shape[0]), side, side, int(x.shape[2]))

    def roll(self, x: Any, *, side: int, shift: int) -> tuple[Any]:
        """Cyclic shift of the side x side token grid by ``shift`` on both axes."""
        g = self._grid(x, side, "roll")
        return (self.torch.roll(g, shifts=(shift, shift), dims=(1, 2)).reshape(x.shape)
                .contiguous(),)

    def window_partition(self, x: Any, *, side: int, window: int) -> tuple[Any]:
        """(B, side², C) -> (B·W, window², C), windows and their tokens row-major."""
        g = self._grid(x, side, "window_partition")
        if window < 1 or side % window:
            raise SpecError(f"window_partition: side {side} not divisible by window {window}")
        b, c, k = int(x.shape[0]), int(x.shape[2]), side // window
        y = g.reshape(b, k, window, k, window, c).permute(0, 1, 3, 2, 4, 5)
        return (y.reshape(b * k * k, window * window, c).contiguous(),)

    def window_reverse(self, x: Any, *, side: int, window: int) -> tuple[Any]:
        """(B·W, window², C) -> (B, side², C)."""
        if window < 1 or side % window:
            raise SpecError(f"window_reverse: side {side} not divisible by window {window}")
        k = side // window
        if x.dim() != 3 or int(x.shape[1]) != window * window or int(x.shape[0]) % (k * k):
            raise SpecError(f"window_reverse: expected (B·{k * k}, {window * window}, C) "
                            f"windows, got shape {tuple(x.shape)}")
        b, c = int(x.shape[0]) // (k * k), int(x.shape[2])
        y = x.reshape(b, k, k, window, window, c).permute(0, 1, 3, 2, 4, 5)
        return (y.reshape(b, side * side, c).contiguous(),)

    def patch_merge(self, x: Any, *, side: int) -> tuple[Any]:
        """(B, side², C) -> (B, (side/2)², 4C): 2x2 neighbours (0,0), (1,0), (0,1), (1,1)."""
        g = self._grid(x, side, "patch_merge")
        if side % 2:
            raise SpecError(f"patch_merge: side {side} is odd")
        y = self.torch.cat([g[:, 0::2, 0::2], g[:, 1::2, 0::2], g[:, 0::2, 1::2],
                            g[:, 1::2, 1::2]], dim=-1)
        h = side // 2
        return (y.reshape(int(x.shape[0]), h * h, 4 * int(x.shape[2])).contiguous(),)

    def window_mask(self, x: Any, mask: Any, *, value: int) -> tuple[Any]:
        """Lanes where the window's 0/1 mask (W, n, n) is 1 become ``value``."""
        if mask.dim() != 3 or x.dim() != 4 or int(x.shape[0]) % int(mask.shape[0]) or (
                tuple(x.shape[2:]) != tuple(mask.shape[1:])):
            raise SpecError(f"window_mask: logits {tuple(x.shape)} and mask "
                            f"{tuple(mask.shape)} do not match")
        w = int(mask.shape[0])
        g = x.reshape(int(x.shape[0]) // w, w, *x.shape[1:])
        m = (mask != 0)[None, :, None]
        fill = self.torch.full_like(g, int(value))
        return (self.torch.where(m, fill, g).reshape(x.shape),)

    def threshold(self, x: Any, thresholds: Any) -> tuple[Any]:
        """Number of thresholds t <= x (thresholds ascending)."""
        t = thresholds.reshape(-1)
        if t.numel() > 1 and bool((t[1:] < t[:-1]).any()):
            raise SpecError("threshold: thresholds must be sorted ascending")
        return (self.torch.searchsorted(t, x.contiguous(), right=True).to(self.torch.int64),)

    def lookup(self, x: Any, table: Any, *, offset: int) -> tuple[Any]:
        """table[x - offset] (a 1-D table, or per row of the last axis)."""
        idx = x - offset
        n = int(table.shape[-1])
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise RangeError(f"lookup: index outside a table of {n} entries")
        if table.dim() == 1:
            return (table[idx],)
        tab = table.expand(*idx.shape[:-1], n)
        return (self.torch.gather(tab, -1, idx),)

    def shift_left(self, x: Any, *, shift: int) -> tuple[Any]:
        return (self.torch.bitwise_left_shift(x, shift),)

    def add_exact(self, a: Any, b: Any) -> tuple[Any]:
        return (a + b,)

    def affine(self, x: Any, m: Any, b: Any) -> tuple[Any]:
        return (x * m + b,)

    def table(self) -> dict[str, Callable[..., tuple[Any, ...]]]:
        names = ("reshape", "transpose", "split", "prepend", "patchify", "select",
                 "mean_pool", "threshold", "lookup", "shift_left", "add_exact", "affine",
                 "roll", "window_partition", "window_reverse", "patch_merge", "window_mask")
        return {n: getattr(self, n) for n in names}


def _check(t: Any, decl: TensorDecl, label: str) -> None:
    """Shape (-1 = any) and format range of ``t`` against ``decl``."""
    got = tuple(int(d) for d in t.shape)
    ok = len(got) == len(decl.shape) and all(
        d in (-1, g) for g, d in zip(got, decl.shape, strict=True)
    )
    if not ok:
        raise SpecError(f"{label}: tensor {decl.name!r} has shape {got}, declared {decl.shape}")
    if t.numel() == 0:
        return
    bad = (t < decl.fmt.min) | (t > decl.fmt.max)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise RangeError(
            f"{label}: tensor {decl.name!r} value {int(t[first])} at index {first} outside "
            f"{decl.fmt.name} [{decl.fmt.min}, {decl.fmt.max}]"
        )


def run_program_torch(
    program: Program,
    inputs: Mapping[str, npt.ArrayLike],
    device: str = "cpu",
    *,
    backend: TorchKernels | None = None,
    keep: str = "all",
) -> dict[str, npt.NDArray[np.int64]]:
    """Run ``program`` op by op in torch int64 on ``device`` ("cpu", "cuda", ...).

    Returns, like :func:`refq.program.run`, every tensor (inputs and intermediates, consts
    excluded; ``keep="outputs"``: only the program outputs) as int64 NumPy arrays. Each
    value is checked against its declared shape (SpecError) and format (RangeError).
    BackendError for a kernel the torch backend does not implement (named).
    """
    b = backend if backend is not None else TorchKernels(device)
    torch = b.torch
    moves = _Moves(torch).table()
    for i, op in enumerate(program.ops):
        if op.kind == "kernel" and op.key not in SUPPORTED:
            raise BackendError(f"torch program: op #{i} ({op.name}): kernel {op.key!r} "
                               "is not implemented by the torch backend")
        if op.kind == "move" and op.key not in moves:
            raise BackendError(f"torch program: op #{i} ({op.name}): movement op {op.key!r} "
                               "is not implemented")
        if op.kind not in ("kernel", "move"):
            raise SpecError(f"op {op.name or op.key}: unknown kind {op.kind!r}")
    missing = [n for n in program.inputs if n not in inputs]
    if missing:
        raise SpecError(f"program {program.name}: missing inputs {missing}")

    def tensor(a: npt.ArrayLike, name: str) -> Any:
        arr = np.asarray(a)
        if arr.dtype.kind not in "iu":
            raise SpecError(f"{name}: expected integers, got dtype {arr.dtype}")
        if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise RangeError(f"{name}: value beyond int64")
        return torch.as_tensor(arr.astype(np.int64), device=b.device)

    env: dict[str, Any] = {}
    for name in program.inputs:
        env[name] = tensor(inputs[name], name)
        _check(env[name], program.tensors[name], "input")
    consts = {n: tensor(v, n) for n, v in program.consts.items()}
    env.update(consts)
    for op in program.ops:
        label = f"{op.key} ({op.name})" if op.name else op.key
        try:
            args = [env[n] for n in op.inputs]
        except KeyError as exc:
            raise SpecError(f"op {label}: input {exc} is not defined") from None
        outs = _execute(b, moves, op, args, label)
        if len(outs) != len(op.outputs):
            raise SpecError(f"op {label}: produced {len(outs)} outputs, declared {op.outputs}")
        for name, value in zip(op.outputs, outs, strict=True):
            if value.dtype != torch.int64:
                raise BackendError(f"op {label}: output {name!r} has dtype {value.dtype}")
            _check(value, program.tensors[name], label)
            env[name] = value
    names = program.outputs if keep == "outputs" else [n for n in env if n not in consts]
    return {n: env[n].cpu().numpy().astype(np.int64) for n in names}


def _execute(b: TorchKernels, moves: dict[str, Callable[..., tuple[Any, ...]]], op: Op,
             args: list[Any], label: str) -> tuple[Any, ...]:
    if op.kind == "kernel":
        names = _kernel_inputs(op.key)
        if len(args) != len(names):
            raise SpecError(f"op {label}: {len(args)} inputs, kernel takes {list(names)}")
        return (b.kernel(op.key, dict(zip(names, args, strict=True)), op.params),)
    return moves[op.key](*args, **op.params)


__all__ = ["run_program_torch"]
