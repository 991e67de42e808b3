"""Running tasks: in this process (:class:`InlineExecutor`) or on a Dask cluster
(:class:`DaskExecutor`), behind one small interface.

A task is a module-level function and its arguments; an argument may be the handle of an
earlier task, which stands for that task's result (on Dask the result moves from worker to
worker, never through this process). :meth:`completed` yields every handle once, as its
task ends; :meth:`outcome` then gives its result or its exception, fetched only when asked
(so a large result that only other tasks need is never brought here).

Faults: Dask re-runs a task whose worker died (up to its ``allowed-failures`` setting,
default 3) — the caller sees only the final outcome; a task that raised is not retried
(refq's tasks are deterministic, so a second try would raise again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from refq.errors import DistError


class Executor(Protocol):
    """What the sweep driver needs from a place that runs tasks."""

    description: str

    def submit(self, key: str, fn: Callable[..., Any], *args: Any,
               priority: int = 0) -> Any: ...

    def completed(self) -> Iterator[Any]: ...

    def outcome(self, handle: Any, fetch: bool = True) -> tuple[bool, Any]: ...

    def everywhere(self, fn: Callable[[], Any]) -> dict[str, Any]: ...

    def release(self, handle: Any) -> None: ...

    def cancel(self) -> None: ...


@dataclass(eq=False)
class Inline:
    """The handle of an inline task."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    done: bool = False
    ok: bool = False
    value: Any = None


class DependencyFailed(DistError):
    """A task was not run because a task it needs failed."""


@dataclass
class InlineExecutor:
    """Runs each task in this process, in submission order, when :meth:`completed` reaches
    it (a KeyboardInterrupt stops it between or inside tasks)."""

    description: str = "this process (no cluster)"
    tasks: list[Inline] = field(default_factory=list)

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, priority: int = 0) -> Inline:
        handle = Inline(key, fn, args)
        self.tasks.append(handle)
        return handle

    def completed(self) -> Iterator[Inline]:
        i = 0
        while i < len(self.tasks):  # tasks may be submitted while iterating
            t = self.tasks[i]
            i += 1
            failed = next((a for a in t.args if isinstance(a, Inline) and not a.ok), None)
            if failed is not None:
                t.ok, t.value = False, DependencyFailed(f"{t.key}: needs {failed.key}, which "
                                                        f"failed: {failed.value}")
            else:
                args = [a.value if isinstance(a, Inline) else a for a in t.args]
                try:
                    t.value, t.ok = t.fn(*args), True
                except Exception as e:  # the outcome of the task, as on a cluster
                    t.value, t.ok = e, False
            t.done = True
            yield t

    def outcome(self, handle: Inline, fetch: bool = True) -> tuple[bool, Any]:
        """(True, result) or (False, exception); the result is None unless ``fetch``."""
        if not handle.done:
            raise DistError(f"task {handle.key} has not run yet")
        return handle.ok, handle.value if fetch or not handle.ok else None

    def everywhere(self, fn: Callable[[], Any]) -> dict[str, Any]:
        """``fn()`` on every worker: here, this process."""
        return {"this process": fn()}

    def release(self, handle: Inline) -> None:
        """Forget ``handle``'s result (its dependents have run)."""
        handle.value = None

    def cancel(self) -> None:
        self.tasks.clear()


class DaskExecutor:
    """Tasks as futures of a ``distributed.Client``."""

    def __init__(self, client: Any, description: str) -> None:
        from distributed import as_completed

        self.client = client
        self.description = description
        self._pending = as_completed()  # type: ignore[no-untyped-call]
        self._futures: dict[str, Any] = {}

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, priority: int = 0) -> Any:
        fut = self.client.submit(fn, *args, key=key, pure=False, priority=priority)
        self._futures[fut.key] = fut
        self._pending.add(fut)  # type: ignore[no-untyped-call]
        return fut

    def completed(self) -> Iterator[Any]:
        yield from self._pending

    def outcome(self, handle: Any, fetch: bool = True) -> tuple[bool, Any]:
        """(True, result) or (False, exception); the result is brought here only if
        ``fetch`` (else None)."""
        if handle.status == "finished":
            return True, handle.result() if fetch else None
        try:
            exc = handle.exception()
        except Exception as e:  # cancelled or lost: say so
            exc = e
        return False, exc if exc is not None else DistError(f"task {handle.key}: "
                                                            f"{handle.status}")

    def everywhere(self, fn: Callable[[], Any]) -> dict[str, Any]:
        """``fn()`` on every worker now connected, by worker address."""
        return dict(self.client.run(fn))

    def release(self, handle: Any) -> None:
        """Drop this executor's reference: the cluster frees the result once no task
        and no caller holds it."""
        self._futures.pop(handle.key, None)

    def cancel(self) -> None:
        if self._futures:
            self.client.cancel(list(self._futures.values()), force=True)
        self._futures.clear()


__all__ = ["DaskExecutor", "DependencyFailed", "Executor", "Inline", "InlineExecutor"]
