"""Test-only annotators for the worker pool: ones that behave, hang, die or fail on cue.

They must live in an importable module (not a test function) so that ``spawn`` workers can unpickle
their factories. The cue is in the file name: ``*sleep*`` hangs, ``*kill*`` SIGKILLs its own process,
``*exit*`` leaves with ``os._exit``, ``*raise*`` raises; every other file gets an annotation made from
its bytes and the current cost level. Each call is appended to ``calls`` (one line per figure), so
tests can count them across processes.
"""

from __future__ import annotations

import os
import signal
import time
import zlib
from pathlib import Path


class CueAnnotator:
    """``annotate(path) -> str`` that misbehaves when the file name says so (and ``misbehave`` is on)."""

    def __init__(self, calls: str | Path | None = None, misbehave: bool = True):
        self.calls, self.misbehave, self.level = calls, misbehave, 0

    def set_level(self, level: int) -> None:
        self.level = level

    def annotate(self, path: Path) -> str:
        path = Path(path)
        if self.calls is not None:
            with open(self.calls, "a") as handle:
                handle.write(f"{path.stem}\n")
        if self.misbehave:
            if "sleep" in path.stem:
                time.sleep(600)
            if "kill" in path.stem:
                os.kill(os.getpid(), signal.SIGKILL)
            if "exit" in path.stem:
                os._exit(3)
        if "raise" in path.stem:
            raise ValueError("cannot read this figure")
        start = zlib.crc32(path.read_bytes()) % 1000 + 1
        return f"[{start}, {self.level + 1}]"


def broken_factory() -> CueAnnotator:
    raise FileNotFoundError("bundle/bundle.json: no such bundle")
