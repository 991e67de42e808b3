"""Live progress of a sweep (tqdm): one bar for the whole sweep and one per running cell,
each counting images (so tqdm's rate is images/s and its ETA the time left), with the
tasks done / total beside it. A cell's bar appears with its first finished shard and goes
when the cell is complete. ``enabled=False`` (``--quiet``) shows nothing.
"""

from __future__ import annotations

import time
from typing import Any


class Progress:
    """Bars over ``total_images`` / ``total_tasks``; cells register their size first."""

    def __init__(self, total_images: int, total_tasks: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total_tasks = total_tasks
        self.tasks = 0
        self.cells: dict[str, tuple[str, int, int]] = {}  # cell → (label, images, tasks)
        self.done: dict[str, list[int]] = {}  # cell → [images, tasks] so far
        self.bars: dict[str, Any] = {}
        self.slots: dict[str, int] = {}  # cell → bar line (1, 2, ...; 0 is the sweep's)
        self.overall: Any = None
        self.last = time.time()  # when the last task ended: a new cell bar's start
        if enabled and total_tasks:
            from tqdm import tqdm

            self.overall = tqdm(total=total_images, desc="sweep", unit="img", position=0,
                                dynamic_ncols=True)
            self._postfix()

    def add_cell(self, cell: str, label: str, images: int, tasks: int) -> None:
        """Announce a cell with ``images`` images to evaluate in ``tasks`` tasks."""
        self.cells[cell] = (label, images, tasks)
        self.done[cell] = [0, 0]

    def _postfix(self) -> None:
        if self.overall is not None:
            self.overall.set_postfix_str(f"tasks {self.tasks}/{self.total_tasks}")

    def task(self, cell: str | None = None, images: int = 0) -> None:
        """One task finished (a shard of ``cell`` with ``images`` images, or a prep)."""
        self.tasks += 1
        if cell is None:
            self.last = time.time()
        if self.overall is not None:
            self.overall.update(images)
            self._postfix()
        if cell is None or cell not in self.cells:
            return
        label, total, tasks = self.cells[cell]
        done = self.done[cell]
        done[0] += images
        done[1] += 1
        if not self.enabled:
            return
        if cell not in self.bars:
            from tqdm import tqdm

            used = set(self.slots.values())
            slot = next(i for i in range(1, len(used) + 2) if i not in used)
            self.slots[cell] = slot
            self.bars[cell] = tqdm(total=total, desc=label, unit="img", leave=False,
                                   position=slot, dynamic_ncols=True)
            self.bars[cell].start_t = self.last  # its first task ran since then
        bar = self.bars[cell]
        bar.update(images)
        bar.set_postfix_str(f"tasks {done[1]}/{tasks}")
        if done[1] >= tasks:
            bar.close()
            del self.bars[cell], self.slots[cell]
        self.last = time.time()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        self.slots.clear()
        if self.overall is not None:
            self.overall.close()
            self.overall = None


__all__ = ["Progress"]
