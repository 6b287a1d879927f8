"""Noise fields and the biomedical photographs scikit-image ships inside its wheel (no download)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# Biomedical samples inside scikit-image's wheel (skimage/data), by file name; fractions crop borders away.
SKIMAGE_SOURCES = {
    "cell": ("cell.png", 0.0),  # phase-contrast cells, gray
    "ihc": ("ihc.png", 0.0),  # immunohistochemistry section, RGB
    "retina": ("retina.jpg", 0.22),  # fundus photograph, RGB; keep the inside of the disc
}


@lru_cache(maxsize=len(SKIMAGE_SOURCES))
def skimage_source(name: str) -> np.ndarray:
    """A scikit-image sample as ``(H, W, 3)`` uint8 RGB (read-only, cached per process; no skimage import)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise RuntimeError("scikit-image is not installed: the synthetic generator reads its sample images")
    filename, border = SKIMAGE_SOURCES[name]
    path = Path(spec.origin).parent / "data" / filename
    try:
        with Image.open(path) as handle:
            image = np.asarray(handle.convert("RGB"))
    except OSError as exc:
        raise RuntimeError(f"{path}: scikit-image sample unreadable ({exc})") from exc
    h, w = image.shape[:2]
    by, bx = int(h * border), int(w * border)
    image = np.ascontiguousarray(image[by : h - by, bx : w - bx])
    image.setflags(write=False)
    return image


def smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Value noise in [0, 1] with features about ``cell`` pixels wide (float32, ``(h, w)``)."""
    total = np.zeros((h, w), np.float32)
    amplitude, norm = 1.0, 0.0
    for _ in range(max(1, octaves)):
        gh, gw = max(2, int(np.ceil(h / cell)) + 2), max(2, int(np.ceil(w / cell)) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        total += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= 0.5
        cell = max(1.0, cell / 2)
    total /= norm
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def fibres(rng: np.random.Generator, h: int, w: int, scale: float, angle: float) -> np.ndarray:
    """Anisotropic streaky texture in [0, 1] (collagen, muscle, smears), streaks along ``angle`` degrees."""
    side = int(np.ceil(np.hypot(h, w))) + 2
    small = max(4, int(side / max(scale, 1.0)))
    grid = rng.random((small, max(2, small // 8)), dtype=np.float32)
    tex = cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    rot = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    tex = cv2.warpAffine(tex, rot, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    y0, x0 = (side - h) // 2, (side - w) // 2
    tex = tex[y0 : y0 + h, x0 : x0 + w]
    lo, hi = float(tex.min()), float(tex.max())
    return (tex - lo) / max(hi - lo, 1e-6)


def grain(rng: np.random.Generator, h: int, w: int, sigma: float, channels: int = 1) -> np.ndarray:
    """Zero-mean grain with standard deviation ``sigma`` (float32); ``channels=1`` gives ``(h, w)``.

    Uniform, not Gaussian: it looks the same at pixel scale and costs a third of the time.
    """
    shape = (h, w) if channels == 1 else (h, w, channels)
    noise = rng.random(shape, dtype=np.float32)
    noise -= np.float32(0.5)
    noise *= np.float32(sigma * np.sqrt(12.0))
    return noise


def source_crop(rng: np.random.Generator, name: str, h: int, w: int) -> np.ndarray:
    """A random crop of a scikit-image sample resized to ``(h, w)``, randomly flipped/rotated (RGB uint8)."""
    src = skimage_source(name)
    sh, sw = src.shape[:2]
    if rng.random() < 0.5:
        h_eff, w_eff = w, h  # crop transposed, rotate back below
    else:
        h_eff, w_eff = h, w
    zoom = float(rng.uniform(0.6, 1.6))
    ch = int(min(sh, max(16, h_eff / zoom)))
    cw = int(min(sw, max(16, w_eff / zoom)))
    ratio = h_eff / w_eff
    if ch / cw > ratio:
        ch = max(8, int(cw * ratio))
    else:
        cw = max(8, int(ch / ratio))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = src[y : y + ch, x : x + cw]
    if h_eff != h:
        crop = np.rot90(crop)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if crop.shape[0] > h else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Round and clip float values to uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
