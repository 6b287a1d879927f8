"""Logging that does not break tqdm progress bars."""

from __future__ import annotations

import logging

from tqdm import tqdm


class TqdmHandler(logging.Handler):
    """Writes records through ``tqdm.write`` so active bars are redrawn below them."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # logging must never raise
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Route the root logger through tqdm, once."""
    root = logging.getLogger()
    if any(isinstance(h, TqdmHandler) for h in root.handlers):
        return
    handler = TqdmHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
