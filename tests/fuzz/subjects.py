"""The readers under test (*subjects*): what each reads, which of its files are mutated,
and the reader run end to end — its output reduced to bytes, so that "identical output"
is a byte comparison.

A subject builds its original files once (written by refq itself) into a folder; a mutant
is a copy of that folder with one file mutated (:mod:`tests.fuzz.mutate`). A target is
``checksummed`` when the format carries a hash of it (program constants, spec arrays, every
file of a golden set under its manifest): an accepted change there is always a finding.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]


Where = tuple[Any, ...]


def _never(where: Where) -> bool:
    return False


@dataclass(frozen=True)
class Target:
    """A file of a subject that is mutated. For JSON: ``free`` says which nodes are
    information (any edit of them is legitimate), ``maps`` which objects are mappings whose
    entries may be added or removed by a legitimate edit (a spec's quantizers),
    ``optional`` which keys are optional in the format (dropping or adding one is a
    legitimate edit with a meaning: a known entry's ``engines`` or CPU condition)."""

    path: str
    kind: str  # json, npy, npz, hex, c, bin
    checksummed: bool
    dumps: Callable[[Any], str] | None = None
    free: Callable[[Where], bool] = _never
    maps: Callable[[Where], bool] = _never
    optional: Callable[[Where], bool] = _never


@dataclass
class Subject:
    name: str
    build: Callable[[Path], Any]
    targets: list[Target]
    read: Callable[[Path, Any], bytes]
    ctx: Any = field(default=None)


def _digest(*parts: Any) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(f"{p.dtype.str}{p.shape}".encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(repr(p).encode())
    return h.digest()


def _canonical(obj: Any) -> str:
    from refq.files import json_bytes

    return json_bytes(obj).decode()


def _spec_dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=1) + "\n"


# ----------------------------------------------------------------------------- program


def _program_build(folder: Path) -> Any:
    from refq.golden.case import read_case
    from refq.golden.cases_program import program_of
    from refq.program import save

    prog, inputs = program_of(read_case(REPO / "golden" / "block.deit_digits.minmax.w8a8.encoder"))
    save(prog, folder / "prog")
    return inputs


def _program_read(folder: Path, inputs: Any) -> bytes:
    from refq.program import load, run

    p = load(folder / "prog")
    out = run(p, inputs, keep="outputs")
    return _digest(*(out[k] for k in sorted(out)))


PROGRAM_CONSTS = ("blocks.0.attn.qkv.w", "blocks.0.norm1.table", "blocks.0.mlp.fc1.b")


# ----------------------------------------------------------------------------- spec


def _spec_build(folder: Path) -> Any:
    import shutil

    from refq.golden.specs import SPEC_DIR, block0_model, calib_images, golden_image

    shutil.copytree(SPEC_DIR / "ias.w8a8", folder / "spec")
    return block0_model(), calib_images()[:4], golden_image()


def _spec_read(folder: Path, ctx: Any) -> bytes:
    from refq.calib.fakequant import fake_quantized_model
    from refq.program import lower, run
    from refq.quant import QuantSpec

    model, calib, image = ctx
    spec = QuantSpec.load(folder / "spec")
    spec.check_model(model)
    mq, tap = fake_quantized_model(model, spec.weights, spec.activations, spec.params)
    fq = mq.forward(image, tap)
    prog = lower(model, spec, calib)
    out = run(prog, {"input": image}, keep="outputs")
    return _digest(fq, *(out[k] for k in sorted(out)))


# ----------------------------------------------------------------------------- configs

MAX_RUN_PARAMS = 3_000_000
MAX_RUN_TOKENS = 1024


def _config_build(folder: Path) -> Any:
    from refq.nn.bundled import bundled_info

    (folder / "config.json").write_text(_canonical(bundled_info()["config"]))
    return None


def _config_read(folder: Path, _: Any) -> bytes:
    from refq.files import load_json
    from refq.nn.configs import ViTConfig, config_from_dict
    from refq.nn.factory import create_model, param_shapes

    path = folder / "config.json"
    cfg = config_from_dict(load_json(path), path)
    n = sum(int(np.prod(s)) for s in param_shapes(cfg).values())
    tokens = (cfg.img_size // cfg.patch_size) ** 2
    depth = cfg.depth if isinstance(cfg, ViTConfig) else sum(cfg.depths)
    if n > MAX_RUN_PARAMS or tokens > MAX_RUN_TOKENS or depth > 64:
        return _digest("too large to run here", cfg)  # a legitimate but big model
    model = create_model(cfg, None, seed=0)
    x = np.random.default_rng(0).standard_normal((1, cfg.in_chans, cfg.img_size,
                                                   cfg.img_size))
    return _digest(model.forward(x))


HF_VIT = {
    "architectures": ["ViTForImageClassification"], "model_type": "vit",
    "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 32, "image_size": 16, "patch_size": 8, "num_channels": 3,
    "layer_norm_eps": 1e-12, "qkv_bias": True, "hidden_act": "gelu",
    "id2label": {"0": "cat", "1": "dog", "2": "eel"}, "torch_dtype": "float32",
}


def _hf_build(folder: Path) -> Any:
    from refq.nn import save_weights
    from refq.nn.checkpoints import read_checkpoint
    from refq.nn.factory import random_params

    root = folder / "hf"
    root.mkdir()
    (root / "config.json").write_text(json.dumps(HF_VIT, indent=2))
    (root / "model.safetensors").write_bytes(b"")
    save_weights(root / "model.safetensors", random_params(read_checkpoint(root).config))
    return None


def _hf_read(folder: Path, _: Any) -> bytes:
    from refq.nn.sources import parse_model

    src = parse_model(str(folder / "hf"))
    model = src.load()
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16))
    return _digest(src.config(), src.class_names(), model.forward(x))


# ----------------------------------------------------------------------------- golden

GOLDEN_CASES = ("requantize.dyadic.int32_int8.b3_c1_half_away", "softmax.refq.rows16x37",
                "gelu.lut.int8.exhaustive")
EXPORT_CASE = "softmax.refq.rows16x37"


def _golden_set(folder: Path) -> Path:
    from refq.golden import generate

    root = folder / "set"
    generate(root, ",".join(GOLDEN_CASES), progress=False)
    return root


def _verify_build(folder: Path) -> Any:
    _golden_set(folder)
    return None


def _verify_read(folder: Path, _: Any) -> bytes:
    from refq.errors import GoldenError
    from refq.golden import verify

    problems = [p for r in verify(folder / "set", progress=False) for p in r.problems]
    if problems:
        raise GoldenError(f"verify: {problems[0]}")
    return b"all cases match"


def _case_read(folder: Path, _: Any) -> bytes:
    from refq.golden.case import read_case

    case = read_case(folder / "set" / EXPORT_CASE)
    return _digest(_canonical(case.meta), case.kind, case.seed,
                   *((n, t.fmt, t.role, t.values) for n, t in sorted(case.tensors.items())))


def _export_build(fmt: str) -> Callable[[Path], Any]:
    def build(folder: Path) -> Any:
        from refq.golden import export
        from refq.golden.case import read_case

        root = _golden_set(folder)
        export(root, fmt, folder / "x")  # type: ignore[arg-type]
        case = read_case(root / EXPORT_CASE)
        return {n: (t.values.shape, t.fmt) for n, t in case.tensors.items()}

    return build


def _hex_read(folder: Path, tensors: Any) -> bytes:
    from refq.golden.hexfile import read_hex

    return _digest(*(read_hex(folder / "x" / EXPORT_CASE / f"{n}.hex", s, f)
                     for n, (s, f) in sorted(tensors.items())))


def _bin_read(folder: Path, tensors: Any) -> bytes:
    from refq.golden.binfile import read_bin

    return _digest(*(read_bin(folder / "x" / EXPORT_CASE / f"{n}.bin", s, f)
                     for n, (s, f) in sorted(tensors.items())))


def _c_read(folder: Path, tensors: Any) -> bytes:
    from refq.golden.cheader import read_header_array

    return _digest(*(read_header_array(folder / "x" / f"{EXPORT_CASE}.h", EXPORT_CASE, n, s)
                     for n, (s, _) in sorted(tensors.items())))


# ----------------------------------------------------------------------------- known


def _known_build(folder: Path) -> Any:
    import shutil

    shutil.copy(REPO / "refq" / "crosscheck" / "known" / "onnxruntime.json",
                folder / "known.json")
    return None


def _known_read(folder: Path, _: Any) -> bytes:
    from refq.crosscheck.known import load_known

    return _digest(load_known(folder / "known.json"))


def _known_free(w: Where) -> bool:
    """The information of a known file: ``machine``, and which engines and CPU flags an
    entry names (their lists may grow or shrink)."""
    return w[:1] == ("machine",) or (
        len(w) >= 3 and w[0] == "disagreements" and w[2] in ("engines", "when"))


def _known_optional(w: Where) -> bool:
    """An entry's optional ``engines`` and ``when``, a condition's ``cpu_has``/``cpu_lacks``."""
    return (len(w) == 3 and w[0] == "disagreements" and w[2] in ("engines", "when")) or (
        len(w) == 4 and w[0] == "disagreements" and w[2] == "when")


def _indent2(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


C = EXPORT_CASE
_CASE_KEYS = {"case", "kind", "seed", "refq_version", "golden_format", "tensors", "op",
              "variant", "params", "program"}
SUBJECTS: dict[str, Subject] = {s.name: s for s in (
    Subject("program folder (load + run)", _program_build,
            [Target("prog/program.json", "json", False, _canonical,
                    free=lambda w: w[:1] == ("meta",))]
            + [Target(f"prog/consts/{n}.npy", "npy", True) for n in PROGRAM_CONSTS],
            _program_read),
    Subject("spec folder (load + fake-quant + lower + run)", _spec_build,
            [Target("spec/spec.json", "json", False, _spec_dumps,
                    free=lambda w: w[:1] == ("notes",),
                    maps=lambda w: w in (("weights",), ("activations",))),
             Target("spec/params.npz", "npz", True)], _spec_read),
    Subject("model config (config_from_dict + forward)", _config_build,
            [Target("config.json", "json", False, _canonical)], _config_read),
    Subject("HF checkpoint folder (config.json + forward)", _hf_build,
            [Target("hf/config.json", "json", False, _indent2)], _hf_read),
    Subject("golden set (verify)", _verify_build,
            [Target("set/MANIFEST.json", "json", True, _canonical),
             Target(f"set/{C}/meta.json", "json", True, _canonical),
             Target(f"set/{C}/y.npy", "npy", True), Target(f"set/{C}/x.npy", "npy", True)],
            _verify_read),
    Subject("golden case (read_case)", _verify_build,
            [Target(f"set/{C}/meta.json", "json", False, _canonical,
                    free=lambda w: bool(w) and w[0] not in _CASE_KEYS),
             Target(f"set/{C}/y.npy", "npy", False)], _case_read),
    Subject("golden hex", _export_build("hex"),
            [Target(f"x/{C}/x.hex", "hex", False), Target(f"x/{C}/y.hex", "hex", False)],
            _hex_read),
    Subject("golden C header", _export_build("c"), [Target(f"x/{C}.h", "c", False)], _c_read),
    Subject("golden bin", _export_build("bin"),
            [Target(f"x/{C}/x.bin", "bin", False), Target(f"x/{C}/y.bin", "bin", False)],
            _bin_read),
    Subject("known-disagreements file", _known_build,
            [Target("known.json", "json", False, _indent2,
                    free=_known_free, optional=_known_optional)], _known_read),
)}


__all__ = ["SUBJECTS", "Subject", "Target"]
