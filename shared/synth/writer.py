"""Write a generated dataset in the exact Kaggle layout, plus ``solution.csv`` and ``manifest.csv``.

Each case is a pure function of (seed, split, index), so workers may run in any order; PNGs are
encoded with fixed settings, so a rerun is byte-identical.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from shared.dataset import Layout
from shared.solution import SOLUTION_COLUMNS, solution_row
from shared.synth.case import Case, make_case
from shared.synth.config import SynthConfig

log = logging.getLogger(__name__)

# fixed settings (byte-identical reruns), chosen for speed: deflate level 1, SUB filter, run-length strategy
PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION, 1,
    cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB,
    cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
]  # fmt: skip
OUTPUTS = (
    "train_images",
    "train_masks",
    "supplemental_images",
    "supplemental_masks",
    "test_images",
    "sample_submission.csv",
    "solution.csv",
    "manifest.csv",
)
MANIFEST_COLUMNS = [
    "case_id", "split", "label", "family", "families", "compound", "n_panels", "n_ops", "n_copies",
    "transforms", "photometric", "region_kinds", "cross_panel", "forged_area_frac", "min_region_frac",
    "base_jpeg", "jpeg", "authentic_jpeg", "hard_negatives", "gray", "mode", "authentic_mode", "height", "width",
    "scenario", "panel_layout", "panel_boxes",
]  # fmt: skip


@dataclass(frozen=True)
class Task:
    split: str
    index: int
    case_id: str


def case_ids(config: SynthConfig) -> dict[tuple[str, int], str]:
    """Unique integer-like ids across all splits, shuffled like Kaggle's (a function of the seed and counts)."""
    keys = (
        [("train", i) for i in range(config.n_train)]
        + [("supplemental", i) for i in range(config.n_supplemental)]
        + [("test", i) for i in range(config.n_test)]
    )
    rng = np.random.default_rng(np.random.SeedSequence(entropy=int(config.seed), spawn_key=(99,)))
    ids = rng.choice(np.arange(10, 10 + 20 * max(len(keys), 1)), size=len(keys), replace=False)
    return {key: str(int(i)) for key, i in zip(keys, ids, strict=True)}


def encode_png(image: np.ndarray, mode: str, transparent_white: bool = False) -> bytes:
    """PNG bytes of an RGB array in ``mode`` (``L`` needs a gray image; ``RGBA`` adds an alpha channel)."""
    if mode == "L":
        if not (np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2])):
            raise ValueError("mode L needs a gray image (R = G = B)")
        array = np.ascontiguousarray(image[:, :, 0])
    elif mode == "RGB":
        array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif mode == "RGBA":
        alpha = np.full(image.shape[:2], 255, np.uint8)
        if transparent_white:
            alpha[(image == 255).all(axis=2)] = 0
        array = np.dstack([cv2.cvtColor(image, cv2.COLOR_RGB2BGR), alpha])
    else:
        raise ValueError(f"unsupported PNG mode {mode!r}")
    ok, buffer = cv2.imencode(".png", array, PNG_PARAMS)
    if not ok:
        raise OSError("PNG encoding failed")
    return buffer.tobytes()


def write_case(config: SynthConfig, root: Path, task: Task) -> dict:
    """Generate and write one case; returns its manifest row (and a solution row for test cases)."""
    case = make_case(config, task.split, task.index)
    layout = Layout(root)
    cid = task.case_id
    if task.split == "train":
        (layout.train_images / "authentic" / f"{cid}.png").write_bytes(
            encode_png(case.authentic, case.authentic_mode, case.transparent_white)
        )
        (layout.train_images / "forged" / f"{cid}.png").write_bytes(
            encode_png(case.forged, case.forged_mode, case.transparent_white)
        )
        _save_mask(layout.train_masks / f"{cid}.npy", case.masks)
    elif task.split == "supplemental":
        (layout.supplemental_images / f"{cid}.png").write_bytes(
            encode_png(case.forged, case.forged_mode, case.transparent_white)
        )
        _save_mask(layout.supplemental_masks / f"{cid}.npy", case.masks)
    else:
        image = case.forged if case.forged is not None else case.authentic
        mode = case.forged_mode if case.forged is not None else case.authentic_mode
        (layout.test_images / f"{cid}.png").write_bytes(encode_png(image, mode, case.transparent_white))
    row = manifest_row(case, cid)
    if task.split == "test":
        h, w = row["height"], row["width"]
        row["_solution"] = solution_row(cid, case.masks, h, w)
    return row


def _save_mask(path: Path, masks: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(masks, dtype=np.uint8), allow_pickle=False)


def manifest_row(case: Case, case_id: str) -> dict:
    """One manifest row: what the case contains, for slicing scores."""
    image = case.forged if case.forged is not None else case.authentic
    h, w = image.shape[:2]
    ops = case.operations
    copies = [c for op in ops for c in op.copies]
    regions = [op.source_mask.sum() / (h * w) for op in ops] + [c.mask.sum() / (h * w) for c in copies]
    masks = case.masks
    label = "twin" if case.split == "train" else "forged" if case.forged is not None else "authentic"
    return {
        "case_id": case_id,
        "split": case.split,
        "label": label,
        "family": case.family,
        "families": "+".join(case.figure_families),
        "compound": int(case.compound),
        "n_panels": case.n_panels,
        "n_ops": len(ops),
        "n_copies": len(copies),
        "transforms": ";".join(sorted({c.geometric for c in copies})),
        "photometric": ";".join(sorted({p for c in copies for p in c.photometric})),
        "region_kinds": ";".join(sorted({op.region for op in ops})),
        "cross_panel": int(any(op.cross_panel for op in ops)),
        "forged_area_frac": round(float(masks.any(axis=0).mean()), 6) if masks is not None else 0.0,
        "min_region_frac": round(float(min(regions)), 6) if regions else 0.0,
        "base_jpeg": case.base_jpeg,
        "jpeg": case.forged_jpeg if case.forged is not None else case.authentic_jpeg,
        "authentic_jpeg": case.authentic_jpeg if case.authentic is not None else 0,
        "hard_negatives": ";".join(sorted({n.kind for n in case.negatives})),
        "gray": int(case.gray),
        "mode": case.forged_mode if case.forged is not None else case.authentic_mode,
        "authentic_mode": case.authentic_mode,
        "height": h,
        "width": w,
        "scenario": case.scenario,
        "panel_layout": case.layout,
        "panel_boxes": json.dumps([[int(v) for v in box] for box in case.panel_boxes]),
    }


def _prepare(root: Path, overwrite: bool) -> None:
    existing = [name for name in OUTPUTS if (root / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{root}: already holds {', '.join(existing)}; pass --overwrite to replace them")
    for name in existing:
        path = root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    layout = Layout(root)
    for folder in (
        layout.train_images / "authentic",
        layout.train_images / "forged",
        layout.train_masks,
        layout.supplemental_images,
        layout.supplemental_masks,
        layout.test_images,
    ):
        folder.mkdir(parents=True, exist_ok=True)


def _run(config: SynthConfig, root: Path, tasks: list[Task], workers: int) -> Iterator[dict]:
    if workers <= 1 or len(tasks) < 4:
        for task in tasks:
            yield write_case(config, root, task)
        return
    # forkserver/spawn: forking a parent whose OpenCV thread pool has run can deadlock the children
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        yield from pool.imap(_Worker(config, root), tasks, chunksize=1)


@dataclass(frozen=True)
class _Worker:
    config: SynthConfig
    root: Path

    def __call__(self, task: Task) -> dict:
        cv2.setNumThreads(1)
        return write_case(self.config, self.root, task)


def generate(
    root: str | Path, config: SynthConfig, workers: int | None = None, overwrite: bool = False
) -> pd.DataFrame:
    """Write the whole dataset under ``root``; returns the manifest."""
    root = Path(root)
    _prepare(root, overwrite)
    ids = case_ids(config)
    tasks = [Task(split, index, cid) for (split, index), cid in ids.items()]
    rows = []
    workers = config.workers if workers is None else workers
    for row in tqdm(_run(config, root, tasks, workers), total=len(tasks), desc="synth cases", disable=None):
        rows.append(row)
    solution = [row.pop("_solution") for row in rows if "_solution" in row]
    manifest = pd.DataFrame.from_records(rows, columns=MANIFEST_COLUMNS)
    manifest.to_csv(root / "manifest.csv", index=False)
    test_ids = manifest.loc[manifest["split"] == "test", "case_id"]
    pd.DataFrame({"case_id": test_ids, "annotation": "authentic"}).to_csv(root / "sample_submission.csv", index=False)
    pd.DataFrame.from_records(solution, columns=SOLUTION_COLUMNS).to_csv(root / "solution.csv", index=False)
    log.info("%s: %d train cases, %d supplemental, %d test", root, config.n_train, config.n_supplemental, config.n_test)
    return manifest
