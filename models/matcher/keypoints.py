"""Keypoint branch, part 1: RootSIFT keypoints, their mirrored descriptors, and copy-move matching.

A mirrored patch has the SIFT descriptor of the original with its spatial rows reversed and its
orientation bins negated (the dominant orientation reflects with the patch), so flipped copies are
found by matching every descriptor against the pool of originals *and* mirrored ones, without a
second SIFT pass. Matching is all-against-all inside the figure with a generalised 2NN test: the
neighbours before the first clear distance gap are matches (up to ``max_copies``); a keypoint whose
neighbours never show a gap sits in a repeated pattern and matches nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from models.matcher.config import KeypointParams

# OpenCV SIFT descriptor layout: 4 x 4 spatial cells (row-major in the keypoint frame) x 8 orientation bins
_CELLS, _BINS = 4, 8
# Descriptor distances (RootSIFT and the dense features both have unit-scale norms) below this are noise.
DISTANCE_FLOOR = 0.02
MIN_PANEL_KEYPOINTS = 64  # budget floor for a small panel
# SIFT's scale space of a panel (upsampled twice, six blurred layers per octave) takes ~150 bytes per pixel:
# larger panels are detected tile by tile (keypoints kept where their tile's core holds them; the margin
# gives the descriptors their context), which bounds the memory of 16 MP figures
SIFT_TILE_PX = 1_000_000
SIFT_TILE_MARGIN = 48
SEARCH_DIMS = 48  # PCA dimensions of the approximate neighbour search (then re-ranked exactly)


@dataclass(frozen=True)
class Keypoints:
    xy: np.ndarray  # (n, 2) float32, working px
    size: np.ndarray  # (n,) float32
    desc: np.ndarray  # (n, 128) float32 RootSIFT (unit L2 norm)

    def __len__(self) -> int:
        return len(self.xy)


@dataclass(frozen=True)
class Matches:
    """Undirected keypoint pairs ``(i, j)``; ``mirrored`` pairs look like each other's mirror image."""

    i: np.ndarray
    j: np.ndarray
    mirrored: np.ndarray  # bool
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.i)


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT: L1-normalise, square root (Hellinger kernel becomes Euclidean distance)."""
    desc = np.asarray(desc, np.float32)
    desc = desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-7)
    return np.sqrt(desc)


def mirror_descriptors(desc: np.ndarray) -> np.ndarray:
    """Descriptors of the mirrored patches (exact up to SIFT's own binning)."""
    cells = desc.reshape(-1, _CELLS, _CELLS, _BINS)[:, ::-1]
    bins = (-np.arange(_BINS)) % _BINS
    return np.ascontiguousarray(cells[:, :, :, bins].reshape(-1, _CELLS * _CELLS * _BINS))


def detect(gray: np.ndarray, mask: np.ndarray, params: KeypointParams, boxes: list | None = None) -> Keypoints:
    """RootSIFT keypoints inside ``mask``.

    With panel ``boxes`` (``(y0, x0, y1, x1)``) SIFT runs per panel on a contrast-stretched crop with a
    keypoint budget proportional to the panel's area, so faint blots are not starved by busy panels;
    without boxes it runs once on the whole image with the full budget.
    """
    boxes = boxes if boxes else [(0, 0, *gray.shape[:2])]
    areas = np.array([(y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in boxes], np.float64)
    total = min(params.max_keypoints, round(params.keypoints_per_megapixel * areas.sum() / 1e6))
    parts = []
    for (y0, x0, y1, x1), area in zip(boxes, areas, strict=True):
        sub_mask = mask[y0:y1, x0:x1]
        if not sub_mask.any():
            continue
        budget = max(MIN_PANEL_KEYPOINTS, round(total * area / areas.sum()))
        image = _stretch(gray[y0:y1, x0:x1], sub_mask)
        for (cy0, cx0, cy1, cx1), (oy0, ox0, oy1, ox1) in _tiles(y1 - y0, x1 - x0):
            share = (cy1 - cy0) * (cx1 - cx0) / area
            sift = cv2.SIFT_create(nfeatures=max(1, round(budget * share)), contrastThreshold=params.contrast_threshold)
            found, desc = sift.detectAndCompute(
                image[oy0:oy1, ox0:ox1], sub_mask[oy0:oy1, ox0:ox1].astype(np.uint8) * 255
            )
            if desc is None or len(found) == 0:
                continue
            xy = np.array([k.pt for k in found], np.float32) + np.array([ox0, oy0], np.float32)
            core = (xy[:, 0] >= cx0) & (xy[:, 0] < cx1) & (xy[:, 1] >= cy0) & (xy[:, 1] < cy1)
            sizes = np.array([k.size for k in found], np.float32)
            parts.append((xy[core] + np.array([x0, y0], np.float32), sizes[core], root_sift(desc[core])))
    if not parts:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 128), np.float32))
    return Keypoints(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _tiles(h: int, w: int) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """``(core, outer)`` boxes ``(y0, x0, y1, x1)`` covering an ``h x w`` panel: cores of at most
    ``SIFT_TILE_PX`` pixels tile it, each outer box adds ``SIFT_TILE_MARGIN`` px of context."""
    n = math.ceil(h * w / SIFT_TILE_PX)
    if n <= 1:
        return [((0, 0, h, w), (0, 0, h, w))]
    rows = max(1, round(math.sqrt(n * h / w)))
    cols = math.ceil(n / rows)
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    m = SIFT_TILE_MARGIN
    tiles = []
    for r in range(rows):
        for c in range(cols):
            y0, x0, y1, x1 = int(ys[r]), int(xs[c]), int(ys[r + 1]), int(xs[c + 1])
            tiles.append(((y0, x0, y1, x1), (max(0, y0 - m), max(0, x0 - m), min(h, y1 + m), min(w, x1 + m))))
    return tiles


def _stretch(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 crop with the masked pixels' 0.5-99.5 percentile range stretched to 0-255."""
    lo, hi = np.percentile(gray[mask], (0.5, 99.5))
    if hi - lo < 1:
        return np.clip(np.round(gray), 0, 255).astype(np.uint8)
    return np.clip(np.round((gray - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def gap_accept(dist: np.ndarray, ratio: float, max_copies: int) -> np.ndarray:
    """Generalised 2NN on rows of ascending neighbour distances (``inf`` = no neighbour).

    Row ``r`` accepts its neighbours ``0..m`` where ``m`` is the first index with a clear gap
    ``d[m] < ratio * d[m + 1]``; without a gap among the first ``max_copies + 1`` neighbours the row sits
    in a repeated pattern and accepts nothing. Distances get :data:`DISTANCE_FLOOR` added first, so
    float noise between identical descriptors (exact repeats) never looks like a gap.
    Returns ``(rows, max_copies)`` bool.
    """
    c = max_copies
    if dist.shape[1] < c + 1:
        dist = np.hstack([dist, np.full((len(dist), c + 1 - dist.shape[1]), np.inf, dist.dtype)])
    nearest, following = dist[:, :c] + DISTANCE_FLOOR, dist[:, 1 : c + 1] + DISTANCE_FLOOR
    with np.errstate(invalid="ignore"):
        gap = np.isfinite(nearest) & ((nearest < ratio * following) | ~np.isfinite(following))
    first_gap = np.argmax(gap, axis=1)
    return (np.arange(c)[None, :] <= first_gap[:, None]) & gap.any(axis=1)[:, None]


def _nearest(query: np.ndarray, pool: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` nearest pool rows of every query row: ``(indices, distances)``, ascending.

    Large sets are searched in a PCA projection (``SEARCH_DIMS`` dimensions, brute force, OpenCV) for
    twice the neighbours, which are then re-ranked by their exact 128-D distance.
    """
    reduce = len(query) > SEARCH_DIMS * 8
    wide = min(len(pool), 2 * k) if reduce else k
    if reduce:
        mean = pool.mean(axis=0)
        centred = (pool - mean).astype(np.float64)
        # principal axes from the 128 x 128 scatter matrix (an SVD of the pool would also build its U)
        values, vectors = np.linalg.eigh(centred.T @ centred)
        basis = vectors[:, np.argsort(values)[::-1][:SEARCH_DIMS]].astype(np.float32)
        found = cv2.BFMatcher(cv2.NORM_L2).knnMatch((query - mean) @ basis, (pool - mean) @ basis, k=wide)
    else:
        found = cv2.BFMatcher(cv2.NORM_L2).knnMatch(query, pool, k=wide)
    idx = np.full((len(query), wide), -1, np.int64)
    for row, matches in enumerate(found):
        idx[row, : len(matches)] = [m.trainIdx for m in matches]
    safe = np.maximum(idx, 0)
    dist = np.linalg.norm(pool[safe] - query[:, None, :], axis=2).astype(np.float32)
    dist[idx < 0] = np.inf
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)


def match(kps: Keypoints, params: KeypointParams, min_offset_px: float) -> Matches:
    """All copy-move pairs (plain and mirrored) passing the generalised 2NN test."""
    n = len(kps)
    empty = Matches(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.float32))
    if n < 2:
        return empty
    pool = np.vstack([kps.desc, mirror_descriptors(kps.desc)])
    k = min(len(pool), params.max_copies + 6)  # room for the keypoint itself, its mirror and near duplicates
    idx, dist = _nearest(kps.desc, pool, k)
    other = np.where(idx >= 0, idx % n, 0)
    mirrored = idx >= n
    offset = np.linalg.norm(kps.xy[other] - kps.xy[:, None, :], axis=2)
    valid = (idx >= 0) & (other != np.arange(n)[:, None]) & (offset >= min_offset_px)
    # compact valid neighbours to the front of each row, keeping distance order
    order = np.argsort(~valid, axis=1, kind="stable")
    other, mirrored = np.take_along_axis(other, order, 1), np.take_along_axis(mirrored, order, 1)
    dist = np.where(np.take_along_axis(valid, order, 1), np.take_along_axis(dist, order, 1), np.inf)
    accept = gap_accept(dist, params.ratio, params.max_copies) & (dist[:, : params.max_copies] <= params.max_distance)
    rows, cols = np.nonzero(accept)
    i, j = rows, other[rows, cols]
    mirror, d = mirrored[rows, cols], dist[rows, cols]
    # each pair is found from both ends: keep it once
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = (lo * n + hi) * 2 + mirror
    _, first = np.unique(key, return_index=True)
    return Matches(i=lo[first], j=hi[first], mirrored=mirror[first], distance=d[first])
