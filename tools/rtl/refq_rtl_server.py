"""cocotb test module run inside Icarus by refq's RtlBackend: a request loop over a socket.

The backend (refq/crosscheck/adapters/rtl_backend.py) listens on 127.0.0.1 and starts ONE
simulation of ``rtl_harness`` with this module; :func:`serve` connects back (port in
``REFQ_RTL_PORT``) and answers JSON-line requests until told to quit:

    {"sel": int, "ports": {"multiplier": int, ...}, "x": [int, ...]}
        -> {"y": [int, ...]}        (y read as a signed 64-bit value after each x)
    {"quit": true}                  -> the test returns, the simulator exits

Each x element is applied to the combinational harness, 1 ns is simulated, y is sampled.
Not part of the refq package (needs cocotb, runs only inside the simulator).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def serve(dut: Any) -> None:
    port = int(os.environ["REFQ_RTL_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=600) as conn:
        reader = conn.makefile("r", encoding="ascii")
        for line in reader:
            req = json.loads(line)
            if req.get("quit"):
                break
            try:
                dut.sel.value = int(req["sel"])
                for name, value in req.get("ports", {}).items():
                    getattr(dut, name).value = int(value)
                ys: list[int] = []
                x = dut.x
                y = dut.y
                for v in req["x"]:
                    x.value = int(v)
                    await Timer(1, "ns")
                    ys.append(y.value.to_signed())
                reply: dict[str, Any] = {"y": ys}
            except Exception as exc:  # reported to the backend, which raises BackendError
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            conn.sendall((json.dumps(reply) + "\n").encode("ascii"))
