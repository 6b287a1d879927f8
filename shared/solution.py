"""Kaggle-format ``solution.csv`` (``case_id, annotation, shape``) from a labelled data root."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tqdm import tqdm

from shared.dataset import Layout, discover, true_masks
from shared.rle import AUTHENTIC, encode_instances

SOLUTION_COLUMNS = ["case_id", "annotation", "shape"]


def solution_row(case_id: str, masks, height: int, width: int) -> dict[str, str]:
    """One solution row; no masks means authentic."""
    if masks is None or len(masks) == 0:
        return {"case_id": case_id, "annotation": AUTHENTIC, "shape": AUTHENTIC}
    return {"case_id": case_id, "annotation": encode_instances(masks), "shape": f"[{height}, {width}]"}


def make_solution(root: str | Path, split: str = "train") -> pd.DataFrame:
    """Solution rows for the ``train`` or ``supplemental`` split of a root.

    Ids match ``recodai predict --images ROOT/<split>_images``: ``authentic/<case_id>`` and
    ``forged/<case_id>`` for train (twins share a case_id), ``<case_id>`` for supplemental.
    """
    if split not in ("train", "supplemental"):
        raise ValueError(f"split must be 'train' or 'supplemental', got {split!r}")
    table = discover(root)
    rows = table[table["split"] == split]
    if rows.empty:
        raise ValueError(f"{Layout(Path(root)).root}: no {split} images")
    records = []
    for _, row in tqdm(rows.iterrows(), total=len(rows), desc=f"solution {split}", disable=None):
        key = f"{row['label']}/{row['case_id']}" if split == "train" else row["case_id"]
        masks = true_masks(row) if row["label"] == "forged" else None
        records.append(solution_row(key, masks, int(row["height"]), int(row["width"])))
    return pd.DataFrame.from_records(records, columns=SOLUTION_COLUMNS)
