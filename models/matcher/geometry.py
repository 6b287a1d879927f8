"""2-D affine transforms (2 x 3, source -> copy) and the candidate copy-move pairs built on them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MIRROR_X = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def to3(a: np.ndarray) -> np.ndarray:
    return np.vstack([a, [0.0, 0.0, 1.0]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """``outer ∘ inner`` (apply ``inner`` first)."""
    return (to3(outer) @ to3(inner))[:2]


def invert(a: np.ndarray) -> np.ndarray:
    return np.linalg.inv(to3(a))[:2]


def apply(a: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ a[:, :2].T + a[:, 2]


def scale_of(a: np.ndarray) -> float:
    return math.sqrt(abs(float(np.linalg.det(a[:, :2]))))


def is_mirrored(a: np.ndarray) -> bool:
    return float(np.linalg.det(a[:, :2])) < 0


def rotation_deg(a: np.ndarray) -> float:
    """Rotation of the linear part after removing a mirror about the x axis, in (-180, 180]."""
    linear = a[:, :2] @ np.diag([-1.0, 1.0]) if is_mirrored(a) else a[:, :2]
    return math.degrees(math.atan2(linear[1, 0], linear[0, 0]))


def describe(a: np.ndarray) -> str:
    """Short human description: ``translation``, ``flip``, ``rotation 90°``, ``scale 1.20`` ..."""
    parts = []
    if is_mirrored(a):
        parts.append("flip")
    angle = rotation_deg(a)
    if abs(angle) > 2 and not (is_mirrored(a) and abs(abs(angle) - 180) <= 2):
        parts.append(f"rotation {angle:.0f}°")
    scale = scale_of(a)
    if abs(scale - 1) > 0.03:
        parts.append(f"scale {scale:.2f}")
    return ", ".join(parts) or "translation"


def same_pair(a: np.ndarray, b: np.ndarray, tol_px: float, extent: float) -> bool:
    """Whether two transforms describe the same pair (equal, or one the inverse of the other).

    Compared by how far they move points at the corners of an ``extent``-sized box.
    """
    probe = np.array([[0, 0], [extent, 0], [0, extent], [extent, extent]], float)
    return any(np.abs(apply(a, probe) - apply(other, probe)).max() <= tol_px for other in (b, invert(b)))


@dataclass
class Candidate:
    """A hypothesised copy-move pair: ``affine`` maps the source region onto its copy (working px)."""

    affine: np.ndarray  # (2, 3)
    src_pts: np.ndarray  # (n, 2) supporting points on the source side
    dst_pts: np.ndarray  # (n, 2) their images on the copy side
    origin: str  # "keypoints" | "dense" | "panels" | "exact"
    support: int  # inlier pairs or matched patches
    src_panel: int
    dst_panel: int
    extra: dict = field(default_factory=dict)
