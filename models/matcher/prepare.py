"""Bring any input image to the matcher's working form: uint8 RGB at a bounded resolution plus grey."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from models.matcher.config import ImageParams
from shared.images import to_rgb


@dataclass(frozen=True)
class WorkingImage:
    """The figure at working resolution; ``scale`` = working size / native size (<= 1)."""

    rgb: np.ndarray  # (h, w, 3) uint8
    gray: np.ndarray  # (h, w) float32, 0-255
    scale: float
    native_shape: tuple[int, int]
    native_rgb: np.ndarray | None = None  # the figure itself, kept when it was downscaled (native checks)

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape[:2]

    @property
    def area(self) -> int:
        return self.gray.shape[0] * self.gray.shape[1]

    @property
    def diagonal(self) -> float:
        return math.hypot(*self.gray.shape[:2])


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from grey ``(H, W)``, ``(H, W, 1)``, RGB or RGBA (alpha composited on white)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        return to_rgb(Image.fromarray(array, mode="RGBA"))
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {array.shape}")


def working_scale(shape: tuple[int, int], params: ImageParams) -> float:
    """Downscale factor that keeps the figure within ``max_pixels`` (1 when it already fits)."""
    pixels = shape[0] * shape[1]
    return 1.0 if pixels <= params.max_pixels else math.sqrt(params.max_pixels / pixels)


def prepare(rgb: np.ndarray, params: ImageParams) -> WorkingImage:
    """Working copy of an RGB figure (area-averaged when it is larger than ``max_pixels``)."""
    height, width = rgb.shape[:2]
    scale = working_scale((height, width), params)
    native = None
    if scale < 1.0:
        native = rgb
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return WorkingImage(rgb=rgb, gray=gray, scale=scale, native_shape=(height, width), native_rgb=native)
