"""Segmenter test maps made by the ``test_maps`` stage, reused by prediction instead of re-running the networks.

``recodai predict --maps artifacts/test`` (the DVC ``predict`` stage) would otherwise run every fold model
of every segmenter on every test image a second time. A map file is used for a component only when its
``<model>.sources.json`` names exactly the bundle's checkpoints (by sha256) and the TTA set the component
runs with; otherwise it is ignored with a warning and the component runs as usual. Maps are stored
quantised to 1/255, and prediction quantises computed maps the same way (``shared.maps.as_stored``), so a
row is identical whether its maps were read or computed.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.maps import MapReader, file_digests, read_sources

log = logging.getLogger(__name__)


class CachedMaps:
    """The precomputed test maps of one component, looked up by case id (``test/<case_id>`` in the file)."""

    def __init__(self, reader: MapReader):
        self.reader = reader

    @classmethod
    def open(
        cls, folder: str | Path, name: str, checkpoints: Sequence[str | Path], tta: Sequence[str]
    ) -> CachedMaps | None:
        """The maps ``folder/<name>.npz`` if they were made by ``checkpoints`` with ``tta``; else None (logged)."""
        path = Path(folder) / f"{name}.npz"
        if not path.is_file():
            log.warning("%s: no precomputed maps for %s; running it", path, name)
            return None
        sources = read_sources(path)
        expected = {"checkpoints": file_digests(checkpoints), "tta": sorted(set(tta))}
        if sources != expected:
            log.warning("%s: made by other checkpoints or TTA than the bundle's %s; running it instead", path, name)
            return None
        try:
            return cls(MapReader(path))
        except (OSError, ValueError, zipfile.BadZipFile) as exc:  # a broken cache must not sink the run
            log.warning("%s: unreadable (%s); running %s instead", path, exc, name)
            return None

    def get(self, case_id: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The float32 map of ``case_id`` if stored and readable at ``shape``; None otherwise (the component
        then runs)."""
        uid = f"test/{case_id}"
        if uid not in self.reader:
            return None
        try:
            prob = self.reader[uid]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            log.warning("%s: map of %s unreadable (%s); running the component", self.reader.path, uid, exc)
            return None
        return prob if prob.shape == tuple(shape) else None
