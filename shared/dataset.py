"""Discover and validate a Kaggle-layout data root into one typed table.

Real competition data (``data/recodai``) and the embedded synthetic data (``data/synthetic``) go
through this same code. Each row is one image; ``uid`` (``split/label/case_id``) is unique while
``case_id`` is shared by an authentic image and the forged image made from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from shared.images import ImageReadError, load_image, load_mask, read_mask_shape, read_size

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
COLUMNS = ["uid", "case_id", "split", "label", "image_path", "mask_path", "height", "width", "n_instances"]
SPLITS = ("train", "supplemental", "test")
LABELS = ("authentic", "forged", "unknown")
DTYPES = {
    "uid": "string",
    "case_id": "string",
    "split": pd.CategoricalDtype(SPLITS),
    "label": pd.CategoricalDtype(LABELS),
    "image_path": "string",
    "mask_path": "string",
    "height": "int64",
    "width": "int64",
    "n_instances": "Int64",
}


class DataLayoutError(ValueError):
    """A data root that does not follow the Kaggle layout; lists every problem, each naming its file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        head = "\n  ".join(problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} data problem(s):\n  {head}{more}")


@dataclass(frozen=True)
class Layout:
    """Where each part of a Kaggle-layout root lives."""

    root: Path

    @property
    def train_images(self) -> Path:
        return self.root / "train_images"

    @property
    def train_masks(self) -> Path:
        return self.root / "train_masks"

    @property
    def supplemental_images(self) -> Path:
        return self.root / "supplemental_images"

    @property
    def supplemental_masks(self) -> Path:
        return self.root / "supplemental_masks"

    @property
    def test_images(self) -> Path:
        return self.root / "test_images"

    @property
    def sample_submission(self) -> Path:
        return self.root / "sample_submission.csv"


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (sorted; empty if the folder does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def discover(root: str | Path, deep: bool = False, errors: str = "raise") -> pd.DataFrame:
    """Build the image table for a data root.

    Header-level checks always run (image readable, mask present and of the image's shape, unique
    ids). ``deep=True`` also decodes every image and mask (truncated PNG, non-binary mask, empty
    channel). ``errors="raise"`` raises :class:`DataLayoutError` listing every problem; ``"warn"``
    logs them and drops the affected rows.
    """
    layout = Layout(Path(root))
    if not layout.root.is_dir():
        raise DataLayoutError([f"{layout.root}: data root does not exist"])
    problems: list[str] = []
    rows: list[dict] = []
    sources = [
        ("train", "authentic", layout.train_images / "authentic", None),
        ("train", "forged", layout.train_images / "forged", layout.train_masks),
        ("supplemental", "forged", layout.supplemental_images, layout.supplemental_masks),
        ("test", "unknown", layout.test_images, None),
    ]
    if not any(list_images(folder) for _, _, folder, _ in sources):
        raise DataLayoutError([f"{layout.root}: no images under train_images/, supplemental_images/ or test_images/"])
    for split, label, folder, mask_dir in sources:
        for path in tqdm(list_images(folder), desc=f"scan {split}/{label}", leave=False, disable=None):
            row, problem = _describe(path, split, label, mask_dir, deep)
            if problem:
                problems.append(problem)
            else:
                rows.append(row)
    table = pd.DataFrame.from_records(rows, columns=COLUMNS)
    problems += _duplicate_problems(table)
    if problems:
        if errors == "raise":
            raise DataLayoutError(problems)
        for problem in problems:
            log.warning("skipping: %s", problem)
        bad_paths = {p.split(": ", 1)[0] for p in problems}
        table = table[~table["image_path"].isin(bad_paths) & ~table["mask_path"].isin(bad_paths)]
        table = table.drop_duplicates("uid", keep=False)
    _warn_orphan_masks(layout, table)
    return table.astype(DTYPES).reset_index(drop=True)


def _describe(path: Path, split: str, label: str, mask_dir: Path | None, deep: bool) -> tuple[dict, str | None]:
    case_id = path.stem
    row = {
        "uid": f"{split}/{label}/{case_id}" if split == "train" else f"{split}/{case_id}",
        "case_id": case_id,
        "split": split,
        "label": label,
        "image_path": str(path),
        "mask_path": "",
        "height": 0,
        "width": 0,
        "n_instances": 0 if label == "authentic" else pd.NA,
    }
    try:
        height, width = load_image(path).shape[:2] if deep else read_size(path)
        row.update(height=height, width=width)
        if mask_dir is not None:
            mask_path = mask_dir / f"{case_id}.npy"
            if not mask_path.is_file():
                return row, f"{path}: forged image without mask (expected {mask_path})"
            row["mask_path"] = str(mask_path)
            if deep:
                row["n_instances"] = load_mask(mask_path, (height, width)).shape[0]
            else:
                row["n_instances"] = _check_mask_header(mask_path, (height, width))
    except ImageReadError as exc:
        return row, str(exc)
    return row, None


def _check_mask_header(mask_path: Path, shape: tuple[int, int]) -> int:
    mask_shape = read_mask_shape(mask_path)
    if len(mask_shape) == 2:
        mask_shape = (1, *mask_shape)
    if len(mask_shape) != 3 or mask_shape[0] == 0:
        raise ImageReadError(f"{mask_path}: mask must have shape (N, H, W) with N >= 1, got {mask_shape}")
    if tuple(mask_shape[1:]) != shape:
        raise ImageReadError(f"{mask_path}: mask shape {mask_shape[1:]} does not match image shape {shape}")
    return mask_shape[0]


def _duplicate_problems(table: pd.DataFrame) -> list[str]:
    problems = []
    for uid, group in table.groupby("uid"):
        if len(group) > 1:
            others = ", ".join(group["image_path"].iloc[1:])
            problems.append(f"{group['image_path'].iloc[0]}: duplicate case_id {uid!r} also in {others}")
    train_ids = set(table.loc[table["split"] == "train", "case_id"])
    for _, row in table[table["split"] == "supplemental"].iterrows():
        if row["case_id"] in train_ids:
            problems.append(f"{row['image_path']}: duplicate case_id {row['case_id']!r}: also used in train_images/")
    return problems


def _warn_orphan_masks(layout: Layout, table: pd.DataFrame) -> None:
    used = set(table["mask_path"])
    for mask_dir in (layout.train_masks, layout.supplemental_masks):
        if mask_dir.is_dir():
            for path in sorted(mask_dir.glob("*.npy")):
                if str(path) not in used:
                    log.warning("%s: mask without a usable forged image; ignored", path)


def load_table(root: str | Path, **kwargs) -> pd.DataFrame:
    """:func:`discover` with a one-line log of what was found."""
    table = discover(root, **kwargs)
    counts = table.groupby(["split", "label"], observed=True).size()
    log.info("%s: %s", root, ", ".join(f"{s}/{lab}={n}" for (s, lab), n in counts.items()))
    return table


def labelled_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows with a known label (train and supplemental), the ones folds and OOF maps cover."""
    return table[table["split"] != "test"].reset_index(drop=True)


def unlabelled_rows(table: pd.DataFrame, sample_submission: str | Path | None = None) -> pd.DataFrame:
    """Test rows, in ``sample_submission.csv`` order when that file is given and exists."""
    rows = table[table["split"] == "test"]
    if sample_submission is not None and Path(sample_submission).is_file():
        order = pd.read_csv(sample_submission, dtype=str, keep_default_na=False)["case_id"].tolist()
        rank = {case_id: i for i, case_id in enumerate(order)}
        rows = rows.assign(_rank=rows["case_id"].map(rank)).sort_values("_rank", kind="stable").drop(columns="_rank")
    return rows.reset_index(drop=True)


def true_masks(row: pd.Series) -> np.ndarray:
    """Ground-truth ``(N, H, W)`` masks of a row (zero channels for authentic or test rows)."""
    if not row["mask_path"]:
        return np.zeros((0, int(row["height"]), int(row["width"])), dtype=np.uint8)
    return load_mask(row["mask_path"], (int(row["height"]), int(row["width"])))
