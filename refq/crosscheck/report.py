"""Suite reports: one entry per op (hypothesis) or golden case, as text and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from refq.crosscheck.mismatch import Mismatch
from refq.files.atomic import write_file

STATUSES = ("pass", "fail", "error", "skip", "known", "fixed?")


@dataclass
class Entry:
    key: str  # "op.variant" for generated cases, the case name for golden ones
    source: str  # "hypothesis" | "golden"
    status: str
    examples: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str = ""
    reason: str = ""  # known-disagreement reason or skip reason
    shrunk_case: str = ""  # folder of the minimal failing case
    example: str = ""  # the minimal failing case's params and (small) inputs, as text
    replay: str = ""
    variant: str = ""  # the kernel variant ("family.name") a kernel entry exercises

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mismatches"] = [m.to_dict() for m in self.mismatches]
        return d


@dataclass
class SuiteReport:
    backend: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No unexpected failure or error (known disagreements do not fail a suite)."""
        return not any(e.status in ("fail", "error") for e in self.entries)

    def counts(self) -> dict[str, int]:
        return {s: sum(e.status == s for e in self.entries) for s in STATUSES}

    def by_variant(self) -> dict[str, dict[str, int]]:
        """Per kernel variant of the registry (refq.ops) — every one, run or not — the
        number of entries of each status (hypothesis and golden); an empty dict: not run."""
        from refq.ops.registry import variants

        out: dict[str, dict[str, int]] = {v.key: {} for v in variants()}
        for e in self.entries:
            if e.variant:
                counts = out.setdefault(e.variant, {})
                counts[e.status] = counts.get(e.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "ok": self.ok,
            "counts": self.counts(),
            "variants": self.by_variant(),
            "entries": [e.to_dict() for e in self.entries],
        }

    def write_json(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        write_file(Path(path), text.encode(), force=True)

    def text(self) -> str:
        lines = [f"refq conformance suite — backend {self.backend}"]
        skipped = [e.key for e in self.entries if e.status == "skip"]
        for e in self.entries:
            if e.status == "skip":
                continue
            extra = f" ({e.examples} examples)" if e.source == "hypothesis" else ""
            lines.append(f"  {e.status:7} {e.key}{extra}")
            if e.reason:
                lines.append(f"          reason: {e.reason}")
            if e.error:
                lines.append(f"          error: {e.error}")
            for m in e.mismatches[:3]:
                lines.append(f"          {m.tensor}: {m.detail}")
                if m.kind == "values":
                    lines.append(
                        f"            expected {m.expected} ({m.expected_bits}), "
                        f"got {m.got} ({m.got_bits})"
                    )
                    lines.append(f"            pattern: {m.pattern}")
            if e.example:
                lines.append(f"          minimal example: {e.example}")
            if e.shrunk_case:
                lines.append(f"          minimal failing case: {e.shrunk_case}")
            if e.replay:
                lines.append(f"          replay: {e.replay}")
        if skipped:
            lines.append(f"  skip    {len(skipped)} unsupported: {', '.join(skipped)}")
        lines += self._variant_lines()
        c = self.counts()
        lines.append(
            "  "
            + ", ".join(f"{n} {s}" for s, n in c.items() if n)
            + (" — OK" if self.ok else " — FAILED")
        )
        return "\n".join(lines)


    def _variant_lines(self) -> list[str]:
        per = self.by_variant()
        ran = {k: c for k, c in per.items() if c}
        if not ran:
            return []
        lines = ["  per variant:"]
        for key, c in sorted(ran.items()):
            lines.append(f"    {key:28} " + ", ".join(f"{n} {s}" for s, n in sorted(c.items())))
        idle = sorted(k for k, c in per.items() if not c)
        if idle:
            lines.append(f"    not run ({len(idle)}): {', '.join(idle)}")
        return lines


__all__ = ["STATUSES", "Entry", "SuiteReport"]
