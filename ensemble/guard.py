"""A time guard for prediction runs with a hard limit (Kaggle: about 3.5 h for ~3,300 figures).

It measures the cost per image as it goes and, when the projected finish would overrun the budget,
steps down to a cheaper level (e.g. no TTA, fewer fold models, matcher only) through a callback.
Whatever happens, the caller's time budget in ``predict_folder`` keeps the submission valid.

Two ways to use it: wrap an ``annotate`` function (``guard(path)``, one process), or, with worker
processes, ask :meth:`TimeGuard.next_level` as each figure is sent and call :meth:`TimeGuard.finished`
as each one comes back (``predict_folder(..., guard=guard)``): the parent then measures the pool's
throughput and the level travels with every task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class TimeGuard:
    """Picks the cost level of each image (and wraps ``annotate`` when given) to stay inside ``budget_s``."""

    def __init__(
        self,
        annotate: Callable[[Path], str] | None,
        budget_s: float,
        n_images: int,
        set_level: Callable[[int], None] | None,
        n_levels: int,
        margin: float = 0.9,
        warmup: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.annotate, self.budget_s, self.n_images = annotate, budget_s, n_images
        self.set_level, self.n_levels, self.margin, self.warmup, self.clock = set_level, n_levels, margin, warmup, clock
        self.level = 0
        self.start = clock()
        self.done = 0
        self._level_start, self._level_done = self.start, 0

    def projected_total(self) -> float:
        """Elapsed time plus the remaining images at the current level's measured rate."""
        now = self.clock()
        rate = (now - self._level_start) / max(1, self._level_done)
        return (now - self.start) + rate * (self.n_images - self.done)

    def expect(self, n_images: int) -> None:
        """The number of images still to come (e.g. after a resume skipped the finished ones)."""
        self.n_images = self.done + n_images

    def next_level(self) -> int:
        """The level for the next image: one step down when the projection overruns the budget."""
        if (
            self._level_done >= self.warmup
            and self.level < self.n_levels - 1
            and self.projected_total() > self.margin * self.budget_s
        ):
            self.level += 1
            log.warning(
                "time guard: projected %.0f s > %.0f s budget after %d images; stepping down to level %d",
                self.projected_total(),
                self.budget_s,
                self.done,
                self.level,
            )
            if self.set_level is not None:
                self.set_level(self.level)
            self._level_start, self._level_done = self.clock(), 0
        return self.level

    def finished(self) -> None:
        """One image came back."""
        self.done += 1
        self._level_done += 1

    def __call__(self, path: Path) -> str:
        if self.annotate is None:
            raise TypeError("this TimeGuard has no annotate function; use next_level()/finished()")
        self.next_level()
        try:
            return self.annotate(path)
        finally:
            self.finished()
