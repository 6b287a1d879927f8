"""Controlled figures for matcher tests: textures, blots, compound layouts, and exact copy-move forgeries.

Everything is deterministic (seeded) and built from numpy/OpenCV plus the images shipped inside
scikit-image's wheel, so the tests need no data set.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from skimage import data

SOURCES = ("immunohistochemistry", "retina", "cell", "gravel", "astronaut")


@lru_cache(maxsize=16)
def _source(name: str) -> np.ndarray:
    image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def texture(name: str, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """An RGB crop of a scikit-image sample (resized to fit when it is too small)."""
    rng = np.random.default_rng(seed)
    image = _source(name)
    h, w = shape
    scale = max(h / image.shape[0], w / image.shape[1], 1.0)
    if scale > 1:
        image = cv2.resize(image, (int(np.ceil(image.shape[1] * scale)), int(np.ceil(image.shape[0] * scale))))
    y = int(rng.integers(0, image.shape[0] - h + 1))
    x = int(rng.integers(0, image.shape[1] - w + 1))
    return image[y : y + h, x : x + w].copy()


def noise_texture(shape: tuple[int, int], seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smoothed random texture, grey RGB (unique everywhere: no accidental repeats)."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigma)
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    gray = np.round(40 + 180 * field).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def blot(shape: tuple[int, int], lanes: int, seed: int = 0, same_bands: bool = False, grain: float = 3.0) -> np.ndarray:
    """A western-blot strip: light background, one dark band per lane, film grain (std ``grain``).

    ``same_bands=True`` draws every band with the same shape and strength (a hard negative: genuinely
    near-identical bands that differ only by grain and position jitter).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    canvas = np.full((h, w), 215.0, np.float32) + np.linspace(-8, 8, w)[None, :]
    pitch = w / lanes
    base = (rng.uniform(0.35, 0.45) * pitch, rng.uniform(0.12, 0.2) * h, rng.uniform(90, 150))
    for k in range(lanes):
        half_w, half_h, depth = (
            base
            if same_bands
            else (
                rng.uniform(0.3, 0.45) * pitch,
                rng.uniform(0.1, 0.25) * h,
                rng.uniform(60, 170),
            )
        )
        cx = (k + 0.5) * pitch + rng.uniform(-0.05, 0.05) * pitch
        cy = h / 2 + rng.uniform(-0.1, 0.1) * h
        yy, xx = np.mgrid[0:h, 0:w]
        band = np.exp(-(((xx - cx) / half_w) ** 6) - ((yy - cy) / half_h) ** 2)
        canvas -= depth * band
    canvas = cv2.GaussianBlur(canvas, (0, 0), 1.2)
    canvas += rng.normal(0, grain, canvas.shape)
    gray = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def stripes(shape: tuple[int, int], period: int = 12) -> np.ndarray:
    """A perfectly regular pattern (grid of dots), the kind that must never be called a copy."""
    h, w = shape
    image = np.full((h, w, 3), 235, np.uint8)
    for y in range(period // 2, h, period):
        for x in range(period // 2, w, period):
            cv2.circle(image, (x, y), period // 4, (60, 60, 140), -1, cv2.LINE_AA)
    return image


def chart(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A bar chart with axes, ticks, repeated digits and hatched bars (graphic panel)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    image = np.full((h, w, 3), 255, np.uint8)
    x0, y0 = 40, h - 30
    cv2.line(image, (x0, 10), (x0, y0), (0, 0, 0), 2)
    cv2.line(image, (x0, y0), (w - 10, y0), (0, 0, 0), 2)
    for k in range(6):
        y = y0 - k * (y0 - 20) // 5
        cv2.line(image, (x0 - 5, y), (x0, y), (0, 0, 0), 1)
        cv2.putText(image, f"{k * 20}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    bars = 4
    for k in range(bars):
        bx = x0 + 15 + k * (w - x0 - 30) // bars
        top = int(y0 - rng.uniform(0.3, 0.9) * (y0 - 20))
        cv2.rectangle(image, (bx, top), (bx + 25, y0), (0, 0, 0), 2)
        for d in range(-40, 40, 6):
            cv2.line(image, (bx + d, y0), (bx + d + 40, y0 - 40), (0, 0, 0), 1)
        image[top:y0, bx + 27 : bx + 40] = 255
    return image


def label(image: np.ndarray, text: str, xy: tuple[int, int], scale: float = 0.8, colour=(0, 0, 0)) -> None:
    cv2.putText(image, text, xy, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)


def scale_bar(image: np.ndarray, length: int = 40, colour=(255, 255, 255)) -> None:
    """A scale bar with its label in the bottom-right corner (identical in every panel)."""
    h, w = image.shape[:2]
    cv2.rectangle(image, (w - length - 10, h - 14), (w - 10, h - 9), colour, -1)
    cv2.putText(image, "50 um", (w - length - 14, h - 18), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)


def grid_figure(panels: list[np.ndarray], columns: int, gutter: int = 12, margin: int = 30) -> tuple[np.ndarray, list]:
    """Panels on a white page in a grid, each with a panel letter; returns the figure and panel origins."""
    rows = -(-len(panels) // columns)
    cell_h = max(p.shape[0] for p in panels)
    cell_w = max(p.shape[1] for p in panels)
    height = margin + rows * (cell_h + gutter + 20)
    width = margin + columns * (cell_w + gutter)
    figure = np.full((height, width, 3), 255, np.uint8)
    origins = []
    for k, panel in enumerate(panels):
        r, c = divmod(k, columns)
        y = margin + r * (cell_h + gutter + 20) + 20
        x = margin + c * (cell_w + gutter)
        figure[y : y + panel.shape[0], x : x + panel.shape[1]] = panel
        label(figure, chr(ord("A") + k), (x, y - 5), 0.6)
        origins.append((y, x))
    return figure, origins


def transform_patch(patch: np.ndarray, kind: str) -> np.ndarray:
    """Apply an exact transform to a patch: ``flip_h``, ``flip_v``, ``rot90``, ``rot180`` or ``none``."""
    if kind == "flip_h":
        return patch[:, ::-1].copy()
    if kind == "flip_v":
        return patch[::-1].copy()
    if kind == "rot90":
        return np.ascontiguousarray(np.rot90(patch))
    if kind == "rot180":
        return patch[::-1, ::-1].copy()
    return patch.copy()


def copy_region(
    image: np.ndarray, src: tuple[int, int], size: tuple[int, int], dst: tuple[int, int], kind: str = "none"
) -> tuple[np.ndarray, np.ndarray]:
    """Paste a (transformed) rectangle ``src`` -> ``dst`` (top-left ``(y, x)``); returns image and the
    operation's mask (source ∪ copy)."""
    h, w = size
    patch = transform_patch(image[src[0] : src[0] + h, src[1] : src[1] + w], kind)
    out = image.copy()
    out[dst[0] : dst[0] + patch.shape[0], dst[1] : dst[1] + patch.shape[1]] = patch
    mask = np.zeros(image.shape[:2], bool)
    mask[src[0] : src[0] + h, src[1] : src[1] + w] = True
    mask[dst[0] : dst[0] + patch.shape[0], dst[1] : dst[1] + patch.shape[1]] = True
    return out, mask


def warp_copy(
    image: np.ndarray, center: tuple[float, float], radius: int, to: tuple[float, float], angle: float, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Copy a disc (``center`` (x, y), ``radius``) rotated by ``angle`` degrees and scaled to ``to``;
    returns image and the operation mask (source disc ∪ copied disc)."""
    h, w = image.shape[:2]
    affine = cv2.getRotationMatrix2D(center, angle, scale)
    affine[:, 2] += np.array(to) - np.array(center)
    warped = cv2.warpAffine(image, affine, (w, h), flags=cv2.INTER_LINEAR)
    src_mask = np.zeros((h, w), np.uint8)
    cv2.circle(src_mask, (round(center[0]), round(center[1])), radius, 1, -1)
    dst_mask = cv2.warpAffine(src_mask, affine, (w, h), flags=cv2.INTER_NEAREST).astype(bool)
    out = image.copy()
    out[dst_mask] = warped[dst_mask]
    return out, src_mask.astype(bool) | dst_mask


def assert_one_copy_after_jpeg(
    params, original: np.ndarray, forged: np.ndarray, truth: np.ndarray, quality: int
) -> None:
    """After JPEG at ``quality``: the forged figure gives one operation covering ``truth`` (oF1 >= 0.8) and the
    original gives none."""
    from models.matcher import match_image
    from shared.metric import of1_masks
    from shared.synth.case import jpeg_roundtrip

    result = match_image(jpeg_roundtrip(forged, quality, gray=False), params)
    assert len(result.operations) == 1, [v.reason for v in result.candidates]
    assert of1_masks(result.operations, [truth]) >= 0.8
    assert not match_image(jpeg_roundtrip(original, quality, gray=False), params).operations
