"""Probability maps of arbitrary images, with a picture per image (``recodai segment``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from models.segmenter.infer import load_predictor
from shared.dataset import IMAGE_SUFFIXES, list_images
from shared.images import ImageReadError, load_image
from shared.maps import MapWriter
from shared.overlay import INSTANCE_COLOURS, blend, draw_outlines, save_png

log = logging.getLogger(__name__)


def image_files(inputs: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """``(uid, path)`` for image files and the images directly inside folders (uid: stem)."""
    found: list[tuple[str, Path]] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += [(p.stem, p) for p in list_images(item)]
        elif item.is_file() and item.suffix.lower() in IMAGE_SUFFIXES:
            found.append((item.stem, item))
        else:
            raise FileNotFoundError(f"{item}: not an image file or a folder")
    uids = [uid for uid, _ in found]
    duplicated = sorted({u for u in uids if uids.count(u) > 1})
    if duplicated:
        raise ValueError(f"several images share the name(s) {duplicated[:5]}")
    return found


def heat_picture(image: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Left: the image with the region above ``threshold`` outlined; right: the probability heat map."""
    outlined = draw_outlines(image, [prob >= threshold], thickness=max(1, round(max(image.shape[:2]) / 400)))
    heat = cv2.applyColorMap(np.round(prob * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[:, :, ::-1]
    mixed = np.round(0.5 * image.astype(np.float32) + 0.5 * heat).astype(np.uint8)
    gutter = np.full((image.shape[0], max(4, image.shape[1] // 50), 3), 255, np.uint8)
    return np.concatenate([blend(outlined, prob >= threshold, INSTANCE_COLOURS[0], 0.2), gutter, mixed], axis=1)


def segment_images(
    inputs: Sequence[str | Path], checkpoints: Sequence[Path], out: Path, tta: bool | str = True, device: str = "cpu"
) -> Path:
    """Write ``out/maps.npz`` (+ index, keyed by file stem) and ``out/<stem>.png`` for every image."""
    files = image_files(inputs)
    predictor = load_predictor(checkpoints, device=device, tta=tta)
    out.mkdir(parents=True, exist_ok=True)
    with MapWriter(out / "maps.npz") as writer:
        for uid, path in tqdm(files, desc="segment", disable=None):
            try:
                image = load_image(path)
            except ImageReadError as exc:
                log.warning("skipped: %s", exc)
                continue
            prob = predictor.predict(image)
            writer.add(uid, prob)
            save_png(out / f"{uid}.png", heat_picture(image, prob))
    return out / "maps.npz"
