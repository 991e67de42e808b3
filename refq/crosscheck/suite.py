"""run_suite: drive a backend with hypothesis-generated cases and the golden set, compare
exactly, shrink failures to a minimal case, and report.

hypothesis is needed here (install ``refq[test]``); it is imported only when a suite runs.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.backend import Backend
from refq.crosscheck.known import Known, find_known, load_known
from refq.crosscheck.mismatch import Mismatch, compare_outputs
from refq.crosscheck.report import Entry, SuiteReport
from refq.errors import BackendError, SpecError
from refq.golden.case import Case, read_case, write_case
from refq.golden.manifest import check_files, read_manifest
from refq.intmath import IntFormat
from refq.ops.table import KERNELS

_GIVE_UP = 25
"""Consecutive unsupported draws (none supported yet) after which a key is reported as
skipped: enough that a backend supporting a quarter of a strategy's draws is not skipped
by chance (0.75^25 < 0.1%)."""


def expected_outputs(case: Case) -> dict[str, tuple[npt.NDArray[np.integer[Any]], IntFormat]]:
    return {n: (t.values, t.fmt) for n, t in case.tensors.items() if t.role == "output"}


def run_case(backend: Backend, case: Case) -> tuple[list[Mismatch], str]:
    """(mismatches, error text) of one case on ``backend``; ([], "") means exact agreement."""
    try:
        got = backend.run(case)
    except Exception as exc:  # a crashing backend is a finding, not a harness error
        return [], f"{type(exc).__name__}: {exc}"
    return compare_outputs(expected_outputs(case), got), ""


def describe_case(case: Case, limit: int = 16) -> str:
    """params and the input tensors (values if at most ``limit`` elements) as one line."""
    parts = [f"params={case.meta.get('params')}"]
    for name, t in case.tensors.items():
        if t.role != "input":
            continue
        shown = t.values.tolist() if t.values.size <= limit else f"<{t.values.shape} array>"
        parts.append(f"{name}={shown}")
    return " ".join(parts)


def _classify(failed: bool, known: Known | None) -> str:
    if known is None:
        return "fail" if failed else "pass"
    return "known" if failed else "fixed?"


def _selected(key: str, ops: Iterable[str] | None) -> bool:
    return ops is None or any(fnmatch.fnmatchcase(key, p) for p in ops)


def _save(case: Case, artifacts: Path | None, label: str) -> str:
    if artifacts is None:
        return ""
    folder = Path(artifacts) / label
    n = 0
    while folder.exists():
        n += 1
        folder = Path(artifacts) / f"{label}-{n}"
    write_case(case, folder)
    return str(folder)


def _hypothesis_entry(
    backend: Backend,
    backend_spec: str,
    key: str,
    strategy: Any,
    examples: int,
    derandomize: bool,
    known: Known | None,
    artifacts: Path | None,
    seed: int | None = None,
    explicit: list[Case] | None = None,
) -> Entry:
    from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
    from hypothesis import seed as fixed_seed

    stats = {"run": 0, "unsupported": 0, "gave_up": 0}

    class _Unsupported(Exception):
        """Raised to stop early when the backend supports none of the first draws."""

    failures: list[tuple[Case, list[Mismatch], str]] = []

    @settings(
        max_examples=examples,
        derandomize=derandomize and seed is None,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(strategy)
    def prop(case: Case) -> None:
        if not stats["gave_up"]:
            if backend.supports(case):
                stats["run"] += 1
                mismatches, error = run_case(backend, case)
                if mismatches or error:
                    failures.append((case, mismatches, error))
                    raise AssertionError(error or mismatches[0].detail)
                return
            stats["unsupported"] += 1
            if stats["run"] or stats["unsupported"] < _GIVE_UP:
                return
            stats["gave_up"] = 1
        # one raise site, raised again on every later call (shrinking, replay): otherwise
        # hypothesis reports the early stop as a flaky failure
        raise _Unsupported

    for case in explicit or []:  # the variant's corner cases: every run hits every bin
        if backend.supports(case):
            prop = example(case)(prop)
    if seed is not None:
        prop = fixed_seed(seed)(prop)
    try:
        prop()
    except (AssertionError, _Unsupported):
        pass
    except Exception:  # hypothesis' FlakyFailure: an early stop replayed against an example
        if not stats["gave_up"] or failures:  # it had seen pass (e.g. while shrinking)
            raise
    variant = key if key in KERNELS else ""
    if not failures and stats["run"] == 0:
        return Entry(key, "hypothesis", "skip", reason="backend supports no generated case",
                     variant=variant)
    entry = Entry(key, "hypothesis", _classify(bool(failures), known), examples=stats["run"],
                  variant=variant)
    if known is not None:
        entry.reason = known.reason
    if failures:
        case, mismatches, error = failures[-1]  # hypothesis replays the shrunk case last
        entry.mismatches = mismatches
        entry.error = error
        if error and known is None:
            entry.status = "error"
        entry.example = describe_case(case)
        entry.shrunk_case = _save(case, artifacts, key)
        if entry.shrunk_case:
            entry.replay = (
                f"refq check --backend {shlex.quote(backend_spec)} --replay "
                f"{shlex.quote(entry.shrunk_case)}"
            )
    return entry


def _case_key(case: Case) -> str:
    return f"{case.meta.get('op', '?')}.{case.meta.get('variant', '?')}"


def _check_selection(ops: list[str], keys: list[str], cases: list[Case], each: bool) -> None:
    """SpecError if ``ops`` selects nothing — or, with ``each``, if any of its patterns
    selects nothing — naming the empty patterns with close names."""
    import difflib

    names = sorted({*keys, *(_case_key(c) for c in cases), *(c.name for c in cases)})
    empty = [p for p in ops if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if not ops or (empty if each else len(empty) == len(ops)):
        hints = []
        for p in empty:
            close = difflib.get_close_matches(p, names, n=3, cutoff=0.6)
            hints.append(f"{p!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        where = "suite keys" + (" or golden cases" if cases else "")
        raise SpecError(
            f"ops: {', '.join(hints) or 'an empty list'} selects none of the {where}; "
            f"suite keys: {', '.join(keys) or 'none (no generated cases)'}"
        )


def golden_cases(root: Path) -> list[Case]:
    """The cases of a golden set, after its hashes are checked (a tampered set is refused)."""
    root = Path(root)
    manifest = read_manifest(root)
    problems = check_files(root, manifest)
    if problems:
        raise BackendError(f"golden set {root} fails its manifest: {problems[0]}")
    return [read_case(root / name, root) for name in sorted(manifest["cases"])]


def run_suite(
    backend: Backend,
    *,
    ops: Iterable[str] | None = None,
    golden: Path | None = None,
    examples: int = 100,
    known: list[Known] | Path | None = None,
    derandomize: bool = True,
    artifacts: Path | None = None,
    generated: bool = True,
    backend_spec: str | None = None,
    extra_strategies: Mapping[str, Callable[[], Any]] | None = None,
    seed: int | None = None,
    regressions: Sequence[Case] | None = None,
    every_op_selects: bool = False,
) -> SuiteReport:
    """Run refq's conformance suite on ``backend``.

    ``ops``: globs over the suite keys (``family.variant``, one per registered kernel
    variant: :data:`refq.crosscheck.strategies.STRATEGIES`); ``golden``: a golden set folder whose
    cases are run too; ``examples``: hypothesis examples per key; ``known``: known
    disagreements (list or JSON file); ``artifacts``: where minimal failing cases are written
    (as golden case folders, replayable with ``refq check --replay``);
    ``extra_strategies``: more hypothesis strategies (key → zero-argument factory of a
    strategy drawing :class:`~refq.golden.case.Case`), run after refq's own and selected by
    ``ops`` the same way — how an adapter adds its backend-specific hunts. ``seed``: draw
    the generated cases from this hypothesis seed instead of the derandomized stream (how
    ``refq check --workers`` splits one long hunt into different ones); ``regressions``:
    named cases (an adapter's minimal reproducers) run like golden cases and reported with
    source ``regression``. A selection that selects nothing is a SpecError; with
    ``every_op_selects`` (``refq check --ops``) so is any one pattern of it that selects
    nothing (a typo). ``examples`` must be >= 1.

    A golden case is matched against ``known`` by its name; a key-level entry (``op.variant``)
    explains only a golden case that fails, so one agreeing case of a key known to disagree
    elsewhere is not reported ``fixed?``.
    """
    from refq.crosscheck.strategies import STRATEGIES, corner_examples

    known_list = load_known(known) if isinstance(known, (str, Path)) else list(known or [])
    ops_list = list(ops) if ops is not None else None
    spec = backend_spec or backend.name
    strategies = {**STRATEGIES, **(extra_strategies or {})} if generated else {}
    if generated and (isinstance(examples, bool) or not isinstance(examples, int)
                      or examples < 1):
        raise SpecError(f"examples must be an int >= 1 (hypothesis cases per key), "
                        f"got {examples!r}")
    named: list[tuple[str, Case]] = [("regression", c) for c in regressions or ()]
    if golden is not None:
        named += [("golden", c) for c in golden_cases(golden)]
    if ops_list is not None:
        _check_selection(ops_list, list(strategies), [c for _, c in named],
                         every_op_selects)
    report = SuiteReport(backend.name)
    if generated:
        for key, make in strategies.items():
            if _selected(key, ops_list):
                report.entries.append(
                    _hypothesis_entry(
                        backend,
                        spec,
                        key,
                        make(),
                        examples,
                        derandomize,
                        find_known(known_list, key),
                        artifacts,
                        seed,
                        corner_examples(key) if key in STRATEGIES else None,
                    )
                )
    for source, case in named:
        key = _case_key(case)
        if not (_selected(key, ops_list) or _selected(case.name, ops_list)):
            continue
        variant = key if key in KERNELS else ""
        if not backend.supports(case):
            report.entries.append(Entry(case.name, source, "skip", reason="unsupported",
                                        variant=variant))
            continue
        mismatches, error = run_case(backend, case)
        kn = find_known(known_list, case.name)
        if kn is None and (mismatches or error):
            kn = find_known(known_list, key)
        entry = Entry(
            case.name,
            source,
            _classify(bool(mismatches or error), kn),
            1,
            mismatches,
            error,
            kn.reason if kn else "",
            variant=variant,
        )
        if error and kn is None:
            entry.status = "error"
        report.entries.append(entry)
    return report


def replay(backend: Backend, folder: Path) -> Entry:
    """Run one saved case folder (e.g. a shrunk failure) on ``backend``."""
    case = read_case(Path(folder))
    if not backend.supports(case):
        return Entry(case.name, "replay", "skip", reason="unsupported")
    mismatches, error = run_case(backend, case)
    status = "error" if error else ("fail" if mismatches else "pass")
    return Entry(case.name, "replay", status, 1, mismatches, error)


__all__ = ["expected_outputs", "golden_cases", "replay", "run_case", "run_suite"]
