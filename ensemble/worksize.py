"""The working resolution of the ensemble: maps, masks and images shrunk so the long side is at most N.

Features, instance grouping and fusion tuning all run at this size (the same in OOF tuning and in
prediction); final instance masks are brought back to native size by :func:`grow_mask`.
"""

from __future__ import annotations

import cv2
import numpy as np


def work_shape(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(h, w)`` with the long side at most ``max_side``, aspect kept, never upscaled, never 0."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def shrink_map(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average a float map to ``shape`` (float32)."""
    if prob.shape == shape:
        return prob.astype(np.float32, copy=False)
    return cv2.resize(prob.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def shrink_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A binary mask at ``shape``: pixels at least half covered stay set (tiny masks keep one pixel)."""
    if mask.shape == shape:
        return mask.astype(bool)
    area = shrink_map(mask.astype(np.float32), shape)
    out = area >= 0.5
    if mask.any() and not out.any():
        out[np.unravel_index(int(np.argmax(area)), shape)] = True
    return out


def shrink_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average an RGB image to ``shape``."""
    if image.shape[:2] == shape:
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def grow_map(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a float map back to native ``shape``."""
    if prob.shape == shape:
        return prob
    return cv2.resize(prob.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def grow_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A work-size binary mask at native ``shape`` with smooth (bilinear, 0.5) boundaries."""
    if mask.shape == shape:
        return mask.astype(bool)
    return grow_map(mask.astype(np.float32), shape) >= 0.5
