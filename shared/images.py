"""Image and mask I/O that turns every PNG flavour into ``uint8`` RGB and names the file on failure.

RGB, RGBA and LA (composited on white), grayscale, 1-bit, palette (with or without transparency),
16-bit and 32-bit integer grayscale are all accepted. Truncated or unreadable files raise
:class:`ImageReadError` with the path and the reason.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

# Kaggle figures reach 3888 x 3888; raise Pillow's bomb guard well above that, keep it for absurd files.
Image.MAX_IMAGE_PIXELS = 400_000_000


class ImageReadError(OSError):
    """An image or mask file that cannot be used; the message starts with its path."""


def read_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` from the file header, without decoding pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{path}: unreadable image ({exc})") from exc
    return height, width


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image file to a ``(H, W, 3)`` uint8 RGB array (alpha composited on white)."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except ImageReadError:
        raise
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = "truncated or corrupt file" if "truncated" in str(exc) or "broken" in str(exc) else "unreadable image"
        raise ImageReadError(f"{path}: {reason} ({exc})") from exc


def to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any Pillow image mode to ``(H, W, 3)`` uint8 RGB."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        gray = _high_bit_depth_to_uint8(np.asarray(image), mode)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64))
        span = float(values.max() - values.min()) or 1.0
        gray = np.round((values - values.min()) / span * 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or image.mode == "RGBA":
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _high_bit_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit (and 32-bit integer) grayscale to 8 bits by scaling the full 16-bit range."""
    values = values.astype(np.int64)
    if mode == "I" and values.max(initial=0) > 65535:
        values = values * 65535 // max(int(values.max()), 1)
    values = np.clip(values, 0, 65535)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def load_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load a ``(N, H, W)`` uint8 0/1 ground-truth mask and check it.

    A 2-D array is read as a single operation. Raises :class:`ImageReadError` naming the file for an
    unreadable file, a wrong number of dimensions, values other than 0/1, an empty channel, or an
    ``(H, W)`` that differs from ``shape``.
    """
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: unreadable mask ({exc})") from exc
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3 or mask.shape[0] == 0:
        raise ImageReadError(f"{path}: mask must have shape (N, H, W) with N >= 1, got {mask.shape}")
    if shape is not None and tuple(mask.shape[1:]) != tuple(shape):
        raise ImageReadError(f"{path}: mask shape {mask.shape[1:]} does not match image shape {tuple(shape)}")
    if mask.dtype != np.bool_:
        values = np.unique(mask)
        if not np.isin(values, (0, 1)).all():
            shown = ", ".join(map(str, values[:6]))
            raise ImageReadError(f"{path}: mask is not binary (values: {shown}{', …' if len(values) > 6 else ''})")
    mask = mask.astype(np.uint8, copy=False)
    empty = [i for i in range(mask.shape[0]) if not mask[i].any()]
    if empty:
        raise ImageReadError(f"{path}: empty mask channel(s) {empty} of {mask.shape[0]}")
    return mask


def read_mask_shape(path: str | Path) -> tuple[int, ...]:
    """Array shape from the ``.npy`` header, without reading the data."""
    try:
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    except (OSError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path}: unreadable mask ({exc})") from exc


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to ``(height, width)``: area averaging when shrinking, bilinear when enlarging; any channel count."""
    if image.shape[:2] == tuple(shape):
        return image
    shrink = shape[0] * shape[1] < image.shape[0] * image.shape[1]
    method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    if image.ndim == 3 and image.shape[2] > 4:  # OpenCV resizes at most 4 channels at a time
        parts = [image[:, :, i : i + 3] for i in range(0, image.shape[2], 3)]
        resized = [cv2.resize(p, (shape[1], shape[0]), interpolation=method) for p in parts]
        return np.concatenate([r.reshape(*shape, -1) for r in resized], axis=2)
    return cv2.resize(image, (shape[1], shape[0]), interpolation=method)
