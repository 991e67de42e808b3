"""A streaming plan for the reference DUT, read from one exported hex golden case.

``refq golden export DIR --format hex`` writes, per case, every tensor and every integer
parameter as a ``$readmemh`` file and an ``index.json`` listing them (shape, width,
signedness) and the program's ops with the files of their parameters. This module reads only
that folder — the files a testbench has — and builds what the streaming testbench needs for
the residual datapath of one encoder block:

    proj = requantize.dyadic(acc)            (the projection's requantization, per channel)
    sum  = add.ivit(res, proj)                (the residual add)

``plan(case_dir, add="blocks.0.add1")`` finds the ``add.ivit`` op producing ``add`` and the
``requantize.dyadic`` op producing its second input, checks that the reference DUT implements
them (rounding half_even, per-channel multipliers of at most 31 bits, shifts 0..63, signed
output formats), and returns the configuration writes, the input beats and the expected
output tensors in stream order. A case the DUT does not implement is refused by name
(:class:`StreamRefused`). No refq import: a designer can run it beside the exported files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class StreamRefused(Exception):
    """The case (or the chosen op) is not what the DUT implements; the message names both."""


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    bits: int
    signed: bool
    values: list[int]

    def index(self, flat: int) -> tuple[int, ...]:
        """The multi-index of element ``flat`` (row-major)."""
        out = []
        for d in reversed(self.shape):
            out.append(flat % d)
            flat //= d
        return tuple(reversed(out))

    def bits_of(self, value: int) -> str:
        """``value`` as two's-complement bits of this tensor's width, in groups of four."""
        raw = format(value & ((1 << self.bits) - 1), f"0{self.bits}b")
        head = len(raw) % 4
        groups = ([raw[:head]] if head else []) + [raw[i:i + 4] for i in range(head, len(raw), 4)]
        return "_".join(groups)


@dataclass
class Plan:
    case: str
    channels: int
    widths: dict[str, int]
    config: list[tuple[int, int, int]] = field(default_factory=list)  # (sel, addr, data)
    beats: list[tuple[int, int]] = field(default_factory=list)  # (acc, res)
    expected: list[Tensor] = field(default_factory=list)  # proj, sum: one element per beat

    def to_json(self) -> str:
        return json.dumps({
            "case": self.case, "channels": self.channels, "widths": self.widths,
            "config": self.config, "beats": self.beats,
            "expected": [t.__dict__ | {"shape": list(t.shape)} for t in self.expected],
        })

    @classmethod
    def from_json(cls, text: str) -> Plan:
        d = json.loads(text)
        return cls(d["case"], d["channels"], d["widths"],
                   [tuple(c) for c in d["config"]], [tuple(b) for b in d["beats"]],
                   [Tensor(t["name"], tuple(t["shape"]), t["bits"], t["signed"], t["values"])
                    for t in d["expected"]])


def read_hex(path: Path, bits: int, signed: bool) -> list[int]:
    """The elements of a ``$readmemh`` file (``//`` comment lines skipped), as integers."""
    out = []
    for line in path.read_text(encoding="ascii").splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        v = int(line, 16)
        if signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


def _load(case_dir: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    index_path = case_dir / "index.json"
    if not index_path.is_file():
        raise StreamRefused(f"{case_dir}: no index.json — export the case with "
                            "`refq golden export DIR --format hex` first")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    files = {f["file"]: f for f in index["files"]}
    return index, files


def _tensor(case_dir: Path, files: dict[str, dict[str, Any]], name: str) -> Tensor:
    entry = next((f for f in files.values() if f.get("what") == "tensor" and f["name"] == name),
                 None)
    if entry is None:
        raise StreamRefused(f"tensor {name!r} is not in the export")
    values = read_hex(case_dir / entry["file"], entry["bits"], entry["signed"])
    if len(values) != entry["elements"]:
        raise StreamRefused(f"{entry['file']}: {len(values)} elements, index says "
                            f"{entry['elements']}")
    return Tensor(name, tuple(entry["shape"]), entry["bits"], entry["signed"], values)


def _param(case_dir: Path, files: dict[str, dict[str, Any]], rel: str) -> list[int]:
    entry = files[rel]
    return read_hex(case_dir / rel, entry["bits"], entry["signed"])


def _bits(fmt: str) -> tuple[bool, int]:
    signed = fmt.startswith("int")
    return signed, int(fmt[3:] if signed else fmt[4:])


def residual_adds(case_dir: Path) -> list[str]:
    """The ``add.ivit`` ops of the case whose second input is a dyadic requantization."""
    index, _ = _load(case_dir)
    by_output = {o["outputs"][0]: o for o in index["ops"]}
    return [o["outputs"][0] for o in index["ops"] if o["key"] == "add.ivit"
            and by_output.get(o["inputs"][1], {}).get("key") == "requantize.dyadic"]


def plan(case_dir: Path, add: str | None = None) -> Plan:
    """The streaming plan of the residual ``add`` (default: the first) of an exported case."""
    case_dir = Path(case_dir)
    index, files = _load(case_dir)
    ops = index["ops"]
    by_output = {o["outputs"][0]: o for o in ops}
    implemented = "requantize.dyadic (half_even) followed by add.ivit (half_even)"
    keys = sorted({o["key"] for o in ops if o["kind"] == "kernel"})
    adds = [o for o in ops if o["key"] == "add.ivit"]
    if add is not None:
        adds = [o for o in adds if o["outputs"][0] == add]
    if not adds:
        raise StreamRefused(f"case {index['case']}: no add.ivit op"
                            + (f" producing {add!r}" if add else "")
                            + f"; the reference DUT implements {implemented}; the case has "
                            f"{', '.join(keys)}")
    add_op = adds[0]
    rq_op = by_output.get(add_op["inputs"][1])
    if rq_op is None or rq_op["key"] != "requantize.dyadic":
        raise StreamRefused(f"{add_op['name']}: its second input is not produced by "
                            f"requantize.dyadic; the reference DUT implements {implemented}")
    for op in (rq_op, add_op):
        if op["attributes"].get("rounding") != "half_even":
            raise StreamRefused(f"{op['name']} ({op['key']}): rounding "
                                f"{op['attributes'].get('rounding')!r}; the DUT rounds half_even")
    p_signed, p_bits = _bits(rq_op["attributes"]["out_format"])
    s_signed, s_bits = _bits(add_op["attributes"]["out_format"])
    r_signed, r_bits = _bits(add_op["attributes"]["a_format"])
    if not (p_signed and s_signed and r_signed):
        raise StreamRefused(f"{add_op['name']}: the DUT takes signed formats only")
    acc = _tensor(case_dir, files, rq_op["inputs"][0])
    res = _tensor(case_dir, files, add_op["inputs"][0])
    proj = _tensor(case_dir, files, rq_op["outputs"][0])
    out = _tensor(case_dir, files, add_op["outputs"][0])
    channels = acc.shape[-1]
    rp = {k: _param(case_dir, files, v) for k, v in rq_op["params"].items()}
    ap = {k: _param(case_dir, files, v)[0] for k, v in add_op["params"].items()}
    mult, shift = rp["multiplier"], rp["shift"]
    if len(mult) == 1:
        mult, shift = mult * channels, shift * channels
    if len(mult) != channels or len(shift) != channels:
        raise StreamRefused(f"{rq_op['name']}: {len(mult)} multipliers for {channels} channels")
    if min(mult) < 0 or max(mult) >= 1 << 31 or min(shift) < 0 or max(shift) > 63:
        raise StreamRefused(f"{rq_op['name']}: multipliers must lie in [0, 2^31) and shifts "
                            "in 0..63 for the DUT")
    if not (res.shape == acc.shape == proj.shape == out.shape):
        raise StreamRefused(f"{add_op['name']}: operand shapes differ "
                            f"({res.shape}, {acc.shape}); the DUT streams equal shapes")
    config = [(0, c, m) for c, m in enumerate(mult)] + [(1, c, s) for c, s in enumerate(shift)]
    scalars = [rp["in_zero_point"][0], rp["out_zero_point"][0], ap["a_multiplier"],
               ap["a_shift"], ap["a_zero_point"], ap["b_multiplier"], ap["b_shift"],
               ap["b_zero_point"], ap["out_zero_point"]]
    config += [(2, i, v & 0xFFFFFFFF) for i, v in enumerate(scalars)]
    return Plan(index["case"], channels,
                {"ACC_BITS": acc.bits, "RES_BITS": r_bits, "P_BITS": p_bits, "S_BITS": s_bits},
                config, list(zip(acc.values, res.values, strict=True)), [proj, out])
