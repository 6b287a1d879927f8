"""Write probability maps of many images to one ``shared.maps`` file (streaming, with progress).

``write_maps`` predicts in this process; ``write_maps_parallel`` spreads the images over worker
processes with one torch thread each (small networks on a few cores run faster as several one-thread
processes than as one process whose threads fight over tiny kernels, and it is how prediction's worker
pool runs them too). Both store the rows in the given order.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from models.segmenter.data import EvidenceLookup
from models.segmenter.infer import Predictor
from shared.images import load_image
from shared.maps import MapWriter, quantize


def _store(rows: pd.DataFrame, maps: Iterable[np.ndarray], path: str | Path, desc: str) -> Path:
    """Write ``maps`` (one per row, in row order) under the rows' uids, checking each fits its image."""
    with MapWriter(path) as writer:
        for (_, row), prob in tqdm(
            zip(rows.iterrows(), maps, strict=True), total=len(rows), desc=desc, leave=False, disable=None
        ):
            if prob.shape != (int(row["height"]), int(row["width"])):
                raise ValueError(f"{row['image_path']}: map {prob.shape} != image {row['height']}x{row['width']}")
            writer.add(row["uid"], prob)
    return Path(path)


def write_maps(
    predictor: Predictor,
    rows: pd.DataFrame,
    path: str | Path,
    desc: str = "maps",
    evidence: EvidenceLookup | None = None,
) -> Path:
    """Predict every row's image at native size and store it under its ``uid`` (``evidence``: precomputed
    evidence by uid; without it, the predictor computes what its members need)."""
    use_evidence = evidence is not None and bool(predictor.evidence_specs)

    def maps() -> Iterator[np.ndarray]:
        for _, row in rows.iterrows():
            extra = evidence(row["uid"]) if use_evidence else None
            yield predictor.predict(load_image(row["image_path"]), extra)

    return _store(rows, maps(), path, desc)


_WORKER: dict = {}


def _start_worker(checkpoints: list[str], device: str, tta: bool | str, evidence_dir: str | None) -> None:
    import torch

    from models.segmenter.infer import load_predictor
    from shared.evidence_maps import EvidenceStore

    torch.set_num_threads(1)
    _WORKER["predictor"] = predictor = load_predictor(checkpoints, device=device, tta=tta)
    _WORKER["evidence"] = EvidenceStore(evidence_dir) if evidence_dir and predictor.evidence_specs else None


def _predict_row(job: tuple[str, str]) -> np.ndarray:
    uid, image_path = job
    evidence = _WORKER["evidence"]
    extra = evidence[uid] if evidence is not None else None
    return quantize(_WORKER["predictor"].predict(load_image(image_path), extra))


def write_maps_parallel(
    checkpoints: Sequence[str | Path],
    rows: pd.DataFrame,
    path: str | Path,
    jobs: int,
    desc: str = "maps",
    device: str = "cpu",
    tta: bool | str = True,
    evidence_dir: str | Path | None = None,
) -> Path:
    """``write_maps`` for the mean of ``checkpoints``, over ``jobs`` worker processes of one torch thread each.

    Every worker loads the checkpoints once and reads evidence from ``evidence_dir`` (the evidence stage;
    None: computed where needed). The file holds the rows in the order given, whatever ``jobs`` is.
    """
    context = multiprocessing.get_context("spawn")
    arguments = ([str(c) for c in checkpoints], device, tta, None if evidence_dir is None else str(evidence_dir))
    tasks = list(zip(rows["uid"], rows["image_path"].astype(str), strict=True))
    with ProcessPoolExecutor(max(1, jobs), context, initializer=_start_worker, initargs=arguments) as pool:
        return _store(rows, pool.map(_predict_row, tasks), path, desc)
