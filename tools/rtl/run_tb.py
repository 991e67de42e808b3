"""Compile and run the pure-Verilog golden testbench under Icarus Verilog.

    python tools/rtl/run_tb.py EXPORTED_HEX_CASE_DIR [--negative-control]

The testbench (tb_requant_golden.v) drives requant_tflite_double.v, which implements
:data:`IMPLEMENTS`: the ``requantize.tflite_double.*`` cases of the golden set. Any other case
is refused before compiling, naming the case's kernel and what the DUT implements.

Prints the testbench's verdict line and exits 0 on PASS, 1 on FAIL, 2 if Icarus is missing,
3 if the case is not one the DUT implements.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = [HERE / "requant_tflite_double.v", HERE / "tb_requant_golden.v"]
IMPLEMENTS = (
    "requantize.double (TFLite double rounding) from int32 to int8, one multiplier and shift "
    "per tensor, input zero point 0: the requantize.tflite_double.* golden cases"
)
FILES = ("x.hex", "y.hex", "multiplier.hex", "shift.hex", "output_zero_point.hex")


class UnsupportedCase(ValueError):
    """The exported case is not one the testbench's DUT implements."""


def check_supported(case_dir: Path) -> None:
    """Raise UnsupportedCase unless ``case_dir`` (an exported hex case) is one that
    requant_tflite_double.v implements (:data:`IMPLEMENTS`)."""
    try:
        meta = json.loads((case_dir / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UnsupportedCase(f"{case_dir}: no readable meta.json of an exported golden case "
                              f"({exc}); this testbench implements {IMPLEMENTS}") from None
    name = meta.get("case", case_dir.name)
    key = f"{meta.get('op', meta.get('kind', '?'))}.{meta.get('variant', '?')}"
    if "program" in meta:
        key = f"a {meta.get('kind', 'program')} program"
    p = meta.get("params") if isinstance(meta.get("params"), dict) else {}
    problems = []
    if key != "requantize.double":
        problems.append(f"its kernel is {key}")
    else:
        if p.get("out_format") != "int8":
            problems.append(f"its output is {p.get('out_format')}")
        if len(p.get("multiplier", [])) != 1:
            problems.append("it is per-channel")
        if p.get("in_zero_point", 0) != 0:
            problems.append(f"its input zero point is {p.get('in_zero_point')}")
        missing = [f for f in FILES if not (case_dir / f).is_file()]
        if missing:
            problems.append(f"it lacks {', '.join(missing)}")
    if problems:
        raise UnsupportedCase(f"case {name} is not one this testbench's DUT implements "
                              f"({'; '.join(problems)}): requant_tflite_double.v implements "
                              f"{IMPLEMENTS}")


def element_count(hex_file: Path) -> int:
    return sum(
        1 for line in hex_file.read_text().splitlines() if line and not line.startswith("//")
    )


def run_testbench(
    case_dir: Path, negative_control: bool = False, sources: list[Path] | None = None
) -> tuple[bool, str]:
    """(passed, verdict line) for one exported hex case folder; UnsupportedCase (before
    anything is compiled) for a case the DUT does not implement.

    ``sources``: other Verilog files to compile instead of :data:`SOURCES` (e.g. a mutated
    copy of the requantizer, for a negative control that needs no hook in the design).
    """
    check_supported(case_dir)
    iverilog = shutil.which("iverilog")
    vvp = shutil.which("vvp")
    if not iverilog or not vvp:
        raise FileNotFoundError("Icarus Verilog (iverilog, vvp) not found on PATH")
    n = element_count(case_dir / "x.hex")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tb.vvp"
        cmd = [iverilog, "-g2005", "-o", str(out), f'-DCASE_DIR="{case_dir}"', f"-DN={n}"]
        if negative_control:
            cmd.append("-DREFQ_NEGATIVE_CONTROL")
        compile_cmd = [*cmd, *map(str, sources or SOURCES)]
        subprocess.run(compile_cmd, check=True, capture_output=True, text=True)
        run = subprocess.run([vvp, "-n", str(out)], check=True, capture_output=True, text=True)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("REFQ-TB")]
    if not lines:
        return False, f"no verdict line in simulator output:\n{run.stdout}"
    return lines[-1].startswith("REFQ-TB PASS"), lines[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case_dir", type=Path)
    parser.add_argument("--negative-control", action="store_true")
    args = parser.parse_args()
    try:
        ok, line = run_testbench(args.case_dir.resolve(), args.negative_control)
    except UnsupportedCase as exc:
        print(f"run_tb.py: refused: {exc}", file=sys.stderr)
        return 3
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
