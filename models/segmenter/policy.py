"""Input policy: how a figure of any size (64 x 74 up to 3888 x 3888, strips of 64 x 1400) is seen.

Never squash a large figure into one small input. Two views, each at most ``size``² pixels of work:

* **Global view**: the whole image scaled so its *area* is at most ``size``² (keeping aspect; never
  upscaled) and padded to multiples of 32. It sees every region at once, so copies far apart in a
  figure can be compared. An image of at most ``size``² pixels is seen whole at native resolution
  and nothing else is needed (tiny images are padded, never enlarged).
* **Tiles**: when the image does not fit, overlapping ``size`` x ``size`` tiles (thinner along a
  side shorter than ``size``, so a 64 px strip is not padded to 256) cover it at native scale, or
  downscaled only as much as needed to keep the area under ``max_pixels`` (bounded time and memory
  on 3888 x 3888 figures). Tile maps are blended with a linear ramp over the overlap (no seams).

The final map is ``(1 - global_weight) x tiles + global_weight x global`` at the native size.
Padding uses ``pad_value`` (white, the background of figures) — never reflection, which would
itself create a mirrored duplicate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from models.segmenter.spec import InputPolicy
from shared.images import resize

STRIDE = 32  # every smp encoder used here downsamples 5 times

BatchForward = Callable[[np.ndarray], np.ndarray]
"""uint8 ``(B, H, W, C)`` inputs of one shape (RGB, then any evidence channels) → float32 ``(B, H, W)``."""


def ceil_to(value: int, multiple: int = STRIDE) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def global_scale(height: int, width: int, policy: InputPolicy) -> float:
    """Scale of the global view: area at most ``size``², never above 1."""
    return min(1.0, policy.size / math.sqrt(height * width))


def work_scale(height: int, width: int, policy: InputPolicy) -> float:
    """Scale of the tiled view: area at most ``max_pixels``, never above 1."""
    return min(1.0, math.sqrt(policy.max_pixels / (height * width)))


def scaled_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


def fill_value(image: np.ndarray, pad_value: int | float) -> int | float | np.ndarray:
    """Padding per channel: ``pad_value`` for the RGB channels, 0 (no evidence) for any channel after them."""
    if image.ndim < 3 or image.shape[2] <= 3:
        return pad_value
    return np.array([pad_value] * 3 + [0] * (image.shape[2] - 3), dtype=image.dtype)


def pad_to(image: np.ndarray, height: int, width: int, value: int | float, y: int = 0, x: int = 0) -> np.ndarray:
    """Place ``image`` at ``(y, x)`` on a ``height x width`` canvas filled with ``value``."""
    canvas = np.full((height, width, *image.shape[2:]), value, dtype=image.dtype)
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    return canvas


def fits_one_input(height: int, width: int, policy: InputPolicy) -> bool:
    """True when tiles would add no detail: the image has at most ``size``² pixels (the global view is
    native), or ``max_pixels`` is no larger than ``size``² (tiles would be as coarse as the global view)."""
    return height * width <= policy.size**2 or policy.max_pixels <= policy.size**2


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` shared."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1.0 - overlap)))
    count = -(-(length - tile) // stride) + 1
    return sorted({round(i * (length - tile) / (count - 1)) for i in range(count)})


def tile_shape(height: int, width: int, policy: InputPolicy) -> tuple[int, int]:
    """Tile size for an image of this (work-scale) size: ``size``, or less along a short side."""
    return min(policy.size, ceil_to(height)), min(policy.size, ceil_to(width))


def ramp(length: int, overlap_px: int) -> np.ndarray:
    """1-D blending weights rising linearly over ``overlap_px`` at both ends (never zero)."""
    index = np.arange(length, dtype=np.float32)
    edge = np.minimum(index + 1.0, length - index)
    return np.clip(edge / max(1, overlap_px), 1e-3, 1.0)


def predict_global(image: np.ndarray, policy: InputPolicy, forward: BatchForward) -> np.ndarray:
    """Global-view probabilities at the image's native size."""
    height, width = image.shape[:2]
    gh, gw = scaled_shape(height, width, global_scale(height, width, policy))
    view = pad_to(resize(image, (gh, gw)), ceil_to(gh), ceil_to(gw), fill_value(image, policy.pad_value))
    prob = forward(view[None])[0, :gh, :gw]
    return resize(prob.astype(np.float32), (height, width))


def predict_tiles(image: np.ndarray, policy: InputPolicy, forward: BatchForward, batch_size: int = 8) -> np.ndarray:
    """Tiled probabilities at the image's native size (blended over overlaps)."""
    height, width = image.shape[:2]
    wh, ww = scaled_shape(height, width, work_scale(height, width, policy))
    work = resize(image, (wh, ww))
    th, tw = tile_shape(wh, ww, policy)
    ph, pw = max(wh, th), max(ww, tw)
    work = pad_to(work, ph, pw, fill_value(image, policy.pad_value))
    origins = [(y, x) for y in tile_origins(ph, th, policy.overlap) for x in tile_origins(pw, tw, policy.overlap)]
    weight = np.outer(ramp(th, int(th * policy.overlap)), ramp(tw, int(tw * policy.overlap)))
    total = np.zeros((ph, pw), np.float32)
    norm = np.zeros((ph, pw), np.float32)
    for start in range(0, len(origins), batch_size):
        chunk = origins[start : start + batch_size]
        probs = forward(np.stack([work[y : y + th, x : x + tw] for y, x in chunk]))
        for (y, x), prob in zip(chunk, probs, strict=True):
            total[y : y + th, x : x + tw] += prob * weight
            norm[y : y + th, x : x + tw] += weight
    return resize(total[:wh, :ww] / norm[:wh, :ww], (height, width))


def predict_image(
    image: np.ndarray, policy: InputPolicy, forward: BatchForward, batch_size: int = 8, global_only: bool = False
) -> np.ndarray:
    """Probability map of one RGB uint8 image at its native size, by the policy above.

    ``global_only`` skips the tiles (one forward pass: the quick per-epoch validation of training).
    """
    height, width = image.shape[:2]
    glob = predict_global(image, policy, forward)
    if global_only or fits_one_input(height, width, policy):
        return glob
    tiles = predict_tiles(image, policy, forward, batch_size)
    return ((1.0 - policy.global_weight) * tiles + policy.global_weight * glob).astype(np.float32)
