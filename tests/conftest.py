"""Shared fixtures: a tiny hand-made Kaggle-layout root for data-layer tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def build_kaggle_root(root: Path, n_cases: int = 6, seed: int = 0) -> Path:
    """Train twins (authentic + forged with a mask), one supplemental image, two test images."""
    rng = np.random.default_rng(seed)
    for i in range(n_cases):
        h, w = int(rng.integers(40, 70)), int(rng.integers(40, 70))
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        write_png(root / "train_images" / "authentic" / f"{100 + i}.png", image)
        forged = image.copy()
        forged[5:15, 5:15] = image[20:30, 20:30]
        write_png(root / "train_images" / "forged" / f"{100 + i}.png", forged)
        mask = np.zeros((1, h, w), np.uint8)
        mask[0, 5:15, 5:15] = mask[0, 20:30, 20:30] = 1
        (root / "train_masks").mkdir(parents=True, exist_ok=True)
        np.save(root / "train_masks" / f"{100 + i}.npy", mask)
    image = rng.integers(0, 255, (50, 60), dtype=np.uint8)
    write_png(root / "supplemental_images" / "900.png", image)
    (root / "supplemental_masks").mkdir(parents=True, exist_ok=True)
    supplemental_mask = np.zeros((2, 50, 60), np.uint8)
    supplemental_mask[0, :5, :5] = supplemental_mask[1, -5:, -5:] = 1
    np.save(root / "supplemental_masks" / "900.npy", supplemental_mask)
    for case_id in ("45", "46"):
        write_png(root / "test_images" / f"{case_id}.png", rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    (root / "sample_submission.csv").write_text("case_id,annotation\n46,authentic\n45,authentic\n")
    return root


@pytest.fixture
def kaggle_root(tmp_path: Path) -> Path:
    return build_kaggle_root(tmp_path / "recodai")


def write_root_evidence(root: Path, out: Path) -> Path:
    """The evidence stage's output for a test root, made with params.yaml's evidence spec."""
    from shared.config import REPO_ROOT, load_params
    from shared.evidence_maps import evidence_settings, write_evidence

    spec, _ = evidence_settings(load_params(REPO_ROOT / "params.yaml"))
    write_evidence(root, out, spec, jobs=1)
    return out
