"""A readable listing of a Program, like an assembly dump: one line per op with its
inputs, outputs (name:format[shape]) and integer parameters."""

from __future__ import annotations

from typing import Any

from refq.program.ir import Program


def _short(v: Any, limit: int = 6) -> str:
    if isinstance(v, list):
        if len(v) > limit:
            return "[" + ", ".join(_short(e) for e in v[:limit]) + f", … ({len(v)})]"
        return "[" + ", ".join(_short(e) for e in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_short(e)}" for k, e in v.items()) + "}"
    return str(v)


def listing(program: Program) -> str:
    def decl(name: str) -> str:
        t = program.tensors[name]
        shape = ",".join("B" if d == -1 else str(d) for d in t.shape)
        return f"{name}:{t.fmt.name}[{shape}]"

    n_const = sum(int(a.size) for a in program.consts.values())
    lines = [
        f"program {program.name}",
        f"  meta    {_short(program.meta)}",
        f"  inputs  {', '.join(decl(n) for n in program.inputs)}",
        f"  outputs {', '.join(decl(n) for n in program.outputs)}",
        f"  consts  {len(program.consts)} tensors, {n_const} elements",
        "",
    ]
    for i, op in enumerate(program.ops):
        head = f"{i:4d}  {op.key:24} {op.name}"
        lines.append(head.rstrip())
        lines.append(f"        in  {', '.join(decl(n) for n in op.inputs)}")
        lines.append(f"        out {', '.join(decl(n) for n in op.outputs)}")
        if op.params:
            lines.append(f"        {_short(op.params)}")
    return "\n".join(lines)


__all__ = ["listing"]
