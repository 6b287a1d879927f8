"""Pictures people look at, in one palette everywhere.

True positive blue, false positive yellow, false negative purple, blended at half opacity; instance
outlines take distinct colours; contact sheets tile many such pictures with captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

TP = (30, 110, 255)  # blue
FP = (255, 210, 0)  # yellow
FN = (160, 40, 200)  # purple
INSTANCE_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def blend(image: np.ndarray, mask: np.ndarray, colour: Sequence[int], alpha: float = 0.5) -> np.ndarray:
    """``image`` with ``colour`` blended at ``alpha`` where ``mask`` is set."""
    out = image.astype(np.float32).copy()
    sel = mask.astype(bool)
    out[sel] = (1 - alpha) * out[sel] + alpha * np.asarray(colour, np.float32)
    return np.round(out).astype(np.uint8)


def error_overlay(image: np.ndarray, predicted: np.ndarray, truth: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """TP blue, FP yellow, FN purple over an RGB image (masks are unions of instances)."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    out = blend(image, predicted & truth, TP, alpha)
    out = blend(out, predicted & ~truth, FP, alpha)
    return blend(out, ~predicted & truth, FN, alpha)


def draw_outlines(image: np.ndarray, masks: Sequence[np.ndarray], thickness: int = 2) -> np.ndarray:
    """Outline each instance mask in its own colour."""
    out = np.ascontiguousarray(image.copy())
    for i, mask in enumerate(masks):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, INSTANCE_COLOURS[i % len(INSTANCE_COLOURS)], thickness)
    return out


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the longer side is ``size`` and pad to a ``size x size`` white square."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    canvas[y : y + resized.shape[0], x : x + resized.shape[1]] = resized
    return canvas


def contact_sheet(
    tiles: Sequence[np.ndarray], captions: Sequence[str], columns: int = 6, cell: int = 256
) -> np.ndarray:
    """Tile RGB images into one sheet with a caption strip under each."""
    caption_h = 18
    rows = max(1, -(-len(tiles) // columns))
    sheet = np.full((rows * (cell + caption_h), columns * cell, 3), 255, np.uint8)
    for i, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        r, c = divmod(i, columns)
        y, x = r * (cell + caption_h), c * cell
        sheet[y + 2 : y + cell - 2, x + 2 : x + cell - 2] = fit(tile, cell - 4)
        cv2.putText(
            sheet, caption[:40], (x + 3, y + cell + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA
        )
    return sheet


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write an RGB array as PNG (creating parent folders)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write PNG")
