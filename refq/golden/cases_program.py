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

Specs: ``minmax`` (refq.calib.minmax.minmax_spec: per-channel symmetric weights, per-tensor
asymmetric min-max activations at every linear/matmul input; 32 calibration images) at
W8A8 and W4A4. Every case uses the first test image.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, SpecError
from refq.golden.case import Case, Role
from refq.golden.registry import register
from refq.program.ir import Op, Program, TensorDecl

N_CALIB = 32
BLOCKS: dict[str, tuple[str, ...]] = {
    "attention": ("blocks.0.norm1", "blocks.0.attn.", "blocks.0.add1"),
    "mlp": ("blocks.0.norm2", "blocks.0.mlp.", "blocks.0.add2"),
    "encoder": ("blocks.0.",),
}
BITS = (8, 4)


@lru_cache(maxsize=8)
def _lowered(bits: int, kernels: str | None = None) -> tuple[Program, npt.NDArray[np.uint8]]:
    """(program, test pixels) of the bundled model under the min-max spec at W<bits>A<bits>,
    lowered with the kernel profile ``kernels`` (None: the default, refq)."""
    from refq.calib.minmax import minmax_spec
    from refq.nn import load_bundled
    from refq.program import lower

    model, data = load_bundled()
    folded = model.fold_normalization()
    calib, _ = data.split("calib")
    spec = minmax_spec(folded, calib[:N_CALIB], bits)
    suffix = "" if kernels is None else f".{kernels}"
    program = lower(folded, spec, calib[:N_CALIB], kernels=kernels,
                    name=f"deit_digits.minmax.w{bits}a{bits}{suffix}")
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


TOKEN_FREE_MOVES = frozenset(
    {"reshape", "transpose", "split", "threshold", "lookup", "shift_left", "add_exact", "affine"}
)
"""Movement ops whose params name no token count other than a reshape's ``shape``."""


def token_axes(decl: TensorDecl, n_tokens: int) -> list[int]:
    """Axes (after the batch axis) of a value/input of size ``n_tokens``: its token axes."""
    return [i for i, d in enumerate(decl.shape) if i > 0 and d == n_tokens]


def with_tokens(program: Program, n_tokens: int, keep: int, name: str) -> Program:
    """``program`` (one encoder block or a part of it, built for ``n_tokens`` tokens) for
    ``keep`` tokens: every token axis of every input and value declaration, and every
    ``n_tokens`` entry of a reshape's target shape, becomes ``keep``.

    A transformer block's computation is defined for any token count (its weights, tables
    and requantization parameters do not depend on it). Token axes are recognised by their
    size, so ``n_tokens`` must differ from every other dimension of the program (checked:
    GoldenError otherwise), and only token-agnostic movement ops may appear."""
    if not 0 < keep <= n_tokens:
        raise GoldenError(f"{name}: keep {keep} tokens of {n_tokens}?")
    const_dims = {d for n in program.consts for d in program.tensors[n].shape}
    value_dims = {d for t in program.tensors.values() if t.kind != "const"
                  for i, d in enumerate(t.shape) if i > 0}
    other = (const_dims | value_dims) - {n_tokens}
    if n_tokens in const_dims or not value_dims & {n_tokens}:
        raise GoldenError(f"{name}: token count {n_tokens} is ambiguous or absent "
                          f"(other dimensions {sorted(other)})")
    out = Program(name, meta=dict(program.meta, tokens=keep, model_tokens=n_tokens))
    for t, d in program.tensors.items():
        if d.kind == "const":
            out.const(t, program.consts[t], d.fmt, d.doc, d.scale, d.zero_point)
            continue
        axes = token_axes(d, n_tokens)
        shape = tuple(keep if i in axes else v for i, v in enumerate(d.shape))
        out.declare(t, shape, d.fmt, d.kind, d.scale, d.zero_point, d.doc)
    for op in program.ops:
        params = dict(op.params)
        if op.kind == "move":
            if op.key not in TOKEN_FREE_MOVES:
                raise GoldenError(f"{name}: op {op.key} ({op.name}) may depend on the "
                                  "token count")
            if op.key == "reshape":
                params["shape"] = [keep if (i > 0 and v == n_tokens) else v
                                   for i, v in enumerate(params["shape"])]
        out.add(Op(op.kind, op.key, op.inputs, op.outputs, params, op.name))
    out.outputs = list(program.outputs)
    out.validate()
    return out


def program_case(
    name: str,
    seed: int,
    kind: str,
    program: Program,
    inputs: Mapping[str, npt.ArrayLike],
    extra: Mapping[str, Any] | None = None,
    keep: Callable[[str], bool] | None = None,
) -> Case:
    """Run ``program`` on ``inputs`` and package everything as a golden Case.

    ``extra``: more JSON-safe entries of meta.json. ``keep``: which intermediates to store
    (all if None; inputs, params and outputs are always stored)."""
    from refq.program.files import program_dict
    from refq.program.run import run

    values = run(program, inputs)
    pdict = program_dict(program)
    for decl in pdict["tensors"].values():  # information only: 9 significant digits, so
        if decl["scale"] is not None:  # last-bit float differences between NumPy builds
            decl["scale"] = float(f"{decl['scale']:.9g}")  # do not change the bytes
    case = Case(name, kind, seed, {**(extra or {}), "program": pdict})

    def add(t: str, v: npt.ArrayLike, role: Role) -> None:
        case.add(t, v, program.tensors[t].fmt, role)

    for t in program.inputs:
        add(t, values[t], "input")
    for t in sorted(program.consts):
        add(t, program.consts[t], "param")
    for t, v in values.items():
        if t in program.outputs:
            add(t, v, "output")
        elif t not in program.inputs and (keep is None or keep(t)):
            add(t, v, "intermediate")
    return case


def program_of(case: Case) -> tuple[Program, dict[str, npt.NDArray[np.int64]]]:
    """The Program stored in a program/block case (``meta["program"]`` plus its ``param``
    tensors) and its inputs — what a testbench re-runs by hand."""
    from refq.program.schema import program_from_dict

    d = case.meta.get("program")
    if not isinstance(d, dict):
        raise GoldenError(f"case {case.name}: no program in meta.json")
    try:
        prog = program_from_dict(d, f"case {case.name}: program", with_hashes=False)
    except SpecError as exc:
        raise GoldenError(str(exc)) from None
    params = {n for n, t in case.tensors.items() if t.role == "param"}
    consts = {n for n, t in prog.tensors.items() if t.kind == "const"}
    if params != consts:
        raise GoldenError(f"case {case.name}: param tensors {sorted(params ^ consts)} do not "
                          "match the program's consts")
    prog.consts = {n: case.tensors[n].values.astype(np.int64) for n in sorted(consts)}
    try:
        prog.validate()
    except SpecError as exc:
        raise GoldenError(f"case {case.name}: {exc}") from None
    inputs = {n: t.values.astype(np.int64) for n, t in case.tensors.items() if t.role == "input"}
    return prog, inputs


def block_part(case: Case, part: str, name: str | None = None) -> Case:
    """The ``part`` ("attention" or "mlp") of an encoder block case, from its files alone:
    the ops of that part (:data:`BLOCKS`), their tensors as stored — no re-computation.

    The attention part reads ``embed`` and ends at ``blocks.0.add1``; the MLP part reads
    ``blocks.0.add1`` (the attention part's output) and ends at ``blocks.0.add2``. For the
    min-max cases this reproduces the separately computed ``.attention``/``.mlp`` cases
    byte for byte (tested); the committed set stores only encoder blocks and leaves the
    parts to this function (golden/ size budget)."""
    if part not in ("attention", "mlp") or case.meta.get("program", {}).get("meta", {}).get(
        "subprogram"
    ) != list(BLOCKS["encoder"]):
        raise GoldenError(f"case {case.name}: block_part({part!r}) needs an encoder block case")
    from refq.program.files import program_dict

    prog, _ = program_of(case)
    base = prog.name.removesuffix(".encoder")
    sub = subprogram(prog, BLOCKS[part], f"{base}.{part}")
    extra = {k: v for k, v in case.meta.items() if k != "program"}
    if isinstance(extra.get("block"), dict):
        extra["block"] = dict(extra["block"], part=part)
    out = Case(name or case.name.removesuffix(".encoder") + f".{part}", case.kind, case.seed,
               {**extra, "program": program_dict(sub)})
    for t in sub.inputs:
        out.add(t, case.tensors[t].values, sub.tensors[t].fmt, "input")
    for t in sorted(sub.consts):
        out.add(t, case.tensors[t].values, sub.tensors[t].fmt, "param")
    for op in sub.ops:
        for t in op.outputs:
            role: Role = "output" if t in sub.outputs else "intermediate"
            out.add(t, case.tensors[t].values, sub.tensors[t].fmt, role)
    return out


def _model_case(bits: int, name: str, seed: int) -> Case:
    program, pixels = _lowered(bits)
    return program_case(name, seed, "program", program, {"input": pixels})


def _block_case(bits: int, block: str, name: str, seed: int) -> Case:
    program, pixels = _lowered(bits)
    from refq.program.run import run

    full = run(program, {"input": pixels})
    sub = subprogram(program, BLOCKS[block], f"{program.name}.{block}")
    return program_case(name, seed, "block", sub, {t: full[t] for t in sub.inputs})


BLOCK_TOKENS = 17
"""Tokens fed to the per-method block cases: the class token and the first 16 patches."""


@lru_cache(maxsize=16)
def _method_lowered(method: str, bits: int) -> tuple[Program, dict[str, npt.NDArray[np.int64]]]:
    """Block 0 of the bundled model under the stored spec of ``method`` (refq.golden.specs),
    lowered and run on the first test image: (program, every tensor)."""
    from refq.golden.specs import block0_model, calib_images, golden_image, load_spec
    from refq.program import lower
    from refq.program.run import run

    spec = load_spec(method, bits)
    name = f"deit_digits.{method}.w{bits}a{bits}"
    program = lower(block0_model(), spec, calib_images(), name=name)
    return program, run(program, {"input": golden_image()})


def _block_on_first_tokens(program: Program, values: dict[str, Any], part: str,
                           tokens: int) -> tuple[Program, dict[str, Any]]:
    """Block ``part`` of ``program`` (BLOCKS) as its own program on the first ``tokens``
    tokens, and its inputs: those tokens of the whole program's ``values``."""
    sub = subprogram(program, BLOCKS[part], f"{program.name}.{part}")
    n_tok = program.tensors["embed"].shape[1]
    short = with_tokens(sub, n_tok, tokens, sub.name)
    inputs = {}
    for t in sub.inputs:
        v = values[t]
        for ax in token_axes(sub.tensors[t], n_tok):
            v = np.take(v, np.arange(tokens), axis=ax)
        inputs[t] = v
    return short, inputs


def _method_block_case(method: str, bits: int, block: str, name: str, seed: int) -> Case:
    from refq.golden.specs import MODEL_NOTE, N_CALIB, spec_name

    program, values = _method_lowered(method, bits)
    n_tok = program.tensors["embed"].shape[1]
    short, inputs = _block_on_first_tokens(program, values, block, BLOCK_TOKENS)
    extra = {"block": {
        "block": "blocks.0",
        "part": block,
        "tokens": BLOCK_TOKENS,
        "model_tokens": n_tok,
        "inputs": (f"the first {BLOCK_TOKENS} tokens (class token + patches 0..{BLOCK_TOKENS - 2}"
                   f") of each block input as computed by the whole program on test image 0; "
                   "a block's computation is valid for any token count"),
        "spec": f"refq/golden/specs/{spec_name(method, bits)} (stored, not recalibrated)",
        "lowered_from": MODEL_NOTE,
        "lowering_calib_images": f"bundled digits calib split, first {N_CALIB}",
    }}
    return program_case(name, seed, "block", short, inputs, extra)


TINY = "deit_tiny_patch16_224"
TINY_SEED = 7
TINY_CALIB = 4
TINY_DEPTH = 2
"""deit_tiny's 12 blocks do not fit the golden/ budget (int8 weights alone are 5.7 MB, the
program in meta.json 2.1 MB); the committed case keeps its geometry with 2 blocks."""
TINY_NAME = f"program.deit_tiny_random.depth{TINY_DEPTH}.minmax.w8a8"
TINY_FULL_DEPTH = 12
TINY_FULL_NAME = "program.deit_tiny_random.minmax.w8a8"
"""The full-depth deit_tiny case: registered, not committed (extended), every intermediate."""


def tiny_boundary(t: str) -> bool:
    """The intermediates a deit_tiny case stores: the block boundaries — ``embed`` (input
    of block 0), ``blocks.i.add1`` (attention → MLP) and ``blocks.i.add2`` (output of
    block i)."""
    return t == "embed" or (t.startswith("blocks.") and t.endswith((".add1", ".add2")))


@lru_cache(maxsize=2)
def _tiny(seed: int, depth: int) -> tuple[Program, npt.NDArray[np.uint8]]:
    """deit_tiny geometry at ``depth`` blocks with seeded random weights, min-max W8A8 on
    seeded random images: (program, the test image)."""
    from refq.calib.minmax import minmax_spec
    from refq.nn.factory import create_model
    from refq.program import lower

    model = create_model(TINY, None, seed=seed, depth=depth).fold_normalization()
    rng = np.random.default_rng(seed)
    cfg = model.config
    shape = (TINY_CALIB + 1, cfg.in_chans, cfg.img_size, cfg.img_size)
    images = rng.integers(0, 256, size=shape, dtype=np.int64).astype(np.uint8)
    calib, test = images[:TINY_CALIB], images[TINY_CALIB:]
    spec = minmax_spec(model, calib, 8)
    name = (f"{TINY}.random{seed}.minmax.w8a8" if depth == TINY_FULL_DEPTH
            else f"{TINY}.random{seed}.depth{depth}.minmax.w8a8")
    return lower(model, spec, calib, name=name), test


def _tiny_case(depth: int, name: str, seed: int) -> Case:
    program, image = _tiny(seed, depth)
    full = depth == TINY_FULL_DEPTH
    geometry = ("embed 192, 3 heads of 64, mlp 768, 224x224 input, patch 16, 197 tokens, "
                "1000 classes")
    cfg_note = {
        "model": (f"{TINY} geometry ({geometry}) at its full depth of 12 blocks, "
                  "normalisation folded" if full else
                  f"{TINY} geometry ({geometry}) with depth reduced from 12 to {depth} "
                  "(golden/ size budget), normalisation folded"),
        "weights": f"refq.nn.factory.random_params(seed={seed}): N(0, 0.02^2), LayerNorm "
                   "weights 1 + N(0, 0.1^2)",
        "images": f"numpy default_rng({seed}).integers(0, 256, ({TINY_CALIB + 1}, 3, 224, "
                  f"224)) as uint8: the first {TINY_CALIB} calibrate, the last is the input",
        # (the wording of the committed case: minmax_spec now lives in refq.calib.minmax)
        "spec": f"refq.program.gap.minmax_spec W8A8 on the {TINY_CALIB} calibration images",
        "stored": ("every parameter (params), the input, the logits (output) and EVERY "
                   "intermediate; an extended case (registered, not committed: golden/ "
                   "size budget)" if full else
                   "every parameter (params), the input, the logits (output) and the block "
                   "boundaries (intermediates embed, blocks.i.add1 and blocks.i.add2); the "
                   "other intermediates (about 3 MB per block) are not stored: re-run the "
                   "program in meta.program to get them"),
    }
    return program_case(name, seed, "program", program, {"input": image},
                        {"scope": cfg_note}, keep=None if full else tiny_boundary)


def _register(name: str, kind: str, build: Callable[..., Case], doc: str, *args: Any,
              committed: bool = True) -> None:
    fn = partial(build, *args, name)
    register(name, kind, 0, doc, committed)(fn)


for _bits in BITS:
    _register(
        f"program.deit_digits.minmax.w{_bits}a{_bits}", "program", _model_case,
        f"bundled digits DeiT, min-max W{_bits}A{_bits}, 1 test image, every intermediate",
        _bits,
    )
    for _block in BLOCKS:
        _register(
            f"block.deit_digits.minmax.w{_bits}a{_bits}.{_block}", "block", _block_case,
            f"{_block} block 0 of the bundled DeiT, min-max W{_bits}A{_bits}, 1 test image"
            + ("" if _block == "encoder" else "; block_part() of the encoder case"),
            _bits, _block, committed=_block == "encoder",
        )


def _method_part_case(method: str, bits: int, part: str, name: str, seed: int) -> Case:
    """The ``part`` of the per-method encoder case, cut by :func:`block_part` (its tensors
    are those of the encoder case: no separate computation)."""
    enc = _method_block_case(method, bits, "encoder",
                             f"block.deit_digits.{method}.w{bits}a{bits}.encoder", seed)
    return block_part(enc, part, name)


PROFILES = ("ibert", "ivit", "tflite")
"""Kernel profiles (refq.program.kernels) with committed cases: encoder block 0 of the
bundled DeiT under the min-max W8A8 spec, the first PROFILE_TOKENS tokens (the whole program
of each is an extended case)."""
PROFILE_TOKENS = 9
"""Tokens of the per-profile block cases: the class token and the first 8 patches (golden/
size budget: about 0.3 MiB per case)."""


def _profile_model_case(profile: str, bits: int, name: str, seed: int) -> Case:
    program, pixels = _lowered(bits, profile)
    return program_case(name, seed, "program", program, {"input": pixels},
                        {"kernels": {"profile": profile, **program.meta["kernels"]}})


def _profile_block_case(profile: str, bits: int, name: str, seed: int) -> Case:
    from refq.program.run import run

    program, pixels = _lowered(bits, profile)
    values = run(program, {"input": pixels})
    n_tok = program.tensors["embed"].shape[1]
    short, inputs = _block_on_first_tokens(program, values, "encoder", PROFILE_TOKENS)
    extra = {
        "kernels": {"profile": profile, **program.meta["kernels"]},
        "block": {
            "block": "blocks.0",
            "part": "encoder",
            "tokens": PROFILE_TOKENS,
            "model_tokens": n_tok,
            "inputs": (f"the first {PROFILE_TOKENS} tokens (class token + patches 0.."
                       f"{PROFILE_TOKENS - 2}) of each block input as computed by the whole "
                       f"program (kernel profile {profile}) on test image 0; a block's "
                       "computation is valid for any token count"),
            "spec": (f"refq.calib.minmax.minmax_spec W{bits}A{bits} on the bundled digits "
                     f"calib split, first {N_CALIB}"),
        },
    }
    return program_case(name, seed, "block", short, inputs, extra)


def _register_profiles() -> None:
    for profile in PROFILES:
        _register(
            f"block.deit_digits.minmax.w8a8.{profile}.encoder", "block", _profile_block_case,
            f"encoder block 0 of the bundled DeiT, min-max W8A8, kernel profile {profile}, "
            f"first {PROFILE_TOKENS} tokens of 1 test image, every intermediate",
            profile, 8,
        )
        _register(
            f"program.deit_digits.minmax.w8a8.{profile}", "program", _profile_model_case,
            f"bundled digits DeiT, min-max W8A8, kernel profile {profile}, 1 test image, "
            "every intermediate", profile, 8, committed=False,
        )


def _register_methods() -> None:
    from refq.golden.specs import BITS as SPEC_BITS
    from refq.golden.specs import METHODS

    for method in METHODS:
        for bits in SPEC_BITS:
            _register(
                f"block.deit_digits.{method}.w{bits}a{bits}.encoder", "block",
                _method_block_case,
                f"encoder block 0 of the bundled DeiT, {method} W{bits}A{bits} (stored spec),"
                f" first {BLOCK_TOKENS} tokens of 1 test image; parts: block_part()",
                method, bits, "encoder",
            )
            for part in ("attention", "mlp"):
                _register(
                    f"block.deit_digits.{method}.w{bits}a{bits}.{part}", "block",
                    _method_part_case,
                    f"{part} part of the {method} W{bits}A{bits} encoder block case "
                    f"(block_part; {BLOCK_TOKENS} tokens)",
                    method, bits, part, committed=False,
                )


_register_methods()
_register_profiles()
register(
    TINY_NAME, "program", TINY_SEED,
    f"{TINY} geometry at depth {TINY_DEPTH}, seeded random weights, min-max W8A8, 1 random "
    "image: params, input, block boundaries, logits",
)(partial(_tiny_case, TINY_DEPTH, TINY_NAME))
register(
    TINY_FULL_NAME, "program", TINY_SEED,
    f"{TINY} at full depth {TINY_FULL_DEPTH}, seeded random weights, min-max W8A8, 1 random "
    "image: params, input, EVERY intermediate, logits",
    committed=False,
)(partial(_tiny_case, TINY_FULL_DEPTH, TINY_FULL_NAME))

__all__ = ["BLOCKS", "BLOCK_TOKENS", "PROFILES", "PROFILE_TOKENS", "TINY_FULL_NAME", "TINY_NAME",
           "block_part", "program_case", "program_of", "subprogram", "tiny_boundary",
           "token_axes", "with_tokens"]
