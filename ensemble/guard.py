"""A time guard for prediction runs with a hard limit (Kaggle: about 3.5 h for ~3,300 figures).

It measures the cost per image as it goes and, when the projected finish would overrun the budget,
steps down to a cheaper level (e.g. no TTA, fewer fold models, matcher only) through a callback.
Whatever happens, the caller's time budget in ``predict_folder`` keeps the submission valid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class TimeGuard:
    """Wraps an ``annotate(path) -> str`` function and degrades it to stay inside ``budget_s``."""

    def __init__(
        self,
        annotate: Callable[[Path], str],
        budget_s: float,
        n_images: int,
        set_level: Callable[[int], None],
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

    def __call__(self, path: Path) -> str:
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
            self.set_level(self.level)
            self._level_start, self._level_done = self.clock(), 0
        try:
            return self.annotate(path)
        finally:
            self.done += 1
            self._level_done += 1
