"""cocotb 2.x testbench: stream one block's golden vectors through a valid/ready DUT.

Run by ``run_stream.py`` (which writes the plan and names it in ``REFQ_STREAM_PLAN``). The
DUT's ports (see residual_stream.v): ``clk``, ``rst_n``; configuration ``cfg_we``,
``cfg_sel``, ``cfg_addr``, ``cfg_data``; input stream ``in_valid``/``in_ready`` with
``in_acc``, ``in_res``; output stream ``out_valid``/``out_ready`` with ``out_proj``,
``out_sum``.

The driver offers beats with random idle cycles and the monitor takes them with random
back-pressure (``REFQ_STREAM_STALL``, probability per cycle; ``REFQ_STREAM_SEED``). Every
output beat is compared with the expected tensors as it comes out; the first differing
element stops the test with its tensor name, multi-index and bits. The verdict line starts
with ``REFQ-STREAM`` and also goes to ``REFQ_STREAM_VERDICT`` (a file).
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_case import Plan


def _verdict(line: str) -> None:
    cocotb.log.info(line)
    path = os.environ.get("REFQ_STREAM_VERDICT")
    if path:
        Path(path).write_text(line + "\n", encoding="utf-8")


async def _configure(dut: object, plan: Plan) -> None:
    d = dut  # type: ignore[assignment]
    for sel, addr, data in plan.config:
        d.cfg_we.value = 1
        d.cfg_sel.value = sel
        d.cfg_addr.value = addr
        d.cfg_data.value = data
        await RisingEdge(d.clk)
    d.cfg_we.value = 0


async def _drive(dut: object, plan: Plan, rng: random.Random, stall: float) -> None:
    """Offer each beat; it moves at the next rising edge where in_ready is high (sampled
    once the cycle's values have settled)."""
    d = dut  # type: ignore[assignment]
    for acc, res in plan.beats:
        while rng.random() < stall:  # idle cycles between beats
            d.in_valid.value = 0
            await RisingEdge(d.clk)
        d.in_valid.value = 1
        d.in_acc.value = acc
        d.in_res.value = res
        while True:
            await ReadOnly()
            moved = bool(int(d.in_ready.value))
            await RisingEdge(d.clk)
            if moved:
                break
    d.in_valid.value = 0


@cocotb.test()
async def stream_block(dut: object) -> None:
    d = dut  # type: ignore[assignment]
    plan = Plan.from_json(Path(os.environ["REFQ_STREAM_PLAN"]).read_text(encoding="utf-8"))
    stall = float(os.environ.get("REFQ_STREAM_STALL", "0.25"))
    rng = random.Random(int(os.environ.get("REFQ_STREAM_SEED", "0")))
    cocotb.start_soon(Clock(d.clk, 10, unit="ns").start())
    d.rst_n.value = 0
    d.cfg_we.value = 0
    d.in_valid.value = 0
    d.out_ready.value = 0
    for _ in range(3):
        await RisingEdge(d.clk)
    d.rst_n.value = 1
    await RisingEdge(d.clk)
    await _configure(d, plan)
    cocotb.start_soon(_drive(d, plan, rng, stall))
    ports = {"out_proj": plan.expected[0], "out_sum": plan.expected[1]}
    n = len(plan.beats)
    got = 0
    cycles = 0
    limit = 20 * n + 1000
    while got < n:
        d.out_ready.value = 0 if rng.random() < stall else 1
        await ReadOnly()  # this cycle's values, settled: a beat moves at the next edge
        moves = bool(int(d.out_valid.value)) and bool(int(d.out_ready.value))
        beat = {port: getattr(d, port).value for port in ports}
        await RisingEdge(d.clk)
        cycles += 1
        if cycles > limit:
            _verdict(f"REFQ-STREAM FAIL {plan.case}: timeout after {cycles} cycles, "
                     f"{got} of {n} beats out")
            raise AssertionError("stream timeout")
        if not moves:
            continue
        for port, tensor in ports.items():
            want = tensor.values[got]
            sig = beat[port]
            have = sig.to_signed() if tensor.signed else sig.to_unsigned()
            if have != want:
                idx = tensor.index(got)
                line = (f"REFQ-STREAM FAIL {plan.case}: {tensor.name}{list(idx)} (element "
                        f"{got} of {n}) expected {want} = {tensor.bits_of(want)}, got {have} "
                        f"= {tensor.bits_of(have)}")
                _verdict(line)
                raise AssertionError(line)
        got += 1
    names = ", ".join(t.name for t in plan.expected)
    _verdict(f"REFQ-STREAM PASS {plan.case}: {n} beats, every element of {names} matches "
             f"({cycles} cycles, stall {stall})")
