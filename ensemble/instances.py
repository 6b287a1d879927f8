"""Turn a fused probability map into the instances the metric rewards: one per copy-move operation.

Ground truth holds the source and every copy of one operation in ONE instance, and splitting an
operation costs far more than merging two. So connected regions are grouped: regions covered by the
same matcher operation belong together, and regions whose content matches (normalised
cross-correlation under the eight flips/right-angle rotations) are linked. A region without a partner
cannot be a whole operation on its own unless it holds both copies, so it joins the largest group;
with no links at all everything becomes a single instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.cluster.hierarchy import DisjointSet

DESCRIPTOR_SIDE = 24


@dataclass(frozen=True)
class Region:
    """One connected region of the binarised map."""

    mask: np.ndarray
    area: int
    box: tuple[int, int, int, int]  # y0, x0, y1, x1 (exclusive)


def regions(binary: np.ndarray, min_area: int) -> list[Region]:
    """8-connected regions of at least ``min_area`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    found = []
    for index in range(1, count):
        x, y, w, h, area = stats[index]
        if area >= max(1, min_area):
            found.append(Region(labels == index, int(area), (int(y), int(x), int(y + h), int(x + w))))
    return found


def _descriptor(gray: np.ndarray, region: Region) -> np.ndarray:
    y0, x0, y1, x1 = region.box
    crop = gray[y0:y1, x0:x1]
    patch = cv2.resize(crop, (DESCRIPTOR_SIDE, DESCRIPTOR_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    return patch


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom < 1e-6:
        return 0.0  # flat patches carry no evidence of copying
    return float((a * b).sum() / denom)


def appearance_similarity(gray: np.ndarray, first: Region, second: Region) -> float:
    """Best NCC between two regions' content over the 8 dihedral transforms."""
    a, b = _descriptor(gray, first), _descriptor(gray, second)
    best = -1.0
    for k in range(4):
        rotated = np.rot90(b, k)
        best = max(best, _ncc(a, rotated), _ncc(a, rotated[:, ::-1]))
    return best


def group_regions(
    found: Sequence[Region],
    gray: np.ndarray,
    operations: Sequence[np.ndarray] = (),
    link_ncc: float = 0.8,
    max_area_ratio: float = 2.5,
) -> list[list[int]]:
    """Indices of ``found`` grouped into operations (largest group first)."""
    if not found:
        return []
    links = DisjointSet(range(len(found)))
    for operation in operations:
        members = [i for i, r in enumerate(found) if (r.mask & operation).sum() >= 0.3 * r.area]
        for i in members[1:]:
            links.merge(members[0], i)
    for i in range(len(found)):
        for j in range(i + 1, len(found)):
            if links.connected(i, j):
                continue
            ratio = found[i].area / found[j].area
            if (
                1 / max_area_ratio <= ratio <= max_area_ratio
                and appearance_similarity(gray, found[i], found[j]) >= link_ncc
            ):
                links.merge(i, j)
    groups = [sorted(s) for s in links.subsets()]
    paired = [g for g in groups if len(g) > 1 or _covered_by_operation(found[g[0]], operations)]
    if not paired:
        return [list(range(len(found)))]
    paired.sort(key=lambda g: -sum(found[i].area for i in g))
    lonely = [g[0] for g in groups if g not in paired]
    paired[0] = sorted(paired[0] + lonely)
    return paired


def _covered_by_operation(region: Region, operations: Sequence[np.ndarray]) -> bool:
    """A single region that a matcher operation covers may hold source and copy side by side."""
    return any((region.mask & op).sum() >= 0.3 * region.area for op in operations)


def build_instances(
    fused: np.ndarray,
    image: np.ndarray,
    threshold: float,
    min_area_frac: float,
    operations: Sequence[np.ndarray] = (),
    link_ncc: float = 0.8,
) -> list[np.ndarray]:
    """Instance masks (bool, map-sized) from a fused probability map; empty list = nothing found."""
    height, width = fused.shape
    found = regions(fused >= threshold, int(np.ceil(min_area_frac * height * width)))
    if not found:
        return []
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    instances = []
    for group in group_regions(found, gray, operations, link_ncc):
        mask = np.zeros((height, width), bool)
        for i in group:
            mask |= found[i].mask
        instances.append(mask)
    return instances
