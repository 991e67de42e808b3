"""Program cases: the bundled digits DeiT lowered to an integer Program and run on test
images, with every constant (weights, biases, thresholds, tables), the input pixels and
EVERY intermediate stored — the whole model, and its first encoder block cut into the
attention block, the MLP block and the full encoder block.

A program case's ``meta["program"]`` is the program file's JSON (``refq.program.files``:
ops with their integer params, tensor declarations with formats and, as information
only, real scales), so a testbench can re-run it op by op by hand; its tensors are the
program inputs (role ``input``), constants (``param``), intermediates (``intermediate``)
and outputs (``output``). Re-computation lowers again from the same model, spec and
calibration images (deterministic) and runs the interpreter.

Specs: ``minmax`` (refq.program.gap.minmax_spec: per-channel symmetric weights, per-tensor
asymmetric min-max activations at every linear/matmul input; 32 calibration images) at
W8A8 and W4A4. Every case uses the first test image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.golden.case import Case, Role
from refq.golden.registry import register
from refq.program.ir import Op, Program

N_CALIB = 32
BLOCKS: dict[str, tuple[str, ...]] = {
    "attention": ("blocks.0.norm1", "blocks.0.attn.", "blocks.0.add1"),
    "mlp": ("blocks.0.norm2", "blocks.0.mlp.", "blocks.0.add2"),
    "encoder": ("blocks.0.",),
}
BITS = (8, 4)


@lru_cache(maxsize=4)
def _lowered(bits: int) -> tuple[Program, npt.NDArray[np.uint8]]:
    """(program, test pixels) of the bundled model under the min-max spec at W<bits>A<bits>."""
    from refq.nn import load_bundled
    from refq.program import lower
    from refq.program.gap import minmax_spec

    model, data = load_bundled()
    folded = model.fold_normalization()
    calib, _ = data.split("calib")
    spec = minmax_spec(folded, calib[:N_CALIB], bits)
    program = lower(folded, spec, calib[:N_CALIB], name=f"deit_digits.minmax.w{bits}a{bits}")
    test, _ = data.split("test")
    return program, np.asarray(test[:1], dtype=np.uint8)


def subprogram(program: Program, prefixes: tuple[str, ...], name: str) -> Program:
    """The ops of ``program`` all of whose outputs start with one of ``prefixes``, as a
    program of their own: tensors they read but do not compute become its inputs (consts
    stay consts); its outputs are the tensors no selected op reads."""
    ops = [op for op in program.ops if all(o.startswith(prefixes) for o in op.outputs)]
    if not ops:
        raise GoldenError(f"subprogram {name}: no op matches {prefixes}")
    sub = Program(name, meta=dict(program.meta, subprogram=list(prefixes)))
    produced = {o for op in ops for o in op.outputs}
    read = {i for op in ops for i in op.inputs}
    for op in ops:
        for t in op.inputs:
            if t in sub.tensors or t in produced:
                continue
            d = program.tensors[t]
            if t in program.consts:
                sub.const(t, program.consts[t], d.fmt, d.doc, d.scale, d.zero_point)
            else:
                sub.declare(t, d.shape, d.fmt, "input", d.scale, d.zero_point, d.doc)
        for t in op.outputs:
            d = program.tensors[t]
            sub.declare(t, d.shape, d.fmt, "value", d.scale, d.zero_point, d.doc)
        sub.add(Op(op.kind, op.key, op.inputs, op.outputs, op.params, op.name))
    sub.outputs = [t for op in ops for t in op.outputs if t not in read]
    sub.validate()
    return sub


def program_case(
    name: str, seed: int, kind: str, program: Program, inputs: Mapping[str, npt.ArrayLike]
) -> Case:
    """Run ``program`` on ``inputs`` and package everything as a golden Case."""
    from refq.program.files import program_dict
    from refq.program.run import run

    values = run(program, inputs)
    pdict = program_dict(program)
    for decl in pdict["tensors"].values():  # information only: 9 significant digits, so
        if decl["scale"] is not None:  # last-bit float differences between NumPy builds
            decl["scale"] = float(f"{decl['scale']:.9g}")  # do not change the bytes
    case = Case(name, kind, seed, {"program": pdict})

    def add(t: str, v: npt.ArrayLike, role: Role) -> None:
        case.add(t, v, program.tensors[t].fmt, role)

    for t in program.inputs:
        add(t, values[t], "input")
    for t in sorted(program.consts):
        add(t, program.consts[t], "param")
    for t, v in values.items():
        if t not in program.inputs:
            add(t, v, "output" if t in program.outputs else "intermediate")
    return case


def program_of(case: Case) -> tuple[Program, dict[str, npt.NDArray[np.int64]]]:
    """The Program stored in a program/block case (``meta["program"]`` plus its ``param``
    tensors) and its inputs — what a testbench re-runs by hand."""
    from refq.program.ir import TensorDecl

    d = case.meta.get("program")
    if not isinstance(d, dict):
        raise GoldenError(f"case {case.name}: no program in meta.json")
    try:
        prog = Program(
            str(d["name"]),
            {n: TensorDecl.from_dict(n, t) for n, t in d["tensors"].items()},
            {n: t.values.astype(np.int64) for n, t in case.tensors.items() if t.role == "param"},
            [Op.from_dict(i, o) for i, o in enumerate(d["ops"])],
            [str(v) for v in d["inputs"]],
            [str(v) for v in d["outputs"]],
            dict(d["meta"]),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise GoldenError(f"case {case.name}: malformed program ({exc})") from None
    prog.validate()
    inputs = {n: t.values.astype(np.int64) for n, t in case.tensors.items() if t.role == "input"}
    return prog, inputs


def _model_case(bits: int, name: str, seed: int) -> Case:
    program, pixels = _lowered(bits)
    return program_case(name, seed, "program", program, {"input": pixels})


def _block_case(bits: int, block: str, name: str, seed: int) -> Case:
    program, pixels = _lowered(bits)
    from refq.program.run import run

    full = run(program, {"input": pixels})
    sub = subprogram(program, BLOCKS[block], f"{program.name}.{block}")
    return program_case(name, seed, "block", sub, {t: full[t] for t in sub.inputs})


def _register(name: str, kind: str, build: Callable[..., Case], doc: str, *args: Any) -> None:
    fn = partial(build, *args, name)
    register(name, kind, 0, doc)(fn)


for _bits in BITS:
    _register(
        f"program.deit_digits.minmax.w{_bits}a{_bits}", "program", _model_case,
        f"bundled digits DeiT, min-max W{_bits}A{_bits}, 1 test image, every intermediate",
        _bits,
    )
    for _block in BLOCKS:
        _register(
            f"block.deit_digits.minmax.w{_bits}a{_bits}.{_block}", "block", _block_case,
            f"{_block} block 0 of the bundled DeiT, min-max W{_bits}A{_bits}, 1 test image",
            _bits, _block,
        )

__all__ = ["BLOCKS", "program_case", "program_of", "subprogram"]
