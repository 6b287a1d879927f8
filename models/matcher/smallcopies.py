"""Small exact copies: an object of a few hundred pixels (a nucleus, a dot, a fibre segment) pasted
elsewhere in the figure, too small for keypoint clusters or the dense branch's patch grid.

An untouched copy repeats its source pixel for pixel (under a flip or quarter turn, whose resampling is
an index permutation). Every textured pixel gets a hash of the exact grey values of its neighbourhood,
read in the orientation of each of the eight flips/turns of the square; a source pixel ``p`` and its copy
``q = D p + t`` then share a hash. Hash collisions between unrelated pixels scatter over offsets, a copy
piles its pixels onto one ``(D, t)``; piles of at least a share of the image become candidates for the
same verification as every other branch. Only the figure's own pixel grid keeps copies exact, so the
branch stays off on downscaled working images; JPEG after forging also breaks exactness (not found here).
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

from models.matcher.config import SmallCopyParams
from models.matcher.dense import DIHEDRAL
from models.matcher.geometry import Candidate
from models.matcher.hashtable import RunTable
from models.matcher.panels import Layout
from models.matcher.prepare import WorkingImage

RADIUS = 1  # neighbourhood (2 * RADIUS + 1)^2 hashed per pixel
LINEAR = DIHEDRAL  # linear part of each flip/turn on (x, y) column vectors, shared with the dense branch


def _hash(gray: np.ndarray, linear: np.ndarray, weights: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """uint64 hash of the neighbourhood values at offsets ``linear @ o`` (o on the square grid) of each pixel
    ``(ys, xs)``; the image edge repeats outwards."""
    padded = np.pad(gray, RADIUS, mode="edge")
    return _hash_compiled(padded, linear.astype(np.int64), weights, ys + RADIUS, xs + RADIUS)


@numba.njit(cache=True, nogil=True)
def _hash_compiled(gray, linear, weights, ys, xs):
    r = RADIUS
    out = np.empty(len(ys), np.uint64)
    for i in range(len(ys)):
        key = np.uint64(0)
        k = 0
        for oy in range(-r, r + 1):
            for ox in range(-r, r + 1):
                dx = linear[0, 0] * ox + linear[0, 1] * oy
                dy = linear[1, 0] * ox + linear[1, 1] * oy
                key += weights[k] * np.uint64(gray[ys[i] + dy, xs[i] + dx])
                k += 1
        out[i] = key
    return out


def small_copy_candidates(
    work: WorkingImage, layout: Layout, content: np.ndarray, params: SmallCopyParams, min_offset: float
) -> list[Candidate]:
    """Candidate transforms of exact small copies (see the module docstring)."""
    if not params.enabled or work.scale != 1.0:
        return []
    gray = np.clip(np.round(work.gray), 0, 255).astype(np.uint8)
    g = gray.astype(np.float32)
    n = 2 * RADIUS + 1
    mean = cv2.boxFilter(g, cv2.CV_32F, (n, n))
    std = np.sqrt(np.maximum(cv2.boxFilter(g * g, cv2.CV_32F, (n, n)) - mean * mean, 0))
    usable = content & (std >= params.min_std) & (gray > 0) & (gray < 255)
    usable = cv2.erode(usable.astype(np.uint8), np.ones((n, n), np.uint8)).astype(bool)
    ys, xs = (axis.astype(np.int64) for axis in np.nonzero(usable))
    if len(ys) < params.min_pixels:
        return []
    weights = np.random.default_rng(0).integers(1, 2**63, n * n, dtype=np.uint64) | np.uint64(1)
    base = _hash(gray, np.eye(2, dtype=np.int64), weights, ys, xs)
    order = np.argsort(base, kind="stable")
    table = RunTable(base[order])
    min_pixels = max(params.min_pixels, params.min_area * work.area)
    found = []
    for name, lin in LINEAR.items():
        linear = np.array(lin, np.int64)
        query = _hash(gray, linear, weights, ys, xs) if name != "identity" else base
        first, count = table.lookup(query)
        # a hash shared by many pixels is a flat or repeated texture, not a copy
        q_idx = np.flatnonzero((count > 0) & (count <= params.max_copies + 1))
        if len(q_idx) == 0:
            continue
        starts, sizes = first[q_idx], count[q_idx]
        q_rep = np.repeat(q_idx, sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        p_idx = order[np.repeat(starts, sizes) + within]
        src = np.stack([xs[p_idx], ys[p_idx]], axis=1)
        dst = np.stack([xs[q_rep], ys[q_rep]], axis=1)
        shift = dst - src @ linear.T
        far = np.hypot(*(dst - src).T) >= min_offset
        if name == "identity":
            far &= (shift[:, 0] > 0) | ((shift[:, 0] == 0) & (shift[:, 1] > 0))  # each pair once
        src, dst, shift = src[far], dst[far], shift[far]
        if len(shift) == 0:
            continue
        keys, inverse, votes = np.unique(shift, axis=0, return_inverse=True, return_counts=True)
        for k in np.flatnonzero(votes >= min_pixels):
            members = inverse.ravel() == k
            found.append((int(votes[k]), linear, keys[k], src[members], dst[members]))
    found.sort(key=lambda item: -item[0])
    candidates = []
    for votes, linear, shift, src, dst in found[: params.max_candidates]:
        affine = np.hstack([linear.astype(np.float64), shift.astype(np.float64)[:, None]])
        candidates.append(
            Candidate(
                affine=affine,
                src_pts=src.astype(np.float64),
                dst_pts=dst.astype(np.float64),
                origin="exact",
                support=votes,
                src_panel=int(np.bincount(np.maximum(layout.panel_at(src), 0)).argmax()),
                dst_panel=int(np.bincount(np.maximum(layout.panel_at(dst), 0)).argmax()),
            )
        )
    return candidates
