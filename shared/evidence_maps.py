"""DVC stage ``evidence``: repetition evidence (``shared/evidence.py``) for every image, computed once.

    python -m shared.evidence_maps --root data/synthetic --out artifacts/evidence

Writes ``<out>/<split>.npz`` (+ index; ``shared.maps`` format, uint8 ``(H, W, C)`` per uid, C =
``len(shared.evidence.CHANNELS)``) for each split present (train, supplemental, test), so training,
OOF and test maps never recompute it. Worker processes (``evidence.jobs``) are single-threaded;
results do not depend on their number. An image that fails to decode gets zero evidence, logged
with its path.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from shared.config import data_root, load_params
from shared.dataset import load_table
from shared.evidence import CHANNELS, EvidenceSpec, compute_evidence
from shared.images import ImageReadError, load_image
from shared.logs import setup_logging
from shared.maps import MapReader, MapWriter

log = logging.getLogger(__name__)
SPEC_FILE = "spec.json"  # beside the maps: the EvidenceSpec they were computed with


def evidence_settings(params: dict | None = None) -> tuple[EvidenceSpec, int]:
    """``(spec, jobs)`` from the ``evidence:`` section of params.yaml."""
    params = load_params() if params is None else params
    section = params.get("evidence") or {}
    return EvidenceSpec.from_dict(section.get("spec")), int(section.get("jobs", 1))


def evidence_for_file(path: str, shape: tuple[int, int], spec: EvidenceSpec) -> np.ndarray:
    """Evidence of one image file; zeros of ``shape`` (logged) when it cannot be decoded."""
    try:
        return compute_evidence(load_image(path), spec)
    except (ImageReadError, ValueError, cv2.error) as exc:
        log.warning("%s: no evidence (%s); writing zeros", path, exc)
        return np.zeros((*shape, len(CHANNELS)), np.uint8)


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _work(job: tuple[str, str, tuple[int, int], dict]) -> tuple[str, np.ndarray]:
    uid, path, shape, spec = job
    return uid, evidence_for_file(path, shape, EvidenceSpec.from_dict(spec))


def iter_evidence(rows: pd.DataFrame, spec: EvidenceSpec, jobs: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """``(uid, evidence)`` for every row, in row order."""
    jobs_list = [
        (r.uid, r.image_path, (int(r.height), int(r.width)), spec.to_dict()) for r in rows.itertuples(index=False)
    ]
    if jobs <= 1 or len(jobs_list) < 2:
        _init_worker()
        yield from map(_work, jobs_list)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(jobs, len(jobs_list)), initializer=_init_worker) as pool:
        yield from pool.imap(_work, jobs_list, chunksize=1)


def write_evidence(root: str | Path, out: str | Path, spec: EvidenceSpec, jobs: int = 1) -> list[Path]:
    """One evidence file per split of ``root`` under ``out``; returns the files written."""
    table = load_table(root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2) + "\n")
    written = []
    for split, rows in table.groupby("split", observed=True, sort=True):
        path = out / f"{split}.npz"
        with MapWriter(path) as writer:
            for uid, evidence in tqdm(iter_evidence(rows, spec, jobs), total=len(rows), desc=f"evidence {split}"):
                writer.add(uid, evidence)
        written.append(path)
        log.info("wrote %s (%d images)", path, len(rows))
    return written


class EvidenceStore:
    """Precomputed evidence of a folder written by :func:`write_evidence`: ``store[uid]`` -> uint8 ``(H, W, C)``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        paths = sorted(self.folder.glob("*.npz"))
        if not paths:
            raise FileNotFoundError(f"{self.folder}: no evidence files; run the evidence stage first")
        self._readers = [MapReader(p) for p in paths]
        self._where = {uid: reader for reader in self._readers for uid in reader.uids}

    def __contains__(self, uid: str) -> bool:
        return uid in self._where

    def check_spec(self, spec: EvidenceSpec) -> None:
        """Raise unless the stored evidence was computed with ``spec`` (a model reads what it was built for)."""
        path = self.folder / SPEC_FILE
        stored = EvidenceSpec.from_dict(json.loads(path.read_text())) if path.is_file() else None
        if stored != spec:
            raise ValueError(f"{self.folder}: evidence made with {stored}, but the model reads {spec}; rerun the stage")

    def __getitem__(self, uid: str) -> np.ndarray:
        if uid not in self._where:
            raise KeyError(f"{self.folder}: no evidence for {uid!r} (rerun the evidence stage)")
        evidence = self._where[uid].raw(uid)
        return evidence if evidence.ndim == 3 else evidence[:, :, None]


class ComputedEvidence:
    """Evidence computed on demand (and kept) for the rows of a table: ``lookup[uid]``, for checks and
    benchmarks that have no evidence stage behind them. The pipeline reads :class:`EvidenceStore`."""

    def __init__(self, rows: pd.DataFrame, spec: EvidenceSpec):
        self.spec = spec
        self._rows = {r.uid: (r.image_path, (int(r.height), int(r.width))) for r in rows.itertuples(index=False)}
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, uid: str) -> np.ndarray:
        if uid not in self._cache:
            path, shape = self._rows[uid]
            self._cache[uid] = evidence_for_file(path, shape, self.spec)
        return self._cache[uid]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: data.root in params.yaml)")
    parser.add_argument("--out", default="artifacts/evidence", help="folder for <split>.npz evidence files")
    parser.add_argument("--jobs", type=int, help="worker processes (default: evidence.jobs)")
    args = parser.parse_args(argv)
    setup_logging()
    spec, jobs = evidence_settings()
    write_evidence(data_root(args.root), args.out, spec, args.jobs or jobs)


if __name__ == "__main__":
    main()
