"""Write probability maps of many images to one ``shared.maps`` file (streaming, with progress)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from models.segmenter.data import EvidenceLookup
from models.segmenter.infer import Predictor
from shared.images import load_image
from shared.maps import MapWriter


def write_maps(
    predictor: Predictor,
    rows: pd.DataFrame,
    path: str | Path,
    desc: str = "maps",
    evidence: EvidenceLookup | None = None,
) -> Path:
    """Predict every row's image at native size and store it under its ``uid`` (``evidence``: precomputed
    evidence by uid; without it, the predictor computes what its members need)."""
    with MapWriter(path) as writer:
        for _, row in tqdm(rows.iterrows(), total=len(rows), desc=desc, leave=False, disable=None):
            extra = evidence(row["uid"]) if evidence is not None and predictor.evidence_specs else None
            prob = predictor.predict(load_image(row["image_path"]), extra)
            if prob.shape != (int(row["height"]), int(row["width"])):
                raise ValueError(f"{row['image_path']}: map {prob.shape} != image {row['height']}x{row['width']}")
            writer.add(row["uid"], prob)
    return Path(path)
