"""Image-level features for the meta-classifier, computed the same way on OOF maps and at prediction.

Per component map: maxima and high quantiles, area above thresholds, region counts and sizes; across
components: agreement of their binarised maps; per image: size, aspect, colour, whiteness, edges.
The matcher's own image-level features (``matcher_*``) are passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import cv2
import numpy as np

AREA_LEVELS = (0.3, 0.5, 0.7)


def map_features(name: str, prob: np.ndarray) -> dict[str, float]:
    """Statistics of one work-size probability map."""
    flat = prob.reshape(-1)
    q95, q99, q999 = np.quantile(flat, [0.95, 0.99, 0.999])
    out = {
        f"{name}_max": float(flat.max()),
        f"{name}_mean": float(flat.mean()),
        f"{name}_q95": float(q95),
        f"{name}_q99": float(q99),
        f"{name}_q999": float(q999),
    }
    for level in AREA_LEVELS:
        out[f"{name}_area{int(level * 100)}"] = float((flat >= level).mean())
    count, _, stats, _ = cv2.connectedComponentsWithStats((prob >= 0.5).astype(np.uint8), connectivity=8)
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1] / prob.size if count > 1 else np.zeros(0)
    out[f"{name}_regions"] = float(len(areas))
    out[f"{name}_largest"] = float(areas[0]) if len(areas) else 0.0
    out[f"{name}_second"] = float(areas[1]) if len(areas) > 1 else 0.0
    out[f"{name}_pair_ratio"] = float(areas[1] / areas[0]) if len(areas) > 1 else 0.0
    return out


def agreement_features(maps: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean and minimum pairwise IoU of the components' maps binarised at 0.5."""
    names = sorted(maps)
    ious = []
    for a, b in combinations(names, 2):
        first, second = maps[a] >= 0.5, maps[b] >= 0.5
        union = np.logical_or(first, second).sum()
        ious.append(float(np.logical_and(first, second).sum() / union) if union else 0.0)
    mean_map = np.mean([maps[n] for n in names], axis=0) if names else np.zeros((1, 1))
    return {
        "agree_iou_mean": float(np.mean(ious)) if ious else 0.0,
        "agree_iou_min": float(np.min(ious)) if ious else 0.0,
        "agree_mean_max": float(mean_map.max()),
    }


def image_features(image: np.ndarray, native_shape: tuple[int, int]) -> dict[str, float]:
    """Size, aspect, colourfulness, whiteness and edge density of the (work-size) RGB image."""
    height, width = native_shape
    pixels = image.reshape(-1, 3).astype(np.int16)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, 50, 150)
    return {
        "img_log_pixels": float(np.log10(height * width)),
        "img_aspect": float(max(height, width) / max(1, min(height, width))),
        "img_colour": float(np.abs(pixels[:, 0] - pixels[:, 1]).mean() + np.abs(pixels[:, 1] - pixels[:, 2]).mean()),
        "img_white": float((pixels.min(axis=1) >= 240).mean()),
        "img_dark": float((pixels.max(axis=1) <= 15).mean()),
        "img_edges": float((edges > 0).mean()),
        "img_gray_std": float(gray.std()),
    }


def all_features(
    image: np.ndarray,
    native_shape: tuple[int, int],
    maps: Mapping[str, np.ndarray],
    passthrough: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Every feature of one image: image stats, per-map stats, agreement, passthrough (matcher_*)."""
    out = image_features(image, native_shape)
    for name in sorted(maps):
        out.update(map_features(name, maps[name]))
    out.update(agreement_features(maps))
    if passthrough:
        out.update({k: float(v) for k, v in passthrough.items()})
    return out
