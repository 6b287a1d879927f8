"""Contact sheet of a written dataset: forged images with ground-truth outlines, authentic images plain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shared.dataset import Layout
from shared.images import load_image, load_mask
from shared.overlay import contact_sheet, draw_outlines, save_png


def _tiles_for(root: Path, row: pd.Series) -> list[tuple[np.ndarray, str]]:
    layout, cid = Layout(root), str(row["case_id"])
    what = f"{row['family']} {'compound' if row['compound'] else 'single'}"
    if row["split"] == "train":
        pairs = [(layout.train_images / "forged" / f"{cid}.png", layout.train_masks / f"{cid}.npy")]
    elif row["split"] == "supplemental":
        pairs = [(layout.supplemental_images / f"{cid}.png", layout.supplemental_masks / f"{cid}.npy")]
    else:
        pairs = [(layout.test_images / f"{cid}.png", None)]
    tiles = []
    for image_path, mask_path in pairs:
        image = load_image(image_path)
        masks = None
        if mask_path is not None:
            masks = load_mask(mask_path)
        elif row["label"] == "forged":
            masks = _test_masks(root, cid, image.shape[:2])
        if masks is not None:
            thickness = max(2, round(max(image.shape[:2]) / 300))
            image = draw_outlines(image, list(masks), thickness)
            caption = f"{cid} {what} {row['n_ops']}op {row['transforms']}"
        else:
            caption = f"{cid} {what} authentic"
        tiles.append((image, caption))
    return tiles


def _test_masks(root: Path, case_id: str, shape) -> np.ndarray | None:
    from shared.rle import decode_instances

    solution = pd.read_csv(root / "solution.csv", dtype=str, keep_default_na=False).set_index("case_id")
    masks = decode_instances(solution.loc[case_id, "annotation"], shape)
    return np.stack(masks) if masks else None


def write_preview(root: str | Path, out: str | Path, n: int = 36, split: str | None = None, cell: int = 400) -> Path:
    """Write a sheet of up to ``n`` cases (test first: the compound figures) to ``out``."""
    root = Path(root)
    manifest = pd.read_csv(root / "manifest.csv", dtype={"case_id": str})
    if split:
        manifest = manifest[manifest["split"] == split]
    order = {"test": 0, "supplemental": 1, "train": 2}
    manifest = manifest.sort_values("split", key=lambda s: s.map(order), kind="stable").head(n)
    tiles, captions = [], []
    for _, row in manifest.iterrows():
        for image, caption in _tiles_for(root, row):
            tiles.append(image)
            captions.append(caption)
    sheet = contact_sheet(tiles, captions, columns=6 if len(tiles) > 12 else 4, cell=cell)
    save_png(out, sheet)
    return Path(out)
