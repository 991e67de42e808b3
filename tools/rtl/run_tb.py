"""Compile and run the pure-Verilog golden testbench under Icarus Verilog.

    python tools/rtl/run_tb.py EXPORTED_HEX_CASE_DIR [--negative-control]

Prints the testbench's verdict line and exits 0 on PASS, 1 on FAIL, 2 if Icarus is missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = [HERE / "requant_tflite_double.v", HERE / "tb_requant_golden.v"]


def element_count(hex_file: Path) -> int:
    return sum(
        1 for line in hex_file.read_text().splitlines() if line and not line.startswith("//")
    )


def run_testbench(
    case_dir: Path, negative_control: bool = False, sources: list[Path] | None = None
) -> tuple[bool, str]:
    """(passed, verdict line) for one exported hex case folder.

    ``sources``: other Verilog files to compile instead of :data:`SOURCES` (e.g. a mutated
    copy of the requantizer, for a negative control that needs no hook in the design).
    """
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
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
