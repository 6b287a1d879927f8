"""The progress log beside a submission, so an interrupted prediction run can resume.

``<out>.progress`` (e.g. ``submission.csv.progress``) holds one JSON line per finished figure,
``{"case_id": ..., "annotation": ..., "problem": ...}``, appended and flushed as each figure finishes.
A row of the submission that is still the initial ``authentic`` placeholder never appears here, so
the log, not the CSV, says what is *done*. Figures that failed (unreadable, over the time limit, worker
died) are done too: they would fail again. A line cut short by a crash is ignored on reading.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def progress_path(out: str | Path) -> Path:
    """Where the progress log of submission ``out`` lives."""
    out = Path(out)
    return out.with_name(out.name + ".progress")


class ProgressLog:
    """Append-only record of finished rows for one submission file."""

    def __init__(self, out: str | Path):
        self.path = progress_path(out)
        self._handle = None

    def read(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """``{case_id: annotation}`` of every finished row (only ``ids`` when given; the last entry wins)."""
        done: dict[str, str] = {}
        if not self.path.is_file():
            return done
        wanted = None if ids is None else set(ids)
        with open(self.path) as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    entry = json.loads(line)
                    case_id, annotation = str(entry["case_id"]), entry["annotation"]
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: unreadable progress line skipped (cut short by a crash?)", self.path, number)
                    continue
                if isinstance(annotation, str) and annotation and (wanted is None or case_id in wanted):
                    done[case_id] = annotation
        return done

    def start(self, resume: bool) -> None:
        """Open for appending; a fresh run (``resume=False``) first empties the log."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = resume and self.path.is_file() and self.path.stat().st_size > 0
        torn = exists and not self.path.read_bytes().endswith(b"\n")
        self._handle = open(self.path, "a" if resume else "w")  # noqa: SIM115 (held open across figures)
        if torn:  # the crash cut the last line: start on a fresh one
            self._handle.write("\n")

    def add(self, case_id: str, annotation: str, problem: str | None = None) -> None:
        """Record one finished row (flushed to the OS at once)."""
        if self._handle is None:
            raise RuntimeError(f"{self.path}: progress log not started")
        self._handle.write(json.dumps({"case_id": case_id, "annotation": annotation, "problem": problem}) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
